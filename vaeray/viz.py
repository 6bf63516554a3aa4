"""Plots researchers look at: seed means per configuration, latent traversals, reconstructions.

Figures are built with matplotlib's object API (no global pyplot state), so they work headless, in notebooks
and in tests. Notebooks under ``analysis/`` call these; no plotting logic lives only in a notebook.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .sweep import results


def configuration_labels(agg: pd.DataFrame, varying: Sequence[str]) -> list[str]:
    """``"model.name=vae, model.beta=4"``-style labels from the varying hyperparameters (hash if none vary)."""
    labels = []
    for _, row in agg.iterrows():
        shown = [(c, results._short(row[c])) for c in varying]
        parts = [f"{c.split('.', 1)[-1]}={v}" for c, v in shown if v != "-"]  # unset: not this model's parameter
        labels.append(", ".join(parts) or str(row["config_hash"]))
    return labels


def plot_seed_means(df: pd.DataFrame, metric: str, ax=None):
    """One bar per configuration: the metric's mean over seeds, error bar ± one std (ddof=1), seeds as dots."""
    agg = results.aggregate(df, [metric])
    varying = results.varying_columns(df)
    if ax is None:
        ax = Figure(figsize=(max(4.0, 1.2 * len(agg)), 3.5)).add_subplot()
    x = np.arange(len(agg))
    ax.bar(x, agg[f"{metric}_mean"], yerr=agg[f"{metric}_std"].fillna(0.0), capsize=4, color="#8da0cb")
    for i, cell in enumerate(agg["config_hash"]):
        values = df.loc[(df["config_hash"] == cell) & (df["status"] != "error"), metric]
        ax.plot(np.full(len(values), i), values, "k.", alpha=0.6)
    ax.set_xticks(x, configuration_labels(agg, varying), rotation=20, ha="right")
    ax.set_ylabel(f"{metric} (mean ± std over seeds)")
    return ax


@torch.no_grad()
def traversal(model, x: torch.Tensor, span: float = 2.0, steps: int = 7) -> torch.Tensor:
    """Latent traversals around the code of one observation ``x`` (1, *obs_shape).

    Row d varies latent d over ``represent(x)_d ± span`` (in prior standard deviations) and keeps the others
    fixed; returns decoded means of shape (D, steps, *obs_shape).
    """
    code = model.represent(x)[0]  # (D,)
    offsets = torch.linspace(-span, span, steps, device=code.device)
    z = code.repeat(code.numel(), steps, 1)  # (D, steps, D)
    idx = torch.arange(code.numel(), device=code.device)
    z[idx, :, idx] = code[idx, None] + offsets
    return model.decode(z.reshape(-1, code.numel())).mean.reshape(code.numel(), steps, *x.shape[1:])


def image_grid(images: torch.Tensor, ax=None, title: str | None = None):
    """Show (rows, cols, C, H, W) images in [0, 1] as one grid."""
    rows, cols, c, h, w = images.shape
    grid = images.permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c).clamp(0, 1).cpu().numpy()
    if ax is None:
        ax = Figure(figsize=(cols * 0.8, rows * 0.8)).add_subplot()
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_swap_grid(model, style_x: torch.Tensor, content_x: torch.Tensor, ax=None):
    """Style/content swap grid of a Multi-Level VAE (Bouchacourt et al. 2018, Fig. 3), as one image.

    The top-left cell is blank, the first row shows the content sources ``content_x``, the first column the
    style sources ``style_x``, and cell (i, j) decodes the style of ``style_x[i]`` with the content of
    ``content_x[j]`` (``model.swap``). Returns the axes of an (n_style + 1) × (n_content + 1) image grid.
    """
    swapped = model.swap(style_x, content_x)  # (rows, cols, C, H, W)
    rows, cols = swapped.shape[:2]
    grid = torch.zeros(rows + 1, cols + 1, *swapped.shape[2:], device=swapped.device)
    grid[0, 1:] = content_x
    grid[1:, 0] = style_x
    grid[1:, 1:] = swapped
    return image_grid(grid, ax=ax, title="row: style source, column: content source")
