"""Sweeps on a local Ray (2 CPUs, trials at cpu 0.5): seeds as replicates, idempotence, extension, grouped
ASHA, divergence, Optuna with interrupt and restore."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vaeray.sweep import spec as sw
from vaeray.sweep.ray import runner as vt
from vaeray.errors import TrialsFailed
from vaeray.sweep.ray.scheduler import rungs_uri
from vaeray.sweep.results import Ledger, SweepStore


def parquet(spec) -> pd.DataFrame:
    return pd.read_parquet(Path(spec.root) / "results.parquet")


def experiments(spec) -> list[str]:
    return sorted(p.name for p in (Path(spec.root) / "experiments").iterdir())


def trial_dirs(spec, experiment: str) -> set[str]:
    return {p.name for p in (Path(spec.root) / "experiments" / experiment).iterdir() if p.is_dir()}


def test_grid_with_random_leaves_then_rerun_nothing_then_only_new_trials(ray_local, make_sweep):
    sections = dict(
        model={"latent_dim": {"grid": [2, 3]}},
        train={"lr": {"loguniform": [1e-3, 1e-2]}},
        sweep={"search": "random", "seeds": [0, 1], "seed": 11},
    )
    spec = sw.load(make_sweep("grid", **sections))
    summary = vt.run_sweep(spec, verbose=0)
    df = parquet(spec)
    assert len(df) == 4 and set(df["status"]) == {"completed"} and set(df["step"]) == {30.0}
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in spec.trials())
    for _, group in df.groupby("config_hash"):
        assert sorted(group["seed"]) == [0, 1]
        assert group["train.lr"].nunique() == 1 and group["model.latent_dim"].nunique() == 1  # replicates
        assert group["loss"].nunique() == 2  # ... but different seeds do train differently
    assert df["train.lr"].nunique() == 2
    assert experiments(spec) == ["exp-001"] and trial_dirs(spec, "exp-001") == set(df["trial_id"])
    assert "± " in summary and "(n=2)" in summary

    # the same file again: nothing runs, no experiment is created, the ledger is untouched
    ledger_before = {p.name: p.stat().st_mtime_ns for p in (Path(spec.root) / "ledger").iterdir()}
    again = vt.run_sweep(sw.load(make_sweep("grid", **sections)), verbose=0)
    assert "nothing to run" in again and experiments(spec) == ["exp-001"]
    assert {p.name: p.stat().st_mtime_ns for p in (Path(spec.root) / "ledger").iterdir()} == ledger_before

    # one more grid value: only its two trials run, in a new experiment; results cover all six
    sections["model"] = {"latent_dim": {"grid": [2, 3, 4]}}
    bigger = sw.load(make_sweep("grid", **sections))
    vt.run_sweep(bigger, verbose=0)
    new = {t.trial_id for t in bigger.trials() if t.config["model"]["latent_dim"] == 4}
    assert experiments(spec) == ["exp-001", "exp-002"] and trial_dirs(spec, "exp-002") == new
    assert {p.name: p.stat().st_mtime_ns for p in (Path(spec.root) / "ledger").iterdir() if p.name in ledger_before} == ledger_before
    df = parquet(bigger)
    assert len(df) == 6 and set(df["experiment"]) == {"exp-001", "exp-002"}
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in bigger.trials())


def test_grouped_asha_stops_bad_configurations_with_all_their_seeds(ray_local, make_sweep):
    # good learning rates first in the grid, so they reach the rungs first and set the bar
    spec = sw.load(make_sweep(
        "asha",
        train={"lr": {"grid": [3e-2, 1e-2, 1e-6, 1e-7]}, "steps": 60},
        sweep={"scheduler": {"name": "asha", "grace_period": 20, "reduction_factor": 2}},
    ))
    vt.run_sweep(spec, verbose=0)
    df = parquet(spec)
    assert len(df) == 8
    by_lr = {lr: g for lr, g in df.groupby("train.lr")}
    for lr, group in by_lr.items():
        assert group["status"].nunique() == 1, f"lr {lr}: seeds ended differently: {list(group['status'])}"
        if group["status"].iloc[0] == "stopped":
            assert group["step"].nunique() == 1 and group["step"].iloc[0] < 60  # judged and stopped together
    assert set(by_lr[1e-6]["status"]) == {"stopped"} and set(by_lr[1e-7]["status"]) == {"stopped"}
    assert "completed" in set(by_lr[3e-2]["status"]) | set(by_lr[1e-2]["status"])
    book = json.loads(Path(rungs_uri(str(Path(spec.root) / "experiments"), "exp-001")).read_text())
    stopped_cells = set(df[df["status"] == "stopped"]["config_hash"])
    assert set(book["stopped"]) == stopped_cells


def test_a_diverging_trial_errors_with_one_line_and_the_sweep_goes_on(ray_local, make_sweep):
    spec = sw.load(make_sweep(
        "nan",
        model={"grid": [
            {"name": "sweeptest_vae"},
            {"name": "sweeptest_vae", "nan_after": 12},
        ]},
        sweep={"seeds": [0], "max_failures": 1},
    ))
    with pytest.raises(TrialsFailed) as failed:  # exit code 6 from the CLI, after every result is written
        vt.run_sweep(spec, verbose=0)
    summary = failed.value.summary
    df = parquet(spec).set_index("model.nan_after", drop=False)
    ok = df[df["model.nan_after"].isna()].iloc[0]
    bad = df[df["model.nan_after"] == 12].iloc[0]
    assert ok["status"] == "completed" and bad["status"] == "error"
    # fit's own one-line DivergenceError message, not a traceback or Ray's wrapper
    # NaN from step 12 is caught at the first log step after it (20): the step itself never syncs with the host
    assert bad["error"].startswith("the ") and " diverged at step 20:" in bad["error"], bad["error"]
    assert "\n" not in bad["error"] and "Traceback" not in bad["error"] and "ray::" not in bad["error"]
    assert f"error: {bad['trial_id']}: {bad['error']}" in summary
    assert failed.value.failures == [(bad["trial_id"], bad["error"])] and failed.value.exit_code == 6
    # a divergence is deterministic: not retried although max_failures is 1 (one attempt's rows only)
    trial_dir = Path(spec.root) / "experiments" / "exp-001" / bad["trial_id"]
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert len({r.get("resumed_from") for r in rows}) == 1 and not (trial_dir / "error.txt").exists()
    # an errored trial is a finished one: running the file again changes nothing (and still says it failed) ...
    with pytest.raises(TrialsFailed) as again:
        vt.run_sweep(spec, verbose=0)
    assert "nothing to run" in again.value.summary
    # ... unless asked to start afresh: the old state is gone and both trials run again in a new exp-001
    before = {e.name: e.read_text() for e in (Path(spec.root) / "ledger").iterdir()}
    with pytest.raises(TrialsFailed):
        vt.run_sweep(spec, restart=True, verbose=0)
    after = {e.name: e.read_text() for e in (Path(spec.root) / "ledger").iterdir()}
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    assert experiments(spec) == ["exp-001"] and len(parquet(spec)) == 2


def _interrupt_when(predicate, timeout: float = 120.0) -> threading.Thread:
    """SIGINT this process (as Ctrl-C would) once ``predicate()`` holds."""

    def watch():
        end = time.time() + timeout
        while time.time() < end:
            if predicate():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_optuna_with_seeds_runs_interrupts_and_restores(ray_local, make_sweep):
    path = make_sweep(
        "opt",
        model={"name": "sweeptest_vae", "sleep_s": 0.02, "latent_dim": {"choice": [2, 3]}},
        train={"lr": {"loguniform": [1e-3, 1e-2]}},
        sweep={"search": "optuna", "num_samples": 3, "seeds": [0, 1], "max_concurrent": 2},
    )
    spec = sw.load(path)
    ledger = Ledger(spec.root)
    _interrupt_when(lambda: len(ledger.load()) >= 2)
    with pytest.raises(vt.SweepInterrupted, match="Run the same command to resume"):
        vt.run_sweep(spec, verbose=0)
    store = SweepStore(spec.root)
    assert store.pending()["experiment"] == "exp-001" and 2 <= len(ledger.load()) < 6
    finished_before = {k: v["finished_at"] for k, v in ledger.load().items()}

    summary = vt.run_sweep(sw.load(path), verbose=0)
    assert "resumed interrupted experiment exp-001" in summary
    assert store.pending() is None and experiments(spec) == ["exp-001"]
    df = parquet(spec)
    assert len(df) == 6 and set(df["status"]) == {"completed"}
    groups = df.groupby("config_hash")
    assert len(groups) == 3
    for _, g in groups:  # Repeater's __trial_index__ became the seed; the seeds share the suggestion
        assert sorted(g["seed"]) == [0, 1] and g["train.lr"].nunique() == 1 and g["model.latent_dim"].nunique() == 1
    entries = ledger.load()
    assert all(entries[k]["finished_at"] == v for k, v in finished_before.items())  # not run again
    assert sum(h["configurations"] for h in store.history()) == 3
    # finished: a rerun asks Optuna for nothing more
    assert "nothing to run" in vt.run_sweep(sw.load(path), verbose=0)
    # one more configuration: a new experiment whose study starts from the three finished ones
    body = yaml.safe_load(path.read_text())
    body["sweep"]["num_samples"] = 4
    path.write_text(yaml.safe_dump(body))
    summary = vt.run_sweep(sw.load(path), verbose=0)
    assert "Optuna warm-started from 3 finished configuration(s)" in summary
    assert experiments(spec) == ["exp-001", "exp-002"]
    df = parquet(spec)
    assert len(df) == 8 and df["config_hash"].nunique() == 4 and (df["experiment"] == "exp-002").sum() == 2
