"""The training state ``fit`` checkpoints and resumes from: one dict of tensors and plain values.

``{"model", "optimizers", "step", "config", "rng", "format"}``, plus ``"early_stopping"`` when the run validates
(``train.early_stop_every``): the selection's best value, its step, the patience count and the best weights,
so a resumed run still ends on the best weights it saw *before* the interruption. Checkpoints written before
that key existed load as before (the selection then starts afresh).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from .errors import CheckpointError
from .models.base import Model
from .rng import rng_state, set_rng_state


def state_dict(
    model: Model, optimizers: Mapping[str, torch.optim.Optimizer], step: int, cfg: Mapping, generator, stopper: Any = None
) -> dict[str, Any]:
    """The whole training state as one dict of tensors and plain values (loadable with ``weights_only=True``).

    A snapshot, not a view: ``Optimizer.state_dict()`` returns the live moment buffers, which later steps keep
    updating in place, so they are copied too (a caller that keeps the state in memory, such as a NaN restart
    or a test, would otherwise hold a state that drifts). ``stopper``: an
    :class:`~vaeray.early_stopping.EarlyStopping` whose state (best weights included) travels along."""
    state = {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in optimizers.items()},
        "step": step,
        "config": dict(cfg),
        "rng": rng_state(generator),
        "format": 1,
    }
    if stopper is not None:
        state["early_stopping"] = stopper.state_dict()
    return state


# Settings a resume cannot honour: the RNG state comes from the checkpoint (so a new seed would be recorded but
# not used), the optimizer's moments belong to the optimizer that wrote them, and a run keeps its precision.
FIXED_ON_RESUME = (("seed",), ("train", "optimizer"), ("train", "autocast"))


def load_state(
    state: Mapping[str, Any], model: Model, optimizers: Mapping, generator, cfg: Mapping, stopper: Any = None
) -> int:
    """Restore a training state; settings changed since (lr, betas, weight decay) apply for real.

    ``Optimizer.load_state_dict`` would bring back the hyperparameters saved in the checkpoint, so a resume
    with ``--set train.lr=...`` would record a learning rate it does not use; the fresh groups' values are put
    back after loading. Settings that cannot change (:data:`FIXED_ON_RESUME`) are refused. ``stopper`` gets the
    checkpoint's early-stopping state where there is one.
    """
    old = state.get("config", {}) if isinstance(state, Mapping) else {}
    if old:
        if old.get("model") != cfg["model"] or old.get("data") != cfg["data"]:
            raise CheckpointError("checkpoint was written by a different model/data config; refusing to resume")
        for keys in FIXED_ON_RESUME:
            a, b = old, cfg
            for k in keys:
                a, b = (a or {}).get(k), (b or {}).get(k)
            if a is not None and a != b:
                raise CheckpointError(f"{'.'.join(keys)} cannot change on resume (checkpoint: {a!r}, now: {b!r})")
    try:
        model.load_state_dict(state["model"])
        for name, opt in optimizers.items():
            fresh = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(state["optimizers"][name])
            for g, values in zip(opt.param_groups, fresh):
                g.update(values)
        set_rng_state(state["rng"], generator)
        step = int(state["step"])
        if stopper is not None and state.get("early_stopping") is not None:
            stopper.load_state_dict(state["early_stopping"], model)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        msg = " ".join(str(e).split())[:200]
        raise CheckpointError(f"checkpoint does not match this run's model/config ({type(e).__name__}: {msg})") from None
    return step
