"""The ``sweep:`` section of a sweep file: how to search, seeds, metric, early stopping, resources, storage.

Each group of settings is a frozen dataclass whose annotations are its schema: :func:`settings_from` checks a
mapping from the file against them with the same :mod:`vaeray.schema` rules as run configs, so a typo or an
out-of-range value is one error line naming its key (``sweep.scheduler.grace_period``). :func:`parse_section`
reads the whole section; what depends on the expanded configurations (the scheduler's default ``max_t``, the
metric every model must report) is checked later by :func:`vaeray.sweep.spec.parse`. No ``ray`` here.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from ..errors import ConfigError, did_you_mean
from ..schema import Range, check_dataclass
from ..storage import resolve_storage

SEARCHES = ("grid", "random", "optuna")
MAX_RUNGS = 1000
SCHEDULERS = ("none", "asha", "median")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class SchedulerSpec:
    """Early stopping, decided per configuration on the seed mean (docs/sweeps.md).

    Times are in training steps (the ``step`` every report carries). ``asha``: rungs at
    ``grace_period * reduction_factor**k`` below ``max_t``; at each rung a configuration continues only if its
    seed mean is in the top ``1/reduction_factor`` of the configurations recorded there so far (the ASHA
    rule of Li et al. 2020, applied to configurations). ``median``: checks every ``interval`` steps from
    ``grace_period`` on; a configuration stops when its seed mean is worse than the median of the other
    configurations' means at that step (once ``min_samples_required`` of them are recorded).
    """

    name: Literal["none", "asha", "median"] = "none"
    grace_period: Annotated[int, Range(ge=1)] | None = None
    reduction_factor: Annotated[float, Range(gt=1, le=1000)] = 3.0
    max_t: Annotated[int, Range(ge=1)] | None = None
    interval: Annotated[int, Range(ge=1)] | None = None
    min_samples_required: Annotated[int, Range(ge=1)] = 3

    def milestones(self) -> list[int]:
        """The steps at which configurations are compared (all below ``max_t``)."""
        if self.name == "none" or self.max_t is None or self.grace_period is None:
            return []
        out: list[int] = []
        if self.name == "asha":
            # Rung k sits at round(grace * rf**k). With rf barely above 1 many k round to the same step, so
            # jump straight to the first k past the last rung: the loop runs once per rung, never per k.
            k = 0
            while (m := int(round(self.grace_period * self.reduction_factor**k))) < self.max_t:
                if not out or m > out[-1]:
                    out.append(m)
                    if len(out) > MAX_RUNGS:
                        break
                    k += 1
                else:
                    k = max(k + 1, math.ceil(math.log((out[-1] + 0.5) / self.grace_period) / math.log(self.reduction_factor)))
        else:
            m, step = self.grace_period, self.interval or self.grace_period
            while m < self.max_t and len(out) <= MAX_RUNGS:
                out.append(m)
                m += step
        return out

    def describe(self) -> str:
        if self.name == "none":
            return "none (every trial runs to train.steps)"
        if self.name == "asha":
            extra = f"reduction_factor {self.reduction_factor:g}"
        else:
            extra = f"every {self.interval or self.grace_period} steps, min_samples_required {self.min_samples_required}"
        rungs = ", ".join(map(str, self.milestones())) or "none"
        return f"{self.name}, seed-grouped (grace_period {self.grace_period}, {extra}, max_t {self.max_t}; rungs at {rungs})"

    def with_defaults(self, longest_steps: int) -> SchedulerSpec:
        """``max_t`` defaults to the longest ``train.steps`` of the sweep; ``grace_period`` to a tenth of ``max_t``."""
        if self.name == "none":
            return self
        max_t = self.max_t or longest_steps
        grace = self.grace_period or max(1, max_t // 10)
        if grace >= max_t:
            raise ConfigError(f"grace_period {grace} must be below max_t {max_t} (else nothing is ever stopped)", "sweep.scheduler.grace_period")
        out = replace(self, max_t=max_t, grace_period=grace)
        if len(out.milestones()) > MAX_RUNGS:
            what = "reduction_factor" if self.name == "asha" else "interval"
            raise ConfigError(
                f"gives more than {MAX_RUNGS} rungs below max_t {max_t}: every rung is a synchronisation point "
                f"of all seeds; use a larger {what}", f"sweep.scheduler.{what}",
            )  # fmt: skip
        return out


SCHEDULER_KEYS = {
    "none": {"name"},
    "asha": {"name", "grace_period", "reduction_factor", "max_t"},
    "median": {"name", "grace_period", "interval", "max_t", "min_samples_required"},
}


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for. ``gpu`` may be a fraction (0.25: four trials share a GPU)."""

    cpu: Annotated[float, Range(gt=0)] = 1.0
    gpu: Annotated[float, Range(ge=0)] = 0.0

    def as_ray(self) -> dict[str, float]:
        return {"cpu": self.cpu, "gpu": self.gpu}


