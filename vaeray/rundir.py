"""The run directory ``vaeray train`` writes.

::

    RUN_DIR/
      config.yaml            the resolved run config (every default filled in)
      metrics.jsonl          one JSON row per logging step (eval metrics appear on the rows where they ran)
      checkpoints/last.pt    the latest full training state (atomic; ``--resume`` continues from it)
      model.pt               the final model: {"model": state_dict, "config": ...}
      eval.json              written by ``vaeray eval RUN_DIR``
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from . import yamlio
from .errors import ConfigError

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
LAST = "checkpoints/last.pt"
FINAL = "model.pt"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / LAST).is_file()

    def prepare(self, config: dict[str, Any], resume: bool) -> dict[str, Any] | None:
        """Create the directory; return the checkpoint to resume from (or None). Never overwrites results."""
        if self.path.exists() and any(self.path.iterdir()) and not resume:
            raise ConfigError(
                f"run directory {self.path} already holds a run; pass --resume to continue it "
                "or --run-dir to write elsewhere"
            )
        state = None
        if resume and self.has_checkpoint:
            state = ckpt.load(self.path / LAST)
            self._truncate_metrics(int(state["step"]))
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / CONFIG).write_text(yamlio.dump(config))
        return state

    def _truncate_metrics(self, step: int) -> None:
        """Drop rows logged after the checkpoint, so a resumed run's log has each step once."""
        f = self.path / METRICS
        if f.is_file():
            rows = [line for line in f.read_text().splitlines() if line.strip()]
            keep = [line for line in rows if json.loads(line).get("step", 0) <= step]
            f.write_text("".join(line + "\n" for line in keep))

    def report(self, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        if state is not None:
            ckpt.save(state, self.path / LAST)

    def finish(self, state: dict[str, Any]) -> None:
        ckpt.save({"model": state["model"], "config": state["config"], "step": state["step"]}, self.path / FINAL)

    def metrics(self):
        import pandas as pd

        return pd.read_json(self.path / METRICS, lines=True)

    def config(self) -> dict[str, Any]:
        return yamlio.load(self.path / CONFIG)
