"""Where a one-trial local sweep's fixed cost goes: importing Ray and Tune, ``ray.init``, Tune's set-up until the
trial runs in its worker, the trial's first report, and ``ray.shutdown``, against ``vaeray train`` of the same
run (launch to its first report). Every phase is timed in one process per round, in the order a sweep runs
them (``vaeray.sweep.ray``'s own ``RayRuntime`` and ``run_sweep``); the worker-side moments come from
``benchmarks/ray_probe.py`` (the sweep's ``imports``). A 1-step β-TCVAE run (Burgess net, batch 64).

    python benchmarks/bench_ray_phases.py --quick

With a Ray that is already running (a persistent local Ray, ``--address auto``), its workers must see the probe:

    export VAERAY_PROBE_LOG=/tmp/probe.jsonl VAERAY_PROBE_TUNE=1 VAERAY_PROBE_EVENTS=1 PYTHONPATH=$PWD:$PWD/benchmarks
    ray start --head --include-dashboard=false --num-cpus 2 --node-ip-address 127.0.0.1 --disable-usage-stats
    python benchmarks/bench_ray_phases.py --rounds 3 --address auto; ray stop
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = {"model": {"name": "beta_tcvae", "net": "burgess", "latent_dim": 10}, "data": {"name": "dsprites"},
       "train": {"batch_size": 64, "lr": 5e-4, "steps": 1, "device": "cpu"}}
PHASES = ["import torch", "import ray, tune, vaeray.sweep.ray", "ray.init (start or connect)", "Tune set-up → trial running in its worker",
          "trial: data, model, 1 step → first report", "Tune wind-down, results written", "ray.shutdown (or disconnect)"]


def child(data_dir: str, tmp: str) -> None:
    """One sweep, timed phase by phase in this process (marks on stdout as JSON)."""
    marks = [("start", time.time())]
    import torch  # noqa: F401

    marks.append((PHASES[0], time.time()))
    import ray

    from vaeray.sweep.ray import runner
    from vaeray.sweep.ray.local import RayRuntime
    from vaeray.sweep.spec import load

    marks.append((PHASES[1], time.time()))
    import yaml

    doc = {**RUN, "sweep": {"name": "phases", "search": "grid", "seeds": [0], "metric": "loss", "mode": "min",
                            "scheduler": "none", "resources": {"cpu": 1}, "storage": f"{tmp}/results",
                            "imports": ["ray_probe"]}}
    Path(tmp, "s.yaml").write_text(yaml.safe_dump(doc))
    spec = load(f"{tmp}/s.yaml")
    runtime = RayRuntime(os.environ.get("BENCH_RAY_ADDRESS") or None)  # --address: a running cluster
    runtime.ensure()
    marks.append((PHASES[2], time.time()))
    runner.run_sweep(spec, data_dir=data_dir, verbose=0)  # Ray is up: run_sweep leaves the shutdown to us
    marks.append(("run_sweep returned", time.time()))
    runtime.close()
    marks.append((PHASES[6], time.time()))
    print(json.dumps(marks))


def one_sweep(data_dir: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        # A running cluster's workers do not inherit this process's environment: with --address, start Ray with
        # VAERAY_PROBE_LOG (and the probe's PYTHONPATH) set, e.g. as the docstring shows; the file is reused.
        log = Path(os.environ["VAERAY_PROBE_LOG"]) if os.environ.get("BENCH_RAY_ADDRESS") else Path(tmp) / "probe.jsonl"
        log.write_text("")
        env = dict(os.environ, VAERAY_PROBE_LOG=str(log), VAERAY_PROBE_TUNE="1", VAERAY_PROBE_EVENTS="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]))
        t0 = time.time()
        out = subprocess.run([sys.executable, __file__, "--child", data_dir, tmp], env=env, capture_output=True, text=True)
        total = time.time() - t0
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        marks = dict(json.loads(out.stdout.strip().splitlines()[-1]))
        rows = [json.loads(line) for line in log.read_text().splitlines()]
    started = min(r["time"] for r in rows if r.get("event") and r["pid"] != os.getpid() and r["time"] > marks[PHASES[2]])
    first = min(r["time"] for r in rows if r.get("step") is not None)
    t = [marks["start"], marks[PHASES[0]], marks[PHASES[1]], marks[PHASES[2]], started, first,
         marks["run_sweep returned"], marks[PHASES[6]]]
    res = {name: b - a for name, a, b in zip(PHASES, t, t[1:])}
    res["interpreter start-up and exit"] = total - (t[-1] - t[0]) if total > t[-1] - t[0] else 0.0
    res["total (launch → exit)"] = total
    return res


def one_train(data_dir: str) -> float:
    """``vaeray train`` of the same 1-step run: launch to exit."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp, "run.yaml")
        cfg.write_text(yaml.safe_dump({**RUN, "seed": 0}))
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", "from vaeray.cli import run; run()", "train", str(cfg), "--data-dir",
                              data_dir, "--run-dir", f"{tmp}/run", "--no-progress"], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        return time.time() - t0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None, help="default 5; quick 2")
    ap.add_argument("--address", default=None, help="connect to this running Ray (e.g. auto after `ray start --head`)")
    ap.add_argument("--data-dir", default=os.environ.get("VAERAY_DATA", str(Path.home() / ".cache/vaeray/data")))
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    for k in ("VAERAY_RAY_DEFAULTS", "RAY_ADDRESS"):
        os.environ.pop(k, None)
    if args.address:
        os.environ["BENCH_RAY_ADDRESS"] = args.address
    loads = [os.getloadavg()[0]]
    sweeps, trains = [], []
    for r in range(rounds):
        sweeps.append(one_sweep(args.data_dir))
        trains.append(one_train(args.data_dir))
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: sweep {sweeps[-1]['total (launch → exit)']:.1f} s, train {trains[-1]:.1f} s, "
              f"load {loads[-1]:.1f}", file=sys.stderr, flush=True)
    where = f"Ray at {args.address} (already running)" if args.address else "a local Ray started by the sweep"
    print(f"{where}; {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs; load average {min(loads):.1f}–{max(loads):.1f}; "
          f"{rounds} rounds; median (min–max) wall seconds\n")
    print("| phase of a one-trial local sweep (1 step) | s |\n|---|---|")
    for name in sweeps[0]:
        xs = [s[name] for s in sweeps]
        print(f"| {name} | {statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f}) |")
    t, s = statistics.median(trains), statistics.median(s["total (launch → exit)"] for s in sweeps)
    print(f"| `vaeray train` of the same run, launch → exit | {t:.2f} ({min(trains):.2f}–{max(trains):.2f}) |")
    print(f"\nfixed cost of the sweep over `vaeray train`: {s - t:+.2f} s (target ≤ 5 s)")


if __name__ == "__main__":
    main()
