"""Photographic image datasets: CelebA faces and 3D Chairs renders, preprocessed once into a shared cache.

* CelebA (Liu, Luo, Wang & Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015): the aligned
  178x218 images, centre-cropped to 178x178 (the usual crop for 64x64 VAEs) and resized to 64x64 RGB.
  The layout is torchvision's ``CelebA`` one, ``<data_dir>/celeba/img_align_celeba/*.jpg`` with
  ``<data_dir>/celeba/list_eval_partition.txt`` giving the train (0) / valid (1) / test (2) split; of it
  we read only those two. Alternatively ``folder`` names any folder of aligned images (all of them in every split).
* 3D Chairs (Aubry, Maturana, Efros, Russell & Sivic, "Seeing 3D chairs", CVPR 2014): the renders under
  ``<data_dir>/chairs/rendered_chairs/*/renders/*.png`` (or any folder tree of png/jpg), converted to
  greyscale and resized to 64x64 after a centre crop of ``crop`` times the short side. The default 2/3 turns
  the 600x600 renders into the 400x400 crop that disentangling-vae meant to take (its ``img.crop`` result
  was discarded, so its images were never cropped); we do crop.

Each image is converted once into a uint8 ``(N, C, size, size)`` ``.npy`` under ``<data_dir>/<name>/cache/``
and memory-mapped afterwards, so trials on a node share one page-cached copy. A cache, once written, is
reused as is: delete it to rebuild after changing the source images.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, DataMissingError
from ..registry import DATASETS
from ..schema import Range
from .base import Dataset, resolve_data_dir
from .download import atomic_array, open_shared, shared_tensor

DEVICE_BUDGET = 512 * 2**20  # larger image arrays stay in host memory and go to the device batch by batch
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
CHAIRS_URL = "https://www.di.ens.fr/willow/research/seeing3Dchairs/data/rendered_chairs.tar"


def crop_resize(path: Path, size: int, crop: float, mode: str) -> np.ndarray:
    """Load one image, take the centred square of side ``crop`` x its short side, resize, as ``(C, s, s)``.

    Resizing uses Pillow's bilinear filter, which widens its support when shrinking (antialiasing).
    Images with transparency are composited onto white first (renders with alpha have a white backdrop).
    """
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img.alpha_composite(rgba)
        img = img.convert(mode)
    w, h = img.size
    side = max(1, round(crop * min(w, h)))
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def build_cache(files: list[Path], cache: Path, size: int, crop: float, mode: str) -> None:
    """Preprocess ``files`` in order into the uint8 ``.npy`` ``cache`` (threads: Pillow releases the GIL)."""
    channels = 1 if mode == "L" else 3
    with atomic_array(cache, (len(files), channels, size, size), np.uint8) as out:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, array in enumerate(pool.map(lambda p: crop_resize(p, size, crop, mode), files, chunksize=64)):
                out[i] = array


def image_files(folder: Path) -> list[Path]:
    """Every png/jpg under ``folder``, recursively, in sorted path order (so the index order is stable)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_key(folder: Path) -> str:
    """A cache name for a user folder: its resolved path, hashed (caches stay inside ``data_dir``)."""
    return "folder-" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]


class CachedImages(Dataset):
    """Images from a uint8 ``(N, C, H, W)`` cache; on the device when it fits in :data:`DEVICE_BUDGET`."""

    def __init__(self, cache: Path, device: str):
        self.cache_path = cache
        self._host_array = open_shared(cache)
        self._host = shared_tensor(self._host_array)  # a view of the memory map: no per-trial copy
        self.images = self._host
        self.observation_shape = tuple(self._host.shape[1:])
        self.to(device)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resident_bytes(self) -> int:
        """Bytes held on ``self.device`` (0 when the images stay in host memory for an accelerator)."""
        return self.images.numel() if self.images.device == self.device else 0

    def to(self, device: torch.device | str) -> CachedImages:
        super().to(device)
        fits = self._host.numel() <= DEVICE_BUDGET
        self.images = self._host if self.device.type == "cpu" or not fits else self._host.to(self.device)
        return self

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        batch = self.images[index.to(self.images.device)]  # gather where the images are
        return batch.to(self.device, non_blocking=True).float().div_(255.0)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or not 8 <= size <= 512:
        raise ConfigError(f"size must be an integer in [8, 512], not {size!r}", "data.size")


