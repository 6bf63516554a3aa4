"""The Ray layer's share: a one-trial ``vaeray sweep`` against ``vaeray train`` of the same run, and many short
trials.

* Fixed cost and per-step ratio: the same β-TCVAE run (Burgess net, batch 64, reports every 5 steps, ten times
  the default frequency, so reporting costs are exaggerated rather than hidden) at two step counts, through
  ``vaeray train`` and through a one-trial ``vaeray sweep`` with as many CPUs as the machine has (so the trial
  takes as many torch threads). A line through the two wall times gives each path's fixed cost (intercept)
  and seconds per step (slope); the sweep's fixed cost minus train's is Ray's, the slope ratio is the Ray
  layer's per-step share. Both with vaeray's Ray settings (vaeray/sweep/ray/local.py) and with Ray's own
  defaults (``VAERAY_RAY_DEFAULTS=1``: workers at nice 15, prestarted workers).
* Many short trials: ``--trials`` seeds of a 5-step run, one CPU each, wall time per trial.

    python benchmarks/bench_ray.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VAERAY = [sys.executable, "-c", "from vaeray.cli import run; run()"]
RUN = {
    "seed": 0,
    "model": {"name": "beta_tcvae", "net": "burgess", "latent_dim": 10},
    "data": {"name": "dsprites"},
    "train": {"batch_size": 64, "lr": 5e-4, "log_every": 5, "checkpoint_every": 100000},
}


def sweep_file(tmp: Path, steps: int, seeds: list[int], cpus: int, name: str) -> Path:
    doc = {k: v for k, v in RUN.items() if k != "seed"}  # a sweep lists its seeds in sweep.seeds
    doc["train"] = {**RUN["train"], "steps": steps}
    doc["sweep"] = {"name": name, "search": "grid", "seeds": seeds, "metric": "loss", "mode": "min",
                    "scheduler": "none", "resources": {"cpu": cpus}, "storage": str(tmp / "results")}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_file(tmp: Path, steps: int) -> Path:
    path = tmp / f"run{steps}.yaml"
    path.write_text(yaml.safe_dump({**RUN, "train": {**RUN["train"], "steps": steps}}))
    return path


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - t


def line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(intercept s, slope s/step) of the least-squares line through (steps, wall) points."""
    n = len(points)
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, nargs=2, default=None, help="the two step counts (default 10 60; quick 5 30)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--trials", type=int, default=None, help="short trials in the many-trials sweep (default 8; quick 4)")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    steps = args.steps or ([5, 30] if args.quick else [10, 60])
    rounds = args.rounds or (1 if args.quick else 3)
    trials = args.trials or (4 if args.quick else 8)
    cpus = os.cpu_count() or 1
    base_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("VAERAY_RAY_DEFAULTS", "RAY_ADDRESS"):
        base_env.pop(k, None)
    env_ray_defaults = dict(base_env, VAERAY_RAY_DEFAULTS="1")
    from vaeray.data.dsprites import DSprites

    DSprites(data_dir=args.data_dir)
    load0 = os.getloadavg()
    pts: dict[str, list[tuple[int, float]]] = {}
    many: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for r in range(rounds):
            for n in steps:
                runs = {
                    "vaeray train": VAERAY + ["train", str(run_file(tmp, n)), "--data-dir", args.data_dir,
                                              "--run-dir", str(tmp / f"train-{r}-{n}"), "--no-progress"],
                    "sweep (vaeray's Ray settings)": VAERAY + ["sweep", str(sweep_file(tmp, n, [0], cpus, f"one-{r}-{n}")),
                                                               "--data-dir", args.data_dir],
                    "sweep (Ray's defaults)": VAERAY + ["sweep", str(sweep_file(tmp, n, [0], cpus, f"def-{r}-{n}")),
                                                        "--data-dir", args.data_dir],
                }
                for name, cmd in runs.items():
                    w = wall(cmd, env_ray_defaults if "defaults" in name else base_env)
                    pts.setdefault(name, []).append((n, w))
                    print(f"round {r + 1}: {name:32s} {n:4d} steps: {w:6.1f} s", file=sys.stderr, flush=True)
            for name, env in (("vaeray's Ray settings", base_env), ("Ray's defaults", env_ray_defaults)):
                f = sweep_file(tmp, 5, list(range(trials)), 1, f"many-{r}-{'defaults' if env is env_ray_defaults else 'tuned'}")
                w = wall(VAERAY + ["sweep", str(f), "--data-dir", args.data_dir], env)
                many.setdefault(name, []).append(w)
                print(f"round {r + 1}: {trials} short trials ({name}): {w:6.1f} s", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {cpus} CPUs; load average {load0[0]:.1f} before, {load1[0]:.1f} after; "
          f"{rounds} round(s); steps {steps}\n")
    print("| path | fixed cost s (intercept) | s / step (slope) | per-step ratio vs train | fixed cost over train s |")
    print("|---|---|---|---|---|")
    b0, s0 = line(pts["vaeray train"])
    for name, p in pts.items():
        b, s = line(p)
        print(f"| {name} | {b:.1f} | {s:.3f} | {s / s0:.2f} | {b - b0:+.1f} |")
    print(f"\n| many short trials ({trials} × 5 steps, 1 CPU each) | wall s | s per trial |\n|---|---|---|")
    for name, ws in many.items():
        w = sorted(ws)[len(ws) // 2]
        print(f"| {name} | {w:.1f} | {w / trials:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"points": pts, "many": many}, indent=1))


if __name__ == "__main__":
    main()
