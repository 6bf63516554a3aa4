"""The trainable: one (configuration, seed) of a sweep as a Ray Tune function trainable.

``vaeray.train.fit`` with ``tune.report`` as its ``report`` and ``tune.Checkpoint`` directories holding one
``vaeray.checkpoint`` file; a restored, retried or moved trial resumes from the newest readable checkpoint.
The device follows the GPUs Ray assigned and torch takes as many threads as CPUs the trial asked for.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from ... import checkpoint as ckpt_io
from ... import storage
from ...perf import pin_autocast
from ...storage import join_uri
from .. import results
from ..identity import canonical_json, trial_id
from ...errors import DETERMINISTIC, clip
from ..spec import SweepSpec

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"
ERROR_KEY = "vaeray_error"  # a report that ends a trial with a deterministic failure (not retried)  # the report a checkpoint was saved with (replayed if training had ended)

_DATASETS: dict[tuple[str, str, str | None], Any] = {}  # one dataset per worker process, reused across trials


def _device(run: Mapping[str, Any]) -> torch.device:
    """The trial's device from the GPUs *Ray assigned*, not from what CUDA can see.

    Ray 2.60 no longer hides GPUs from 0-GPU workers, so ``torch.cuda.is_available()`` would let a CPU trial
    on a GPU node grab cuda:0. With GPUs assigned, Ray sets CUDA_VISIBLE_DEVICES to them, so ``cuda`` is ours.
    """
    requested = run["train"]["device"]
    if requested != "auto":
        return torch.device(requested)
    if ray.get_gpu_ids():
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.warning("Ray assigned GPU(s) %s but CUDA is unavailable in this process; training on the CPU", ray.get_gpu_ids())
    return torch.device("cpu")


def _threads() -> None:
    """As many torch threads as CPUs the trial asked for: trials sharing a node must not oversubscribe it."""
    try:
        cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    except Exception:  # outside a Tune session (unit tests call the trainable directly)
        return
    torch.set_num_threads(max(1, int(cpus)))


def _dataset(run: Mapping[str, Any], device: torch.device, data_dir: str | None):
    """The training dataset, kept per worker process: with ``reuse_actors`` the next trial on this worker
    (same data section) skips loading. dSprites memory-maps its packed cache, so nothing is copied per trial."""
    from ...train import build_dataset

    key = (canonical_json(run["data"]), str(device), data_dir)
    if key not in _DATASETS:
        _DATASETS.clear()  # one at a time: a worker that switches datasets frees the old one
        _DATASETS[key] = build_dataset(run, "train", device, data_dir)
    return _DATASETS[key]


def train_trial(config: dict[str, Any], *, spec: SweepSpec, experiment: str = "", data_dir: str | None = None) -> None:
    """Ray Tune function trainable: one (configuration, seed) of ``spec``.

    Reports every ``train.log_every`` steps; a report that carries a training state becomes a
    ``tune.Checkpoint`` (a directory with the atomic ``state.pt`` and the report as ``metrics.json``), which
    Tune copies to storage and hands back through ``tune.get_checkpoint()`` when the trial is retried,
    restored or moved to another node. The device follows the GPUs Ray assigned; ``data_dir`` goes to ``fit``.
    """
    from ...train import fit

    for module in spec.imports:  # the sweep's own registrations must exist in this worker too
        importlib.import_module(module)
    run, cell, seed = spec.identify(config)
    finished = _finished_entry(spec, trial_id(cell, seed))
    if finished is not None:
        # A driver killed between this trial's end and Tune's next state snapshot restores it as unfinished;
        # the ledger knows better. Report the recorded result instead of training it a second time.
        tune.report({**finished["metrics"], "trial": finished["trial_id"], "resumed_from": finished["metrics"].get("step", 0)})
        return
    device = _device(run)
    _threads()
    state, reported, unseen = _latest_state(spec, experiment, device)
    start = int(state.get("step", 0)) if state is not None else 0
    extra = {
        "trial": trial_id(cell, seed),
        "resumed_from": start,
        "node_id": _node_id(),
        "device": str(device),
        "autocast": pin_autocast(run, device, state)["train"]["autocast"],  # what `auto` became for this trial
        "gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
    }

    def report(metrics: dict[str, float], training_state: dict[str, Any] | None) -> None:
        row = dict(metrics)
        row.setdefault(spec.metric, math.nan)  # Tune insists the sweep metric is in every report
        row.update(extra)
        if training_state is None:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory(prefix="vaeray-ckpt-") as d:
            ckpt_io.save(training_state, Path(d) / STATE_FILE)
            (Path(d) / METRICS_FILE).write_text(json.dumps(row))
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))

    if state is not None and start >= run["train"]["steps"] and reported is not None:
        # Training had ended (the final checkpoint exists) but the driver died before recording it: fit would
        # have nothing left to do and report nothing, so report the final result saved with that checkpoint.
        tune.report({**reported, **extra})
        return
    if state is not None and reported is not None and (unseen or spec.scheduler.name != "none"):
        # Deliver the report saved with the checkpoint first, with that checkpoint, before training on:
        # * the newest checkpoint reached storage but the driver was interrupted before it processed its
        #   report, so Tune never saw it;
        # * with early stopping, a seed restored while it waited at a rung (Ray restores paused trials as
        #   pending and starts them) must be judged at the rung step with the rung's value, as it would have
        #   been without the interruption: this report makes the scheduler pause it there again, or stop it
        #   there when its configuration was stopped meanwhile, instead of at its next report.
        # The book ignores a value it already has, so a replay changes no decision. The row is the one
        # saved (its own resumed_from): a replay, not a new report of this attempt.
        row = {**extra, **reported}
        row.setdefault(spec.metric, math.nan)
        with tempfile.TemporaryDirectory(prefix="vaeray-ckpt-") as d:
            ckpt_io.save(state, Path(d) / STATE_FILE)
            (Path(d) / METRICS_FILE).write_text(json.dumps(row))
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))
    try:
        fit(run, report=report, checkpoint=state, dataset=_dataset(run, device, data_dir), data_dir=data_dir, device=device)
    except DETERMINISTIC as e:
        # A retry would fail the same way (same config, seed and steps): end the trial with its reason instead
        # of raising, so Tune does not retry it max_failures times and prints no traceback. The ledger records
        # it as an error with this one line; the trial's log has the full trace.
        log.error("trial %s failed: %s", trial_id(cell, seed), e, exc_info=True)
        tune.report({**extra, spec.metric: math.nan, ERROR_KEY: clip(str(e), 500)})


def _latest_state(spec: SweepSpec, experiment: str, device: torch.device) -> tuple[dict | None, dict | None, bool]:
    """The newest readable training state of this trial (and the report saved with it): Tune's checkpoint or
    a newer one in storage.

    Tune restores a trial from the checkpoint its last experiment snapshot recorded; a driver killed between
    snapshots leaves newer checkpoints in the trial's directory in storage. Taking the newest readable one
    means a restored trial loses at most ``checkpoint_every`` steps, whatever the snapshot missed.
    """
    candidates: list[tuple[dict, dict | None, bool]] = []  # (state, its report, newer than what Tune knows)
    checkpoint = tune.get_checkpoint()
    known = -1
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = ckpt_io.read(str(Path(d) / STATE_FILE), device)
            if state is not None:
                known = int(state.get("step", 0))
                candidates.append((state, storage.read_json(str(Path(d) / METRICS_FILE)), False))
    try:
        dirname = Path(tune.get_context().get_trial_dir()).name
    except Exception:
        dirname = ""
    if experiment and dirname:
        trial_uri = join_uri(results.SweepStore(spec.root).experiment_uri(experiment), dirname)
        for name in reversed(storage.list_dir(trial_uri)):
            if name.startswith("checkpoint_"):
                state = ckpt_io.read(join_uri(trial_uri, name, STATE_FILE), device)
                if state is not None:
                    newer = int(state.get("step", 0)) > known
                    candidates.append((state, storage.read_json(join_uri(trial_uri, name, METRICS_FILE)), newer))
                    break  # the newest readable one
    if not candidates:
        return None, None, False
    return max(candidates, key=lambda c: (int(c[0].get("step", 0)), not c[2]))


def _finished_entry(spec: SweepSpec, tid: str) -> dict[str, Any] | None:
    """This very Tune trial's ledger entry if it already completed or was stopped (errored ones are retried)."""
    try:
        me = tune.get_context().get_trial_id()
    except Exception:
        return None
    entry = results.Ledger(spec.root).get(tid)
    if isinstance(entry, dict) and entry.get("tune_trial_id") == me and entry.get("status") in ("completed", "stopped"):
        return entry
    return None


def _node_id() -> str:
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:
        return ""


def wrapped_trainable(spec: SweepSpec, experiment: str, data_dir: str | None):
    """The trainable with its parameters and resources attached (re-wrapped for every run and restore)."""
    trainable = tune.with_parameters(train_trial, spec=spec, experiment=experiment, data_dir=data_dir)
    return tune.with_resources(trainable, spec.resources.as_ray())

