"""The public results API: a sweep on storage -> one tidy pandas DataFrame, one row per trial.

``load("quickstart")`` reads ``~/vaeray_results/quickstart`` (a name), a directory, or a cloud URI
(``s3://bucket/prefix/quickstart``) straight from storage: the ledger for trials that ended, the Tune trial
directories of the experiment in flight for trials still running, ``pending.json`` for trials not started.
It never starts Ray, so it works while a sweep runs, after it ended, and on a laptop reading a cluster's bucket.
``load_history`` gives every report of every trial (the per-step curves, from Tune's ``result.json``).

Columns of :func:`load` (docs/report.md has the full list): ``sweep``, ``trial_id``, ``config_hash``, ``seed``,
``family``, ``model``, ``dataset``, ``status`` (completed / stopped / error / running / pending) and ``error``,
``steps``, ``wall_time_s``, ``device``, every hyperparameter as a dotted column (``model.beta``), the final
value of every metric under its own name (``mig``) and its best value over the trial's reports as
``best_<metric>`` (for metrics whose direction is known, :data:`DIRECTION`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..errors import VaerayError
from ..registry import MODELS
from ..storage import is_uri, join_uri, list_dir, read_bytes, read_json, resolve_storage
from ..sweep import results as ledger
from ..sweep.identity import config_hash

DEFAULT_STORAGE = "~/vaeray_results"
FIRST = ("sweep", "trial_id", "config_hash", "seed", "family", "model", "dataset", "status", "error", "steps",
         "wall_time_s", "device")  # fmt: skip
# +1: higher is better, -1: lower is better. Metrics not listed get no best_<metric> column (no guessing).
DIRECTION: dict[str, int] = {
    "mig": 1, "aam": 1, "sap": 1, "modularity": 1, "explicitness_train": 1, "explicitness_test": 1,
    "dci_disentanglement": 1, "dci_completeness": 1, "dci_informativeness_train": 1, "dci_informativeness_test": 1,
    "factor_vae_score_train": 1, "factor_vae_score_eval": 1, "elbo": 1, "ll": 1,
    "loss": -1, "rec": -1, "kl": -1, "tc": -1, "nll": -1, "bits_per_dim": -1,
    "equivariance_error": -1, "content_accuracy": 1, "style_accuracy": 1,
}  # fmt: skip
NOT_METRICS = frozenset({"step", "lr", "examples_per_s", "resumed_from", "time_total_s", "gpu_ids", "node_id"})
TUNE_KEYS = frozenset({"timestamp", "done", "training_iteration", "pid", "time_this_iter_s", "time_since_restore",
                       "iterations_since_restore", "should_checkpoint", "checkpoint_dir_name"})  # fmt: skip

Progress = Callable[[Iterable[Any], str, int], Iterable[Any]]


class SweepNotFound(VaerayError):
    """No sweep at that name, path or URI, or nothing in it has started."""

    exit_code = 2


def family_of(model_name: str | None) -> str:
    """The family of a registered model: its class's own ``family`` attribute, else the last part of the
    module that defines it (``vaeray.models.topographic`` -> ``topographic``), so a family's models need no
    extra declaration. Only the class's own attribute counts: a subclass in another family's module does not
    inherit its parent's family. Unknown models (a sweep read where its plugin is not importable) -> "unknown"."""
    from ..registry import load_all

    load_all()
    if not isinstance(model_name, str) or model_name not in MODELS:
        return "unknown"
    cls = MODELS.get(model_name)
    own = vars(cls).get("family")
    return own if isinstance(own, str) else cls.__module__.rsplit(".", 1)[-1]


def sweep_root(sweep: str | os.PathLike, storage: str | None = None) -> str:
    """Where a sweep lives: a URI or an existing directory as given, else ``<storage>/<name>`` with
    ``storage`` defaulting to ``$VAERAY_STORAGE`` or ``~/vaeray_results`` (the sweep file default)."""
    text = str(sweep)
    if is_uri(text):
        return text.rstrip("/")
    if os.path.isdir(os.path.expanduser(text)):
        return resolve_storage(text, "sweep")
    base = storage or os.environ.get("VAERAY_STORAGE") or DEFAULT_STORAGE
    return join_uri(resolve_storage(base, "storage"), text)


