"""A small ground-truth dataset and representation functions for the metric property tests.

``ToyFactors`` lays out every combination of its factors on the grid (row-major, as the data contract says);
an observation is the vector of its factor classes scaled to [0, 1], so ``represent`` functions can build
any code from the factors exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaeray.data.base import GroundTruthDataset


class ToyFactors(GroundTruthDataset):
    def __init__(self, factor_sizes: tuple[int, ...] = (3, 6, 10, 8)):
        self.factor_sizes = tuple(factor_sizes)
        self.factor_names = tuple(f"f{k}" for k in range(len(factor_sizes)))
        self.observation_shape = (len(factor_sizes),)

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        factors = self.factors_from_index(index.cpu().numpy())
        scale = np.maximum(np.asarray(self.factor_sizes) - 1, 1)
        return torch.as_tensor(factors / scale, dtype=torch.float32, device=self.device)


@pytest.fixture
def toy() -> ToyFactors:
    return ToyFactors()


@pytest.fixture
def make_toy() -> type[ToyFactors]:
    """The class itself, for tests that need other factor sizes (imported through a fixture, not by module
    name, because tests/conftest.py is also a module called ``conftest``)."""
    return ToyFactors


@pytest.fixture
def identity():
    return lambda x: x.clone()


@pytest.fixture
def permuted():
    """Codes = factors permuted, rescaled and shifted (one with a sign flip): still one code per factor."""
    perm = torch.tensor([2, 0, 3, 1])
    scale = torch.tensor([3.0, -0.5, 2.0, 7.0])
    return lambda x: x[:, perm] * scale + 1.0


@pytest.fixture
def constant():
    return lambda x: torch.zeros(x.shape[0], 4)


@pytest.fixture
def noise():
    """Codes independent of the observation (torch's RNG, pinned by the metric's seed)."""
    return lambda x: torch.randn(x.shape[0], 4)
