"""Fixtures shared by every test module: a tiny ground-truth dataset and the shared real-data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeray.data.base import GroundTruthDataset
from vaeray.registry import DATASETS

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``shared/data`` beside the checkout (where CI puts it), or ``$VAERAY_SHARED_DATA``."""
    env = os.environ.get("VAERAY_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("the shared real-data folder (../shared/data) is not present")
    return path


class Squares(GroundTruthDataset):
    """White squares on black, 1×32×32: factors size (2), x (4), y (4). Small enough to enumerate."""

    factor_names = ("size", "x", "y")
    factor_sizes = (2, 4, 4)
    factor_values = (np.array([4, 8]), np.arange(4) * 6 + 2, np.arange(4) * 6 + 2)
    observation_shape = (1, 32, 32)
    binary = True

    def __init__(self, data_dir=None, split: str = "train", device: str = "cpu", noise: float = 0.0):
        grid = self.factors_from_index(np.arange(int(np.prod(self.factor_sizes))))
        imgs = torch.zeros(len(grid), *self.observation_shape)
        for i, (s, x, y) in enumerate(grid):
            px, py, w = self.factor_values[1][x], self.factor_values[2][y], self.factor_values[0][s]
            imgs[i, 0, py : py + w, px : px + w] = 1.0
        self.images = imgs
        self.device = torch.device("cpu")
        self.to(device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index]

    def to(self, device):
        super().to(device)
        self.images = self.images.to(self.device)
        return self


if "test_squares" not in DATASETS:
    DATASETS.register("test_squares")(Squares)


def tiny_config(**over) -> dict:
    """A run config that trains in well under a second on CPU."""
    cfg = {
        "seed": 0,
        "model": {"name": "vae", "latent_dim": 3, "net": "mlp", "hidden": [32]},
        "data": {"name": "test_squares"},
        "train": {"steps": 20, "batch_size": 16, "lr": 1e-3, "log_every": 5, "checkpoint_every": 10},
    }
    for key, value in over.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and key in cfg else value
    return cfg


def run_inprocess(monkeypatch, capsys, *args):
    """Run ``vaeray ARGS`` through the console entry point in this process: (exit code, stdout, stderr)."""
    from vaeray import cli

    monkeypatch.setattr(sys, "argv", ["vaeray", *args])
    with pytest.raises(SystemExit) as e:
        cli.run()
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err
