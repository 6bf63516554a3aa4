"""An interrupted sweep with seed-grouped early stopping ends exactly as an uninterrupted one (issue 14, item 3).

The bug: Ray restores a paused trial as a *pending* one, and the scheduler started pending trials without
asking its book, so after Ctrl-C while one seed waited at an ASHA rung, the rerun stopped the configuration
and then restarted that seed, recording it a second time at another step. Here each sweep runs once without
interruption (in this process, on the session's Ray) and then again from scratch with its driver interrupted
(a ``vaeray sweep`` subprocess on the same Ray): Ctrl-C while a seed is paused at a rung, and SIGKILL while
trials run; the same command then finishes it. The results tables must agree trial for trial: status, the
step it ended at, and its metrics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from vaeray.storage import read_json
from vaeray.sweep import spec as sw
from vaeray.sweep.ray.runner import run_sweep
from vaeray.sweep.ray.scheduler import rungs_uri

from ..conftest import VAERAY
from ..restore_output import restore_noise

SCHEDULERS = {
    "asha": {"name": "asha", "grace_period": 10, "reduction_factor": 2},
    "median": {"name": "median", "grace_period": 10, "interval": 10, "min_samples_required": 1},
}
COLUMNS = ["trial_id", "status", "step", "loss", "rec", "kl"]  # identity, how it ended, where, with what


def make(make_sweep, name: str, scheduler: dict) -> Path:
    return make_sweep(
        name,
        # best configuration first: later ones are judged against it at the rungs, and stopped
        model={"name": "reliabilitytest_vae", "sleep_s": 0.01, "slow_factor": 8},
        train={"steps": 30, "log_every": 5, "checkpoint_every": 10, "lr": {"grid": [1e-2, 1e-3, 1e-5]}},
        sweep={"scheduler": scheduler, "metric": "loss", "mode": "min", "max_concurrent": 2,
               "imports": ["sweeptest_plugin", "reliability_plugin", "interrupt_plugin"]},
    )  # fmt: skip


def table(spec) -> pd.DataFrame:
    df = pd.read_parquet(Path(spec.root) / "results.parquet")
    return df[COLUMNS].sort_values("trial_id").reset_index(drop=True)


def rungs(spec) -> dict:
    return read_json(rungs_uri(str(Path(spec.root) / "experiments"), "exp-001")) or {}


def judged_while_paused(spec) -> bool:
    """A configuration has a seed waiting at a rung where another configuration is already recorded: the
    state in which Ctrl-C used to make the rerun restart a seed of a configuration it then stopped."""
    book = rungs(spec)
    if not book.get("waiting"):
        return False
    for m, recorded in book.get("recorded", {}).items():
        for cell, per in book.get("values", {}).items():
            if recorded and cell not in recorded and per.get(m):
                return True
    return False


def reported(spec) -> bool:
    exp = Path(spec.root) / "experiments" / "exp-001"
    return exp.is_dir() and any(f.stat().st_size for f in exp.glob("*/result.json"))


def checkpointed(spec) -> bool:
    exp = Path(spec.root) / "experiments" / "exp-001"
    return exp.is_dir() and any(exp.glob("*/checkpoint_*"))


def interrupt_when(path: Path, spec, ready, sig: int | str, address: str, tmp_path: Path) -> None:
    """Interrupt a `vaeray sweep` driver with ``sig`` once ``ready()``; a string ``sig`` is an interruption
    point of ``interrupt_plugin`` instead, where the driver SIGKILLs itself."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    if isinstance(sig, str):
        env["VAERAY_TEST_KILL_AT"] = sig
    driver = subprocess.Popen(
        [str(VAERAY), "sweep", str(path), "--address", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and driver.poll() is None and not ready():
            time.sleep(0.02)
        if isinstance(sig, str):
            driver.wait(timeout=120)
            assert driver.returncode == -signal.SIGKILL, driver.stderr.read().decode()[-2000:]
            return
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.send_signal(sig)
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@pytest.mark.parametrize("scheduler", ["asha", pytest.param("median", marks=pytest.mark.slow)])
def test_interrupted_sweep_ends_as_the_uninterrupted_one(make_sweep, ray_local, tmp_path, scheduler):
    import ray

    address = ray.get_runtime_context().gcs_address
    ref_spec = sw.load(make(make_sweep, f"ref-{scheduler}", SCHEDULERS[scheduler]))
    run_sweep(ref_spec, verbose=0)
    reference = table(ref_spec)
    assert len(reference) == 6 and set(reference["status"]) == {"completed", "stopped"}

    points = {
        # Ctrl-C while one seed waits at a rung for its sibling
        "paused": (judged_while_paused, signal.SIGINT),
        # SIGKILL of the driver while trials run (a checkpoint exists, nothing is waiting)
        "running": (lambda s: checkpointed(s) and not rungs(s).get("waiting"), signal.SIGKILL),
        # SIGKILL the moment a configuration is stopped, before Tune ended its seeds and the ledger had them
        "stopping": (None, "stopping"),
    }
    if scheduler == "asha":  # (the same code whatever the scheduler)
        # SIGKILL as soon as the experiment is launched (pending record written), before any trial reported
        # (result.json reaches storage late, so no checkpoint either)
        early = lambda s: (Path(s.root) / "pending.json").exists() and not reported(s) and not checkpointed(s)  # noqa: E731
        points = {"before": (early, signal.SIGKILL), **points}
        # the same, with Tune's experiment snapshot torn as a kill during its upload leaves it (Tune copies it
        # to storage in place): the rerun abandons that experiment and runs its trials in a new one
        tuner_saved = lambda s: (Path(s.root) / "experiments" / "exp-001" / "tuner.pkl").exists() and early(s)  # noqa: E731
        points["torn-state"] = (tuner_saved, signal.SIGKILL)
        # SIGKILL halfway through writing results.parquet, after every trial ended
        points["final-write"] = (None, "final-write")
    for point, (ready, sig) in points.items():
        path = make(make_sweep, f"{point}-{scheduler}", SCHEDULERS[scheduler])
        spec = sw.load(path)
        interrupt_when(path, spec, lambda: ready is not None and ready(spec), sig, address, tmp_path)
        if point == "final-write":
            assert not (Path(spec.root) / "results.parquet").exists() and list(Path(spec.root).glob(".tmp-*.parquet"))
        if point == "torn-state":
            exp = Path(spec.root) / "experiments" / "exp-001"
            states = sorted(exp.glob("experiment_state-*.json")) or [exp / "experiment_state-2000-01-01_00-00-00.json"]
            states[-1].write_bytes(b"")  # what CI saw once: the newest snapshot empty
        again = subprocess.run([str(VAERAY), "sweep", str(path), "--address", address], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert again.returncode == 0, again.stderr[-3000:]
        assert not restore_noise(again.stderr), (point, restore_noise(again.stderr))  # item 5: a quiet restore
        if point == "torn-state":
            assert "the interruption tore Tune's experiment_state-" in again.stdout + again.stderr
        got = table(spec)
        assert got["trial_id"].is_unique
        pd.testing.assert_frame_equal(got, reference, check_exact=False, rtol=1e-6, obj=f"{scheduler}, interrupted {point}")
