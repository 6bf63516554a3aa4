"""A tiny ground-truth dataset for the report tests, imported by the test process and by Ray workers
(sweep files list it under ``sweep.imports``). 32x32 binary images of a 12x12 square at 6x6 positions: two
factors (row, column), so MIG and the disentanglement–likelihood figures have something to measure, at the
smallest size the Burgess conv net of the shipped study accepts. ``reporttest_grid_groups`` is the same grid
grouped by row (the study's ``*_groups`` datasets with ``group_size: null``), so ml_vae can join the study."""

from __future__ import annotations

import numpy as np
import torch

from vaeray.data.base import GroundTruthDataset
from vaeray.data.groups import FactorGroups
from vaeray.registry import DATASETS


class BlobGrid(GroundTruthDataset):
    factor_names = ("row", "column")
    factor_sizes = (6, 6)
    factor_values = (np.arange(6.0), np.arange(6.0))
    observation_shape = (1, 32, 32)
    binary = True

    def __init__(self, data_dir=None, split: str = "train", device: str = "cpu"):
        images = torch.zeros(36, 1, 32, 32)
        for k in range(36):  # row-major over (row, column): index = 6 * row + column
            r, c = divmod(k, 6)
            images[k, 0, 4 * r : 4 * r + 12, 4 * c : 4 * c + 12] = 1.0
        self.images = images.to(device)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return 36

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index.to(self.device)]

    def to(self, device):
        super().to(device)
        self.images = self.images.to(self.device)
        return self


if "reporttest_grid" not in DATASETS:
    DATASETS.register("reporttest_grid")(BlobGrid)


class BlobGridGroups(FactorGroups, BlobGrid):
    def __init__(self, data_dir=None, split: str = "train", device: str = "cpu", group_size: int | None = None):
        super().__init__(data_dir, split, device)
        self.init_factor_groups(["row"], group_size)


if "reporttest_grid_groups" not in DATASETS:
    DATASETS.register("reporttest_grid_groups")(BlobGridGroups)
