"""Security of a local sweep (issue 14, item 6), tested on the real thing.

One real `vaeray sweep` subprocess with a fresh local Ray (its own RAY_TMPDIR, its own random RAY_AUTH_TOKEN)
and a planted fake WANDB_API_KEY: while its trials run, ``ss -ltnp`` lists every listening TCP socket of the
processes in the driver's session (Ray's GCS, raylet, workers, agents). All must be bound to loopback
(127.0.0.1, ::1 or IPv4-mapped 127.0.0.1), and every one of them must refuse a request without the token
(gRPC status UNAUTHENTICATED, HTTP 401) and answer the same request with it: on a shared machine, other local
users reach loopback too. Afterwards every file under the results directory and Ray's temp directory is
searched for the W&B key and the Ray token.
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
from .fake_autoscaling import session_pids


# One harmless unary method per Ray gRPC service (the core workers', the raylet's, the GCS's, the object
# manager's), sent with an empty message; gRPC answers UNIMPLEMENTED (12) for a service the port does not
# serve, so each port is asked until one answers otherwise. The object manager's Pull is only ever sent
# without the token (an empty pull is not something to hand a raylet that would accept it).
GRPC_METHODS = ("/ray.rpc.CoreWorkerService/NumPendingTasks", "/ray.rpc.NodeManagerService/GetSystemConfig",
                "/ray.rpc.NodeInfoGcsService/GetClusterId", "/ray.rpc.ObjectManagerService/Pull")  # fmt: skip
UNAUTHENTICATED, UNIMPLEMENTED = 16, 12


def grpc_status(address: str, method: str, token: str | None) -> int | str:
    """The grpc-status of one unary call over HTTP/2 (curl speaks it; the grpcio package is not installed
    with Ray, and installing it would make `ray start` open a Ray Client port)."""
    cmd = ["curl", "-sS", "-v", "--http2-prior-knowledge", "--max-time", "5", "-X", "POST", "-H",
           "content-type: application/grpc", "-H", "te: trailers", "--data-binary", "@-", f"http://{address}{method}"]  # fmt: skip
    if token:
        cmd[1:1] = ["-H", f"authorization: Bearer {token}"]
    for _ in range(3):  # the server sometimes resets the stream of a bodiless call (curl exit 92): ask again
        r = subprocess.run(cmd, input=b"\0\0\0\0\0", capture_output=True)  # an empty length-prefixed message
        status = re.findall(r"grpc-status: *(\d+)", r.stderr.decode(errors="replace"))
        if status:
            return int(status[0])
    return f"curl exit {r.returncode}"


def http_status(address: str, token: str | None) -> str:
    """The HTTP status of a POST to the runtime-env agent's info endpoint (the agent is HTTP, not gRPC)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-X", "POST",
           f"http://{address}/get_runtime_envs_info"]  # fmt: skip
    if token:
        cmd[1:1] = ["-H", f"authorization: Bearer {token}"]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def guarded(address: str, token: str) -> str:
    """How the port at ``address`` treats a request without the token: 'token' if it refuses it and accepts
    the same request with the token, 'refused' if it refuses it (no harmless request to send with it),
    'closed' if nothing listens any more, 'no probe served' if it serves none of the requests either way,
    else what served the request without the token (a failure)."""
    for method in GRPC_METHODS:
        without = grpc_status(address, method, None)
        if without == "curl exit 7":  # connection refused: the process (a trial's worker) has ended
            return "closed"
        if without == UNAUTHENTICATED:
            if method.endswith("/Pull"):
                return "refused"
            with_token = grpc_status(address, method, token)
            return "token" if with_token == 0 else f"{method} with the token: {with_token}"
        if without != UNIMPLEMENTED and not isinstance(without, str):
            return f"{method} without the token: {without}"
    without, with_token = http_status(address, None), http_status(address, token)
    if without == "401":  # the agents' HTTP servers: refused, and served with the token where the path exists
        return "token" if with_token == "200" else "refused"
    if without.startswith("2"):
        return f"HTTP {without} without the token"
    # A port none of these requests is served on (with the cluster extra: the dashboard agent's other servers,
    # the metrics exporter); it is on loopback like every other (the test above)
    return "no probe served"


LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.\d+\.\d+\.\d+\]):\d+$")


