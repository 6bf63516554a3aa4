"""Ledger, tidy results and seed aggregation (no Ray)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vaeray.sweep import results


def entry(cell, seed, beta, loss, status="completed", mig=None, step=100, error=None):
    metrics = {"loss": loss, "step": step, "lr": 1e-3}
    if mig is not None:
        metrics["mig"] = mig
    return {
        "trial_id": f"{cell}-s{seed}", "config_hash": cell, "seed": seed, "status": status, "error": error,
        "config": {"seed": seed, "model": {"name": "beta_vae_h", "beta": beta, "hidden": [8, 8]}, "train": {"steps": 100}},
        "metrics": metrics, "experiment": "exp-001",
    }


ENTRIES = [
    entry("aaa", 0, 1.0, 10.0, mig=0.1), entry("aaa", 1, 1.0, 12.0, mig=0.3), entry("aaa", 2, 1.0, 14.0, mig=0.2),
    entry("bbb", 0, 4.0, 20.0, status="stopped", step=30), entry("bbb", 1, 4.0, 22.0, status="stopped", step=30),
    entry("ccc", 0, 8.0, 5.0), entry("ccc", 1, 8.0, math.nan, status="error", error="the loss diverged at step 7"),
]


def test_frame_has_one_row_per_trial_with_flat_config_and_metrics():
    df = results.frame(ENTRIES)
    assert len(df) == 7 and list(df["trial_id"])[:2] == ["aaa-s0", "aaa-s1"]
    assert df.loc[0, "model.beta"] == 1.0 and df.loc[0, "model.hidden"] == "[8, 8]"  # lists as JSON text
    assert "seed" in df and "model.seed" not in df and "loss" in df and "mig" in df
    assert results.varying_columns(df) == ["model.beta"]


def test_aggregate_mean_std_sem_count_per_configuration_excluding_errors():
    agg = results.aggregate(results.frame(ENTRIES)).set_index("config_hash")
    assert agg.loc["aaa", "loss_mean"] == pytest.approx(12.0)
    assert agg.loc["aaa", "loss_std"] == pytest.approx(2.0)  # ddof=1 over 10, 12, 14
    assert agg.loc["aaa", "loss_sem"] == pytest.approx(2.0 / math.sqrt(3))
    assert agg.loc["aaa", "loss_count"] == 3 and agg.loc["aaa", "mig_mean"] == pytest.approx(0.2)
    assert (agg.loc["bbb", "n_stopped"], agg.loc["bbb", "n_completed"]) == (2, 0)
    assert agg.loc["ccc", "n_error"] == 1 and agg.loc["ccc", "loss_count"] == 1  # the errored seed is left out
    assert agg.loc["ccc", "loss_mean"] == 5.0 and math.isnan(agg.loc["ccc", "loss_std"])


def test_summary_ranks_finished_configurations_first_and_lists_errors():
    text = results.summary(results.frame(ENTRIES), "loss", "min")
    rows = [line.split()[0] for line in text.splitlines()[2:] if line[:3] in ("aaa", "bbb", "ccc")]
    assert rows == ["ccc", "aaa", "bbb"]  # best loss first (min)
    assert rows.index("bbb") == 2  # stopped early: its loss is from step 30, ranked after finished ones
    assert "12 ± 2 (n=3)" in text and "error: ccc-s1: the loss diverged at step 7" in text
    assert "mig" in text.splitlines()[0]


def test_ledger_roundtrip_ignores_junk_and_parquet_is_readable(tmp_path):
    store = results.SweepStore(str(tmp_path / "sweep"))
    for e in ENTRIES:
        store.ledger.record(e)
    (tmp_path / "sweep" / "ledger" / "broken.json").write_text("{not json")
    (tmp_path / "sweep" / "ledger" / "other.json").write_text('{"trial_id": "x", "status": "running"}')
    loaded = store.ledger.load()
    assert sorted(loaded) == sorted(e["trial_id"] for e in ENTRIES)
    (tmp_path / "sweep" / ".tmp-killed.parquet").write_bytes(b"PAR1 half")  # a driver killed mid-write
    uri = store.write_results(results.frame(loaded.values()))
    back = pd.read_parquet(uri)
    assert len(back) == 7 and set(back["status"]) == {"completed", "stopped", "error"}
    assert not list((tmp_path / "sweep").glob(".tmp-*"))  # atomic writes leave none, and clear a killed writer's


def test_experiment_names_count_up(tmp_path):
    store = results.SweepStore(str(tmp_path / "s"))
    assert store.next_experiment() == "exp-001"
    (tmp_path / "s" / "experiments" / "exp-001").mkdir(parents=True)
    store.add_history({"experiment": "exp-002"})
    assert store.next_experiment() == "exp-003"
