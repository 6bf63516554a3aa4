"""A test model whose seed 0 is slower than its siblings, so a sweep with seed-grouped early stopping has a
seed paused at a rung for a while (the state in which an interrupted sweep used to go wrong). Imported by the
test process and by Ray workers (``sweep.imports``)."""

from __future__ import annotations

import time
from typing import Annotated

import torch

from vaeray.registry import MODELS
from vaeray.schema import Range

from sweeptest_plugin import SlowVAE


class SeedPacedVAE(SlowVAE):
    """``sleep_s`` per step, times ``slow_factor`` for seed 0 (``fit`` seeds torch with the run's seed)."""

    def __init__(self, observation_shape, dataset_size=None, slow_factor: Annotated[float, Range(ge=1)] = 4.0, **kwargs):
        super().__init__(observation_shape, dataset_size, **kwargs)
        self.slow_factor = slow_factor
        self.pace = self.sleep_s * (slow_factor if torch.initial_seed() == 0 else 1.0)
        self.sleep_s = 0.0

    def loss(self, batch, step):
        time.sleep(self.pace)
        return super().loss(batch, step)


if "reliabilitytest_vae" not in MODELS:
    MODELS.register("reliabilitytest_vae")(SeedPacedVAE)
