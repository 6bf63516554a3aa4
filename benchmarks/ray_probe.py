"""Report probe for benchmarks/bench_ray_share.py (not part of vaeray): logs, at every report of a training run,
the step, wall time, the process's CPU time (every thread, so a Ray worker's own gRPC and reporting threads
count) and torch's thread count, one JSON line each to ``$VAERAY_PROBE_LOG``.

* In a sweep trial it is listed in ``sweep.imports``, which the trainable imports in its worker before ``fit``:
  it wraps ``ray.tune.report`` there (the driver imports it too, but never reports).
* For ``vaeray train``, :func:`patch_train` wraps ``RunDir.report`` before the CLI runs.
"""

from __future__ import annotations

import json
import os
import time

LOG = os.environ.get("VAERAY_PROBE_LOG")


def _tree_cpu() -> float:
    """CPU seconds of the whole job so far: for a trial, the sweep's driver (the raylet's parent) and everything
    under it (GCS, raylet, Ray's agents, idle workers, this worker); for ``vaeray train``, this process."""
    import psutil

    me = psutil.Process()
    root = me
    if os.environ.get("VAERAY_PROBE_TUNE"):
        raylet = me.parent()
        root = raylet.parent() if raylet is not None and raylet.parent() is not None else me
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a process that ended meanwhile
            pass
    return total


def _log(metrics: dict) -> None:
    import torch

    row = {"step": metrics.get("step"), "time": time.time(), "wall": time.perf_counter(), "cpu": time.process_time(), "tree_cpu": _tree_cpu(),
           "threads": torch.get_num_threads(), "pid": os.getpid(), "examples_per_s": metrics.get("examples_per_s")}
    with open(LOG, "a") as f:
        f.write(json.dumps(row) + "\n")


def patch_train() -> None:
    from vaeray.rundir import RunDir

    original = RunDir.report

    def report(self, metrics, state):
        _log(metrics)
        return original(self, metrics, state)

    RunDir.report = report


def _patch_tune() -> None:
    from ray import tune

    original = tune.report

    def report(metrics, *args, **kwargs):
        if "step" in metrics:  # fit's reports (the trainable's replays of a finished trial carry no timing)
            _log(metrics)
        return original(metrics, *args, **kwargs)

    tune.report = report


if LOG and os.environ.get("VAERAY_PROBE_TUNE"):
    _patch_tune()
    if os.environ.get("VAERAY_PROBE_EVENTS"):  # bench_ray_phases.py: when the trial started in its worker
        import torch

        with open(LOG, "a") as f:
            f.write(json.dumps({"event": "trial started in its worker (torch, vaeray imported)", "time": time.time(),
                                "pid": os.getpid(), "threads": torch.get_num_threads()}) + "\n")
