"""Registrations for the sweep tests, imported by the test process *and* by Ray workers.

A sweep file lists this module under ``sweep.imports``; that is how a researcher's own models and datasets
reach the workers too, so the tests exercise the real mechanism. Names start with ``sweeptest_``.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

import torch

from vaeray.data.base import TensorDataset
from vaeray.models.gaussian import VAE
from vaeray.registry import DATASETS, MODELS
from vaeray.schema import Range


class Blobs(TensorDataset):
    """``size`` binary 8x8 images of a 3x3 blob at one of 36 positions (a learnable toy, made in ~1 ms)."""

    def __init__(self, data_dir=None, split: str = "train", device: str = "cpu", size: Annotated[int, Range(ge=1)] = 144):
        index = torch.arange(size) % 36
        images = torch.zeros(size, 1, 8, 8, dtype=torch.uint8)
        for i, k in enumerate(index.tolist()):
            r, c = divmod(k, 6)
            images[i, 0, r : r + 3, c : c + 3] = 255
        super().__init__(images.to(device))


class SlowVAE(VAE):
    """A small MLP Gaussian VAE with two test hooks: ``sleep_s`` per step (so a test can act while a trial is
    mid-run without burning the 2 CI cores) and ``nan_after`` (the loss becomes NaN from that step on)."""

    terms = ("loss", "rec", "kl")

    def __init__(
        self,
        observation_shape,
        dataset_size=None,
        latent_dim: Annotated[int, Range(ge=1)] = 2,
        hidden: list[int] = (16,),  # type: ignore[assignment]
        sleep_s: Annotated[float, Range(ge=0)] = 0.0,
        nan_after: int | None = None,
    ):
        super().__init__(observation_shape, dataset_size, latent_dim=latent_dim, net="mlp", hidden=list(hidden))
        self.sleep_s = sleep_s
        self.nan_after = nan_after

    def loss(self, batch, step):
        if self.sleep_s:
            time.sleep(self.sleep_s)
        terms = super().loss(batch, step)
        if self.nan_after is not None and step >= self.nan_after:
            terms["loss"] = terms["loss"] * math.nan
        return terms


if "sweeptest_blobs" not in DATASETS:
    DATASETS.register("sweeptest_blobs")(Blobs)
if "sweeptest_vae" not in MODELS:
    MODELS.register("sweeptest_vae")(SlowVAE)
