"""The tiny cross-family study through `vaeray sweep`, then `vaeray report`: one row per configuration with
mean ± CI over the seeds, one row per family present, CSV + LaTeX + PNG written."""

from __future__ import annotations

import re

import matplotlib.image as mpimg
import pytest
import pandas as pd
import yaml

from vaeray import results
from vaeray.report import figures
from vaeray.report.api import family_of

from .conftest import REPO, run_vaeray


def section(markdown: str, title: str) -> list[str]:
    """The table rows under a '### <title...>' heading."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("### ") and title in line)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("### "):
            break
        if line.startswith("| ") and not line.startswith("| rank"):
            rows.append(line)
    return rows


def test_load_has_one_row_per_trial_with_every_column(family_sweep):
    df = results.load(str(family_sweep))
    shipped = yaml.safe_load((REPO / "sweeps" / "families_dsprites.yaml").read_text())
    models = [m["name"] for m in shipped["model"]["grid"]]
    assert len(df) == len(models) * 2 and sorted(set(df["model"])) == sorted(models)
    assert (df["status"] == "completed").all() and (df["steps"] == 20).all() and (df["device"] == "cpu").all()
    assert df["mig"].between(0, 1).all() and (df["nll"] > 0).all() and (df["wall_time_s"] > 0).all()
    assert {"model.beta", "model.gamma", "train.lr", "best_mig", "best_nll"} <= set(df.columns)
    assert (df["best_mig"] >= df["mig"] - 1e-12).all()  # the best over the reports includes the final one
    assert set(df["dataset"]) == {"reporttest_grid_groups"} and set(df["sweep"]) == {"families_dsprites"}
    # every family is in the headline study, ML-VAE included (the grouped data with group_size null)
    families = {family_of(m) for m in df["model"]}
    assert len(families) == 5 and "multilevel" in families, families


def test_report_prints_configurations_and_families_and_writes_files(family_sweep, tmp_path):
    out = tmp_path / "report"
    r = run_vaeray("report", str(family_sweep), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    df = results.load(str(family_sweep))
    configs = section(r.stdout, "configurations")
    assert len(configs) == df["config_hash"].nunique()
    for row in configs:  # MIG and NLL cells: mean ± CI over the 2 seeds
        assert len(re.findall(r"± [0-9.]+ \(2\)", row)) >= 2, row
    families = section(r.stdout, "Families")
    present = {family_of(m) for m in df["model"]}
    assert len(families) == len(present) and {row.split("|")[3].strip() for row in families} == present
    assert "Ranked by mig (max)" in r.stdout  # the sweep's own metric
    assert "ELBO" in r.stdout and (df["elbo"] <= -df["nll"] + 1.0).all()  # the likelihood table has both

    table = pd.read_csv(out / f"configurations_{family_sweep.name}.csv")
    agg = results.aggregate(df, ["mig"]).set_index("config_hash")
    for _, row in table.iterrows():  # the CSV carries the numbers behind the Markdown cells
        assert row["mig_mean"] == agg.loc[row["config_hash"], "mig_mean"] and row["mig_count"] == 2
    tex = (out / "families.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "$\\pm$" in tex
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"fig_mig_vs_model_beta.png", "fig_learning_curves_loss.png", "fig_tradeoff_mig_nll.png"} <= set(pngs)
    # the headline bar charts: one bar per family, its best configuration's seed mean, as in families.csv
    assert {"fig_families_mig.png", "fig_families_nll.png"} <= set(pngs)
    best = pd.read_csv(out / "families.csv")
    bars = figures.by_family(df, "mig", "max").axes[0]
    assert [p.get_height() for p in bars.patches] == pytest.approx(list(best["mig_mean"]))
    assert [t.get_text().split("\n")[0] for t in bars.get_xticklabels()] == list(best["family"])
    for name in pngs:
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500 and image.std() > 0.01
    assert (out / "report.md").read_text() == r.stdout


def test_several_sweeps_in_one_report(family_sweep, tmp_path):
    from vaeray.report.compose import build

    from .test_api import make_sweep

    hand = tmp_path / "hand"
    make_sweep(hand)  # beta_vae_h with beta 1 / 4 (+ one running, one pending trial)
    report = build([str(family_sweep), str(hand)], out=str(tmp_path / "out"))
    assert [t.name for t in report.tables][:3] == [f"configurations_{family_sweep.name}", "configurations_hand", "families"]
    assert set(report.frame["sweep"]) == {family_sweep.name, "hand"}
    hand_rows = section(report.markdown, "Sweep hand")
    assert len(hand_rows) == 3 and "+1 error" in hand_rows[[("| 4 |" in r or "| 4.0 |" in r) for r in hand_rows].index(True)]
    figs = sorted(p.name for p in (tmp_path / "out").glob("fig_*_vs_*.png"))
    # each sweep's figures against what it swept: beta in both, gamma only in the family study
    assert "fig_hand_mig_vs_model_beta.png" in figs and f"fig_{family_sweep.name}_mig_vs_model_gamma.png" in figs
    assert not any("hand" in f and "gamma" in f for f in figs) and not any("train_steps" in f for f in figs)
