"""TVAE on CUDA (skipped without one): the grouper, the batched sequence ops and the loss agree with the CPU."""

from __future__ import annotations

import pytest
import torch

from vaeray.data.base import Batch
from vaeray.data.sequence_ops import colourise, perspective, rotate_scale
from vaeray.models.grouper import Grouper
from vaeray.registry import MODELS, load_all

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
load_all()


@pytest.mark.parametrize("kind,kw", [("shifting", {"k_time": 13, "n_off_diag": 1}),
                                     ("stationary", {"k_time": 5, "k_space": 3}), ("torus", {"k_space": 5})])
def test_grouper_on_cuda_equals_cpu(kind, kw):
    u2 = torch.rand(8, 18, 1 if kind == "torus" else 18, 324 if kind == "torus" else 18, dtype=torch.float64)
    g = Grouper(kind, **kw)
    torch.testing.assert_close(g(u2.cuda()).cpu(), g(u2))


def test_sequence_ops_on_cuda_equal_cpu():
    x = torch.rand(36, 1, 28, 28, dtype=torch.float64)
    angle, scale, hue = (torch.rand(36, dtype=torch.float64) * c for c in (360.0, 1.0, 6.0))
    scale = scale + 0.6
    for f, args in ((rotate_scale, (angle, scale)), (perspective, (angle,)), (colourise, (hue,))):
        torch.testing.assert_close(f(x.cuda(), *(a.cuda() for a in args)).cpu(), f(x, *args), atol=1e-9, rtol=0)


def test_tvae_on_cuda_represents_like_cpu_and_trains():
    torch.manual_seed(0)
    m = MODELS.build({"name": "tvae"}, "model", observation_shape=(18, 3, 28, 28)).double()
    x = torch.rand(2, 18, 3, 28, 28, dtype=torch.float64)
    cpu = m.represent(x)  # deterministic: posterior means through the grouper
    m.cuda()
    torch.testing.assert_close(m.represent(x.cuda()).cpu(), cpu, rtol=1e-9, atol=1e-9)
    loss = m.loss(Batch(x=x.cuda()), 0)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and m.mu.grad is not None and torch.isfinite(m.mu.grad)
    assert m.log_likelihood(x.cuda(), k=4).shape == (2,)
    assert m.represent(x.cuda(), untrained=True).is_cuda
