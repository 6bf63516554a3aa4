"""MNIST / Fashion-MNIST on the real files: counts, label histograms, pixel means, resizing, binarisation."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeray.data.mnist import MNIST, FashionMNIST
from vaeray.errors import ConfigError, DataMissingError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist28(mnist_root: Path) -> MNIST:
    return MNIST(data_dir=str(mnist_root), size=28)


@pytest.fixture(scope="module")
def test28(mnist_root: Path) -> MNIST:
    return MNIST(data_dir=str(mnist_root), split="test", size=28)


@pytest.fixture(scope="module")
def test32(mnist_root: Path) -> MNIST:
    return MNIST(data_dir=str(mnist_root), split="test")  # size 32 is the default


def mean_pixel(ds: MNIST) -> float:
    """Mean intensity in [0, 1] (numpy's integer sum: far faster than a float copy of 47M pixels)."""
    images = ds.images.numpy()
    return images.sum(dtype=np.int64) / images.size / 255


def test_mnist_train_counts_labels_and_mean(mnist28: MNIST) -> None:
    assert len(mnist28) == 60000 and mnist28.observation_shape == (1, 28, 28)
    assert torch.bincount(mnist28.labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert mnist28.images.dtype == torch.uint8  # resident as bytes, floats only per batch
    assert abs(mean_pixel(mnist28) - 0.1307) < 5e-5
    assert not mnist28.binary


def test_mnist_test_split(test28: MNIST) -> None:
    assert len(test28) == 10000 and torch.bincount(test28.labels).tolist() == MNIST_TEST_COUNTS
    assert test28.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert abs(mean_pixel(test28) - 0.1325) < 5e-5


def test_fashion_mnist_counts_and_mean(mnist_root: Path) -> None:
    train = FashionMNIST(data_dir=str(mnist_root), size=28)
    test = FashionMNIST(data_dir=str(mnist_root), split="test", size=28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert abs(mean_pixel(train) - 0.2860) < 5e-5 and abs(mean_pixel(test) - 0.2868) < 5e-5


def test_size_32_resizes_once_and_keeps_the_digits(test28: MNIST, test32: MNIST) -> None:
    assert test32.observation_shape == (1, 32, 32) and test32.images.shape == (10000, 1, 32, 32)
    assert test32.images.dtype == torch.uint8
    assert torch.equal(test32.labels, test28.labels)
    # Bilinear upsampling keeps the mean intensity and each image's content: shrinking back to 28
    # gives nearly the native image (a wrong axis order, flip or crop would not).
    assert abs(mean_pixel(test32) - mean_pixel(test28)) < 3e-3
    idx = torch.arange(0, 10000, 100)
    small = torch.nn.functional.interpolate(test32.observations(idx), size=28, mode="bilinear", antialias=True)
    native = test28.observations(idx)
    assert (small - native).abs().mean() < 0.04
    assert (small - test28.observations(idx.roll(1))).abs().mean() > 0.1


def test_batches_are_floats_in_unit_interval_with_labels(test32: MNIST) -> None:
    idx = torch.tensor([0, 1, 9999, 1234])
    batch = test32.batch(idx)
    assert batch.x.dtype == torch.float32 and batch.x.shape == (4, 1, 32, 32)
    assert batch.x.min() == 0 and 0.9 < batch.x.max() <= 1
    assert torch.equal(batch.y, test32.labels[idx])
    assert torch.equal(batch.x, test32.images[idx].float() / 255)


def test_binarization_modes(test28: MNIST, monkeypatch) -> None:
    idx = torch.arange(256)
    grey = test28.observations(idx)
    monkeypatch.setattr(test28, "binarize", "threshold")
    assert torch.equal(test28.observations(idx), (grey > 0.5).float())
    monkeypatch.setattr(test28, "binarize", "dynamic")
    torch.manual_seed(0)
    a = test28.observations(idx)
    torch.manual_seed(0)
    b = test28.observations(idx)
    c = test28.observations(idx)
    assert torch.equal(a, b) and not torch.equal(b, c)  # the global RNG drives it; a fresh draw per batch
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert (a[grey == 0] == 0).all() and (a[grey == 1] == 1).all()
    draws = torch.stack([test28.observations(idx) for _ in range(20)]).mean(0)
    assert (draws - grey).abs().mean() < 0.03  # a Bernoulli(p) sample of each pixel


def test_binarize_flag_sets_binary(mnist_root: Path) -> None:
    ds = MNIST(data_dir=str(mnist_root), split="test", size=28, binarize="threshold")
    assert ds.binary and set(ds.batch(torch.arange(100)).x.unique().tolist()) == {0.0, 1.0}


def test_extraction_stays_inside_data_dir(mnist_root: Path, mnist28: MNIST) -> None:
    raw = mnist_root / "MNIST" / "raw"
    for gz in raw.glob("*.gz"):
        assert gz.is_symlink()  # the shared originals were read, never replaced
        extracted = raw / gz.name.removesuffix(".gz")
        assert extracted.is_file() and not extracted.is_symlink()
        with gzip.open(gz.resolve(), "rb") as f:
            assert f.read(16) == extracted.read_bytes()[:16]


def test_missing_files_name_path_and_source(tmp_path) -> None:
    with pytest.raises(DataMissingError) as err:
        MNIST(data_dir=str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz") in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg
    with pytest.raises(DataMissingError, match=str(tmp_path / "FashionMNIST" / "raw")):
        FashionMNIST(data_dir=str(tmp_path))


def test_corrupt_gz_is_reported_not_extracted(tmp_path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + os.urandom(100))
    with pytest.raises(DataMissingError) as err:
        MNIST(data_dir=str(tmp_path))
    assert "corrupt" in str(err.value) and "\n" not in str(err.value)
    assert not (raw / "train-images-idx3-ubyte").exists()


def test_bad_parameters(tmp_path) -> None:
    with pytest.raises(ConfigError, match="valid: none, dynamic, threshold"):
        MNIST(data_dir=str(tmp_path), binarize="stochastic")
    with pytest.raises(ConfigError, match="no split 'valid'"):
        MNIST(data_dir=str(tmp_path), split="valid")
    with pytest.raises(ConfigError, match="size"):
        MNIST(data_dir=str(tmp_path), size=2)
