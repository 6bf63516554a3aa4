"""Search spaces: the leaves of a sweep file, and how a template of them becomes run configs.

A sweep file is a run config in which any value may be a leaf (docs/sweeps.md, "Search-space leaves"):
``grid``, ``choice``, ``uniform``, ``loguniform``, ``randint``. :func:`parse_space` turns the file into a
*template* (plain data with :class:`Leaf` objects where leaves were), checking each leaf where it stands so an
error names its key path in the file. A template then resolves in one of two ways:

* **grid/random search**: :func:`expand_grid` takes every grid point, then :func:`sample` draws the random
  leaves of each point from :func:`point_rng`. We expand the space ourselves instead of letting Tune sample
  it, because Tune redraws random leaves per grid point, so seeds would not be replicates. Each
  configuration's generator is seeded by (sampler seed, sample index, the grid point), so adding a grid value,
  a sample or a seed leaves every existing configuration's draws untouched.
* **Optuna**: :func:`optuna_distributions` is the space Optuna suggests from, keyed by leaf path, and
  :func:`materialize` turns a suggestion back into a run config.

Both record the value each leaf took by its path, which :func:`origins` uses to point a validation error at
the key the user wrote. No ``ray`` here.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, clip, did_you_mean
from ..schema import check
from .identity import digest

LEAVES = ("grid", "choice", "uniform", "loguniform", "randint")
# Names other tools use for leaves; a mapping keyed by one of them is almost surely a mistyped leaf.
FOREIGN_LEAVES = (
    "grid_search", "sample_from", "quniform", "qloguniform", "qrandint", "lograndint", "randn", "qrandn",
    "categorical", "values", "log_uniform", "int_uniform", "range",
)  # fmt: skip
MAX_CONFIGURATIONS = 100_000  # a product beyond this is a typo, not a study


# --- leaves and parsing -----------------------------------------------------------------------------------


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
    return clip(json.dumps(render(template), sort_keys=False), 40)


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
    return np.random.default_rng([sampler_seed, sample_index, int(digest(render(grid_point), 15), 16)])


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


def origins(template: Any, values: Mapping[str, Any], here: str = "", there: str = "") -> dict[str, str]:
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
            out.update(origins(template.options[index], values, here, where))
        else:
            out[here] = _join(there, template.kind)
    elif isinstance(template, Mapping):
        for k, v in template.items():
            out.update(origins(v, values, _join(here, k), _join(there, k)))
    elif isinstance(template, list):
        for i, v in enumerate(template):
            out.update(origins(v, values, f"{here}[{i}]", f"{there}[{i}]"))
    return out


def optuna_distributions(space: Sequence[Leaf]) -> dict[str, Any]:
    """Optuna distributions keyed by leaf path: the inverse of :func:`materialize`'s conventions (a choice of
    non-scalar options is suggested as an option index; ``randint``'s exclusive high becomes inclusive)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for leaf in space:
        if leaf.kind == "choice":
            out[leaf.path] = CategoricalDistribution(list(leaf.options) if leaf.primitive else list(range(len(leaf.options))))
        elif leaf.kind == "randint":
            out[leaf.path] = IntDistribution(int(leaf.low), int(leaf.high) - 1)
        else:
            out[leaf.path] = FloatDistribution(leaf.low, leaf.high, log=leaf.kind == "loguniform")
    return out
