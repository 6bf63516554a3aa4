"""Caltech 101 Silhouettes at 28x28 (Marlin, Swersky, Chen & de Freitas, AISTATS 2010), split 1.

Read from ``<data_dir>/caltech101-silhouettes/caltech101_silhouettes_28_split1.mat`` (MATLAB v5):
``train_data`` (4,100 x 784), ``val_data`` (2,264) and ``test_data`` (2,307), uint8 in {0, 1}, with labels
1..101 in ``*_labels``. Each row is a 28x28 image in column-major ('F') order with the object black (0) on
white (1); we transpose to row-major and invert, so the silhouette is 1 on a 0 background, as the
sylvester-flows loader of the product-space S-VAE does (``1 - x``). Labels become 0..100. The file's
``val`` split is our ``valid``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataMissingError
from ..registry import DATASETS
from .base import TensorDataset, resolve_data_dir
from .binarized import check_split, load_mat

CALTECH_URL = "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat"
FILE_KEYS = {"train": "train", "valid": "val", "test": "test"}


@DATASETS.register("caltech_silhouettes")
class CaltechSilhouettes(TensorDataset):
    """Caltech 101 Silhouettes, 1x28x28 in {0, 1} with 101 classes; see the module docstring."""

    splits = ("train", "valid", "test")
    binary = True

    def __init__(self, data_dir: str | None = None, split: str = "train", device: str = "cpu"):
        check_split("caltech_silhouettes", split, self.splits)
        path = resolve_data_dir(data_dir) / "caltech101-silhouettes" / "caltech101_silhouettes_28_split1.mat"
        raw = load_mat(path, f"from {CALTECH_URL}")
        key = FILE_KEYS[split]
        if f"{key}_data" not in raw:
            raise DataMissingError(f"{path} has no variable '{key}_data' (expected uint8 (N, 784))")
        x = np.asarray(raw[f"{key}_data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 784:
            raise DataMissingError(f"{path}: '{key}_data' has shape {x.shape}, expected (N, 784)")
        images = 1 - x.reshape(-1, 28, 28).transpose(0, 2, 1)  # column-major rows; object = 1
        labels = raw.get(f"{key}_labels")
        labels = None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1) - 1)
        super().__init__(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), labels, scale=1.0)
        self.to(device)
