"""The encoder/decoder structures of the DVAE# experiments (Vahdat, Andriyash & Macready 2018, Sec. 5 and App.):

| structure        | latent levels × units | hidden layers (per encoder level, and decoder) |
|------------------|-----------------------|-------------------------------------------------|
| ``1-layer-lin``    | 1 × 200               | none (linear)                                   |
| ``1-layer-nonlin`` | 1 × 200               | 2 × 200 tanh                                    |
| ``2-layer-nonlin`` | 2 × 200               | 2 × 200 tanh                                    |
| ``4-layer-nonlin`` | 4 × 100               | 2 × 200 tanh                                    |

The encoder is autoregressive over levels: level i is a network on ``concat(x − mean_x, ζ_1 … ζ_{i−1})``
giving the logits of its units (and, for the Gaussian-integral relaxation, a second head for the shift). The
decoder is one network on all ζ whose output logits get the data's log-odds ``logit(clip(mean_x, 1e-3, 1 − 1e-3))``
added, so an untrained model already predicts the base rate. Hidden layers: He-initialised dense, batch norm
(PyTorch momentum 0.2 = TensorFlow's 0.8, eps 1e-2), tanh.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

STRUCTURES: dict[str, tuple[int, int, int]] = {  # name -> (levels, units per level, hidden layers)
    "1-layer-lin": (1, 200, 0),
    "1-layer-nonlin": (1, 200, 2),
    "2-layer-nonlin": (2, 200, 2),
    "4-layer-nonlin": (4, 100, 2),
}


def dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")  # variance scaling, fan-in
    nn.init.zeros_(layer.bias)
    return layer


class Net(nn.Sequential):
    """``n_in`` -> ``layers`` × (dense, batch norm, tanh) of width ``hidden`` -> dense ``n_out``."""

    def __init__(self, n_in: int, n_out: int, layers: int, hidden: int):
        mods: list[nn.Module] = []
        for _ in range(layers):
            mods += [dense(n_in, hidden), nn.BatchNorm1d(hidden, eps=1e-2, momentum=0.2), nn.Tanh()]
            n_in = hidden
        mods.append(dense(n_in, n_out))
        super().__init__(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)


class HierarchicalEncoder(nn.Module):
    """One :class:`Net` per latent level; level i sees the centred input and the samples of levels < i."""

    def __init__(self, n_x: int, levels: int, units: int, layers: int, hidden: int, heads: int = 1):
        super().__init__()
        self.units, self.heads = units, heads
        self.levels = nn.ModuleList(Net(n_x + i * units, heads * units, layers, hidden) for i in range(levels))

    def level(self, i: int, x_centred: torch.Tensor, previous: Sequence[torch.Tensor]) -> torch.Tensor:
        """Raw outputs ``(..., heads * units)`` of level ``i``."""
        inp = torch.cat([x_centred, *previous], -1) if previous else x_centred
        return self.levels[i](inp)


class Decoder(nn.Module):
    """All latents -> Bernoulli logits over the ``n_x`` pixels, plus the data log-odds as a fixed bias."""

    def __init__(self, n_z: int, n_x: int, layers: int, hidden: int, data_mean: torch.Tensor):
        super().__init__()
        self.net = Net(n_z, n_x, layers, hidden)
        self.register_buffer("output_bias", torch.logit(data_mean.clamp(1e-3, 1 - 1e-3)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z) + self.output_bias
