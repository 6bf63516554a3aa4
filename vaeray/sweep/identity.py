"""Stable identity of configurations and trials (docs/sweeps.md, "Seeds, configurations and trial identity").

A *configuration* is a resolved run config without its seed; its ``config_hash`` is a hash of the config's
canonical JSON, so two sweep files that resolve to the same config (a default spelled out, keys in another
order) name the same configuration. A *trial* is a configuration plus one seed: ``<hash>-s<seed>``. These
names are trial directories, W&B groups and ledger keys, which is what makes re-running a sweep file
idempotent (see :mod:`vaeray.sweep.results`). No ``ray`` here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def digest(obj: Any, length: int = 10) -> str:
    """The first ``length`` hex digits of the sha1 of ``obj``'s canonical JSON."""
    return hashlib.sha1(canonical_json(obj).encode()).hexdigest()[:length]


def config_hash(config: Mapping[str, Any]) -> str:
    """sha1[:10] of a resolved run config *without* its seed: the configuration's identity."""
    return digest({k: v for k, v in config.items() if k != "seed"})


def trial_id(cell: str, seed: int) -> str:
    return f"{cell}-s{seed}"
