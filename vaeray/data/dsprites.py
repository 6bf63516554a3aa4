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
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError, DataMissingError
from ..registry import DATASETS
from .base import GroundTruthDataset, resolve_data_dir
from .download import atomic_array, fetch, open_shared, shared_tensor, valid_cache

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = f"https://github.com/google-deepmind/dsprites-dataset/raw/master/{FILENAME}"
# The official file's MD5, as published alongside the URL by several independent loaders (e.g. the
# ``npz_md5``/``MD5_CHECKSUM`` constants of public dSprites loaders); no SHA-256 is published.
MD5 = "7da33b31b13a06f4b04a70402ce90c2e"

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")  # shape classes 0, 1, 2 = values 1, 2, 3 in the official metadata
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8

PROCEDURAL_CACHE = "procedural_v1_packed.npy"  # bump the version whenever the geometry below changes
OFFICIAL_CACHE = "official_v1_packed.npy"

# --- Procedural geometry (ours; documented in docs/data.md) -----------------------------------------------
# Lengths in pixels at scale 1; a sprite is drawn at scale * these. Every shape fits in a circle of radius
# 14.2 px about its centre (the square's half-diagonal 10*sqrt(2)), so with the centre kept 16 px from the
# left/top edge and 17 px from the right/bottom edge no sprite reaches the outermost rows or columns.
SQUARE_HALF_SIDE = 10.0
ELLIPSE_SEMI_AXES = (14.0, 7.0)  # along the sprite's own x (horizontal at orientation 0) and y axes
# Heart: the sextic heart curve (x^2 + y^2 - 1)^3 = x^2 y^3 (Weisstein, "Heart Curve", MathWorld), lobes up.
# It is rotated about its area centroid (0, HEART_CENTROID_Y), computed by numerical integration on a
# 20001^2 grid; the farthest point from the centroid is the bottom tip (0, -1), so scaling the curve by
# HEART_UNIT makes its circumradius 14 px like the ellipse's.
HEART_CENTROID_Y = 0.293481
HEART_AREA = 3.661974  # area enclosed by the curve in its own units (same integration)
HEART_UNIT = 14.0 / (1.0 + HEART_CENTROID_Y)
POSITION_ORIGIN = 16.0  # sprite centre (continuous pixel coordinates) at pos = 0 ...
POSITION_TRAVEL = 31.0  # ... and 31 px further at pos = 1: one pixel per step on the 32-value grid
SUBSAMPLES = 4  # 4x4 samples per pixel; a pixel is on when at least half of them fall inside the shape
CANVAS = 32  # side of the square a sprite is drawn in before it is pasted at its 32x32 grid positions


def canonical_factor_values(sizes: tuple[int, ...] = FACTOR_SIZES) -> tuple[np.ndarray, ...]:
    """Physical factor values for a grid of ``sizes``: the official dSprites metadata formulas.

    shape 1..n (square, ellipse, heart); scale linspace(0.5, 1); orientation linspace(0, 2 pi) with both
    endpoints; posX, posY linspace(0, 1).
    """
    n_shape, n_scale, n_orient, n_x, n_y = sizes
    return (
        np.arange(1, n_shape + 1, dtype=np.float64),
        np.linspace(0.5, 1.0, n_scale),
        np.linspace(0.0, 2 * np.pi, n_orient),
        np.linspace(0.0, 1.0, n_x),
        np.linspace(0.0, 1.0, n_y),
    )


def shape_area(shape: int, scale: float = 1.0) -> float:
    """Exact area in px^2 of shape class ``shape`` at ``scale`` (the rendered pixel count approximates it)."""
    if shape == 0:
        return (2 * SQUARE_HALF_SIDE * scale) ** 2
    if shape == 1:
        return math.pi * ELLIPSE_SEMI_AXES[0] * ELLIPSE_SEMI_AXES[1] * scale**2
    if shape == 2:
        return HEART_AREA * (HEART_UNIT * scale) ** 2
    raise ValueError(f"shape class must be 0, 1 or 2, not {shape}")


