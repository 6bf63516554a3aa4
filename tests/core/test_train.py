"""The training loop: determinism, exact resume, per-group gradients, divergence and checkpoint errors."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import tiny_config
from vaeray import checkpoint as ckpt
from vaeray.errors import CheckpointError, DivergenceError
from vaeray.train import _backward, build_dataset, build_model, fit


def run(cfg, checkpoint=None):
    states, rows = [], []

    def report(metrics, state):
        rows.append(metrics)
        if state is not None:
            states.append(state)

    fit(cfg, report=report, checkpoint=checkpoint, device="cpu")
    return rows, states


def test_fit_lowers_the_loss_and_reports_named_terms():
    rows, states = run(tiny_config(train={"steps": 200, "log_every": 20, "checkpoint_every": 100, "lr": 3e-3}))
    assert [r["step"] for r in rows] == list(range(20, 201, 20))
    assert {"loss", "rec", "kl", "step", "lr", "examples_per_s"} <= set(rows[0])
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]
    assert [s["step"] for s in states] == [100, 200]


def test_same_seed_same_run_other_seed_other_run():
    a, _ = run(tiny_config())
    b, _ = run(tiny_config())
    c, _ = run(tiny_config(seed=1))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["loss"] for r in a] != [r["loss"] for r in c]


def test_resume_equals_uninterrupted_training(tmp_path):
    """2N steps == N steps, save to disk, load (weights_only), N more: parameter for parameter, and logs too."""
    cfg = tiny_config(train={"steps": 40, "log_every": 5, "checkpoint_every": 20})
    full_rows, full_states = run(cfg)
    half_cfg = tiny_config(train={"steps": 20, "log_every": 5, "checkpoint_every": 20})
    _, half_states = run(half_cfg)
    ckpt.save(half_states[-1], tmp_path / "c.pt")
    restored = ckpt.load(tmp_path / "c.pt")
    resumed_rows, resumed_states = run(cfg, checkpoint=restored)
    final, resumed = full_states[-1]["model"], resumed_states[-1]["model"]
    assert final.keys() == resumed.keys()
    for k in final:
        assert torch.equal(final[k], resumed[k]), k
    assert [r["loss"] for r in resumed_rows] == [r["loss"] for r in full_rows if r["step"] > 20]
    # and the run really moved: the halfway parameters differ from the final ones
    assert any(not torch.equal(final[k], half_states[-1]["model"][k]) for k in final)


def test_checkpoint_mismatch_and_corruption(tmp_path):
    _, states = run(tiny_config())
    other = tiny_config(model={"latent_dim": 4})
    with pytest.raises(CheckpointError):
        run(other, checkpoint=states[-1])
    bad = tmp_path / "bad.pt"
    ckpt.save(states[-1], bad)
    bad.write_bytes(bad.read_bytes()[:200])  # truncated, as after a crash of a non-atomic writer
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        ckpt.load(bad)


def test_nan_loss_raises_one_line_divergence_error():
    cfg = tiny_config(train={"lr": 1e30, "steps": 50, "log_every": 5})
    with pytest.raises(DivergenceError) as e:
        run(cfg)
    assert "diverged at step" in str(e.value) and "\n" not in str(e.value)


def test_backward_keeps_groups_apart():
    """Each loss only reaches its own group's parameters, even when the graph connects them."""
    a = torch.nn.Parameter(torch.tensor(2.0))
    b = torch.nn.Parameter(torch.tensor(3.0))
    terms = {"loss": a * b, "aux": (a * b) ** 2}
    _backward(terms, {"loss": [a], "aux": [b]}, None)
    assert a.grad == pytest.approx(3.0)  # d(ab)/da, nothing from aux
    assert b.grad == pytest.approx(2 * 6.0 * 2.0)  # d(ab)^2/db = 2ab·a, nothing from loss


def test_model_is_built_from_dataset_shape():
    cfg = tiny_config()
    from vaeray.config import validate

    cfg = validate(cfg)
    data = build_dataset(cfg)
    model = build_model(cfg, data)
    assert model.observation_shape == (1, 32, 32) and model.dataset_size == 32
    x = data.batch(torch.arange(4)).x
    assert model.represent(x).shape == (4, 3)
    ll = model.log_likelihood(x, k=8)
    assert ll.shape == (4,) and torch.isfinite(ll).all() and math.isfinite(float(ll.mean()))


def test_eval_every_reports_metrics_on_eval_steps_and_at_the_end():
    cfg = tiny_config(train={"steps": 20, "log_every": 5}, eval={"every": 10, "metrics": {"mig": {"num_train": 64}}})
    rows, _ = run(cfg)
    with_mig = [r["step"] for r in rows if "mig" in r]
    assert with_mig == [10, 20] and all(0.0 <= r["mig"] <= 1.0 for r in rows if "mig" in r)
    assert [r["step"] for r in rows] == [5, 10, 15, 20]


def test_batch_factors_match_the_numpy_mapping():
    from tests.conftest import Squares

    data = Squares()
    index = torch.randint(len(data), (50,))
    batch = data.batch(index)
    assert torch.equal(batch.factors, torch.as_tensor(data.factors_from_index(index.numpy())))


def test_reported_states_are_snapshots_not_views():
    """A state kept in memory resumes like one saved to disk: the optimizer's moment buffers in it do not
    move with later steps (``Optimizer.state_dict()`` alone returns the live buffers)."""
    cfg = tiny_config(train={"steps": 40, "log_every": 5, "checkpoint_every": 20})
    full_rows, full_states = run(cfg)
    in_memory = full_states[0]  # taken at step 20, held while 20 more steps ran
    resumed_rows, resumed_states = run(cfg, checkpoint=in_memory)
    for k, v in full_states[-1]["model"].items():
        assert torch.equal(v, resumed_states[-1]["model"][k]), k
    assert [r["loss"] for r in resumed_rows] == [r["loss"] for r in full_rows if r["step"] > 20]
