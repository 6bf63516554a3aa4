"""Sweep files without Ray: parsing, deterministic expansion, identity, errors and the dry run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from vaeray import cli
from vaeray import sweep as sw


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["vaeray", *args])
    with pytest.raises(SystemExit) as e:
        cli.run()
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def by_cell(spec):
    groups = {}
    for t in spec.trials():
        groups.setdefault(t.cell, []).append(t)
    return groups


def test_grid_and_random_leaves_give_identical_hyperparameters_across_seeds(make_sweep):
    spec = sw.load(make_sweep(
        model={"latent_dim": {"grid": [2, 3]}},
        train={"lr": {"loguniform": [1e-4, 1e-2]}, "batch_size": {"randint": [8, 33]}},
        sweep={"search": "random", "num_samples": 3, "seeds": [0, 1, 2], "seed": 7},
    ))
    groups = by_cell(spec)
    assert len(groups) == 6 and len(spec.trials()) == 18
    for cell, trials in groups.items():
        assert [t.seed for t in trials] == [0, 1, 2]
        bodies = [{k: v for k, v in t.config.items() if k != "seed"} for t in trials]
        assert all(b == bodies[0] for b in bodies)  # seeds are replicates: same lr, same batch size
        assert all(t.trial_id == f"{cell}-s{t.seed}" for t in trials)
        assert cell == sw.config_hash(trials[0].config)
    lrs = {t.config["train"]["lr"] for t in spec.trials()}
    assert len(lrs) == 6 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert all(8 <= t.config["train"]["batch_size"] < 33 for t in spec.trials())
    assert {t.config["model"]["latent_dim"] for t in spec.trials()} == {2, 3}


def test_expansion_is_deterministic_and_extending_keeps_existing_configurations(make_sweep, tmp_path):
    common = {"train": {"lr": {"loguniform": [1e-4, 1e-2]}}, "sweep": {"search": "random", "num_samples": 2, "seed": 3}}
    first = sw.load(make_sweep("a", model={"latent_dim": {"grid": [2, 3]}}, **common))
    again = sw.load(make_sweep("a", model={"latent_dim": {"grid": [2, 3]}}, **common))
    assert [t.config for t in first.trials()] == [t.config for t in again.trials()]
    # another grid value, another sample and another seed: every old trial keeps its id and its draws
    bigger = sw.load(make_sweep(
        "a", model={"latent_dim": {"grid": [2, 3, 4]}}, train={"lr": {"loguniform": [1e-4, 1e-2]}},
        sweep={"search": "random", "num_samples": 3, "seed": 3, "seeds": [0, 1, 5]},
    ))
    old = {t.trial_id: t.config for t in first.trials()}
    new = {t.trial_id: t.config for t in bigger.trials()}
    assert set(old) < set(new)
    assert all(new[k] == v for k, v in old.items())
    assert len(new) == 3 * 3 * 3
    # a different sampler seed draws different learning rates
    other = sw.load(make_sweep("b", model={"latent_dim": {"grid": [2, 3]}}, train=common["train"],
                               sweep={"search": "random", "num_samples": 2, "seed": 4}))
    assert {t.config["train"]["lr"] for t in other.trials()}.isdisjoint({t.config["train"]["lr"] for t in first.trials()})


def test_identity_is_the_resolved_config_without_seed(make_sweep, tmp_path):
    plain = sw.load(make_sweep("p"))
    explicit_default = sw.load(make_sweep("q", model={"likelihood": "bernoulli"}))  # the default, spelled out
    changed = sw.load(make_sweep("r", model={"latent_dim": 3}))
    assert [t.trial_id for t in plain.trials()] == [t.trial_id for t in explicit_default.trials()]
    assert plain.configurations[0].cell != changed.configurations[0].cell
    # key order in the file does not matter either
    text = yaml.safe_dump(yaml.safe_load(make_sweep("p").read_text()), sort_keys=True)
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(text)
    assert [t.trial_id for t in sw.load(reordered).trials()] == [t.trial_id for t in plain.trials()]


def test_nested_whole_model_grid_expands_each_option_separately(make_sweep):
    spec = sw.load(make_sweep(model={"grid": [
        {"name": "vae", "net": "mlp", "hidden": [16], "latent_dim": 2},
        {"name": "beta_vae_h", "net": "mlp", "hidden": [16], "latent_dim": 2, "beta": {"grid": [2, 4]}},
    ]}))
    models = [(c.config["model"]["name"], c.config["model"].get("beta")) for c in spec.configurations]
    assert models == [("vae", None), ("beta_vae_h", 2.0), ("beta_vae_h", 4.0)]
    assert spec.varying() == ["model.name", "model.beta"]


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
    code, out, err = run_cli(monkeypatch, capsys, "sweep", str(path), "--dry-run")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path}: {where}: "), lines[0]
    assert problem in lines[0]


def test_metric_from_eval_metrics_or_model_terms_is_accepted(make_sweep):
    sw.load(make_sweep(model={"name": "beta_tcvae", "net": "mlp", "hidden": [16]}, sweep={"metric": "tc"}))
    with pytest.raises(sw.ConfigError, match="metric 'tc' is not produced by model 'vae'"):
        sw.load(make_sweep("v", sweep={"metric": "tc"}))
    sw.load(make_sweep("m", eval={"metrics": {"dci": {"num_train": 100}}}, sweep={"metric": "dci_disentanglement", "mode": "max"}))


def test_optuna_validates_every_choice_option_up_front(make_sweep):
    with pytest.raises(sw.ConfigError) as e:
        sw.load(make_sweep(
            model={"choice": [{"name": "vae", "net": "mlp"}, {"name": "vea", "net": "mlp"}]},
            train={"lr": {"loguniform": [1e-4, 1e-2]}}, sweep={"search": "optuna", "num_samples": 4},
        ))
    assert "model.choice[1].name: unknown model 'vea'" in str(e.value)
    spec = sw.load(make_sweep(
        "ok", model={"latent_dim": {"choice": [2, 3]}}, train={"lr": {"loguniform": [1e-4, 1e-2]}},
        sweep={"search": "optuna", "num_samples": 4, "seeds": [0, 1]},
    ))
    assert spec.num_trials == 8 and [leaf.path for leaf in spec.space] == ["model.latent_dim", "train.lr"]
    run, cell, seed = spec.identify({"model.latent_dim": 3, "train.lr": 0.001, "__trial_index__": 1})
    assert seed == 1 and run["model"]["latent_dim"] == 3 and run["train"]["lr"] == 0.001
    assert cell == spec.identify({"model.latent_dim": 3, "train.lr": 0.001, "__trial_index__": 0})[1]


def test_storage_is_made_absolute_and_uris_are_kept(make_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = sw.load(make_sweep(sweep={"storage": "rel/out", "name": "n1"}))
    assert spec.root == str(tmp_path / "rel" / "out" / "n1")
    assert sw.load(make_sweep(sweep={"storage": "s3://bucket/sweeps/", "name": "n2"})).root == "s3://bucket/sweeps/n2"
    assert sw.load(make_sweep(sweep={"name": "n3"}), storage="gs://b/x").root == "gs://b/x/n3"


def test_dry_run_prints_the_matrix_resources_and_fit(make_sweep, monkeypatch, capsys):
    path = make_sweep(model={"latent_dim": {"grid": [2, 3]}}, sweep={"resources": {"cpu": 1, "gpu": 0}})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, out, err = run_cli(monkeypatch, capsys, "sweep", str(path), "--dry-run")
    assert code == 0, err
    spec = sw.load(path)
    header = next(line for line in out.splitlines() if line.strip().startswith("trial"))
    assert header.split() == ["trial", "model.latent_dim", "seed", "status"]
    for t in spec.trials():
        row = next(line for line in out.splitlines() if line.strip().startswith(t.trial_id))
        assert row.split() == [t.trial_id, str(t.config["model"]["latent_dim"]), str(t.seed), "to", "run"]
    assert "2 configurations x 2 seeds = 4 trials" in out
    assert "resources per trial: cpu 1, gpu 0" in out
    assert "fits: 2 trial(s) at a time" in out or "fits:" in out


def test_dry_run_says_when_a_trial_cannot_fit(make_sweep):
    spec = sw.load(make_sweep(sweep={"resources": {"cpu": 4, "gpu": 0.25}}))
    laptop = sw.ClusterView("this machine", ((2.0, 0.0),))
    assert "does NOT fit" in sw.dry_run_report(spec, cluster=laptop)
    gpu_box = sw.ClusterView("cluster", ((8.0, 2.0), (0.0, 0.0)))
    report = sw.dry_run_report(spec, cluster=gpu_box)
    assert "fits: 2 trial(s) at a time" in report  # 8 CPUs / 4 per trial, although 2 GPUs would take 8
    assert sw.concurrency(sw.Resources(cpu=1, gpu=0.25), gpu_box) == 8


def test_importing_the_library_leaves_ray_out():
    code = (
        "import sys\n"
        "import vaeray.sweep, vaeray.train, vaeray.models, vaeray.data, vaeray.metrics, vaeray.config, vaeray.results\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
