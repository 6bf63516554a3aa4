"""The researcher's console and run files: the live sweep status line, `vaeray train` interrupted says how to
resume, `vaeray eval` keeps a history, the run directory records what `auto` became, `vaeray list` shows the
train/eval/sweep keys with their defaults."""

from __future__ import annotations

import json

import yaml

from tests.conftest import run_inprocess, tiny_config
from vaeray.report.live import TrialState, duration, status_line
from vaeray.rundir import RunDir


def test_status_line_counts_best_seed_mean_and_eta():
    trials = [
        TrialState("a", "done", 100, 100, 0.2), TrialState("a", "done", 100, 100, 0.4),   # mean 0.3
        TrialState("b", "running", 50, 100, 0.5), TrialState("b", "paused", 50, 100, 0.0),  # mean 0.25
        TrialState("c", "pending", 0, 100, None), TrialState("c", "error", 10, 100, 9.0),  # errors never best
    ]  # fmt: skip
    line = status_line(trials, "mig", "max", elapsed_s=120)
    assert line.startswith("2/6 done, 1 running, 1 paused, 1 pending, 1 error")
    assert "best a: mig 0.3 (mean of 2 seeds)" in line
    # 400 of 600 steps done (done and errored count whole) in 120 s: 60 s left
    assert line.endswith("2m00s elapsed, ETA 1m00s")
    assert "best b: mig 0.25" in status_line(trials, "mig", "min", 1)
    assert duration(3725) == "1h02m" and duration(59) == "59s"


def test_a_running_sweep_prints_status_lines(family_sweep):
    lines = [ln for ln in (family_sweep.parents[1] / "sweep.stderr").read_text().splitlines() if "] status " in ln]
    assert lines, "no status line while the sweep ran"
    assert any("done" in ln and "| best " in ln and ": mig " in ln and "elapsed" in ln for ln in lines)


def _train(tmp_path, monkeypatch, capsys, *extra):
    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(tiny_config(train={"steps": 10, "log_every": 5, "checkpoint_every": 5})))
    run_dir = tmp_path / "run"
    return f, run_dir, run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir), "--no-progress", *extra)


def test_interrupted_train_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import vaeray.train

    def interrupted_fit(cfg, report, **kw):
        report({"loss": 1.0, "step": 5}, {"step": 5})  # a checkpoint at step 5 ...
        report({"loss": 1.0, "step": 7}, None)
        raise KeyboardInterrupt  # ... then Ctrl-C at step 7

    monkeypatch.setattr(vaeray.train, "fit", interrupted_fit)
    monkeypatch.setattr(RunDir, "report", lambda self, m, s: None)
    f, run_dir, (code, _, err) = _train(tmp_path, monkeypatch, capsys, "--set", "train.lr=0.002")
    assert code == 130
    assert "interrupted at step 7" in err and "(step 5)" in err
    assert f"vaeray train {f} --set train.lr=0.002 --run-dir {run_dir} --resume" in err


def test_run_dir_records_what_auto_became_and_eval_keeps_a_history(tmp_path, monkeypatch, capsys):
    _, run_dir, (code, _, err) = _train(tmp_path, monkeypatch, capsys)
    assert code == 0, err
    resolved = json.loads((run_dir / "resolved.json").read_text())
    assert resolved["train.device"] == "auto" and resolved["device"] in ("cpu", "cuda")
    for settings in ("{k: 2, num_examples: 8}", "{k: 4, num_examples: 8}"):
        code, _, err = run_inprocess(monkeypatch, capsys, "eval", str(run_dir), "--set", f"eval.metrics.nll={settings}")
        assert code == 0, err
    history = RunDir(run_dir).eval_history()
    assert [h["metrics"]["nll"]["k"] for h in history] == [2, 4] and all(h["step"] == 10 for h in history)
    assert json.loads((run_dir / "eval.json").read_text()) == history[-1]["results"]  # eval.json: the latest


def test_resolved_names_the_dsprites_source_auto_chose(tmp_path):
    class Data:
        source = "procedural"

    run = RunDir(tmp_path)
    cfg = {"train": {"device": "auto"}, "data": {"name": "dsprites", "source": "auto", "download": False}}
    record = run.record_resolved(cfg, "cpu", Data())
    assert record["data.source"] == "procedural" and json.loads((tmp_path / "resolved.json").read_text())["device"] == "cpu"


def test_list_shows_section_keys_with_defaults(monkeypatch, capsys):
    code, out, _ = run_inprocess(monkeypatch, capsys, "list", "sections")
    assert code == 0
    blocks = out.split("\n")
    for title, key in (("train:", "  steps: 1000"), ("eval:", "  every: None"), ("sweep:", "  seeds: [0]")):
        assert title in blocks and key in blocks
    code, out, _ = run_inprocess(monkeypatch, capsys, "list", "models")
    assert "  vae(" in out and "[disentangling]" in out


def test_experiment_configs_carry_their_evaluation():
    from tests.conftest import REPO
    from vaeray import config

    files = sorted((REPO / "configs" / "experiments").glob("*.yaml"))
    assert len(files) > 20
    for f in files:
        metrics = config.load(str(f))["eval"]["metrics"]  # validated: `vaeray eval` runs them as they are
        assert set(metrics) == ({"mig", "aam"} if "dsprites" in f.name else {"nll"}), f.name
