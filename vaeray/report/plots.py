"""``vaeray plot RUN_DIR KIND``: pictures of one trained model, and the registry families add their views to.

A *run* is anything holding a model and its config: a ``vaeray train`` run directory (``model.pt`` or
``checkpoints/last.pt``), a sweep's trial directory (its newest ``checkpoint_*/state.pt``) or a checkpoint file.
A plot kind is a function ``(run: LoadedRun, opts: PlotOptions) -> Figure | list[np.ndarray]`` registered in
:data:`PLOTS`; a Figure is saved as PNG, a list of frames (H, W, 3 uint8) as an animated GIF.

A family adds its own view (capsule rolls, sphere projections, swap grids) with the decorator, in its own
module under ``vaeray/report/``, plus one line in :data:`VIEWS`::

    @plot_kind("sphere", "posterior means projected on the sphere")
    def sphere(run: LoadedRun, opts: PlotOptions) -> Figure: ...

Traversals (Higgins et al. 2017, Fig. 7 style): each row one latent dimension, sorted by its mean KL to the
prior over a batch (most informative first, where the posterior and prior have an elementwise KL; else by the
variance of the codes); columns step it over a symmetric range ``centre ± span`` prior standard deviations or
over the 5%..95% quantiles of the codes in the data; the centre is the prior mean (``prior``) or the code of one
data example (``posterior``), other dimensions fixed there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch.distributions import Independent, kl_divergence

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: `vaeray list plots` stays light
    from matplotlib.figure import Figure

from .. import checkpoint as ckpt
from ..errors import ConfigError

VIEWS: tuple[str, ...] = ("vaeray.report.views",)  # modules that register the families' own plot kinds


@dataclass(frozen=True)
class PlotOptions:
    n: int = 8  # images per grid side (samples, data, reconstructions) / examples
    mode: Literal["prior", "posterior"] = "posterior"
    range: Literal["symmetric", "quantiles"] = "symmetric"
    span: float = 2.0  # symmetric range, in prior standard deviations
    steps: int = 9
    dims: int | None = None  # at most this many latent dimensions (the highest-KL ones)
    index: int = 0  # the data example a posterior traversal starts from
    seed: int = 0


@dataclass
class LoadedRun:
    model: Any
    config: dict
    data: Any
    device: torch.device
    step: int
    path: Path

    def examples(self, n: int, seed: int) -> torch.Tensor:
        g = np.random.default_rng(seed)
        idx = torch.as_tensor(np.sort(g.choice(len(self.data), size=min(n, len(self.data)), replace=False)))
        return self.data.observations(idx.to(self.data.device)).to(self.device)


Plot = Callable[[LoadedRun, PlotOptions], Any]
PLOTS: dict[str, tuple[Plot, str]] = {}


def plot_kind(name: str, help: str) -> Callable[[Plot], Plot]:
    def deco(fn: Plot) -> Plot:
        if name in PLOTS:
            raise ValueError(f"plot kind '{name}' registered twice")
        PLOTS[name] = (fn, help)
        return fn

    return deco


def _state_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in ("model.pt", "checkpoints/last.pt"):
        if (path / name).is_file():
            return path / name
    trial = sorted(path.glob("checkpoint_*/state.pt"))
    if trial:
        return trial[-1]
    raise ConfigError(f"{path} holds no model (no model.pt, checkpoints/last.pt or checkpoint_*/state.pt)")


def load_run(path: str | Path, device: str | None = None, data_dir: str | None = None, imports: tuple[str, ...] = ()) -> LoadedRun:
    """The model of a run directory, trial directory or checkpoint file, with its training data. ``imports``:
    modules that register the run's own models/datasets (a sweep's ``sweep.imports``)."""
    from ..registry import load_all
    from ..train import build_dataset, build_model, resolve_device

    load_all()
    for module in imports:
        importlib.import_module(module)
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    for parent in list(path.resolve().parents)[:4]:  # a sweep's trial: import the sweep's own plugins too
        if (parent / "sweep.yaml").is_file() and (parent / "experiments").is_dir():
            from .api import _import_plugins

            _import_plugins(str(parent))
            break
    state = ckpt.load(_state_file(path))
    config = state["config"]
    dev = resolve_device(device or "cpu")
    data = build_dataset(config, "train", dev, data_dir)
    model = build_model(config, data).to(dev)
    model.load_state_dict(state["model"])
    model.eval()
    return LoadedRun(model, config, data, dev, int(state.get("step", 0)), path)


def _grid(images: torch.Tensor, title: str, row_labels: list[str] | None = None, col_labels: list[str] | None = None) -> Figure:
    """(rows, cols, C, H, W) in [0, 1] as one image with optional row/column labels."""
    rows, cols, c, h, w = images.shape
    grid = images.permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c).clamp(0, 1).cpu().numpy()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(3.0, cols * 0.75 + 1.2), max(2.0, rows * 0.75 + 0.8)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([] if col_labels is None else (np.arange(cols) + 0.5) * w - 0.5, col_labels or [], fontsize=6)
    ax.set_yticks([] if row_labels is None else (np.arange(rows) + 0.5) * h - 0.5, row_labels or [], fontsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    return fig


@torch.no_grad()
def kl_per_dim(run: LoadedRun, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Mean KL(q(z_d|x) || p(z_d)) per latent dimension over ``n`` data examples; for posteriors without an
    elementwise KL (non-factorised families) the variance of the codes stands in (both rank informativeness)."""
    x = run.examples(n, seed)
    q, p = run.model.encode(x), run.model.prior()
    try:
        qb = q.base_dist if isinstance(q, Independent) else q
        pb = p.base_dist if isinstance(p, Independent) else p
        kl = kl_divergence(qb, pb)
        if kl.shape[-1:] == run.model.represent(x).shape[-1:]:
            return kl.reshape(-1, kl.shape[-1]).mean(0)
    except (NotImplementedError, AttributeError, RuntimeError):
        pass
    return run.model.represent(x).var(0)


