"""The ML-VAE sweep file: its 24-trial matrix validates, and a tiny copy runs end to end through `vaeray sweep`
on real MNIST, leaving the probe accuracies in the results table."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import yaml

from tests.conftest import run_inprocess

from .conftest import REPO, VAERAY

SWEEP = REPO / "sweeps" / "mlvae_mnist.yaml"


def test_the_sweep_files_are_the_24_and_12_trial_grids(monkeypatch, capsys):
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", str(SWEEP), "--dry-run")
    assert code == 0, err
    assert "8 configurations x 3 seeds = 24 trials" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("trial"))
    assert header.split()[1:4] == ["model.noise_scale", "model.content_sample", "model.accumulate"]
    dsprites = str(REPO / "sweeps" / "mlvae_dsprites.yaml")
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", dsprites, "--dry-run")
    assert code == 0 and "4 configurations x 3 seeds = 12 trials" in out and "content_mig (max)" in out, err


def test_vaeray_list_shows_the_family(monkeypatch, capsys):
    code, out, _ = run_inprocess(monkeypatch, capsys, "list")
    assert code == 0
    for name in ("ml_vae", "mnist_groups", "fashion_mnist_groups", "dsprites_groups", "probe", "content_factors"):
        assert name in out


def test_a_tiny_mlvae_sweep_runs_through_the_cli(shared_data, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in sorted((shared_data / "mnist").glob("*.gz")):
        (raw / gz.name).symlink_to(gz.resolve())
    short = yaml.safe_load(SWEEP.read_text())
    # one configuration of the grid, one seed, a few steps of a small net, a cheap probe
    short["model"].update(hidden=[32], noise_scale=1.0, content_sample="member", accumulate=True)
    short["train"].update(steps=20, batch_size=64, log_every=10, checkpoint_every=20)
    short["eval"] = {"metrics": {"probe": {"num_train": 300, "num_test": 200, "group_sizes": [1, 2]}}}
    short["sweep"].update(seeds=[0], resources={"cpu": 1}, storage=str(tmp_path / "results"))
    path = tmp_path / "mlvae_tiny.yaml"
    path.write_text(yaml.safe_dump(short, sort_keys=False))
    r = subprocess.run(
        [str(VAERAY), "sweep", str(path), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=tmp_path, timeout=400, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "results" / "mlvae_mnist" / "results.parquet")
    assert len(df) == 1 and df["model.name"].iloc[0] == "ml_vae" and df["status"].iloc[0] == "completed"
    row = df.iloc[0]
    assert row["step"] == 20 and 0 <= row["probe_content_accuracy"] <= 1 and 0 <= row["probe_style_accuracy"] <= 1
    assert row["probe_content_accuracy_k1"] == row["probe_content_accuracy"] and "probe_content_accuracy_k2" in df
    assert "probe_content_accuracy (max)" in r.stdout