@dataclass(frozen=True)
class WandbSpec:
    """Weights & Biases logging: ``off`` (no callback), ``offline`` (local files, ``wandb sync`` later) or
    ``online``; unset means online when ``WANDB_API_KEY`` is set, else offline."""

    mode: Literal["off", "offline", "online"] | None = None
    project: str = "vaeray"
    group: str | None = None

    def effective_mode(self, notes: list[str]) -> str:
        """The mode to log in. ``online`` without ``WANDB_API_KEY`` or a ``wandb login`` falls back to
        ``offline`` with a note: a sweep must never stop at a login prompt on a cluster."""
        mode = self.mode or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        if mode == "online" and not os.environ.get("WANDB_API_KEY") and not wandb_logged_in():
            notes.append("W&B: no WANDB_API_KEY and no `wandb login`; logging offline (upload later with `wandb sync`)")
            mode = "offline"
        if mode == "online" and not wandb_reachable():
            host = wandb_host()
            notes.append(f"W&B: {host} is unreachable; logging offline (upload later with `wandb sync`)")
            mode = "offline"
        return mode


def wandb_host() -> str:
    from urllib.parse import urlparse

    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    return urlparse(url).netloc or url


def wandb_reachable(timeout: float = 3.0) -> bool:
    """Whether the W&B server answers a TCP connection within ``timeout`` s (online mode without a network
    would otherwise make every logging actor retry, and the sweep wait on it at the end)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "api.wandb.ai", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wandb_logged_in() -> bool:
    try:
        import wandb

        wandb.ensure_configured()
        return bool(wandb.api.api_key)
    except Exception:
        return False


@dataclass(frozen=True)
class SweepSettings:
    """The ``sweep:`` section (docs/sweeps.md documents every field)."""

    name: str | None = None
    search: Literal["grid", "random", "optuna"] = "grid"
    seed: Annotated[int, Range(ge=0)] = 0
    num_samples: Annotated[int, Range(ge=1, le=100_000)] = 1
    seeds: list[int] = field(default_factory=lambda: [0])
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    scheduler: Any = "none"
    resources: Any = None
    max_concurrent: Annotated[int, Range(ge=1)] | None = None
    max_failures: Annotated[int, Range(ge=0, le=100)] = 2
    storage: str = "~/vaeray_results"  # a fixed place: re-running from another directory finds the ledger
    wandb: Any = None
    imports: list[str] = field(default_factory=list)


def settings_from(cls: type, raw: Any, path: str) -> Any:
    """Build a settings dataclass from a mapping, checking names, types and ranges (errors name the key)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping, got {raw!r}", path)
    return cls(**check_dataclass(cls, raw, path))


def parse_scheduler(raw: Any, source: str) -> SchedulerSpec:
    path = "sweep.scheduler"
    if raw is None:
        raw = "none"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a scheduler name ({', '.join(SCHEDULERS)}) or a mapping with 'name'", path, source)
    name = raw.get("name", "none")
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler '{name}'; {did_you_mean(str(name), SCHEDULERS)}", f"{path}.name", source)
    for key in raw:
        if key not in SCHEDULER_KEYS[name]:
            valid = sorted(SCHEDULER_KEYS[name] - {"name"}) or ["(none)"]
            raise ConfigError(f"'{key}' is not a parameter of the {name} scheduler; valid: {', '.join(valid)}", f"{path}.{key}", source)
    return settings_from(SchedulerSpec, raw, path)


