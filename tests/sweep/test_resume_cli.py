"""`vaeray sweep FILE` whose driver is SIGKILLed resumes with the same command; every trial ends exactly once,
and the resumed run prints none of Tune's restore warnings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd

from vaeray.sweep import spec as sw
from vaeray.sweep.results import Ledger, SweepStore

from .conftest import VAERAY
from .restore_output import restore_noise


def checkpointed_unfinished(root: Path, done: set[str]) -> list[str]:
    exp = root / "experiments" / "exp-001"
    if not exp.is_dir():
        return []
    return [d.name for d in exp.iterdir() if d.is_dir() and d.name not in done and any(d.glob("checkpoint_*"))]


def test_killed_driver_resumes_with_the_same_command(make_sweep, tmp_path):
    path = make_sweep(
        "killed",
        model={"name": "sweeptest_vae", "sleep_s": 0.03, "latent_dim": {"grid": [2, 3]}},
        train={"steps": 100, "log_every": 10, "checkpoint_every": 10},
    )
    spec = sw.load(path)
    root = Path(spec.root)
    ledger = Ledger(spec.root)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(
        [str(VAERAY), "sweep", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None:
            done = set(ledger.load())
            if len(done) >= 1 and checkpointed_unfinished(root, done):
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.send_signal(signal.SIGKILL)  # the driver only: no chance to save anything
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = {k: v["finished_at"] for k, v in ledger.load().items()}
    assert 1 <= len(before) < 4 and SweepStore(spec.root).pending()["experiment"] == "exp-001"

    again = subprocess.run([str(VAERAY), "sweep", str(path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not restore_noise(again.stderr), restore_noise(again.stderr)  # no Tune warning, no traceback
    assert "resumed interrupted experiment exp-001" in again.stdout
    entries = ledger.load()
    assert sorted(entries) == sorted(t.trial_id for t in spec.trials())
    assert all(e["status"] == "completed" and e["metrics"]["step"] == 100 for e in entries.values())
    assert all(entries[k]["finished_at"] == v for k, v in before.items())  # finished ones did not run again
    resumed = [e for k, e in entries.items() if k not in before and (e.get("resumed_from") or 0) > 0]
    assert resumed, "no interrupted trial continued from its checkpoint"
    df = pd.read_parquet(root / "results.parquet")
    assert len(df) == 4 and df["trial_id"].is_unique
    # the last attempt of every trial that ran after the kill (its reports carry the step it started from)
    # reports each step once, in order; a resumed one starts right after the checkpoint it loaded, not at 10.
    # (Trials that ended before the kill are skipped: their result.json in storage is whatever Tune had synced.)
    for trial in (t for t in spec.trials() if t.trial_id not in before):
        f = root / "experiments" / "exp-001" / trial.trial_id / "result.json"
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        start = entries[trial.trial_id].get("resumed_from") or 0
        last = [r["step"] for r in rows if r.get("resumed_from", 0) == start]
        assert last[-1] == 100 and last == sorted(set(last))
        if 0 < start < 100:  # (100: a final result replayed from its checkpoint)
            assert last[0] == start + 10
    assert SweepStore(spec.root).pending() is None and [p.name for p in (root / "experiments").iterdir()] == ["exp-001"]
