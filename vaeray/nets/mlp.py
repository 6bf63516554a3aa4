"""A plain multilayer perceptron over flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}


class MLP(nn.Module):
    """``in_shape`` (flattened) -> hidden layers -> ``out_shape`` (reshaped); the last layer is linear."""

    def __init__(
        self,
        in_shape: Sequence[int] | int,
        hidden: Sequence[int],
        out_shape: Sequence[int] | int,
        activation: str = "relu",
    ):
        super().__init__()
        self.in_shape = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
        self.out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
        sizes = [math.prod(self.in_shape), *hidden]  # math.prod, not torch: builds on the meta device too
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[: x.dim() - len(self.in_shape)]
        out = self.net(x.reshape(-1, self.net[0].in_features))
        return out.view(*lead, *self.out_shape)
