"""Reduced precision (``train.autocast``) keeps the science in float32 and a run keeps the precision it started
with: a few hundred bf16 steps track float32's losses, every log-sum-exp of the loss (the MSS estimator's
included) and every loss term is float32 under autocast, evaluation (the importance-sampled NLL) runs in
float32 with autocast on, and ``auto`` is resolved once per run and pinned through resumes. No timings: the
speed is measured by benchmarks/bench_train.py and bench_families.py (docs/benchmarks.md)."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from tests.conftest import tiny_config
from vaeray import config as config_mod
from vaeray import perf
from vaeray.errors import CheckpointError
from vaeray.train import _batch, build_dataset, build_model, evaluate, fit

TCVAE = {"name": "beta_tcvae", "latent_dim": 3, "net": "burgess"}  # convolutions + the MSS estimator


def _fit(train: dict, **kw) -> tuple[list[dict], dict, list[dict]]:
    """(reports, the last checkpoint, the resolved configs ``started`` saw) of a tiny β-TCVAE run on CPU."""
    rows, states, started = [], [], []
    cfg = tiny_config(model=TCVAE, train={"batch_size": 16, "log_every": 50, "checkpoint_every": 10**6, **train})

    def report(m, s):
        rows.append(m)
        if s is not None:
            states.append(s)

    fit(cfg, report=report, device="cpu", started=lambda c, step: started.append(c), **kw)
    return rows, states[-1], started


def test_bf16_tracks_float32_over_hundreds_of_steps():
    """200 steps: every 50-step mean of every loss term in bf16 within 2.5% of float32's, relative to the loss
    (measured: ≤ 0.1% up to step 150, 1.2% at 200, where the two trajectories start to drift apart as any two
    runs that differ in rounding do; docs/performance.md compares this with the spread between seeds)."""
    fp32, _, _ = _fit({"steps": 200, "batch_size": 8})
    bf16, _, _ = _fit({"steps": 200, "batch_size": 8, "autocast": "bf16"})
    assert [r["step"] for r in bf16] == [r["step"] for r in fp32] == [50, 100, 150, 200]
    for got, want in zip(bf16, fp32):
        for term in ("loss", "rec", "kl", "mi", "tc", "dwkl"):
            assert abs(got[term] - want[term]) <= 0.025 * abs(want["loss"]), (want["step"], term, got[term], want[term])
    assert bf16[-1]["loss"] < 0.9 * bf16[0]["loss"]  # and it trains as float32 does


class _LogSumExpDtypes(TorchFunctionMode):
    """Records the dtype of every ``logsumexp`` input (torch.logsumexp and Tensor.logsumexp)."""

    def __init__(self):
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "logsumexp":
            self.dtypes.append(args[0].dtype)
        return func(*args, **(kwargs or {}))


def test_under_autocast_the_loss_math_is_float32():
    cfg = config_mod.validate(tiny_config(model=TCVAE, train={"autocast": "bf16"}))
    data = build_dataset(cfg)
    model = build_model(cfg, data)
    amp = perf.configure_model(model, config_mod.train_config(cfg), torch.device("cpu"))
    nets: list[torch.dtype] = []
    model.decoder.register_forward_hook(lambda m, a, out: nets.append(out.dtype))  # after the float32 cast
    model.encoder.convs[0].register_forward_hook(lambda m, a, out: nets.append(out.dtype))  # inside the net
    mode = _LogSumExpDtypes()
    with mode, amp.autocast():
        terms = model.loss(_batch(data, torch.arange(16), model), 0)
    assert torch.bfloat16 in nets and torch.float32 in nets  # the nets ran in bf16, their outputs came back float32
    assert len(mode.dtypes) >= 2 and set(mode.dtypes) == {torch.float32}  # log q(z), Π_d log q(z_d): MSS sums
    assert all(t.dtype == torch.float32 for t in terms.values())


def test_evaluation_runs_in_float32_with_autocast_on():
    """The NLL of a model configured for bf16 equals, bit for bit, the NLL of the same weights never configured."""
    cfg = config_mod.validate(tiny_config(model=TCVAE, train={"autocast": "bf16"}, eval={"metrics": {
        "nll": {"k": 8, "num_examples": 16, "batch_size": 8}}}))
    data = build_dataset(cfg)
    plain = build_model(cfg, data)
    amp_model = build_model(cfg, data)
    amp_model.load_state_dict(plain.state_dict())
    perf.configure_model(amp_model, config_mod.train_config(cfg), torch.device("cpu"))
    seen: list[torch.dtype] = []
    amp_model.encoder.convs[0].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    torch.manual_seed(1)
    got = evaluate(amp_model, cfg, data, device="cpu")
    torch.manual_seed(1)
    want = evaluate(plain, cfg, data, device="cpu")
    assert seen and set(seen) == {torch.float32}
    assert got["nll"] == want["nll"] and torch.isfinite(torch.tensor(got["nll"]))


@pytest.mark.parametrize("supported,expected", [(True, "bf16"), (False, "off")])
def test_auto_is_resolved_once_and_recorded(monkeypatch, supported, expected):
    monkeypatch.setattr(perf, "cpu_supports_bf16", lambda: supported)
    _, state, started = _fit({"steps": 2, "log_every": 1, "autocast": "auto"})
    assert started[0]["train"]["autocast"] == expected  # what config.yaml / resolved.json record
    assert state["config"]["train"]["autocast"] == expected  # and the checkpoint: a resume keeps it


@pytest.mark.parametrize("first,later", [(True, False), (False, True)])
def test_a_resumed_auto_run_keeps_its_precision_on_other_hardware(monkeypatch, first, later):
    monkeypatch.setattr(perf, "cpu_supports_bf16", lambda: first)
    _, state, _ = _fit({"steps": 4, "log_every": 2, "checkpoint_every": 2, "autocast": "auto"})
    monkeypatch.setattr(perf, "cpu_supports_bf16", lambda: later)  # resumed on a machine that resolves otherwise
    rows, _, started = _fit({"steps": 6, "log_every": 2, "checkpoint_every": 2, "autocast": "auto"}, checkpoint=state)
    assert started[0]["train"]["autocast"] == ("bf16" if first else "off")
    assert [r["step"] for r in rows] == [6]


def test_an_explicit_precision_change_on_resume_is_refused():
    _, state, _ = _fit({"steps": 2, "log_every": 2, "checkpoint_every": 2})
    with pytest.raises(CheckpointError, match="train.autocast cannot change on resume"):
        _fit({"steps": 4, "log_every": 2, "autocast": "bf16"}, checkpoint=state)


def test_a_checkpoint_from_before_pinning_still_resumes(monkeypatch):
    """A checkpoint whose config says ``auto`` (written before runs pinned their precision) resumes as before."""
    _, state, _ = _fit({"steps": 2, "log_every": 2, "checkpoint_every": 2, "autocast": "auto"})
    state["config"]["train"]["autocast"] = "auto"
    rows, _, started = _fit({"steps": 4, "log_every": 2, "autocast": "auto"}, checkpoint=state)
    assert started[0]["train"]["autocast"] == "auto" and [r["step"] for r in rows] == [4]
