"""Trial packing on one GPU: aggregate training throughput of 1, 2, 4, 8 trials sharing it.

Each trial is its own process running vaeray's ``fit`` (β-TCVAE, Burgess net, device-resident packed
dSprites), as Ray runs trials with fractional ``gpu`` resources (``resources: {gpu: 0.25}`` packs four);
the processes start together and each reports its images/s over the same number of timed steps. Target: 8
packed trials ≥ 4× one trial's aggregate throughput. Also prints each trial's peak device memory.

    python benchmarks/bench_packing.py --batch 64 --trials 1 2 4 8     # needs a CUDA device
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench_packing needs a CUDA device (pass --device cpu to try the script on a CPU)")
    steps = args.steps or (200 if args.quick else 1000)
    from vaeray.data.dsprites import DSprites

    DSprites(data_dir=args.data_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cpus = os.cpu_count() or 1
    label = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {label}; torch {torch.__version__}; batch {args.batch}; {steps} timed steps\n")
    print("| trials on one device | aggregate img/s | per trial img/s | vs 1 trial | peak device MiB per trial |")
    print("|---|---|---|---|---|")
    one = None
    for k in args.trials:
        threads = max(1, cpus // k)
        cmd = [sys.executable, str(HERE / "bench_train.py"), "--child", "vaeray", str(args.batch), str(steps), "20",
               str(threads), args.device, args.data_dir]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(k)]
        outs = []
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(err[-3000:])
            outs.append(json.loads(out.strip().splitlines()[-1]))
        agg = sum(o["img_per_s"] for o in outs)
        one = one or agg
        mem = max(o.get("device_peak_mib", float("nan")) for o in outs)
        print(f"| {k} | {agg:.0f} | {agg / k:.0f} | {agg / one:.2f} | {mem:.0f} |", flush=True)


if __name__ == "__main__":
    main()
