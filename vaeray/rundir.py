"""The run directory ``vaeray train`` writes.

::

    RUN_DIR/
      config.yaml            the resolved run config (every default filled in)
      metrics.jsonl          one JSON row per logging step (eval metrics appear on the rows where they ran)
      checkpoints/last.pt    the latest full training state (atomic, checksummed; ``--resume`` continues from it)
      checkpoints/prev.pt    the one before: the fallback when last.pt is damaged
      model.pt               the final model: {"model": state_dict, "config": ...}
      resolved.json          what ``auto`` settings became: the device, the dataset's source (dSprites), versions
      eval.json              the latest ``vaeray eval RUN_DIR``
      eval_history.jsonl     every ``vaeray eval``: when, at which step, with which metric settings, the results

Nothing is written until the run is known to start: :meth:`RunDir.check` reads (the checkpoint to resume from)
but writes nothing; :meth:`RunDir.start` creates the directory, records the config and trims the metrics log,
and the CLI calls it only once ``fit`` has loaded the data, built the model and checked the checkpoint against
the config. So a refused run leaves no directory and a refused resume leaves the run exactly as it was.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from . import storage, yamlio
from .errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
LAST = "checkpoints/last.pt"
PREV = "checkpoints/prev.pt"
FINAL = "model.pt"
RESOLVED = "resolved.json"
EVAL = "eval.json"
EVAL_HISTORY = "eval_history.jsonl"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.notes: list[str] = []  # one-line messages for the user (a fallback to the previous checkpoint)

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / LAST).is_file() or (self.path / PREV).is_file()

    def check(self, resume: bool) -> dict[str, Any] | None:
        """Whether this directory can take the run; the checkpoint to resume from (or None). Writes nothing."""
        holds_run = self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir()))
        if not resume:
            if holds_run:
                raise ConfigError(
                    f"run directory {self.path} already holds a run; pass --resume to continue it "
                    "or --run-dir to write elsewhere"
                )
            return None
        if not self.path.is_dir():
            raise ConfigError(f"--resume: there is no run in {self.path} (give the run's --run-dir)")
        if not self.has_checkpoint:
            raise CheckpointError(f"--resume: {self.path} has no checkpoint to resume from")
        return self.latest_checkpoint()

    def latest_checkpoint(self) -> dict[str, Any]:
        """``last.pt``, or ``prev.pt`` (with a note) when the newest is missing or damaged."""
        try:
            return ckpt.load(self.path / LAST)
        except CheckpointError as e:
            if not (self.path / PREV).is_file():
                raise
            state = ckpt.load(self.path / PREV)
            note = f"{e}; resuming from the previous checkpoint (step {int(state.get('step', 0))})"
            log.warning(note)
            self.notes.append(note)
            return state

    def start(self, config: dict[str, Any], step: int) -> None:
        """Create the directory and record the config; on a resume, trim the log back to the checkpoint's step."""
        self.path.mkdir(parents=True, exist_ok=True)
        storage.write_bytes(str(self.path / CONFIG), yamlio.dump(config).encode())
        self._truncate_metrics(step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop rows logged after the checkpoint and a torn last line left by a kill, so a resumed run's log
        has each step once and every line parses."""
        f = self.path / METRICS
        if not f.is_file():
            return
        keep = []
        for line in f.read_bytes().decode("utf-8", "replace").split("\n"):
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the torn tail of a killed write (or an empty line)
            if isinstance(row, dict) and row.get("step", 0) <= step:
                keep.append(line)
        storage.write_bytes(str(f), "".join(line + "\n" for line in keep).encode())

    def report(self, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        append_line(self.path / METRICS, json.dumps(row))
        if state is not None:
            self.save_checkpoint(state)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Keep the last two: last.pt becomes prev.pt, then the new one is written atomically as last.pt."""
        last = self.path / LAST
        if last.is_file():
            os.replace(last, self.path / PREV)
        ckpt.save(state, last)

    def record_resolved(self, config: dict[str, Any], device: Any, dataset: Any) -> dict[str, Any]:
        """Write ``resolved.json``: what the config's ``auto`` values became on this machine (the device, the
        dSprites source, ...) so a run says what it actually used."""
        import platform
        from datetime import datetime, timezone

        import torch

        record: dict[str, Any] = {"device": str(device), "train.device": config["train"]["device"],
                                  "train.autocast": config["train"].get("autocast", "off")}  # `auto` pinned by fit
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


def append_line(path: Path, line: str) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor: a kill leaves the whole line or
    at most a torn tail, which :meth:`RunDir._truncate_metrics` drops on resume. Never two half lines."""
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
