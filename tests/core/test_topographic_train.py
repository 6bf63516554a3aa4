"""The Topographic VAE through the one training loop: SGD with momentum (the paper's optimiser) and
`vaeray train` on real MNIST rotation sequences."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import run_inprocess, shared_data_dir
from vaeray import config as config_mod
from vaeray.errors import ConfigError
from vaeray.metrics.equivariance import random_capsule_error
from vaeray.models.base import Model
from vaeray.train import make_optimizers


class Quadratic(Model):
    def __init__(self):
        super().__init__((1,))
        self.w = torch.nn.Parameter(torch.tensor([1.0]))


def test_sgd_momentum_is_a_train_setting():
    tc = config_mod.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9)
    (opt,) = make_optimizers(Quadratic(), tc).values()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    m = Quadratic()
    (opt,) = make_optimizers(m, tc).values()
    for _ in range(2):  # heavy-ball: v1 = g, v2 = 0.9 v1 + g; gradient of w²/2 is w
        opt.zero_grad()
        (0.5 * m.w**2).sum().backward()
        opt.step()
    # w1 = 1 − 0.1·1 = 0.9; v2 = 0.9·1 + 0.9 = 1.8; w2 = 0.9 − 0.18 = 0.72
    assert m.w.item() == pytest.approx(0.72)
    with pytest.raises(ConfigError, match="train.momentum"):
        config_mod.validate({"model": {"name": "vae"}, "data": {"name": "test_squares"}, "train": {"momentum": -1}})


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("the shared real-data folder (../shared/data) is not present")
    root = tmp_path_factory.mktemp("mnist")
    (root / "MNIST" / "raw").mkdir(parents=True)
    for gz in (shared / "mnist").glob("*.gz"):
        (root / "MNIST" / "raw" / gz.name).symlink_to(gz.resolve())
    return root


def test_vaeray_train_on_mnist_rotation_sequences_lowers_the_loss(tmp_path, mnist_dir, monkeypatch, capsys):
    cfg = {
        "seed": 0,
        "model": {"name": "tvae", "n_caps": 6, "cap_dim": 6, "k_time": 3, "n_off_diag": 1, "mu_init": 5.0,
                  "net": "mlp", "hidden": [128]},
        "data": {"name": "mnist_sequences", "n_transforms": 6, "transforms": "rotation", "limit": 300},
        "train": {"steps": 150, "batch_size": 8, "lr": 2e-3, "log_every": 25, "checkpoint_every": 150,
                  "device": "cpu"},
        "eval": {"metrics": {"equivariance": {"num_sequences": 16}, "sequence_nll": {"k": 3, "num_sequences": 8}}},
    }
    f = tmp_path / "tvae.yaml"
    f.write_text(yaml.safe_dump(cfg))
    run_dir = tmp_path / "run"
    code, _, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run_dir),
                                 "--data-dir", str(mnist_dir), "--no-progress")
    assert code == 0, err
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [25, 50, 75, 100, 125, 150]
    assert rows[-1]["loss"] < 0.7 * rows[0]["loss"]  # nats per frame; measured 774 -> 394
    last = rows[-1]
    assert last["equivariance_error_random"] == pytest.approx(random_capsule_error(6, 6, 6))
    assert all(k in last for k in ("equivariance_error", "equivariance_error_untrained", "sequence_nll_frame"))
    # `vaeray eval` rebuilds the run's own initial model, so the untrained baseline is the same number
    code, _, err = run_inprocess(monkeypatch, capsys, "eval", str(run_dir), "--data-dir", str(mnist_dir))
    assert code == 0, err
    again = json.loads((run_dir / "eval.json").read_text())
    for key in ("equivariance_error", "equivariance_error_untrained"):
        assert again[key] == pytest.approx(last[key], rel=1e-6)


def test_resuming_a_tvae_run_equals_not_stopping():
    """Random sequence draws come from the checkpointed torch RNG, so stop + resume changes nothing."""
    from tests.metrics.test_topographic_equivariance import IndexSequences
    from vaeray.train import fit

    cfg = {
        "seed": 3,
        "model": {"name": "tvae", "n_caps": 2, "cap_dim": 5, "k_time": 3, "net": "mlp", "hidden": [8],
                  "mu_init": 2.0},
        "data": {"name": "dsprites_sequences", "n_transforms": 15},
        "train": {"steps": 20, "batch_size": 4, "optimizer": "sgd", "lr": 1e-2, "momentum": 0.9, "log_every": 10,
                  "checkpoint_every": 10, "device": "cpu"},
    }
    data = IndexSequences()
    states = []
    # deep copies: a state handed to report shares the optimizer's buffers, which training then mutates
    fit(cfg, dataset=data, report=lambda m, s: s is not None and states.append(copy.deepcopy(s)))
    straight, half = states[-1], states[0]
    resumed = []
    fit(cfg, dataset=data, checkpoint=half, report=lambda m, s: s is not None and resumed.append(s))
    assert half["step"] == 10 and resumed[-1]["step"] == 20
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed[-1]["model"][k]), k
