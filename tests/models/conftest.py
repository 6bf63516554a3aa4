"""Fixtures for the disentangling-model tests: a 64×64 ground-truth dataset and small run configs.

``test_sprites64`` is a dSprites-like stand-in small enough for unit tests (dSprites itself has 737,280
images), at the resolution of the Burgess net's 4-conv path: white squares on black, factors
scale (3) × x (6) × y (6) = 108 images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import Squares
from vaeray.registry import DATASETS

FAMILY = ("vae", "beta_vae_h", "beta_vae_b", "factor_vae", "beta_tcvae")


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one intra-op thread is as fast as two, and far faster when the cores are shared
    (OpenMP workers spin at every barrier while another process holds the core). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Sprites64(Squares):
    """Binary 1×64×64 squares; side 8/12/16 pixels, top-left corner on a 6×6 grid (8 px apart)."""

    factor_names = ("scale", "x", "y")
    factor_sizes = (3, 6, 6)
    factor_values = (np.array([8, 12, 16]), np.arange(6) * 8 + 4, np.arange(6) * 8 + 4)
    observation_shape = (1, 64, 64)

    def __init__(self, data_dir=None, split: str = "train", device: str = "cpu"):
        super().__init__(data_dir, split, device)


if "test_sprites64" not in DATASETS:
    DATASETS.register("test_sprites64")(Sprites64)


def run_config(model: str, steps: int = 300, seed: int = 0, **model_args) -> dict:
    """A small run config for ``model`` on ``test_sprites64`` with an MLP (fast on 2 CPU cores)."""
    spec = {"name": model, "latent_dim": 4, "net": "mlp", "hidden": [128], **model_args}
    return {
        "seed": seed,
        "model": spec,
        "data": {"name": "test_sprites64"},
        "train": {"steps": steps, "batch_size": 32, "lr": 1e-3, "log_every": 50, "checkpoint_every": steps},
    }
