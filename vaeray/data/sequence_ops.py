"""Batched image transformations for the Topographic VAE's sequence data (Keller & Welling 2021).

Each function takes a whole stack of frames and per-frame parameters, so a batch of B sequences of S frames is
one ``affine_grid``/``grid_sample`` call on the training device (no per-frame Python loop, no kornia).

* :func:`colourise`: a grey digit placed in the red channel and hue-shifted by ``h`` radians. The reference
  does ``kornia.color.adjust_hue`` on (g, 0, 0); for such a pixel HSV is (0, 1, g), so the result is exactly
  g · hsv→rgb(h, 1, 1): one colour vector per frame times the grey image (checked against torchvision's
  ``adjust_hue`` in the tests).
* :func:`rotate_scale`: counter-clockwise rotation by ``angle`` degrees and isotropic scaling about the image
  centre (the reference's ``get_rotation_matrix2d`` + ``warp_affine``), bilinear, zeros outside.
* :func:`perspective`: the image plane turned by ``angle`` about the vertical axis and, by the same angle,
  about the viewing axis, seen through a pinhole at focal length 2√2 half-widths (the reference's
  ``rotate_along_axis(phi=angle, gamma=angle)``; its exact camera constants are not reproduced). Edge-on views
  (90°, 270°) would be singular and are nudged by 1°, as the reference nudges its own degenerate angle.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def hue_colour(hue: torch.Tensor) -> torch.Tensor:
    """RGB of HSV (hue, 1, 1) for hue in radians: shape ``(*hue.shape, 3)``."""
    h6 = torch.remainder(hue, 2 * math.pi)[..., None] * (6 / (2 * math.pi))
    n = torch.tensor([5.0, 3.0, 1.0], dtype=h6.dtype, device=h6.device)  # R, G, B
    k = torch.remainder(n + h6, 6)
    return 1 - torch.clamp(torch.minimum(torch.minimum(k, 4 - k), torch.ones_like(k)), min=0)


def colourise(grey: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` grey frames and ``(N,)`` hues -> ``(N, 3, H, W)`` coloured frames."""
    return grey * hue_colour(hue)[:, :, None, None].to(grey.dtype)


def rotate_scale(images: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Rotate ``(N, C, H, W)`` counter-clockwise by ``angle`` degrees and scale by ``scale``, about the centre."""
    a = torch.deg2rad(angle.to(images.dtype))
    cos, sin = torch.cos(a) / scale, torch.sin(a) / scale
    # affine_grid maps output (x right, y down) to input coordinates: the inverse of the wanted motion
    theta = torch.stack(
        [torch.stack([cos, -sin, torch.zeros_like(a)], -1), torch.stack([sin, cos, torch.zeros_like(a)], -1)], -2
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _rotation(axis: str, a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    rows = {
        "y": [[c, z, s], [z, o, z], [-s, z, c]],
        "z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def perspective(images: torch.Tensor, angle: torch.Tensor, focal: float = 2 * math.sqrt(2)) -> torch.Tensor:
    """The plane of ``(N, C, H, W)`` rotated by ``angle`` degrees about the y and z axes, in perspective."""
    angle = angle.to(images.dtype)
    edge = torch.isclose(torch.remainder(angle, 180.0), torch.full_like(angle, 90.0))
    a = torch.deg2rad(torch.where(edge, angle + 1.0, angle))
    rot = _rotation("y", a) @ _rotation("z", a)  # (N, 3, 3)
    # plane point (x, y, 0) -> camera (R·(x, y, 0) + (0, 0, f)) -> image f·(X/Z, Y/Z): a homography H
    n = images.shape[0]
    h = torch.zeros(n, 3, 3, dtype=images.dtype, device=images.device)
    h[:, :, :2] = rot[:, :, :2]
    h[:, 2, 2] = focal
    h[:, :2] *= focal
    grid = F.affine_grid(torch.eye(2, 3, dtype=images.dtype, device=images.device).expand(n, 2, 3),
                         list(images.shape), align_corners=False)  # output pixel coordinates
    homo = torch.cat([grid, torch.ones_like(grid[..., :1])], -1)  # (N, H, W, 3)
    src = torch.einsum("nij,nhwj->nhwi", torch.linalg.inv(h), homo)
    w = src[..., 2:]
    # points that map behind the camera sample outside the image (zeros)
    src = torch.where(w > 1e-6, src[..., :2] / w.clamp(min=1e-6), torch.full_like(src[..., :2], 2.0))
    return F.grid_sample(images, src, mode="bilinear", padding_mode="zeros", align_corners=False)
