"""The families' own views for ``vaeray plot RUN_DIR KIND``, drawn by each family's viz module.

* ``sphere``: posterior means of an S² latent in the Hammer projection, coloured by label (hyperspherical);
* ``great_circle``: decoded means along the great circles between two examples' codes (hyperspherical);
* ``capsules``: a sequence's capsule activations over time above its inputs and reconstructions (topographic;
  on single images, a one-frame sequence);
* ``swap``: style of one image with the content of another, as a grid (multi-level);
* ``chains``: decoded states of the persistent Gibbs chains, i.e. samples of the RBM prior (discrete).

A view on a model of another family is a one-line ConfigError naming the family it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError
from .plots import LoadedRun, PlotOptions, plot_kind

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _needs(run: LoadedRun, method: str, family: str, kind: str) -> None:
    if not hasattr(run.model, method):
        name = run.config["model"]["name"]
        raise ConfigError(f"plot '{kind}' needs a {family} model; {name} is not one")


def _labelled(run: LoadedRun, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = np.random.default_rng(seed)
    idx = torch.as_tensor(np.sort(g.choice(len(run.data), size=min(n, len(run.data)), replace=False)))
    batch = run.data.batch(idx.to(run.data.device))
    y = batch.y if batch.y is not None else (batch.factors[:, 0] if batch.factors is not None else None)
    return batch.x.to(run.device), y


@plot_kind("sphere", "posterior means of an S² latent in the Hammer projection, coloured by label")
@torch.no_grad()
def sphere(run: LoadedRun, opts: PlotOptions) -> Figure:
    from matplotlib.figure import Figure

    from ..viz_sphere import plot_hammer

    _needs(run, "spheres", "hyperspherical (svae)", "sphere")
    if list(run.model.spheres)[:1] != [2]:
        raise ConfigError(f"plot 'sphere' needs a first sphere S² (model.spheres starting with 2), got {list(run.model.spheres)}")
    x, y = _labelled(run, 50 * opts.n, opts.seed)
    codes = run.model.represent(x)[:, :3].cpu()
    fig = Figure(figsize=(7, 4), layout="constrained")
    plot_hammer(codes, y, ax=fig.add_subplot(), title=f"Posterior means on S², Hammer projection ({len(codes)} examples)")
    return fig


@plot_kind("great_circle", "decoded means along the great circles between two examples' codes")
@torch.no_grad()
def great_circle(run: LoadedRun, opts: PlotOptions) -> Figure:
    from matplotlib.figure import Figure

    from ..viz_sphere import plot_interpolation

    _needs(run, "spheres", "hyperspherical (svae)", "great_circle")
    x = run.examples(2, opts.seed)
    fig = Figure(figsize=(max(4.0, 0.8 * opts.steps + 1), 1.8), layout="constrained")
    plot_interpolation(run.model, x[:1], x[1:], steps=opts.steps, ax=fig.add_subplot())
    return fig


@plot_kind("capsules", "capsule activations of a sequence over time, its inputs and reconstructions")
@torch.no_grad()
def capsules(run: LoadedRun, opts: PlotOptions) -> Figure:
    from ..viz_topographic import plot_sequence

    _needs(run, "n_caps", "topographic", "capsules")
    x = run.examples(1, opts.seed)[0]  # (S, C, H, W), or (C, H, W) for a model of single images
    return plot_sequence(run.model, x[None] if x.dim() == 3 else x)


@plot_kind("swap", "style of the row's image with the content of the column's image")
@torch.no_grad()
def swap(run: LoadedRun, opts: PlotOptions) -> Figure:
    from matplotlib.figure import Figure

    from ..viz import plot_swap_grid

    _needs(run, "swap", "multi-level (ml_vae)", "swap")
    x = run.examples(2 * opts.n, opts.seed)
    fig = Figure(figsize=(0.8 * opts.n + 1, 0.8 * opts.n + 1), layout="constrained")
    plot_swap_grid(run.model, x[: opts.n], x[opts.n :], ax=fig.add_subplot())
    return fig


@plot_kind("chains", "decoded states of the persistent Gibbs chains (samples of the RBM prior)")
@torch.no_grad()
def chains(run: LoadedRun, opts: PlotOptions) -> Figure:
    from matplotlib.figure import Figure

    from ..viz_discrete import plot_prior_samples

    _needs(run, "partition", "discrete (RBM prior)", "chains")
    fig = Figure(figsize=(0.8 * opts.n + 1, 0.8 * opts.n + 1), layout="constrained")
    plot_prior_samples(run.model, rows=opts.n, cols=opts.n, ax=fig.add_subplot())
    return fig
