"""A sweep's results on storage: the ledger of finished trials, ``results.parquet`` and seed aggregation.

Layout under ``<storage>/<name>/`` (a local directory or a cloud URI such as ``s3://bucket/sweeps/name``)::

    sweep.yaml              the sweep file as last run (provenance)
    ledger/<id>.json        one entry per finished (configuration, seed): config, final metrics, status
    pending.json            the Tune experiment in flight; the next run restores it
    experiments.json        experiments that ran to the end (Optuna counts its configurations from it)
    experiments/exp-NNN/    Tune experiments; trial directories are named by trial id
    results.parquet         one row per (configuration, seed) of the current sweep file

The ledger, not Tune's experiment state, is the record of what is done: Tune cannot add trials to a restored
experiment, so extending a sweep launches a new experiment for the missing trials and results aggregate
across experiments. Every file is written whole through :mod:`vaeray.storage`, so a killed driver never leaves
a half-written entry. No ``ray`` here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config import flatten
from ..storage import delete, file_mode, filesystem, is_uri, join_uri, list_dir, read_json, write_bytes, write_json
from .identity import canonical_json, trial_id

LEDGER = "ledger"
PENDING = "pending.json"
HISTORY = "experiments.json"
EXPERIMENTS = "experiments"
RESULTS = "results.parquet"
SWEEP_COPY = "sweep.yaml"
STATUSES = ("completed", "stopped", "error")
NOT_SUMMARISED = ("step", "lr", "examples_per_s", "resumed_from", "time_total_s")
META = ("trial_id", "config_hash", "seed", "status", "error", "experiment", "resumed_from", "node_id", "device")

if TYPE_CHECKING:
    from .spec import SweepSpec


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """Finished trials, one JSON file each, keyed by trial id (``<config hash>-s<seed>``)."""

    def __init__(self, root: str):
        self.uri = join_uri(root, LEDGER)

    def record(self, entry: Mapping[str, Any]) -> None:
        write_json(join_uri(self.uri, f"{entry['trial_id']}.json"), dict(entry))

    def get(self, trial_id: str) -> Any:
        """One trial's entry as stored (None if absent or unreadable)."""
        return read_json(join_uri(self.uri, f"{trial_id}.json"))

    def load(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in list_dir(self.uri):
            if name.endswith(".json") and not name.startswith("."):
                entry = read_json(join_uri(self.uri, name))
                if isinstance(entry, dict) and entry.get("status") in STATUSES:
                    out[entry["trial_id"]] = entry
        return out


def ledger_entry(
    spec: SweepSpec, run: Mapping[str, Any], cell: str, seed: int, last: Mapping[str, Any], *, error: str | None,
    experiment: str, tune_trial_id: str, path: str | None, values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The ledger entry of a trial that ended: ``completed`` if its last report reached ``train.steps``,
    ``stopped`` (by early stopping) if not, ``error`` with the one-line reason. ``last`` is its last report;
    its numbers are the final metrics. ``values`` are the leaf values an Optuna trial was suggested (they
    warm-start the next experiment of the same search)."""
    metrics = {k: v for k, v in last.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if error:
        status = "error"
    elif last.get("step", 0) >= run["train"]["steps"]:
        status = "completed"
    else:
        status = "stopped"
    entry = {
        "trial_id": trial_id(cell, seed),
        "config_hash": cell,
        "seed": seed,
        "status": status,
        "error": error,
        "config": dict(run),
        "metrics": metrics,
        "experiment": experiment,
        "tune_trial_id": tune_trial_id,
        "path": path,
        "resumed_from": last.get("resumed_from"),
        "node_id": last.get("node_id"),
        "device": last.get("device"),
        "search": spec.search,
        "search_key": spec.search_key,
        "finished_at": now(),
    }
    if values is not None:
        entry["values"] = dict(values)
    return entry


class SweepStore:
    """Everything a sweep keeps under ``<storage>/<name>`` (module docstring)."""

    def __init__(self, root: str):
        self.root = root
        self.ledger = Ledger(root)

    @property
    def experiments_uri(self) -> str:
        return join_uri(self.root, EXPERIMENTS)

    def experiment_uri(self, name: str) -> str:
        return join_uri(self.experiments_uri, name)

    def pending(self) -> dict[str, Any] | None:
        return read_json(join_uri(self.root, PENDING))

    def set_pending(self, record: Mapping[str, Any]) -> None:
        write_json(join_uri(self.root, PENDING), dict(record))

    def clear_pending(self) -> None:
        delete(join_uri(self.root, PENDING))

    def history(self) -> list[dict[str, Any]]:
        return read_json(join_uri(self.root, HISTORY)) or []

    def add_history(self, record: Mapping[str, Any]) -> None:
        write_json(join_uri(self.root, HISTORY), [*self.history(), dict(record)])

    def next_experiment(self) -> str:
        """``exp-NNN`` one above any experiment directory or record so far."""
        taken = [n for n in list_dir(self.experiments_uri) if n.startswith("exp-")]
        taken += [h["experiment"] for h in self.history()]
        numbers = [int(n[4:]) for n in taken if n[4:].isdigit()]
        return f"exp-{max(numbers, default=0) + 1:03d}"

    def save_sweep_file(self, text: str) -> None:
        write_bytes(join_uri(self.root, SWEEP_COPY), text.encode())

    def write_results(self, frame: pd.DataFrame) -> str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        uri = join_uri(self.root, RESULTS)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if is_uri(uri):
            fs, path = filesystem(uri)
            pq.write_table(table, path, filesystem=fs)
        else:
            os.makedirs(self.root, exist_ok=True)
            # A driver killed mid-write (the sweep's one writer) leaves its temporary file; nothing reads it,
            # so the next write clears it rather than letting them pile up beside the results.
            for stale in Path(self.root).glob(".tmp-*.parquet"):
                stale.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=self.root)
            os.fchmod(fd, file_mode())  # the user's umask, not mkstemp's 0600
            os.close(fd)
            try:
                pq.write_table(table, tmp)
                os.replace(tmp, uri)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return uri

    def wipe(self) -> None:
        """Delete this sweep's state (``--restart``)."""
        delete(self.root, directory=True)


# --- tables -----------------------------------------------------------------------------------------------


def frame(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Ledger entries -> one row per (configuration, seed): identity, status, flattened config, final metrics.

    Config columns are dotted paths (``model.beta``); lists and mappings become JSON strings so every column
    has one Parquet type. Metric columns keep the names the trial reported (``loss``, ``mig`` ...).
    """
    rows = []
    for e in entries:
        row: dict[str, Any] = {k: e.get(k) for k in META}
        config = {k: v for k, v in (e.get("config") or {}).items() if k != "seed"}
        for key, value in flatten(config).items():
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        for key, value in (e.get("metrics") or {}).items():
            if key not in row and (isinstance(value, (int, float)) and not isinstance(value, bool)):
                row[key] = float(value)
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else list(META))
    for col in df.columns:  # a column of Nones and strings (or bools) is stored as strings
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1:
                df[col] = [None if v is None else str(v) for v in df[col]]
    return df


def config_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.split(".", 1)[0] in ("model", "data", "train", "eval")]


def varying_columns(df: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """Config columns (or ``columns``) whose value differs between configurations; NaN counts as missing."""
    out = []
    for c in config_columns(df) if columns is None else columns:
        values = {canonical_json(None if isinstance(v, float) and math.isnan(v) else v) for v in df[c].tolist()}
        if len(values) > 1:
            out.append(c)
    return out


def metric_columns(df: pd.DataFrame) -> list[str]:
    skip = set(META) | set(config_columns(df))
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def aggregate(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per configuration: its varying hyperparameters, trial counts by status, and for each metric
    the mean, std (ddof=1), sem and count over the seeds that did not error."""
    if df.empty:
        return pd.DataFrame(columns=["config_hash"])
    metrics = list(metrics) if metrics is not None else metric_columns(df)
    varying = varying_columns(df)
    rows = []
    for cell, group in df.groupby("config_hash", sort=False):
        row: dict[str, Any] = {"config_hash": cell}
        for c in varying:
            row[c] = group[c].iloc[0]
        row["n_seeds"] = len(group)
        for status in STATUSES:
            row[f"n_{status}"] = int((group["status"] == status).sum())
        ok = group[group["status"] != "error"]
        for m in metrics:
            values = pd.to_numeric(ok[m], errors="coerce").dropna() if m in ok else pd.Series(dtype=float)
            n = len(values)
            row[f"{m}_mean"] = float(values.mean()) if n else math.nan
            row[f"{m}_std"] = float(values.std(ddof=1)) if n > 1 else math.nan
            row[f"{m}_sem"] = row[f"{m}_std"] / math.sqrt(n) if n > 1 else math.nan
            row[f"{m}_count"] = n
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 0) -> str:
    """A plain fixed-width table (no dependency; stays readable in CI logs)."""
    cells = [[str(h) for h in headers]] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    pad = " " * indent
    lines = [pad + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, pad + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pm(mean: float, std: float, n: int) -> str:
    if not n or math.isnan(mean):
        return "-"
    if n == 1 or math.isnan(std):
        return f"{mean:.4g} (n=1)"
    return f"{mean:.4g} ± {std:.2g} (n={n})"


def summary(df: pd.DataFrame, metric: str, mode: str, extra_metrics: int = 3) -> str:
    """The end-of-sweep table: configurations best first, metric mean ± std over seeds, errors listed."""
    if df.empty:
        return "no finished trials yet"
    agg = aggregate(df)
    varying = varying_columns(df)
    others = [m for m in metric_columns(df) if m not in (metric, *NOT_SUMMARISED)]
    # eval metrics (not training terms) first: they are what a study reports
    training = {"loss", "rec", "kl"}
    others = sorted(others, key=lambda m: (m in training, m))[:extra_metrics]
    key = f"{metric}_mean"
    if key in agg:  # configurations trained to the end first: a stopped one's metric is from an earlier step
        agg = agg.assign(_partial=agg["n_stopped"] > 0)
        agg = agg.sort_values(["_partial", key], ascending=[True, mode == "min"], na_position="last")
    steps = df.groupby("config_hash")["step"].agg(["min", "max"]) if "step" in df else None
    headers = ["config", *varying, "seeds", "steps", f"{metric} ({mode})", *others]
    rows = []
    for _, r in agg.iterrows():
        status = f"{r['n_completed']} done"
        if r["n_stopped"]:
            status += f" {r['n_stopped']} stopped"
        if r["n_error"]:
            status += f" {r['n_error']} error"
        span = "-"
        if steps is not None and r["config_hash"] in steps.index:
            lo, hi = steps.loc[r["config_hash"]]
            span = "-" if pd.isna(lo) else f"{lo:.0f}" if lo == hi else f"{lo:.0f}-{hi:.0f}"
        cells = [r["config_hash"], *(_short(r[c]) for c in varying), status, span]
        for m in (metric, *others):
            cells.append(_pm(r.get(f"{m}_mean", math.nan), r.get(f"{m}_std", math.nan), int(r.get(f"{m}_count", 0))))
        rows.append(cells)
    lines = [format_table(headers, rows)]
    errors = df[df["status"] == "error"]
    for _, e in errors.iterrows():
        lines.append(f"error: {e['trial_id']}: {e['error']}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)
