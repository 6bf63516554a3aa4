"""The hyperspherical sweep files: both validate with --dry-run, and a tiny copy of the product-space sweep runs end
to end through `vaeray sweep` on static binarised MNIST, leaving what the report layer needs in the results table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VAERAY = Path(sys.executable).parent / "vaeray"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("name, trials", [("svae_table1_mnist", 100), ("svae_products", 63)])
def test_shipped_sweeps_pass_dry_run(name: str, trials: int, tmp_path: Path) -> None:
    r = subprocess.run(
        [str(VAERAY), "sweep", str(REPO / "sweeps" / f"{name}.yaml"), "--dry-run", "--storage", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{trials} of {trials} trials to run" in r.stdout


@pytest.mark.slow
def test_tiny_product_sweep_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    if not (shared_data / "binarized-mnist").is_dir():
        pytest.skip("shared binarized-mnist files absent")
    spec = yaml.safe_load((REPO / "sweeps" / "svae_products.yaml").read_text())
    spec["model"] = {"grid": [
        {"name": "svae", "family": "vmf", "spheres": [4], "hidden": [64], "kl_warmup": 10},
        {"name": "svae", "family": "power_spherical", "spheres": [1, 1], "hidden": [64], "kl_warmup": 10},
    ]}
    spec["data"] = {"name": "binarized_mnist"}
    spec["train"].update(steps=30, log_every=10, checkpoint_every=30, early_stop_every=10, early_stop_burn_in=0)
    spec["eval"] = {"metrics": {"nll": {"k": 10, "num_examples": 20, "batch_size": 20}}}
    spec["sweep"].update(seeds=[0], resources={"cpu": 1})
    spec["sweep"].pop("storage")
    path = tmp_path / "svae_products_tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    r = subprocess.run(
        [str(VAERAY), "sweep", str(path), "--data-dir", str(shared_data), "--storage", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=500, env=ENV, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "results" / "svae_products" / "results.parquet")
    assert len(df) == 2 and set(df["status"]) == {"completed"} and (df["step"] == 30).all()
    assert df["nll"].map(math.isfinite).all() and (df["nll"] > 0).all()
    # what the report needs to place a row beside S-VAE Table 1: dataset (and so its binarisation), latent
    # family and sphere dimensions, the number of importance samples, and the RE / KL terms
    assert set(df["data.name"]) == {"binarized_mnist"}
    assert set(df["model.family"]) == {"vmf", "power_spherical"}
    assert sorted(json.loads(s) for s in df["model.spheres"]) == [[1, 1], [4]]
    assert set(df["eval.metrics.nll.k"]) == {10}
    assert {"rec", "kl", "valid_elbo"} <= set(df.columns)
