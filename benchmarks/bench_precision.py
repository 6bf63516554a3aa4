"""What bf16 autocast does to training, next to what changing the seed does: the β-TCVAE run of the throughput
benchmark (Burgess net, z = 10, batch 64, dSprites) for ``--steps`` steps in float32 and with
``train.autocast: bf16``, for two seeds, one torch thread; the mean loss of every 50-step window. Not a timing:
it prints the relative difference bf16 − float32 for each seed and float32 seed 1 − seed 0.

    python benchmarks/bench_precision.py --quick      # 300 steps
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def losses(seed: int, autocast: str, steps: int, data_dir: str) -> list[dict[str, float]]:
    from vaeray.train import fit

    cfg = {"seed": seed, "model": {"name": "beta_tcvae", "net": "burgess", "latent_dim": 10}, "data": {"name": "dsprites"},
           "train": {"batch_size": 64, "lr": 5e-4, "steps": steps, "log_every": 50, "checkpoint_every": 10**9,
                     "device": "cpu", "autocast": autocast}}  # fmt: skip
    rows: list[dict[str, float]] = []
    fit(cfg, report=lambda m, s: rows.append(dict(m)), data_dir=data_dir)
    return rows


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="default 1000; quick 300")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    steps = args.steps or (300 if args.quick else 1000)
    torch.set_num_threads(1)
    runs = {(a, s): losses(s, a, steps, args.data_dir) for s in (0, 1) for a in ("off", "bf16")}

    def rel(a: list[dict], b: list[dict]) -> str:
        return " | ".join(f"{100 * (y['loss'] - x['loss']) / abs(x['loss']):+.2f}%" for x, y in zip(a, b))

    steps_row = [r["step"] for r in runs[("off", 0)]]
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; torch {torch.__version__}; bf16 native: "
          f"{torch.cpu.get_capabilities().get('avx512_bf16', False) if hasattr(torch.cpu, 'get_capabilities') else '?'}\n")
    print("| mean loss of the 50 steps up to | " + " | ".join(map(str, steps_row)) + " |")
    print("|---|" + "---|" * len(steps_row))
    for s in (0, 1):
        print(f"| seed {s}: float32 | " + " | ".join(f"{r['loss']:.1f}" for r in runs[("off", s)]) + " |")
        print(f"| seed {s}: bf16 − float32 | {rel(runs[('off', s)], runs[('bf16', s)])} |")
    print(f"| float32: seed 1 − seed 0 | {rel(runs[('off', 0)], runs[('off', 1)])} |")


if __name__ == "__main__":
    main()
