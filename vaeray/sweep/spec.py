"""Sweep files: a run config with search-space leaves plus a ``sweep:`` section (docs/sweeps.md).

:func:`load` reads a sweep file and returns a validated :class:`SweepSpec`. Everything a researcher can get
wrong is caught here, on the laptop, before a cluster starts; :mod:`vaeray.sweep.dryrun` reports what a spec
would run and :mod:`vaeray.sweep.ray` turns a spec into Ray Tune experiments. This module imports neither: it
is the bottom of the sweep wing that they build on.

The parts, one idea each:

* :mod:`~vaeray.sweep.space`: the leaves (``grid``, ``choice``, ``uniform``, ...), grid expansion and the
  deterministic draws that make seeds replicates and keep old configurations when a sweep is extended;
* :mod:`~vaeray.sweep.settings`: the ``sweep:`` section (search, seeds, metric, scheduler, resources, storage, W&B);
* :mod:`~vaeray.sweep.configurations`: templates resolved into validated run configs (seeds are an axis, not a
  hyperparameter) and the metrics each one reports;
* :mod:`~vaeray.sweep.identity`: config hash and trial id, which name directories, W&B groups and ledger entries;
* this module: the spec that ties them together and the checks that need all of them at once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import yamlio
from ..config import apply_overrides, flatten
from ..errors import ConfigError
from ..storage import join_uri
from .configurations import Configuration, Trial, check_metric, expand, representatives, resolve
from .identity import canonical_json, config_hash, digest, trial_id
from .settings import Resources, SchedulerSpec, WandbSpec, parse_section
from .space import Leaf, expand_grid, leaves, materialize, parse_space, render

__all__ = ["SweepSpec", "load", "parse"]


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
    overrides: tuple[str, ...] = ()  # the --set items applied to the file

    def text(self) -> str:
        """The sweep file as run: its text, or with ``--set`` overrides the overridden document (so the copy in
        storage says what actually ran: ``vaeray report`` reads its metric and imports from it)."""
        path = Path(self.source)
        original = path.read_text() if path.is_file() else ""
        if not self.overrides:
            return original
        import yaml

        body = apply_overrides(yamlio.loads(original, source=self.source) or {}, self.overrides)
        header = f"# {self.source} with --set " + " --set ".join(self.overrides) + "\n"
        return header + yaml.safe_dump(body, sort_keys=False)

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
        return digest({"template": render(self.template), "seed": self.sampler_seed, "seeds": list(self.seeds)})

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
        c = resolve(self.template, materialize(self.template, values), values, self.source)
        return c.with_seed(seed), c.cell, seed

    def trial_name(self, tune_config: Mapping[str, Any]) -> str:
        """The trial id ``<config hash>-s<seed>`` of a Tune trial's config."""
        _, cell, seed = self.identify(tune_config)
        return trial_id(cell, seed)

    def varying(self) -> list[str]:
        """Flattened config keys whose value differs between configurations: the matrix's columns."""
        return varying_keys([c.config for c in self.configurations])


def varying_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    flat = [flatten({k: v for k, v in c.items() if k != "seed"}) for c in configs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    return [k for k in keys if len({canonical_json(f.get(k, "\0missing")) for f in flat}) > 1]


def load(path: str | os.PathLike, storage: str | None = None, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and validate a sweep file; expand it into configurations. Raises :class:`ConfigError`.

    ``overrides`` are ``--set KEY=VALUE`` items applied to the file before anything is checked
    (``train.steps=2000``, ``sweep.seeds=[0,1]``): how a cluster-size file gets its laptop size."""
    source = str(path)
    raw = yamlio.load(path)
    if raw is None:
        raise ConfigError("the file is empty", source=source)
    if not isinstance(raw, Mapping):
        raise ConfigError("a sweep file is a mapping: a run config plus a 'sweep:' section", source=source)
    if overrides:
        try:
            raw = apply_overrides(raw, overrides)
        except ConfigError as e:  # a bad --set value names itself ("--set train.lr"); a bad key path the file
            raise (e if e.source else e.in_file(source)) from None
    try:
        spec = parse(raw, source, storage=storage, default_name=Path(source).stem)
        return dataclasses.replace(spec, overrides=tuple(overrides)) if overrides else spec
    except ConfigError as e:  # checks deep in the settings know only the key path: name the file here, once
        if e.source:
            raise
        raise e.in_file(source) from None


def parse(raw: Mapping[str, Any], source: str, storage: str | None = None, default_name: str = "sweep") -> SweepSpec:
    """Validate a parsed sweep file (see :func:`load`): the section, the space, every configuration, then the
    checks that need the section and the configurations together."""
    body = dict(raw)
    section = parse_section(body.pop("sweep", None), source, storage, default_name)
    settings, seeds, resources = section.settings, section.seeds, section.resources
    if "seed" in body:
        raise ConfigError("list seeds in sweep.seeds (each configuration runs for every seed)", "seed", source)
    try:
        template = parse_space(body)
    except ConfigError as e:
        raise e.in_file(source) from None
    all_leaves = leaves(template)
    if settings.search == "optuna":
        grids = [leaf for leaf in all_leaves if leaf.kind == "grid"]
        if grids:
            raise ConfigError("optuna search cannot expand grids; use choice (Optuna picks among the options)", f"{grids[0].path}.grid", source)
        if not all_leaves:
            raise ConfigError("optuna search needs at least one choice/uniform/loguniform/randint leaf", "sweep.search", source)

    notes: list[str] = []
    if settings.search == "optuna":
        configurations = representatives(template, source)
    else:
        configurations, dropped = expand(template, settings.seed, settings.num_samples, source)
        # the draws are a sample; both ends of every range and every choice option must be valid too
        for point, _ in expand_grid(template)[:16]:
            if any(leaf.is_random for leaf in leaves(point)):
                representatives(point, source, limit=16)
        if dropped:
            notes.append(f"{dropped} duplicate configuration(s) dropped (same resolved config; seeds are the replicate axis)")
        if settings.num_samples > 1 and not any(leaf.is_random for leaf in all_leaves):
            notes.append("num_samples > 1 without random leaves repeats identical configurations; add seeds instead")

    scheduler = section.scheduler(max(c.config["train"]["steps"] for c in configurations))
    check_metric(settings.metric, configurations, source)
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
        name=section.name,
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
        storage=section.storage,
        wandb=section.wandb,
        imports=section.imports,
        template=template,
        configurations=configurations,
        notes=notes,
    )
