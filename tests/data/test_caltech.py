"""Caltech 101 Silhouettes on the real file: split sizes, {0, 1}, means, labels, orientation and inversion."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaeray.data.caltech import CaltechSilhouettes
from vaeray.errors import DataMissingError

# mean of 1 - x over the file's arrays (shared/data/README.md shapes; means measured on the file)
SPLITS = {"train": (4100, 1 - 0.5510546), "valid": (2264, 1 - 0.5359594), "test": (2307, 1 - 0.5390150)}


@pytest.fixture(scope="module")
def data_dir(shared_data: Path) -> str:
    if not (shared_data / "caltech101-silhouettes").is_dir():
        pytest.skip("shared Caltech silhouettes file absent")
    return str(shared_data)


@pytest.mark.parametrize("split", list(SPLITS))
def test_splits_sizes_values_means_labels(data_dir: str, split: str) -> None:
    ds = CaltechSilhouettes(data_dir=data_dir, split=split)
    n, mean = SPLITS[split]
    assert len(ds) == n and ds.observation_shape == (1, 28, 28) and ds.binary
    assert set(ds.images.unique().tolist()) == {0, 1}
    assert abs(ds.images.float().mean().item() - mean) < 1e-6
    assert ds.labels.shape == (n,) and ds.labels.min() == 0 and ds.labels.max() == 100
    assert len(ds.labels.unique()) == 101


def test_silhouettes_are_ones_on_a_zero_background_and_upright(data_dir: str) -> None:
    ds = CaltechSilhouettes(data_dir=data_dir)
    border = torch.cat([ds.images[:, 0, 0], ds.images[:, 0, -1], ds.images[:, 0, :, 0], ds.images[:, 0, :, -1]], 1)
    assert border.float().mean() < 0.2  # background is 0 after inversion (objects are centred)
    # class 0 is 'Airplanes Side 2': side views are wider than tall (25 x 20 px where the mean exceeds 1/2);
    # reading the rows in C order instead of the file's column-major order would swap the two
    mean = ds.images[ds.labels == 0].float().mean(0)[0] > 0.5
    width, height = mean.any(0).sum().item(), mean.any(1).sum().item()
    assert width >= height + 3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        CaltechSilhouettes(data_dir=str(tmp_path), split="test")
    assert "\n" not in str(err.value)
    assert str(tmp_path / "caltech101-silhouettes" / "caltech101_silhouettes_28_split1.mat") in str(err.value)
