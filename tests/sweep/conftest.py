"""Fixtures for the sweep tests: one local Ray per session, tiny sweep files, and a two-node cluster.

Ray workers are separate processes, so anything a test registers must be importable there: the test
model/dataset live in ``sweeptest_plugin`` (listed under ``sweep.imports`` in every test sweep), and this
directory is put on ``PYTHONPATH`` before Ray starts so that workers and ``vaeray`` subprocesses find it.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VAERAY = Path(sys.executable).parent / "vaeray"

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import sweeptest_plugin  # noqa: E402,F401  (registers sweeptest_vae / sweeptest_blobs here too)

# A configuration trains 30 steps of a 16-unit MLP VAE on 144 8x8 images: well under a second.
BASE: dict[str, Any] = {
    "model": {"name": "vae", "net": "mlp", "hidden": [16], "latent_dim": 2},
    "data": {"name": "sweeptest_blobs"},
    "train": {"steps": 30, "batch_size": 16, "lr": 1e-3, "log_every": 10, "checkpoint_every": 10},
    # cpu 1, not 0.5: on 2 cores, two reused workers beat four new ones that each import torch (~5 s)
    "sweep": {"seeds": [0, 1], "resources": {"cpu": 1}, "imports": ["sweeptest_plugin"]},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        replace = any(leaf in v for leaf in ("grid", "choice")) or (k == "model" and "name" in v) if isinstance(v, dict) else True
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not replace:
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@pytest.fixture
def make_sweep(tmp_path):
    """``make_sweep(name, **sections)`` writes a sweep file (BASE merged with the sections) and returns its path.

    Storage defaults to ``tmp_path/results`` so every test has its own ledger.
    """

    def make(name: str = "sw", **sections: Any) -> Path:
        body = merge(BASE, sections)
        body["sweep"].setdefault("storage", str(tmp_path / "results"))
        body["sweep"].setdefault("name", name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        return path

    return make


class _RayState:
    mode: str | None = None  # "local" | "cluster" | None


def _shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    _RayState.mode = None


@pytest.fixture
def ray_local():
    """The session's local Ray (2 CPUs), started on first use; restarted if a cluster test replaced it."""
    import ray

    if _RayState.mode != "local":
        _shutdown()
        ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
        _RayState.mode = "local"
    yield ray


@pytest.fixture
def ray_cluster():
    """A multi-node local cluster (``ray.cluster_utils.Cluster``): the test adds the nodes it needs."""
    import ray
    from ray.cluster_utils import Cluster

    _shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    _RayState.mode = "cluster"
    try:
        yield cluster
    finally:
        _shutdown()
        cluster.shutdown()


def pytest_sessionfinish(session, exitstatus):
    if _RayState.mode is not None:
        _shutdown()
