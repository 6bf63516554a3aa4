"""log I_v(κ) and A_p(κ) in torch against scipy / mpmath, and their closed-form gradients against finite differences."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as sp
import torch

from vaeray.distributions.bessel import bessel_ratio, log_iv, log_sphere_area, log_vmf_normalizer

ORDERS = [0.0, 0.5, 1.0, 1.5, 4.0, 24.0, 127.0]
KAPPAS = np.logspace(-3, 4, 29)


def test_log_iv_matches_scipy_wherever_scipy_is_finite() -> None:
    checked = 0
    for v in ORDERS:
        with np.errstate(divide="ignore"):
            ref = np.log(sp.ive(v, KAPPAS)) + KAPPAS
        ok = np.isfinite(ref)
        got = log_iv(v, torch.tensor(KAPPAS)).numpy()
        np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-10, atol=1e-10)
        checked += ok.sum()
    assert checked > 180


@pytest.mark.parametrize("v, kappa", [(255.0, 10.0), (511.0, 10.0), (127.0, 1e-3), (0.0, 1e4), (63.5, 40.1)])
def test_log_iv_where_scipy_underflows_matches_mpmath(v: float, kappa: float) -> None:
    ref = float(mpmath.log(mpmath.besseli(v, kappa)))
    assert log_iv(v, torch.tensor([kappa], dtype=torch.float64)).item() == pytest.approx(ref, rel=1e-11)


def test_log_iv_float32_input_is_computed_in_float64() -> None:
    # log I_127(0.1) ≈ −1.25e3: I itself is 1e-543, far below float32 (and float64) range
    got = log_iv(127.0, torch.tensor([0.1], dtype=torch.float32))
    assert got.dtype == torch.float64 and got.item() == pytest.approx(float(mpmath.log(mpmath.besseli(127, 0.1))))


@pytest.mark.parametrize("p", [2, 3, 5, 64, 256])
def test_gradients_of_normalizer_and_ratio_match_finite_differences(p: int) -> None:
    kappa = torch.tensor([1e-2, 0.7, 3.0, 45.0, 900.0], dtype=torch.float64, requires_grad=True)
    # forward values reach |log C| ~ 600 (p = 256), so central differences carry ~1e-7 of rounding
    assert torch.autograd.gradcheck(lambda k: log_vmf_normalizer(p, k), (kappa,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradcheck(lambda k: bessel_ratio(p, k), (kappa,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_ratio_matches_scipy_and_small_kappa_limit() -> None:
    for p in (2, 3, 10, 100):
        k = np.array([0.01, 1.0, 30.0, 300.0])
        ref = sp.ive(p / 2, k) / sp.ive(p / 2 - 1, k)
        np.testing.assert_allclose(bessel_ratio(p, torch.tensor(k)).detach().numpy(), ref, rtol=1e-10)
    assert bessel_ratio(256, torch.tensor([1e-3])).item() == pytest.approx(1e-3 / 256, rel=1e-5)  # A ~ κ/p


def test_log_sphere_area() -> None:
    assert log_sphere_area(2) == pytest.approx(math.log(2 * math.pi))
    assert log_sphere_area(3) == pytest.approx(math.log(4 * math.pi))
    assert log_sphere_area(5) == pytest.approx(math.log(8 * math.pi**2 / 3))