@DATASETS.register("celeba")
class CelebA(CachedImages):
    """CelebA aligned faces, 178x178 centre crop resized to ``size`` x ``size`` RGB (see module docstring).

    Args:
        folder: a folder of aligned images to use instead of ``<data_dir>/celeba``; it has no held-out
            split, so every split serves all of its images (with a warning for "valid"/"test").
        size: output side in pixels (64 in Burgess et al. 2018 and disentangling-vae).
    """

    splits = ("train", "valid", "test")

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        folder: str | None = None,
        size: Annotated[int, Range(ge=8, le=512)] = 64,
    ):
        _check_size(size)
        root = resolve_data_dir(data_dir) / "celeba"
        if split not in self.splits:
            raise ConfigError(f"celeba has no split '{split}'; valid: {', '.join(self.splits)}", "data.split")
        if folder is not None:
            if split != "train":
                # The training loop asks for "test" whenever the class lists it; a plain folder has no
                # held-out images, so say so rather than fail the run or pass training images off silently.
                warnings.warn(f"celeba folder {folder} has no '{split}' split; using all its images", stacklevel=2)
            source = Path(folder).expanduser()
            cache = root / "cache" / f"{folder_key(source)}_{size}.npy"
            if not _cache_exists(cache):
                if not source.is_dir():
                    raise DataMissingError(f"CelebA folder missing: {source} is not a folder of aligned face images")
                files = image_files(source)
                if not files:
                    raise DataMissingError(f"CelebA folder {source} holds no .png/.jpg images")
                build_cache(files, cache, size, 1.0, "RGB")
        else:
            cache = root / "cache" / f"celeba_{split}_{size}.npy"
            if not _cache_exists(cache):
                build_cache(_celeba_split_files(root, split), cache, size, 1.0, "RGB")
        super().__init__(cache, device)


def _cache_exists(cache: Path) -> bool:
    """A readable uint8 4-d ``.npy`` (a rename makes caches appear whole, so that is all we check)."""
    if not cache.is_file():
        return False
    try:
        array = np.load(cache, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.ndim == 4


def _celeba_split_files(root: Path, split: str) -> list[Path]:
    images = root / "img_align_celeba"
    partition = root / "list_eval_partition.txt"
    if not images.is_dir():
        raise DataMissingError(
            f"CelebA images missing: extract img_align_celeba.zip (from {CELEBA_URL}) to {images}, or set data.folder"
        )
    if not partition.is_file():
        raise DataMissingError(f"CelebA file missing: put list_eval_partition.txt (from {CELEBA_URL}) at {partition}")
    code = str(CelebA.splits.index(split))
    names = []
    for line in partition.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == code:
            names.append(parts[0])
    files = [images / n for n in names]
    absent = next((f for f in files if not f.is_file()), None)
    if absent is not None:
        raise DataMissingError(f"CelebA image missing: {absent} is listed in {partition} but absent")
    if not files:
        raise DataMissingError(f"CelebA split '{split}' is empty in {partition}")
    return files


@DATASETS.register("chairs")
class Chairs(CachedImages):
    """3D Chairs renders as greyscale ``size`` x ``size`` images (see module docstring).

    Args:
        folder: a folder tree of png/jpg images to use instead of ``<data_dir>/chairs/rendered_chairs``.
        crop: side of the centred square crop as a fraction of the image's short side (2/3: 400 of 600 px).
        size: output side in pixels.
    """

    splits = ("train",)

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        folder: str | None = None,
        crop: Annotated[float, Range(gt=0, le=1)] = 2 / 3,
        size: Annotated[int, Range(ge=8, le=512)] = 64,
    ):
        _check_size(size)
        if split not in self.splits:
            raise ConfigError(f"chairs has no split '{split}'; valid: train", "data.split")
        if not 0 < crop <= 1:
            raise ConfigError(f"crop must be in (0, 1], not {crop!r}", "data.crop")
        root = resolve_data_dir(data_dir) / "chairs"
        source = Path(folder).expanduser() if folder is not None else root / "rendered_chairs"
        key = folder_key(source) if folder is not None else "rendered_chairs"
        cache = root / "cache" / f"{key}_crop{crop:.4f}_{size}.npy"
        if not _cache_exists(cache):
            if not source.is_dir():
                raise DataMissingError(
                    f"3D Chairs folder missing: extract rendered_chairs.tar (from {CHAIRS_URL}) to {source}"
                    if folder is None
                    else f"3D Chairs folder missing: {source} is not a folder of images"
                )
            files = image_files(source)
            if not files:
                raise DataMissingError(f"3D Chairs folder {source} holds no .png/.jpg images")
            build_cache(files, cache, size, crop, "L")
        super().__init__(cache, device)