@torch.no_grad()
def traversal_codes(run: LoadedRun, opts: PlotOptions) -> tuple[torch.Tensor, list[int], list[str]]:
    """Codes of shape (dims, steps, D), the dimensions (KL order) and column labels."""
    kl = kl_per_dim(run, seed=opts.seed)
    order = torch.argsort(kl, descending=True).tolist()[: opts.dims or None]
    codes = run.model.represent(run.examples(512, opts.seed))  # (N, D)
    if opts.mode == "posterior":
        x = run.data.observations(torch.tensor([opts.index], device=run.data.device)).to(run.device)
        centre = run.model.represent(x)[0]
    else:
        prior = run.model.prior()
        centre = prior.mean if prior.mean.dim() == 1 else prior.mean.reshape(-1)
    if opts.range == "quantiles":
        qs = torch.linspace(0.05, 0.95, opts.steps, device=codes.device)
        values = torch.quantile(codes, qs, dim=0).T  # (D, steps)
        labels = [f"q{q:.2f}" for q in qs.tolist()]
    else:
        prior = run.model.prior()
        try:
            scale = prior.stddev.reshape(-1)
        except (NotImplementedError, AttributeError):
            scale = torch.ones_like(centre)
        offsets = torch.linspace(-opts.span, opts.span, opts.steps, device=centre.device)
        values = centre[:, None] + scale[:, None] * offsets[None, :]
        labels = [f"{o:+.1f}σ" for o in offsets.tolist()]
    z = centre.repeat(len(order), opts.steps, 1)  # (dims, steps, D)
    for row, d in enumerate(order):
        z[row, :, d] = values[d]
    return z, order, labels


@torch.no_grad()
def _decode(run: LoadedRun, z: torch.Tensor) -> torch.Tensor:
    lead = z.shape[:-1]
    return run.model.decode(z.reshape(-1, z.shape[-1])).mean.reshape(*lead, *run.model.observation_shape)


def _dim_labels(run: LoadedRun, order: list[int], opts: PlotOptions) -> list[str]:
    kl = kl_per_dim(run, seed=opts.seed)
    return [f"z{d} KL {kl[d]:.2f}" for d in order]


@plot_kind("samples", "decoded means of draws from the prior")
@torch.no_grad()
def samples(run: LoadedRun, opts: PlotOptions) -> Figure:
    torch.manual_seed(opts.seed)
    x = run.model.sample(opts.n * opts.n).reshape(opts.n, opts.n, *run.model.observation_shape)
    return _grid(x, f"Samples from the prior (decoder means), {run.config['model']['name']} at step {run.step}")


@plot_kind("data", "examples from the training data")
def data(run: LoadedRun, opts: PlotOptions) -> Figure:
    x = run.examples(opts.n * opts.n, opts.seed).reshape(opts.n, opts.n, *run.model.observation_shape)
    return _grid(x, f"Training data: {run.config['data']['name']}")


