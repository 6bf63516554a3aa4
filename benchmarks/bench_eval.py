"""Evaluation cost: MIG on the whole dSprites grid and the importance-sampled NLL on a full test set.

* MIG (``vaeray.metrics.mig``, ``num_train: null``): all 737,280 dSprites images encoded by a randomly
  initialised Burgess encoder (the cost does not depend on the weights), then the metric. Target on a GPU:
  ≤ 60 s. ``--quick`` encodes a random 50,000-image subset and also prints the whole-grid time that rate
  implies (labelled as extrapolated).
* NLL (``vaeray.metrics.likelihood.nll``): the MNIST test set (10,000 images, 32×32) under the Burgess
  ``vae`` with k importance samples per image (the literature's k = 5000). ``--quick`` uses 200 images and
  k = 100 and extrapolates to the full set at k = 5000 (labelled).

    python benchmarks/bench_eval.py --quick
    python benchmarks/bench_eval.py --device cuda          # the full numbers
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - w, time.process_time() - c, out


def mnist_dir(shared: Path, data_dir: Path) -> Path:
    """``data_dir/MNIST/raw`` holding the shared IDX files (copied once), as vaeray's MNIST expects."""
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in (shared / "mnist").glob("*.gz"):
        if not (raw / f.name).exists():
            shutil.copy(f, raw / f.name)
    return data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=4096, help="MIG encoding batch")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    ap.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    from vaeray.data.dsprites import DSprites
    from vaeray.data.mnist import MNIST
    from vaeray.metrics.likelihood import nll
    from vaeray.metrics.mig import mig
    from vaeray.models.gaussian import VAE
    from vaeray.nets.burgess import BurgessEncoder

    dev = torch.device(args.device)
    label = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    load0 = os.getloadavg()
    rows = []
    torch.manual_seed(0)
    data = DSprites(data_dir=args.data_dir, device=str(dev))
    encoder = BurgessEncoder((1, 64, 64), 10).to(dev).eval()
    represent = torch.no_grad()(encoder)
    n = 50_000 if args.quick else None
    w, c, out = timed(lambda: mig(data, represent, num_train=n, batch_size=args.batch_size))
    rows.append((f"MIG, {'50,000 images' if n else 'whole grid (737,280)'}", w, c))
    if n:
        rows.append(("MIG, whole grid (extrapolated from the rate above)", w * len(data) / n, c * len(data) / n))

    root = mnist_dir(Path(args.shared_data), Path(args.data_dir))
    test = MNIST(data_dir=str(root), split="test", device=str(dev))
    model = VAE(test.observation_shape, len(test), net="burgess").to(dev).eval()
    k, num = (100, 200) if args.quick else (5000, None)
    w, c, out = timed(lambda: nll(test, model.log_likelihood, k=k, num_examples=num, batch_size=100 if k <= 1000 else 20))
    count = num or len(test)
    rows.append((f"NLL, MNIST test, {count} images, k = {k}", w, c))
    if args.quick:
        f = len(test) / count * 5000 / k
        rows.append(("NLL, MNIST test, 10,000 images, k = 5000 (extrapolated)", w * f, c * f))
    load1 = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; device {label}; torch {torch.__version__}; "
          f"load average {load0[0]:.1f} before, {load1[0]:.1f} after\n")
    print("| evaluation | wall s | CPU s |\n|---|---|---|")
    for name, w, c in rows:
        print(f"| {name} | {w:.1f} | {c:.1f} |")


if __name__ == "__main__":
    main()