def node_ip() -> str:
    """This machine's address on its default route (what another machine would connect to)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: UDP connect only picks the route
        return s.getsockname()[0]


def connectable(address: str) -> str:
    """``ss``'s local address as curl can reach it: a wildcard by this machine's address, IPv4-mapped
    loopback by 127.0.0.1."""
    address = re.sub(r"^\[::ffff:(127\.\d+\.\d+\.\d+)\](?=:)", r"\1", address)
    return re.sub(r"^(\*|0\.0\.0\.0|\[::\])(?=:)", node_ip(), address)


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
    token = secrets.token_hex(32)  # this sweep's own Ray token (the user's ~/.ray/auth_token stays untouched)
    ray_tmp = tempfile.mkdtemp(prefix="vr", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "WANDB_API_KEY": key, "RAY_TMPDIR": ray_tmp,
           "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true", "RAY_AUTH_TOKEN": token}  # fmt: skip
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):  # Ray's default, not the caller's choice
        env.pop(name, None)
    driver = subprocess.Popen([str(VAERAY), "sweep", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=tmp_path, start_new_session=True)  # fmt: skip
    sockets: list[tuple[str, int]] = []
    probes: dict[str, str] = {}
    try:
        deadline = time.time() + 180
        while time.time() < deadline and driver.poll() is None:
            if list(Path(tmp_path / "results").rglob("checkpoint_*")):
                sockets = listening(session_pids(driver.pid)) if shutil.which("ss") else []
                if shutil.which("curl"):  # while the trial still runs (it takes ~5 s more)
                    for address, _ in sockets:
                        probes[address] = guarded(connectable(address), token)
                break
            time.sleep(0.1)
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err.decode()[-3000:]
        files = [f for root in (tmp_path, Path(ray_tmp)) for f in root.rglob("*") if f.is_file() and not f.is_symlink()]
        found, token_found = [], []
        for f in files:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            if key.encode() in data:
                found.append(str(f))
            if token.encode() in data:
                token_found.append(str(f))
        yield key, sockets, files, found, probes, token_found
    finally:
        if driver.poll() is None:
            driver.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_planted_wandb_key_reaches_no_file(sweep_run):
    key, _, files, found, _, _ = sweep_run
    assert len(files) > 50  # results, checkpoints, W&B offline runs and Ray's session logs were all searched
    assert not found, f"the W&B key was written to {found[:5]}"


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_local_sweep_opens_no_port_beyond_loopback(sweep_run):
    """Ray's single-machine mode (vaeray.sweep.ray.local.loopback_only): without it Ray 2.60 started the GCS,
    the raylet and the workers on the machine's routable address, listening on all interfaces."""
    _, sockets, _, _, _, _ = sweep_run
    assert len(sockets) >= 4, f"too few listening sockets of the sweep's Ray were seen: {sockets}"
    public = [s for s in sockets if not LOOPBACK.match(s[0])]
    assert not public, f"ports open beyond loopback: {public}"


@pytest.mark.skipif(shutil.which("ss") is None or shutil.which("curl") is None, reason="needs ss and curl")
def test_every_port_of_the_local_ray_refuses_a_client_without_the_token(sweep_run):
    """Ray 2.60 turns token authentication on for a new local cluster (``ray.init`` without an address, unless
    RAY_AUTH_MODE says otherwise; this test would see a Ray that stopped doing so): every port the local Ray
    opens (core workers, raylet, GCS, runtime-env agent) refuses whoever lacks the token, and the token
    reaches no file (it came from RAY_AUTH_TOKEN)."""
    _, sockets, _, _, probes, token_found = sweep_run
    assert probes, f"no port was probed: {sockets}"
    print(f"\nports probed: {probes}")
    assert all(v in ("token", "refused", "closed", "no probe served") for v in probes.values()), probes
    assert list(probes.values()).count("token") >= 3  # workers, raylet, GCS, agent: each accepts the token
    assert not token_found, f"the Ray token was written to {token_found[:5]}"



def test_single_machine_mode_is_undone_when_the_local_ray_stops(monkeypatch):
    """loopback_only() sets Ray's single-machine mode for the driver (the constant) and for Ray's processes (the
    environment); its undo puts both back, so a later ray.init of a cluster in the same process advertises the
    machine's address again."""
    import ray
    from ray._private import ray_constants, services

    from vaeray.sweep.ray.local import SINGLE_MACHINE_ENV, loopback_only

    for before in (None, "1"):
        if before is None:
            monkeypatch.delenv(SINGLE_MACHINE_ENV, raising=False)
        else:
            monkeypatch.setenv(SINGLE_MACHINE_ENV, before)
        flag = ray_constants.ENABLE_RAY_CLUSTER
        undo = loopback_only()
        assert os.environ[SINGLE_MACHINE_ENV] == "0" and ray_constants.ENABLE_RAY_CLUSTER is False
        if not ray.is_initialized():  # with no node yet, the address Ray would start a node on
            assert services.get_node_ip_address() == "127.0.0.1"
        undo()
        assert os.environ.get(SINGLE_MACHINE_ENV) == before and ray_constants.ENABLE_RAY_CLUSTER is flag
