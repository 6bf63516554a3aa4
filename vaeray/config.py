"""The run config: one nested dict ``{seed, model, data, train, eval}`` that describes a trial completely.

It is what ``vaeray train`` reads from YAML, what Ray Tune carries as a trial's config and what every checkpoint
stores. :func:`validate` checks it before anything runs and returns it *resolved* (every default filled in), so
the saved config is an exact record of the run. The schemas are signatures: the registered model/dataset
constructor for ``model``/``data``, :class:`TrainConfig` for ``train`` and :class:`EvalConfig` for ``eval``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from . import yamlio
from .errors import ConfigError, did_you_mean
from .registry import DATASETS, MODELS, Registry
from .schema import Beta, Range, check, check_dataclass, check_kwargs

SECTIONS = ("seed", "model", "data", "train", "eval")
MAX_STEPS = 10**12  # sane bounds: far beyond any real run, far below where counters or memory overflow
MAX_BATCH = 1 << 20
Seed = Annotated[int, Range(ge=0, lt=2**63)]  # torch.manual_seed overflows beyond a signed 64-bit value
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


def check_device(value: Any, path: str) -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``: what torch accepts and vaeray can place a run on."""
    if not isinstance(value, str) or not DEVICE.match(value):
        raise ConfigError(f"{value!r} is not a device; valid: auto, cpu, cuda, cuda:N, mps", path)
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every model (per-group overrides come from the model)."""

    steps: Annotated[int, Range(ge=1, le=MAX_STEPS)] = 1000
    batch_size: Annotated[int, Range(ge=1, le=MAX_BATCH)] = 64
    lr: Annotated[float, Range(gt=0)] = 5e-4
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: Annotated[float, Range(ge=0)] = 0.0  # sgd only (the Topographic VAE's runs use 0.9)
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    weight_decay: Annotated[float, Range(ge=0)] = 0.0
    grad_clip: Annotated[float, Range(gt=0)] | None = None
    lr_warmup_steps: Annotated[int, Range(ge=0)] = 0
    # piecewise-constant lr: factors[i] × lr between fractions boundaries[i-1] and boundaries[i] of `steps`
    lr_boundaries: tuple[Annotated[float, Range(ge=0, le=1)], ...] = ()
    lr_factors: tuple[Annotated[float, Range(gt=0)], ...] = ()
    log_every: Annotated[int, Range(ge=1)] = 50
    checkpoint_every: Annotated[int, Range(ge=1)] = 1000  # and always at the last step
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    # early stopping / checkpoint selection on a validation criterion (vaeray/early_stopping.py); off unless
    # early_stop_every is set. The criterion: "elbo", or {metric: {options}} run on the valid split (the DVAE#
    # protocol: {dvae_nll: {k: 100}}); patience null = never stop, only keep the best weights
    early_stop_every: Annotated[int, Range(ge=1)] | None = None
    early_stop_metric: str | dict = "elbo"
    early_stop_patience: Annotated[int, Range(ge=1)] | None = 50
    early_stop_burn_in: Annotated[int, Range(ge=0)] = 0
    early_stop_min_delta: Annotated[float, Range(ge=0)] = 0.0
    early_stop_examples: Annotated[int, Range(ge=1)] | None = None
    # on a NaN/inf loss, reload the last good checkpoint (in memory) with fresh noise, up to this many times
    nan_restarts: Annotated[int, Range(ge=0)] = 0
    # speed options (vaeray.perf; measured in docs/benchmarks.md): memory format of the conv nets, autocast of
    # the nets (the loss stays float32; fp16 adds a GradScaler), torch.compile backend, optimizer kernels
    channels_last: bool = False
    autocast: Literal["off", "auto", "bf16", "fp16"] = "off"
    compile: Literal["off", "inductor", "aot_eager", "eager"] = "off"
    optimizer_impl: Literal["auto", "for_loop", "foreach", "fused"] = "auto"


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, when. ``metrics`` maps a registered metric name to its keyword arguments."""

    every: Annotated[int, Range(ge=1)] | None = None  # also every N steps; always at the end
    metrics: dict = field(default_factory=dict)


