"""The convolutional encoder/decoder of Burgess et al. (2018), "Understanding disentangling in β-VAE", §A.

Encoder: 4 conv layers of 32 channels, 4×4 kernels, stride 2 (64→32→16→8→4), then dense 256, dense 256 and a
linear map to the output (2×latent for a Gaussian posterior). The 32×32 variant for MNIST-family data drops the
first conv layer (32→16→8→4), as disentangling-vae does. The decoder mirrors it with transposed convolutions and
ends in raw outputs (logits or means): the likelihood, not the net, decides the output non-linearity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

HIDDEN = 32
DENSE = 256
# The ReLUs are in place: each overwrites the conv/linear output it follows (whose backward does not need it),
# so a step allocates a quarter fewer activation bytes (docs/benchmarks.md); the parameters are unchanged.


def _n_convs(size: int) -> int:
    if size not in (32, 64):
        raise ValueError(f"the Burgess net takes 32×32 or 64×64 images, got {size}×{size}")
    return 4 if size == 64 else 3


class BurgessEncoder(nn.Module):
    def __init__(self, observation_shape: Sequence[int], out_dim: int):
        super().__init__()
        channels, size, width = observation_shape
        if size != width:
            raise ValueError(f"the Burgess net takes square images, got {size}×{width}")
        layers: list[nn.Module] = []
        c = channels
        for _ in range(_n_convs(size)):
            layers += [nn.Conv2d(c, HIDDEN, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c = HIDDEN
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(HIDDEN * 4 * 4, DENSE),
            nn.ReLU(inplace=True),
            nn.Linear(DENSE, DENSE),
            nn.ReLU(inplace=True),
            nn.Linear(DENSE, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(x))  # (B, out_dim)


class BurgessDecoder(nn.Module):
    def __init__(self, latent_dim: int, observation_shape: Sequence[int]):
        super().__init__()
        channels, size, _ = observation_shape
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, DENSE),
            nn.ReLU(inplace=True),
            nn.Linear(DENSE, DENSE),
            nn.ReLU(inplace=True),
            nn.Linear(DENSE, HIDDEN * 4 * 4),
            nn.ReLU(inplace=True),
        )
        n = _n_convs(size)
        layers: list[nn.Module] = []
        for i in range(n):
            last = i == n - 1
            layers.append(nn.ConvTranspose2d(HIDDEN, channels if last else HIDDEN, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.dense(z.reshape(-1, z.shape[-1])).view(-1, HIDDEN, 4, 4)
        out = self.deconvs(h)  # (N, C, H, W)
        return out.view(*lead, *out.shape[1:])
