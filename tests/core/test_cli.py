"""The command line: one line and exit code 2 for bad configs, nothing written; train/resume/eval/list work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import run_inprocess, tiny_config


def vaeray(*args, cwd=None):
    """Run the real console entry point in a subprocess (no test-only registrations there)."""
    code = "import sys; from vaeray.cli import run; sys.argv = ['vaeray', *sys.argv[1:]]; run()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "model, expected",
    [
        ({"name": "btcvea"}, "model.name: unknown model 'btcvea'"),
        ({"name": "vae", "latent_dim": "ten"}, "model.latent_dim: expected an integer"),
        ({"name": "vae", "latent_dim": -3}, "model.latent_dim: -3 is out of range"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, model, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({"model": model, "data": {"name": "mnist"}}))
    r = vaeray("train", str(f), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_missing_file_is_one_line(tmp_path):
    r = vaeray("train", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "file not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def train_tiny(tmp_path, monkeypatch, capsys, **train):
    """`vaeray train` on a tiny config written to tmp_path; returns (config file, run dir)."""
    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(tiny_config(train=train)))
    run_dir = tmp_path / "run"
    code, _, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir), "--no-progress")
    assert code == 0, err
    return f, run_dir


def test_train_resume_and_eval(tmp_path, monkeypatch, capsys):
    f, run_dir = train_tiny(tmp_path, monkeypatch, capsys, steps=30, log_every=10, checkpoint_every=10)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert (run_dir / "model.pt").is_file() and (run_dir / "checkpoints" / "last.pt").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["likelihood"] == "bernoulli" and saved["train"]["steps"] == 30

    # a second train into the same directory without --resume refuses and keeps the results
    code, _, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir))
    assert code == 2 and "--resume" in err
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3

    # --resume with more steps continues from step 30
    code, _, err = run_inprocess(
        monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir), "--resume", "--set", "train.steps=50",
        "--no-progress",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50]


def test_eval_run_dir_writes_eval_json(tmp_path, monkeypatch, capsys):
    _, run_dir = train_tiny(tmp_path, monkeypatch, capsys, steps=10, log_every=5, checkpoint_every=5)
    code, _, err = run_inprocess(
        monkeypatch, capsys, "eval", str(run_dir), "--set", "eval.metrics.mig={num_train: 64}",
        "--set", "eval.metrics.nll={k: 4, num_examples: 8}",
    )
    assert code == 0, err
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["step"] == 10 and 0.0 <= result["mig"] <= 1.0 and result["nll"] > 0
    # the training config is not for eval to change
    code, _, err = run_inprocess(monkeypatch, capsys, "eval", str(run_dir), "--set", "train.lr=1.0")
    assert code == 2 and "only eval.* settings" in err


def test_list_shows_registered_names(monkeypatch, capsys):
    code, out, _ = run_inprocess(monkeypatch, capsys, "list")
    assert code == 0
    assert "models:" in out and "  vae(" in out and "latent_dim=10" in out and "test_squares(" in out
