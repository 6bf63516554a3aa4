"""Memory: host memory per node and per trial, device memory per trial.

Runs ``--trials`` concurrent training processes (vaeray's ``fit``, β-TCVAE Burgess, dSprites) and the
reference-style baseline, and prints each one's peak RSS and its proportional share (PSS) at the end: the
packed dSprites cache is one memory map shared by every trial on a node, so it counts once in the sum of PSS,
which is what the node holds. On a GPU also each trial's peak device memory (``torch.cuda.max_memory_allocated``).

    python benchmarks/bench_memory.py --quick
    python benchmarks/bench_memory.py --device cuda --trials 1 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run(variant: str, k: int, batch: int, steps: int, device: str, data_dir: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, str(HERE / "bench_train.py"), "--child", variant, str(batch), str(steps), "2",
           "1", device, data_dir]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(k)]
    outs = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(err[-3000:])
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    steps = 4 if args.quick else 20
    sys.path.insert(0, str(HERE))
    from bench_train import baseline_images

    baseline_images(args.data_dir)
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; device {args.device}; load average {os.getloadavg()[0]:.1f}\n")
    print("| variant | batch | trials | peak RSS MiB per trial | PSS MiB per trial | node total (Σ PSS) MiB | peak device MiB |")
    print("|---|---|---|---|---|---|---|")
    for b in args.batch:
        for variant in ("ref", "vaeray"):
            for k in args.trials:
                outs = run(variant, k, b, steps, args.device, args.data_dir)
                rss = max(o["host_peak_rss_mib"] for o in outs)
                pss = [o.get("host_pss_mib", float("nan")) for o in outs]
                dev = max(o.get("device_peak_mib", float("nan")) for o in outs)
                print(f"| {variant} | {b} | {k} | {rss:.0f} | {max(pss):.0f} | {sum(pss):.0f} | {dev:.0f} |", flush=True)


if __name__ == "__main__":
    main()
