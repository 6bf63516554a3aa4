"""The TVAE grouper W against naive loops of its double sums (Keller & Welling 2021, shifting temporal coherence) and the reference's
padded transposed-convolution construction."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from vaeray.models.grouper import Grouper, window


def naive_shifting(u2, k_time, n_off, roll=True, band_clip=False):
    """v[b,l,c,d] = Σ_{δ ∈ window(k_time)} Σ_{|e| ≤ n_off} u2[b, (l+δ) mod S, c, (d+δ+e) mod D], as loops."""
    B, S, C, D = u2.shape
    win = list(window(k_time))
    v = torch.zeros_like(u2)
    for b, l, c, d in itertools.product(range(B), range(S), range(C), range(D)):
        total = 0.0
        for delta in win:
            for e in range(-n_off, n_off + 1):
                eps = (delta if roll else 0) + e
                if band_clip and eps not in win:
                    continue
                total += u2[b, (l + delta) % S, c, (d + eps) % D]
        v[b, l, c, d] = total
    return v


def naive_stationary(u2, k_time, k_space):
    B, S, C, D = u2.shape
    v = torch.zeros_like(u2)
    for b, l, c, d in itertools.product(range(B), range(S), range(C), range(D)):
        v[b, l, c, d] = sum(
            u2[b, (l + i) % S, c, (d + j) % D] for i in window(k_time) for j in window(k_space)
        )
    return v


def naive_torus(u2, k):
    B, S, C, D = u2.shape
    side = int(D**0.5)
    g = u2.reshape(B, S, C, side, side)
    v = torch.zeros_like(g)
    for b, l, c, r, q in itertools.product(range(B), range(S), range(C), range(side), range(side)):
        v[b, l, c, r, q] = sum(g[b, l, c, (r + i) % side, (q + j) % side] for i in window(k) for j in window(k))
    return v.reshape(u2.shape)


def test_windows_match_the_reference_padding():
    assert list(window(1)) == [0]
    assert list(window(5)) == [-2, -1, 0, 1, 2]
    assert list(window(4)) == [-1, 0, 1, 2]  # asymmetric pad: k/2 − 1 before, k/2 after
    assert list(window(18)) == list(range(-8, 10))


# (k_time, n_off_diag, S, cap_dim): odd and even windows, windows wider than the axis (every wrap-around),
# K = 1 and K = 3, a capsule shorter than the band shift range
CASES = [(3, 1, 5, 5), (4, 1, 6, 5), (5, 0, 5, 7), (1, 1, 4, 6), (6, 2, 6, 6), (7, 1, 4, 3), (2, 0, 3, 4)]


@pytest.mark.parametrize("k_time,n_off,S,D", CASES)
@pytest.mark.parametrize("roll,band_clip", [(True, False), (True, True), (False, False)])
def test_shifting_grouper_equals_the_naive_double_sum(k_time, n_off, S, D, roll, band_clip):
    torch.manual_seed(k_time * 10 + S)
    u2 = torch.rand(2, S, 2, D, dtype=torch.float64)
    got = Grouper("shifting", k_time=k_time, n_off_diag=n_off, roll=roll, band_clip=band_clip)(u2)
    torch.testing.assert_close(got, naive_shifting(u2, k_time, n_off, roll, band_clip), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k_time,k_space,S,D", [(5, 3, 6, 5), (1, 3, 4, 5), (4, 2, 5, 3), (6, 5, 4, 4)])
def test_stationary_grouper_equals_the_naive_box_sum(k_time, k_space, S, D):
    torch.manual_seed(0)
    u2 = torch.rand(2, S, 3, D, dtype=torch.float64)
    got = Grouper("stationary", k_time=k_time, k_space=k_space)(u2)
    torch.testing.assert_close(got, naive_stationary(u2, k_time, k_space), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,side", [(5, 6), (3, 4), (4, 5), (5, 3)])
def test_torus_grouper_equals_the_naive_2d_sum(k, side):
    torch.manual_seed(1)
    u2 = torch.rand(2, 2, 1, side * side, dtype=torch.float64)
    got = Grouper("torus", k_space=k)(u2)
    torch.testing.assert_close(got, naive_torus(u2, k), rtol=1e-12, atol=1e-12)


def test_roll_disabled_is_the_stationary_box():
    u2 = torch.rand(1, 6, 2, 7, dtype=torch.float64)
    a = Grouper("shifting", k_time=4, n_off_diag=1, roll=False)(u2)
    torch.testing.assert_close(a, Grouper("stationary", k_time=4, k_space=3)(u2))


def reference_conv(u2, k, n_off):
    """The reference's construction as its notes describe it: circular pad, then a frozen ConvTranspose3d with
    a k × k band-matrix weight (time = depth, capsule = height)."""
    B, S, C, D = u2.shape
    x = u2.permute(0, 2, 1, 3).reshape(B * C, 1, S, D, 1)
    before, after = (k // 2, k // 2) if k % 2 else (k // 2 - 1, k // 2)
    pad = 2 * (k // 2) if k % 2 else 2 * (k // 2) - 1
    x = F.pad(x, (0, 0, before, after, before, after), mode="circular")
    ones = torch.ones(k, k, dtype=u2.dtype)
    band = torch.triu(ones, -n_off) * torch.triu(ones, -n_off).T
    conv = torch.nn.ConvTranspose3d(1, 1, (k, k, 1), padding=(pad, pad, 0), bias=False).double()
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, :, :, 0] = band
        v = conv(x)
    return v.reshape(B, C, S, D).permute(0, 2, 1, 3)


@pytest.mark.parametrize("k,n_off,S", [(3, 1, 6), (5, 1, 8), (4, 1, 6), (6, 0, 8), (5, 2, 7)])
def test_band_clip_reproduces_the_reference_transposed_convolution(k, n_off, S):
    torch.manual_seed(2)
    u2 = torch.rand(2, S, 2, S, dtype=torch.float64)
    got = Grouper("shifting", k_time=k, n_off_diag=n_off, band_clip=True)(u2)
    torch.testing.assert_close(got, reference_conv(u2, k, n_off), rtol=1e-12, atol=1e-12)


def test_unknown_kind_and_non_square_torus_fail_clearly():
    with pytest.raises(ValueError, match="unknown grouper"):
        Grouper("spiral")
    with pytest.raises(ValueError, match="square capsule"):
        Grouper("torus", k_space=3)(torch.rand(1, 1, 1, 5))
