"""``vaeray report``: sweeps on storage -> Markdown tables on stdout, CSV + LaTeX tables and PNG figures on disk.

What a report holds, in order: trial counts by status; per sweep, one row per configuration ranked by the
sweep's metric (ties marked where 95% intervals overlap) with every disentanglement, likelihood and family
metric as ``mean ± CI (n)``; one row per family (its best configuration); published numbers beside ours for
every paper table the sweeps touch; errored trials with their reasons. Figures: each shown metric against each
swept numeric hyperparameter, learning curves, and the disentanglement–likelihood trade-off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import yaml

from ..storage import join_uri, read_bytes
from . import figures, paper, stats
from .api import Progress, SweepNotFound, load, load_history, sweep_root
from .tables import GROUPS, Table, configuration_table, present

HIGHER_IS_BETTER = {m for m in GROUPS["disentanglement"]} | {"elbo", "content_accuracy", "style_accuracy", "capcorr"}


@dataclass
class Report:
    markdown: str
    frame: pd.DataFrame
    tables: list[Table] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def sweep_settings(root: str) -> dict:
    """The ``sweep:`` section of the sweep file as last run (``sweep.yaml`` in storage), or {}."""
    data = read_bytes(join_uri(root, "sweep.yaml"))
    try:
        body = yaml.safe_load(data) if data else None
    except yaml.YAMLError:
        return {}
    return (body or {}).get("sweep") or {} if isinstance(body, dict) else {}


def shown_metrics(df: pd.DataFrame) -> list[str]:
    metrics = [m for g in ("disentanglement", "likelihood", "family") for m in present(df, g)]
    return metrics or present(df, "training")


def headline(df: pd.DataFrame, settings: dict, metric: str | None, mode: str | None) -> tuple[str, str]:
    """The ranking metric: asked for, else the sweep's ``sweep.metric``, else the first shown metric."""
    chosen = metric or settings.get("metric")
    if not chosen or chosen not in df or pd.to_numeric(df[chosen], errors="coerce").isna().all():
        shown = shown_metrics(df)
        chosen = shown[0] if shown else "loss"
        mode = mode or ("max" if chosen in HIGHER_IS_BETTER else "min")
    return chosen, mode or settings.get("mode") or ("max" if chosen in HIGHER_IS_BETTER else "min")


