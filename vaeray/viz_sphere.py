"""Plots for hyperspherical latents (S-VAE family): prior samples, interpolation along great circles, and the
Hammer projection of S² codes coloured by label (the S-VAE paper's Figure 3-style latent maps).

Codes are points on a product of spheres (``model.represent``: the mean directions μ_i concatenated); every
operation here acts on each factor separately, using the model's ``ambient`` factor sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .viz import image_grid


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points along the great circle from unit vector ``a`` to ``b`` (…, p) at equal angles: (steps, …, p).

    Antipodal endpoints have no unique great circle; we then pass through a direction orthogonal to ``a``.
    """
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(-1, *([1] * a.dim()))
    cos = (a * b).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(cos)
    # the component of b orthogonal to a, as a unit vector (falls back to any orthogonal direction)
    ortho = b - cos * a
    norm = ortho.norm(dim=-1, keepdim=True)
    fallback = torch.roll(a, 1, dims=-1) - (torch.roll(a, 1, dims=-1) * a).sum(-1, keepdim=True) * a
    ortho = torch.where(norm > 1e-7, ortho / norm.clamp_min(1e-12), fallback / fallback.norm(dim=-1, keepdim=True))
    return torch.cos(t * omega) * a + torch.sin(t * omega) * ortho


def great_circle_codes(a: torch.Tensor, b: torch.Tensor, sizes: Sequence[int], steps: int) -> torch.Tensor:
    """Interpolate two product-of-spheres codes (Σ sizes,) factor by factor along great circles: (steps, Σ sizes)."""
    parts = [slerp(x, y, steps) for x, y in zip(a.split(list(sizes), -1), b.split(list(sizes), -1))]
    return torch.cat(parts, dim=-1)


@torch.no_grad()
def interpolation(model, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Decoded means along the great circles between the codes of ``x0`` and ``x1`` (1, *obs): (steps, *obs)."""
    codes = model.represent(torch.cat([x0, x1]))
    z = great_circle_codes(codes[0], codes[1], model.ambient, steps)
    return model.decode(z).mean


def hammer(points: torch.Tensor | np.ndarray) -> np.ndarray:
    """Hammer (equal-area) projection of unit vectors (N, 3) to the plane (N, 2), inside x²/8 + y²/2 ≤ 1.

    Longitude λ = atan2(y, x), latitude φ = asin(z); (x, y) = (2√2 cos φ sin(λ/2), √2 sin φ) / sqrt(1 + cos φ cos(λ/2)).
    """
    p = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    lon = np.arctan2(p[:, 1], p[:, 0])
    lat = np.arcsin(np.clip(p[:, 2], -1, 1))
    denom = np.sqrt(1 + np.cos(lat) * np.cos(lon / 2))
    return np.stack([2 * np.sqrt(2) * np.cos(lat) * np.sin(lon / 2) / denom, np.sqrt(2) * np.sin(lat) / denom], 1)


def plot_hammer(
    codes: torch.Tensor, labels: torch.Tensor | np.ndarray | None = None, ax=None, title: str | None = None
):
    """Scatter S² codes (N, 3) in the Hammer projection, coloured by ``labels``; returns the axes."""
    if codes.shape[-1] != 3:
        raise ValueError(f"the Hammer projection needs S² codes (N, 3), got {tuple(codes.shape)}")
    if ax is None:
        ax = Figure(figsize=(6, 3.4)).add_subplot()
    xy = hammer(codes)
    colours = None if labels is None else np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=4, cmap="tab10" if colours is not None else None)
    edge = np.linspace(0, 2 * np.pi, 200)
    ax.plot(2 * np.sqrt(2) * np.cos(edge), np.sqrt(2) * np.sin(edge), color="0.5", lw=0.8)  # the sphere's outline
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_samples(model, rows: int = 4, cols: int = 8, ax=None):
    """A grid of decoded prior samples (uniform on each sphere)."""
    images = model.sample(rows * cols)
    return image_grid(images.reshape(rows, cols, *images.shape[1:]), ax=ax, title="prior samples")


def plot_interpolation(model, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8, ax=None):
    """One row of decoded means along the great circles between the codes of ``x0`` and ``x1``."""
    images = interpolation(model, x0, x1, steps)
    return image_grid(images.unsqueeze(0), ax=ax, title="great-circle interpolation")
