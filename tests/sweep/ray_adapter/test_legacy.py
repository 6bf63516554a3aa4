"""Experiments interrupted under vaeray <= 0.1 still restore: Tune pickled their scheduler, callbacks and
trial-name creators by the old module path ``vaeray.tune``, which the runner aliases during a restore only."""

from __future__ import annotations

import pickle
import sys

import pytest

from vaeray.sweep import results, rungs, settings, space, spec
from vaeray.sweep.ray import callbacks, runner, scheduler


def old_global(name: str, module: str = "vaeray.tune") -> bytes:
    """A pickle that refers to ``<module>.<name>`` the way Tune's saved state does (a GLOBAL opcode)."""
    return f"c{module}\n{name}\n.".encode()


@pytest.mark.parametrize(
    "module, name, new",
    [
        ("vaeray.tune", "SeedGroupedScheduler", scheduler.SeedGroupedScheduler),
        ("vaeray.tune", "LedgerCallback", callbacks.LedgerCallback),
        ("vaeray.tune", "ProgressCallback", callbacks.ProgressCallback),
        ("vaeray.tune", "_TrialNames", callbacks.TrialNames),
        ("vaeray.tune", "train_trial", runner.trainable.train_trial),
        ("vaeray.sweep", "SweepSpec", spec.SweepSpec),
        ("vaeray.settings", "Resources", settings.Resources),
        ("vaeray.settings", "SchedulerSpec", settings.SchedulerSpec),
        ("vaeray.space", "Leaf", space.Leaf),
        ("vaeray.rungs", "RungBook", rungs.RungBook),
        ("vaeray.results", "SweepStore", results.SweepStore),
    ],
)
def test_old_module_paths_resolve_during_a_restore_only(module, name, new):
    assert module not in sys.modules or module in ("vaeray.sweep", "vaeray.results")  # both real modules now
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        pickle.loads(old_global(name, module))
    with runner.legacy_names():
        assert pickle.loads(old_global(name, module)) is new
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        pickle.loads(old_global(name, module))