def _import_plugins(root: str) -> None:
    """Import the sweep's ``sweep.imports`` (its own models) where they are importable here, so their family
    is known; a module missing on this machine only leaves those models' family "unknown"."""
    import importlib

    import yaml

    try:
        body = yaml.safe_load(read_bytes(join_uri(root, ledger.SWEEP_COPY)) or b"") or {}
        modules = (body.get("sweep") or {}).get("imports") or []
    except (yaml.YAMLError, AttributeError):
        return
    for module in modules if isinstance(modules, list) else []:
        try:
            importlib.import_module(str(module))
        except Exception:
            pass


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _history_rows(trial_uri: str) -> list[dict[str, Any]]:
    """Tune's ``result.json`` of one trial directory: one JSON object per report (torn last line skipped)."""
    data = read_bytes(join_uri(trial_uri, "result.json"))
    rows = []
    for line in (data or b"").decode(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # the line being written right now
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _trial_dirs(root: str) -> dict[str, list[tuple[str, str]]]:
    """trial id -> [(experiment, trial directory uri), ...] over every experiment, oldest first."""
    store = ledger.SweepStore(root)
    out: dict[str, list[tuple[str, str]]] = {}
    for exp in list_dir(store.experiments_uri):
        if not (exp.startswith("exp-") and exp[4:].isdigit()):  # not exp-001.vaeray_rungs.json beside them
            continue
        for name in list_dir(store.experiment_uri(exp)):
            tid = name.split("-", 2)
            if len(tid) >= 2 and tid[1].startswith("s") and tid[1][1:].isdigit():
                out.setdefault(f"{tid[0]}-{tid[1]}", []).append((exp, join_uri(store.experiment_uri(exp), name)))
    return out


def _best(rows: Sequence[Mapping[str, Any]], final: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, sign in DIRECTION.items():
        values = [float(r[key]) for r in rows if _numeric(r.get(key)) and math.isfinite(float(r[key]))]
        if _numeric(final.get(key)) and math.isfinite(float(final[key])):
            values.append(float(final[key]))
        if values:
            out[f"best_{key}"] = max(values) if sign > 0 else min(values)
    return out


def _entry_row(name: str, entry: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    config = entry.get("config") or {}
    metrics = {k: v for k, v in (entry.get("metrics") or {}).items() if _numeric(v)}
    model = (config.get("model") or {}).get("name")
    row: dict[str, Any] = {
        "sweep": name,
        "trial_id": entry.get("trial_id"),
        "config_hash": entry.get("config_hash"),
        "seed": entry.get("seed"),
        "family": family_of(model),
        "model": model,
        "dataset": (config.get("data") or {}).get("name"),
        "status": entry.get("status"),
        "error": entry.get("error"),
        "steps": metrics.get("step"),
        "wall_time_s": metrics.get("time_total_s"),
        "device": entry.get("device"),
        "experiment": entry.get("experiment"),
    }
    for key, value in ledger.flatten({k: v for k, v in config.items() if k != "seed"}).items():
        row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
    for key, value in metrics.items():
        if key not in NOT_METRICS and key not in row:
            row[key] = float(value)
    row.update(_best(history, metrics))
    return row


def _running_entry(tid: str, rows: Sequence[Mapping[str, Any]], experiment: str) -> dict[str, Any] | None:
    """A ledger-shaped entry for a trial still running, from its reports so far."""
    run = ((rows[-1].get("config") or {}).get("run")) if rows else None
    if not isinstance(run, Mapping):
        return None
    last = {k: v for k, v in rows[-1].items() if _numeric(v) and k not in TUNE_KEYS}
    return {
        "trial_id": tid, "config_hash": config_hash(run), "seed": run.get("seed"), "status": "running",
        "error": None, "config": dict(run), "metrics": last, "device": rows[-1].get("device"), "experiment": experiment,
    }  # fmt: skip


def load_one(sweep: str | os.PathLike, *, storage: str | None = None, history: bool = True,
             progress: Progress | None = None) -> pd.DataFrame:  # fmt: skip
    """One sweep's trials (see :func:`load`)."""
    root = sweep_root(sweep, storage)
    name = root.rstrip("/").rsplit("/", 1)[-1]
    _import_plugins(root)
    store = ledger.SweepStore(root)
    entries = store.ledger.load()
    pending = store.pending() or {}
    dirs = _trial_dirs(root) if (history or pending) else {}
    if not entries and not dirs and not pending:
        raise SweepNotFound(f"no sweep at {root} (no ledger, no experiments); run `vaeray sweep FILE` first")
    rows: list[dict[str, Any]] = []
    items = sorted(entries.items())
    for tid, entry in progress(items, f"reading {name}", len(items)) if progress else items:
        found = dict(dirs.get(tid, []))
        where = found.get(entry.get("experiment")) or (list(found.values())[-1] if found else None)
        rows.append(_entry_row(name, entry, _history_rows(where) if (history and where) else []))
    in_flight = pending.get("experiment")
    configs = {e.get("config_hash"): e.get("config") for e in entries.values()}  # a configuration's seeds share it
    waiting = []
    for tid in pending.get("trials") or []:
        if tid in entries:
            continue
        where = dict(dirs.get(tid, [])).get(in_flight)
        reports = _history_rows(where) if where else []
        entry = _running_entry(tid, reports, in_flight) if reports else None
        if entry is None:
            cell, seed = tid.rsplit("-s", 1)
            waiting.append({"trial_id": tid, "config_hash": cell, "seed": int(seed), "status": "pending", "experiment": in_flight})
            continue
        configs.setdefault(entry["config_hash"], entry["config"])
        rows.append(_entry_row(name, entry, reports))
    for entry in waiting:  # not started: its configuration is known from a sibling seed, if any has started
        if configs.get(entry["config_hash"]):
            entry["config"] = {**configs[entry["config_hash"]], "seed": entry["seed"]}
        rows.append(_entry_row(name, entry, []))
    return _tidy(pd.DataFrame(rows))


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=list(FIRST))
    for col in df.columns:  # one Parquet type per column: mixed object columns become text
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1:
                df[col] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in df[col]]
    order = [c for c in FIRST if c in df] + [c for c in df if c not in FIRST]
    return df[order].reset_index(drop=True)


def load(sweeps: str | os.PathLike | Sequence[str | os.PathLike], *, storage: str | None = None,
         history: bool = True, progress: Progress | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per trial of one or several sweeps (names, directories or URIs), concatenated.

    Args:
        sweeps: a sweep name (looked up under ``storage``), a sweep directory, a URI, or a list of these.
        storage: where names are looked up (default ``$VAERAY_STORAGE``, else ``~/vaeray_results``).
        history: also read each trial's reports for the ``best_<metric>`` columns (one file per trial).
        progress: ``progress(iterable, description, total)`` wraps the per-trial loop (the CLI shows a bar).

    Raises:
        SweepNotFound: a sweep does not exist (one line; ``vaeray report`` exits 2).
    """
    items = [sweeps] if isinstance(sweeps, (str, os.PathLike)) else list(sweeps)
    frames = [load_one(s, storage=storage, history=history, progress=progress) for s in items]
    return _tidy(pd.concat(frames, ignore_index=True, sort=False)) if len(frames) > 1 else frames[0]


def load_history(sweeps: str | os.PathLike | Sequence[str | os.PathLike], *, storage: str | None = None,
                 trials: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Every report of every trial: ``sweep, trial_id, config_hash, seed, experiment, step`` and the metrics
    reported at that step (eval metrics only on eval steps). A trial retried or resumed in a later experiment
    contributes each step once (the latest report of a step wins)."""
    items = [sweeps] if isinstance(sweeps, (str, os.PathLike)) else list(sweeps)
    out = []
    for s in items:
        root = sweep_root(s, storage)
        if not read_json(join_uri(root, ledger.PENDING)) and not list_dir(join_uri(root, ledger.LEDGER)):
            if not list_dir(join_uri(root, ledger.EXPERIMENTS)):
                raise SweepNotFound(f"no sweep at {root} (no ledger, no experiments); run `vaeray sweep FILE` first")
        name = root.rstrip("/").rsplit("/", 1)[-1]
        for tid, places in sorted(_trial_dirs(root).items()):
            if trials is not None and tid not in trials:
                continue
            by_step: dict[float, dict[str, Any]] = {}
            for exp, uri in places:
                for r in _history_rows(uri):
                    if not _numeric(r.get("step")):
                        continue
                    cell, seed = tid.rsplit("-s", 1)
                    row = {"sweep": name, "trial_id": tid, "config_hash": cell, "seed": int(seed), "experiment": exp}
                    row.update({k: float(v) for k, v in r.items() if _numeric(v) and k not in TUNE_KEYS})
                    by_step[float(r["step"])] = row
            out.extend(by_step[k] for k in sorted(by_step))
    cols = ["sweep", "trial_id", "config_hash", "seed", "experiment", "step"]
    df = pd.DataFrame(out) if out else pd.DataFrame(columns=cols)
    return df[[*cols, *(c for c in df if c not in cols)]]


def trial_dir(sweep: str | os.PathLike, trial: str, *, storage: str | None = None) -> str:
    """The newest Tune directory of ``trial`` (a trial id) in a sweep: what ``vaeray plot`` takes."""
    places = _trial_dirs(sweep_root(sweep, storage)).get(trial)
    if not places:
        raise SweepNotFound(f"no directory for trial {trial} in {sweep_root(sweep, storage)}")
    return places[-1][1]
