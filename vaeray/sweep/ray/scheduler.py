"""Seed-grouped early stopping as a Tune scheduler: ASHA / median rules decided per configuration on the
seed mean, so all seeds of a configuration stop together. The rules and their book live in
:mod:`vaeray.sweep.rungs` (no Ray); this module only maps Tune's trial events onto them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from ..identity import trial_id
from ..rungs import RungBook, SavedBook
from ..spec import SweepSpec
from .callbacks import say

log = logging.getLogger(__name__)
RUNGS_FILE = "vaeray_rungs.json"


def rungs_uri(experiments_uri: str, experiment: str) -> str:
    """``<experiments>/<experiment>.vaeray_rungs.json``: beside the experiment's directory, not inside it.

    Tune's driver keeps a staging copy of the experiment directory and uploads it to storage again and again;
    after a restore that copy holds the book as it was downloaded, so a book kept inside the directory would
    be overwritten with its pre-restore state and a second interruption would forget the decisions since.
    """
    return f"{experiments_uri.rstrip('/')}/{experiment}.{RUNGS_FILE}"

class SeedGroupedScheduler(FIFOScheduler):
    """A Tune scheduler that applies a :class:`vaeray.sweep.rungs.RungBook` to trials grouped by configuration.

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
        if step is None or result.get("vaeray_error"):
            return TrialScheduler.CONTINUE
        if self._max_t is not None and step >= self._max_t:
            return TrialScheduler.STOP
        self._state.load()
        cell, seed, steps = self._identity(trial)
        stopped_at = self._book.stopped.get(cell)
        if stopped_at is not None and step < stopped_at:
            # A seed of a configuration stopped at a rung it has not reached yet: after a restore, one whose
            # progress up to the rung was lost with the driver (no checkpoint at the rung yet, see
            # _stoppable). Its siblings were stopped at the rung; so is it, when it gets there, with the same
            # step and metrics as without the interruption.
            return TrialScheduler.CONTINUE
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

    def _stoppable(self, t: TuneTrial) -> bool:
        """A seed of a stopped configuration that can be stopped where it is: paused (at the rung), or
        pending with a result at the rung where its configuration was stopped (a restored paused seed).

        A pending seed without such a result is started instead. After a restore, that is a seed whose last
        reports Tune's snapshot missed (the driver was killed right after the configuration was stopped):
        either it had not started in the snapshot (Tune cannot even stop it: "Should not access
        trial_fs_path without setting trial_dir_name") or its last result there is older than the rung, and
        stopping it would record it at that older step, or with no result at all. Started, it resumes from its
        checkpoint in storage and replays the report saved there (:mod:`.trainable`), at which the stopped
        configuration's STOP ends it with the same step and metrics as without the interruption.
        """
        if t.status == TuneTrial.PAUSED:
            return True
        if t.status != TuneTrial.PENDING:
            return False
        milestone = self._book.stopped.get(self._identity(t)[0])
        step = (t.last_result or {}).get("step")
        return milestone is not None and isinstance(step, (int, float)) and step >= milestone

    def _stop_paused(self, tune_controller, cell: str, current: TuneTrial | None) -> None:
        """Stop the not-running seeds of a stopped configuration: paused ones, and pending ones (a restore
        turns paused trials into pending trials, and a restored seed of a stopped configuration must not
        start again)."""
        for t in tune_controller.get_trials():
            if t is not current and self._stoppable(t) and self._identity(t)[0] == cell:
                self._state.waiting.pop(t.trial_id, None)
                tune_controller.stop_trial(t)

    def choose_trial_to_run(self, tune_controller) -> TuneTrial | None:
        """The next trial to start, checked against the book first.

        Seeds waiting at a rung (paused, or pending after a restore: Ray restores paused trials as pending)
        start only once their configuration was judged 'continue', and before anything new (finish what was
        started). A seed of a stopped configuration is stopped, never started (unless it never started in
        this experiment: see :meth:`_stoppable`). Then pending trials in order, then paused trials this
        scheduler knows nothing about (after a restore).
        """
        self._state.load()
        trials = tune_controller.get_trials()
        stopped = []
        for t in trials:
            if self._stoppable(t) and self._identity(t)[0] in self._book.stopped:
                stopped.append(t)
        for t in stopped:
            self._state.waiting.pop(t.trial_id, None)
            tune_controller.stop_trial(t)
        if stopped:
            self._state.save()
        for t in trials:
            if t.status in (TuneTrial.PAUSED, TuneTrial.PENDING) and t.trial_id in self._state.waiting:
                if self._book.decided(self._identity(t)[0], self._state.waiting[t.trial_id]):
                    return t
        for t in trials:
            if t.status == TuneTrial.PENDING and t.trial_id not in self._state.waiting:
                return t
        for t in trials:
            if t.status == TuneTrial.PAUSED and t.trial_id not in self._state.waiting:
                return t
        return None

    def on_trial_complete(self, tune_controller, trial: TuneTrial, result: dict) -> None:
        if result.get("vaeray_error"):  # ended by a deterministic failure: decide on the other seeds
            self._forget(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: TuneTrial) -> None:
        if trial.should_recover():  # it will be retried from its checkpoint: still a member
            return
        self._forget(tune_controller, trial)

    def _forget(self, tune_controller, trial: TuneTrial) -> None:
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

