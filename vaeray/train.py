"""``fit``: the one training loop. It runs the same from a test, ``vaeray train``, a notebook and the Ray trainable.

Read top to bottom: build data, model and one optimizer per parameter group; restore a checkpoint if given;
loop (draw a batch by index, compute the named loss terms, differentiate each group's loss with respect to its
own parameters only, step); every ``log_every`` steps report the mean of each term, with a checkpoint every
``checkpoint_every`` steps and at the end; evaluate the configured metrics every ``eval.every`` steps and at the
end. With ``train.early_stop_every`` set, validate a criterion (the ELBO, or a metric such as DVAE#'s
``dvae_nll``) on the ``valid`` split, keep the best weights (in the checkpoints too: :mod:`.training_state`),
optionally stop early, and end on the best weights (:mod:`.early_stopping`). No Ray import: the adapter in
:mod:`vaeray.sweep.ray.trainable` passes its own ``report``.

Determinism: every random draw comes from state that the checkpoint carries (torch's global CPU/CUDA
generators for reparameterisation noise, a dedicated generator for batch indices, numpy and ``random``), so
training 2N steps equals training N, stopping, resuming and training N more, parameter for parameter, on CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from . import config as config_mod
from . import perf
from .data.base import Batch, Dataset
from .early_stopping import from_config
from .errors import DivergenceError
from .models.base import Model
from .perf import tune_allocator
from .rng import rng_state, seed_everything, set_rng_state  # noqa: F401  (part of this module's API)
from .registry import DATASETS, MODELS
from .schedules import piecewise
from .training_state import FIXED_ON_RESUME, load_state, state_dict  # noqa: F401  (part of this module's API)

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
    from .schema import parameters

    check_model(config, tuple(dataset.observation_shape), len(dataset))  # shapes first, on the meta device
    extra: dict[str, Any] = {}
    accepted = parameters(MODELS.get(config["model"]["name"], "model.name"))
    if "data_mean" in accepted:
        extra["data_mean"] = data_mean(dataset)  # only models that ask for it pay for the pass over the data
    if "data_name" in accepted:
        extra["data_name"] = config["data"]["name"]  # per-dataset defaults (the DVAE# β table)
    return MODELS.build(
        config["model"], "model", observation_shape=dataset.observation_shape, dataset_size=len(dataset), **extra
    )


def data_mean(dataset: Dataset, batch_size: int = 1000) -> torch.Tensor:
    """The per-pixel mean of a dataset's observations, on the CPU (a model's output bias, the DVAE input centring)."""
    total, n = None, 0
    for batch in dataset.iterate(batch_size):
        s = batch.x.double().sum(0).cpu()
        total = s if total is None else total + s
        n += batch.x.shape[0]
    return (total / n).float()


def make_optimizers(model: Model, tc: config_mod.TrainConfig) -> dict[str, torch.optim.Optimizer]:
    optimizers = {}
    for name, group in model.parameter_groups().items():
        lr = group.lr if group.lr is not None else tc.lr
        wd = group.weight_decay if group.weight_decay is not None else tc.weight_decay
        betas = group.betas if group.betas is not None else tc.betas
        extra = {**perf.optimizer_flags(tc.optimizer_impl, group.params, group.extra), **group.extra}
        if tc.optimizer == "sgd":
            opt = torch.optim.SGD(group.params, lr=lr, momentum=tc.momentum, weight_decay=wd, **extra)
        else:
            cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
            opt = cls(group.params, lr=lr, betas=betas, weight_decay=wd, **extra)
        for g in opt.param_groups:
            g["base_lr"] = lr  # the schedule rescales from this, so the lr is a pure function of the step
        optimizers[name] = opt
    return optimizers


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
    device = resolve_device(device or cfg["train"]["device"])
    cfg = perf.pin_autocast(cfg, device, checkpoint)  # `auto` resolved once per run, kept on resume
    tc, ec = config_mod.train_config(cfg), config_mod.eval_config(cfg)
    if device.type == "cpu" and not os.environ.get("VAERAY_NO_MALLOPT"):
        tune_allocator()  # 1.3-2x on CPU (docs/performance.md); freed memory stays in the process
    if tc.deterministic:
        torch.use_deterministic_algorithms(True)
    generator = seed_everything(cfg["seed"])
    data = dataset if dataset is not None else build_dataset(cfg, "train", device, data_dir)
    model = build_model(cfg, data).to(device)
    amp = perf.configure_model(model, tc, device)  # channels_last, autocast, compile (train: keys)
    optimizers = make_optimizers(model, tc)
    groups = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}
    stopper = from_config(  # validation split and criterion; its state (best weights) is checkpointed
        cfg, tc, lambda split: build_dataset(cfg, split, device, data_dir),
        lambda m, specs, valid: evaluate(m, cfg, data, data_dir, device, data=valid, specs=specs),
    )
    step = 0
    if checkpoint is not None:
        step = load_state(checkpoint, model, optimizers, generator, cfg, stopper)
    if started is not None:
        started(cfg, step)
    report = report or (lambda metrics, state: None)
    restarts = 0
    good = state_dict(model, optimizers, step, cfg, generator, stopper) if tc.nan_restarts else None

    sums: dict[str, torch.Tensor] = {}
    count, t0, bar = 0, time.perf_counter(), _progress(progress, step, tc.steps)
    metrics: dict[str, float] = {}
    held_out: Dataset | None = None
    model.train()
    while step < tc.steps:
        batch = _batch(data, data.sample_index(tc.batch_size, generator).to(data.device), model, tc.channels_last)
        try:
            with perf.distribution_checks_off(), amp.autocast():
                terms = model.loss(batch, step)
        except ValueError as e:  # torch.distributions argument validation: parameters went NaN/inf
            if "found invalid values" not in str(e):
                raise
            error = DivergenceError(
                f"the model diverged at step {step}: a distribution parameter became NaN or infinite "
                "(lower train.lr, set train.grad_clip, or check the data)"
            )
            if good is None or restarts >= tc.nan_restarts:
                raise error from None
            restarts += 1
            step, sums, count = _restart(good, restarts, model, optimizers, generator, cfg, stopper), {}, 0
            continue
        _backward(terms, groups, tc.grad_clip, amp, optimizers)
        scale = min(1.0, (step + 1) / tc.lr_warmup_steps) if tc.lr_warmup_steps else 1.0
        scale *= piecewise(step, tc.steps, tc.lr_boundaries, tc.lr_factors)
        for opt in optimizers.values():
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * scale
            amp.step(opt)
        amp.update()
        step += 1
        for k, v in terms.items():
            v = v.detach()
            sums[k] = sums[k] + v if k in sums else v.clone()
        count += 1
        if bar is not None:
            bar.update(1)
        stop = False
        if stopper is not None and step % tc.early_stop_every == 0:  # type: ignore[operator]
            stop = stopper.validate(model, step)
        last = step == tc.steps or stop
        if last and stopper is not None:
            stopper.restore(model)  # the final evaluation and checkpoint see the best validated weights
        do_ckpt = last or step % tc.checkpoint_every == 0
        do_eval = last or (ec.every is not None and step % ec.every == 0)
        if step % tc.log_every == 0 or do_ckpt or do_eval:
            metrics = {k: float(v) / count for k, v in sums.items()}
            try:
                _check_finite(metrics, step)
            except DivergenceError:
                if good is None or restarts >= tc.nan_restarts:
                    raise
                restarts += 1
                step, sums, count = _restart(good, restarts, model, optimizers, generator, cfg, stopper), {}, 0
                continue
            elapsed = time.perf_counter() - t0
            metrics.update(step=step, lr=optimizers[next(iter(optimizers))].param_groups[0]["lr"])
            metrics["examples_per_s"] = count * tc.batch_size / elapsed if elapsed > 0 else math.nan
            if do_eval and ec.metrics:
                if held_out is None:  # built once: eval.every would otherwise reload it each time
                    held_out = eval_dataset(cfg, data, data_dir)
                metrics.update(evaluate(model, cfg, data, data_dir=data_dir, device=device, data=held_out))
            if bar is not None:
                bar.set_postfix(loss=f"{metrics['loss']:.4g}")
            if stopper is not None:
                metrics.update(stopper.metrics(), stopped_early=float(stop))
            if tc.nan_restarts:
                metrics["nan_restarts"] = restarts
            state = state_dict(model, optimizers, step, cfg, generator, stopper) if do_ckpt else None
            if state is not None and good is not None:
                good = state  # a snapshot (state_dict copies the optimizer buffers), safe to hold
            report(metrics, state)
            sums, count, t0 = {}, 0, time.perf_counter()
        if stop:
            break
    if bar is not None:
        bar.close()
    return metrics


def _restart(good: Mapping[str, Any], restarts: int, model: Model, optimizers: Mapping, generator, cfg, stopper=None) -> int:
    """Reload ``good`` (the last checkpoint whose metrics were finite; its early-stopping state too) and return
    its step, as the product-space S-VAE code's ``-mr`` NaN restarts do. The random state is then reseeded:
    replaying the same draws from the same state would diverge at the same step again."""
    step = load_state(good, model, optimizers, generator, cfg, stopper)
    seed = int(cfg["seed"]) + 1_000_003 * restarts
    torch.manual_seed(seed)
    generator.manual_seed(seed)
    return step


def _batch(data: Dataset, index: torch.Tensor, model: Model, channels_last: bool = False) -> Batch:
    """The training batch, assembling only the fields the model reads (``Model.batch_fields``)."""
    fields = getattr(model, "batch_fields", None)
    batch = Batch(x=data.observations(index)) if fields == ("x",) else data.batch(index)
    if channels_last and batch.x.dim() == 4:
        batch.x = batch.x.contiguous(memory_format=torch.channels_last)
    return batch


def _backward(
    terms: Mapping[str, torch.Tensor],
    groups: Mapping[str, list],
    grad_clip: float | None,
    amp: perf.Amp | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
) -> None:
    """Each group's loss differentiated with respect to that group's parameters only.

    With one group this is ``loss.backward()``. With several (FactorVAE) a loss must not leak gradient into
    another group's parameters: the discriminator's loss never updates the encoder and the VAE's TC term never
    updates the discriminator, whatever the graph connects.
    """
    if len(groups) == 1:
        (name, params), = groups.items()
        for p in params:
            p.grad = None
        (amp.scale(terms[name]) if amp else terms[name]).backward()
    else:
        names = list(groups)
        for i, name in enumerate(names):
            params = groups[name]
            loss = amp.scale(terms[name]) if amp else terms[name]
            grads = torch.autograd.grad(loss, params, retain_graph=i < len(names) - 1, allow_unused=True)
            for p, g in zip(params, grads):
                p.grad = g
    if grad_clip is not None:
        for name, params in groups.items():
            if amp is not None and optimizers is not None:
                amp.unscale(optimizers[name])  # fp16: clip the true gradients, not the scaled ones
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
    specs: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Run the config's ``eval.metrics`` (or ``specs``) on the model, on ``data`` (default: :func:`eval_dataset`)."""
    from .metrics.evaluate import evaluate as run_metrics

    specs = config_mod.eval_config(cfg).metrics if specs is None else specs
    data = data if data is not None else eval_dataset(cfg, train_data, data_dir)
    was_training = model.training
    model.eval()
    try:
        return run_metrics(
            specs,
            dataset=data,
            represent=model.represent,
            log_likelihood=model.log_likelihood,
            represent_parts=getattr(model, "represent_parts", None),  # style/content models (ml_vae)
            train_dataset=train_data,
            seed=cfg["seed"],
            device=device,
        )
    finally:
        model.train(was_training)
