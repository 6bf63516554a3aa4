"""The packaged published numbers: every row has a source and its kind, keys match exactly the setting they
name, and a comparison says ran / not run / not in vaeray."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vaeray.report import paper


def test_published_rows_carry_source_and_kind():
    pub = paper.published()
    assert len(pub) >= 50 and set(pub["source_kind"]) <= {"primary", "third-party"}
    assert (pub["source_ref"].str.len() > 10).all() and pub["value"].notna().all()
    row = pub[(pub["model_or_method"] == "S-VAE") & pub["setting"].str.startswith("d=10;") & pub["metric"].str.startswith("LL")].iloc[0]
    assert (row["value"], row["std"]) == (-93.16, 0.31)
    assert (row["vaeray_model"], row["vaeray_where"], row["vaeray_metric"], row["vaeray_sign"]) == ("svae", "model.spheres=[9]", "nll", -1)


def frame(rows):
    base = {"sweep": "s", "status": "completed", "family": "hyperspherical", "dataset": "dynamic_mnist"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_matching_needs_every_condition():
    pub = paper.published()
    row = pub[(pub["vaeray_model"] == "svae") & (pub["vaeray_where"] == "model.spheres=[9]")].iloc[0]
    df = frame([
        {"config_hash": "a", "seed": 0, "model": "svae", "model.spheres": "[9]", "nll": 93.0},
        {"config_hash": "b", "seed": 0, "model": "svae", "model.spheres": "[4]", "nll": 99.0},
        {"config_hash": "c", "seed": 0, "model": "vae", "model.latent_dim": 10, "nll": 95.0},
    ])  # fmt: skip
    assert list(paper.matches(df, row)["config_hash"]) == ["a"]
    assert paper.matches(df.drop(columns=["model.spheres"]), row).empty


def test_comparison_converts_sign_and_lists_rows_not_run():
    df = frame([{"config_hash": "a", "seed": s, "model": "svae", "model.spheres": "[9]", "nll": v} for s, v in enumerate([93.0, 93.4])])
    df = pd.concat([df, frame([{"config_hash": "a", "seed": 2, "model": "svae", "model.spheres": "[9]", "status": "error", "nll": math.nan}])])
    (table,) = [t for t in paper.comparisons(df) if "S-VAE" in t.title and "quoted" not in t.title]
    n = table.numbers
    ll = n[(n["model"] == "S-VAE") & n["setting"].str.startswith("d=10;") & n["metric"].str.startswith("LL")].iloc[0]
    assert ll["status"] == "ran" and ll["ours_mean"] == pytest.approx(-93.2) and ll["ours_count"] == 2  # the error left out
    assert ll["ours"] == "-93.20 ± 2.54 (2)"  # t(0.975, 1) · 0.2828 / √2 = 2.54
    elbo = n[(n["model"] == "S-VAE") & n["setting"].str.startswith("d=10;") & n["metric"].str.startswith("ELBO")].iloc[0]
    assert elbo["status"] == "ran, no elbo"
    assert (n["status"] == "not run").sum() == len(n) - 4  # the four d=10 S-VAE rows were run
    assert "row(s) of this table not run yet" in table.markdown()
    assert paper.comparisons(frame([{"config_hash": "z", "seed": 0, "model": "beta_tcvae", "nll": 1.0}])) == []
