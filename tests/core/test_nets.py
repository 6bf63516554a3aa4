"""The Burgess et al. (2018) architecture: shapes and the exact parameter count of the published layer list."""

from __future__ import annotations

import pytest
import torch

from vaeray.nets import MLP, BurgessDecoder, BurgessEncoder


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_burgess_64_parameter_count_matches_layer_list():
    # 4 conv 32×4×4 (1→32, 3×32→32), dense 512→256→256→20; mirrored decoder 10→256→256→512, 4 deconvs.
    enc, dec = BurgessEncoder((1, 64, 64), 20), BurgessDecoder(10, (1, 64, 64))
    conv = lambda cin, cout: cin * cout * 16 + cout  # noqa: E731
    lin = lambda a, b: a * b + b  # noqa: E731
    assert n_params(enc) == conv(1, 32) + 3 * conv(32, 32) + lin(512, 256) + lin(256, 256) + lin(256, 20)
    assert n_params(dec) == lin(10, 256) + lin(256, 256) + lin(256, 512) + 3 * conv(32, 32) + conv(32, 1)
    assert n_params(enc) + n_params(dec) == 502_005  # the count of the reference Burgess model, z = 10


@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 64, 64), (1, 32, 32)])
def test_burgess_shapes(shape):
    enc, dec = BurgessEncoder(shape, 12), BurgessDecoder(6, shape)
    x = torch.rand(5, *shape)
    assert enc(x).shape == (5, 12)
    assert dec(torch.randn(5, 6)).shape == (5, *shape)
    assert dec(torch.randn(4, 5, 6)).shape == (4, 5, *shape)  # leading sample axis for importance sampling
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == (4 if shape[1] == 64 else 3)


def test_burgess_rejects_other_sizes():
    with pytest.raises(ValueError, match="32×32 or 64×64"):
        BurgessEncoder((1, 28, 28), 4)


def test_mlp_reshapes():
    m = MLP((1, 4, 4), [8, 8], (2, 3))
    assert m(torch.rand(7, 1, 4, 4)).shape == (7, 2, 3)
    assert m(torch.rand(2, 7, 1, 4, 4)).shape == (2, 7, 2, 3)
