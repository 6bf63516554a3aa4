"""The Topographic VAE paper sweeps: every file validates (`vaeray sweep --dry-run`) with the paper's settings,
and a shrunken Table 1 sweep runs end to end through `vaeray sweep` on real MNIST sequences."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest
import yaml

from tests.conftest import run_inprocess, shared_data_dir

from .conftest import REPO, VAERAY

PAPER = sorted(p.name for p in (REPO / "sweeps").glob("tvae_*.yaml"))


def test_every_paper_experiment_has_a_sweep_file():
    assert PAPER == sorted(f"tvae_{n}.yaml" for n in (
        "2d_mnist", "Lpartial_mnist", "Lpartial_dsprites", "table1_mnist", "table2_dsprites",
        "generalization_mnist", "perspective_mnist", "rotcolor_mnist"))


@pytest.mark.parametrize("name", PAPER)
def test_paper_sweep_passes_dry_run_with_the_paper_settings(name, tmp_path, monkeypatch, capsys):
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", str(REPO / "sweeps" / name), "--dry-run",
                                   "--storage", str(tmp_path))
    assert code == 0, err
    assert "trials" in out
    spec = yaml.safe_load((REPO / "sweeps" / name).read_text())
    t = spec["train"]
    assert (t["optimizer"], t["lr"], t["momentum"]) == ("sgd", 1e-4, 0.9)
    assert t["batch_size"] == (128 if name == "tvae_2d_mnist.yaml" else 8)
    assert len(spec["sweep"]["seeds"]) >= 3


def test_table1_grid_is_the_five_rows():
    spec = yaml.safe_load((REPO / "sweeps" / "tvae_table1_mnist.yaml").read_text())
    rows = [(m["name"], m.get("k_time"), m.get("k_space")) for m in spec["model"]["grid"]]
    assert rows == [("tvae", 18, None), ("tvae", 5, None), ("bubble_vae", 5, 3), ("tvae_l0", None, 3),
                    ("nontvae", None, None)]


def test_tiny_table1_sweep_runs_end_to_end(tmp_path):
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("the shared real-data folder (../shared/data) is not present")
    data = tmp_path / "data"
    (data / "MNIST" / "raw").mkdir(parents=True)
    for gz in (shared / "mnist").glob("*.gz"):
        (data / "MNIST" / "raw" / gz.name).symlink_to(gz.resolve())
    spec = yaml.safe_load((REPO / "sweeps" / "tvae_table1_mnist.yaml").read_text())
    small = {"n_caps": 4, "cap_dim": 4, "net": "mlp", "hidden": [32]}
    spec["model"]["grid"] = [{**spec["model"]["grid"][1], **small, "k_time": 3}, {"name": "nontvae", **small}]
    spec["data"].update(n_transforms=4, limit=64)
    spec["train"].update(steps=20, log_every=10, checkpoint_every=20, lr=1e-3)
    spec["eval"]["metrics"] = {"equivariance": {"num_sequences": 8}, "sequence_nll": {"k": 3, "num_sequences": 4}}
    spec["sweep"].update(seeds=[1], resources={"cpu": 1}, storage=str(tmp_path / "results"))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    r = subprocess.run([str(VAERAY), "sweep", str(path), "--data-dir", str(data)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "results" / "tvae_table1_mnist" / "results.parquet")
    assert sorted(df["model.name"]) == ["nontvae", "tvae"] and (df["status"] == "completed").all()
    assert (df["step"] == 20).all() and (df["equivariance_error_random"] > 0).all()
    assert df["sequence_nll_frame"].notna().all() and df["equivariance_error"].notna().all()
