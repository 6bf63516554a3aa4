"""The cluster path on one machine (issue 14, item 8): a sweep on an autoscaling cluster that starts with no
worker, gets GPU-typed workers from the autoscaler for its waiting trials, loses a worker mid-trial and
finishes every trial exactly once, the lost one resumed from storage on another node.

The cluster is Ray's fake multi-node provider (``fake_autoscaling``): a head with no trial resources, like
``cluster.yaml``'s, whose autoscaler launches ``gpu_worker`` nodes (1 CPU, 1 logical GPU each, at most 3) as
local processes. It runs with Ray's token authentication (a fresh random token), so the test also shows
that a client without the token is refused. The sweep runs as ``vaeray sweep FILE --address HEAD`` (a
driver outside the cluster, as ``ray exec cluster.yaml "vaeray sweep ... --address auto"`` runs one on the
head) and, where ``ray[default]`` is installed (the ``cluster`` extra: the job server lives in Ray's dashboard,
which the test environment leaves out), as a Ray job: ``ray job submit -- vaeray sweep FILE``, whose driver
runs on the head and finds the cluster through the ``RAY_ADDRESS`` the job server sets.
Storage is a local directory, which every fake node shares, as S3 is shared on AWS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from vaeray.sweep import spec as sw

from ..conftest import VAERAY
from .fake_autoscaling import FakeAutoscalingCluster, node_ids_in, session_pids

STEPS = 160
GPU_WORKER = {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 3}
# A lost node is declared dead after ~3 missed 1 s health checks instead of Ray's default 5 x 3 s.
FAST_FAILURE_DETECTION = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


def reports(root: Path, trial: str) -> list[dict]:
    f = next((root / "experiments" / "exp-001").glob(f"{trial}*/result.json"), None)
    if f is None:
        return []
    out = []
    for line in f.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            pass
    return out


def kill_session(pid: int) -> None:
    for p in session_pids(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


RAY = Path(sys.executable).parent / "ray"
HAS_JOB_SERVER = importlib.util.find_spec("aiohttp") is not None and importlib.util.find_spec("opencensus") is not None


@pytest.mark.slow
@pytest.mark.parametrize("submit", [
    "driver",
    pytest.param("job", marks=pytest.mark.skipif(not HAS_JOB_SERVER, reason="ray job submit needs ray[default] (the cluster extra)")),
])  # fmt: skip
def test_autoscaled_sweep_survives_a_lost_worker(make_sweep, tmp_path, submit):
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    path = make_sweep(
        "autoscaled",
        model={"name": "sweeptest_vae", "sleep_s": 0.04},
        train={"steps": STEPS, "log_every": 10, "checkpoint_every": 20},
        sweep={"resources": {"cpu": 1, "gpu": 1}, "max_failures": 2},
    )
    spec = sw.load(path)
    root = Path(spec.root)
    trials = [t.trial_id for t in spec.trials()]
    assert len(trials) == 2

    t0 = time.time()
    with FakeAutoscalingCluster({"gpu_worker": GPU_WORKER}, env=auth, system_config=FAST_FAILURE_DETECTION,
                                dashboard=submit == "job") as cluster:  # fmt: skip
        assert cluster.worker_nodes() == {}  # the head alone: no worker, no trial resources

        # Token authentication: the cluster refuses a client without the token (an explicit address never
        # picks up a token by itself, so the client really has none).
        no_token = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        no_token["RAY_AUTH_MODE"] = "disabled"
        refused = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address='{cluster.gcs_address}', log_to_driver=False)"],
            capture_output=True, text=True, env=no_token, timeout=120,
        )  # fmt: skip
        assert refused.returncode != 0 and "Authentication token is missing or incorrect" in refused.stderr, refused.stderr[-2000:]
        # ... and `vaeray sweep --address` without it (or with another cluster's) says so in one line, at once
        for wrong in ({}, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}):
            t = time.time()
            sweep = subprocess.run([str(VAERAY), "sweep", str(path), "--address", cluster.gcs_address],
                                   capture_output=True, text=True, env={**no_token, **wrong}, timeout=120)  # fmt: skip
            assert sweep.returncode == 2 and sweep.stderr.strip().count("\n") == 0, sweep.stderr[-2000:]
            assert "refused this client's token" in sweep.stderr and time.time() - t < 20
        assert not (root / "ledger").exists()

        env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        if submit == "job":  # the job server runs the driver on the head; `submit` follows its logs to the end
            command = [str(RAY), "job", "submit", "--address", cluster.dashboard_address, "--submission-id",
                       "vaeray-sweep", "--", str(VAERAY), "sweep", str(path)]  # fmt: skip
        else:
            command = [str(VAERAY), "sweep", str(path), "--address", cluster.gcs_address]
        driver = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
        try:
            # Both trials wait for a GPU; the autoscaler adds gpu_worker nodes; once a trial has a checkpoint
            # in storage and is mid-run, its node is killed without notice (a spot reclaim).
            victim, workers = None, set()  # every worker node seen up
            deadline = time.time() + 150
            while victim is None and time.time() < deadline and driver.poll() is None:
                workers |= set(cluster.worker_nodes())
                for t in trials:
                    r = reports(root, t)
                    if r and 40 <= r[-1]["step"] <= STEPS - 60 and r[-1]["node_id"] in cluster.worker_nodes():
                        victim = (t, r[-1]["node_id"], r[-1]["step"])
                        break
                time.sleep(0.1)
            assert victim is not None, (driver.poll(), cluster.autoscaler_log()[-3000:])
            first_nodes = {reports(root, t)[0]["node_id"] for t in trials if reports(root, t)}
            cluster.kill_node(victim[1])
            killed_at = time.time()
            deadline = time.time() + 240
            while driver.poll() is None and time.time() < deadline:  # (its output is a few lines: no pipe fills)
                workers |= set(cluster.worker_nodes())
                time.sleep(0.2)
            out, err = driver.communicate(timeout=10)
        finally:
            kill_session(driver.pid)
        assert driver.returncode == 0, (out + err).decode()[-3000:]
        if submit == "job":
            status = subprocess.run([str(RAY), "job", "status", "--address", cluster.dashboard_address, "vaeray-sweep"],
                                    capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
            assert "Job 'vaeray-sweep' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr
            assert f"results: {root}/results.parquet (2 trials)" in out.decode()  # the job's own output, followed
        log = cluster.autoscaler_log()

    # The autoscaler launched every worker (nothing ran on the head, which has no resources anyway).
    assert "Adding" in log and "of type gpu_worker" in log
    launched = workers | (node_ids_in(log) - {"f" * 51 + "00000"})
    assert len(launched) >= 2 and first_nodes <= launched
    # Every trial finished exactly once, at the last step; the lost trial resumed from its checkpoint in
    # storage on another node (not from scratch, not on the dead node).
    df = pd.read_parquet(root / "results.parquet").set_index("trial_id")
    assert sorted(df.index) == sorted(trials) and set(df["status"]) == {"completed"} and set(df["step"]) == {STEPS}
    ledger = sorted(p.stem for p in (root / "ledger").glob("*.json"))
    assert ledger == sorted(trials)
    for t in trials:
        steps = [r["step"] for r in reports(root, t)]
        assert steps.count(STEPS) == 1, steps  # the final report exactly once
    survivor = reports(root, victim[0])
    after = [r for r in survivor if r["node_id"] != victim[1]]
    assert after and {r["node_id"] for r in after} <= launched
    assert 20 <= df.loc[victim[0], "resumed_from"] <= victim[2]
    assert after[0]["step"] > 20  # the first report on the new node continues from the checkpoint
    print(f"\nautoscaled sweep ({submit}): {len(launched)} workers launched, node killed at step {victim[2]}, resumed from "
          f"step {df.loc[victim[0], 'resumed_from']} on another node {after[0]['timestamp'] - killed_at:.1f} s later; "
          f"{time.time() - t0:.0f} s in all")
