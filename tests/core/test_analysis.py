"""The analysis notebooks run top to bottom on a real results table (their code cells, executed in order)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd

from vaeray.sweep import results

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "analysis").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


def test_sweep_results_notebook_runs(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    entries = [
        {"trial_id": f"{h}-s{s}", "config_hash": h, "seed": s, "status": "completed",
         "config": {"model": {"name": "vae", "beta": b}}, "metrics": {"mig": m, "loss": 1.0, "step": 10}}
        for h, b, s, m in [("a", 1, 0, 0.1), ("a", 1, 1, 0.2), ("b", 4, 0, 0.4), ("b", 4, 1, 0.5)]
    ]
    path = tmp_path / "results.parquet"
    results.frame(entries).to_parquet(path)
    monkeypatch.setenv("VAERAY_RESULTS", str(path))
    monkeypatch.setenv("VAERAY_METRIC", "mig")
    nb = json.loads((NOTEBOOKS[0].parent / "sweep_results.ipynb").read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "notebook", "exec"), scope)
    agg = scope["agg"]
    assert isinstance(agg, pd.DataFrame) and list(agg["mig_mean"].round(6)) == [0.15, 0.45]