@plot_kind("reconstructions", "data (odd rows) and their reconstructions from the posterior mean (even rows)")
@torch.no_grad()
def reconstructions(run: LoadedRun, opts: PlotOptions) -> Figure:
    x = run.examples(opts.n * opts.n // 2 * 2, opts.seed)[: (opts.n // 2) * opts.n]
    rec = _decode(run, run.model.represent(x))
    rows = opts.n // 2
    pair = torch.stack([x.reshape(rows, opts.n, *x.shape[1:]), rec.reshape(rows, opts.n, *x.shape[1:])], 1)
    labels = ["data", "recon."] * rows
    return _grid(pair.reshape(2 * rows, opts.n, *x.shape[1:]), f"Reconstructions (decoder mean at the posterior mean), step {run.step}", labels)


@plot_kind("traversals", "latent traversals, one row per dimension sorted by KL (--mode, --range, --span, --steps)")
def traversals(run: LoadedRun, opts: PlotOptions) -> Figure:
    z, order, cols = traversal_codes(run, opts)
    where = f"example {opts.index}" if opts.mode == "posterior" else "the prior mean"
    how = f"±{opts.span:g} prior std" if opts.range == "symmetric" else "5–95% quantiles of the codes"
    return _grid(_decode(run, z), f"Latent traversals around {where} ({how}); rows by KL", _dim_labels(run, order, opts), cols)


@plot_kind("reconstruct_traverse", "an example, its reconstruction, then its traversal per dimension")
@torch.no_grad()
def reconstruct_traverse(run: LoadedRun, opts: PlotOptions) -> Figure:
    opts = PlotOptions(**{**opts.__dict__, "mode": "posterior"})
    z, order, cols = traversal_codes(run, opts)
    x = run.data.observations(torch.tensor([opts.index], device=run.data.device)).to(run.device)
    rec = _decode(run, run.model.represent(x))
    images = torch.cat([x.expand(len(order), *x.shape[1:])[:, None], rec.expand(len(order), *x.shape[1:])[:, None], _decode(run, z)], 1)
    return _grid(images, f"Example {opts.index}: data, reconstruction, traversals (rows by KL)", _dim_labels(run, order, opts), ["data", "recon.", *cols])


@plot_kind("traversal_gif", "an animated traversal: every dimension side by side, one frame per step (GIF)")
def traversal_gif(run: LoadedRun, opts: PlotOptions) -> list[np.ndarray]:
    z, order, _ = traversal_codes(run, opts)
    images = _decode(run, z).clamp(0, 1)  # (dims, steps, C, H, W)
    frames = []
    steps = list(range(opts.steps)) + list(range(opts.steps - 2, 0, -1))  # there and back: a seamless loop
    for s in steps:
        row = images[:, s].permute(2, 0, 3, 1).reshape(images.shape[-2], -1, images.shape[2])  # (H, dims*W, C)
        frame = (row.cpu().numpy() * 255).round().astype(np.uint8)
        frames.append(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
    return frames


def save(result: Any, out: str | Path) -> Path:
    """A Figure as PNG, frames as an animated GIF (PIL); the suffix is set to match."""
    from matplotlib.figure import Figure

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, Figure):
        out = out.with_suffix(".png")
        result.savefig(out, dpi=120)
        return out
    from PIL import Image

    out = out.with_suffix(".gif")
    scale = max(1, 96 // result[0].shape[0])  # small images upscaled so the GIF is viewable
    imgs = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in result]
    imgs[0].save(out, save_all=True, append_images=imgs[1:], duration=120, loop=0)
    return out


def make(path: str | Path, kind: str, opts: PlotOptions | None = None, device: str | None = None,
         data_dir: str | None = None, imports: tuple[str, ...] = ()) -> Any:  # fmt: skip
    """Plot ``kind`` of the run at ``path``: a Figure or GIF frames (see :func:`save`)."""
    for module in VIEWS:
        importlib.import_module(module)
    if kind not in PLOTS:
        from ..errors import did_you_mean

        raise ConfigError(f"unknown plot kind '{kind}'; {did_you_mean(kind, PLOTS)}")
    run = load_run(path, device=device, data_dir=data_dir, imports=imports)
    return PLOTS[kind][0](run, opts or PlotOptions())
