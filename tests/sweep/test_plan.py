"""What a re-run still has to run, from the ledger alone (no Ray): extension, resume, Optuna warm start."""

from __future__ import annotations

import math

from vaeray.sweep import plan
from vaeray.sweep import spec as sw
from vaeray.sweep.results import Ledger, SweepStore, ledger_entry


def record(spec, run, cell, seed, loss, step=30, error=None, values=None):
    last = {"loss": loss, "step": step}
    entry = ledger_entry(spec, run, cell, seed, last, error=error, experiment="exp-001", tune_trial_id="t", path=None, values=values)
    Ledger(spec.root).record(entry)
    return entry


def test_only_trials_missing_from_the_ledger_are_launched(make_sweep):
    spec = sw.load(make_sweep(model={"latent_dim": {"grid": [2, 3]}}))
    store, notes = SweepStore(spec.root), []
    launch = plan.next_launch(spec, store, notes)
    assert [t.trial_id for t in launch.trials] == [t.trial_id for t in spec.trials()] and launch.count == 4
    first = spec.trials()[0]
    assert record(spec, first.config, first.cell, first.seed, 1.0)["status"] == "completed"
    launch = plan.next_launch(spec, store, notes)
    assert first.trial_id not in {t.trial_id for t in launch.trials} and launch.count == 3
    assert launch.members() == {first.cell: [1], spec.trials()[2].cell: [0, 1]}  # only seed 1 of the first
    assert launch.record(spec, "exp-002")["configurations"] == 2
    for t in spec.trials()[1:]:
        record(spec, t.config, t.cell, t.seed, 1.0)
    assert plan.next_launch(spec, store, notes) is None and notes == ["nothing to run: all 4 trials are in the ledger"]
    assert sorted(e["trial_id"] for e in plan.entries(spec, store)) == sorted(t.trial_id for t in spec.trials())


def test_a_pending_experiment_is_resumed_only_if_the_file_still_plans_its_trials(make_sweep):
    spec = sw.load(make_sweep("r", model={"latent_dim": {"grid": [2, 3]}}))
    ids = [t.trial_id for t in spec.trials()]
    assert plan.resumable(spec, {"experiment": "exp-001", "search": "grid", "trials": ids[:2]})
    assert not plan.resumable(spec, {"experiment": "exp-001", "search": "grid", "trials": [*ids, "0123456789-s0"]})


def test_optuna_counts_configurations_and_warm_starts_from_finished_ones(make_sweep):
    spec = sw.load(make_sweep(
        "o", model={"latent_dim": {"choice": [2, 3]}}, sweep={"search": "optuna", "num_samples": 3, "seeds": [0, 1]},
    ))
    store, notes = SweepStore(spec.root), []
    launch = plan.next_launch(spec, store, notes)
    assert launch.trials == [] and launch.count == 6 and launch.configurations == 3
    assert plan.sampler_seed(spec, store) == spec.sampler_seed
    store.add_history({**launch.record(spec, "exp-001"), "configurations": 2})
    assert plan.next_launch(spec, store, notes).configurations == 1 and plan.sampler_seed(spec, store) == spec.sampler_seed + 1
    for dim, losses in ((2, (1.0, 3.0)), (3, (1.0, math.nan))):
        run, cell, _ = spec.identify({"model.latent_dim": dim})
        for seed, loss in enumerate(losses):
            record(spec, {**run, "seed": seed}, cell, seed, loss, values={"model.latent_dim": dim})
    points, rewards = plan.warm_start(spec, store, notes)
    assert points == [{"model.latent_dim": 2}] and rewards == [2.0]  # the NaN seed keeps latent_dim 3 out
    assert notes[-1] == "Optuna warm-started from 1 finished configuration(s)"
