"""The procedural dSprites grid: our own drawing of the 737,280 sprites, for machines without the official file.

The geometry is ours (DeepMind's generator and its shape definitions are unpublished): the images follow the
official factors in the same order but are not pixel-identical to them. docs/data.md describes the shapes.
Lengths are in pixels at scale 1; a sprite is drawn at scale * these. Every shape fits in a circle of radius
14.2 px about its centre (the square's half-diagonal 10*sqrt(2)), so with the centre kept 16 px from the
left/top edge and 17 px from the right/bottom edge no sprite reaches the outermost rows or columns.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FACTOR_SIZES = (3, 6, 40, 32, 32)
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8

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
