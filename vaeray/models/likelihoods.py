"""Observation models p(x|z) built from a decoder's raw output.

All three are proper, normalised densities (or mass functions) summed over pixels, so their negative
log-likelihoods are comparable nats: *bernoulli* (logits; the standard choice for binary data such as
dSprites), *gaussian* and *laplace* with a fixed scale around a mean in [0, 1]. The reference
disentangling-vae code uses ``255·MSE`` and ``3·L1`` instead, which are not likelihoods; the scale here plays
the role of their constants and is a hyperparameter.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.distributions import Bernoulli, Distribution, Independent, Laplace, Normal

LikelihoodName = Literal["bernoulli", "gaussian", "laplace"]


def likelihood(name: str, out: torch.Tensor, event_dims: int, scale: float = 0.1) -> Distribution:
    """Wrap decoder output ``out`` (..., *observation_shape) as an ``Independent`` distribution."""
    if name == "bernoulli":
        # validate_args off: non-binary targets in [0, 1] (greyscale MNIST) are the usual continuous relaxation
        base = Bernoulli(logits=out, validate_args=False)
    elif name == "gaussian":
        base = Normal(torch.sigmoid(out), scale, validate_args=False)
    elif name == "laplace":
        base = Laplace(torch.sigmoid(out), scale, validate_args=False)
    else:
        raise ValueError(f"unknown likelihood '{name}'")
    return Independent(base, event_dims)
