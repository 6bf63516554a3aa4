"""dSprites (Matthey, Higgins, Hassabis & Lerchner, 2017, https://github.com/google-deepmind/dsprites-dataset).

737,280 binary 64x64 images of one white sprite on black, one image per combination of the ground-truth
factors shape (3) x scale (6) x orientation (40) x posX (32) x posY (32), stored in row-major factor order
(posY varies fastest). Colour, a constant sixth factor in the file, is dropped as in disentanglement_lib's
``dsprites_full`` (Locatello et al., ICML 2019), so ``factor_bases == [245760, 40960, 1024, 32, 1]``.

Two sources give the same factor grid and layout:

* ``official``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from ``<data_dir>/dsprites/``
  (downloaded there when ``download=True``, MD5-checked).
* ``procedural``: :func:`render` draws the grid itself, so the package runs offline with no file at all.
  The geometry is ours (DeepMind's generator and its shape definitions are unpublished): the images follow
  the same factors in the same order but are **not pixel-identical** to the official ones.

Either way the images are kept bit-packed (``np.packbits`` of the 4096 pixels: 512 bytes per image, 360 MiB
for the grid instead of 2.8 GiB) in a ``.npy`` cache under ``<data_dir>/dsprites/`` that every trial on a node
memory-maps, and batches are unpacked on the training device with bit operations.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError, DataMissingError
from ..registry import DATASETS
from .base import GroundTruthDataset, resolve_data_dir
from .download import atomic_array, fetch, open_shared, shared_tensor, valid_cache
from .dsprites_render import FACTOR_SIZES, IMAGE_SIZE, PACKED_BYTES, canonical_factor_values, generate_packed
from .dsprites_render import render, shape_area, sprite_centre  # noqa: F401  (part of this module's API)

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = f"https://github.com/google-deepmind/dsprites-dataset/raw/master/{FILENAME}"
# The official file's MD5, as published alongside the URL by several independent loaders (e.g. the
# ``npz_md5``/``MD5_CHECKSUM`` constants of public dSprites loaders); no SHA-256 is published.
MD5 = "7da33b31b13a06f4b04a70402ce90c2e"

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
SHAPES = ("square", "ellipse", "heart")  # shape classes 0, 1, 2 = values 1, 2, 3 in the official metadata

PROCEDURAL_CACHE = "procedural_v1_packed.npy"  # bump the version whenever dsprites_render's geometry changes
OFFICIAL_CACHE = "official_v1_packed.npy"


def procedural_cache(root: Path) -> Path:
    """Path of the packed procedural grid under ``root`` (``<data_dir>/dsprites``), generated if absent."""
    path = root / PROCEDURAL_CACHE
    shape = (math.prod(FACTOR_SIZES), PACKED_BYTES)
    if not valid_cache(path, shape, np.uint8):
        with atomic_array(path, shape, np.uint8) as out:
            generate_packed(out)
    return path


# --- The official file --------------------------------------------------------------------------------------


def _bad_file(path: Path, problem: str) -> DataMissingError:
    return DataMissingError(
        f"{path} is not the official dSprites file ({problem}); download it again from {URL} and put it at {path}"
    )


def _read_metadata(path: Path) -> tuple[tuple[int, ...], tuple[np.ndarray, ...], np.ndarray]:
    """Factor sizes and values (colour dropped) plus ``latents_classes``, after structural checks.

    Read without unpickling anything: the file's ``metadata`` entry is a pickled Python 2 dict, and a pickle
    in a file a user hands in can run code. The sizes follow from ``latents_classes`` (a plain int64 array),
    the values are the published grid (:func:`canonical_factor_values`), so the metadata is not needed.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"imgs", "latents_classes"} - set(z.files)
            if missing:
                raise _bad_file(path, f"missing arrays {sorted(missing)}")
            classes = z["latents_classes"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise _bad_file(path, f"unreadable: {' '.join(str(exc).split())}") from None
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0:
        raise _bad_file(path, f"latents_classes has shape {classes.shape} and dtype {classes.dtype}, expected (N, 6) integers")
    all_sizes = tuple(int(m) + 1 for m in classes.max(axis=0))
    if all_sizes[0] != 1:
        raise _bad_file(path, f"latents {all_sizes}: expected color (1 value), {FACTOR_NAMES}")
    sizes = all_sizes[1:]
    values = tuple(np.asarray(v, dtype=np.float64).ravel() for v in canonical_factor_values(sizes))
    n = math.prod(sizes)
    if classes.shape != (n, 6):
        raise _bad_file(path, f"latents_classes has shape {classes.shape}, expected ({n}, 6)")
    return sizes, values, classes


def _stream_images(path: Path, count: int, chunk: int = 16384):
    """Yield ``imgs`` in chunks straight from the zip member, never holding the 2.8 GiB array at once."""
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise _bad_file(path, f"imgs.npy has unsupported .npy format version {version}")
        shape, fortran, dtype = read_header[version](f)
        if shape != (count, IMAGE_SIZE, IMAGE_SIZE) or fortran or dtype != np.uint8:
            raise _bad_file(path, f"imgs is {dtype} {shape}, expected uint8 ({count}, 64, 64) = prod(latents_sizes)")
        per_image = IMAGE_SIZE * IMAGE_SIZE
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            raw = f.read(n * per_image)
            if len(raw) != n * per_image:
                raise _bad_file(path, "imgs is truncated")
            yield start, np.frombuffer(raw, dtype=np.uint8).reshape(n, per_image)


def official_cache(npz: Path) -> tuple[Path, tuple[int, ...], tuple[np.ndarray, ...]]:
    """Pack ``npz`` into ``<dir>/official_v1_packed.npy`` (once) and return it with the factor metadata.

    The packed cache is reused while the sidecar JSON records the same size and mtime of the ``.npz``.
    """
    path = npz.parent / OFFICIAL_CACHE
    sidecar = path.with_suffix(".json")
    stat = npz.stat()
    stamp = {"source_bytes": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}
    try:
        info = json.loads(sidecar.read_text())
        sizes = tuple(int(s) for s in info["factor_sizes"])
        fresh = {k: info.get(k) for k in stamp} == stamp
        if fresh and valid_cache(path, (math.prod(sizes), PACKED_BYTES), np.uint8):
            return path, sizes, tuple(np.asarray(v, dtype=np.float64) for v in info["factor_values"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no usable sidecar: rebuild the cache from the .npz
    sizes, values, classes = _read_metadata(npz)
    n = math.prod(sizes)
    bases = np.concatenate([np.cumprod(np.asarray(sizes[::-1]))[::-1][1:], [1]])
    if not np.array_equal(classes[:, 1:] @ bases, np.arange(n)):
        raise _bad_file(npz, "images are not in row-major factor order")
    with atomic_array(path, (n, PACKED_BYTES), np.uint8) as out:
        for start, imgs in _stream_images(npz, n):
            if imgs.max(initial=0) > 1:
                raise _bad_file(npz, "imgs are not binary")
            out[start : start + len(imgs)] = np.packbits(imgs, axis=1)
    info = {**stamp, "factor_sizes": list(sizes), "factor_values": [v.tolist() for v in values]}
    sidecar_tmp = sidecar.with_name(sidecar.name + ".tmp")
    sidecar_tmp.write_text(json.dumps(info))
    sidecar_tmp.replace(sidecar)
    return path, sizes, values


# --- The dataset --------------------------------------------------------------------------------------------


def unpack_bits(packed: torch.Tensor) -> torch.Tensor:
    """``(B, 512)`` uint8 -> float ``(B, 1, 64, 64)`` in {0, 1}; inverse of ``np.packbits`` (big bit order)."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(packed.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE).to(torch.float32)


@DATASETS.register("dsprites")
class DSprites(GroundTruthDataset):
    """dSprites with its five ground-truth factors (colour dropped, as disentanglement_lib ``dsprites_full``).

    Args:
        source: ``"auto"`` uses the official file when ``<data_dir>/dsprites/`` has it, downloads it when
            ``download`` is true, and otherwise draws the procedural grid; ``"official"`` requires the file
            (or ``download``); ``"procedural"`` always draws.
        download: fetch the official file from GitHub (MD5-checked) when it is absent.

    The resident data is the packed grid (512 bytes per image, 360 MiB in all): on a GPU it is copied there
    once; on the CPU it stays a view of the shared memory-mapped cache. ``source`` records what was used.
    """

    factor_names = FACTOR_NAMES
    splits = ("train",)
    binary = True
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        source: Literal["auto", "official", "procedural"] = "auto",
        download: bool = False,
    ):
        if split not in self.splits:
            raise ConfigError(f"dsprites has no split '{split}'; valid: {', '.join(self.splits)}", "data.split")
        if source not in ("auto", "official", "procedural"):
            raise ConfigError(f"unknown dsprites source '{source}'; valid: auto, official, procedural", "data.source")
        root = resolve_data_dir(data_dir) / "dsprites"
        npz = root / FILENAME
        if source == "auto":
            source = "official" if npz.is_file() or download else "procedural"
        if source == "official":
            if not npz.is_file():
                if not download:
                    raise DataMissingError(
                        f"dSprites file missing: put {FILENAME} (from {URL}) at {npz}, "
                        "or set data.download: true, or use data.source: procedural"
                    )
                fetch(URL, npz, md5=MD5)
            cache, sizes, values = official_cache(npz)
        else:
            cache, sizes, values = procedural_cache(root), FACTOR_SIZES, canonical_factor_values(FACTOR_SIZES)
        self.source = source
        self.factor_sizes = tuple(sizes)
        self.factor_values = values
        self.cache_path = cache
        self._host_array = open_shared(cache)
        self._host = shared_tensor(self._host_array)
        if self._host.shape != (math.prod(sizes), PACKED_BYTES):
            raise DataMissingError(f"{cache} is damaged; delete it and run again to rebuild it")
        self.packed = self._host
        self.to(device)

    def __len__(self) -> int:
        return self.packed.shape[0]

    def to(self, device: torch.device | str) -> DSprites:
        super().to(device)
        # CPU: keep the view of the shared memory map (no per-trial copy); accelerator: one copy of the bits.
        self.packed = self._host if self.device.type == "cpu" else self._host.to(self.device)
        return self

    @property
    def resident_bytes(self) -> int:
        """Bytes this dataset holds on its device (the packed grid)."""
        return self.packed.numel() * self.packed.element_size()

    def observations(self, index: torch.Tensor) -> torch.Tensor:
        return unpack_bits(self.packed[index.to(self.device)])
