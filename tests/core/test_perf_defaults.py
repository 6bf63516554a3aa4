"""``train.optimizer_impl: auto`` (the default) takes torch's fused optimizer kernel where torch has one for every
parameter, without changing what is computed: same losses as the for-loop step to float rounding, resumable
from a checkpoint written by another kernel, and left to torch where a model picks its own kernel or the
parameters have no fused kernel. No timings (benchmarks/bench_families.py measures the speed)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config
from vaeray import config as config_mod
from vaeray import perf
from vaeray.train import build_dataset, build_model, fit, make_optimizers


def test_auto_chooses_fused_where_torch_has_it():
    floats = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))]
    assert perf.optimizer_flags("auto", floats) == {"fused": True}
    assert perf.optimizer_flags("auto", floats, {"foreach": True}) == {}  # the model chose a kernel itself
    assert perf.optimizer_flags("auto", floats, {"eps": 1e-4}) == {"fused": True}  # other settings are no choice
    assert perf.optimizer_flags("auto", [torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))]) == {}
    assert perf.optimizer_flags("auto", []) == {}
    assert perf.optimizer_flags("for_loop", floats) == {"foreach": False}  # explicit settings are kept


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_the_default_builds_fused_optimizers(optimizer):
    cfg = config_mod.validate(tiny_config(train={"optimizer": optimizer}))
    model = build_model(cfg, build_dataset(cfg))
    (opt,) = make_optimizers(model, config_mod.train_config(cfg)).values()
    assert opt.defaults["fused"] is True


def test_fused_default_trains_like_the_for_loop_step_and_resumes_from_it():
    rows = {}
    for impl in ("auto", "for_loop"):
        rows[impl] = []
        fit(tiny_config(train={"optimizer_impl": impl}), report=lambda m, s, r=rows[impl]: r.append(m), device="cpu")
    for a, b in zip(rows["auto"], rows["for_loop"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    states = []
    fit(tiny_config(train={"optimizer_impl": "foreach", "steps": 10}), report=lambda m, s: states.append(s), device="cpu")
    resumed = []
    fit(tiny_config(), checkpoint=states[-1], report=lambda m, s: resumed.append(m), device="cpu")
    assert [r["step"] for r in resumed] == [15, 20]
    assert resumed[-1]["loss"] == pytest.approx(rows["for_loop"][-1]["loss"], rel=1e-4)
