"""Ray's share of training time: the same run's steady-state CPU time per image inside a one-trial Ray sweep and
under ``vaeray train``, at the default report interval, in interleaved rounds.

Both paths run the same β-TCVAE run (Burgess net, batch 64, ``train.log_every`` at its default, 50) with the
same number of torch threads (``--threads``; the trial asks for that many CPUs, ``vaeray train`` gets it through
``OMP_NUM_THREADS``). ``benchmarks/ray_probe.py`` logs the process's CPU time and wall time at every report
(in the trial through ``sweep.imports``, which the trainable imports in its worker; for ``vaeray train`` by
wrapping ``RunDir.report``). The steady state is from the second report to the last but one (the first window
holds the warm-up and the last one the final checkpoint), so each window includes one ordinary report: what
Ray costs per step at the default interval, its worker's own threads included (the process CPU time counts
every thread). CPU time per image is insensitive to the load of a shared machine; the wall ratio is printed too.
It also records ``torch.get_num_threads()`` in the trial worker, for a trial of ``--threads`` CPUs.

    python benchmarks/bench_ray_share.py --quick
    python benchmarks/bench_ray_share.py --steps 500 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN = {
    "model": {"name": "beta_tcvae", "net": "burgess", "latent_dim": 10},
    "data": {"name": "dsprites"},
    "train": {"batch_size": 64, "lr": 5e-4, "device": "cpu"},
}
TRAIN = "import sys; sys.path.insert(0, 'benchmarks'); import ray_probe; ray_probe.patch_train(); from vaeray.cli import run; run()"
SWEEP = "from vaeray.cli import run; run()"


def steady(log: Path, batch: int) -> dict[str, float]:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows = [r for r in rows if r.get("step") is not None]
    if len(rows) < 4:
        raise SystemExit(f"{log}: only {len(rows)} reports; raise --steps")
    a, b = rows[1], rows[-2]
    images = (b["step"] - a["step"]) * batch
    return {"cpu_us": 1e6 * (b["cpu"] - a["cpu"]) / images, "tree_us": 1e6 * (b["tree_cpu"] - a["tree_cpu"]) / images,
            "wall_us": 1e6 * (b["wall"] - a["wall"]) / images,
            "threads": rows[-1]["threads"], "reports": len(rows)}


def run(cmd: list[str], env: dict) -> None:
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed:\n{out.stderr[-3000:]}")


def one(path: str, tmp: Path, tag: str, steps: int, threads: int, data_dir: str, base_env: dict) -> dict[str, float]:
    log = tmp / f"{tag}.jsonl"
    env = dict(base_env, VAERAY_PROBE_LOG=str(log))
    train = {**RUN["train"], "steps": steps}
    if path == "train":
        cfg = tmp / f"{tag}.yaml"
        cfg.write_text(yaml.safe_dump({**RUN, "seed": 0, "train": train}))
        env["OMP_NUM_THREADS"] = str(threads)
        run([sys.executable, "-c", TRAIN, "train", str(cfg), "--data-dir", data_dir, "--run-dir", str(tmp / tag),
             "--no-progress"], env)
    else:
        doc = {**RUN, "train": train, "sweep": {
            "name": tag, "search": "grid", "seeds": [0], "metric": "loss", "mode": "min", "scheduler": "none",
            "resources": {"cpu": threads}, "storage": str(tmp / "results"), "imports": ["ray_probe"]}}
        f = tmp / f"{tag}.yaml"
        f.write_text(yaml.safe_dump(doc))
        env["VAERAY_PROBE_TUNE"] = "1"
        env["PYTHONPATH"] = str(ROOT / "benchmarks") + os.pathsep + env["PYTHONPATH"]
        run([sys.executable, "-c", SWEEP, "sweep", str(f), "--data-dir", data_dir], env)
    return steady(log, RUN["train"]["batch_size"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default 500; quick 250)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of both paths = CPUs of the trial")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    steps = args.steps or (250 if args.quick else 500)
    rounds = args.rounds or (2 if args.quick else 3)
    base_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("VAERAY_RAY_DEFAULTS", "RAY_ADDRESS", "OMP_NUM_THREADS", "VAERAY_NO_MALLOPT"):
        base_env.pop(k, None)
    from vaeray.data.dsprites import DSprites

    DSprites(data_dir=args.data_dir)  # the packed cache, built once
    loads = [os.getloadavg()[0]]
    res: dict[str, list[dict]] = {"train": [], "sweep": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for r in range(rounds):
            order = ("train", "sweep") if r % 2 == 0 else ("sweep", "train")  # neither always goes first
            for path in order:
                m = one(path, tmp, f"{path}-{r}", steps, args.threads, args.data_dir, base_env)
                res[path].append(m)
                loads.append(os.getloadavg()[0])
                print(f"round {r + 1} {path:6s}: {m['cpu_us']:7.0f} CPU µs/img (whole job {m['tree_us']:7.0f}) "
                      f"{m['wall_us']:7.0f} wall µs/img "
                      f"threads {m['threads']} load {loads[-1]:.1f}", file=sys.stderr, flush=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs; load average {min(loads):.1f}–{max(loads):.1f}; "
          f"{rounds} round(s) × {steps} steps; batch 64; log_every 50 (default); {args.threads} thread(s)\n")
    print("| path | CPU µs / image, training process (per round) | CPU µs / image, whole job | wall µs / image | torch threads |")
    print("|---|---|---|---|---|")
    for path, ms in res.items():
        cpus = ", ".join(f"{m['cpu_us']:.0f}" for m in ms)
        trees = ", ".join(f"{m['tree_us']:.0f}" for m in ms)
        walls = ", ".join(f"{m['wall_us']:.0f}" for m in ms)
        print(f"| {path} | {cpus} | {trees} | {walls} | {ms[-1]['threads']} |")
    cpu = [s["cpu_us"] / t["cpu_us"] for s, t in zip(res["sweep"], res["train"])]
    tree = [s["tree_us"] / t["tree_us"] for s, t in zip(res["sweep"], res["train"])]
    wall = [s["wall_us"] / t["wall_us"] for s, t in zip(res["sweep"], res["train"])]

    def pct(xs: list[float]) -> str:
        return f"{', '.join(f'{100 * (x - 1):+.1f}%' for x in xs)} (median {100 * (statistics.median(xs) - 1):+.1f}%)"

    print(f"\nRay's share (sweep / train − 1) per round: training process CPU {pct(cpu)}; whole job CPU {pct(tree)}; "
          f"wall {pct(wall)}")


if __name__ == "__main__":
    main()
