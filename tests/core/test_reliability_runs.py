"""`vaeray train` under failure: nothing written before the run starts, refused resumes change nothing,
checkpoints are checksummed with a fallback, the metrics log survives torn writes, and SIGKILLs at random
points followed by ``--resume`` end with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import run_inprocess, tiny_config
from vaeray import checkpoint as ckpt
from vaeray.errors import CheckpointError
from vaeray.rundir import LAST, METRICS, PREV


def write_config(tmp_path: Path, **train) -> Path:
    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(tiny_config(train={"steps": 30, "log_every": 5, "checkpoint_every": 10, **train})))
    return f


def train(monkeypatch, capsys, f, run_dir, *extra):
    return run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir), "--no-progress", *extra)


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / METRICS).read_text().splitlines()]


def test_failure_while_loading_data_writes_nothing(tmp_path, monkeypatch, capsys):
    from vaeray import train as train_mod

    def missing(*a, **k):
        from vaeray.errors import DataMissingError

        raise DataMissingError("put mnist in X")

    monkeypatch.setattr(train_mod, "build_dataset", missing)
    code, _, err = train(monkeypatch, capsys, write_config(tmp_path), tmp_path / "run")
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_refused_resume_changes_nothing_and_overrides_apply_for_real(tmp_path, monkeypatch, capsys):
    f, run_dir = write_config(tmp_path), tmp_path / "run"
    assert train(monkeypatch, capsys, f, run_dir)[0] == 0
    before = snapshot(run_dir)
    # a different model: the checkpoint does not match; nothing changes on disk (config, log, checkpoints)
    code, _, err = train(monkeypatch, capsys, f, run_dir, "--resume", "--set", "model.latent_dim=4", "--set", "train.steps=40")
    assert code == 4 and "different model" in err and snapshot(run_dir) == before
    # a seed cannot change on resume (the RNG state comes from the checkpoint): refused, not recorded
    code, _, err = train(monkeypatch, capsys, f, run_dir, "--resume", "--set", "seed=7", "--set", "train.steps=40")
    assert code == 4 and "seed cannot change" in err and snapshot(run_dir) == before
    # a new learning rate is used, not just recorded
    code, _, err = train(monkeypatch, capsys, f, run_dir, "--resume", "--set", "train.lr=0.0123", "--set", "train.steps=40")
    assert code == 0, err
    rows = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert rows[-1]["lr"] == pytest.approx(0.0123) and rows[0]["lr"] == pytest.approx(1e-3)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["lr"] == 0.0123


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, monkeypatch, capsys):
    f, run_dir = write_config(tmp_path), tmp_path / "run"
    assert train(monkeypatch, capsys, f, run_dir)[0] == 0
    assert ckpt.load(run_dir / PREV)["step"] == 20 and ckpt.load(run_dir / LAST)["step"] == 30
    data = bytearray((run_dir / LAST).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: a torch.load might not notice, the checksum does
    (run_dir / LAST).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt.load(run_dir / LAST)
    code, _, err = train(monkeypatch, capsys, f, run_dir, "--resume", "--set", "train.steps=40")
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "previous checkpoint (step 20)" in warning[0]
    assert steps(run_dir) == [5, 10, 15, 20, 25, 30, 35, 40]  # 25, 30 logged once: the log was cut back to 20


def test_torn_log_line_is_dropped_on_resume(tmp_path, monkeypatch, capsys):
    f, run_dir = write_config(tmp_path), tmp_path / "run"
    assert train(monkeypatch, capsys, f, run_dir)[0] == 0
    with open(run_dir / METRICS, "a") as fh:
        fh.write('{"step": 35, "loss": 1.2')  # what a kill mid-write could leave
    code, _, err = train(monkeypatch, capsys, f, run_dir, "--resume", "--set", "train.steps=40")
    assert code == 0, err
    assert steps(run_dir) == [5, 10, 15, 20, 25, 30, 35, 40]


def test_files_get_the_umask_not_0600(tmp_path, monkeypatch, capsys):
    old = os.umask(0o027)
    try:
        f, run_dir = write_config(tmp_path), tmp_path / "run"
        assert train(monkeypatch, capsys, f, run_dir)[0] == 0
    finally:
        os.umask(old)
    for name in ("config.yaml", METRICS, LAST, PREV, "model.pt"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o640, name


CLI = "import sys; from vaeray.cli import run; sys.argv = ['vaeray', *sys.argv[1:]]; run()"


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    """Three SIGKILLs at random moments of a `vaeray train` subprocess, each followed by --resume: the final
    weights equal an uninterrupted run's bit for bit, and the log has every step exactly once."""
    cfg = tiny_config(model={"hidden": [64]}, train={"steps": 400, "log_every": 20, "checkpoint_every": 40})
    f = tmp_path / "k.yaml"
    f.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    preload = "import tests.conftest; "  # registers test_squares in the subprocess
    code = preload + CLI
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-c", code, "train", str(f), "--run-dir", str(ref), "--no-progress"], env=env, check=True, timeout=300, capture_output=True)

    run_dir = tmp_path / "run"
    rng = random.Random(0)
    # kill points as log rows of the 20 the run writes, increasing, so each kill lands while the run is still
    # short of its end (a wall-clock delay alone let a quick run finish before its third kill)
    targets = sorted(rng.sample(range(2, 18), 3))
    kills = 0
    for attempt in range(8):
        args = [sys.executable, "-c", code, "train", str(f), "--run-dir", str(run_dir), "--no-progress"]
        if (run_dir / "config.yaml").exists():
            args.append("--resume")
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 3:
            # wait until training is under way (a log row after this start, and the kill point's row), then
            # kill at a random moment shortly after
            t0 = time.monotonic()
            n0 = len((run_dir / METRICS).read_text().splitlines()) if (run_dir / METRICS).exists() else 0
            while p.poll() is None and time.monotonic() - t0 < 120:
                rows = len((run_dir / METRICS).read_text().splitlines()) if (run_dir / METRICS).exists() else 0
                if rows > n0 and rows >= targets[kills]:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.02))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait(timeout=60)
            continue
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        break
    assert kills == 3
    assert steps(run_dir) == list(range(20, 401, 20))
    a, b = ckpt.load(ref / "model.pt")["model"], ckpt.load(run_dir / "model.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
