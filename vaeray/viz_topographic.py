"""Plots of the Topographic VAE on one sequence: capsule activations over time and reconstructions.

``capsule_activations`` draws t (frames × capsule units): with a shifting TVAE the activation bumps move one
capsule position per frame, i.e. the roll shows as diagonal stripes within each capsule's block of columns.
``sequence_reconstructions`` shows the input frames over their reconstructions. Figures use matplotlib's
object API (no pyplot state), as :mod:`vaeray.viz`.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from .viz import image_grid


def capsule_activations(t: torch.Tensor, ax=None, capsules: int | None = None, title: str | None = None):
    """Heat map of one sequence's capsules ``(S, n_caps, cap_dim)``: row l is frame l, columns are the
    capsules side by side (the first ``capsules`` of them), white lines between capsules."""
    if t.dim() != 3:
        raise ValueError(f"expected (S, n_caps, cap_dim), got shape {tuple(t.shape)}")
    t = t[:, :capsules] if capsules is not None else t
    s, n_caps, dim = t.shape
    if ax is None:
        ax = Figure(figsize=(max(3.0, 0.12 * n_caps * dim), max(2.0, 0.2 * s))).add_subplot()
    ax.imshow(t.reshape(s, n_caps * dim).detach().cpu().numpy(), aspect="auto", cmap="viridis",
              interpolation="nearest")
    for c in range(1, n_caps):
        ax.axvline(c * dim - 0.5, color="white", linewidth=0.8)
    ax.set_xlabel("capsule unit (capsules side by side)")
    ax.set_ylabel("frame")
    if title:
        ax.set_title(title)
    return ax


def sequence_reconstructions(x: torch.Tensor, recon: torch.Tensor, ax=None, title: str | None = None):
    """Inputs ``(S, C, H, W)`` in the top row, reconstructions in the bottom row."""
    if x.shape != recon.shape or x.dim() != 4:
        raise ValueError(f"expected two (S, C, H, W) tensors of one shape, got {tuple(x.shape)}, {tuple(recon.shape)}")
    return image_grid(torch.stack([x, recon]).detach(), ax=ax, title=title)


@torch.no_grad()
def plot_sequence(model, x: torch.Tensor, capsules: int | None = 6) -> Figure:
    """A figure for one sequence ``x`` ``(S, C, H, W)``: capsule activations (top), inputs over reconstructions."""
    t = model.represent(x[None])[0]
    recon = model.reconstruct(x[None])[0]
    fig = Figure(figsize=(max(6.0, 0.7 * x.shape[0]), 5.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[1.2, 1.0])
    capsule_activations(t, ax=top, capsules=capsules, title="t over the sequence")
    sequence_reconstructions(x, recon, ax=bottom, title="input (top) and reconstruction (bottom)")
    return fig
