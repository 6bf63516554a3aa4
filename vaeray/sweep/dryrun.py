"""The dry run: what a sweep file would run, and whether it fits where it would run. Runs nothing.

``vaeray sweep FILE --dry-run`` prints the trial matrix (one row per trial, a column per hyperparameter that
varies, the ledger's status of each trial) or, for Optuna, the search space; then the resources each trial asks
for against a :class:`ClusterView`: this machine by default, or the Ray cluster's nodes when the CLI is given
an address (:func:`vaeray.sweep.ray.local.cluster_view` reads those; this module never starts Ray). A trial's bundle of
CPUs and GPUs never spans nodes, so fit and concurrency are counted per node. No ``ray`` here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import flatten
from ..errors import clip
from .settings import Resources

if TYPE_CHECKING:
    from .spec import SweepSpec


@dataclass(frozen=True)
class ClusterView:
    """What the dry run compares trial requests against: per-node CPU/GPU totals and where they came from."""

    source: str
    nodes: tuple[tuple[float, float], ...]  # (CPU, GPU) per node that accepts trials

    @property
    def cpu(self) -> float:
        return sum(n[0] for n in self.nodes)

    @property
    def gpu(self) -> float:
        return sum(n[1] for n in self.nodes)


def local_cluster() -> ClusterView:
    """This machine: its CPU count and the CUDA devices torch sees (no Ray started)."""
    import torch

    return ClusterView("this machine", ((float(os.cpu_count() or 1), float(torch.cuda.device_count())),))


def concurrency(resources: Resources, cluster: ClusterView) -> int:
    """How many trials run at once: per node, the bundles that fit (a bundle never spans nodes)."""
    total = 0
    for cpu, gpu in cluster.nodes:
        n = math.floor(cpu / resources.cpu + 1e-9)
        if resources.gpu > 0:
            n = min(n, math.floor(gpu / resources.gpu + 1e-9))
        total += max(0, n)
    return total


def dry_run_report(spec: SweepSpec, cluster: ClusterView | None = None) -> str:
    """The trial matrix, the resources each trial asks for and whether they fit ``cluster`` (default: this
    machine; the CLI passes the Ray cluster's view, from :func:`vaeray.sweep.ray.local.cluster_view`, when it is given
    an address). Runs nothing."""
    from .results import Ledger, format_table  # pandas: only when a report is asked for

    cluster = cluster or local_cluster()
    lines = [f"sweep '{spec.name}' ({spec.source}): {_describe_search(spec)}"]
    lines.append(f"storage: {spec.root}")
    lines.append(f"metric: {spec.metric} ({spec.mode}); early stopping: {spec.scheduler.describe()}")
    try:
        done = Ledger(spec.root).load()
    except OSError as e:  # unreachable cloud storage must not stop a dry run on a laptop
        done = {}
        spec.notes.append(f"cannot read the ledger at {spec.root} ({clip(str(e), 160)}); statuses unknown")
    if spec.search == "optuna":
        rows = [[leaf.path, leaf.describe()] for leaf in spec.space]
        lines.append(f"search space ({len(spec.space)} parameters; Optuna TPE, sampler seed {spec.sampler_seed}):")
        lines.append(format_table(["parameter", "distribution"], rows, indent=2))
        lines.append(f"seeds: {', '.join(map(str, spec.seeds))} (Optuna sees the seed mean of each configuration)")
        lines.append(f"validated {len(spec.configurations)} representative configuration(s) (every choice option, both range ends)")
    else:
        columns = spec.varying()
        rows = []
        for t in spec.trials():
            flat = flatten(t.config)
            status = done[t.trial_id]["status"] if t.trial_id in done else "to run"
            rows.append([t.trial_id, *(_cell(flat.get(k, "-")) for k in columns), str(t.seed), status])
        lines.append(format_table(["trial", *columns, "seed", "status"], rows, indent=2))
        todo = sum(1 for r in rows if r[-1] == "to run")
        lines.append(f"{todo} of {len(rows)} trials to run ({len(rows) - todo} already in the ledger)")
    lines.extend(_resource_lines(spec, cluster))
    lines.extend(f"note: {n}" for n in spec.notes)
    return "\n".join(lines)


def _describe_search(spec: SweepSpec) -> str:
    n_conf = spec.num_samples if spec.search == "optuna" else len(spec.configurations)
    return f"search {spec.search}, {n_conf} configurations x {len(spec.seeds)} seeds = {spec.num_trials} trials"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _resource_lines(spec: SweepSpec, cluster: ClusterView) -> list[str]:
    r = spec.resources
    lines = [f"resources per trial: cpu {r.cpu:g}, gpu {r.gpu:g}; max_concurrent {spec.max_concurrent or 'unlimited'}"]
    lines.append(f"{cluster.source}: {cluster.cpu:g} CPU, {cluster.gpu:g} GPU on {len(cluster.nodes)} node(s)")
    fits_one = any(cpu >= r.cpu and gpu >= r.gpu for cpu, gpu in cluster.nodes)
    if not fits_one:
        lines.append(
            "does NOT fit: no node has "
            f"cpu {r.cpu:g} and gpu {r.gpu:g} free; trials would wait (an autoscaling cluster may add such nodes)"
        )
    else:
        n = concurrency(r, cluster)
        if spec.max_concurrent:
            n = min(n, spec.max_concurrent)
        lines.append(f"fits: {n} trial(s) at a time")
    return lines
