"""Interruption points that a test cannot hit from outside (issue 14, item 3), for the driver of a
`vaeray sweep` subprocess: listed under ``sweep.imports`` (so the driver imports it while it validates the
sweep file) and armed by ``VAERAY_TEST_KILL_AT`` in that driver's environment only:

* ``stopping``: SIGKILL of the driver the moment the seed-grouped scheduler has decided to stop a
  configuration (its book saved, its paused and pending seeds asked to stop), before Tune has ended the
  trials and before the ledger has recorded any of them as stopped;
* ``final-write``: SIGKILL in the middle of writing ``results.parquet``: half of its bytes are in the
  temporary file that vaeray renames over ``results.parquet`` once written, and the rename never happens.

Ray workers import this module too; it arms nothing there (they do not have the variable, and are not the
``vaeray`` process).
"""

from __future__ import annotations

import os
import signal
import sys

POINT = os.environ.get("VAERAY_TEST_KILL_AT") if os.path.basename(sys.argv[0]) == "vaeray" else None


def _die() -> None:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _arm_stopping() -> None:
    from ray.tune.schedulers import TrialScheduler

    from vaeray.sweep.ray.scheduler import SeedGroupedScheduler

    original = SeedGroupedScheduler.on_trial_result

    def on_trial_result(self, tune_controller, trial, result):
        action = original(self, tune_controller, trial, result)
        if action == TrialScheduler.STOP and self._identity(trial)[0] in self._book.stopped:
            _die()
        return action

    SeedGroupedScheduler.on_trial_result = on_trial_result


def _arm_final_write() -> None:
    import io

    import pyarrow.parquet as pq

    original = pq.write_table

    def write_table(table, where, *args, **kwargs):
        if isinstance(where, str) and os.path.basename(where).startswith(".tmp-") and where.endswith(".parquet"):
            buf = io.BytesIO()
            original(table, buf, *args, **kwargs)
            with open(where, "wb") as f:
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            _die()
        return original(table, where, *args, **kwargs)

    pq.write_table = write_table


if POINT == "stopping":
    _arm_stopping()
elif POINT == "final-write":
    _arm_final_write()
