"""MIG over the whole dSprites grid (737,280 codes): how long vaeray's histogram MI takes, and dlib's way.

By default the codes are random (10 per image, float32) and "encoding" is a gather from a code table laid out
on the dSprites factor grid (3 × 6 × 40 × 32 × 32), so the numbers isolate the metric from any network. With
``--dsprites`` the real dataset class (procedural source, built on first use) is encoded by a randomly
initialised Burgess encoder instead: the end-to-end cost of a whole-grid MIG after training.

Timings (median of ``--repeat`` runs) are printed as a Markdown table with the machine they ran on:

* ``mig`` end to end with ``num_train=None`` and its parts (encode, discretise, MI matrix);
* the same MI matrix with ``sklearn.metrics.mutual_info_score`` per (code, factor) pair, as disentanglement_lib,
  and the largest difference between the two (float rounding);
* ``mig`` with dlib's default ``num_train=10000``.

    python benchmarks/bench_metrics.py                  # CPU, then CUDA if available
    python benchmarks/bench_metrics.py --dsprites --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import sklearn
import torch
from sklearn.metrics import mutual_info_score

from vaeray.data.base import GroundTruthDataset
from vaeray.metrics.disentanglement import discrete_entropy, discretize, grid_codes, mutual_info_matrix
from vaeray.metrics.mig import mig

DSPRITES_SIZES = (3, 6, 40, 32, 32)


class CodeTable(GroundTruthDataset):
    """A dSprites-shaped grid whose "observation" of item i is row i of a fixed random code table."""

    factor_sizes = DSPRITES_SIZES
    factor_names = ("shape", "scale", "orientation", "posX", "posY")

    def __init__(self, num_codes: int, device: str, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(int(np.prod(DSPRITES_SIZES)), num_codes, generator=g).to(device)
        self.observation_shape = (num_codes,)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return self.table.shape[0]

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        return self.table[index.to(self.device)]


def timed(fn: Callable[[], object], repeat: int) -> tuple[tuple[float, float], object]:
    """Median wall-clock and process CPU seconds (CPU time is robust to other jobs sharing the cores)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}"
    )


def bench(device: str, args: argparse.Namespace) -> list[tuple[str, tuple[float, float]]]:
    if args.dsprites:
        from vaeray.data.dsprites import DSprites
        from vaeray.nets.burgess import BurgessEncoder

        dataset = DSprites(source="procedural", device=device)
        encoder = BurgessEncoder((1, 64, 64), args.codes).to(device).eval()
        represent = encoder
    else:
        dataset = CodeTable(args.codes, device)
        represent = lambda x: x  # noqa: E731  (the observation is the code)
    rows = []
    t, _ = timed(lambda: mig(dataset, represent, num_train=None, batch_size=args.batch_size), args.repeat)
    rows.append(("mig, whole grid (num_train=None), end to end", t))
    t, (codes, factors) = timed(lambda: grid_codes(dataset, represent, args.batch_size), args.repeat)
    rows.append(("  encode the grid", t))
    t, discrete = timed(lambda: discretize(codes, 20), args.repeat)
    rows.append(("  discretise (20 bins per code)", t))
    t, mi = timed(lambda: (mutual_info_matrix(discrete, factors), discrete_entropy(factors)), args.repeat)
    rows.append(("  MI matrix + factor entropies (vectorised)", t))
    if not args.skip_sklearn:

        def per_pair() -> np.ndarray:
            return np.array([[mutual_info_score(f, z) for f in factors.T] for z in discrete.T])

        t, reference = timed(per_pair, 1)
        rows.append(("  MI matrix with sklearn per pair (dlib's way)", t))
        print(f"[{device}] max |vaeray − sklearn| MI: {np.abs(mi[0] - reference).max():.2e} nats")
    t, _ = timed(lambda: mig(dataset, represent, num_train=10000, batch_size=args.batch_size), args.repeat)
    rows.append(("mig, num_train=10000 (dlib default), end to end", t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu, cuda (default: cpu, and cuda when available)")
    parser.add_argument("--codes", type=int, default=10, help="code dimensions (dlib's models: 10)")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsprites", action="store_true", help="real dSprites grid + random Burgess encoder")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"machine: {machine()}")
    for device in devices:
        label = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
        rows = bench(device, args)
        print(f"\n| 737,280 codes × {args.codes}, device {label} | wall s | CPU s |\n|---|---|---|")
        for name, (wall, cpu) in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
