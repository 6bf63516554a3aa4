"""The Ray adapter: the only module that imports ``ray``.

It turns a validated :class:`vaeray.sweep.SweepSpec` into Ray Tune experiments and back into results:

* :func:`train_trial`, the trainable: ``vaeray.train.fit`` with ``tune.report`` as its ``report`` and
  ``tune.Checkpoint`` directories holding one ``vaeray.checkpoint`` file; resumes from ``tune.get_checkpoint()``.
* :class:`SeedGroupedScheduler`: ASHA / median stopping decided per configuration on the seed mean, so
  all seeds of a configuration stop together (the rules live in :class:`vaeray.rungs.RungBook`).
* :class:`LedgerCallback`: writes each finished trial to the sweep's ledger as it ends.
* :func:`run_sweep`: restore the experiment an interruption left behind, then launch a new experiment for
  the trials (or Optuna configurations) the ledger does not have yet (:mod:`vaeray.plan` decides which),
  then write ``results.parquet``.

Ray's API has churned three times in five years; keeping it in this one file keeps that cost here. Whatever
needs no Ray lives elsewhere and is tested without it: the sweep file (:mod:`vaeray.sweep`), the rung
bookkeeping (:mod:`vaeray.rungs`), the plan (:mod:`vaeray.plan`), the ledger (:mod:`vaeray.results`).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from . import checkpoint as ckpt_io
from . import plan, results, storage
from .dryrun import ClusterView
from .errors import ConfigError, VaerayError, last_exception_line
from .identity import canonical_json, trial_id
from .rungs import RungBook, SavedBook
from .storage import join_uri
from .sweep import SweepSpec

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"  # the report a checkpoint was saved with (replayed if training had ended)
RUNGS_FILE = "vaeray_rungs.json"
STATUS_FILE = "vaeray_status.json"
UPLOAD_TIMEOUT_S = 60  # W&B: don't wait the default 30 min for runs that never finished
# Keys Tune adds to every result that say nothing about the model (time_total_s is kept: it is the cost)
TUNE_BOOKKEEPING = frozenset(
    {"timestamp", "done", "training_iteration", "pid", "time_this_iter_s", "time_since_restore", "iterations_since_restore"}
)


class SweepInterrupted(VaerayError):
    """The sweep stopped before every trial finished (Ctrl-C, SIGTERM); the same command resumes it."""

    exit_code = 130


# --- the trainable ----------------------------------------------------------------------------------------

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
    from .train import build_dataset

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
    from .train import fit

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
    state, reported = _latest_state(spec, experiment, device)
    start = int(state.get("step", 0)) if state is not None else 0
    extra = {
        "trial": trial_id(cell, seed),
        "resumed_from": start,
        "node_id": _node_id(),
        "device": str(device),
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
    fit(run, report=report, checkpoint=state, dataset=_dataset(run, device, data_dir), data_dir=data_dir, device=device)


def _latest_state(spec: SweepSpec, experiment: str, device: torch.device) -> tuple[dict | None, dict | None]:
    """The newest readable training state of this trial (and the report saved with it): Tune's checkpoint or
    a newer one in storage.

    Tune restores a trial from the checkpoint its last experiment snapshot recorded; a driver killed between
    snapshots leaves newer checkpoints in the trial's directory in storage. Taking the newest readable one
    means a restored trial loses at most ``checkpoint_every`` steps, whatever the snapshot missed.
    """
    candidates: list[tuple[dict, dict | None]] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = ckpt_io.read(str(Path(d) / STATE_FILE), device)
            if state is not None:
                candidates.append((state, storage.read_json(str(Path(d) / METRICS_FILE))))
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
                    candidates.append((state, storage.read_json(join_uri(trial_uri, name, METRICS_FILE))))
                    break  # the newest readable one
    if not candidates:
        return None, None
    return max(candidates, key=lambda c: int(c[0].get("step", 0)))


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


# --- seed-grouped early stopping --------------------------------------------------------------------------


class SeedGroupedScheduler(FIFOScheduler):
    """A Tune scheduler that applies a :class:`vaeray.rungs.RungBook` to trials grouped by configuration.

    Tune's ASHA decides per trial, so with seeds as trials it would stop one seed of a configuration and keep
    another. Here a seed that reaches a milestone before its siblings is PAUSED (Tune keeps its latest
    checkpoint; the slot goes to a sibling or another trial). When the last sibling arrives the configuration
    is judged: STOP ends the arriving seed and the paused ones; otherwise the paused seeds are resumed first,
    from their checkpoints. The book is saved next to the experiment after every change, so a restored
    driver keeps the decisions made before the interruption.
    """

    def __init__(self, spec: SweepSpec, members: Mapping[str, list[int]] | None, state_uri: str, verbose: int = 0):
        super().__init__()
        self._verbose = verbose
        s = spec.scheduler
        self._spec = spec
        self._metric = spec.metric
        self._max_t = s.max_t
        self._ids: dict[str, tuple[str, int, int]] = {}
        self._book = RungBook(
            s.milestones(), s.name, spec.mode, s.reduction_factor, s.min_samples_required,
            members=members, default_members=list(spec.seeds),
        )  # fmt: skip
        self._state = SavedBook(self._book, state_uri)  # with the paused trials waiting at a rung
        self._announced: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode come from the sweep file

    def _identity(self, trial: TuneTrial) -> tuple[str, int, int]:
        """(configuration hash, seed, train.steps) of a trial, computed once."""
        if trial.trial_id not in self._ids:
            run, cell, seed = self._spec.identify(trial.config)
            self._ids[trial.trial_id] = (cell, seed, int(run["train"]["steps"]))
        return self._ids[trial.trial_id]

    def on_trial_result(self, tune_controller, trial: TuneTrial, result: dict) -> str:
        step = result.get("step")
        if step is None:
            return TrialScheduler.CONTINUE
        if self._max_t is not None and step >= self._max_t:
            return TrialScheduler.STOP
        self._state.load()
        cell, seed, steps = self._identity(trial)
        value = result.get(self._metric)
        action = self._book.observe(cell, seed, step, value if isinstance(value, (int, float)) else None)
        self._state.waiting.pop(trial.trial_id, None)
        if action == RungBook.STOP:
            if self._verbose and cell not in self._announced:
                self._announced.add(cell)
                m = self._book.stopped[cell]
                say(f"stop   {cell} (all seeds) at step {m}: seed-mean {self._metric} below the cutoff")
            self._stop_paused(tune_controller, cell, trial)
            self._state.save()
            return TrialScheduler.STOP
        if action == RungBook.WAIT and step < steps:  # a trial at its last step just finishes
            self._state.waiting[trial.trial_id] = self._book.waiting_at(cell, seed)
            if self._verbose:
                say(f"pause  {trial_id(cell, seed)} at step {step}: waiting for the other seeds of {cell}")
            self._state.save()
            return TrialScheduler.PAUSE
        self._state.save()
        return TrialScheduler.CONTINUE

    def _stop_paused(self, tune_controller, cell: str, current: TuneTrial | None) -> None:
        for t in tune_controller.get_trials():
            if t is not current and t.status == TuneTrial.PAUSED and self._identity(t)[0] == cell:
                self._state.waiting.pop(t.trial_id, None)
                tune_controller.stop_trial(t)

    def choose_trial_to_run(self, tune_controller) -> TuneTrial | None:
        """Paused seeds whose configuration was judged 'continue' first (finish what was started), then
        pending trials in order, then paused trials this scheduler knows nothing about (after a restore)."""
        self._state.load()
        trials = tune_controller.get_trials()
        for t in trials:
            if t.status == TuneTrial.PAUSED and t.trial_id in self._state.waiting:
                cell = self._identity(t)[0]
                if cell in self._book.stopped:
                    self._state.waiting.pop(t.trial_id, None)
                    tune_controller.stop_trial(t)
                elif self._book.decided(cell, self._state.waiting[t.trial_id]):
                    return t
        for t in trials:
            if t.status == TuneTrial.PENDING:
                return t
        for t in trials:
            if t.status == TuneTrial.PAUSED and t.trial_id not in self._state.waiting:
                return t
        return None

    def on_trial_error(self, tune_controller, trial: TuneTrial) -> None:
        if trial.should_recover():  # it will be retried from its checkpoint: still a member
            return
        self._state.load()
        cell, seed, _ = self._identity(trial)
        self._book.forget(cell, seed)
        if cell in self._book.stopped:
            self._stop_paused(tune_controller, cell, trial)
        self._state.save()

    def on_trial_remove(self, tune_controller, trial: TuneTrial) -> None:
        self._state.waiting.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        return f"Seed-grouped {self._spec.scheduler.name}: {len(self._book.stopped)} configuration(s) stopped"


# --- callbacks --------------------------------------------------------------------------------------------


def error_line(trial: TuneTrial) -> str:
    """The one line that says why a trial failed (a VaerayError's own message when there is one).

    Tune writes the error next to the trial on the driver first (``pickled_error_file``/``error_file``) and
    syncs it to storage later, so the local files are read first.
    """
    err = None
    local = trial.pickled_error_file
    try:
        if local and os.path.exists(local):
            import ray.cloudpickle as cloudpickle

            with open(local, "rb") as f:
                err = cloudpickle.load(f)
        else:
            err = trial.get_pickled_error()
    except Exception:  # an unpicklable error: fall back to the text file
        err = None
    if err is not None:
        cause = getattr(err, "cause", None) or err
        text = str(cause) if isinstance(cause, VaerayError) else f"{type(cause).__name__}: {cause}"
        text = last_exception_line(text)
        if text:
            return text
    text = ""
    try:
        if trial.error_file and os.path.exists(trial.error_file):
            text = Path(trial.error_file).read_text()
        else:
            text = trial.get_error() or ""
    except Exception:
        pass
    return last_exception_line(text) or "the trial failed (no error recorded)"


class LedgerCallback(tune.Callback):
    """Writes each trial to the ledger the moment it ends, and a status file when the experiment ends.

    Tune's own statuses cannot tell an interrupted experiment from a finished one (on Ctrl-C it marks the
    running trials TERMINATED while cleaning up), so the callback counts what really ended: trials that
    completed, were stopped by the scheduler or errored for good while it watched, plus those a restore
    found already finished. The experiment is complete when that count reaches the number it was launched with.
    """

    def __init__(self, spec: SweepSpec, experiment: str, expected: int):
        self._spec = spec
        self._experiment = experiment
        self._root = spec.root
        self._expected = expected
        self._ended: set[str] = set()
        self._primed = False

    def _entry(self, trial: TuneTrial, error: str | None) -> dict[str, Any]:
        run, cell, seed = self._spec.identify(trial.config)
        last = {k: v for k, v in (trial.last_result or {}).items() if k not in TUNE_BOOKKEEPING}
        values = {k: v for k, v in trial.config.items() if k != "__trial_index__"} if self._spec.search == "optuna" else None
        return results.ledger_entry(
            self._spec, run, cell, seed, last, error=error, experiment=self._experiment,
            tune_trial_id=trial.trial_id, path=trial.path, values=values,
        )  # fmt: skip

    def _prime(self, trials: list) -> None:
        """Trials a restore found finished: count them, and ledger any a killed driver did not get to."""
        if self._primed:
            return
        self._primed = True
        ledger = results.Ledger(self._root)
        known = {(e.get("experiment"), e.get("tune_trial_id")) for e in ledger.load().values()}
        for t in trials:
            if t.status in (TuneTrial.TERMINATED, TuneTrial.ERROR):
                self._ended.add(t.trial_id)
                if (self._experiment, t.trial_id) not in known:
                    ledger.record(self._entry(t, error_line(t) if t.status == TuneTrial.ERROR else None))

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._prime(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        entry = self._entry(trial, None)
        ledger = results.Ledger(self._root)
        old = ledger.get(entry["trial_id"])
        replay = isinstance(old, dict) and old.get("tune_trial_id") == trial.trial_id and old.get("status") != "error"
        if not replay:  # a restored trial that had already ended keeps its first record
            ledger.record(entry)
        self._ended.add(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        results.Ledger(self._root).record(self._entry(trial, error_line(trial)))
        self._ended.add(trial.trial_id)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._prime(trials)  # an experiment restored already finished never steps
        unfinished = [t.trial_id for t in trials if t.trial_id not in self._ended]
        complete = len(self._ended) >= self._expected and not unfinished
        storage.write_json(
            join_uri(results.SweepStore(self._root).experiment_uri(self._experiment), STATUS_FILE),
            {"complete": complete, "ended": len(self._ended), "expected": self._expected, "unfinished": unfinished, "at": results.now()},
        )


def say(text: str) -> None:
    """One progress line on stderr (stdout is kept for the summary table)."""
    print(f"[vaeray {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class ProgressCallback(tune.Callback):
    """A line per trial event, in trial ids, instead of Tune's wide tables (``verbose=0`` for Tune)."""

    def __init__(self, spec: SweepSpec):
        self._spec = spec

    def _name(self, trial: TuneTrial) -> str:
        try:
            return self._spec.trial_name(trial.config)
        except Exception:
            return str(trial)

    def on_trial_start(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        note = " (from its checkpoint)" if trial.checkpoint is not None else ""
        say(f"start  {self._name(trial)}{note}")

    def on_trial_complete(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        last = trial.last_result or {}
        value = last.get(self._spec.metric)
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "-"
        say(f"end    {self._name(trial)} at step {last.get('step', '?')}: {self._spec.metric} {shown}")

    def on_trial_recover(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        say(f"retry  {self._name(trial)} (failure {trial.num_failures} of {self._spec.max_failures} allowed): {error_line(trial)}")

    def on_trial_error(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        say(f"error  {self._name(trial)}: {error_line(trial)}")


def _wandb_callback(spec: SweepSpec, notes: list[str]):
    """``WandbLoggerCallback`` with one run per trial, grouped per configuration; None for ``mode: off``."""
    mode = spec.wandb.effective_mode(notes)
    if mode == "off":
        return None
    from ray.air.integrations.wandb import WandbLoggerCallback

    class GroupedWandb(WandbLoggerCallback):
        def __init__(self, sweep: SweepSpec, **kwargs: Any):
            super().__init__(**kwargs)
            self._sweep = sweep

        def setup(self, *args: Any, **kwargs: Any) -> None:
            if self.kwargs.get("mode") == "offline":
                os.environ["WANDB_MODE"] = "offline"  # Ray then skips its API-key check (no prompt)
            super().setup(*args, **kwargs)

        def log_trial_start(self, trial: TuneTrial) -> None:
            run, cell, seed = self._sweep.identify(trial.config)
            self.group = f"{self._sweep.wandb.group or self._sweep.name}-{cell}"  # seeds of a configuration
            self.kwargs["name"] = trial_id(cell, seed)
            self.kwargs["config"] = run
            super().log_trial_start(trial)

    kwargs: dict[str, Any] = {}
    if not os.environ.get("WANDB_DIR"):
        # The logging actors run on the driver's node; keep offline runs where `wandb sync` can find them
        # later (Tune's per-trial staging directory is temporary and its copy in storage is taken too early).
        base = spec.root if not storage.is_uri(spec.root) else str(Path.home() / "vaeray_wandb" / spec.name)
        os.makedirs(base, exist_ok=True)
        kwargs["dir"] = base
    return GroupedWandb(
        spec,
        **kwargs,
        project=spec.wandb.project,
        upload_timeout=UPLOAD_TIMEOUT_S,
        mode=mode,
        resume="allow",  # a restored trial continues its own run
        tags=[spec.name],
        job_type="trial",
    )


# --- running a sweep --------------------------------------------------------------------------------------


class _TrialNames:
    """Trial names and directory names are the trial id ``<config hash>-s<seed>``."""

    def __init__(self, spec: SweepSpec, unique: bool):
        self._spec = spec
        self._unique = unique
        self._used: set[str] = set()

    def __call__(self, trial: TuneTrial) -> str:
        name = self._spec.trial_name(trial.config)
        if self._unique:
            if name in self._used:  # Optuna may suggest a configuration twice: keep the directories apart
                name = f"{name}-{trial.trial_id}"
            self._used.add(name)
        return name


class _Ray:
    """Starts Ray only when a sweep has something to run; shuts down only what it started."""

    def __init__(self, address: str | None):
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.started = False

    def ensure(self) -> None:
        if ray.is_initialized():
            return
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:  # "local" ignores a stale /tmp/ray/ray_current_cluster left by a killed `ray start`
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
        self.started = True

    def close(self) -> None:
        if self.started and ray.is_initialized():
            ray.shutdown()


def cluster_view(address: str | None) -> ClusterView:
    """Per-node CPU/GPU of the Ray cluster at ``address`` (connects, reads, disconnects)."""
    r = _Ray(address)
    r.ensure()
    try:
        nodes = tuple(
            (float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0))) for n in ray.nodes() if n.get("Alive")
        )
    finally:
        r.close()
    return ClusterView(f"Ray cluster at {r.address or 'local'}", nodes)


def run_sweep(
    spec: SweepSpec,
    *,
    restart: bool = False,
    data_dir: str | None = None,
    address: str | None = None,
    verbose: int = 1,
) -> str:
    """Run what the sweep still needs and return the summary table.

    1. ``--restart``: delete the sweep's state first.
    2. An experiment left pending by an interruption is restored (finished trials kept, running ones resumed
       from their last checkpoint, errored ones retried up to ``max_failures``) if its trials still belong to
       the sweep file; otherwise its finished trials are kept and it is abandoned.
    3. Trials (grid/random) or configurations (Optuna) missing from the ledger run as a new experiment.
    4. ``results.parquet`` is written from the ledger, also after an interruption.

    Raises:
        SweepInterrupted: the experiment stopped early (Ctrl-C, SIGTERM); rerun the same command to resume.
    """
    store = results.SweepStore(spec.root)
    try:
        if restart:
            store.wipe()
        store.save_sweep_file(Path(spec.source).read_text() if Path(spec.source).is_file() else "")
    except OSError as e:  # unreachable bucket, no credentials, read-only path: before anything starts
        raise ConfigError(f"cannot write to {spec.root}: {str(e).splitlines()[0][:200]}", "sweep.storage", spec.source) from None
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    notes: list[str] = []
    runtime = _Ray(address)
    try:
        pending = store.pending()
        if pending:
            _resume(spec, store, pending, runtime, data_dir, verbose, notes)
        _launch_missing(spec, store, runtime, data_dir, verbose, notes)
    finally:
        runtime.close()
        df = results.frame(plan.entries(spec, store))
        where = store.write_results(df) if not df.empty else None
    text = results.summary(df, spec.metric, spec.mode)
    lines = [text, *(f"note: {n}" for n in notes)]
    if where:
        lines.append(f"results: {where} ({len(df)} trials)")
    return "\n".join(lines)


def _resume(
    spec: SweepSpec, store: results.SweepStore, pending: Mapping[str, Any], runtime: _Ray, data_dir: str | None,
    verbose: int, notes: list[str],
) -> None:  # fmt: skip
    """Restore the experiment an interruption left pending, or abandon it (its finished trials are kept)."""
    name = pending.get("experiment", "")
    path = store.experiment_uri(name)
    compatible = plan.resumable(spec, pending)
    if compatible and tune.Tuner.can_restore(path):
        runtime.ensure()
        notes.append(f"resumed interrupted experiment {name}")
        tuner = tune.Tuner.restore(path, trainable=wrapped_trainable(spec, name, data_dir), resume_errored=True)
        _fit(tuner, spec, store, name, pending)
        return
    why = "the sweep file changed" if not compatible else "Tune saved no state for it"
    notes.append(f"experiment {name} was not resumed ({why}); its finished trials are kept")
    store.clear_pending()


def _launch_missing(
    spec: SweepSpec, store: results.SweepStore, runtime: _Ray, data_dir: str | None, verbose: int, notes: list[str]
) -> None:
    """A new experiment for the trials (grid/random) or configurations (Optuna) the ledger lacks."""
    launch = plan.next_launch(spec, store, notes)
    if launch is None:
        return
    runtime.ensure()
    name = store.next_experiment()
    record = launch.record(spec, name)
    store.set_pending(record)
    notes.append(f"experiment {name}: {launch.count} trial(s)")
    tuner = _new_tuner(spec, store, name, launch, data_dir, verbose, notes)
    _fit(tuner, spec, store, name, record)


def _new_tuner(
    spec: SweepSpec, store: results.SweepStore, name: str, launch: plan.Launch, data_dir: str | None, verbose: int,
    notes: list[str],
) -> tune.Tuner:  # fmt: skip
    if spec.search == "optuna":
        search_alg, param_space, num_samples = _optuna_search(spec, store, notes), {}, launch.count
    else:
        search_alg, param_space, num_samples = None, {"run": tune.grid_search([t.config for t in launch.trials])}, 1
    scheduler = None
    if spec.scheduler.name != "none":
        state_uri = join_uri(store.experiment_uri(name), RUNGS_FILE)
        scheduler = SeedGroupedScheduler(spec, launch.members() or None, state_uri, verbose)
    callbacks: list = [LedgerCallback(spec, name, expected=launch.count)]
    if verbose:
        callbacks.append(ProgressCallback(spec))
    wandb_cb = _wandb_callback(spec, notes)
    if wandb_cb is not None:
        callbacks.append(wandb_cb)
    return tune.Tuner(
        wrapped_trainable(spec, name, data_dir),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=spec.max_concurrent,
            reuse_actors=spec.resources.gpu == 0,  # GPU trials get a fresh process: no leftover CUDA memory
            trial_name_creator=_TrialNames(spec, unique=False),
            trial_dirname_creator=_TrialNames(spec, unique=True),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=store.experiments_uri,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
            verbose=max(0, verbose - 1),  # Tune's own tables only when asked for more (-v)
        ),
    )


def _optuna_search(spec: SweepSpec, store: results.SweepStore, notes: list[str]):
    """Repeater(OptunaSearch): each suggestion runs once per seed and Optuna sees the seed mean. Finished
    configurations of earlier experiments of the same search warm-start the study without rerunning."""
    import optuna
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    from .space import optuna_distributions

    points, rewards = plan.warm_start(spec, store, notes)
    searcher = OptunaSearch(
        space=optuna_distributions(spec.space),
        metric=spec.metric,
        mode=spec.mode,
        sampler=optuna.samplers.TPESampler(seed=plan.sampler_seed(spec, store)),
        points_to_evaluate=points or None,
        evaluated_rewards=rewards or None,
    )
    return Repeater(searcher, repeat=len(spec.seeds), set_index=True)


def _fit(tuner, spec: SweepSpec, store: results.SweepStore, name: str, record: Mapping[str, Any]) -> None:
    """Run the experiment; on a clean end move it from pending to history, else raise SweepInterrupted."""
    with _sigterm_as_sigint(), _quiet_tune():
        tuner.fit()
    status = storage.read_json(join_uri(store.experiment_uri(name), STATUS_FILE)) or {}
    if not status.get("complete"):
        n = status.get("expected", 0) - status.get("ended", 0) if status else 0
        raise SweepInterrupted(
            f"interrupted: {n if n > 0 else 'some'} trial(s) of {name} did not finish; finished results are kept in {spec.root}. "
            f"Run the same command to resume (or add --restart to start afresh)"
        )
    store.add_history({**record, "finished": results.now()})
    store.clear_pending()


def _no_restore_hint(record: logging.LogRecord) -> bool:
    """Drop Tune's "Resume experiment with: Tuner.restore(...)" hint: with vaeray, rerunning the same command
    resumes (and SweepInterrupted says so)."""
    return "Tuner.restore(" not in record.getMessage()


class _quiet_tune:
    """Environment for a quiet Tune run, restored afterwards.

    Tune's "new output" prints an experiment box even at verbose=0, while the legacy reporter at verbosity 0
    prints nothing, leaving stdout to vaeray's summary (progress lines go to stderr). The "snapshotting
    triggered multiple times" warning fires whenever trials checkpoint often, which a sweep of short trials
    does by design; unless the user set the threshold, it is off.
    """

    SETTINGS = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": None}

    def __enter__(self):
        self._old = {k: os.environ.get(k) for k in self.SETTINGS}
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        logging.getLogger("ray.tune.tune").addFilter(_no_restore_hint)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger("ray.tune.tune").removeFilter(_no_restore_hint)
        for key, value in self._old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _sigterm_as_sigint:
    """Treat SIGTERM (``ray job stop``, a spot reclaim notice, ``kill``) like Ctrl-C: Tune then saves its
    state and returns, instead of dying between snapshots."""

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


__all__ = [
    "LedgerCallback",
    "SeedGroupedScheduler",
    "SweepInterrupted",
    "cluster_view",
    "run_sweep",
    "train_trial",
]
