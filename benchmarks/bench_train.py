"""Training throughput and CPU time per image: vaeray's ``fit`` against a reference-style loop, side by side.

The baseline (benchmarks/reference_style.py) trains the same β-TCVAE (Burgess net, z = 10, α=1 β=6 γ=1, MSS,
Adam 5e-4) the way YannDubs/disentangling-vae does: a ``DataLoader`` over a Dataset returning one float image
per item, the MSS weight matrix rebuilt on the host every step, ``zero_grad`` and ``loss.item()`` every step.
vaeray runs its real ``fit`` on the packed dSprites cache (as ``vaeray train`` and every trial do) and is timed
between two of its own reports. Every variant runs in its own process (the allocator setting is process-wide),
with the same thread count, interleaved in rounds so background load hits all variants alike; the medians and
the ratios of CPU time per image are printed as Markdown.

    python benchmarks/bench_train.py --quick          # a few minutes on a 2-core CPU
    python benchmarks/bench_train.py --batch 64 256 --rounds 5 --options
    python benchmarks/bench_train.py --device cuda --batch 256 1024 --options   # the GPU table

Variants: ``ref`` (glibc default malloc, as users run the reference), ``ref+malloc`` (the reference with
vaeray's allocator setting), ``vaeray`` (default: allocator setting on), ``vaeray-nomalloc``
(``VAERAY_NO_MALLOPT=1``) and, with ``--options``, vaeray with one ``train:`` speed option each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPTION_VARIANTS = {
    "vaeray+channels_last": {"channels_last": True},
    "vaeray+bf16": {"autocast": "bf16"},
    "vaeray+foreach": {"optimizer_impl": "foreach"},
    "vaeray+for_loop": {"optimizer_impl": "for_loop"},  # torch's CPU choice: vaeray's default before `auto` = fused
    "vaeray+fused": {"optimizer_impl": "fused"},
    "vaeray+compile": {"compile": "inductor"},
    "vaeray+bf16+channels_last+fused": {"autocast": "bf16", "channels_last": True, "optimizer_impl": "fused"},
}


def child(variant: str, batch: int, steps: int, warmup: int, threads: int, device: str, data_dir: str) -> dict:
    """One measurement in this process: images/s (wall) and CPU µs per image over ``steps`` timed steps."""
    import torch

    torch.set_num_threads(threads)
    if variant == "ref+malloc":
        from vaeray.perf import tune_allocator

        assert tune_allocator()
    if variant.startswith("ref"):
        return _child_reference(batch, steps, warmup, device, data_dir)
    return _child_vaeray(variant, batch, steps, warmup, device, data_dir)


def _child_reference(batch, steps, warmup, device, data_dir) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    import reference_style as rs

    from vaeray.data.dsprites import DSprites

    torch.manual_seed(0)
    # (50000, 64, 64) uint8 in RAM, read in one allocation that is never freed, as the reference loads its
    # .npz. Building it here instead would free large temporaries, and glibc then raises its mmap threshold
    # for the rest of the process: the step would silently get the allocator setting (see docs/benchmarks.md)
    images = np.load(baseline_images(data_dir))
    n = len(DSprites(data_dir=data_dir))
    loader = torch.utils.data.DataLoader(rs.ImageDataset(images), batch_size=batch, shuffle=True, drop_last=True)
    model = rs.RefVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    rs.train_steps(model, loader, opt, warmup, n, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    c, t, f = time.process_time(), time.perf_counter(), _faults()
    losses = rs.train_steps(model, loader, opt, steps, n, device)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"img_per_s": steps * batch / wall, "cpu_us_per_img": 1e6 * cpu / (steps * batch), "loss": losses[-1],
            "faults_per_step": (_faults() - f) / steps}


def memory(device: str) -> dict:
    """Peak resident host memory, this process's proportional share (PSS: a memory map shared by the trials of
    a node counts once across them) and, on a GPU, peak device memory allocated, all in MiB."""
    import resource

    out = {"host_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        for line in open("/proc/self/smaps_rollup"):
            if line.startswith(("Pss:", "Rss:")):
                out["host_" + line.split(":")[0].lower() + "_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    if device.startswith("cuda"):
        import torch

        out["device_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _faults() -> int:
    """Minor page faults of this process so far (re-faulted activation memory shows up here)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _child_vaeray(variant, batch, steps, warmup, device, data_dir) -> dict:
    import torch

    from vaeray.train import build_dataset, fit

    options = OPTION_VARIANTS.get(variant, {})
    cfg = {
        "seed": 0,
        "model": {"name": "beta_tcvae", "net": "burgess", "latent_dim": 10},
        "data": {"name": "dsprites"},
        "train": {"steps": warmup + steps, "batch_size": batch, "lr": 5e-4, "log_every": 10**9,
                  "checkpoint_every": 10**9, **options},
    }
    data = build_dataset(cfg, "train", device, data_dir)
    marks: list[tuple[float, float]] = []
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    out: dict = {}

    def report(metrics, state):  # the report at step `warmup` starts the clock, the final one stops it
        sync()
        marks.append((time.perf_counter(), time.process_time(), _faults()))
        out.update(metrics)

    # log_every = warmup: reports (a few float() reads, as users run it) at warmup, 2·warmup, ... and the end
    cfg["train"]["log_every"] = warmup
    fit(cfg, report=report, dataset=data, device=device)
    (t0, c0, f0), (t1, c1, f1) = marks[0], marks[-1]
    return {"img_per_s": steps * batch / (t1 - t0), "cpu_us_per_img": 1e6 * (c1 - c0) / (steps * batch),
            "loss": out.get("loss"), "faults_per_step": (f1 - f0) / steps}


