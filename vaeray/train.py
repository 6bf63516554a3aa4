"""``fit``: the one training loop. It runs the same from a test, ``vaeray train``, a notebook and the Ray trainable.

Read top to bottom: build data, model and one optimizer per parameter group; restore a checkpoint if given;
loop (draw a batch by index, compute the named loss terms, differentiate each group's loss with respect to its
own parameters only, step); every ``log_every`` steps report the mean of each term, with a checkpoint every
``checkpoint_every`` steps and at the end; evaluate the configured metrics every ``eval.every`` steps and at the
end. No Ray import: the adapter in :mod:`vaeray.sweep.ray.trainable` passes its own ``report``.

Determinism: every random draw comes from state that the checkpoint carries (torch's global CPU/CUDA
generators for reparameterisation noise, a dedicated generator for batch indices, numpy and ``random``), so
training 2N steps equals training N, stopping, resuming and training N more, parameter for parameter, on CPU.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from . import config as config_mod
from .data.base import Dataset
from .errors import CheckpointError, DivergenceError
from .models.base import Model
from .perf import tune_allocator
from .registry import DATASETS, MODELS

Report = Callable[[dict[str, float], "dict[str, Any] | None"], None]


def resolve_device(name: str | torch.device | None) -> torch.device:
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_dataset(config: Mapping[str, Any], split: str = "train", device: Any = "cpu", data_dir: str | None = None):
    """The dataset of a resolved run config (``split`` where the dataset has it), resident on ``device``."""
    spec = config["data"]
    cls = DATASETS.get(spec["name"], "data.name")
    if split not in getattr(cls, "splits", ("train",)):
        split = "train"
    return DATASETS.build(spec, "data", data_dir=data_dir, split=split, device=str(device))


def build_model(config: Mapping[str, Any], dataset: Dataset) -> Model:
    """The model for ``dataset``; a constructor that refuses these shapes is a one-line ConfigError."""
    from .preflight import check_model

    check_model(config, tuple(dataset.observation_shape), len(dataset))  # shapes first, on the meta device
    return MODELS.build(
        config["model"], "model", observation_shape=dataset.observation_shape, dataset_size=len(dataset)
    )


def make_optimizers(model: Model, tc: config_mod.TrainConfig) -> dict[str, torch.optim.Optimizer]:
    optimizers = {}
    for name, group in model.parameter_groups().items():
        lr = group.lr if group.lr is not None else tc.lr
        wd = group.weight_decay if group.weight_decay is not None else tc.weight_decay
        betas = group.betas if group.betas is not None else tc.betas
        if tc.optimizer == "sgd":
            opt = torch.optim.SGD(group.params, lr=lr, weight_decay=wd, **group.extra)
        else:
            cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
            opt = cls(group.params, lr=lr, betas=betas, weight_decay=wd, **group.extra)
        for g in opt.param_groups:
            g["base_lr"] = lr  # the schedule rescales from this, so the lr is a pure function of the step
        optimizers[name] = opt
    return optimizers


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "batches": generator.get_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    np.random.set_state(("MT19937", np.asarray(state["numpy"].numpy(), dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit(
    config: Mapping[str, Any],
    *,
    report: Report | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    dataset: Dataset | None = None,
    data_dir: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    started: Callable[[dict[str, Any], int], None] | None = None,
) -> dict[str, float]:
    """Train the model a run config describes and return the last reported metrics.

    Args:
        config: a run config (validated here; the resolved form is what checkpoints store).
        report: called as ``report(metrics, checkpoint)`` every ``train.log_every`` steps and at the end;
            ``checkpoint`` is the full training state every ``train.checkpoint_every`` steps and at the end,
            else None.
        checkpoint: a state previously passed to ``report``, to resume from.
        dataset: a ready training dataset (the Ray adapter shares one); else built from ``config['data']``.
        device: overrides ``train.device``.
        started: called as ``started(resolved config, step)`` once the data is loaded, the model built and the
            checkpoint checked against the config, before the first step: ``vaeray train`` writes its run
            directory only then, so a run that cannot start leaves nothing behind.
    """
    cfg = config_mod.validate(config)
    tc = config_mod.train_config(cfg)
    ec = config_mod.eval_config(cfg)
    device = resolve_device(device or tc.device)
    if device.type == "cpu" and not os.environ.get("VAERAY_NO_MALLOPT"):
        tune_allocator()  # 1.3-2x on CPU (docs/performance.md); freed memory stays in the process
    if tc.deterministic:
        torch.use_deterministic_algorithms(True)
    generator = seed_everything(cfg["seed"])
    data = dataset if dataset is not None else build_dataset(cfg, "train", device, data_dir)
    model = build_model(cfg, data).to(device)
    optimizers = make_optimizers(model, tc)
    groups = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}
    step = 0
    if checkpoint is not None:
        step = load_state(checkpoint, model, optimizers, generator, cfg)
    if started is not None:
        started(cfg, step)
    report = report or (lambda metrics, state: None)

    sums: dict[str, torch.Tensor] = {}
    count, t0, bar = 0, time.perf_counter(), _progress(progress, step, tc.steps)
    metrics: dict[str, float] = {}
    held_out: Dataset | None = None
    model.train()
    while step < tc.steps:
        batch = data.batch(data.sample_index(tc.batch_size, generator).to(data.device))
        try:
            terms = model.loss(batch, step)
        except ValueError as e:  # torch.distributions argument validation: parameters went NaN/inf
            if "found invalid values" not in str(e):
                raise
            raise DivergenceError(
                f"the model diverged at step {step}: a distribution parameter became NaN or infinite "
                "(lower train.lr, set train.grad_clip, or check the data)"
            ) from None
        _backward(terms, groups, tc.grad_clip)
        scale = min(1.0, (step + 1) / tc.lr_warmup_steps) if tc.lr_warmup_steps else 1.0
        for opt in optimizers.values():
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * scale
            opt.step()
        step += 1
        for k, v in terms.items():
            v = v.detach()
            sums[k] = sums[k] + v if k in sums else v.clone()
        count += 1
        if bar is not None:
            bar.update(1)
        last = step == tc.steps
        do_ckpt = last or step % tc.checkpoint_every == 0
        do_eval = last or (ec.every is not None and step % ec.every == 0)
        if step % tc.log_every == 0 or do_ckpt or do_eval:
            metrics = {k: float(v) / count for k, v in sums.items()}
            _check_finite(metrics, step)
            elapsed = time.perf_counter() - t0
            metrics.update(step=step, lr=optimizers[next(iter(optimizers))].param_groups[0]["lr"])
            metrics["examples_per_s"] = count * tc.batch_size / elapsed if elapsed > 0 else math.nan
            if do_eval and ec.metrics:
                if held_out is None:  # built once: eval.every would otherwise reload it each time
                    held_out = eval_dataset(cfg, data, data_dir)
                metrics.update(evaluate(model, cfg, data, data_dir=data_dir, device=device, data=held_out))
            if bar is not None:
                bar.set_postfix(loss=f"{metrics['loss']:.4g}")
            report(metrics, state_dict(model, optimizers, step, cfg, generator) if do_ckpt else None)
            sums, count, t0 = {}, 0, time.perf_counter()
    if bar is not None:
        bar.close()
    return metrics


def _backward(terms: Mapping[str, torch.Tensor], groups: Mapping[str, list], grad_clip: float | None) -> None:
    """Each group's loss differentiated with respect to that group's parameters only.

    With one group this is ``loss.backward()``. With several (FactorVAE) a loss must not leak gradient into
    another group's parameters: the discriminator's loss never updates the encoder and the VAE's TC term never
    updates the discriminator, whatever the graph connects.
    """
    if len(groups) == 1:
        (name, params), = groups.items()
        for p in params:
            p.grad = None
        terms[name].backward()
    else:
        names = list(groups)
        for i, name in enumerate(names):
            params = groups[name]
            grads = torch.autograd.grad(
                terms[name], params, retain_graph=i < len(names) - 1, allow_unused=True
            )
            for p, g in zip(params, grads):
                p.grad = g
    if grad_clip is not None:
        for params in groups.values():
            torch.nn.utils.clip_grad_norm_(params, grad_clip)


def _check_finite(metrics: Mapping[str, float], step: int) -> None:
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise DivergenceError(
            f"the loss diverged at step {step}: {', '.join(bad)} became {metrics[bad[0]]} "
            "(lower train.lr, set train.grad_clip, or check the data)"
        )


def _progress(enabled: bool, start: int, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)


def eval_dataset(cfg: Mapping[str, Any], train_data: Dataset, data_dir: str | None = None) -> Dataset:
    """The test split when the dataset has one (held-out likelihoods), else the training data (dSprites)."""
    cls = DATASETS.get(cfg["data"]["name"])
    if "test" in getattr(cls, "splits", ()):
        return build_dataset(cfg, "test", train_data.device, data_dir)
    return train_data


def evaluate(
    model: Model,
    cfg: Mapping[str, Any],
    train_data: Dataset,
    data_dir: str | None = None,
    device: Any = None,
    data: Dataset | None = None,
) -> dict[str, float]:
    """Run the config's ``eval.metrics`` on the model, on ``data`` (default: :func:`eval_dataset`)."""
    from .metrics.evaluate import evaluate as run_metrics

    ec = config_mod.eval_config(cfg)
    data = data if data is not None else eval_dataset(cfg, train_data, data_dir)
    was_training = model.training
    model.eval()
    try:
        return run_metrics(
            ec.metrics,
            dataset=data,
            represent=model.represent,
            log_likelihood=model.log_likelihood,
            seed=cfg["seed"],
            device=device,
        )
    finally:
        model.train(was_training)


