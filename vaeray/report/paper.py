"""Published numbers next to ours.

``published.csv`` (packaged with vaeray) holds the numbers we know from papers, one row per (paper, table,
model, setting, metric), with the source each was read from and whether that source is the paper itself
(``primary``) or a third party quoting or reproducing it (``third-party``). Its ``vaeray_*`` columns key a row
to our results: the model and dataset names, conditions on config columns (``model.latent_dim=50;
eval.metrics.nll.k=5000``), the metric column and the sign that maps ours onto the paper's (the papers report
log-likelihoods, we report NLL: sign -1). A row with no ``vaeray_model`` describes a setting vaeray cannot run
(a two-stochastic-layer IWAE, say): it is listed, never matched.

To add a paper: append rows to ``published.csv`` with their source; nothing else changes.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from .stats import COUNTED, interval
from .tables import Table

SOURCE = "published.csv"


def published() -> pd.DataFrame:
    """The packaged table of published numbers (empty strings for missing keys)."""
    with resources.files(__package__).joinpath(SOURCE).open() as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    for col in ("value", "std", "vaeray_sign"):
        df[col] = pd.to_numeric(df[col].replace("", math.nan), errors="coerce")
    return df


def _value(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def matches(df: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The trials of ``df`` that ran the setting of a published row (empty if it has no vaeray key)."""
    if not row["vaeray_model"] or "model" not in df:
        return df.iloc[:0]
    keep = df["model"] == row["vaeray_model"]
    if row["vaeray_dataset"]:
        keep &= df["dataset"] == row["vaeray_dataset"]
    for cond in filter(None, (c.strip() for c in row["vaeray_where"].split(";"))):
        col, _, raw = cond.partition("=")
        want = yaml.safe_load(raw)
        if col not in df:
            return df.iloc[:0]
        keep &= df[col].map(lambda v: _equal(_value(v), want))
    return df[keep]


def _pm(mean: float, spread: float, what: str) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(spread) else f"{mean:.2f} ± {spread:.2f}{what}"


def comparisons(df: pd.DataFrame, table: pd.DataFrame | None = None) -> list[Table]:
    """One table per paper table that the results touch (a row's model and dataset appear in ``df``): every
    row of that paper table, published mean ± std beside our seed mean ± 95% CI where we ran the setting,
    "not run" where we did not, "not in vaeray" where no vaeray model implements it."""
    pub = published() if table is None else table
    if df.empty or "model" not in df:
        return []
    ran = set(zip(df["model"].astype(str), df["dataset"].astype(str)))
    touched = pub[[(m, d) in ran or (m in {x for x, _ in ran} and not d) for m, d in zip(pub["vaeray_model"], pub["vaeray_dataset"])]]
    out = []
    for (paper, tab), rows in pub.groupby(["paper", "table"], sort=False):
        if not set(rows.index) & set(touched.index):
            continue
        body, numbers, missing = [], [], 0
        for _, r in rows.iterrows():
            trials = matches(df, r)
            counted = trials[trials["status"].isin(COUNTED)]
            metric = r["vaeray_metric"]
            mean = half = math.nan
            n = 0
            if not r["vaeray_model"]:
                ours, status = "-", "not in vaeray"
            elif trials.empty:
                ours, status, missing = "-", "not run", missing + 1
            elif metric not in counted or counted[metric].isna().all():
                ours, status = "-", f"ran, no {metric or 'metric'}"
            else:
                mean, _, half, n = interval((r["vaeray_sign"] * pd.to_numeric(counted[metric])).tolist())
                ours, status = _pm(mean, half, f" ({n})"), "ran"
            published_text = _pm(r["value"], r["std"], "")
            body.append([r["model_or_method"], r["setting"], r["metric"], published_text, r["source_kind"], ours, status])
            numbers.append({"paper": paper, "table": tab, "model": r["model_or_method"], "setting": r["setting"],
                            "metric": r["metric"], "units": r["units"], "published_mean": r["value"], "published_std": r["std"],
                            "source_kind": r["source_kind"], "source_ref": r["source_ref"], "ours": ours,
                            "ours_mean": mean, "ours_ci": half, "ours_count": n, "status": status})  # fmt: skip
        stem = "paper_" + "".join(ch if ch.isalnum() else "_" for ch in f"{paper.split(' (')[0]}_{tab}").strip("_").lower()
        note = (f"Published: mean ± std as reported; ours: seed mean ± 95% t interval, in the paper's sign convention. "
                f"{missing} row(s) of this table not run yet.")  # fmt: skip
        headers = ["model", "setting", "metric", "published", "source", "ours", "status"]
        out.append(Table(stem, f"{paper}, {tab}", headers, body, pd.DataFrame(numbers), note))
    return out


def figure(table: Table):
    """Published mean ± std (x) against our seed mean ± 95% CI (y) for the rows of one paper table we ran;
    the diagonal is agreement."""
    from matplotlib.figure import Figure

    rows = table.numbers[table.numbers["status"] == "ran"]
    fig = Figure(figsize=(5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, (_, r) in enumerate(rows.iterrows()):
        mean, half = r["ours_mean"], 0.0 if math.isnan(r["ours_ci"]) else r["ours_ci"]
        std = r["published_std"] if isinstance(r["published_std"], float) and not math.isnan(r["published_std"]) else 0.0
        ax.errorbar(r["published_mean"], mean, xerr=std, yerr=half, fmt="o", capsize=4, color=f"C{i % 10}",
                    label=f"{r['model']}, {r['setting'][:40]}")  # fmt: skip
    if len(rows):
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8, label="agreement")
        ax.legend(fontsize=7)
    units = ", ".join(sorted(set(rows["units"]))) if len(rows) else ""
    ax.set_xlabel(f"published (mean ± std{', ' + units if units else ''})")
    ax.set_ylabel(f"ours (seed mean ± 95% CI{', ' + units if units else ''})")
    ax.set_title(f"{table.title}\nours vs published, rows we ran", fontsize=9)
    ax.grid(alpha=0.3)
    return fig

