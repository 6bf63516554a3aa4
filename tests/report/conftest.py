"""One tiny cross-family sweep for the whole report test session, run through the real CLI.

The shipped ``sweeps/families_dsprites.yaml`` with its laptop-style ``--set`` overrides shrunk further: the
32x32 ground-truth blobs of ``reporttest_plugin`` instead of dSprites, 20 steps, a cheap evaluation. Ray
workers import the plugin, so this directory goes on ``PYTHONPATH`` before anything starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VAERAY = Path(sys.executable).parent / "vaeray"

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import reporttest_plugin  # noqa: E402,F401

TINY = [
    "data={name: reporttest_grid_groups, group_size: null}",
    "train.steps=20", "train.batch_size=16", "train.log_every=5", "train.checkpoint_every=10",
    "eval.every=10",
    "eval.metrics={nll: {k: 4, num_examples: 36, batch_size: 36, elbo: true}, mig: {num_train: 200, batch_size: 200}}",
    "sweep.seeds=[0, 1]", "sweep.resources={cpu: 1, gpu: 0}", "sweep.imports=[reporttest_plugin]",
]  # fmt: skip


def run_vaeray(*args: str, cwd: Path, timeout: int = 300, **env_over: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", **env_over}
    return subprocess.run([str(VAERAY), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def family_sweep(tmp_path_factory) -> Path:
    """The tiny cross-family study, run once: returns the sweep's directory in storage."""
    base = tmp_path_factory.mktemp("families")
    sets = [a for item in (*TINY, f"sweep.storage={base / 'results'}") for a in ("--set", item)]
    r = run_vaeray("sweep", str(REPO / "sweeps" / "families_dsprites.yaml"), *sets, cwd=base, VAERAY_STATUS_EVERY="1")
    assert r.returncode == 0, r.stderr[-3000:]
    (base / "sweep.stderr").write_text(r.stderr)  # the live status lines, for test_console
    root = base / "results" / "families_dsprites"
    assert (root / "results.parquet").is_file()
    assert "reporttest_plugin" in (root / "sweep.yaml").read_text()  # the copy in storage is the file as run
    return root