def numeric_varying(df: pd.DataFrame, varying: Sequence[str]) -> list[str]:
    out = []
    for c in varying:
        values = df[c].dropna()
        nums = pd.to_numeric(values, errors="coerce")
        if len(values) and nums.notna().all() and values.map(lambda v: not isinstance(v, bool)).all() and nums.nunique() > 1:
            out.append(c)
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def build(
    sweeps: Sequence[str], *, out: str | None = None, storage: str | None = None, metric: str | None = None,
    mode: str | None = None, progress: Progress | None = None, figures_too: bool = True,
) -> Report:  # fmt: skip
    """Read ``sweeps`` and assemble the report; with ``out``, write every table (CSV, LaTeX), ``report.md``
    and the figures there. Raises :class:`SweepNotFound` for a missing sweep or one with no finished trial."""
    frames = []
    for s in sweeps:
        one = load(s, storage=storage, progress=progress)
        if not one["status"].isin(stats.COUNTED).any():
            raise SweepNotFound(f"sweep {s} ({sweep_root(s, storage)}) has no finished trial yet")
        frames.append(one)
    df = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    settings = sweep_settings(sweep_root(sweeps[0], storage))
    key, key_mode = headline(df, settings, metric, mode)
    metrics = shown_metrics(df)
    if key not in metrics:
        metrics = [key, *metrics]

    counts = df["status"].value_counts()
    status = ", ".join(f"{counts.get(s, 0)} {s}" for s in stats.STATUSES if counts.get(s, 0))
    lines = [f"# vaeray report: {', '.join(map(str, sweeps))}", "",
             f"{len(df)} trials ({status}). Cells: mean ± half-width of the 95% Student-t interval over seeds "
             f"(number of seeds); errored, running and pending trials are not in the statistics. "
             f"Ranked by {key} ({key_mode}); 'tied with' lists the ranks whose intervals overlap."]  # fmt: skip
    tables: list[Table] = []
    all_agg = []
    for name, sub in df.groupby("sweep", sort=False):
        agg = stats.aggregate(sub, metrics)
        all_agg.append(agg)
        # shown: settings with two or more values among the configurations that have them (a default of one
        # model, such as FactorVAE's discriminator width, is not a swept hyperparameter)
        varying = [c for c in stats.varying_columns(sub) if c != "model.name" and sub[c].dropna().astype(str).nunique() > 1]
        ranked = stats.rank(agg, key, key_mode)
        unranked = agg[agg[f"{key}_count"] == 0]  # nothing finished on the key (all errored / running)
        ranked = pd.concat([ranked, unranked.assign(rank="-", tied="")], ignore_index=True) if len(unranked) else ranked
        tables.append(configuration_table(f"configurations_{_slug(str(name))}", f"Sweep {name}: configurations", ranked, varying, metrics))
    agg = pd.concat(all_agg, ignore_index=True, sort=False)
    ranked = stats.rank(agg, key, key_mode)
    best = ranked.groupby("family", sort=False).head(1).reset_index(drop=True)
    best["rank"], best["tied"] = range(1, len(best) + 1), stats.rank(best.drop(columns=["rank", "tied"]), key, key_mode)["tied"]
    tables.append(configuration_table("families", f"Families: the best configuration of each (by {key})", best,
                                      [], metrics, lead=("family", "model", "sweep")))  # fmt: skip
    tables += paper.comparisons(df)
    for t in tables:
        lines += ["", t.markdown()]
    errors = df[df["status"] == "error"]
    if len(errors):
        lines += ["", "### Errored trials", ""] + [f"- {r['sweep']}/{r['trial_id']}: {r['error']}" for _, r in errors.iterrows()]
    report = Report("", df, tables)
    if out:
        for t in tables:
            report.files += t.write(out)
        if figures_too:
            report.files += _figures(df, sweeps, storage, metrics, key, key_mode, out)
        lines += ["", "### Files", ""] + [f"- {os.path.relpath(f, out)}" for f in report.files]
        path = os.path.join(out, "report.md")
        report.files.append(path)
    report.markdown = "\n".join(lines) + "\n"
    if out:
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write(report.markdown)
    return report


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=110)
    return path


def _figures(
    df: pd.DataFrame, sweeps: Sequence[str], storage: str | None, metrics: Sequence[str], key: str, key_mode: str, out: str
) -> list[str]:  # fmt: skip
    os.makedirs(out, exist_ok=True)
    files = []
    several = df["sweep"].nunique() > 1
    for name, sub in df.groupby("sweep", sort=False):  # swept: what varies within a sweep, not between sweeps
        varying = stats.varying_columns(sub)
        prefix = f"fig_{_slug(str(name))}_" if several else "fig_"
        for x in numeric_varying(sub, varying):
            for m in [m for m in metrics[:6] if m in sub and sub[m].notna().any()]:
                fig = figures.metric_vs_hyperparameter(sub, m, x, varying)
                files.append(_save(fig, os.path.join(out, f"{prefix}{_slug(m)}_vs_{_slug(x)}.png")))
    history = load_history(list(sweeps), storage=storage)
    for m in dict.fromkeys(["loss", key]):
        if m in history and history.dropna(subset=[m]).groupby("trial_id")["step"].nunique().max() > 1:
            files.append(_save(figures.learning_curves(history, df, m), os.path.join(out, f"fig_learning_curves_{_slug(m)}.png")))
    dis, lik = present(df, "disentanglement"), present(df, "likelihood")
    if dis and lik:
        files.append(_save(figures.tradeoff(df, dis[0], lik[0]), os.path.join(out, f"fig_tradeoff_{dis[0]}_{lik[0]}.png")))
    if df["family"].nunique() > 1:  # the cross-family study's headline: each family's best, on the key and on NLL
        bars = {key: key_mode}
        for m in lik[:1]:
            bars.setdefault(m, "max" if m in HIGHER_IS_BETTER else "min")
        for m, m_mode in bars.items():
            files.append(_save(figures.by_family(df, m, m_mode), os.path.join(out, f"fig_families_{_slug(m)}.png")))
    return files

