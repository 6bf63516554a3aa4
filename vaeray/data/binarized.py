"""Binarised MNIST, the benchmark of the likelihood literature, in its two forms.

* ``binarized_mnist`` (static): the fixed binarisation of Larochelle & Murray (AISTATS 2011), also used by
  Salakhutdinov & Murray (ICML 2008); 50,000 / 10,000 / 10,000 images for train / valid / test. Read from
  ``<data_dir>/binarized-mnist/binarized_mnist_{train,valid,test}.mat`` (MATLAB v5 files holding one uint8
  ``X`` of shape ``(N, 784)``, row-major 28x28), the layout of the shared data folder.
* ``dynamic_mnist``: MNIST grey levels scaled to [0, 1] and re-binarised every batch by Bernoulli sampling on
  the dataset's device (Salakhutdinov & Murray 2008; the protocol of Burda et al. 2016 and Davidson et al.
  2018). The last 10,000 of the 60,000 training images are held out as the validation split (as in the
  sylvester-flows loaders the S-VAE and product-space code use). The held-out splits are binarised once with
  a fixed seed by default (``heldout: fixed``), so validation and test numbers do not move between runs
  from binarisation noise; ``heldout: dynamic`` samples them afresh like the training split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError, DataMissingError
from ..registry import DATASETS
from .base import TensorDataset, resolve_data_dir

STATIC_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
HELDOUT_SEED = 777  # the fixed binarisation seed of the sylvester-flows loaders (OMNIGLOT there)
VALID_SIZE = 10000


def check_split(name: str, split: str, splits: tuple[str, ...]) -> None:
    if split not in splits:
        raise ConfigError(f"{name} has no split '{split}'; valid: {', '.join(splits)}", "data.split")


def load_mat(path: Path, hint: str) -> dict[str, np.ndarray]:
    """``scipy.io.loadmat`` of ``path``, or one line saying what to put there."""
    import scipy.io  # deferred: only these loaders need it

    if not path.is_file():
        raise DataMissingError(f"file missing: put {path.name} ({hint}) at {path}")
    try:
        return scipy.io.loadmat(str(path))
    except (ValueError, OSError, TypeError) as exc:
        raise DataMissingError(f"{path} is not a readable MATLAB file ({' '.join(str(exc).split())[:120]})") from None


def fixed_bernoulli(grey: torch.Tensor, seed: int) -> torch.Tensor:
    """One Bernoulli sample of every pixel of uint8 grey levels, from a seeded generator: uint8 in {0, 1}."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(grey.float().div_(255.0), generator=generator).to(torch.uint8)


@DATASETS.register("binarized_mnist")
class BinarizedMNIST(TensorDataset):
    """Static binarised MNIST (Larochelle & Murray 2011), 1x28x28 images in {0, 1}, no labels.

    Splits ``train`` (50,000), ``valid`` (10,000), ``test`` (10,000); see the module docstring for the layout.
    """

    splits = ("train", "valid", "test")
    binary = True

    def __init__(self, data_dir: str | None = None, split: str = "train", device: str = "cpu"):
        check_split("binarized_mnist", split, self.splits)
        path = resolve_data_dir(data_dir) / "binarized-mnist" / f"binarized_mnist_{split}.mat"
        raw = load_mat(path, f"the MATLAB version of {STATIC_URL}binarized_mnist_{split}.amat")
        if "X" not in raw:
            raise DataMissingError(f"{path} has no variable 'X' (expected uint8 (N, 784) in {{0, 1}})")
        x = np.asarray(raw["X"])
        if x.ndim != 2 or x.shape[1] != 784:
            raise DataMissingError(f"{path}: 'X' has shape {x.shape}, expected (N, 784)")
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)).reshape(-1, 1, 28, 28)
        super().__init__(images, None, scale=1.0)
        self.to(device)


class Rebinarized(TensorDataset):
    """Grey levels in [0, 1] re-binarised every batch (the training split, and every split with ``heldout:
    dynamic``) or binarised once with :data:`HELDOUT_SEED` (held-out splits with ``heldout: fixed``).
    ``dynamic_mnist`` and ``omniglot`` share it: they differ only in where their grey levels come from."""

    splits = ("train", "valid", "test")
    binary = True

    def _check_options(self, name: str, split: str, heldout: str) -> None:
        """Before any file is read: the split and ``heldout`` are known."""
        check_split(name, split, self.splits)
        if heldout not in ("fixed", "dynamic"):
            raise ConfigError(f"unknown heldout '{heldout}'; valid: fixed, dynamic", "data.heldout")

    def _binarize(self, images: torch.Tensor, labels: torch.Tensor | None, split: str, heldout: str,
                  device: str) -> None:
        self.dynamic = split == "train" or heldout == "dynamic"
        if self.dynamic:
            TensorDataset.__init__(self, images, labels)
        else:
            TensorDataset.__init__(self, fixed_bernoulli(images, HELDOUT_SEED), labels, scale=1.0)
        self.to(device)

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        x = super().observations(index.to(self.device))
        # a fresh sample per batch from torch's global RNG on the device: no host round trip
        return torch.bernoulli(x) if self.dynamic else x

    def grey(self, index: torch.Tensor) -> torch.Tensor:
        """The grey levels in [0, 1] the dynamic splits sample from (the Bernoulli means)."""
        return TensorDataset.observations(self, index.to(self.device))


@DATASETS.register("dynamic_mnist")
class DynamicMNIST(Rebinarized):
    """MNIST re-binarised every batch (see the module docstring), 1x28x28, with labels.

    Splits ``train`` (the first 50,000 training images), ``valid`` (the last 10,000) and ``test`` (10,000).
    The files are MNIST's (``<data_dir>/MNIST/raw``, see :mod:`vaeray.data.mnist`).

    Args:
        heldout: ``"fixed"`` binarises valid/test once with seed 777; ``"dynamic"`` re-samples them per batch.
        download: fetch the MNIST files with torchvision when they are absent.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        heldout: Literal["fixed", "dynamic"] = "fixed",
        download: bool = False,
    ):
        from .mnist import MNIST

        self._check_options("dynamic_mnist", split, heldout)
        source = MNIST(data_dir=data_dir, split="test" if split == "test" else "train", size=28, download=download)
        images, labels = source.images, source.labels
        if split == "train":
            images, labels = images[:-VALID_SIZE], labels[:-VALID_SIZE]
        elif split == "valid":
            images, labels = images[-VALID_SIZE:], labels[-VALID_SIZE:]
        self._binarize(images.clone(), labels.clone(), split, heldout, device)
