"""Seed aggregation: per configuration mean, standard deviation, a t-based 95% confidence interval and the
count; rankings that mark ties where intervals overlap; a paired comparison of two configurations over the
seeds they share.

The interval is Student's t: ``mean ± t_{0.975, n-1} · s / √n`` with ``s`` the sample standard deviation
(ddof=1), the usual interval for a mean over a handful of seeds when the seed-to-seed spread is unknown.
It needs n ≥ 2; with one seed the interval is NaN (never a zero-width interval pretending to be certain).
Errored trials never count; ``running`` and ``pending`` trials are counted separately and left out of the
statistics (their values are from an earlier step). Stopped trials (early stopping) count, and the table says
how many there were, because their values come from an earlier step than completed ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from ..sweep.results import varying_columns as ledger_varying_columns
from .api import FIRST, NOT_METRICS

CONFIDENCE = 0.95
COUNTED = ("completed", "stopped")  # statuses whose final metrics enter the statistics
STATUSES = ("completed", "stopped", "error", "running", "pending")
IDENTITY = ("sweep", "config_hash", "family", "model", "dataset")


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """(mean, std ddof=1, half-width of the t interval, n) of the finite values; NaN where undefined."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    std = float(x.std(ddof=1))
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return mean, std, half, n


def config_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if "." in c and c.split(".", 1)[0] in ("model", "data", "train", "eval")]


def metric_columns(df: pd.DataFrame) -> list[str]:
    skip = set(FIRST) | set(config_columns(df)) | set(NOT_METRICS) | {"experiment"}
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def varying_columns(df: pd.DataFrame) -> list[str]:
    """Hyperparameter columns whose value differs between configurations (within the frame): the sweep
    layer's rule over this frame's config columns."""
    return ledger_varying_columns(df, config_columns(df))


def aggregate(df: pd.DataFrame, metrics: Sequence[str] | None = None, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per (sweep, configuration): identity, varying hyperparameters, trial counts by status, and per
    metric ``<m>_mean``, ``<m>_std``, ``<m>_ci`` (half-width of the t interval), ``<m>_lo``, ``<m>_hi`` and
    ``<m>_count`` over the completed and stopped seeds."""
    metrics = list(metrics) if metrics is not None else metric_columns(df)
    if df.empty:
        return pd.DataFrame(columns=["config_hash"])
    varying = varying_columns(df)
    keys = [c for c in ("sweep", "config_hash") if c in df]
    rows = []
    for _, group in df.groupby(keys, sort=False, dropna=False):
        first = group.iloc[0]
        row: dict[str, Any] = {c: first[c] for c in IDENTITY if c in group}
        for c in varying:
            row[c] = first[c]
        row["n_seeds"] = len(group)
        for status in STATUSES:
            row[f"n_{status}"] = int((group["status"] == status).sum())
        counted = group[group["status"].isin(COUNTED)]
        for m in metrics:
            values = pd.to_numeric(counted[m], errors="coerce").tolist() if m in counted else []
            mean, std, half, n = interval(values, confidence)
            row.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_ci": half, f"{m}_lo": mean - half,
                        f"{m}_hi": mean + half, f"{m}_count": n})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def rank(agg: pd.DataFrame, metric: str, mode: str = "max") -> pd.DataFrame:
    """Configurations best first by ``<metric>_mean`` with ``rank`` (1 = best) and ``tied``: the ranks of
    the others whose confidence interval overlaps this one's (an empty string where it is clearly apart).
    A configuration with one seed has no interval; its ties are unknown (``"?"``)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    out = agg[agg[f"{metric}_count"] > 0].sort_values(f"{metric}_mean", ascending=mode == "min", kind="stable")
    out = out.reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    lo, hi = out[f"{metric}_lo"].to_numpy(), out[f"{metric}_hi"].to_numpy()
    tied = []
    for i in range(len(out)):
        if not np.isfinite(lo[i]):
            tied.append("?")
            continue
        others = [str(j + 1) for j in range(len(out)) if j != i and np.isfinite(lo[j]) and lo[i] <= hi[j] and lo[j] <= hi[i]]
        tied.append(",".join(others))
    out["tied"] = tied
    return out


@dataclass(frozen=True)
class Paired:
    """Two configurations compared over the seeds both ran (``a - b`` per seed)."""

    metric: str
    seeds: tuple[int, ...]
    mean_difference: float
    ci: float  # half-width of the t interval of the mean difference
    t: float
    p_value: float  # two-sided paired t-test (scipy.stats.ttest_rel)
    wilcoxon_p: float  # two-sided Wilcoxon signed-rank (scipy.stats.wilcoxon); NaN with < 2 non-zero differences

    def __str__(self) -> str:
        return (f"{self.metric}: a - b = {self.mean_difference:.4g} ± {self.ci:.2g} (95% CI, n={len(self.seeds)} "
                f"paired seeds); t = {self.t:.3g}, p = {self.p_value:.3g}")  # fmt: skip


def paired(df: pd.DataFrame, a: str, b: str, metric: str) -> Paired:
    """Compare configurations ``a`` and ``b`` (config hashes) on ``metric`` over the seeds both finished.

    Pairing by seed removes what the seed contributes to both (the same data order and initialisation
    draws), which is why the paired test is stronger than comparing the two intervals."""
    counted = df[df["status"].isin(COUNTED)]
    xa = counted[counted["config_hash"] == a].set_index("seed")[metric]
    xb = counted[counted["config_hash"] == b].set_index("seed")[metric]
    seeds = sorted(set(xa.dropna().index) & set(xb.dropna().index))
    if len(seeds) < 2:
        raise ValueError(f"configurations {a} and {b} share {len(seeds)} finished seed(s) on {metric}; need at least 2")
    va, vb = xa.loc[seeds].to_numpy(float), xb.loc[seeds].to_numpy(float)
    test = st.ttest_rel(va, vb)
    mean, _, half, _ = interval(list(va - vb))
    try:
        wp = float(st.wilcoxon(va, vb).pvalue) if np.count_nonzero(va - vb) >= 2 else math.nan
    except ValueError:
        wp = math.nan
    return Paired(metric, tuple(int(s) for s in seeds), mean, half, float(test.statistic), float(test.pvalue), wp)
