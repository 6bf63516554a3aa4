"""How a sweep starts a local Ray: only what a local sweep needs, with trial workers at normal priority.

Ray starts its worker processes at nice 15 (``worker_niceness``), so on a laptop shared with anything else a
sweep's trials ran at a third of ``vaeray train``'s speed; vaeray starts them at ``VAERAY_WORKER_NICENESS``
(default 0, normal priority; 15 restores Ray's default). Everything else is Ray's default: turning off the
prestarted workers (one idle Python worker per CPU) made a one-trial sweep's fixed cost ~12 s *longer* on the
2-core machine, since the trial then waits for a cold worker (docs/benchmarks.md).
``VAERAY_RAY_DEFAULTS=1`` starts Ray with its own defaults, niceness included (benchmarks/bench_ray.py
compares both). A cluster started with ``ray start`` keeps its own settings: start it with
``RAY_worker_niceness=0 ray start ...`` (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from typing import Any

NICENESS_ENV = "VAERAY_WORKER_NICENESS"


def local_init_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``ray.init(address="local", ...)`` beyond the dashboard and log settings."""
    if os.environ.get("VAERAY_RAY_DEFAULTS"):
        return {}
    niceness = int(os.environ.get(NICENESS_ENV, "0"))
    return {"_system_config": {"worker_niceness": niceness}}
