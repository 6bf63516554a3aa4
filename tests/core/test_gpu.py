"""GPU checks (skipped without CUDA; CI has none): device-resident data and training on the GPU."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_dsprites_fits_the_per_trial_device_budget(tmp_path):
    from vaeray.data.dsprites import DSprites

    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    data = DSprites(data_dir=str(tmp_path), device="cuda")
    resident = torch.cuda.memory_allocated() - before
    assert resident <= 512 * 2**20, f"{resident / 2**20:.0f} MiB resident"
    batch = data.batch(torch.randint(len(data), (256,), device="cuda"))
    assert batch.x.is_cuda and batch.x.shape == (256, 1, 64, 64)
    assert set(batch.x.unique().tolist()) <= {0.0, 1.0}


def test_fit_on_cuda_learns_and_its_checkpoint_resumes_on_cpu(tmp_path):
    from vaeray import checkpoint as ckpt
    from vaeray.train import fit

    rows, states = [], []

    def report(metrics, state):
        rows.append(metrics["loss"])
        if state is not None:
            states.append(state)

    fit(tiny_config(train={"steps": 200, "log_every": 20, "checkpoint_every": 100, "lr": 3e-3}), report=report,
        device="cuda")
    assert rows[-1] < 0.8 * rows[0]
    ckpt.save(states[0], tmp_path / "c.pt")
    resumed = []
    fit(tiny_config(train={"steps": 120, "log_every": 20, "checkpoint_every": 100, "lr": 3e-3}),
        report=lambda m, s: resumed.append(m["step"]), checkpoint=ckpt.load(tmp_path / "c.pt"), device="cpu")
    assert resumed == [120]
