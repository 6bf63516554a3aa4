"""Tune callbacks: the ledger (each finished trial recorded the moment it ends), one-line progress and error
reasons, W&B runs grouped per configuration, and trial names that are trial ids."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.experiment import Trial as TuneTrial

from ... import storage
from ...errors import VaerayError, last_exception_line
from ...storage import join_uri
from .. import results
from ..identity import trial_id
from ..spec import SweepSpec

STATUS_FILE = "vaeray_status.json"
ERROR_KEY = "vaeray_error"  # vaeray.sweep.ray.trainable.ERROR_KEY (kept here too: no import cycle)
UPLOAD_TIMEOUT_S = 60  # W&B: don't wait the default 30 min for runs that never finished
# Keys Tune adds to every result that say nothing about the model (time_total_s is kept: it is the cost)
TUNE_BOOKKEEPING = frozenset(
    {"timestamp", "done", "training_iteration", "pid", "time_this_iter_s", "time_since_restore", "iterations_since_restore"}
)

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
        entry = self._entry(trial, (trial.last_result or {}).get(ERROR_KEY))
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
        if last.get(ERROR_KEY):
            say(f"error  {self._name(trial)}: {last[ERROR_KEY]} (not retried: it would fail the same way)")
            return
        value = last.get(self._spec.metric)
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "-"
        say(f"end    {self._name(trial)} at step {last.get('step', '?')}: {self._spec.metric} {shown}")

    def on_trial_recover(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        say(f"retry  {self._name(trial)} (failure {trial.num_failures} of {self._spec.max_failures} allowed): {error_line(trial)}")

    def on_trial_error(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        say(f"error  {self._name(trial)}: {error_line(trial)}")


class StatusCallback(tune.Callback):
    """Every ``every_s`` seconds a compact status line (:func:`vaeray.report.live.status_line`): trials done /
    running / paused / pending, the best configuration so far by its seed mean, elapsed time and ETA. Fills the
    silence between trial events on long sweeps; ``VAERAY_STATUS_EVERY`` sets the period (0: off)."""

    STATES = {TuneTrial.TERMINATED: "done", TuneTrial.RUNNING: "running", TuneTrial.PAUSED: "paused",
              TuneTrial.PENDING: "pending", TuneTrial.ERROR: "error"}  # fmt: skip

    def __init__(self, spec: SweepSpec, every_s: float | None = None):
        self._spec = spec
        self._every = float(os.environ.get("VAERAY_STATUS_EVERY", 30)) if every_s is None else every_s
        self._start = time.monotonic()
        self._last = self._start
        self._cells: dict[str, tuple[str, int]] = {}

    def _cell(self, trial: TuneTrial) -> tuple[str, int]:
        if trial.trial_id not in self._cells:
            run, cell, _ = self._spec.identify(trial.config)
            self._cells[trial.trial_id] = (cell, int(run["train"]["steps"]))
        return self._cells[trial.trial_id]

    def line(self, trials: list) -> str:
        from ...report.live import TrialState, status_line

        states = []
        for t in trials:
            cell, total = self._cell(t)
            last = t.last_result or {}
            value = last.get(self._spec.metric)
            value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            states.append(TrialState(cell, self.STATES.get(t.status, "pending"), float(last.get("step", 0) or 0), total, value))
        return status_line(states, self._spec.metric, self._spec.mode, time.monotonic() - self._start)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._every <= 0 or now - self._last < self._every:
            return
        self._last = now
        try:
            say(f"status {self.line(trials)}")
        except Exception:  # a status line must never stop a sweep
            pass


def wandb_callback(spec: SweepSpec, notes: list[str]):
    """``WandbLoggerCallback`` with one run per trial, grouped per configuration; None for ``mode: off``."""
    mode = spec.wandb.effective_mode(notes)
    if mode == "off":
        return None
    import ray
    from ray.air.integrations.wandb import WANDB_ENV_VAR, WandbLoggerCallback, _WandbLoggingActor

    class KeyedLoggingActor(_WandbLoggingActor):
        """Takes the W&B key as a constructor argument. Ray's own callback puts it in the actor's
        ``runtime_env`` env_vars, which Ray writes into its session logs (runtime-env and agent logs) in
        clear text; an argument travels in the task only."""

        def __init__(self, *args: Any, vaeray_key: str | None = None, **kwargs: Any):
            if vaeray_key:
                os.environ[WANDB_ENV_VAR] = vaeray_key
            super().__init__(*args, **kwargs)

    class GroupedWandb(WandbLoggerCallback):
        _logger_actor_cls = KeyedLoggingActor

        def __init__(self, sweep: SweepSpec, **kwargs: Any):
            super().__init__(**kwargs)
            self._sweep = sweep

        def _start_logging_actor(self, trial: TuneTrial, exclude_results: list, **wandb_init_kwargs: Any) -> None:
            if trial in self._trial_logging_futures:
                return
            if not self._remote_logger_class:  # as Ray does it, minus the key in runtime_env
                from ray.air.integrations.wandb import _force_on_current_node

                self._remote_logger_class = ray.remote(
                    num_cpus=0, **_force_on_current_node(), max_restarts=-1, max_task_retries=-1
                )(self._logger_actor_cls)
            key = os.environ.get(WANDB_ENV_VAR)
            super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs, **({"vaeray_key": key} if key else {}))

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


class TrialNames:
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