def baseline_images(data_dir: str) -> Path:
    """50,000 random dSprites images, unpacked to uint8 (N, 64, 64), cached next to the packed grid."""
    path = Path(data_dir) / "dsprites" / "bench_baseline_50k.npy"
    if not path.exists():
        import numpy as np
        import torch

        from vaeray.data.dsprites import DSprites, unpack_bits

        grid = DSprites(data_dir=data_dir)
        pick = torch.from_numpy(np.random.default_rng(0).choice(len(grid), 50_000, replace=False))
        np.save(path, unpack_bits(grid.packed[pick]).to(torch.uint8).squeeze(1).numpy())
    return path


def allocations(batch: int) -> dict[str, float]:
    """MB allocated by one training step (torch's profiler, CPU), reference-style step vs vaeray's model step.

    Deterministic, so it is the load-independent half of the comparison: what the step asks of the
    allocator, before the allocator decides whether that costs page faults."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sys.path.insert(0, str(HERE))
    import reference_style as rs

    from vaeray import perf
    from vaeray.data.base import Batch
    from vaeray.models.disentangle import BetaTCVAE

    torch.manual_seed(0)
    x = (torch.rand(batch, 1, 64, 64) < 0.1).float()
    ref, mine = rs.RefVAE(), BetaTCVAE((1, 64, 64), 737_280)
    ref_opt, opt = torch.optim.Adam(ref.parameters(), lr=5e-4), torch.optim.Adam(mine.parameters(), lr=5e-4)

    def ref_step():
        loss = rs.btcvae_loss(ref, x, 737_280)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        loss.item()

    def vaeray_step():
        with perf.distribution_checks_off():
            terms = mine.loss(Batch(x=x), 0)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()

    out = {}
    for name, step in (("ref", ref_step), ("vaeray", vaeray_step)):
        step(), step()
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        events = prof.key_averages()
        out[name] = sum(e.self_cpu_memory_usage for e in events if e.self_cpu_memory_usage > 0) / 2**20
        out[name + "_host_syncs"] = sum(e.count for e in events if e.key == "aten::is_nonzero")  # tensor truth tests: validation
    return out


def run_variant(variant, batch, steps, warmup, threads, device, data_dir) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("VAERAY_NO_MALLOPT", None)
    if variant == "vaeray-nomalloc":
        env["VAERAY_NO_MALLOPT"] = "1"
    args = [sys.executable, __file__, "--child", variant, str(batch), str(steps), str(warmup), str(threads), device, data_dir]
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{variant} (batch {batch}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine(threads: int) -> str:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, {threads} torch threads; python {platform.python_version()}, "
            f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds, few steps: a few minutes on a 2-core CPU")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=None, help="timed steps at batch 64 (scaled down for larger batches)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 8))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--options", action="store_true", help="also each train: speed option (at the largest batch)")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile (its build takes minutes on CPU)")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    ap.add_argument("--json", default=None, help="also write the raw measurements here")
    ap.add_argument("--variants", nargs="+", default=None, help="only these (ref and ref+malloc always run: the ratios need them)")
    args = ap.parse_args()
    if args.quick:
        args.steps = args.steps or 24
        args.rounds = args.rounds or 2
    args.steps, args.rounds = args.steps or 60, args.rounds or 3
    from vaeray.data.dsprites import DSprites

    DSprites(data_dir=args.data_dir)  # build the packed cache once, outside the timings
    baseline_images(args.data_dir)
    base = ["ref", "ref+malloc", "vaeray", "vaeray-nomalloc"]
    plan = [(v, b) for b in args.batch for v in base]
    if args.options:
        opts = [v for v in OPTION_VARIANTS if not (args.no_compile and v == "vaeray+compile")]
        plan += [(v, max(args.batch)) for v in opts]
    if args.variants:
        plan = [(v, b) for v, b in plan if v in ("ref", "ref+malloc", *args.variants)]
    print(f"machine: {machine(args.threads)}", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for v, b in plan:
            steps = max(6, args.steps * 64 // b)
            warmup = (3 if v != "vaeray+compile" else 6) if args.device == "cpu" else 20
            res = run_variant(v, b, steps, warmup, args.threads, args.device, args.data_dir)
            results.setdefault((v, b), []).append(res)
            print(f"round {r + 1}: {v:22s} batch {b:4d}: {res['img_per_s']:8.1f} img/s, {res['cpu_us_per_img']:8.0f} CPU µs/img", flush=True)
    print(f"\nafter: {machine(args.threads)}\nmedian of {args.rounds} interleaved rounds; CPU ratio = reference CPU µs per image / this variant's\n")
    print("| batch | variant | img/s (wall) | CPU µs / image | CPU ratio vs `ref` (as users run it) | CPU ratio vs `ref+malloc` |")
    print("|---|---|---|---|---|---|")
    for (v, b), rows in results.items():
        ref = med([x["cpu_us_per_img"] for x in results[("ref", b)]])
        refm = med([x["cpu_us_per_img"] for x in results[("ref+malloc", b)]])
        cpu = med([x["cpu_us_per_img"] for x in rows])
        print(f"| {b} | {v} | {med([x['img_per_s'] for x in rows]):.0f} | {cpu:.0f} | {ref / cpu:.2f} | {refm / cpu:.2f} |")
    print("\n| batch | MB allocated per step: reference style | vaeray | ratio | tensor truth tests read by the host per step: reference | vaeray |")
    print("|---|---|---|---|---|---|")
    for b in args.batch:
        code = f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_train as bt; print(json.dumps(bt.allocations({b})))"
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        a = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip().splitlines()[-1])
        print(f"| {b} | {a['ref']:.0f} | {a['vaeray']:.0f} | {a['vaeray'] / a['ref']:.2f} | {a['ref_host_syncs']} | {a['vaeray_host_syncs']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{v}@{b}": rows for (v, b), rows in results.items()}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        v, b, s, w, t, d, dd = sys.argv[2:9]
        print(json.dumps({**child(v, int(b), int(s), int(w), int(t), d, dd), **memory(d)}))
    else:
        main()
