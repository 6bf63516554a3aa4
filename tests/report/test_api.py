"""The results API on a hand-made sweep directory (ledger, pending experiment, Tune trial directories): one row
per trial with status, family and best values, while running and after; several sweeps in one frame; the
per-step history; one line and exit 2 for a missing sweep or one with nothing finished."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vaeray import results
from vaeray.storage import write_json
from vaeray.sweep.identity import config_hash
from vaeray.sweep.results import Ledger

from .conftest import run_vaeray


def run_config(beta: float, seed: int) -> dict:
    return {"seed": seed, "model": {"name": "beta_vae_h", "beta": beta, "latent_dim": 2},
            "data": {"name": "dsprites", "source": "procedural"}, "train": {"steps": 20, "lr": 1e-3}, "eval": {"metrics": {}}}  # fmt: skip


def write_trial(root: Path, exp: str, cfg: dict, history: list[dict]) -> str:
    cell = config_hash(cfg)
    tid = f"{cell}-s{cfg['seed']}"
    d = root / "experiments" / exp / tid
    d.mkdir(parents=True)
    lines = [json.dumps({**h, "config": {"run": cfg}, "training_iteration": i}) for i, h in enumerate(history)]
    (d / "result.json").write_text("\n".join(lines) + "\n" + '{"step": 99, "los')  # a torn line being written
    return tid


def make_sweep(root: Path) -> dict:
    """Two configurations x two seeds finished (one errored), one trial running, one not started."""
    ledger = Ledger(str(root))
    ids = {}
    for beta in (1.0, 4.0):
        for seed in (0, 1):
            cfg = run_config(beta, seed)
            mig = [0.1 * beta + 0.01 * seed, 0.05 * beta + 0.01 * seed]  # best at step 10, final at step 20
            tid = write_trial(root, "exp-001", cfg, [{"step": 10, "loss": 50.0, "mig": mig[0]}, {"step": 20, "loss": 40.0, "mig": mig[1]}])
            error = "DivergenceError: the loss diverged at step 20" if (beta, seed) == (4.0, 1) else None
            ledger.record({"trial_id": tid, "config_hash": tid[:10], "seed": seed, "status": "error" if error else "completed",
                           "error": error, "config": cfg, "metrics": {"step": 20, "loss": 40.0, "mig": mig[1], "time_total_s": 3.5},
                           "experiment": "exp-001", "device": "cpu"})  # fmt: skip
            ids[(beta, seed)] = tid
    running = run_config(8.0, 0)
    ids["running"] = write_trial(root, "exp-002", running, [{"step": 10, "loss": 45.0, "mig": 0.7, "device": "cuda"}])
    ids["pending"] = f"{config_hash(run_config(8.0, 1))}-s1"
    write_json(str(root / "pending.json"), {"experiment": "exp-002", "trials": [ids["running"], ids["pending"]]})
    (root / "sweep.yaml").write_text("sweep: {metric: mig, mode: max}\n")
    return ids


@pytest.fixture
def sweep_dir(tmp_path):
    root = tmp_path / "store" / "hand"
    ids = make_sweep(root)
    return root, ids


def test_one_row_per_trial_with_status_family_hyperparameters_and_best(sweep_dir):
    root, ids = sweep_dir
    df = results.load(str(root)).set_index("trial_id")
    assert len(df) == 6 and set(df["sweep"]) == {"hand"}
    assert df.loc[ids[(1.0, 0)], "status"] == "completed" and df.loc[ids[(4.0, 1)], "status"] == "error"
    assert df.loc[ids[(4.0, 1)], "error"].startswith("DivergenceError")
    assert df.loc[ids["running"], "status"] == "running" and df.loc[ids["pending"], "status"] == "pending"
    assert df.loc[ids["running"], "mig"] == 0.7 and df.loc[ids["running"], "device"] == "cuda"
    assert (df["family"] == "disentangling").all() and (df["model"] == "beta_vae_h").all()
    assert (df["dataset"] == "dsprites").all() and df.loc[ids[(4.0, 0)], "model.beta"] == 4.0
    r = df.loc[ids[(4.0, 0)]]
    assert r["mig"] == pytest.approx(0.2) and r["best_mig"] == pytest.approx(0.4) and r["best_loss"] == 40.0
    assert r["steps"] == 20 and r["wall_time_s"] == 3.5 and r["seed"] == 0
    assert math.isnan(df.loc[ids["pending"], "mig"])


def test_names_resolve_under_storage_and_several_sweeps_make_one_frame(sweep_dir, tmp_path, monkeypatch):
    root, _ = sweep_dir
    other = tmp_path / "store" / "other"
    make_sweep(other)
    df = results.load(["hand", "other"], storage=str(tmp_path / "store"))
    assert len(df) == 12 and df.groupby("sweep").size().to_dict() == {"hand": 6, "other": 6}
    monkeypatch.setenv("VAERAY_STORAGE", str(tmp_path / "store"))
    assert len(results.load("other")) == 6
    agg = results.aggregate(df, ["mig"])
    assert len(agg) == 6  # (sweep, configuration): the same configuration in two sweeps stays apart


def test_history_has_each_step_once_and_skips_a_torn_line(sweep_dir):
    root, ids = sweep_dir
    h = results.load_history(str(root))
    one = h[h["trial_id"] == ids[(1.0, 0)]]
    assert list(one["step"]) == [10.0, 20.0] and list(one["mig"]) == pytest.approx([0.1, 0.05])
    assert set(h["trial_id"]) == {*(ids[k] for k in ids if k != "pending")}


def test_missing_sweep_is_one_error_line_and_exit_2(tmp_path):
    with pytest.raises(results.SweepNotFound, match="no sweep at"):
        results.load("nope", storage=str(tmp_path))
    r = run_vaeray("report", "nope", "--storage", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: no sweep at")


def test_sweep_with_nothing_finished_is_one_error_line_and_exit_2(tmp_path):
    root = tmp_path / "early"
    write_json(str(root / "pending.json"), {"experiment": "exp-001", "trials": ["0123456789-s0"]})
    df = results.load(str(root))
    assert list(df["status"]) == ["pending"]
    r = run_vaeray("report", str(root), cwd=tmp_path)
    assert r.returncode == 2 and "no finished trial" in r.stderr and r.stderr.count("\n") == 1


def test_family_defaults_to_the_module_of_the_model():
    from vaeray.registry import MODELS

    class Rotating(MODELS.get("vae")):  # a model of another family subclassing the Gaussian VAE
        pass

    Rotating.__module__ = "vaeray.models.topographic"
    MODELS._entries["reporttest_rotating"] = Rotating
    try:
        assert results.family_of("reporttest_rotating") == "topographic"
        assert results.family_of("factor_vae") == "disentangling" and results.family_of("nope") == "unknown"
    finally:
        del MODELS._entries["reporttest_rotating"]


def test_progress_wraps_the_per_trial_reading(sweep_dir):
    root, _ = sweep_dir
    calls = []

    def progress(items, description, total):
        calls.append((description, total))
        return items

    results.load(str(root), progress=progress)
    assert calls == [("reading hand", 4)]  # the four ledger entries (running and pending trials are few)
