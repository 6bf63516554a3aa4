"""Search-space leaves through a sweep file: grids, random leaves, nested grids; deterministic expansion."""

from __future__ import annotations

from vaeray.sweep import spec as sw
from vaeray.sweep.identity import config_hash


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
        assert cell == config_hash(trials[0].config)
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


def test_nested_whole_model_grid_expands_each_option_separately(make_sweep):
    spec = sw.load(make_sweep(model={"grid": [
        {"name": "vae", "net": "mlp", "hidden": [16], "latent_dim": 2},
        {"name": "beta_vae_h", "net": "mlp", "hidden": [16], "latent_dim": 2, "beta": {"grid": [2, 4]}},
    ]}))
    models = [(c.config["model"]["name"], c.config["model"].get("beta")) for c in spec.configurations]
    assert models == [("vae", None), ("beta_vae_h", 2.0), ("beta_vae_h", 4.0)]
    assert spec.varying() == ["model.name", "model.beta"]