def _inside(shape: int, u: np.ndarray, v: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Whether sprite-frame points (u right, v up, px from the sprite centre) lie in the shape."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE * scale
    if shape == 1:
        a, b = ELLIPSE_SEMI_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= scale**2
    if shape == 2:
        x = u / (HEART_UNIT * scale)
        y = v / (HEART_UNIT * scale) + HEART_CENTROID_Y
        r = x * x + y * y - 1.0
        return r * r * r <= x * x * y * y * y
    raise ValueError(f"shape class must be 0, 1 or 2, not {shape}")


def _coverage(shape: int, scale: np.ndarray, theta: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Binary mask ``(N, H, W)`` for N sprites (``scale``, ``theta`` of shape (N,)).

    ``dx`` (N or 1, W*S) and ``dy`` (N or 1, H*S) are the subsample offsets from the sprite centre, right
    and down. Rotation is counter-clockwise on screen by ``theta``; reducing it modulo 2 pi first makes
    orientation 2 pi give exactly the image of orientation 0.
    """
    theta = np.mod(theta, 2 * np.pi)
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    dx, up = dx[:, None, :], -dy[:, :, None]  # (N, 1, W*S), (N, H*S, 1): image y points down, sprite v up
    u = dx * c + up * s  # inverse rotation: sprite-frame coordinates of each subsample
    v = up * c - dx * s
    hit = _inside(shape, u, v, scale[:, None, None])
    n, hs, ws = hit.shape
    hits = hit.reshape(n, hs // SUBSAMPLES, SUBSAMPLES, ws // SUBSAMPLES, SUBSAMPLES).sum(axis=(2, 4))
    return hits >= (SUBSAMPLES * SUBSAMPLES + 1) // 2


def _sample_offsets(n_pixels: int) -> np.ndarray:
    """Subsample coordinates (j + 0.5) / S, exact binary fractions, so shifted grids agree bit for bit."""
    return (np.arange(n_pixels * SUBSAMPLES) + 0.5) / SUBSAMPLES


def sprite_centre(pos: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinate (from the left or top edge) of the sprite centre at position ``pos``.

    Snapped to 1/64 px so that the grid positions k/31 land exactly on the integers 16 + k.
    """
    return POSITION_ORIGIN + np.round(POSITION_TRAVEL * np.asarray(pos, dtype=np.float64) * 64) / 64


def render(
    shape: np.ndarray | int,
    scale: np.ndarray | float,
    orientation: np.ndarray | float,
    posx: np.ndarray | float,
    posy: np.ndarray | float,
    chunk: int = 64,
) -> np.ndarray:
    """Draw sprites: bool images ``(N, 64, 64)`` for broadcast factor arrays.

    ``shape`` is the class (0 square, 1 ellipse, 2 heart); the others are physical values (scale in
    [0.5, 1], orientation in radians, positions in [0, 1]). posX moves the sprite right and posY moves it
    down (the row index grows with posY, as in dSprites). Works for any values, not just the grid.
    """
    shape, scale, orientation, posx, posy = (
        np.atleast_1d(a).ravel() for a in np.broadcast_arrays(shape, scale, orientation, posx, posy)
    )
    grid = _sample_offsets(IMAGE_SIZE)
    out = np.zeros((shape.size, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for k in np.unique(shape):
        idx = np.flatnonzero(shape == k)
        for start in range(0, idx.size, chunk):
            i = idx[start : start + chunk]
            dx = grid[None, :] - sprite_centre(posx[i])[:, None]
            dy = grid[None, :] - sprite_centre(posy[i])[:, None]
            out[i] = _coverage(int(k), scale[i], orientation[i], dx, dy)
    return out


def _place(masks: np.ndarray) -> np.ndarray:
    """All 32x32 placements of 32x32 sprite canvases, packed: ``(M, 32, 32)`` -> ``(M, 1024, 512)``.

    A canvas has the sprite centre at its corner point (16, 16); at grid position (px, py) the centre is at
    (16 + px, 16 + py), so the canvas is pasted with its top-left at column px, row py. Horizontal shifts are
    windows of a zero-padded strip, packed to bytes; vertical shifts are then windows over rows of bytes.
    Both are strided views, so the only copies are the packing and the final 512 KiB per canvas.
    """
    m, n = masks.shape[0], FACTOR_SIZES[3]  # n = 32 grid positions per axis, one pixel apart
    strip = np.zeros((m, CANVAS, n - 1 + IMAGE_SIZE), dtype=bool)
    strip[:, :, n - 1 : n - 1 + CANVAS] = masks
    # window s starts at column s; column x of image px holds canvas column x - px, i.e. window s = 31 - px
    rows = np.packbits(sliding_window_view(strip, IMAGE_SIZE, axis=2)[:, :, ::-1], axis=-1)  # (M, 32r, 32px, 8)
    padded = np.zeros((m, n, n - 1 + IMAGE_SIZE, 8), dtype=np.uint8)
    padded[:, :, n - 1 : n - 1 + CANVAS] = rows.transpose(0, 2, 1, 3)
    # (M, px, window, 8, 64 rows) -> (M, px, py, 64 rows, 8 bytes); window s = 31 - py
    windows = sliding_window_view(padded, IMAGE_SIZE, axis=2)[:, :, ::-1]
    return windows.transpose(0, 1, 2, 4, 3).reshape(m, n * n, PACKED_BYTES)


def generate_packed(out: np.ndarray) -> None:
    """Fill ``out`` (737280, 512) uint8 with the packed procedural grid in official order.

    Each (shape, scale, orientation) canvas is rendered once by the same code as :func:`render` and pasted
    at the 1024 positions by integer shifts, which equal :func:`render`'s output exactly because the grid
    positions are whole pixels and all subsample offsets are exact binary fractions.
    """
    sizes = FACTOR_SIZES
    _, scales, thetas, _, _ = canonical_factor_values(sizes)
    canvas = _sample_offsets(CANVAS)[None, :] - POSITION_ORIGIN
    block = sizes[2] * sizes[3] * sizes[4]
    for shape in range(sizes[0]):
        for k, scale in enumerate(scales):
            masks = _coverage(shape, np.full(sizes[2], scale), thetas, canvas, canvas)
            start = (shape * sizes[1] + k) * block
            out[start : start + block] = _place(masks).reshape(block, PACKED_BYTES)


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
    """Factor sizes and values (colour dropped) plus ``latents_classes``, after structural checks."""
    try:
        with np.load(path, allow_pickle=True, encoding="latin1") as z:
            missing = {"imgs", "latents_classes", "metadata"} - set(z.files)
            if missing:
                raise _bad_file(path, f"missing arrays {sorted(missing)}")
            meta = z["metadata"][()]
            classes = z["latents_classes"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as exc:
        raise _bad_file(path, f"unreadable: {' '.join(str(exc).split())}") from None
    if not isinstance(meta, dict):
        raise _bad_file(path, "metadata is not a dict")
    meta = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in meta.items()}
    try:
        sizes = tuple(int(s) for s in meta["latents_sizes"])
        names = tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in meta["latents_names"])
    except (KeyError, TypeError, ValueError):
        raise _bad_file(path, "metadata lacks latents_sizes/latents_names") from None
    if names != ("color", *FACTOR_NAMES) or len(sizes) != 6 or sizes[0] != 1:
        raise _bad_file(path, f"latents {names} with sizes {sizes}, expected color (1 value), {FACTOR_NAMES}")
    sizes = sizes[1:]
    possible = meta.get("latents_possible_values") or {}
    possible = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in possible.items()}
    canonical = canonical_factor_values(sizes)
    values = tuple(
        np.asarray(possible.get(name, default), dtype=np.float64).ravel()
        for name, default in zip(FACTOR_NAMES, canonical)
    )
    if tuple(v.size for v in values) != sizes:
        raise _bad_file(path, "latents_possible_values do not match latents_sizes")
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
        source: str = "auto",
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
