"""Sweep files: a run config with search-space leaves plus a ``sweep:`` section (docs/sweeps.md).

This module parses and validates a sweep file, expands it into trials and prints the dry-run matrix. It never
imports ``ray``: everything a researcher can get wrong is caught here, on the laptop, before a cluster starts.
:mod:`vaeray.tune` turns a :class:`SweepSpec` into a Ray Tune experiment.

Three ideas carry the design:

* **Seeds are an axis, not a hyperparameter.** A *configuration* is a resolved run config without its seed;
  a *trial* is a configuration plus one of ``sweep.seeds``. Every configuration runs for every seed with the
  same hyperparameters, so seed-to-seed spread measures training noise and nothing else.
* **Deterministic expansion.** For ``grid``/``random`` search we expand the space ourselves instead of
  letting Tune sample it (Tune redraws random leaves per grid point, so seeds would not be replicates). Each
  configuration's random draws come from a generator seeded by (sampler seed, sample index, the grid point),
  so adding a grid value, a sample or a seed leaves every existing configuration untouched.
* **Stable identity.** ``config_hash`` is a hash of the canonical JSON of the resolved configuration; the
  trial id is ``<hash>-s<seed>``. It names trial directories, W&B groups and the ledger entries that make
  re-running a sweep file idempotent (see :mod:`vaeray.results`).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from . import config as config_mod
from . import yamlio
from .errors import ConfigError, did_you_mean
from .registry import METRICS, MODELS
from .schema import Range, check, check_kwargs

LEAVES = ("grid", "choice", "uniform", "loguniform", "randint")
# Names other tools use for leaves; a mapping keyed by one of them is almost surely a mistyped leaf.
FOREIGN_LEAVES = (
    "grid_search", "sample_from", "quniform", "qloguniform", "qrandint", "lograndint", "randn", "qrandn",
    "categorical", "values", "log_uniform", "int_uniform", "range",
)  # fmt: skip
SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("none", "asha", "median")
# Keys every trial reports whatever the model (vaeray.train.fit).
STANDARD_METRICS = ("loss", "step", "lr", "examples_per_s")
MAX_CONFIGURATIONS = 100_000  # a product beyond this is a typo, not a study
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- identity ---------------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha1[:10] of a resolved run config *without* its seed: the configuration's identity."""
    body = {k: v for k, v in config.items() if k != "seed"}
    return hashlib.sha1(canonical_json(body).encode()).hexdigest()[:10]


def trial_id(cell: str, seed: int) -> str:
    return f"{cell}-s{seed}"


