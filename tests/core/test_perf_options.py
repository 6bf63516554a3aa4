"""The per-run speed options (``train.channels_last / autocast / compile / optimizer_impl``) and the hot-path
changes of the training step: each option trains to the same losses as the plain step (exactly where the
arithmetic is the same, within the reduced precision's tolerance where it is not), is validated by the
schema, and the step's cached constants and lean batches equal what they replace. No timings here: the
speed-ups are measured by benchmarks/bench_train.py (docs/benchmarks.md)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Distribution

from tests.conftest import tiny_config
from vaeray import config as config_mod
from vaeray.errors import ConfigError, DivergenceError
from vaeray.models import tc
from vaeray.train import _batch, build_dataset, build_model, fit

# β-TCVAE on the Burgess net (convolutions, so channels_last and autocast have something to act on)
BASE = {"model": {"name": "beta_tcvae", "latent_dim": 3, "net": "burgess"}, "train": {"steps": 4, "batch_size": 8,
        "log_every": 1, "checkpoint_every": 100, "lr": 1e-3}}


def losses(**train) -> list[dict[str, float]]:
    cfg = tiny_config(model=BASE["model"], train={**BASE["train"], **train})
    rows: list[dict[str, float]] = []
    fit(cfg, report=lambda m, s: rows.append(m), device="cpu")
    return rows


@pytest.fixture(scope="module")
def plain():
    return losses()


# (option, value, relative tolerance on every logged term of every step): same arithmetic -> tight
OPTIONS = [
    ("channels_last", True, 1e-4),
    ("optimizer_impl", "foreach", 1e-5),
    ("optimizer_impl", "fused", 1e-4),
    ("optimizer_impl", "for_loop", 1e-5),
    ("compile", "aot_eager", 1e-4),  # the dynamo/AOT path without inductor's C++ build (too slow for a test)
    ("autocast", "bf16", 3e-2),  # 8-bit mantissa in the nets; the loss math stays float32
    ("autocast", "fp16", 1e-2),  # with a GradScaler, which skips the first steps while it calibrates its scale
]


@pytest.mark.parametrize("key,value,rtol", OPTIONS, ids=[f"{k}={v}" for k, v, _ in OPTIONS])
def test_option_trains_to_the_same_losses(plain, key, value, rtol):
    rows = losses(**{key: value})
    assert [r["step"] for r in rows] == [r["step"] for r in plain]
    calibrating = value == "fp16"  # overflowing (skipped) steps are the GradScaler's design: compare step 1
    for got, want in zip(rows[:1] if calibrating else rows, plain):
        for term in ("loss", "rec", "kl", "mi", "tc", "dwkl"):
            assert math.isfinite(got[term])
            scale = max(abs(want[term]), abs(want["rec"]) * 1e-3)  # near-zero terms: relative to the loss scale
            assert abs(got[term] - want[term]) <= rtol * scale, (term, got[term], want[term])
    assert calibrating or rows[-1]["loss"] < rows[0]["loss"]  # and it trains


def test_options_are_checked_by_the_schema():
    good = tiny_config(train={"autocast": "auto", "compile": "inductor", "optimizer_impl": "fused", "channels_last": True})
    assert config_mod.validate(good)["train"]["autocast"] == "auto"
    for key, bad in (("autocast", "fp8"), ("compile", "yes"), ("optimizer_impl", "fast"), ("channels_last", "maybe")):
        with pytest.raises(ConfigError, match=key):
            config_mod.validate(tiny_config(train={key: bad}))


def test_autocast_runs_the_nets_in_bf16_and_the_loss_in_float32():
    from vaeray import perf

    cfg = config_mod.validate(tiny_config(model=BASE["model"], train={"autocast": "bf16"}))
    data = build_dataset(cfg)
    model = build_model(cfg, data)
    amp = perf.configure_model(model, config_mod.train_config(cfg), torch.device("cpu"))
    seen = []
    model.encoder.convs[0].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with amp.autocast():
        terms = model.loss(_batch(data, torch.arange(8), model), 0)
    assert seen == [torch.bfloat16]
    assert all(t.dtype == torch.float32 for t in terms.values())


def test_distribution_checks_are_off_in_the_step_and_restored_after():
    from vaeray import perf

    before = Distribution._validate_args
    with perf.distribution_checks_off():
        assert Distribution._validate_args is False
    assert Distribution._validate_args == before
    fit(tiny_config(), device="cpu")
    assert Distribution._validate_args == before
    # without the checks a divergence is still one clear error, at the next log step
    with pytest.raises(DivergenceError, match="diverged at step 5"):
        fit(tiny_config(train={"lr": 1e30, "steps": 50, "log_every": 5}), device="cpu")


def test_the_mss_weights_are_cached_and_equal_the_fresh_matrix():
    a = tc.log_weights("mss", 16, 1000)
    assert tc.log_weights("mss", 16, 1000) is a  # built once per (estimator, M, N, dtype, device)
    assert torch.equal(a, tc.stratified_weights(16, 1000).log().float())
    assert tc.log_weights("mss", 17, 1000).shape == (17, 17)  # another batch size: another matrix


def test_batches_carry_only_what_the_model_reads():
    cfg = config_mod.validate(tiny_config())
    data = build_dataset(cfg)
    model = build_model(cfg, data)
    index = torch.tensor([0, 5, 31])
    lean, full = _batch(data, index, model), data.batch(index)
    assert torch.equal(lean.x, full.x) and lean.factors is None and full.factors is not None
    model.batch_fields = None  # a model that reads factors gets them
    assert torch.equal(_batch(data, index, model).factors, full.factors)


def test_only_declared_models_get_lean_batches():
    from vaeray.models.disentangle import BetaTCVAE
    from vaeray.models.factor import FactorVAE
    from vaeray.models.gaussian import VAE

    assert VAE.batch_fields == ("x",) and BetaTCVAE.batch_fields == ("x",)

    class ReadsLabels(VAE):  # a subclass that does not declare what it reads gets every field
        pass

    assert ReadsLabels.batch_fields is None and FactorVAE.batch_fields is None