def validate_section(registry: Registry, spec: Any, path: str) -> dict[str, Any]:
    """Validate a ``{name: ..., **kwargs}`` section against the registered constructor's signature."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"expected a mapping with a 'name' key, got {spec!r}", path)
    if "name" not in spec:
        raise ConfigError(f"missing 'name'; valid: {', '.join(registry)}", path)
    name = spec["name"]
    cls = registry.get(name, f"{path}.name" if path else "name")
    given = {k: v for k, v in spec.items() if k != "name"}
    resolved = check_kwargs(cls, registry.parameters(name), given, path)
    return {"name": name, **resolved}


def validate(config: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    """Check a run config and return it resolved (defaults filled in). Raises :class:`ConfigError`."""
    from .registry import load_all

    load_all()
    try:
        return _validate(config)
    except ConfigError as e:
        if source and not e.source:
            raise ConfigError(str(e), source=source) from None
        raise


def _validate(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigError(f"a run config is a mapping with keys {', '.join(SECTIONS)}")
    for key in config:
        if key not in SECTIONS:
            raise ConfigError(f"unknown section '{key}'; {did_you_mean(str(key), SECTIONS)}", str(key))
    for required in ("model", "data"):
        if required not in config:
            raise ConfigError("required section is missing", required)
    out: dict[str, Any] = {"seed": check(config.get("seed", 0), Seed, "seed")}
    out["model"] = validate_section(MODELS, config["model"], "model")
    out["data"] = validate_section(DATASETS, config["data"], "data")
    train = config.get("train") or {}
    if not isinstance(train, Mapping):
        raise ConfigError("expected a mapping", "train")
    out["train"] = check_dataclass(TrainConfig, train, "train")
    bounds, factors = out["train"]["lr_boundaries"], out["train"]["lr_factors"]
    if (bounds or factors) and len(factors) != len(bounds) + 1:
        raise ConfigError(
            f"needs one more factor than train.lr_boundaries has boundaries ({len(bounds)}), got {len(factors)}",
            "train.lr_factors",
        )
    if list(bounds) != sorted(bounds):
        raise ConfigError("boundaries must be increasing", "train.lr_boundaries")
    check_device(out["train"]["device"], "train.device")
    check_early_stop(out["train"])
    ev = config.get("eval") or {}
    if not isinstance(ev, Mapping):
        raise ConfigError("expected a mapping", "eval")
    out["eval"] = check_dataclass(EvalConfig, ev, "eval")
    from .metrics.evaluate import validate_specs

    out["eval"]["metrics"] = validate_specs(out["eval"]["metrics"] or {}, "eval.metrics")
    from .preflight import check_model

    check_model(out)  # would the model build for this data? (shapes only, on the meta device)
    return plain(out)


def check_early_stop(train: dict[str, Any]) -> None:
    """Resolve ``train.early_stop_metric`` in place: ``elbo``, or exactly one metric (a bare name is all its
    defaults) with its options checked and filled in; the metric must declare whether lower or higher is
    better. ``early_stop_examples`` belongs to the ELBO (a metric has its own ``num_examples``)."""
    from .metrics.evaluate import selection_goal, validate_specs
    from .registry import METRICS

    path, spec = "train.early_stop_metric", train["early_stop_metric"]
    if spec == "elbo":
        return
    if isinstance(spec, str):
        if spec not in METRICS:
            raise ConfigError(f"'{spec[:100]}' is neither 'elbo' nor a metric; {did_you_mean(spec[:100], ['elbo', *METRICS])}", path)
        spec = {spec: None}
    if len(spec) != 1:
        raise ConfigError(f"expected 'elbo' or one metric {{name: {{options}}}}, got {len(spec)} entries", path)
    resolved = validate_specs(spec, path)
    selection_goal(next(iter(resolved)), f"{path}.{next(iter(resolved))}")
    if train["early_stop_every"] is None:
        raise ConfigError("selects only when train.early_stop_every is set", path)
    if train["early_stop_examples"] is not None:
        raise ConfigError("applies to the elbo criterion only; give the metric its own num_examples", "train.early_stop_examples")
    train["early_stop_metric"] = resolved


def plain(obj: Any) -> Any:
    """Tuples to lists, recursively, so the resolved config round-trips through YAML, JSON and Ray."""
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"model.beta": 4.0, ...}``; lists stay values. The column names of the dry-run
    matrix and of ``results.parquet``, so both speak the dotted paths of ``--set``."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def train_config(config: Mapping[str, Any]) -> TrainConfig:
    t = dict(config["train"])
    t["betas"] = tuple(t["betas"])
    for key in ("lr_boundaries", "lr_factors"):
        t[key] = tuple(t.get(key, ()))
    return TrainConfig(**t)


def eval_config(config: Mapping[str, Any]) -> EvalConfig:
    return EvalConfig(**config.get("eval", {}))


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.beta=4"`` -> (["model", "beta"], 4). Values are parsed as YAML (so ``[1, 2]`` is a list)."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set has an empty key in '{item}'")
    return parts, yamlio.loads(raw, source=f"--set {key}") if raw.strip() else ""


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with dotted ``--set`` overrides applied (new keys are allowed and validated later)."""
    out = copy.deepcopy(dict(config))
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for i, p in enumerate(parts[:-1]):
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            elif isinstance(child, str) and parts[: i + 1] in (["model"], ["data"]):
                child = node[p] = {"name": child}
            elif not isinstance(child, dict):
                raise ConfigError(f"cannot set a key inside a {type(child).__name__}", ".".join(parts[: i + 1]))
            node = child
        node[parts[-1]] = value
    return out


def load(path: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read, override and validate a run-config YAML file."""
    raw = yamlio.load(path)
    if raw is None:
        raise ConfigError("the file is empty", source=str(path))
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a run config is a mapping with keys {', '.join(SECTIONS)}, not a {type(raw).__name__}", source=str(path))
    return validate(apply_overrides(raw, overrides), source=str(path))
