"""Static and dynamic binarised MNIST on the real files: sizes, {0, 1} values, pixel means, orientation,
per-batch re-binarisation and the fixed held-out binarisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaeray.data.binarized import BinarizedMNIST, DynamicMNIST
from vaeray.data.mnist import MNIST
from vaeray.errors import ConfigError, DataMissingError

STATIC = {"train": (50000, 0.1306), "valid": (10000, 0.1311), "test": (10000, 0.1325)}  # shared/data/README.md


@pytest.fixture(scope="module")
def static_dir(shared_data: Path) -> str:
    if not (shared_data / "binarized-mnist").is_dir():
        pytest.skip("shared binarized-mnist files absent")
    return str(shared_data)


@pytest.mark.parametrize("split", list(STATIC))
def test_static_splits_sizes_values_and_means(static_dir: str, split: str) -> None:
    ds = BinarizedMNIST(data_dir=static_dir, split=split)
    n, mean = STATIC[split]
    assert len(ds) == n and ds.observation_shape == (1, 28, 28) and ds.binary and ds.labels is None
    assert ds.images.dtype == torch.uint8 and set(ds.images.unique().tolist()) == {0, 1}
    assert abs(ds.images.float().mean().item() - mean) < 5e-5
    x = ds.batch(torch.arange(64)).x
    assert x.dtype == torch.float32 and x.shape == (64, 1, 28, 28) and torch.equal(x, ds.images[:64].float())


def test_static_test_split_binarises_label_sorted_mnist_upright(static_dir: str, mnist_root: Path) -> None:
    # README: test image i is a binarisation of the i-th MNIST test image in (stable) label-sorted order.
    # So a 1 never falls where MNIST is 0; a transposed or flipped reshape would break that at once.
    ds = BinarizedMNIST(data_dir=static_dir, split="test")
    mnist = MNIST(data_dir=str(mnist_root), split="test", size=28)
    order = torch.sort(mnist.labels, stable=True).indices[:200]
    grey = mnist.images[order]
    binary = ds.images[:200]
    assert not ((binary == 1) & (grey == 0)).any() and not ((binary == 0) & (grey == 255)).any()
    assert ((binary.transpose(-1, -2) == 1) & (grey == 0)).any()


def test_static_missing_file_is_one_line_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        BinarizedMNIST(data_dir=str(tmp_path), split="valid")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "binarized-mnist" / "binarized_mnist_valid.mat") in msg
    with pytest.raises(ConfigError, match="no split 'val'; valid: train, valid, test"):
        BinarizedMNIST(data_dir=str(tmp_path), split="val")


@pytest.fixture(scope="module")
def dyn_train(mnist_root: Path) -> DynamicMNIST:
    return DynamicMNIST(data_dir=str(mnist_root))


def test_dynamic_splits_hold_out_the_last_10k_training_images(dyn_train: DynamicMNIST, mnist_root: Path) -> None:
    valid = DynamicMNIST(data_dir=str(mnist_root), split="valid")
    full = MNIST(data_dir=str(mnist_root), size=28)
    assert len(dyn_train) == 50000 and len(valid) == 10000 and dyn_train.binary
    assert torch.equal(dyn_train.labels, full.labels[:50000]) and torch.equal(valid.labels, full.labels[50000:])
    assert torch.equal(dyn_train.images, full.images[:50000])
    # the fixed held-out binarisation is a sample of the held-out grey levels, the same in every construction
    grey = full.images[50000:]
    assert not ((valid.images == 1) & (grey == 0)).any() and not ((valid.images == 0) & (grey == 255)).any()
    assert abs(valid.images.float().mean() - grey.float().mean() / 255) < 2e-3
    again = DynamicMNIST(data_dir=str(mnist_root), split="valid")
    assert torch.equal(valid.observations(torch.arange(500)), again.observations(torch.arange(500)))
    assert torch.equal(valid.observations(torch.arange(500)), valid.observations(torch.arange(500)))


def test_dynamic_rebinarises_every_batch_around_the_grey_levels(dyn_train: DynamicMNIST) -> None:
    idx = torch.arange(2000)
    torch.manual_seed(0)
    a, b = dyn_train.batch(idx).x, dyn_train.batch(idx).x
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    grey = dyn_train.grey(idx)
    assert (a[grey == 0] == 0).all() and (a[grey == 1] == 1).all()
    assert abs(a.mean() - grey.mean()) < 3e-3  # 1.5M Bernoulli pixels: sd ~3e-4
    draws = torch.stack([dyn_train.observations(idx[:200]) for _ in range(40)]).mean(0)
    assert (draws - grey[:200]).abs().max() < 0.35 and (draws - grey[:200]).abs().mean() < 0.02


def test_dynamic_heldout_option(mnist_root: Path) -> None:
    test = DynamicMNIST(data_dir=str(mnist_root), split="test", heldout="dynamic")
    assert len(test) == 10000 and test.labels[:3].tolist() == [7, 2, 1]
    assert not torch.equal(test.observations(torch.arange(100)), test.observations(torch.arange(100)))
    with pytest.raises(ConfigError, match="heldout"):
        DynamicMNIST(data_dir=str(mnist_root), heldout="static")
