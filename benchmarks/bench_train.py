"""Training throughput: vaeray's loop against a per-item DataLoader loop, with and without the allocator setting.

Each variant runs in its own subprocess (the allocator setting is process-wide and cannot be undone) on the
same synthetic dSprites-shaped data (binary 64×64), the same Burgess VAE and Adam, interleaved in rounds so
that background load affects every variant alike. Prints a Markdown table of images/s and ratios.

    python benchmarks/bench_train.py --batch 64 256 --steps 60 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, torch
from torch.utils.data import DataLoader, TensorDataset
variant, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
if variant.endswith("+malloc"):
    from vaeray.perf import tune_allocator
    assert tune_allocator()
from vaeray.data.base import Batch
from vaeray.models.gaussian import VAE
torch.manual_seed(0)
n = 20000
images = (torch.rand(n, 1, 64, 64) < 0.1).to(torch.uint8)
model = VAE((1, 64, 64), n)
opt = torch.optim.Adam(model.parameters(), lr=5e-4)
def step(x):
    terms = model.loss(Batch(x=x), 0)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
if variant.startswith("loader"):
    # the reference pattern: per-item Dataset + DataLoader(shuffle=True), float conversion per item
    ds = TensorDataset(images)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True,
                        collate_fn=lambda items: torch.stack([i[0].float() for i in items]))
    it = iter(loader)
    def next_batch():
        global it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)
else:
    g = torch.Generator().manual_seed(0)
    def next_batch():
        return images[torch.randint(n, (batch,), generator=g)].float()
for _ in range(5):
    step(next_batch())
t = time.perf_counter()
for _ in range(steps):
    step(next_batch())
print(json.dumps({"img_per_s": steps * batch / (time.perf_counter() - t)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    variants = ["loader", "index", "loader+malloc", "index+malloc"]
    results: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for b in args.batch:
            for v in variants:
                steps = max(10, args.steps * 64 // b)
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, v, str(b), str(steps), str(args.threads)],
                    capture_output=True, text=True, check=True,
                )
                results.setdefault((v, b), []).append(json.loads(out.stdout.strip().splitlines()[-1])["img_per_s"])
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, python {platform.python_version()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; median of {args.rounds} interleaved rounds\n")
    print("| batch | per-item DataLoader | index batches | ratio | DataLoader + allocator | index + allocator | ratio vs DataLoader |")
    print("|---|---|---|---|---|---|---|")
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    for b in args.batch:
        r = {v: med(results[(v, b)]) for v in variants}
        print(
            f"| {b} | {r['loader']:.0f} | {r['index']:.0f} | {r['index'] / r['loader']:.2f} | "
            f"{r['loader+malloc']:.0f} | {r['index+malloc']:.0f} | {r['index+malloc'] / r['loader']:.2f} |"
        )


if __name__ == "__main__":
    main()
