"""Name -> class registries shared by the CLI, run configs and sweep files.

A registered callable's signature is the schema of its config section: ``{name: beta_tcvae, beta: 6}`` is
checked against ``inspect.signature(BetaTCVAE)`` before anything runs, so a typo fails on the laptop and not on
the cluster. Parameters listed in ``injected`` (the observation shape, the dataset size) are supplied by the
training loop from the dataset and are not part of the user's schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import ConfigError, did_you_mean


class Registry:
    """A dict of named constructors plus a decorator; errors list the valid names."""

    def __init__(self, kind: str, injected: tuple[str, ...] = ()):
        self.kind = kind
        self.injected = injected
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = obj
            obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return deco

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, path: str | None = None) -> Callable[..., Any]:
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(f"unknown {self.kind} '{name}'; {did_you_mean(str(name), self._entries)}", path)
        return self._entries[name]

    __getitem__ = get

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The user-settable constructor parameters of ``name`` (injected ones removed)."""
        from .schema import parameters

        return {k: p for k, p in parameters(self.get(name)).items() if k not in self.injected}

    def defaults(self, name: str) -> dict[str, Any]:
        return {k: p.default for k, p in self.parameters(name).items() if p.default is not inspect.Parameter.empty}

    def build(self, spec: Mapping[str, Any], path: str = "", **injected: Any) -> Any:
        """Construct ``spec['name']`` with the other keys as keyword arguments (validated first)."""
        from .config import validate_section  # late import: config imports the registry

        kwargs = validate_section(self, spec, path)
        name = kwargs.pop("name")
        cls = self.get(name, path)
        from .schema import parameters

        accepted = parameters(cls)
        extra = {k: v for k, v in injected.items() if k in accepted}
        return cls(**kwargs, **extra)


MODELS = Registry("model", injected=("observation_shape", "dataset_size", "data_mean", "data_name"))
DATASETS = Registry("dataset", injected=("data_dir", "split", "device"))
METRICS = Registry(
    "metric",
    injected=("dataset", "represent", "log_likelihood", "seed", "device", "represent_parts", "train_dataset"),
)


def load_all() -> None:
    """Import every module that registers something (the import list is the source of truth)."""
    from . import data, metrics, models  # noqa: F401
