"""The run directory ``vaeray train`` writes.

::

    RUN_DIR/
      config.yaml            the resolved run config (every default filled in)
      metrics.jsonl          one JSON row per logging step (eval metrics appear on the rows where they ran)
      checkpoints/last.pt    the latest full training state (atomic; ``--resume`` continues from it)
      model.pt               the final model: {"model": state_dict, "config": ...}
      resolved.json          what ``auto`` settings became: the device, the dataset's source (dSprites), versions
      eval.json              the latest ``vaeray eval RUN_DIR``
      eval_history.jsonl     every ``vaeray eval``: when, at which step, with which metric settings, the results
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
RESOLVED = "resolved.json"
EVAL = "eval.json"
EVAL_HISTORY = "eval_history.jsonl"


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

    def record_resolved(self, config: dict[str, Any], device: Any, dataset: Any) -> dict[str, Any]:
        """Write ``resolved.json``: what the config's ``auto`` values became on this machine (the device, the
        dSprites source, ...) so a run says what it actually used."""
        import platform
        from datetime import datetime, timezone

        import torch

        record: dict[str, Any] = {"device": str(device), "train.device": config["train"]["device"]}
        for key, value in config["data"].items():
            if value == "auto" and hasattr(dataset, key):
                record[f"data.{key}"] = getattr(dataset, key)
        if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
            record["gpu"] = torch.cuda.get_device_name(device)
        record.update(torch=torch.__version__, python=platform.python_version(),
                      started=datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
        (self.path / RESOLVED).write_text(json.dumps(record, indent=1))
        return record

    def record_eval(self, results: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Keep ``eval.json`` as the latest evaluation and append it, with its metric settings, to the history."""
        from datetime import datetime, timezone

        (self.path / EVAL).write_text(json.dumps(results, indent=2))
        row = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "step": results.get("step"),
               "metrics": metrics, "results": results}  # fmt: skip
        with open(self.path / EVAL_HISTORY, "a") as f:
            f.write(json.dumps(row) + "\n")

    def eval_history(self) -> list[dict[str, Any]]:
        f = self.path / EVAL_HISTORY
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []

    def finish(self, state: dict[str, Any]) -> None:
        ckpt.save({"model": state["model"], "config": state["config"], "step": state["step"]}, self.path / FINAL)

    def metrics(self):
        import pandas as pd

        return pd.read_json(self.path / METRICS, lines=True)

    def config(self) -> dict[str, Any]:
        return yamlio.load(self.path / CONFIG)
