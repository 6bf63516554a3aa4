"""Plots for the discrete VAEs with RBM priors: the AIS estimate of log Z along its annealing schedule (with the
reverse-AIS upper end and, for small machines, the exact value), and samples of the model drawn through the RBM
prior's persistent chains. Object-API matplotlib, as :mod:`vaeray.viz`."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from .distributions.ais import AISResult
from .viz import image_grid


def plot_ais_trace(result: AISResult, exact: float | None = None, ax=None):
    """The running AIS estimate of log Z_β against β (run with ``trace=True``), and the final sandwich."""
    if not result.trace:
        raise ValueError("the AIS result has no trace: run ais_log_z(..., trace=True)")
    if ax is None:
        ax = Figure(figsize=(5.0, 3.5)).add_subplot()
    ax.plot(result.betas[1:], result.trace, color="#1f77b4", label="AIS log Z_β (running)")
    ax.axhline(result.log_z, color="#1f77b4", ls="--", lw=1, label=f"AIS log Z = {result.log_z:.3f} ± {result.log_z_std:.3f}")
    if not math.isnan(result.log_z_upper):
        ax.axhline(result.log_z_upper, color="#d62728", ls=":", lw=1, label=f"reverse AIS = {result.log_z_upper:.3f}")
    if exact is not None:
        ax.axhline(exact, color="k", lw=1, label=f"exact = {exact:.3f}")
    ax.set_xlabel("β (inverse temperature)")
    ax.set_ylabel("log Z")
    ax.legend(fontsize=7, loc="lower right")
    return ax


@torch.no_grad()
def plot_prior_samples(model, rows: int = 8, cols: int = 8, ax=None):
    """Decoder means for ``rows × cols`` states of the model's persistent chains (samples of the RBM prior)."""
    x = model.sample(rows * cols)
    return image_grid(x.reshape(rows, cols, *model.observation_shape).float(), ax=ax, title="samples (PCD chains)")
