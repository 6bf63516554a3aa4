"""Training throughput of an MNIST-scale model of each family: vaeray's ``fit`` only (no reference exists for
these), images/s and CPU µs per image, with the defaults and with the opt-in speed options.

Each (family, variant) runs ``fit`` in its own process with the same torch thread count, in interleaved rounds,
timed between two of its own reports after a warm-up (as benchmarks/bench_train.py times vaeray). The models are
the families' MNIST entries of ``sweeps/families_mnist.yaml``, ``sweeps/mlvae_mnist.yaml`` and
``sweeps/quickstart.yaml``. The ratio column is the variant's images per CPU-second over the default's. Short
timed windows on a fast model (the MLPs take ~70 µs per image) are noisy: use ``--steps 300`` or more there.

    python benchmarks/bench_families.py --quick
    python benchmarks/bench_families.py --rounds 3 --steps 60
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
sys.path.insert(0, str(HERE))
from bench_train import machine, med  # noqa: E402

MNIST32 = {"name": "mnist", "size": 32}
FAMILIES = {  # family: (model, data, batch size)
    "vae (mlp)": ({"name": "vae", "net": "mlp", "hidden": [256, 256], "latent_dim": 6}, {"name": "mnist", "size": 28}, 64),
    "svae": ({"name": "svae", "net": "burgess", "spheres": [9], "family": "vmf"}, MNIST32, 64),
    "tvae_l0": ({"name": "tvae_l0", "net": "burgess", "n_caps": 2, "cap_dim": 5, "k_space": 3}, MNIST32, 64),
    "dvaes_power": ({"name": "dvaes_power", "structure": "1-layer-nonlin", "units": 16}, MNIST32, 64),
    "ml_vae": ({"name": "ml_vae", "net": "mlp", "hidden": [500], "activation": "tanh", "style_dim": 10,
                "content_dim": 10, "likelihood": "bernoulli"}, {"name": "mnist_groups", "size": 28}, 256),
}
VARIANTS = {
    "default": {},
    "for_loop": {"optimizer_impl": "for_loop"},  # torch's own choice on a CPU (vaeray's default before `fused`)
    "bf16": {"autocast": "bf16"},
    "bf16+channels_last": {"autocast": "bf16", "channels_last": True},  # with the default's fused optimizer
}


def child(family: str, variant: str, steps: int, warmup: int, threads: int, data_dir: str) -> dict:
    import torch

    from vaeray.train import fit

    torch.set_num_threads(threads)
    model, data, batch = FAMILIES[family]
    cfg = {"seed": 0, "model": model, "data": data,
           "train": {"steps": warmup + steps, "batch_size": batch, "lr": 5e-4, "log_every": warmup,
                     "checkpoint_every": 10**9, "device": "cpu", **VARIANTS[variant]}}  # fmt: skip
    marks: list[tuple[float, float]] = []
    fit(cfg, report=lambda m, s: marks.append((time.perf_counter(), time.process_time())), data_dir=data_dir)
    (t0, c0), (t1, c1) = marks[0], marks[-1]  # the report at `warmup` starts the clock, the final one stops it
    images = steps * batch
    return {"img_per_s": images / (t1 - t0), "cpu_us_per_img": 1e6 * (c1 - c0) / images}


def run(family: str, variant: str, steps: int, warmup: int, threads: int, data_dir: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("VAERAY_NO_MALLOPT", None)
    args = [sys.executable, __file__, "--child", family, variant, str(steps), str(warmup), str(threads), data_dir]
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{family} ({variant}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        f, v, steps, warmup, threads, data_dir = sys.argv[2:]
        print(json.dumps(child(f, v, int(steps), int(warmup), int(threads), data_dir)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, default variant and bf16 only")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 60; quick 30)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES), metavar="FAMILY")
    ap.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS), metavar="VARIANT")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    steps = args.steps or (30 if args.quick else 60)
    rounds = args.rounds or (1 if args.quick else 2)
    variants = args.variants or (["default", "bf16"] if args.quick else list(VARIANTS))
    variants = ["default", *(v for v in variants if v != "default")]  # the ratios are against the default
    warmup = max(5, steps // 5)
    head = machine(args.threads)
    res: dict[tuple[str, str], list[dict]] = {}
    for r in range(rounds):
        for family in args.families:
            for v in (variants if r % 2 == 0 else variants[::-1]):
                m = run(family, v, steps, warmup, args.threads, args.data_dir)
                res.setdefault((family, v), []).append(m)
                print(f"round {r + 1}: {family:12s} {v:26s} {m['img_per_s']:8.0f} img/s {m['cpu_us_per_img']:7.0f} CPU µs/img "
                      f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    print(f"{head}; after: load average {os.getloadavg()[0]:.1f}; {rounds} round(s) × {steps} steps, median\n")
    print("| family (MNIST) | batch | variant | img/s (wall) | CPU µs / image | images per CPU-s vs default |")
    print("|---|---|---|---|---|---|")
    for family in args.families:
        base = med([m["cpu_us_per_img"] for m in res[(family, "default")]])
        for v in variants:
            ms = res[(family, v)]
            cpu = med([m["cpu_us_per_img"] for m in ms])
            print(f"| {family} | {FAMILIES[family][2]} | {v} | {med([m['img_per_s'] for m in ms]):.0f} | {cpu:.0f} | {base / cpu:.2f} |")


if __name__ == "__main__":
    main()
