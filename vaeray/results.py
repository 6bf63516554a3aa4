"""``vaeray.results``: the public results API (see docs/report.md).

    from vaeray import results
    df = results.load("quickstart")                 # one row per trial; several sweeps: load([...])
    agg = results.aggregate(df, ["mig"])            # per configuration: mean, std, 95% t interval, count
    results.rank(agg, "mig", "max")                 # best first, ties where intervals overlap
    results.paired(df, "a1b2c3d4e5", "0f9e8d7c6b", "mig")   # two configurations over their shared seeds
    results.load_history("quickstart")              # every report: the per-step curves
"""

from __future__ import annotations

from .report.api import DIRECTION, SweepNotFound, family_of, load, load_history, sweep_root, trial_dir
from .report.stats import Paired, aggregate, interval, metric_columns, paired, rank, varying_columns

__all__ = [
    "DIRECTION", "Paired", "SweepNotFound", "aggregate", "family_of", "interval", "load", "load_history",
    "metric_columns", "paired", "rank", "sweep_root", "trial_dir", "varying_columns",
]  # fmt: skip

