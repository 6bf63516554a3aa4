"""Sweep files without Ray: one-line errors naming the file and the key path; no ray imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_inprocess


@pytest.mark.parametrize(
    "sections, where, problem",
    [
        ({"model": {"grid": [{"name": "vae", "net": "mlp"}, {"name": "btcvae"}]}}, "model.grid[1].name", "unknown model 'btcvae'"),
        ({"train": {"lr": {"logunifrom": [1e-4, 1e-3]}}}, "train.lr.logunifrom", "unknown search leaf 'logunifrom'"),
        ({"train": {"lr": {"uniform": [1e-2, 1e-4]}}}, "train.lr.uniform", "bad range: low 0.01 > high 0.0001"),
        ({"sweep": {"seeds": [0, 1.5]}}, "sweep.seeds[1]", "seeds must be integers"),
        ({"sweep": {"seeds": [0, "one"]}}, "sweep.seeds[1]", "seeds must be integers"),
        ({"sweep": {"metric": "mig"}}, "sweep.metric", "metric 'mig' is not produced by model 'vae'"),
        ({"sweep": {"search": "optuna"}, "train": {"lr": {"grid": [1e-3, 1e-4]}}}, "train.lr.grid", "optuna search cannot expand grids"),
        ({"sweep": {"scheduler": {"name": "median", "reduction_factor": 2}}}, "sweep.scheduler.reduction_factor", "not a parameter of the median scheduler"),
        ({"sweep": {"serach": "grid"}}, "sweep.serach", "did you mean 'search'"),
        ({"train": {"steps": {"randint": [0, 10]}}}, "train.steps.randint", "0 is out of range"),
        ({"sweep": {"resources": {"cpu": 1, "gpu": 1.5}}}, "sweep.resources.gpu", "whole number"),
        ({"seed": 3}, "seed", "list seeds in sweep.seeds"),
        ({"sweep": {"scheduler": "asha", "max_concurrent": 1}}, "sweep.max_concurrent", "at least the number of seeds"),
        ({"train": {"device": "cuda"}}, "train.device", "sweep.resources.gpu is 0"),
    ],
)
def test_dry_run_errors_are_one_line_with_file_and_key_path(make_sweep, monkeypatch, capsys, sections, where, problem):
    path = make_sweep(**sections)
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", str(path), "--dry-run")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path}: {where}: "), lines[0]
    assert problem in lines[0]


# The sweep layer's modules; every one must be importable (and tested) without Ray.
RAY_FREE = tuple(
    f"sweep.{m}" for m in ("spec", "space", "settings", "configurations", "identity", "dryrun", "rungs", "plan", "results")
) + ("sweep", "sweep.ray", "storage")


def test_importing_the_library_leaves_ray_out():
    """Every module outside vaeray.sweep.ray (the one Ray adapter folder) imports without pulling in ray."""
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import vaeray\n"
        "names = [m.name for m in pkgutil.walk_packages(vaeray.__path__, 'vaeray.') if not m.name.startswith('vaeray.sweep.ray.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "ray = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "print(json.dumps({'modules': names, 'ray': ray}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ray"] == []
    core = ("train", "models", "data", "metrics", "config", "cli")
    assert {f"vaeray.{m}" for m in RAY_FREE + core} <= set(out["modules"])


def test_set_overrides_apply_before_validation_and_change_identities(make_sweep):
    """``vaeray sweep FILE --set ...``: a paper sweep's laptop size without editing the file."""
    from vaeray.sweep.spec import load

    path = make_sweep(model={"name": "vae", "net": "mlp", "hidden": [16], "latent_dim": {"grid": [2, 3]}})
    plain = load(path)
    small = load(path, overrides=["train.steps=7", "sweep.seeds=[5]", "model.latent_dim={grid: [2, 4, 6]}"])
    assert [c.config["model"]["latent_dim"] for c in small.configurations] == [2, 4, 6]
    assert {c.config["train"]["steps"] for c in small.configurations} == {7} and small.seeds == (5,)
    assert small.overrides == ("train.steps=7", "sweep.seeds=[5]", "model.latent_dim={grid: [2, 4, 6]}")
    assert {t.trial_id for t in plain.trials()}.isdisjoint(t.trial_id for t in small.trials())  # new configs, new ids


@pytest.mark.parametrize(
    "item, problem",
    [("train.steps", "--set expects KEY=VALUE"), ("train.steps=-3", "train.steps: -3 is out of range"), ("train.lr=[", "--set train.lr")],
)
def test_bad_set_overrides_are_one_line(make_sweep, monkeypatch, capsys, item, problem):
    path = make_sweep()
    code, out, err = run_inprocess(monkeypatch, capsys, "sweep", str(path), "--dry-run", "--set", item)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert problem in err
