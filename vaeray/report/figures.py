"""Figures of a sweep: each metric against each swept numeric hyperparameter with seed bands, learning curves,
and the disentanglement–likelihood trade-off across models and families.

Every function returns a matplotlib ``Figure`` built with the object API (no pyplot state: headless, in
notebooks, in tests). Bands are the 95% t interval over seeds (:func:`vaeray.report.stats.interval`); the
seeds themselves are drawn as dots where there are few enough to see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .stats import COUNTED, aggregate, interval
from .tables import label

MARKERS = "osD^vP*Xh<>"


def _line_groups(df: pd.DataFrame, x: str, varying: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """Rows that have ``x``, one line per model and per setting of the other hyperparameters that vary
    among those rows."""
    df = df[pd.to_numeric(df[x], errors="coerce").notna()]
    others = ["model"] if "model" in df else []
    others += [c for c in varying if c not in (x, "model.name") and df[c].astype(str).nunique() > 1]
    if not others or df.empty:
        return [("", df)]
    keys = df[others].apply(lambda r: ", ".join(f"{c.split('.', 1)[-1]}={v}" if c != "model" else str(v) for c, v in r.items()), axis=1)
    return [(str(k), g) for k, g in df.groupby(keys, sort=True)]


def _spans_decades(values: pd.Series) -> bool:
    """A log axis for ``values``: all positive and spanning more than a factor of 20."""
    return len(values) > 0 and values.min() > 0 and values.max() / values.min() > 20


def metric_vs_hyperparameter(df: pd.DataFrame, metric: str, x: str, varying: Sequence[str]) -> Figure:
    """``metric`` against hyperparameter ``x``: per line (the other varying settings) the seed mean and its 95%
    t interval as a band, seeds as dots. A log axis where ``x`` spans more than a factor of 20."""
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    counted = df[df["status"].isin(COUNTED)]
    for i, (name, group) in enumerate(_line_groups(counted, x, varying)):
        xs = pd.to_numeric(group[x], errors="coerce")
        pts = sorted(v for v in xs.dropna().unique())
        stats = [interval(pd.to_numeric(group.loc[xs == v, metric], errors="coerce").tolist()) for v in pts]
        mean = np.array([s[0] for s in stats])
        half = np.array([0.0 if math.isnan(s[2]) else s[2] for s in stats])
        line = ax.errorbar(pts, mean, yerr=half, marker=MARKERS[i % len(MARKERS)], capsize=4, label=name or None).lines[0]
        if len(pts) > 1:
            ax.fill_between(pts, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.plot(xs, pd.to_numeric(group[metric], errors="coerce"), ".", color=line.get_color(), alpha=0.5)
    if _spans_decades(pd.to_numeric(counted[x], errors="coerce").dropna()):
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(label(metric))
    ax.set_title(f"{label(metric, units=False)} vs {x}\n(mean, 95% t interval over seeds as bars/band; dots: seeds)", fontsize=10)
    if any(name for name, _ in _line_groups(counted, x, varying)):
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def learning_curves(history: pd.DataFrame, frame: pd.DataFrame, metric: str = "loss", max_lines: int = 12) -> Figure:
    """``metric`` per training step, one line per configuration: the mean over its seeds at each logged step,
    and the 95% t interval over seeds as a band (from ``load_history``)."""
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.add_subplot()
    names = _config_names(frame)
    h = history[history[metric].notna()] if metric in history else history.iloc[:0]
    # losses of different scales on one axis (ML-VAE's is per group, the others' per image): log y by the rule
    # of the metric figures' x axes
    log_y = _spans_decades(pd.to_numeric(h[metric], errors="coerce").dropna() if len(h) else pd.Series(dtype=float))
    for cell, group in list(h.groupby("config_hash", sort=False))[:max_lines]:
        per_step = group.groupby("step")[metric].apply(list)
        steps = per_step.index.to_numpy(float)
        stats = [interval(v) for v in per_step]
        mean = np.array([s[0] for s in stats])
        half = np.array([0.0 if math.isnan(s[2]) else s[2] for s in stats])
        line = ax.plot(steps, mean, label=names.get(cell, cell))[0]
        ax.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.12, linewidth=0)
    ax.set_xlabel("training step")
    ax.set_ylabel(label(metric) + (", log scale" if log_y else ""))
    if log_y:
        ax.set_yscale("log")  # a band reaching below zero is cut at the axis
    ax.set_title(f"Learning curves: {label(metric, units=False)}\n(mean and 95% t interval over seeds)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.grid(alpha=0.3)
    return fig


def tradeoff(df: pd.DataFrame, disentanglement: str, likelihood: str) -> Figure:
    """Each configuration as a point (seed means, 95% t intervals as error bars) with likelihood on x and
    disentanglement on y; colour is the family, marker the model."""
    agg = aggregate(df, [disentanglement, likelihood])
    agg = agg[(agg[f"{disentanglement}_count"] > 0) & (agg[f"{likelihood}_count"] > 0)]
    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.add_subplot()
    families = sorted(agg["family"].astype(str).unique()) if "family" in agg else [""]
    models = sorted(agg["model"].astype(str).unique()) if "model" in agg else [""]
    colors = {f: f"C{i % 10}" for i, f in enumerate(families)}
    for _, r in agg.iterrows():
        fam, mod = str(r.get("family", "")), str(r.get("model", ""))
        ax.errorbar(
            r[f"{likelihood}_mean"], r[f"{disentanglement}_mean"],
            xerr=0 if math.isnan(r[f"{likelihood}_ci"]) else r[f"{likelihood}_ci"],
            yerr=0 if math.isnan(r[f"{disentanglement}_ci"]) else r[f"{disentanglement}_ci"],
            fmt=MARKERS[models.index(mod) % len(MARKERS)], color=colors.get(fam, "C0"), capsize=3, alpha=0.85,
        )  # fmt: skip
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[f], marker="o", linestyle="", label=f"family: {f}") for f in families]
    handles += [Line2D([], [], color="gray", marker=MARKERS[i % len(MARKERS)], linestyle="", label=f"model: {m}") for i, m in enumerate(models)]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xlabel(label(likelihood) + ("  (lower is better)" if likelihood in ("nll", "bits_per_dim") else ""))
    ax.set_ylabel(label(disentanglement) + "  (higher is better)")
    ax.set_title(f"Disentanglement–likelihood trade-off: {label(disentanglement, False)} vs {label(likelihood, False)}\n"
                 "(one point per configuration; bars: 95% t interval over seeds)", fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3)
    return fig


def _config_names(frame: pd.DataFrame) -> dict[str, str]:
    from .stats import varying_columns

    varying = [c for c in varying_columns(frame) if c != "model.name" and frame[c].dropna().astype(str).nunique() > 1]
    out = {}
    for cell, g in frame.groupby("config_hash", sort=False):
        r = g.iloc[0]
        parts = [str(r.get("model", ""))] + [f"{c.split('.', 1)[-1]}={r[c]}" for c in varying if pd.notna(r[c])]
        out[cell] = ", ".join(p for p in parts if p) or cell
    return out


def by_family(df: pd.DataFrame, metric: str, mode: str = "min") -> Figure:
    """Per family, its best configuration on ``metric`` (seed mean, 95% t interval as the error bar; seeds as
    dots): the headline bar chart of the cross-family study."""
    from .stats import rank

    ranked = rank(aggregate(df, [metric]), metric, mode)
    best = ranked.groupby("family", sort=False).head(1).reset_index(drop=True)
    fig = Figure(figsize=(max(4.0, 1.3 * len(best) + 1.5), 3.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(best))
    ax.bar(x, best[f"{metric}_mean"], yerr=best[f"{metric}_ci"].fillna(0.0), capsize=5, color=[f"C{i % 10}" for i in x], alpha=0.8)
    counted = df[df["status"].isin(COUNTED)]
    for i, cell in enumerate(best["config_hash"]):
        values = pd.to_numeric(counted.loc[counted["config_hash"] == cell, metric], errors="coerce")
        ax.plot(np.full(len(values), i), values, "k.", alpha=0.6)
    ax.set_xticks(x, [f"{f}\n({m})" for f, m in zip(best["family"], best["model"])], fontsize=8)
    ax.set_xlabel("family (its best model)")
    ax.set_ylabel(label(metric))
    ax.set_title(f"{label(metric, units=False)} per family: best configuration\n(mean, 95% t interval over seeds; dots: seeds)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return fig
