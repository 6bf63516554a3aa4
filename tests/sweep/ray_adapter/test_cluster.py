"""A multi-node local cluster (ray.cluster_utils.Cluster; GPUs are logical, so trials fall back to the CPU):
fractional GPUs pack several trials per GPU of a multi-GPU node, trials spread over nodes, and a trial survives
the loss of its node by resuming from its last checkpoint elsewhere."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from vaeray.sweep import spec as sw
from vaeray.sweep.ray import runner as vt
from vaeray.sweep.ray.local import cluster_view
from vaeray.sweep.dryrun import dry_run_report


def reports(root: Path, experiment: str, trial: str) -> list[dict]:
    f = root / "experiments" / experiment / trial / "result.json"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []


def overlapping(intervals: list[tuple[float, float]]) -> bool:
    """Whether all intervals share a common instant."""
    return max(a for a, _ in intervals) < min(b for _, b in intervals)


@pytest.mark.slow
def test_gpu_packing_node_spread_and_surviving_a_lost_node(ray_cluster, make_sweep):
    import ray

    gpu_node = ray_cluster.add_node(num_cpus=1, num_gpus=2)  # a 2-GPU node
    cpu_node = ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    ray.init(address=ray_cluster.address, log_to_driver=False)
    view = cluster_view(ray_cluster.address)  # what `--dry-run --address` compares trials with
    assert sorted(view.nodes) == [(0.0, 0.0), (1.0, 0.0), (1.0, 2.0)]

    # 1. gpu: 0.5 packs four trials onto the two GPUs of one node, two per GPU, all at once
    packed = sw.load(make_sweep(
        "packed",
        model={"name": "sweeptest_vae", "sleep_s": 0.05, "latent_dim": {"grid": [2, 3]}},
        train={"steps": 40},
        sweep={"resources": {"cpu": 0.25, "gpu": 0.5}},
    ))
    vt.run_sweep(packed, verbose=0)
    assert "fits: 4 trial(s) at a time" in dry_run_report(packed, cluster=view)
    root = Path(packed.root)
    df = pd.read_parquet(root / "results.parquet")
    assert len(df) == 4 and set(df["status"]) == {"completed"}
    rows = {t.trial_id: reports(root, "exp-001", t.trial_id) for t in packed.trials()}
    gpu_ids = [r[-1]["gpu_ids"] for r in rows.values()]
    assert sorted(gpu_ids) == ["0", "0", "1", "1"]  # Ray's accounting: two trials on each GPU
    assert {r[-1]["node_id"] for r in rows.values()} == {gpu_node.node_id}
    assert set(df["device"]) == {"cpu"}  # GPUs assigned but no CUDA here: the trainable falls back, once warned
    spans = [(r[0]["timestamp"] - r[0]["time_total_s"], r[-1]["timestamp"]) for r in rows.values()]
    assert overlapping(spans), spans

    # 2. cpu: 1 puts one trial on each node; killing a node mid-trial moves its trial to the other node,
    #    where it continues from its last checkpoint
    moved = sw.load(make_sweep(
        "moved",
        model={"name": "sweeptest_vae", "sleep_s": 0.03},
        train={"steps": 200, "log_every": 10, "checkpoint_every": 20},
        sweep={"resources": {"cpu": 1}, "max_failures": 2},
    ))
    root = Path(moved.root)
    done: dict = {}
    runner = threading.Thread(target=lambda: done.setdefault("summary", vt.run_sweep(moved, verbose=0)), daemon=True)
    runner.start()
    victim = None
    deadline = time.time() + 180
    while victim is None and time.time() < deadline:
        for t in moved.trials():
            r = reports(root, "exp-001", t.trial_id)
            ckpts = list((root / "experiments" / "exp-001" / t.trial_id).glob("checkpoint_*"))
            if r and ckpts and 40 <= r[-1]["step"] < 150:
                victim = (t.trial_id, r[-1]["node_id"])
                break
        time.sleep(0.05)
    assert victim is not None, "no trial got far enough to checkpoint"
    while time.time() < deadline and not all(reports(root, "exp-001", t.trial_id) for t in moved.trials()):
        time.sleep(0.05)  # the other trial's first report may reach storage a moment later
    first_nodes = {reports(root, "exp-001", t.trial_id)[0]["node_id"] for t in moved.trials()}
    assert first_nodes == {gpu_node.node_id, cpu_node.node_id}  # one trial per node
    node = gpu_node if victim[1] == gpu_node.node_id else cpu_node
    ray_cluster.remove_node(node, allow_graceful=False)  # a spot reclaim, without notice
    runner.join(timeout=240)
    assert not runner.is_alive() and "summary" in done
    df = pd.read_parquet(root / "results.parquet").set_index("trial_id")
    assert set(df["status"]) == {"completed"} and set(df["step"]) == {200.0}
    survivor = reports(root, "exp-001", victim[0])
    assert survivor[-1]["node_id"] != victim[1]  # finished elsewhere
    assert df.loc[victim[0], "resumed_from"] >= 20  # ... from a checkpoint, not from scratch
    steps_after = [r["step"] for r in survivor if r["node_id"] != victim[1]]
    assert steps_after[0] > df.loc[victim[0], "resumed_from"]