# --- search-space leaves ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One search-space leaf of a sweep file.

    ``path`` is its key path in the sweep file (``model.grid[1].beta``) and doubles as its parameter name
    for Optuna. ``options`` are sub-templates (grid/choice, which may hold further leaves); ``low``/``high``
    bound the numeric leaves (``randint``'s high is exclusive, like numpy's and Tune's).
    """

    kind: str
    path: str
    options: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def is_random(self) -> bool:
        return self.kind != "grid"

    @property
    def primitive(self) -> bool:
        """Whether every option is a plain scalar (Optuna can then suggest the value itself, not an index)."""
        return all(isinstance(o, (str, int, float, bool)) or o is None for o in self.options)

    def describe(self) -> str:
        if self.kind in ("grid", "choice"):
            shown = [o if not isinstance(o, (dict, list, Leaf)) else _short(o) for o in self.options]
            return f"{self.kind} {shown}"
        return f"{self.kind} [{self.low}, {self.high}{')' if self.kind == 'randint' else ']'}"


def _short(template: Any) -> str:
    text = json.dumps(render(template), sort_keys=False)
    return text if len(text) <= 40 else text[:37] + "..."


def render(template: Any) -> Any:
    """A template as plain data (leaves become ``{kind: ...}``); for hashing grid points and messages."""
    if isinstance(template, Leaf):
        if template.kind in ("grid", "choice"):
            return {template.kind: [render(o) for o in template.options]}
        return {template.kind: [template.low, template.high]}
    if isinstance(template, Mapping):
        return {k: render(v) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v) for v in template]
    return template


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def parse_space(node: Any, path: str = "", inside_choice: bool = False) -> Any:
    """Turn leaf mappings (``{grid: [...]}`` ...) into :class:`Leaf` objects, checking each one."""
    if isinstance(node, Mapping):
        keys = list(node)
        leaf_keys = [k for k in keys if k in LEAVES]
        if leaf_keys:
            if len(keys) > 1:
                others = ", ".join(str(k) for k in keys if k != leaf_keys[0])
                raise ConfigError(f"a search leaf has exactly one key ('{leaf_keys[0]}'); remove {others}", path)
            return _parse_leaf(leaf_keys[0], node[leaf_keys[0]], path, inside_choice)
        if len(keys) == 1 and isinstance(keys[0], str) and isinstance(node[keys[0]], list):
            key = keys[0]
            if key in FOREIGN_LEAVES or difflib.get_close_matches(key, LEAVES, n=1, cutoff=0.75):
                raise ConfigError(f"unknown search leaf '{key}'; {did_you_mean(key, LEAVES)}", _join(path, key))
        return {k: parse_space(v, _join(path, k), inside_choice) for k, v in node.items()}
    if isinstance(node, list):
        return [parse_space(v, f"{path}[{i}]", inside_choice) for i, v in enumerate(node)]
    return node


def _number(value: Any, path: str, integer: bool) -> float:
    return check(value, int if integer else float, path)


def _parse_leaf(kind: str, value: Any, path: str, inside_choice: bool) -> Leaf:
    where = _join(path, kind)
    if kind in ("grid", "choice"):
        if kind == "grid" and inside_choice:
            raise ConfigError("a grid cannot sit inside a choice (which option would it expand?); use choice", where)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"expected a non-empty list of values, got {value!r}", where)
        nested = inside_choice or kind == "choice"
        options = tuple(parse_space(v, f"{where}[{i}]", nested) for i, v in enumerate(value))
        return Leaf(kind, path, options=options)
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"expected [low, high], got {value!r}", where)
    integer = kind == "randint"
    low = _number(value[0], f"{where}[0]", integer)
    high = _number(value[1], f"{where}[1]", integer)
    if low > high:
        raise ConfigError(f"bad range: low {value[0]!r} > high {value[1]!r}", where)
    if low == high:
        raise ConfigError(f"empty range: low == high == {value[0]!r}; use a plain value", where)
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"loguniform needs 0 < low, got {value[0]!r}", where)
    return Leaf(kind, path, low=low, high=high)


def leaves(template: Any) -> list[Leaf]:
    """Every leaf of a template, outer before inner, in file order."""
    out: list[Leaf] = []

    def walk(node: Any) -> None:
        if isinstance(node, Leaf):
            out.append(node)
            for o in node.options:
                walk(o)
        elif isinstance(node, Mapping):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(template)
    return out


# --- expansion --------------------------------------------------------------------------------------------


def expand_grid(template: Any) -> list[tuple[Any, dict[str, Any]]]:
    """All grid points: (template with every active grid leaf replaced by one option, the options taken).

    A grid option may itself hold grid leaves (``model: {grid: [{name: a, beta: {grid: [1, 2]}}, ...]}``):
    those expand only under that option, so the result is a union of products, not one product. The second
    element maps each grid leaf's path to the option it took (the value, or its index for non-scalar options).
    """
    if isinstance(template, Leaf):
        if template.kind == "grid":
            out = []
            for i, option in enumerate(template.options):
                taken = option if template.primitive else i
                out.extend((p, {template.path: taken, **v}) for p, v in expand_grid(option))
            return out
        return [(template, {})]
    if isinstance(template, (Mapping, list)):
        keys = list(template) if isinstance(template, Mapping) else list(range(len(template)))
        parts = [expand_grid(template[k]) for k in keys]
        _guard(parts)
        out = []
        for combo in itertools.product(*parts):
            taken: dict[str, Any] = {}
            for _, v in combo:
                taken.update(v)
            points = [p for p, _ in combo]
            out.append((dict(zip(keys, points)) if isinstance(template, Mapping) else points, taken))
        return out
    return [(template, {})]


def _guard(parts: Sequence[Sequence[Any]]) -> None:
    if math.prod(len(p) for p in parts) > MAX_CONFIGURATIONS:
        raise ConfigError(f"the grid expands to more than {MAX_CONFIGURATIONS:,} configurations")


def sample(template: Any, rng: np.random.Generator, values: dict[str, Any] | None = None) -> Any:
    """Draw every random leaf of a (grid-resolved) template; record each draw in ``values`` by leaf path.

    Mapping keys are visited in sorted order so that reordering keys in the file does not change the draws.
    """
    if isinstance(template, Leaf):
        if template.kind == "choice":
            index = int(rng.integers(len(template.options)))
            if values is not None:
                values[template.path] = template.options[index] if template.primitive else index
            return sample(template.options[index], rng, values)
        if template.kind == "uniform":
            drawn: Any = float(rng.uniform(template.low, template.high))
        elif template.kind == "loguniform":
            drawn = float(math.exp(rng.uniform(math.log(template.low), math.log(template.high))))
        elif template.kind == "randint":
            drawn = int(rng.integers(int(template.low), int(template.high)))
        else:  # grid leaves are resolved before sampling
            raise AssertionError(f"unexpected {template.kind} leaf at {template.path}")
        if values is not None:
            values[template.path] = drawn
        return drawn
    if isinstance(template, Mapping):
        drawn_map = {k: sample(template[k], rng, values) for k in sorted(template, key=str)}
        return {k: drawn_map[k] for k in template}
    if isinstance(template, list):
        return [sample(v, rng, values) for v in template]
    return copy.deepcopy(template)


def point_rng(sampler_seed: int, sample_index: int, grid_point: Any) -> np.random.Generator:
    """The generator for one (sample, grid point): independent of every other configuration."""
    digest = int(hashlib.sha1(canonical_json(render(grid_point)).encode()).hexdigest()[:15], 16)
    return np.random.default_rng([sampler_seed, sample_index, digest])


def materialize(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill a template's leaves from ``values`` (leaf path -> value, or option index for non-primitive
    choices): how an Optuna suggestion becomes a run config."""
    if isinstance(template, Leaf):
        if template.path not in values:
            raise KeyError(template.path)
        value = values[template.path]
        if template.kind in ("grid", "choice"):
            index = template.options.index(value) if template.primitive else int(value)
            return materialize(template.options[index], values)
        return value
    if isinstance(template, Mapping):
        return {k: materialize(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [materialize(v, values) for v in template]
    return copy.deepcopy(template)


def _origins(template: Any, values: Mapping[str, Any], here: str = "", there: str = "") -> dict[str, str]:
    """Run-config path -> sweep-file path for every value that came out of a leaf option.

    Validation errors name run-config paths (``model.beta``); inside a whole-model grid the user wrote that
    key at ``model.grid[1].beta``, so errors are rewritten to the path in the file.
    """
    out: dict[str, str] = {}
    if isinstance(template, Leaf):
        if template.kind in ("grid", "choice") and template.path in values:
            index = values[template.path]
            if template.primitive:
                index = template.options.index(index)
            where = f"{_join(there, template.kind)}[{index}]"
            out[here] = where
            out.update(_origins(template.options[index], values, here, where))
        else:
            out[here] = _join(there, template.kind)
    elif isinstance(template, Mapping):
        for k, v in template.items():
            out.update(_origins(v, values, _join(here, k), _join(there, k)))
    elif isinstance(template, list):
        for i, v in enumerate(template):
            out.update(_origins(v, values, f"{here}[{i}]", f"{there}[{i}]"))
    return out


# --- the sweep section ------------------------------------------------------------------------------------


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
    reduction_factor: Annotated[float, Range(gt=1)] = 3.0
    max_t: Annotated[int, Range(ge=1)] | None = None
    interval: Annotated[int, Range(ge=1)] | None = None
    min_samples_required: Annotated[int, Range(ge=1)] = 3

    def milestones(self) -> list[int]:
        """The steps at which configurations are compared (all below ``max_t``)."""
        if self.name == "none" or self.max_t is None or self.grace_period is None:
            return []
        out: list[int] = []
        if self.name == "asha":
            k = 0
            while (m := int(round(self.grace_period * self.reduction_factor**k))) < self.max_t:
                if not out or m > out[-1]:
                    out.append(m)
                k += 1
        else:
            m, step = self.grace_period, self.interval or self.grace_period
            while m < self.max_t:
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


@dataclass(frozen=True)
class SweepSettings:
    """The ``sweep:`` section (docs/sweeps.md documents every field)."""

    name: str | None = None
    search: Literal["grid", "random", "optuna"] = "grid"
    seed: Annotated[int, Range(ge=0)] = 0
    num_samples: Annotated[int, Range(ge=1)] = 1
    seeds: list[int] = field(default_factory=lambda: [0])
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    scheduler: Any = "none"
    resources: Any = None
    max_concurrent: Annotated[int, Range(ge=1)] | None = None
    max_failures: Annotated[int, Range(ge=0)] = 2
    storage: str = "~/vaeray_results"  # a fixed place: re-running from another directory finds the ledger
    wandb: Any = None
    imports: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Configuration:
    """A resolved run config without its seed, its identity and the leaf values that produced it."""

    cell: str
    config: dict[str, Any]
    values: dict[str, Any]

    def with_seed(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, **{k: v for k, v in self.config.items() if k != "seed"}}


@dataclass(frozen=True)
class Trial:
    trial_id: str
    cell: str
    seed: int
    config: dict[str, Any]


@dataclass
class SweepSpec:
    """A validated sweep file. ``configurations`` is the full expansion for grid/random search; for Optuna
    it holds the representative configurations that were validated (the optimiser picks the real ones)."""

    source: str
    name: str
    search: str
    sampler_seed: int
    num_samples: int
    seeds: tuple[int, ...]
    metric: str
    mode: str
    scheduler: SchedulerSpec
    resources: Resources
    max_concurrent: int | None
    max_failures: int
    storage: str
    wandb: WandbSpec
    imports: tuple[str, ...]
    template: Any
    configurations: list[Configuration]
    notes: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        """``<storage>/<name>``: the sweep's ledger, experiments and results.parquet."""
        return join_uri(self.storage, self.name)

    @property
    def space(self) -> list[Leaf]:
        """The random leaves an Optuna search suggests values for (grid leaves are rejected for Optuna)."""
        return [leaf for leaf in leaves(self.template) if leaf.is_random]

    def trials(self) -> list[Trial]:
        """Configurations x seeds, seeds innermost (so a configuration's seeds run side by side)."""
        return [
            Trial(trial_id(c.cell, s), c.cell, s, c.with_seed(s)) for c in self.configurations for s in self.seeds
        ]

    @property
    def num_trials(self) -> int:
        return self.num_samples * len(self.seeds) if self.search == "optuna" else len(self.configurations) * len(self.seeds)

    @property
    def search_key(self) -> str:
        """Identity of an Optuna search (space, base config, sampler seed): ledger entries of other searches
        (or of an edited space) never count towards this one's ``num_samples``."""
        body = {"template": render(self.template), "seed": self.sampler_seed, "seeds": list(self.seeds)}
        return hashlib.sha1(canonical_json(body).encode()).hexdigest()[:10]

    def identify(self, tune_config: Mapping[str, Any]) -> tuple[dict[str, Any], str, int]:
        """(resolved run config with seed, config hash, seed) of a Tune trial's config.

        Grid/random trials carry their run config under ``"run"``; Optuna trials carry leaf values by path
        plus Tune's ``__trial_index__`` (which seed of the configuration this is, from ``Repeater``).
        """
        if "run" in tune_config:
            run = dict(tune_config["run"])
            return run, config_hash(run), int(run["seed"])
        values = {k: v for k, v in tune_config.items() if k != "__trial_index__"}
        seed = self.seeds[int(tune_config.get("__trial_index__", 0)) % len(self.seeds)]
        raw = materialize(self.template, values)
        resolved = _validate_configuration(raw, values, self.template, self.source)
        run = {**resolved, "seed": seed}
        return run, config_hash(run), seed

    def varying(self) -> list[str]:
        """Flattened config keys whose value differs between configurations: the matrix's columns."""
        return varying_keys([c.config for c in self.configurations])


def varying_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    flat = [flatten({k: v for k, v in c.items() if k != "seed"}) for c in configs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    return [k for k in keys if len({canonical_json(f.get(k, "\0missing")) for f in flat}) > 1]


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"model.beta": 4.0, ...}``; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def is_uri(path: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path)) and not path.startswith("file://")


def resolve_storage(storage: str, where: str) -> str:
    """A cloud URI as-is; a local path (or ``file://``) made absolute (Tune rejects relative paths)."""
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError("expected a local path or a URI such as s3://bucket/prefix", where)
    if is_uri(storage):
        return storage.rstrip("/")
    if storage.startswith("file://"):
        storage = storage[len("file://") :]
    return str(Path(storage).expanduser().resolve())


# --- loading ----------------------------------------------------------------------------------------------


def _dataclass_from(cls: type, raw: Any, path: str) -> Any:
    """Build a settings dataclass from a mapping, checking names, types and ranges (errors name the key)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping, got {raw!r}", path)
    params = {
        f.name: inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=f.default_factory() if f.default_factory is not MISSING else f.default,
            annotation=f.type,
        )
        for f in fields(cls)
    }
    return cls(**check_kwargs(cls, params, raw, path))


def _parse_scheduler(raw: Any, source: str) -> SchedulerSpec:
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
    return _dataclass_from(SchedulerSpec, raw, path)


def _check_seeds(raw: Any, source: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"expected a non-empty list of integer seeds, got {raw!r}", "sweep.seeds", source)
    seeds = []
    for i, s in enumerate(raw):
        if isinstance(s, bool) or not isinstance(s, int):
            raise ConfigError(f"seeds must be integers, got {s!r}", f"sweep.seeds[{i}]", source)
        if s < 0:
            raise ConfigError(f"seeds must be >= 0, got {s}", f"sweep.seeds[{i}]", source)
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


def load(path: str | os.PathLike, storage: str | None = None) -> SweepSpec:
    """Read and validate a sweep file; expand it into configurations. Raises :class:`ConfigError`."""
    source = str(path)
    raw = yamlio.load(path)
    if raw is None:
        raise ConfigError("the file is empty", source=source)
    if not isinstance(raw, Mapping):
        raise ConfigError("a sweep file is a mapping: a run config plus a 'sweep:' section", source=source)
    return parse(raw, source, storage=storage, default_name=Path(source).stem)


def parse(raw: Mapping[str, Any], source: str, storage: str | None = None, default_name: str = "sweep") -> SweepSpec:
    """Validate a parsed sweep file (see :func:`load`)."""
    body = dict(raw)
    section = body.pop("sweep", None)
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
        settings = _dataclass_from(SweepSettings, section, "sweep")
        resources = _dataclass_from(Resources, resources_raw, "sweep.resources")
        if wandb_raw is None:  # no section: no W&B at all
            wandb_raw = {"mode": "off"}
        elif not isinstance(wandb_raw, Mapping):
            wandb_raw = {"mode": wandb_raw}
        wandb = _dataclass_from(WandbSpec, wandb_raw, "sweep.wandb")
    except ConfigError as e:
        raise _with_source(e, source) from None
    if resources.gpu > 1 and not float(resources.gpu).is_integer():
        raise ConfigError(f"a gpu request above 1 must be a whole number, got {resources.gpu}", "sweep.resources.gpu", source)
    name = settings.name or default_name
    if not NAME.match(name):
        raise ConfigError(f"'{name}' is not a usable directory name (letters, digits, '.', '_', '-')", "sweep.name", source)
    imports = _import_plugins(settings.imports, source)
    storage_uri = resolve_storage(storage if storage is not None else settings.storage, "sweep.storage")

    if "seed" in body:
        raise ConfigError("list seeds in sweep.seeds (each configuration runs for every seed)", "seed", source)
    try:
        template = parse_space(body)
    except ConfigError as e:
        raise _with_source(e, source) from None
    all_leaves = leaves(template)
    if settings.search == "optuna":
        grids = [leaf for leaf in all_leaves if leaf.kind == "grid"]
        if grids:
            raise ConfigError("optuna search cannot expand grids; use choice (Optuna picks among the options)", f"{grids[0].path}.grid", source)
        if not all_leaves:
            raise ConfigError("optuna search needs at least one choice/uniform/loguniform/randint leaf", "sweep.search", source)

    notes: list[str] = []
    if settings.search == "optuna":
        configurations = _representatives(template, source)
    else:
        configurations, dropped = _expand(template, settings.seed, settings.num_samples, source)
        # the draws are a sample; both ends of every range and every choice option must be valid too
        for point, _ in expand_grid(template)[:16]:
            if any(leaf.is_random for leaf in leaves(point)):
                _representatives(point, source, limit=16)
        if dropped:
            notes.append(f"{dropped} duplicate configuration(s) dropped (same resolved config; seeds are the replicate axis)")
        if settings.num_samples > 1 and not any(leaf.is_random for leaf in all_leaves):
            notes.append("num_samples > 1 without random leaves repeats identical configurations; add seeds instead")

    scheduler = _parse_scheduler(scheduler_raw, source)
    try:
        scheduler = _scheduler_defaults(scheduler, configurations)
    except ConfigError as e:
        raise _with_source(e, source) from None
    _check_metric(settings.metric, configurations, source)
    if scheduler.name != "none" and settings.max_concurrent is not None and settings.max_concurrent < len(seeds):
        raise ConfigError(
            f"must be at least the number of seeds ({len(seeds)}) with early stopping: a configuration's seeds "
            "are judged together, so a seed waiting at a rung needs its siblings to be able to start",
            "sweep.max_concurrent",
            source,
        )
    for c in configurations:
        if str(c.config["train"]["device"]).startswith("cuda") and resources.gpu == 0:
            raise ConfigError(
                "train.device asks for a GPU but sweep.resources.gpu is 0: Ray would not reserve one "
                "(use device: auto, which follows the GPUs Ray assigns)",
                "train.device",
                source,
            )
    if resources.gpu and not (1 / resources.gpu).is_integer() and resources.gpu < 1:
        notes.append(f"gpu {resources.gpu} does not divide 1: Ray counts fractions per node, not per device")
    return SweepSpec(
        source=source,
        name=name,
        search=settings.search,
        sampler_seed=settings.seed,
        num_samples=settings.num_samples,
        seeds=seeds,
        metric=settings.metric,
        mode=settings.mode,
        scheduler=scheduler,
        resources=resources,
        max_concurrent=settings.max_concurrent,
        max_failures=settings.max_failures,
        storage=storage_uri,
        wandb=wandb,
        imports=imports,
        template=template,
        configurations=configurations,
        notes=notes,
    )


def _with_source(e: ConfigError, source: str) -> ConfigError:
    message = str(e)
    if e.path and message.startswith(f"{e.path}: "):
        message = message[len(e.path) + 2 :]
    return ConfigError(message, e.path, source)


def _validate_configuration(raw: Any, values: Mapping[str, Any], template: Any, source: str) -> dict[str, Any]:
    """``config.validate`` one configuration; errors are rewritten to the key path in the sweep file."""
    try:
        return config_mod.validate({**raw, "seed": 0})
    except ConfigError as e:
        message = str(e)
        if e.path and message.startswith(f"{e.path}: "):
            message = message[len(e.path) + 2 :]
        path = e.path or ""
        origins = _origins(template, values)
        best = max((k for k in origins if path == k or path.startswith(k + ".") or path.startswith(k + "[")), key=len, default=None)
        if best is not None:
            path = origins[best] + path[len(best) :]
        raise ConfigError(message, path or None, source) from None


def _expand(template: Any, sampler_seed: int, num_samples: int, source: str) -> tuple[list[Configuration], int]:
    points = expand_grid(template)
    if len(points) * num_samples > MAX_CONFIGURATIONS:
        raise ConfigError(f"{len(points)} grid points x num_samples {num_samples} is more than {MAX_CONFIGURATIONS:,} configurations", "sweep.num_samples", source)
    out: list[Configuration] = []
    seen: set[str] = set()
    dropped = 0
    for k in range(num_samples):
        for point, taken in points:
            values = dict(taken)
            raw = sample(point, point_rng(sampler_seed, k, point), values)
            resolved = _validate_configuration(raw, values, template, source)
            resolved.pop("seed", None)
            cell = config_hash(resolved)
            if cell in seen:
                dropped += 1
                continue
            seen.add(cell)
            out.append(Configuration(cell, resolved, values))
    return out, dropped


def _representatives(template: Any, source: str, limit: int = 256) -> list[Configuration]:
    """Configurations that exercise every choice option and both ends of every range, validated up front.

    Optuna chooses configurations while the sweep runs; validating the corners catches an unknown model in a
    choice or a range that leaves a parameter's valid interval before any trial starts.
    """
    space = [leaf for leaf in leaves(template) if leaf.is_random]
    choice_axes = [
        [(leaf.path, o if leaf.primitive else i) for i, o in enumerate(leaf.options)] for leaf in space if leaf.kind == "choice"
    ]
    combos = list(itertools.islice(itertools.product(*choice_axes), limit))
    out: list[Configuration] = []
    seen: set[str] = set()
    for end in ("low", "high"):
        for combo in combos:
            values: dict[str, Any] = dict(combo)
            for leaf in space:
                if leaf.kind == "randint":
                    values[leaf.path] = int(leaf.low) if end == "low" else int(leaf.high) - 1
                elif leaf.kind != "choice":
                    values[leaf.path] = float(getattr(leaf, end))
            raw = materialize(template, values)
            resolved = _validate_configuration(raw, values, template, source)
            resolved.pop("seed", None)
            cell = config_hash(resolved)
            if cell not in seen:
                seen.add(cell)
                out.append(Configuration(cell, resolved, values))
    return out


def _scheduler_defaults(s: SchedulerSpec, configurations: Sequence[Configuration]) -> SchedulerSpec:
    """``max_t`` defaults to the longest ``train.steps``; ``grace_period`` to a tenth of ``max_t``."""
    if s.name == "none":
        return s
    max_t = s.max_t or max(c.config["train"]["steps"] for c in configurations)
    grace = s.grace_period or max(1, max_t // 10)
    if grace >= max_t:
        raise ConfigError(f"grace_period {grace} must be below max_t {max_t} (else nothing is ever stopped)", "sweep.scheduler.grace_period")
    return SchedulerSpec(**{**{f.name: getattr(s, f.name) for f in fields(s)}, "max_t": max_t, "grace_period": grace})


def produced_metrics(config: Mapping[str, Any]) -> tuple[set[str] | None, list[str]]:
    """Keys a trial of ``config`` reports: (exact keys or None when the model does not declare its terms,
    metric-name prefixes of eval metrics that do not declare their keys)."""
    exact: set[str] | None = set(STANDARD_METRICS)
    terms = getattr(MODELS.get(config["model"]["name"]), "terms", None)
    if terms is None:
        exact = None
    else:
        exact |= set(terms)
    prefixes: list[str] = []
    for name in (config.get("eval") or {}).get("metrics") or {}:
        keys = getattr(METRICS.get(name), "keys", None)
        if keys is not None and not callable(keys):
            if exact is not None:
                exact |= set(keys)
            else:
                prefixes.append(name)
        else:
            prefixes.append(name)
    return exact, prefixes


def _check_metric(metric: str, configurations: Iterable[Configuration], source: str) -> None:
    for c in configurations:
        exact, prefixes = produced_metrics(c.config)
        if exact is None:  # the model does not declare its terms: nothing to check against
            continue
        if metric in exact or any(metric == p or metric.startswith(p) and metric[len(p)] in "_/." for p in prefixes):
            continue
        model = c.config["model"]["name"]
        reported = ", ".join(sorted(exact) + [f"{p}*" for p in prefixes])
        raise ConfigError(
            f"metric '{metric}' is not produced by model '{model}' (it reports: {reported}); "
            "pick one of those or add an eval.metrics entry that reports it",
            "sweep.metric",
            source,
        )


# --- dry run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterView:
    """What the dry run compares trial requests against: per-node CPU/GPU totals and where they came from."""

    source: str
    nodes: tuple[tuple[float, float], ...]  # (CPU, GPU) per node that accepts trials

    @property
    def cpu(self) -> float:
        return sum(n[0] for n in self.nodes)

    @property
    def gpu(self) -> float:
        return sum(n[1] for n in self.nodes)


def local_cluster() -> ClusterView:
    """This machine: its CPU count and the CUDA devices torch sees (no Ray started)."""
    import torch

    return ClusterView("this machine", ((float(os.cpu_count() or 1), float(torch.cuda.device_count())),))


def concurrency(resources: Resources, cluster: ClusterView) -> int:
    """How many trials run at once: per node, the bundles that fit (a bundle never spans nodes)."""
    total = 0
    for cpu, gpu in cluster.nodes:
        n = math.floor(cpu / resources.cpu + 1e-9)
        if resources.gpu > 0:
            n = min(n, math.floor(gpu / resources.gpu + 1e-9))
        total += max(0, n)
    return total


def dry_run_report(spec: SweepSpec, address: str | None = None, cluster: ClusterView | None = None) -> str:
    """The trial matrix, the resources each trial asks for and whether they fit ``cluster`` (default: this
    machine; the CLI passes the Ray cluster's view when an address is given). Runs nothing."""
    from .results import Ledger, format_table

    cluster = cluster or local_cluster()
    lines = [f"sweep '{spec.name}' ({spec.source}): {_describe_search(spec)}"]
    lines.append(f"storage: {spec.root}")
    lines.append(f"metric: {spec.metric} ({spec.mode}); early stopping: {spec.scheduler.describe()}")
    try:
        done = Ledger(spec.root).load()
    except OSError as e:  # unreachable cloud storage must not stop a dry run on a laptop
        done = {}
        spec.notes.append(f"cannot read the ledger at {spec.root} ({str(e).splitlines()[0][:160]}); statuses unknown")
    if spec.search == "optuna":
        rows = [[leaf.path, leaf.describe()] for leaf in spec.space]
        lines.append(f"search space ({len(spec.space)} parameters; Optuna TPE, sampler seed {spec.sampler_seed}):")
        lines.append(format_table(["parameter", "distribution"], rows, indent=2))
        lines.append(f"seeds: {', '.join(map(str, spec.seeds))} (Optuna sees the seed mean of each configuration)")
        lines.append(f"validated {len(spec.configurations)} representative configuration(s) (every choice option, both range ends)")
    else:
        columns = spec.varying()
        rows = []
        for t in spec.trials():
            flat = flatten(t.config)
            status = done[t.trial_id]["status"] if t.trial_id in done else "to run"
            rows.append([t.trial_id, *(_cell(flat.get(k, "-")) for k in columns), str(t.seed), status])
        lines.append(format_table(["trial", *columns, "seed", "status"], rows, indent=2))
        todo = sum(1 for r in rows if r[-1] == "to run")
        lines.append(f"{todo} of {len(rows)} trials to run ({len(rows) - todo} already in the ledger)")
    lines.extend(_resource_lines(spec, cluster, address))
    lines.extend(f"note: {n}" for n in spec.notes)
    return "\n".join(lines)


def _describe_search(spec: SweepSpec) -> str:
    n_conf = spec.num_samples if spec.search == "optuna" else len(spec.configurations)
    return f"search {spec.search}, {n_conf} configurations x {len(spec.seeds)} seeds = {spec.num_trials} trials"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _resource_lines(spec: SweepSpec, cluster: ClusterView, address: str | None) -> list[str]:
    r = spec.resources
    lines = [f"resources per trial: cpu {r.cpu:g}, gpu {r.gpu:g}; max_concurrent {spec.max_concurrent or 'unlimited'}"]
    where = cluster.source if address is None else f"{cluster.source}"
    lines.append(f"{where}: {cluster.cpu:g} CPU, {cluster.gpu:g} GPU on {len(cluster.nodes)} node(s)")
    fits_one = any(cpu >= r.cpu and gpu >= r.gpu for cpu, gpu in cluster.nodes)
    if not fits_one:
        lines.append(
            "does NOT fit: no node has "
            f"cpu {r.cpu:g} and gpu {r.gpu:g} free; trials would wait (an autoscaling cluster may add such nodes)"
        )
    else:
        n = concurrency(r, cluster)
        if spec.max_concurrent:
            n = min(n, spec.max_concurrent)
        lines.append(f"fits: {n} trial(s) at a time")
    return lines
