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
