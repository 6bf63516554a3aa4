"""`vaeray plot` on a trained trial of the session sweep: each plot kind draws what it says (grid shapes, the
traversed dimension and its values, KL order), the GIF loops, and a family can register its own kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vaeray.report import plots
from vaeray.report.plots import PLOTS, PlotOptions

from .conftest import run_vaeray


@pytest.fixture(scope="module")
def trial(family_sweep):
    """The plain VAE's seed-0 trial directory (10 latent dimensions, 32x32 images)."""
    dirs = sorted(family_sweep.glob("experiments/exp-*/*-s0"))
    run = next(r for r in (plots.load_run(d) for d in dirs) if r.config["model"]["name"] == "vae")
    return run


def image(fig: Figure) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_symmetric_posterior_traversal_moves_one_dimension_per_row_in_kl_order(trial):
    opts = PlotOptions(mode="posterior", range="symmetric", span=2.0, steps=5, index=3)
    z, order, labels = plots.traversal_codes(trial, opts)
    x = trial.data.observations(torch.tensor([3]))
    centre = trial.model.represent(x)[0]
    kl = plots.kl_per_dim(trial)
    assert sorted(order) == list(range(10)) and all(kl[a] >= kl[b] for a, b in zip(order, order[1:]))
    for row, d in enumerate(order):
        others = [i for i in range(10) if i != d]
        assert torch.allclose(z[row][:, others], centre[others].expand(5, 9))
        assert torch.allclose(z[row, :, d], centre[d] + torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]), atol=1e-6)
    assert labels[0] == "-2.0σ" and labels[-1] == "+2.0σ"


def test_prior_quantile_traversal_uses_the_codes_quantiles_around_the_prior_mean(trial):
    opts = PlotOptions(mode="prior", range="quantiles", steps=3, dims=2)
    z, order, _ = plots.traversal_codes(trial, opts)
    codes = trial.model.represent(trial.examples(512, 0))
    assert z.shape == (2, 3, 10)
    d = order[0]
    assert torch.allclose(z[0, :, d], torch.quantile(codes[:, d], torch.tensor([0.05, 0.5, 0.95])))
    assert torch.all(z[0][:, [i for i in range(10) if i != d]] == 0)  # the prior mean elsewhere


def test_every_kind_draws_a_grid_of_the_right_shape(trial):
    o = PlotOptions(n=4, steps=5, dims=3)
    generic = {kind: fn for kind, (fn, _) in PLOTS.items() if fn.__module__ == plots.__name__}  # not the family views
    shapes = {kind: (image(fn(trial, o)).shape if kind != "traversal_gif" else None) for kind, fn in generic.items()}
    assert shapes["samples"][:2] == (4 * 32, 4 * 32) and shapes["data"][:2] == (4 * 32, 4 * 32)
    assert shapes["reconstructions"][:2] == (4 * 32, 4 * 32)
    assert shapes["traversals"][:2] == (3 * 32, 5 * 32)
    assert shapes["reconstruct_traverse"][:2] == (3 * 32, 7 * 32)
    fig = PLOTS["reconstruct_traverse"][0](trial, PlotOptions(steps=5, dims=3, index=7))
    first = image(fig)[:32, :32]
    assert np.allclose(first, trial.data.observations(torch.tensor([7]))[0, 0].numpy())  # column 0: the example
    data = image(PLOTS["data"][0](trial, o))
    assert set(np.unique(data)) <= {0.0, 1.0}  # real binary training images
    frames = PLOTS["traversal_gif"][0](trial, PlotOptions(steps=5, dims=3))
    assert len(frames) == 2 * 5 - 2 and frames[0].shape == (32, 3 * 32, 3) and frames[0].dtype == np.uint8


def test_cli_writes_png_and_gif(family_sweep, tmp_path, trial):
    r = run_vaeray("plot", str(trial.path), "traversals", "--dims", "4",  # the sweep's imports are found
                   "--out", str(tmp_path / "t.png"), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "t.png").stat().st_size > 1000
    from PIL import Image

    path = plots.save(PLOTS["traversal_gif"][0](trial, PlotOptions(steps=4, dims=2)), tmp_path / "g")
    with Image.open(path) as gif:
        assert path.suffix == ".gif" and gif.n_frames == 6 and gif.size == (2 * 32 * 3, 32 * 3)


def test_a_family_registers_its_own_view(trial):
    @plots.plot_kind("reporttest_codes", "posterior means of data, first two dimensions")
    def codes(run, opts):
        fig = Figure()
        z = run.model.represent(run.examples(36, opts.seed))
        fig.add_subplot().scatter(z[:, 0], z[:, 1])
        return fig

    try:
        fig = PLOTS["reporttest_codes"][0](trial, PlotOptions())
        assert len(fig.axes[0].collections[0].get_offsets()) == 36
        with pytest.raises(ValueError, match="registered twice"):
            plots.plot_kind("reporttest_codes", "again")(codes)
    finally:
        del PLOTS["reporttest_codes"]
