"""A fresh corpus of malformed inputs, generated with plain `random` (not the tests' hypothesis strategies) and
run through the real CLI entry point in this process: how each one ended (docs/reliability.md has the figures).

    PYTHONPATH=. python benchmarks/malformed_inputs.py 300 1          # run configs through `vaeray train`
    PYTHONPATH=. python benchmarks/malformed_inputs.py 300 3 sweep    # sweep files through `vaeray sweep --dry-run`

An input ends well when it either runs (valid after all; for `train`, two steps) or exits 2 with one stderr line
and nothing written (no run directory, no sweep storage). Anything else is printed with the input.
"""
import copy, io, json, os, random, sys, tempfile, contextlib
from pathlib import Path
sys.path.insert(0, "tests/sweep")
import tests.conftest  # noqa  registers test_squares
import sweeptest_plugin  # noqa
import yaml
from vaeray import cli

N, SEED = int(sys.argv[1]), int(sys.argv[2])
SWEEP = len(sys.argv) > 3 and sys.argv[3] == "sweep"
rng = random.Random(SEED)
BASE = {"seed": 0, "model": {"name": "vae", "net": "mlp", "hidden": [8], "latent_dim": 2},
        "data": {"name": "test_squares"}, "train": {"steps": 2, "batch_size": 4, "log_every": 1, "checkpoint_every": 1}}
KEYS = ["seed", "model", "model.name", "model.latent_dim", "model.hidden", "model.net", "model.likelihood", "model.obs_scale",
        "model.beta", "model.reg_anneal", "data", "data.name", "data.size", "data.noise", "train", "train.steps", "train.batch_size",
        "train.lr", "train.optimizer", "train.betas", "train.weight_decay", "train.grad_clip", "train.lr_warmup_steps",
        "train.device", "train.deterministic", "eval", "eval.every", "eval.metrics", "eval.metrics.mig", "eval.metrics.mig.num_train",
        "eval.metrics.mig.num_bins", "eval.metrics.nll.k", "eval.metrics.dci", "zz", "model.zz", "train.log_every",
        "train.early_stop_every", "train.early_stop_patience", "train.early_stop_metric", "train.early_stop_metric.nll",
        "train.early_stop_metric.nll.k", "train.early_stop_min_delta", "train.autocast", "train.optimizer_impl",
        "train.channels_last", "train.compile", "train.lr_boundaries", "train.lr_factors", "train.nan_restarts"]
def value():
    k = rng.randrange(16)
    return [None, True, -1, 0, 10**rng.randrange(1, 40), -10**rng.randrange(1, 30), float("inf"), float("-inf"), float("nan"),
            rng.uniform(-1e6, 1e6), "x" * rng.randrange(0, 5), "cuda:99", [], [rng.randrange(-3, 3)], {"a": {"b": [1, {"c": None}]}},
            "\u00e9\n\t"][k]
def mutate(cfg):
    cfg = copy.deepcopy(cfg)
    for _ in range(rng.randrange(1, 4)):
        path = rng.choice(KEYS).split(".")
        node = cfg
        for p in path[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        if rng.random() < 0.15:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value()
    return cfg
SWEEP_KEYS = ["sweep.search", "sweep.num_samples", "sweep.seeds", "sweep.metric", "sweep.mode", "sweep.scheduler",
    "sweep.scheduler.name", "sweep.scheduler.reduction_factor", "sweep.scheduler.grace_period", "sweep.scheduler.max_t",
    "sweep.scheduler.interval", "sweep.resources", "sweep.resources.cpu", "sweep.resources.gpu", "sweep.max_concurrent",
    "sweep.max_failures", "sweep.name", "sweep.wandb", "sweep.wandb.mode", "sweep.seed", "sweep", "model.latent_dim.grid",
    "train.lr.loguniform", "train.lr.uniform", "model.hidden.choice", "train.steps.randint", "sweep.zz", "seed"]
def raw_case(i):
    if SWEEP:
        base = copy.deepcopy(BASE); base.pop("seed")
        base["sweep"] = {"seeds": [0, 1], "scheduler": {"name": "asha"}, "storage": STORE, "imports": ["sweeptest_plugin"]}
        cfg = base
        for _ in range(rng.randrange(1, 4)):
            path = rng.choice(SWEEP_KEYS + KEYS).split(".")
            node = cfg
            for p in path[:-1]:
                if not isinstance(node.get(p), dict):
                    node[p] = {}
                node = node[p]
            node[path[-1]] = value() if rng.random() < 0.7 else rng.choice([[1, 2], [0.1, 0.0], {"grid": []}, [1e-3, 1e-1], "asha", "median", "optuna", "random"])
        return yaml.safe_dump(cfg, allow_unicode=True).encode()
    r = rng.random()
    if r < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    if r < 0.14:
        return ("k: " + "{a: " * rng.randrange(30, 3000) + "1" + "}" * 0).encode()
    if r < 0.2:
        return rng.choice([b"", b"[]", b"- a", b"3.5", b"null", b"~", b"'str'", b"{a: !!python/object:os.system x}", b"a: &x [*x]"])
    return yaml.safe_dump(mutate(BASE), allow_unicode=True).encode() if rng.random() < 0.5 else json.dumps(mutate(BASE), default=str).replace("Infinity", ".inf").replace("NaN", ".nan").encode()
outcomes = {}
examples = {}
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    STORE = str(d / "store")
    for i in range(N):
        f = d / f"c{i}.yaml"
        f.write_bytes(raw_case(i))
        run_dir = d / f"run{i}"
        args = ["train", str(f), "--run-dir", str(run_dir), "--no-progress"] if not SWEEP else ["sweep", str(f), "--dry-run"]
        if rng.random() < 0.1:
            args += ["--set", rng.choice(["", "=", "a", "train.lr", "model.=1", "seed.x=2", "x.y.z=[", "train.steps=1e999"])]
        before = set(os.listdir(d))
        err = io.StringIO(); out = io.StringIO()
        code = 0
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                cli.run(args)
            except SystemExit as e:
                code = e.code or 0
        lines = [l for l in err.getvalue().splitlines() if l.strip()]
        written = (set(os.listdir(d)) - before)
        if code == 0 and (not SWEEP or not written):
            kind = "ran (valid input)"
        elif code == 5 and len(lines) == 1 and not SWEEP:
            kind = "ran, then diverged (exit 5, one line)"
        elif code == 2 and len(lines) == 1 and not written:
            kind = "exit 2, one line, nothing written"
        else:
            kind = f"OTHER: exit {code}, {len(lines)} lines, wrote {sorted(written)}"
            examples.setdefault(kind, (f.read_bytes()[:200], args[5:], lines[-1:]))
        outcomes[kind] = outcomes.get(kind, 0) + 1
print(json.dumps(outcomes, indent=1))
for k, v in examples.items():
    print(k, v)
