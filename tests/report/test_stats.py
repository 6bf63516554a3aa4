"""Seed aggregation on hand-made results tables: means, deviations and t intervals against scipy.stats,
failed and still-running trials left out, ties where intervals overlap, the paired comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from vaeray import results
from vaeray.report.tables import pm, rounded

VALUES = {"a": [0.10, 0.20, 0.30, 0.35], "b": [0.50, 0.52, 0.49, 0.55], "c": [0.31, 0.12, 0.2, 0.26]}


def table(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = [
        {"sweep": "s", "config_hash": cell, "seed": seed, "status": "completed", "family": "f", "model": "vae",
         "model.beta": {"a": 1.0, "b": 4.0, "c": 8.0}[cell], "mig": v}
        for cell, values in VALUES.items() for seed, v in enumerate(values)
    ]  # fmt: skip
    return pd.DataFrame(rows + (extra or []))


def test_mean_std_and_t_interval_match_scipy():
    agg = results.aggregate(table(), ["mig"]).set_index("config_hash")
    for cell, values in VALUES.items():
        x = np.array(values)
        lo, hi = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
        r = agg.loc[cell]
        assert r["mig_mean"] == pytest.approx(x.mean()) and r["mig_std"] == pytest.approx(x.std(ddof=1))
        assert (r["mig_lo"], r["mig_hi"]) == pytest.approx((lo, hi)) and r["mig_count"] == 4
        assert r["mig_ci"] == pytest.approx((hi - lo) / 2)
    assert agg.loc["a", "model.beta"] == 1.0  # the varying hyperparameter is carried along


def test_errored_running_and_pending_trials_are_counted_but_not_averaged():
    extra = [
        {"sweep": "s", "config_hash": "a", "seed": 4, "status": "error", "error": "DivergenceError: nan", "mig": 99.0},
        {"sweep": "s", "config_hash": "a", "seed": 5, "status": "running", "mig": -99.0},
        {"sweep": "s", "config_hash": "a", "seed": 6, "status": "pending", "mig": math.nan},
        {"sweep": "s", "config_hash": "a", "seed": 7, "status": "stopped", "mig": 0.4},
    ]
    r = results.aggregate(table(extra), ["mig"]).set_index("config_hash").loc["a"]
    x = np.array([*VALUES["a"], 0.4])  # completed + stopped (early stopping) only
    assert r["mig_mean"] == pytest.approx(x.mean()) and r["mig_count"] == 5
    assert (r["n_seeds"], r["n_completed"], r["n_stopped"], r["n_error"], r["n_running"], r["n_pending"]) == (8, 4, 1, 1, 1, 1)


def test_one_seed_has_no_interval_and_no_seed_has_nothing():
    df = pd.DataFrame([{"sweep": "s", "config_hash": "x", "seed": 0, "status": "completed", "mig": 0.3},
                       {"sweep": "s", "config_hash": "y", "seed": 0, "status": "error", "mig": math.nan}])
    agg = results.aggregate(df, ["mig"]).set_index("config_hash")
    assert agg.loc["x", "mig_mean"] == 0.3 and math.isnan(agg.loc["x", "mig_ci"]) and agg.loc["x", "mig_count"] == 1
    assert agg.loc["y", "mig_count"] == 0 and math.isnan(agg.loc["y", "mig_mean"])
    ranked = results.rank(agg.reset_index(), "mig", "max")
    assert list(ranked["config_hash"]) == ["x"] and list(ranked["tied"]) == ["?"]  # y has no value: unranked


def test_ranking_marks_ties_exactly_where_intervals_overlap():
    agg = results.aggregate(table(), ["mig"])
    ranked = results.rank(agg, "mig", "max")
    assert list(ranked["config_hash"]) == ["b", "a", "c"] and list(ranked["rank"]) == [1, 2, 3]
    iv = {r["config_hash"]: (r["mig_lo"], r["mig_hi"]) for _, r in ranked.iterrows()}
    overlap = lambda p, q: iv[p][0] <= iv[q][1] and iv[q][0] <= iv[p][1]  # noqa: E731
    assert not overlap("b", "c") and not overlap("b", "a") and overlap("a", "c")  # the data make b clearly best
    assert list(ranked["tied"]) == ["", "3", "2"]
    assert list(results.rank(agg, "mig", "min")["config_hash"]) == ["c", "a", "b"]


def test_paired_comparison_matches_scipy_over_shared_seeds_only():
    extra = [{"sweep": "s", "config_hash": "b", "seed": 9, "status": "completed", "mig": 0.9},  # a has no seed 9
             {"sweep": "s", "config_hash": "a", "seed": 3, "status": "error", "mig": 0.0}]  # an errored duplicate
    df = table(extra)
    df = df[~((df["config_hash"] == "a") & (df["seed"] == 3) & (df["status"] == "completed"))]  # a's seed 3 failed
    p = results.paired(df, "b", "a", "mig")
    xa, xb = np.array(VALUES["a"][:3]), np.array(VALUES["b"][:3])
    assert p.seeds == (0, 1, 2)
    t = st.ttest_rel(xb, xa)
    assert (p.t, p.p_value) == pytest.approx((t.statistic, t.pvalue))
    assert p.mean_difference == pytest.approx((xb - xa).mean())
    assert p.ci == pytest.approx(st.t.ppf(0.975, 2) * st.sem(xb - xa))
    assert "paired seeds" in str(p)
    with pytest.raises(ValueError, match="share 1 finished seed"):
        results.paired(df[df["seed"].isin([0, 9])], "b", "a", "mig")


def test_mean_ci_cells_round_to_the_interval():
    assert rounded(779.5, 117.6) == "780 ± 120"
    assert rounded(0.08289, 0.04767) == "0.083 ± 0.048"
    assert pm(0.5, math.nan, 1) == "0.5 (n=1)" and pm(math.nan, math.nan, 0) == "-"
