"""A local sweep opens no port beyond the loopback interface, and a W&B key reaches no file (issue 14, item 6).

One real `vaeray sweep` subprocess with a fresh local Ray (its own RAY_TMPDIR) and a planted fake
WANDB_API_KEY: while its trials run, ``ss -ltnp`` lists every listening TCP socket of the processes in the
driver's session (Ray's GCS, raylet, workers, agents); all must be bound to 127.0.0.1 / ::1. Afterwards every
file under the results directory and Ray's temp directory is searched for the key.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ..conftest import VAERAY


def session_pids(sid: int) -> set[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:  # field 6 of /proc/PID/stat: the session id
                    pids.add(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def listening(pids: set[int]) -> list[tuple[str, int]]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.append((line.split()[3], min(owners & pids)))
    return found


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """One real sweep with a planted key: (key, listening sockets seen mid-trial, files written)."""
    from ..conftest import BASE, merge

    import yaml

    tmp_path = tmp_path_factory.mktemp("secure")
    body = merge(BASE, {
        "model": {"name": "sweeptest_vae", "sleep_s": 0.05},
        "train": {"steps": 60, "log_every": 10, "checkpoint_every": 20},
        "sweep": {"seeds": [0], "wandb": {"mode": "offline", "project": "vaeray-test"}},
    })  # fmt: skip
    body["sweep"].update(storage=str(tmp_path / "results"), name="secure")
    path = tmp_path / "secure.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    key = "vaeray-fake-" + secrets.token_hex(16)
    ray_tmp = tempfile.mkdtemp(prefix="vr", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_API_KEY": key, "RAY_TMPDIR": ray_tmp,
           "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true"}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([str(VAERAY), "sweep", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=tmp_path, start_new_session=True)  # fmt: skip
    sockets: list[tuple[str, int]] = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline and driver.poll() is None:
            if list(Path(tmp_path / "results").rglob("checkpoint_*")):
                sockets = listening(session_pids(driver.pid)) if shutil.which("ss") else []
                break
            time.sleep(0.1)
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err.decode()[-3000:]
        files = [f for root in (tmp_path, Path(ray_tmp)) for f in root.rglob("*") if f.is_file() and not f.is_symlink()]
        found = []
        for f in files:
            try:
                if key.encode() in f.read_bytes():
                    found.append(str(f))
            except OSError:
                pass
        yield key, sockets, files, found
    finally:
        if driver.poll() is None:
            driver.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_planted_wandb_key_reaches_no_file(sweep_run):
    key, _, files, found = sweep_run
    assert len(files) > 50  # results, checkpoints, W&B offline runs and Ray's session logs were all searched
    assert not found, f"the W&B key was written to {found[:5]}"


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.xfail(strict=True, reason="Ray 2.60's worker and agent gRPC servers bind all interfaces (or the "
                   "detected node IP) even with _node_ip_address=127.0.0.1; no setting found to stop it (docs/reliability.md)")
def test_local_sweep_opens_no_port_beyond_loopback(sweep_run):
    _, sockets, _, _ = sweep_run
    assert sockets, "no listening socket of the sweep's Ray was seen"
    public = [s for s in sockets if not re.match(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.\d+\.\d+\.\d+\]):\d+$", s[0])]
    assert not public, f"ports open beyond loopback: {public}"
