"""The DVAE# Table 1 sweep files: the full grid validates as the paper's design, and a tiny version of the
laptop file runs end to end through ``vaeray sweep`` with the discrete-model NLL in the results table."""

from __future__ import annotations

import math
import os
import subprocess

import pandas as pd
import yaml

from vaeray.sweep import spec as sw
from vaeray.models.discrete import BASELINES
from vaeray.registry import MODELS

from .conftest import REPO, VAERAY


def test_table1_grid_is_baselines_by_structures_by_k_by_datasets_by_seeds():
    spec = sw.load(REPO / "sweeps" / "dvaes_table1.yaml", storage="/tmp/unused")
    configs = [c.config for c in spec.configurations]
    assert len(configs) == 8 * 4 * 3 * 2 and spec.seeds == (0, 1, 2, 3, 4) and len(spec.trials()) == 960
    assert {c["model"]["name"] for c in configs} == set(BASELINES)
    assert {c["model"]["structure"] for c in configs} == {"1-layer-lin", "1-layer-nonlin", "2-layer-nonlin", "4-layer-nonlin"}
    assert {c["model"]["k"] for c in configs} == {1, 5, 25}
    assert {c["data"]["name"] for c in configs} == {"binarized_mnist", "omniglot"}
    c = configs[0]
    assert c["train"]["steps"] == 1_000_000 and c["train"]["lr"] == 3e-3 and c["train"]["batch_size"] == 100
    assert c["eval"]["metrics"]["dvae_nll"]["k"] == 4000 and c["model"]["ais_temperatures"] == 1000
    # the paper's checkpoint selection: validation NLL with 100 samples every 20k steps, never stopping early
    t = c["train"]
    assert t["early_stop_every"] == 20_000 and t["early_stop_patience"] is None
    assert t["early_stop_metric"] == {"dvae_nll": {"k": 100, "num_examples": None, "batch_size": 100}}
    # beta_table: auto picks the trained dataset's β (DVAE# code defaults)
    build = lambda data: MODELS.build(  # noqa: E731
        {"name": "dvaes_power", "structure": "2-layer-nonlin", "num_chains": 2}, "model",
        observation_shape=(784,), data_name=data,
    )
    assert build("omniglot").beta == 20 and build("binarized_mnist").beta == 30


def test_laptop_file_runs_tiny_through_the_cli(tmp_path, shared_data):
    short = yaml.safe_load((REPO / "sweeps" / "dvaes_table1_laptop.yaml").read_text())
    short["model"].update(units=8, hidden=16, num_chains=16, sweeps=2, kl_warmup=5, ais_temperatures=20, ais_particles=16)
    short["model"]["name"] = "dvaes_power"
    short["train"].update(steps=10, batch_size=16, log_every=5, checkpoint_every=10, early_stop_every=5)
    short["train"]["early_stop_metric"] = {"dvae_nll": {"k": 3, "num_examples": 10}}
    short["eval"]["metrics"]["dvae_nll"] = {"k": 5, "num_examples": 20}
    short["sweep"]["storage"] = str(tmp_path / "results")
    path = tmp_path / "dvaes_tiny.yaml"
    path.write_text(yaml.safe_dump(short, sort_keys=False))
    r = subprocess.run(
        [str(VAERAY), "sweep", str(path), "--data-dir", str(shared_data)],
        capture_output=True, text=True, cwd=tmp_path, timeout=400, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "results" / "dvaes_table1_laptop" / "results.parquet")
    assert len(df) == 1 and set(df["status"]) == {"completed"}
    row = df.iloc[0]
    assert math.isfinite(row["dvae_nll"]) and 0 < row["dvae_nll"] < 800
    assert row["dvae_nll_log_z_upper"] > row["dvae_nll_log_z"] - 1.0 and math.isfinite(row["dvae_nll_log_z_std"])
    # the validation-NLL selection ran (every 5 steps) and the test NLL is of the selected weights
    assert row["valid_best_step"] in (5, 10) and math.isfinite(row["valid_dvae_nll_best"])
    assert row["valid_dvae_nll_best"] <= row["valid_dvae_nll"]
