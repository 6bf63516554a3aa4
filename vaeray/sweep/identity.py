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


# Settings added after vaeray 0.1, with the default that reproduces 0.1's behaviour. A resolved config carries
# every default, so without this each new option would rename every configuration and a ledger written by 0.1
# would no longer recognise its own trials (a finished sweep would rerun, an interrupted one would not resume).
# A setting at this default is left out of the hash; set to anything else it counts like any other. A new
# option with a default must be added here (tests/sweep/test_identity.py checks the hash of a 0.1 config).
LATER_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("train", "momentum"): 0.0,
    ("train", "lr_boundaries"): [],
    ("train", "lr_factors"): [],
    ("train", "early_stop_every"): None,
    ("train", "early_stop_patience"): 50,
    ("train", "early_stop_metric"): "elbo",
    ("train", "early_stop_burn_in"): 0,
    ("train", "early_stop_min_delta"): 0.0,
    ("train", "early_stop_examples"): None,
    ("train", "nan_restarts"): 0,
    ("train", "channels_last"): False,
    ("train", "autocast"): "off",
    ("train", "compile"): "off",
    ("train", "optimizer_impl"): "auto",
    ("eval", "metrics", "nll", "elbo"): False,
}


# The same for a model's own settings added after that model was released, keyed by the model's name (a path
# alone would also drop the setting from another model whose hashes always counted it: svae's kl_warmup).
LATER_MODEL_DEFAULTS: dict[tuple[str, str], Any] = {
    ("ml_vae", "kl_warmup"): 0,
}


def _without_later_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(canonical_json(config))  # a deep copy in plain JSON types (tuples become lists)
    model = out.get("model")
    if isinstance(model, dict):
        for (name, key), default in LATER_MODEL_DEFAULTS.items():
            if model.get("name") == name and key in model and model[key] == default:
                del model[key]
    for path, default in LATER_DEFAULTS.items():
        node = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] == default:
            del node[path[-1]]
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """sha1[:10] of a resolved run config *without* its seed: the configuration's identity (settings added
    after 0.1 count only when they differ from the default that reproduces 0.1, see ``LATER_DEFAULTS``)."""
    return digest(_without_later_defaults({k: v for k, v in config.items() if k != "seed"}))


def trial_id(cell: str, seed: int) -> str:
    return f"{cell}-s{seed}"
