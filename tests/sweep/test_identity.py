"""Trial identity: the resolved config without its seed, whatever the spelling or key order of the file."""

from __future__ import annotations

import yaml

from vaeray.sweep import spec as sw


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


def test_configurations_keep_the_names_vaeray_0_1_gave_them():
    """Hashes computed by vaeray 0.1 (commit 301bff9) for the shipped sweeps: new options at their defaults do
    not rename a configuration, so a ledger written by 0.1 still recognises its trials and resumes."""
    from pathlib import Path

    from vaeray.sweep.identity import LATER_DEFAULTS, config_hash

    repo = Path(__file__).resolve().parents[2]
    quick = sw.load(repo / "sweeps" / "quickstart.yaml", storage="/tmp/unused")
    assert [c.cell for c in quick.configurations] == ["bca0588ebf", "ae36219d70"]
    btc = sw.load(repo / "sweeps" / "betatcvae_dsprites.yaml", storage="/tmp/unused")
    assert [c.cell for c in btc.configurations][:4] == ["1f3d8c2714", "bbe878eff6", "19e85d9950", "28f639281c"]
    config = quick.configurations[0].config
    for (section, key, *rest), default in LATER_DEFAULTS.items():
        if rest or section != "train":
            continue
        assert config[section][key] == default  # the table holds the defaults the schema fills in
        changed = {**config, section: {**config[section], key: "changed"}}
        assert config_hash(changed) != config_hash(config), key  # set to anything else, it counts


def test_a_models_later_setting_at_its_default_keeps_that_models_names_only():
    """``ml_vae.kl_warmup`` came after ml_vae: at 0 it leaves the names that ml_vae configurations had before it
    (hashes computed by the code before the setting existed), set to anything else it counts; svae's own
    ``kl_warmup`` (there from svae's start) still counts at 0, so svae's names do not move either."""
    from pathlib import Path

    from vaeray.sweep.identity import config_hash

    repo = Path(__file__).resolve().parents[2]
    for name, ml_cells, svae_cell in [
        ("mlvae_mnist", ["d90e9c74ad", "5d0bbff091", "7551cfa554", "c3387cd17a"], None),
        ("mlvae_dsprites", ["0e71718fa3", "e1a9942c97", "87fef4884f", "c315d37d17"], None),
        ("families_dsprites", [], "5f2f97449e"),  # its ml_vae asks for a warm-up: a new configuration
        ("families_mnist", [], "a67038935c"),
    ]:
        spec = sw.load(repo / "sweeps" / f"{name}.yaml", storage="/tmp/unused")
        by_model = {}
        for c in spec.configurations:
            by_model.setdefault(c.config["model"]["name"], []).append(c)
        assert [c.cell for c in by_model["ml_vae"]][: len(ml_cells)] == ml_cells, name
        ml = by_model["ml_vae"][0].config
        assert "kl_warmup" in ml["model"]  # the resolved config carries it; at 0 it is not counted...
        ml = {**ml, "model": {**ml["model"], "kl_warmup": 0}}
        assert config_hash(ml) == config_hash({**ml, "model": {k: v for k, v in ml["model"].items() if k != "kl_warmup"}})
        warmed = {**ml, "model": {**ml["model"], "kl_warmup": 1000}}
        assert config_hash(warmed) != config_hash(ml)  # ...and a warm-up is a different configuration
        if svae_cell:
            svae = by_model["svae"][0]
            assert svae.cell == svae_cell
            cold = {**svae.config, "model": {**svae.config["model"], "kl_warmup": 0}}
            without = {**svae.config, "model": {k: v for k, v in svae.config["model"].items() if k != "kl_warmup"}}
            assert config_hash(cold) != config_hash(without)  # svae's kl_warmup counts at 0 too
