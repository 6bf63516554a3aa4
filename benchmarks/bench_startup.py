"""Start-up: how long the commands a researcher types take before they do anything.

Each command runs in a fresh process, interleaved over rounds; wall and CPU seconds (the child's user + system
time, which background load inflates less than wall time) are reported as medians, with the target of
issue 15 beside each:

* ``vaeray --help`` (≤ 1 s), ``vaeray list``, config validation of ``configs/dsprites_vae.yaml``,
* ``vaeray sweep sweeps/betatcvae_dsprites.yaml --dry-run`` (≤ 3 s),
* time to the first training step of ``vaeray train`` with the dSprites cache built (≤ 5 s): from launching
  the process to the end of step 1, stamped by the first report (``train.log_every: 1``).

    python benchmarks/bench_startup.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAERAY = [sys.executable, "-c", "from vaeray.cli import run; run()"]

FIRST_STEP = r"""
import sys, time
import vaeray.train as train
fit = train.fit
def stamped(cfg, report=None, **kw):
    def first(metrics, state):
        if not getattr(first, "done", False):
            first.done = True
            print("FIRST_STEP_AT", time.time(), file=sys.stderr, flush=True)
        if report:
            report(metrics, state)
    return fit(cfg, report=first, **kw)
train.fit = stamped
from vaeray.cli import run
sys.argv = ["vaeray"] + sys.argv[1:]
run()
"""


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stderr) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.time()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stderr


def first_step(env: dict, data_dir: str, run_dir: str) -> tuple[float, float]:
    cmd = [sys.executable, "-c", FIRST_STEP, "train", "configs/dsprites_vae.yaml", "--data-dir", data_dir,
           "--run-dir", run_dir, "--no-progress", "--set", "train.steps=1", "--set", "train.log_every=1",
           "--set", "eval.metrics={}"]
    t = time.time()
    wall, cpu, err = timed(cmd, env)
    stamp = next(float(line.split()[1]) for line in err.splitlines() if line.startswith("FIRST_STEP_AT"))
    return stamp - t, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    from vaeray.data.dsprites import DSprites

    DSprites(data_dir=args.data_dir)  # the cache is built once per machine; the timings assume it
    commands = {
        "vaeray --help": (VAERAY + ["--help"], 1.0),
        "vaeray list": (VAERAY + ["list"], None),
        "validate configs/dsprites_vae.yaml": (
            [sys.executable, "-c", "from vaeray import config; config.validate(config.load('configs/dsprites_vae.yaml'))"], None),
        "vaeray sweep sweeps/betatcvae_dsprites.yaml --dry-run": (
            VAERAY + ["sweep", "sweeps/betatcvae_dsprites.yaml", "--dry-run"], 3.0),
        # the same with local storage: without a network the line above includes pyarrow's S3 bucket-region
        # lookup of the ledger, which waits for DNS to time out
        "  the same with --storage on local disk": (
            VAERAY + ["sweep", "sweeps/betatcvae_dsprites.yaml", "--dry-run", "--storage", str(Path(tempfile.gettempdir()) / "vaeray-bench-st")], 3.0),
        "python -c 'import torch' (the floor)": ([sys.executable, "-c", "import torch"], None),
    }
    res: dict[str, list[tuple[float, float]]] = {}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (cmd, _) in commands.items():
                wall, cpu, _ = timed(cmd, env)
                res.setdefault(name, []).append((wall, cpu))
            res.setdefault("vaeray train: time to first step", []).append(
                first_step(env, args.data_dir, str(Path(tmp) / f"run{r}")))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    targets = {**{k: t for k, (_, t) in commands.items()}, "vaeray train: time to first step": 5.0}
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs; load average {load0[0]:.1f} before, "
          f"{load1[0]:.1f} after; median of {rounds} rounds\n")
    print("| command | wall s | CPU s | target (wall) |")
    print("|---|---|---|---|")
    for name, xs in res.items():
        t = targets.get(name)
        print(f"| {name} | {med([w for w, _ in xs]):.2f} | {med([c for _, c in xs]):.2f} | {f'≤ {t:g} s' if t else ''} |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
