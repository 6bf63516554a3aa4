"""Running a sweep on Ray Tune: restore what an interruption left, launch what the ledger lacks, write results.

:func:`run_sweep` restores the experiment an interruption left pending, then launches a new experiment for the
trials (or Optuna configurations) the ledger does not have yet (:mod:`vaeray.sweep.plan` decides which), then
writes ``results.parquet``. Here too: building the ``Tuner`` (grid trials or Optuna behind a ``Repeater``),
starting and stopping Ray, reading a cluster's resources for the dry run, and signal handling.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from ... import storage
from ...errors import ConfigError, TrialsFailed, VaerayError, clip
from ...storage import join_uri
from .. import plan, results
from ..spec import SweepSpec
from ..tune_state import torn_snapshots
from . import callbacks, scheduler, trainable
from .callbacks import STATUS_FILE, LedgerCallback, ProgressCallback, StatusCallback, TrialNames, wandb_callback
from .local import RayRuntime
from .scheduler import SeedGroupedScheduler, rungs_uri
from .trainable import wrapped_trainable


class SweepInterrupted(VaerayError):
    """The sweep stopped before every trial finished (Ctrl-C, SIGTERM); the same command resumes it."""

    exit_code = 130


# Where the sweep wing's modules lived before it was a folder (vaeray <= 0.1): Tune pickles the scheduler, the
# callbacks (each holding the SweepSpec, its settings and leaves) and the trial-name creators into an
# experiment's state by module path, so restoring an experiment that an earlier vaeray interrupted needs them.
LEGACY_MODULES = ("space", "settings", "configurations", "identity", "dryrun", "plan", "rungs", "results")


@contextmanager
def legacy_names() -> Iterator[None]:
    """Make the pre-0.2 module paths (``vaeray.tune``, ``vaeray.results``, ``vaeray.sweep.SweepSpec``, ...)
    resolve while an experiment is restored. The aliases exist only for the restore, so nothing else can come
    to depend on the old paths."""
    import importlib

    import vaeray.sweep as wing

    from .. import spec

    added: list[str] = []
    tune_alias = types.ModuleType("vaeray.tune", "compatibility alias for restoring experiments of vaeray <= 0.1")
    for module in (trainable, scheduler, callbacks):
        tune_alias.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    tune_alias.__dict__.update({"_TrialNames": callbacks.TrialNames, "_wandb_callback": callbacks.wandb_callback})
    tune_alias.SweepInterrupted = SweepInterrupted  # type: ignore[attr-defined]
    aliases = {"vaeray.tune": tune_alias}
    aliases.update({f"vaeray.{m}": importlib.import_module(f"vaeray.sweep.{m}") for m in LEGACY_MODULES})
    lent: list[tuple[types.ModuleType, str]] = []
    for name, module in aliases.items():
        if name not in sys.modules:
            sys.modules[name] = module
            added.append(name)
        elif sys.modules[name] is not module:  # a new module owns the name now (vaeray.results, the results
            real = sys.modules[name]  # API): it lends the old names for the restore only
            for k, v in vars(module).items():
                if not k.startswith("_") and not hasattr(real, k):
                    setattr(real, k, v)
                    lent.append((real, k))
    old_spec_names = [n for n in ("SweepSpec", "load", "parse", "varying_keys") if not hasattr(wing, n)]
    for n in old_spec_names:  # the old module vaeray.sweep is this package now
        setattr(wing, n, getattr(spec, n))
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
        for real, k in lent:
            delattr(real, k)
        for n in old_spec_names:
            delattr(wing, n)


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
    if not (address or os.environ.get("RAY_ADDRESS") or ray.is_initialized()):
        _check_fits_here(spec)
    store = results.SweepStore(spec.root)
    try:
        if restart:
            store.wipe()
        store.save_sweep_file(spec.text())
    except OSError as e:  # unreachable bucket, no credentials, read-only path: before anything starts
        raise ConfigError(f"cannot write to {spec.root}: {clip(str(e), 200)}", "sweep.storage", spec.source) from None
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    notes: list[str] = []
    runtime = RayRuntime(address)
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
    summary = "\n".join(lines)
    failed = df[df["status"] == "error"] if "status" in df else df.iloc[:0]
    if len(failed):
        reasons = [(str(r["trial_id"]), " ".join(str(r.get("error") or "no reason recorded").split())) for _, r in failed.iterrows()]
        raise TrialsFailed(
            f"{len(failed)} of {len(df)} trial(s) failed; every result is written to {where or spec.root} "
            "(tracebacks: the trial's error.txt, or Ray's worker logs for failures that are not retried)",
            summary=summary, failures=reasons,
        )  # fmt: skip
    return summary


def _check_fits_here(spec: SweepSpec) -> None:
    """A local sweep whose trial asks for more than this machine has would wait for ever: say so before Ray
    starts (the dry run's own check; a cluster may autoscale, so only the local case is refused)."""
    from ..dryrun import local_cluster

    here, r = local_cluster(), spec.resources
    if not any(cpu >= r.cpu and gpu >= r.gpu for cpu, gpu in here.nodes):
        raise ConfigError(
            f"a trial asks for cpu {r.cpu:g}, gpu {r.gpu:g} but this machine has {here.cpu:g} CPU, {here.gpu:g} GPU: "
            "no trial could ever start (lower sweep.resources, or pass --address of a cluster that has them)",
            "sweep.resources", spec.source,
        )  # fmt: skip


def _resume(
    spec: SweepSpec, store: results.SweepStore, pending: Mapping[str, Any], runtime: RayRuntime, data_dir: str | None,
    verbose: int, notes: list[str],
) -> None:  # fmt: skip
    """Restore the experiment an interruption left pending, or abandon it (its finished trials are kept)."""
    name = pending.get("experiment", "")
    path = store.experiment_uri(name)
    compatible = plan.resumable(spec, pending)
    torn = torn_snapshots(path) if compatible else []
    if compatible and not torn and tune.Tuner.can_restore(path):
        runtime.ensure()
        notes.append(f"resumed interrupted experiment {name}")
        with legacy_names():
            with _quiet_tune():
                tuner = tune.Tuner.restore(path, trainable=wrapped_trainable(spec, name, data_dir), resume_errored=True)
            _fit(tuner, spec, store, name, pending, own_loggers=False)
        return
    why = ("the sweep file changed" if not compatible else
           f"the interruption tore Tune's {torn[0]}" if torn else "Tune saved no state for it")  # fmt: skip
    notes.append(f"experiment {name} was not resumed ({why}); its finished trials are kept")
    store.clear_pending()


def _launch_missing(
    spec: SweepSpec, store: results.SweepStore, runtime: RayRuntime, data_dir: str | None, verbose: int, notes: list[str]
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
        state_uri = rungs_uri(store.experiments_uri, name)
        scheduler = SeedGroupedScheduler(spec, launch.members() or None, state_uri, verbose)
    # Tune's result.json (vaeray report reads it) and no other logger: see _quiet_tune
    callbacks: list = [JsonLoggerCallback(), LedgerCallback(spec, name, expected=launch.count)]
    if verbose:
        callbacks += [ProgressCallback(spec), StatusCallback(spec)]
    wandb_cb = wandb_callback(spec, notes)
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
            trial_name_creator=TrialNames(spec, unique=False),
            trial_dirname_creator=TrialNames(spec, unique=True),
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

    from ..space import optuna_distributions

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


def _fit(
    tuner, spec: SweepSpec, store: results.SweepStore, name: str, record: Mapping[str, Any], own_loggers: bool = True
) -> None:
    """Run the experiment; on a clean end move it from pending to history, else raise SweepInterrupted.
    ``own_loggers``: the tuner carries its own JsonLoggerCallback (a new experiment; a restored one keeps the
    callbacks it was created with, so an experiment from an older vaeray keeps Tune's default loggers)."""
    with _sigterm_as_sigint(), _quiet_tune(own_loggers):
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


def _no_missing_metrics(record: logging.LogRecord) -> bool:
    """Drop Tune's "Failed to fetch metrics for N trial(s): FileNotFoundError(... result.json ...)" warning.
    A restore reads the result files of every trial the snapshot knew, and those that had not reported yet
    (pending, or started just before the interruption) have none: nothing is wrong, nothing is lost (vaeray's
    results come from its ledger), but it printed a multi-line warning with Python exception reprs."""
    return not record.getMessage().startswith("Failed to fetch metrics for")


def _no_missing_log_file(record: logging.LogRecord) -> bool:
    """Drop Tune's "Remote file not found: .../result.json" warning. Restoring a trial that has a checkpoint,
    Tune's logger copies the trial's result files back from storage first; a driver killed before it synced
    them leaves none (the trial had checkpointed, its reports were still in the driver). Nothing depends on
    them: the resumed trial writes its reports anew and vaeray's results come from its ledger."""
    return not record.getMessage().startswith("Remote file not found:")


# logger -> filter, installed while Tune runs or restores
_TUNE_FILTERS = {
    "ray.tune.tune": _no_restore_hint,
    "ray.tune.analysis.experiment_analysis": _no_missing_metrics,
    "ray.tune.logger.logger": _no_missing_log_file,
}


class _quiet_tune:
    """Environment for a quiet Tune run, restored afterwards.

    Tune's "new output" prints an experiment box even at verbose=0, while the legacy reporter at verbosity 0
    prints nothing, leaving stdout to vaeray's summary (progress lines go to stderr). The "snapshotting
    triggered multiple times" warning fires whenever trials checkpoint often, which a sweep of short trials
    does by design; unless the user set the threshold, it is off. With ``own_loggers`` (the tuner has its own
    JsonLoggerCallback, which writes the ``result.json`` that ``vaeray report`` reads), Tune's other default
    loggers are off unless the user set ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``: the CSV logger and, where
    tensorboardX is installed, TensorBoard event files, which nothing in vaeray reads and which the driver
    would otherwise write at every report of every trial.
    """

    SETTINGS = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": None,
                "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": None}

    def __init__(self, own_loggers: bool = False):
        self.own_loggers = own_loggers

    def __enter__(self):
        self._old = {k: os.environ.get(k) for k in self.SETTINGS}
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        if self.own_loggers:
            os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        for name, keep in _TUNE_FILTERS.items():
            logging.getLogger(name).addFilter(keep)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name, keep in _TUNE_FILTERS.items():
            logging.getLogger(name).removeFilter(keep)
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


__all__ = ["SweepInterrupted", "legacy_names", "run_sweep"]