def state_dict(
    model: Model, optimizers: Mapping[str, torch.optim.Optimizer], step: int, cfg: Mapping, generator
) -> dict[str, Any]:
    """The whole training state as one dict of tensors and plain values (loadable with ``weights_only=True``)."""
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "step": step,
        "config": dict(cfg),
        "rng": rng_state(generator),
        "format": 1,
    }


# Settings a resume cannot honour: the RNG state comes from the checkpoint (so a new seed would be recorded but
# not used) and the optimizer's moments belong to the optimizer that wrote them.
FIXED_ON_RESUME = (("seed",), ("train", "optimizer"))


def load_state(state: Mapping[str, Any], model: Model, optimizers: Mapping, generator, cfg: Mapping) -> int:
    """Restore a training state; settings changed since (lr, betas, weight decay) apply for real.

    ``Optimizer.load_state_dict`` would bring back the hyperparameters saved in the checkpoint, so a resume
    with ``--set train.lr=...`` would record a learning rate it does not use; the fresh groups' values are put
    back after loading. Settings that cannot change (:data:`FIXED_ON_RESUME`) are refused.
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
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        msg = " ".join(str(e).split())[:200]
        raise CheckpointError(f"checkpoint does not match this run's model/config ({type(e).__name__}: {msg})") from None
    return step