def _check_seeds(raw: Any, source: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"expected a non-empty list of integer seeds, got {raw!r}", "sweep.seeds", source)
    seeds = []
    for i, s in enumerate(raw):
        if isinstance(s, bool) or not isinstance(s, int):
            raise ConfigError(f"seeds must be integers, got {s!r}", f"sweep.seeds[{i}]", source)
        if not 0 <= s < 2**63:
            raise ConfigError(f"seeds must be in [0, 2**63), got {s}", f"sweep.seeds[{i}]", source)
        if s in seeds:
            raise ConfigError(f"seed {s} is listed twice", f"sweep.seeds[{i}]", source)
        seeds.append(s)
    return tuple(seeds)


def _import_plugins(modules: Sequence[str], source: str) -> tuple[str, ...]:
    """Import the modules that register a sweep's own models/datasets/metrics (Ray workers import them too)."""
    for i, name in enumerate(modules):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"expected a module name, got {name!r}", f"sweep.imports[{i}]", source)
        try:
            importlib.import_module(name)
        except Exception as e:  # any failure here is the user's module: say which and why, in one line
            raise ConfigError(f"cannot import '{name}' ({type(e).__name__}: {e})", f"sweep.imports[{i}]", source) from None
    return tuple(modules)


@dataclass(frozen=True)
class Section:
    """The checked ``sweep:`` section. The scheduler stays raw until the configurations are known: its
    defaults depend on their ``train.steps`` (and a bad run config is the more useful error to see first)."""

    source: str
    settings: SweepSettings
    name: str
    seeds: tuple[int, ...]
    resources: Resources
    wandb: WandbSpec
    imports: tuple[str, ...]
    storage: str
    scheduler_raw: Any

    def scheduler(self, longest_steps: int) -> SchedulerSpec:
        spec = parse_scheduler(self.scheduler_raw, self.source)
        try:
            return spec.with_defaults(longest_steps)
        except ConfigError as e:
            raise e.in_file(self.source) from None


def parse_section(section: Any, source: str, storage: str | None = None, default_name: str = "sweep") -> Section:
    """Check a sweep file's ``sweep:`` section; import its ``imports`` (they register models the run configs
    name). ``storage`` (the CLI's ``--storage``) overrides ``sweep.storage``."""
    if section is None:
        raise ConfigError("missing 'sweep:' section (name, search, seeds, metric ...)", "sweep", source)
    if not isinstance(section, Mapping):
        raise ConfigError(f"expected a mapping, got {section!r}", "sweep", source)
    section = dict(section)
    seeds = _check_seeds(section.pop("seeds", [0]), source)
    scheduler_raw = section.pop("scheduler", "none")
    resources_raw = section.pop("resources", None)
    wandb_raw = section.pop("wandb", None)
    try:
        settings = settings_from(SweepSettings, section, "sweep")
        resources = settings_from(Resources, resources_raw, "sweep.resources")
        if wandb_raw is None:  # no section: no W&B at all
            wandb_raw = {"mode": "off"}
        elif not isinstance(wandb_raw, Mapping):
            wandb_raw = {"mode": wandb_raw}
        wandb = settings_from(WandbSpec, wandb_raw, "sweep.wandb")
    except ConfigError as e:
        raise e.in_file(source) from None
    if resources.gpu > 1 and not float(resources.gpu).is_integer():
        raise ConfigError(f"a gpu request above 1 must be a whole number, got {resources.gpu}", "sweep.resources.gpu", source)
    name = settings.name or default_name
    if not NAME.match(name):
        raise ConfigError(f"'{name}' is not a usable directory name (letters, digits, '.', '_', '-')", "sweep.name", source)
    imports = _import_plugins(settings.imports, source)
    storage_uri = resolve_storage(storage if storage is not None else settings.storage, "sweep.storage")
    return Section(source, settings, name, seeds, resources, wandb, imports, storage_uri, scheduler_raw)
