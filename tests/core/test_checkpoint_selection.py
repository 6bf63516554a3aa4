"""Checkpoint selection on a validation metric (train.early_stop_metric; the DVAE# protocol): the weights fit
ends on are those of the best validation value, not the last; the selection survives a checkpoint round trip and
a resume; old checkpoints without it still load; bad settings are one-line ConfigErrors."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import Squares, run_inprocess, tiny_config
from vaeray import checkpoint as ckpt
from vaeray.config import validate
from vaeray.errors import ConfigError
from vaeray.metrics.common import seeded
from vaeray.models.base import Model
from vaeray.registry import DATASETS, METRICS, MODELS

TARGET = 12.0


class ValidSquares(Squares):
    splits = ("train", "valid")


class Walker(Model):
    """A deterministic toy: one parameter θ, loss −θ, so SGD with lr 1 puts θ at the step number; its
    log-likelihood is −(θ − target)² for every example, so the validation NLL at step s is (s − target)²."""

    batch_fields = ("x",)

    def __init__(self, observation_shape, dataset_size=None, target: float = TARGET):
        super().__init__(observation_shape, dataset_size)
        self.theta = torch.nn.Parameter(torch.zeros(()))
        self.target = target

    def loss(self, batch, step):
        return {"loss": -self.theta}

    def log_likelihood(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        return -(self.theta.detach() - self.target).pow(2).expand(x.shape[0])


@seeded
def goalless(dataset, log_likelihood, *, seed: int = 0) -> dict[str, float]:
    return {"goalless": 0.0}


if "test_valid_squares" not in DATASETS:
    DATASETS.register("test_valid_squares")(ValidSquares)
    MODELS.register("test_walker")(Walker)


def config(steps: int = 20, **train) -> dict:
    cfg = tiny_config(
        data={"name": "test_valid_squares"},
        train={"steps": steps, "optimizer": "sgd", "lr": 1.0, "log_every": 5, "checkpoint_every": 5,
               "early_stop_every": 5, "early_stop_patience": None, "early_stop_metric": {"nll": {"k": 1}}, **train},
        eval={"metrics": {"nll": {"k": 1}}},
    )
    cfg["model"] = {"name": "test_walker"}
    return cfg


def run(cfg, checkpoint=None):
    from vaeray.train import fit

    rows, states = [], []
    fit(cfg, checkpoint=checkpoint, report=lambda m, s: (rows.append(m), states.append(s)))
    return rows, states


def test_selected_weights_are_the_best_validation_not_the_last():
    rows, states = run(config())
    # θ = step; validations at 5, 10, 15, 20 measure (θ − 12)²: best at step 10, never stopped
    assert [r["valid_nll"] for r in rows] == [(s - TARGET) ** 2 for s in (5, 10, 15, 20)]
    assert [float(s["model"]["theta"]) for s in states[:3]] == [5.0, 10.0, 15.0]
    final = rows[-1]
    assert final["step"] == 20 and final["stopped_early"] == 0.0
    assert final["valid_best_step"] == 10 and final["valid_nll_best"] == 4.0
    best = min(range(4), key=lambda i: rows[i]["valid_nll"])
    assert torch.equal(states[-1]["model"]["theta"], states[best]["model"]["theta"])  # restored: θ = 10, not 20
    assert final["nll"] == 4.0  # the final evaluation ran on the selected weights
    saved = states[-1]["early_stopping"]
    assert saved["best_step"] == 10 and float(saved["best_state"]["theta"]) == 10.0


def test_patience_with_a_lower_is_better_metric_stops():
    rows, _ = run(config(early_stop_patience=1))
    assert rows[-1]["step"] == 15 and rows[-1]["stopped_early"] == 1.0 and rows[-1]["valid_best_step"] == 10


def test_resume_keeps_the_selected_best_weights():
    _, states = run(config())
    at15 = ckpt.loads(ckpt.dumps(states[2]), "step15.ckpt")  # through the file format (SHA-256, weights only)
    assert at15["early_stopping"]["best_step"] == 10
    rows, resumed = run(config(), checkpoint=at15)
    assert rows[-1]["valid_best_step"] == 10 and float(resumed[-1]["model"]["theta"]) == 10.0
    # a checkpoint written before the selection was persisted still loads; it can only select after the resume
    old = {k: v for k, v in at15.items() if k != "early_stopping"}
    rows, resumed = run(config(), checkpoint=old)
    assert rows[-1]["valid_best_step"] == 20 and float(resumed[-1]["model"]["theta"]) == 20.0
    # a selection made under another criterion is not comparable and is ignored (the ELBO here is θ: max at 20)
    rows, resumed = run(config(early_stop_metric="elbo"), checkpoint=at15)
    assert rows[-1]["valid_best_step"] == 20 and rows[-1]["valid_elbo_best"] == 20.0


def test_elbo_remains_the_default_and_a_bare_metric_name_takes_its_defaults():
    cfg = validate(tiny_config())
    assert cfg["train"]["early_stop_metric"] == "elbo" and cfg["train"]["early_stop_patience"] == 50
    cfg = validate(config(early_stop_metric="dvae_nll"))
    assert cfg["train"]["early_stop_metric"] == {"dvae_nll": {"k": 4000, "num_examples": None, "batch_size": 100}}


@pytest.mark.parametrize(
    "train, match",
    [
        ({"early_stop_metric": "bogus"}, "neither 'elbo' nor a metric"),
        ({"early_stop_metric": {"nll": {"k": 0}}}, "out of range"),
        ({"early_stop_metric": {"nll": {"kk": 3}}}, "kk"),
        ({"early_stop_metric": {"nll": {}, "mig": {}}}, "got 2 entries"),
        ({"early_stop_metric": {"test_goalless": {}}}, "declares no direction"),
        ({"early_stop_metric": [1]}, "expected"),
        ({"early_stop_every": None}, "early_stop_every is set"),
        ({"early_stop_examples": 10}, "elbo criterion only"),
        ({"early_stop_patience": 0}, "out of range"),
    ],
)
def test_bad_selection_settings_are_config_errors(train, match, monkeypatch):
    monkeypatch.setitem(METRICS._entries, "test_goalless", goalless)  # registered only here: tests that
    # iterate over every metric (test_registry) must not see it
    with pytest.raises(ConfigError, match=match):
        validate(config(**train))


def test_bad_value_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    code, _, err = run_inprocess(
        monkeypatch, capsys, "train", str(path), "--set", "train.early_stop_metric=bogus", "--run-dir", str(tmp_path / "run")
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "early_stop_metric" in err
