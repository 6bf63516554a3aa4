"""MNIST (LeCun, Bottou, Bengio & Haffner, 1998) and Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017).

Read through ``torchvision.datasets.MNIST`` / ``FashionMNIST`` from their layout under ``<data_dir>``:
``<data_dir>/MNIST/raw/train-images-idx3-ubyte`` (and ``FashionMNIST/raw/...``). torchvision reads only the
extracted IDX files (its ``_check_exists`` looks for the names without ``.gz``), so when only the ``.gz``
files are there we check their MD5 against torchvision's table and extract them beside themselves, once.

The images are kept resident as uint8 (60,000 x 32 x 32 = 61 MB), converted to [0, 1] floats per batch.
``size=32`` (the default, as in Burgess et al. 2018 / disentangling-vae's ``Resize(32)``) upsamples the 28x28
digits once at load time with bilinear interpolation (antialias on; it only matters when shrinking) and
rounds back to uint8.
"""

from __future__ import annotations

import gzip
import os
import shutil
import urllib.error
from pathlib import Path
from typing import Annotated, Literal

import torch

from ..errors import ConfigError, DataMissingError
from ..registry import DATASETS
from ..schema import Range
from .base import TensorDataset, resolve_data_dir
from .download import file_digest

BINARIZE = ("none", "dynamic", "threshold")


def _extract(gz: Path, dest: Path) -> None:
    """Decompress ``gz`` to ``dest`` through a temporary file, so a killed run leaves no half file."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_raw(root: Path, tv_class: type, download: bool) -> None:
    """Make ``root/<Class>/raw`` hold the four extracted IDX files torchvision needs, or raise one line."""
    raw = root / tv_class.__name__ / "raw"
    mirror = tv_class.mirrors[0]
    for gz_name, md5 in tv_class.resources:
        name = gz_name.removesuffix(".gz")
        if (raw / name).is_file():
            continue
        gz = raw / gz_name
        if gz.is_file():
            got = file_digest(gz, "md5")
            if got != md5:
                raise DataMissingError(
                    f"{gz} is corrupt (md5 {got}, expected {md5}); replace it with {mirror}{gz_name}"
                )
            _extract(gz, raw / name)
        elif download:
            try:  # torchvision tries its mirrors, checks the MD5 and extracts
                tv_class(root=str(root), train=True, download=True)
            except (RuntimeError, urllib.error.URLError, OSError) as exc:
                raise DataMissingError(
                    f"could not download {tv_class.__name__} ({' '.join(str(exc).split())[:200]}); "
                    f"put {gz_name} (from {mirror}{gz_name}) at {gz}"
                ) from None
            return
        else:
            raise DataMissingError(
                f"{tv_class.__name__} file missing: put {gz_name} (from {mirror}{gz_name}) at {gz}, "
                "or set data.download: true"
            )


class _MNISTFamily(TensorDataset):
    """28x28 greyscale digits/garments with class labels; see the module docstring for the layout.

    Args:
        size: side of the returned images; 28 is native, anything else is a bilinear resize done once.
        binarize: ``"none"`` (grey levels), ``"dynamic"`` (a fresh Bernoulli sample of every pixel per batch,
            drawn from torch's global RNG on the dataset's device; Salakhutdinov & Murray, 2008) or
            ``"threshold"`` (pixel > 0.5).
        download: fetch the files with torchvision when they are absent.
    """

    tv_name: str = ""
    splits = ("train", "test")

    @staticmethod
    def shape_for(size: int = 32, **_: object) -> tuple[int, ...]:
        """The observation shape these settings give, without loading anything (for the dry run)."""
        return (1, size, size)

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        size: Annotated[int, Range(ge=8, le=256)] = 32,
        binarize: Literal["none", "dynamic", "threshold"] = "none",
        download: bool = False,
    ):
        import torchvision.datasets  # deferred: torchvision is slow to import and only these loaders need it

        name = self.registry_name  # type: ignore[attr-defined]
        if split not in self.splits:
            raise ConfigError(f"{name} has no split '{split}'; valid: {', '.join(self.splits)}", "data.split")
        if binarize not in BINARIZE:
            raise ConfigError(f"unknown binarize '{binarize}'; valid: {', '.join(BINARIZE)}", "data.binarize")
        if not isinstance(size, int) or not 8 <= size <= 256:
            raise ConfigError(f"size must be an integer in [8, 256], not {size!r}", "data.size")
        tv_class = getattr(torchvision.datasets, self.tv_name)
        root = resolve_data_dir(data_dir)
        prepare_raw(root, tv_class, download)
        source = tv_class(root=str(root), train=split == "train", download=False)
        images = source.data.unsqueeze(1)  # (N, 1, 28, 28) uint8
        if size != images.shape[-1]:
            images = resize_uint8(images, size)
        super().__init__(images, source.targets.to(torch.int64))
        self.binarize = binarize
        self.binary = binarize != "none"
        self.to(device)

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        x = super().observations(index.to(self.device))
        if self.binarize == "dynamic":
            return torch.bernoulli(x)
        if self.binarize == "threshold":
            return (x > 0.5).to(x.dtype)
        return x


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 10000) -> torch.Tensor:
    """Bilinear (antialiased) resize of uint8 ``(N, C, H, W)`` to ``size`` x ``size``, rounded to uint8."""
    from torchvision.transforms.functional import InterpolationMode, resize

    out = torch.empty(images.shape[:2] + (size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].to(torch.float32)
        y = resize(x, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


@DATASETS.register("mnist")
class MNIST(_MNISTFamily):
    __doc__ = "MNIST handwritten digits (LeCun et al., 1998). " + (_MNISTFamily.__doc__ or "")
    tv_name = "MNIST"


@DATASETS.register("fashion_mnist")
class FashionMNIST(_MNISTFamily):
    __doc__ = "Fashion-MNIST garments (Xiao et al., 2017, arXiv:1708.07747). " + (_MNISTFamily.__doc__ or "")
    tv_name = "FashionMNIST"
