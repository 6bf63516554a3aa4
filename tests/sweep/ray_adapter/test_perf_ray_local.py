"""A local sweep's Ray runs trial workers at normal priority (Ray's own default is nice 15) unless
``VAERAY_WORKER_NICENESS`` says otherwise, and ``VAERAY_RAY_DEFAULTS=1`` gives Ray's defaults back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaeray.sweep.ray.local import local_init_kwargs

REPO = Path(__file__).resolve().parents[3]

CHILD = r"""
import os, ray
from vaeray.sweep.ray.local import local_init_kwargs
ray.init(address="local", include_dashboard=False, log_to_driver=False, num_cpus=1, **local_init_kwargs())
try:
    @ray.remote(num_cpus=1)
    class Trial:  # trials are actors, like Tune's function trainables
        def niceness(self):
            return os.nice(0)
    print("NICE", ray.get(Trial.remote().niceness.remote()))
finally:
    ray.shutdown()
"""


def test_local_init_options(monkeypatch):
    monkeypatch.delenv("VAERAY_RAY_DEFAULTS", raising=False)
    monkeypatch.delenv("VAERAY_WORKER_NICENESS", raising=False)
    assert local_init_kwargs()["_system_config"]["worker_niceness"] == 0
    monkeypatch.setenv("VAERAY_WORKER_NICENESS", "7")
    assert local_init_kwargs()["_system_config"]["worker_niceness"] == 7
    monkeypatch.setenv("VAERAY_RAY_DEFAULTS", "1")
    assert local_init_kwargs() == {}


@pytest.mark.skipif(os.nice(0) != 0, reason="the test process itself runs niced")
def test_trial_workers_run_at_normal_priority():
    env = {k: v for k, v in os.environ.items() if k not in ("VAERAY_RAY_DEFAULTS", "VAERAY_WORKER_NICENESS", "RAY_ADDRESS")}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NICE 0" in out.stdout, out.stdout  # Ray alone would give 15
