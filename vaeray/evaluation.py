"""Evaluate a finished run directory: ``vaeray eval RUN_DIR``.

Rebuilds the model from the run's saved config and final weights (``model.pt``, else the last checkpoint),
runs the ``eval.metrics`` of that config (optionally overridden with ``--set eval...``), writes
``RUN_DIR/eval.json`` (the latest) and appends it with its metric settings to ``RUN_DIR/eval_history.jsonl``. The training config is never changed: only ``eval.*`` may be overridden.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from . import config as config_mod
from .errors import ConfigError
from .rundir import CONFIG, FINAL, LAST, RunDir
from .train import build_dataset, build_model, evaluate, resolve_device, seed_everything


def evaluate_run(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG})")
    for item in overrides:
        if not item.split("=", 1)[0].strip().startswith("eval."):
            raise ConfigError(f"only eval.* settings can be changed when evaluating a run, got '{item}'")
    weights = run_dir / FINAL if (run_dir / FINAL).is_file() else run_dir / LAST
    state = ckpt.load(weights)
    cfg = config_mod.validate(config_mod.apply_overrides(state["config"], overrides), source=str(run_dir))
    if not cfg["eval"]["metrics"]:
        raise ConfigError("no metrics to run: set eval.metrics in the config or with --set eval.metrics.NAME={}")
    dev = resolve_device(device or cfg["train"]["device"])
    # seeded as fit seeds, so the model is built from the run's own initial state (models that report an
    # untrained baseline, such as the Topographic VAE's equivariance error, then report the run's)
    seed_everything(cfg["seed"])
    data = build_dataset(cfg, "train", dev, data_dir)
    model = build_model(cfg, data).to(dev)
    model.load_state_dict(state["model"])
    results = evaluate(model, cfg, data, data_dir=data_dir, device=dev)
    out = {"step": int(state["step"]), **results}
    RunDir(run_dir).record_eval(out, cfg["eval"]["metrics"])
    return out
