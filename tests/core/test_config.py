"""Run-config validation: every mistake is one line naming the key path; the resolved config is complete."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_config
from vaeray import config as config_mod
from vaeray.errors import ConfigError


def test_resolved_config_fills_every_default():
    cfg = config_mod.validate(tiny_config())
    assert cfg["model"]["likelihood"] == "bernoulli"  # VAE default
    assert cfg["train"]["optimizer"] == "adam" and cfg["train"]["betas"] == [0.9, 0.999]
    assert cfg["eval"] == {"every": None, "metrics": {}}
    # validating the resolved config again is a fixed point (it is what checkpoints store)
    assert config_mod.validate(cfg) == cfg


@pytest.mark.parametrize(
    "mutate, path, words",
    [
        (lambda c: c["model"].update(name="vea"), "model.name", "did you mean 'vae'"),
        (lambda c: c["model"].update(latnet_dim=3), "model.latnet_dim", "did you mean 'latent_dim'"),
        (lambda c: c["model"].update(latent_dim="three"), "model.latent_dim", "expected an integer"),
        (lambda c: c["model"].update(latent_dim=0), "model.latent_dim", "must be >= 1"),
        (lambda c: c["model"].update(likelihood="poisson"), "model.likelihood", "not allowed"),
        (lambda c: c["train"].update(lr=-1.0), "train.lr", "must be > 0"),
        (lambda c: c["train"].update(steps=1.5), "train.steps", "expected an integer"),
        (lambda c: c["train"].update(betas=[0.9]), "train.betas", "expected 2 values"),
        (lambda c: c["data"].update(name="dsprits"), "data.name", "unknown dataset"),
        (lambda c: c.update(trian={}), "trian", "did you mean 'train'"),
        (lambda c: c.update(seed="x"), "seed", "expected an integer"),
        (lambda c: c.pop("model"), "model", "required section"),
    ],
)
def test_errors_name_the_key_path(mutate, path, words):
    cfg = tiny_config()
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        config_mod.validate(cfg, source="run.yaml")
    msg = str(e.value)
    assert msg.startswith(f"run.yaml: {path}: "), msg
    assert words in msg and "\n" not in msg


def test_yaml_scientific_notation_and_overrides(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text(
        "model: {name: vae, latent_dim: 3, net: mlp, hidden: [8]}\n"
        "data: test_squares\n"
        "train: {lr: 1e-3, steps: 10}\n"
    )
    cfg = config_mod.load(str(f), ["train.lr=2e-4", "model.latent_dim=5", "train.betas=[0.5, 0.9]"])
    assert cfg["train"]["lr"] == pytest.approx(2e-4) and isinstance(cfg["train"]["lr"], float)
    assert cfg["model"]["latent_dim"] == 5 and cfg["data"] == {"name": "test_squares", "noise": 0.0}
    assert cfg["train"]["betas"] == [0.5, 0.9]
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        config_mod.load(str(f), ["train.lr"])


def test_broken_yaml_is_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: {name: vae\ndata: x\n")
    with pytest.raises(ConfigError) as e:
        config_mod.load(str(f))
    assert str(e.value).startswith(f"{f}: line ") and "\n" not in str(e.value)


def test_optional_ranged_value_reports_the_range():
    cfg = tiny_config(train={"grad_clip": 0.0})
    with pytest.raises(ConfigError, match=r"train.grad_clip: 0.0 is out of range: must be > 0"):
        config_mod.validate(cfg)
