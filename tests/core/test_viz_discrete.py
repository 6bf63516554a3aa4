"""The discrete-VAE plots show what they claim: the AIS trace and its sandwich lines, a grid of prior samples."""

from __future__ import annotations

import pytest
import torch

from vaeray.distributions.ais import ais_log_z
from vaeray.distributions.boltzmann import exact_log_z
from vaeray.registry import MODELS, load_all
from vaeray.viz_discrete import plot_ais_trace, plot_prior_samples

load_all()


def test_ais_trace_plots_the_running_estimate_and_the_sandwich():
    g = torch.Generator().manual_seed(0)
    b1, b2, w = torch.randn(5, generator=g), torch.randn(7, generator=g), torch.randn(5, 7, generator=g) * 0.5
    r = ais_log_z(b1, b2, w, temperatures=30, particles=32, upper=True, trace=True, seed=0)
    exact = float(exact_log_z(b1, b2, w))
    ax = plot_ais_trace(r, exact=exact)
    line, *hlines = ax.get_lines()
    assert list(line.get_xdata()) == pytest.approx(r.betas[1:]) and list(line.get_ydata()) == pytest.approx(r.trace)
    assert [h.get_ydata()[0] for h in hlines] == pytest.approx([r.log_z, r.log_z_upper, exact])
    with pytest.raises(ValueError, match="trace"):
        plot_ais_trace(ais_log_z(b1, b2, w, temperatures=5, particles=4))


def test_prior_samples_grid_has_one_image_per_chain():
    torch.manual_seed(0)
    m = MODELS.build({"name": "dvaepp_exp", "units": 4, "hidden": 8, "num_chains": 12}, "model", observation_shape=(1, 5, 6))
    m.eval()
    ax = plot_prior_samples(m, rows=3, cols=4)
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (15, 24)
    expected = m.decode(torch.cat([m.rbm.chains1, m.rbm.chains2], -1)).mean  # (12, 1, 5, 6)
    assert torch.allclose(torch.as_tensor(shown[:5, 6:12]).float(), expected[1, 0], atol=1e-6)
