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
