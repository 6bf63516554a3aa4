"""OMNIGLOT (Lake, Salakhutdinov & Tenenbaum, Science 2015) at 28x28, in the split of Burda, Grosse &
Salakhutdinov ("Importance Weighted Autoencoders", ICLR 2016).

The file is the IWAE repository's ``datasets/OMNIGLOT/chardata.mat`` (MATLAB v5), kept at
``<data_dir>/omniglot/chardata.mat``. It holds ``data`` (784 x 24,345 floats in [0, 1]) and ``testdata``
(784 x 8,070), one image per column, each column a 28x28 image in column-major ('F') order, plus one-hot
``target`` / ``testtarget`` (alphabet, 50 x N), which become the labels.

Splits: ``test`` is ``testdata``; ``valid`` is 1,345 training images held out by a fixed permutation (the
validation size of the sylvester-flows loaders the product-space S-VAE uses), ``train`` the rest. As in
IWAE, training images are binarised dynamically (a fresh Bernoulli sample of the grey levels per batch, on
the device); valid and test are binarised once with seed 777 (``heldout: fixed``, as sylvester-flows) or
re-sampled per batch (``heldout: dynamic``).

``download: true`` fetches the file from the IWAE repository at a pinned commit and checks it against the
git blob id of that commit (a SHA-1 content hash recorded in the repository's tree): a sha256 of the file
was not available to us offline, and the blob id pins the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import DataMissingError
from ..registry import DATASETS
from .base import resolve_data_dir
from .binarized import Rebinarized, load_mat
from .download import fetch

IWAE_COMMIT = "78a6075484bd7dd6f47a4bb9880d2295bc7a5220"
OMNIGLOT_URL = f"https://raw.githubusercontent.com/yburda/iwae/{IWAE_COMMIT}/datasets/OMNIGLOT/chardata.mat"
OMNIGLOT_GIT_BLOB = "016a3536ffe5e1d38e42563a18d7a78bfaf643ec"  # `git ls-tree` of the commit above
VALID_SIZE = 1345
SPLIT_SEED = 777


def git_blob_id(path: Path) -> str:
    """Git's object id of a file's bytes: SHA-1 of ``b"blob <size>\\0" + content``."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_chardata(dest: Path) -> None:
    """Fetch ``chardata.mat``, check its git blob id, and only then rename it to ``dest`` (so a concurrent trial
    never reads an unchecked file); a mismatch removes the download and raises one line."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.download")
    try:
        fetch(OMNIGLOT_URL, tmp)
        got = git_blob_id(tmp)
        if got != OMNIGLOT_GIT_BLOB:
            raise DataMissingError(
                f"checksum mismatch for {OMNIGLOT_URL}: git blob id {got}, expected {OMNIGLOT_GIT_BLOB}; "
                f"download it again and put it at {dest}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def columns_to_images(data: np.ndarray) -> torch.Tensor:
    """``(784, N)`` columns, each a 28x28 image in column-major order, as uint8 ``(N, 1, 28, 28)`` grey levels."""
    images = np.asarray(data, dtype=np.float64).T.reshape(-1, 28, 28).transpose(0, 2, 1)  # 'F' order per image
    return torch.from_numpy(np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)).unsqueeze(1)


def one_hot_labels(target: np.ndarray | None, n: int) -> torch.Tensor | None:
    """Class indices from a one-hot ``(K, N)`` (or ``(N, K)``) array, or from a length-N vector."""
    if target is None:
        return None
    target = np.asarray(target)
    if target.ndim == 2 and target.shape[1] == n and target.shape[0] != n:
        return torch.from_numpy(target.argmax(axis=0).astype(np.int64))
    if target.ndim == 2 and target.shape[0] == n and target.shape[1] > 1:
        return torch.from_numpy(target.argmax(axis=1).astype(np.int64))
    if target.size == n:
        return torch.from_numpy(target.reshape(n).astype(np.int64))
    return None


@DATASETS.register("omniglot")
class Omniglot(Rebinarized):
    """OMNIGLOT 1x28x28 characters, binarised as in IWAE; see the module docstring.

    Args:
        heldout: ``"fixed"`` binarises valid/test once with seed 777; ``"dynamic"`` re-samples them per batch.
        download: fetch ``chardata.mat`` from the IWAE repository (pinned commit, checksum checked).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        heldout: Literal["fixed", "dynamic"] = "fixed",
        download: bool = False,
    ):
        self._check_options("omniglot", split, heldout)
        path = resolve_data_dir(data_dir) / "omniglot" / "chardata.mat"
        if not path.is_file() and download:
            download_chardata(path)
        raw = load_mat(path, f"from {OMNIGLOT_URL}, or set data.download: true")
        key, tkey = ("testdata", "testtarget") if split == "test" else ("data", "target")
        if key not in raw or np.asarray(raw[key]).ndim != 2 or np.asarray(raw[key]).shape[0] != 784:
            raise DataMissingError(f"{path}: expected a variable '{key}' of shape (784, N) (the IWAE chardata.mat)")
        images = columns_to_images(raw[key])
        labels = one_hot_labels(raw.get(tkey), images.shape[0])
        if split != "test":
            if images.shape[0] <= VALID_SIZE:
                raise DataMissingError(
                    f"{path}: 'data' holds {images.shape[0]} images, fewer than the {VALID_SIZE} held out"
                )
            order = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(images.shape[0]))
            keep = order[-VALID_SIZE:] if split == "valid" else order[:-VALID_SIZE]
            keep = keep.sort().values  # file order within the split
            images = images[keep]
            labels = None if labels is None else labels[keep]
        self._binarize(images, labels, split, heldout, device)
