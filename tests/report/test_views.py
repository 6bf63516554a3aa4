"""The families' own `vaeray plot` views draw what they say, on trials of the session's cross-family sweep
(S-VAE, TVAE L=0, DVAE#) and on tiny models built here (an S² S-VAE, an ML-VAE); a view on a model of another
family is one line naming the family it needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import Squares, tiny_config
from vaeray.config import validate
from vaeray.errors import ConfigError
from vaeray.report import plots
from vaeray.report.plots import PLOTS, LoadedRun, PlotOptions
from vaeray.train import build_model

from .conftest import run_vaeray

import vaeray.report.views  # noqa: E402,F401


@pytest.fixture(scope="module")
def trials(family_sweep):
    runs = {}
    for d in sorted(family_sweep.glob("experiments/exp-*/*-s0")):
        run = plots.load_run(d)
        runs[run.config["model"]["name"]] = run
    return runs


def built(model: dict, data=None) -> LoadedRun:
    data = data or Squares()
    cfg = validate({**tiny_config(), "model": model})
    return LoadedRun(build_model(cfg, data).eval(), cfg, data, torch.device("cpu"), 0, None)


def grid_shape(fig) -> tuple[int, ...]:
    return np.asarray(fig.axes[0].images[0].get_array()).shape


def test_great_circle_decodes_the_path_between_two_codes(trials):
    run = trials["svae"]
    fig = PLOTS["great_circle"][0](run, PlotOptions(steps=6))
    rows, cols = grid_shape(fig)[:2]
    assert cols > rows and "great-circle" in fig.axes[0].get_title()


def test_sphere_projects_s2_codes_inside_the_hammer_ellipse():
    run = built({"name": "svae", "spheres": [2], "net": "mlp", "hidden": [16]})
    fig = PLOTS["sphere"][0](run, PlotOptions(n=2))
    xy = fig.axes[0].collections[0].get_offsets()
    assert len(xy) == 32  # every example of the 32-image test set (fewer than 50·n)
    assert np.all((xy[:, 0] / (2 * np.sqrt(2))) ** 2 + (xy[:, 1] / np.sqrt(2)) ** 2 <= 1 + 1e-9)
    with pytest.raises(ConfigError, match="needs a first sphere S²"):
        PLOTS["sphere"][0](built({"name": "svae", "spheres": [4], "net": "mlp", "hidden": [16]}), PlotOptions())


def test_capsules_shows_the_activations_and_the_reconstruction(trials):
    fig = PLOTS["capsules"][0](trials["tvae_l0"], PlotOptions())
    assert len(fig.axes) >= 2 and "t over the sequence" in fig.axes[0].get_title()


def test_chains_decodes_the_persistent_chains(trials):
    fig = PLOTS["chains"][0](trials["dvaes_power"], PlotOptions(n=3))
    assert "PCD chains" in fig.axes[0].get_title() and grid_shape(fig)[0] > 0


def test_swap_grid_has_a_row_per_style_and_a_column_per_content():
    from tests.core.test_registry import GroupedSquares

    run = built({"name": "ml_vae", "hidden": [16], "style_dim": 2, "content_dim": 2}, GroupedSquares())
    fig = PLOTS["swap"][0](run, PlotOptions(n=3))
    h, w = grid_shape(fig)[:2]
    assert h == w  # (n + 1) x (n + 1) cells of square images


@pytest.mark.parametrize("kind, needs", [("swap", "multi-level"), ("chains", "discrete"), ("capsules", "topographic")])
def test_a_view_on_another_family_is_one_line(trials, kind, needs):
    with pytest.raises(ConfigError, match=f"needs a {needs}"):
        PLOTS[kind][0](trials["vae"], PlotOptions())


def test_cli_lists_and_draws_a_family_view(family_sweep, tmp_path, trials):
    listing = run_vaeray("list", "plots", cwd=tmp_path)
    assert all(k in listing.stdout for k in ("sphere", "great_circle", "capsules", "swap", "chains"))
    trial = next(d for d in sorted(family_sweep.glob("experiments/exp-*/*-s0")) if plots.load_run(d).config["model"]["name"] == "dvaes_power")
    r = run_vaeray("plot", str(trial), "chains", "--out", str(tmp_path / "chains.png"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "chains.png").stat().st_size > 1000
