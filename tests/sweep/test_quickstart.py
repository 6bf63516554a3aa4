"""The shipped sweep files: quickstart runs end to end through the CLI (shortened), the headline file validates."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest
import yaml

from vaeray.sweep import spec as sw
from vaeray.sweep.dryrun import ClusterView, concurrency

from .conftest import REPO, VAERAY


@pytest.mark.slow
def test_quickstart_runs_through_the_cli_and_leaves_one_row_per_trial(tmp_path):
    shipped = yaml.safe_load((REPO / "sweeps" / "quickstart.yaml").read_text())
    short = yaml.safe_load((REPO / "sweeps" / "quickstart.yaml").read_text())
    # same models, data, seeds and scheduler kind; fewer steps and a cheaper MIG so CI stays fast
    short["train"].update(steps=300, log_every=50, checkpoint_every=100)
    short["eval"] = {"every": 100, "metrics": {"mig": {"num_train": 500}}}
    short["sweep"]["scheduler"].update(grace_period=100)
    short["sweep"]["storage"] = str(tmp_path / "results")
    path = tmp_path / "quickstart_short.yaml"
    path.write_text(yaml.safe_dump(short, sort_keys=False))
    assert short["model"] == shipped["model"] and short["data"] == shipped["data"]

    r = subprocess.run(
        [str(VAERAY), "sweep", str(path), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=tmp_path, timeout=400, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    spec = sw.load(path)
    df = pd.read_parquet(tmp_path / "results" / "quickstart" / "results.parquet")
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in spec.trials())  # (configuration, seed) rows
    assert set(df["model.name"]) == {"vae", "beta_vae_h"} and sorted(set(df["seed"])) == [0, 1]
    assert set(df["status"]) <= {"completed", "stopped"}
    finished = df[df["status"] == "completed"]
    assert len(finished) >= 2 and finished["mig"].between(0, 1).all() and (finished["step"] == 300).all()
    header = r.stdout.splitlines()[0]
    assert header.split()[:3] == ["config", "model.name", "model.beta"] and "mig (max)" in header
    assert "± " in r.stdout and "results:" in r.stdout

    # vaeray report: one row per configuration with mean ± CI over the two seeds; CSV, LaTeX and PNG written
    rep = subprocess.run(
        [str(VAERAY), "report", str(tmp_path / "results" / "quickstart"), "--out", str(tmp_path / "report")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert rep.returncode == 0, rep.stderr[-3000:]
    rows = [line for line in rep.stdout.split("### Families")[0].splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert len(rows) == 2 and all(" ± " in row and "(2)" in row for row in rows)
    written = {p.suffix for p in (tmp_path / "report").iterdir()}
    assert {".csv", ".tex", ".png", ".md"} <= written


def test_headline_sweep_is_thirty_betatcvae_trials_on_quarter_gpus():
    spec = sw.load(REPO / "sweeps" / "betatcvae_dsprites.yaml", storage="/tmp/unused")
    betas = sorted({c.config["model"]["beta"] for c in spec.configurations})
    assert betas == [1.0, 2.0, 4.0, 6.0, 8.0, 10.0] and spec.seeds == (0, 1, 2, 3, 4) and len(spec.trials()) == 30
    c = spec.configurations[0].config
    assert c["model"]["name"] == "beta_tcvae" and c["train"]["steps"] == 300_000 and c["train"]["batch_size"] == 64
    assert c["train"]["lr"] == 1e-4 and set(c["eval"]["metrics"]) == {"mig", "dci"}
    assert spec.resources.gpu == 0.25 and spec.scheduler.name == "none"
    assert concurrency(spec.resources, ClusterView("g5.xlarge", ((4.0, 1.0),))) == 4
    assert yaml.safe_load((REPO / "sweeps" / "betatcvae_dsprites.yaml").read_text())["sweep"]["storage"].startswith("s3://")
