"""The topographic grouper W of the Topographic VAE (Keller & Welling, NeurIPS 2021, arXiv 2109.01394).

The TVAE's variable is t = (z − μ)/√(W u²) (the reference adds μ, see :mod:`.topographic`), and W sums
squared u over a neighbourhood. Everything here is one operation: a **circular cross-correlation** of u² with a
0/1 kernel over two axes,

    v[..., a, b] = Σ_{(δ, ε) ∈ support} u²[..., (a + δ) mod A, (b + ε) mod B],

where the two axes are (time, capsule dimension) for the 1-D capsule models and (row, column) of a capsule
viewed as a square torus for the 2-D model. The kernels:

* **shifting** (TVAE, Σ_δ W Roll_δ(u²_{l+δ})): time offsets δ over a window of ``k_time`` frames and, at each δ,
  capsule offsets ε = δ + e with |e| ≤ ``n_off_diag`` (a band of K = 2·n_off_diag + 1): the neighbourhood seen
  at time l + δ is rolled by δ positions, so an activation moving one capsule position per frame keeps one
  coherent variance ("shifting temporal coherence").
* **stationary** (BubbleVAE; L0 is k_time = 1): a k_time × k_space box, no roll.
* **torus** (2-D TVAE): a k × k box over the capsule's own square grid.

Windows: an extent k covers offsets ``k//2 − k + 1 … k//2``, i.e. −m … m for odd k = 2m + 1 and
−(k/2 − 1) … k/2 for even k. This is exactly what the reference's circular ``F.pad`` (``k//2 − 1`` before,
``k//2`` after for even k) followed by a ``ConvTranspose3d`` with padding ``2·(k//2) − 1`` computes (derivation
in docs/topographic.md; tested against that construction). With k_time = S = 18 the window covers every frame.

``band_clip=True`` reproduces one more detail of the reference: its W is a k × k band matrix (the capsule
extent of the kernel equals ``k_time``), so at the extreme time offsets the band loses the entries that fall
outside the k × k square. The default (False) is the paper's sum, a full band of K at every offset.

The correlation is an index gather to a circularly padded array (wrap-around at both boundaries, for any
kernel extent, even one larger than the axis) followed by one ``conv2d``; it runs on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def window(k: int) -> range:
    """Offsets of an extent-``k`` window: −m…m for k = 2m+1, −(k/2−1)…k/2 for even k (the reference's)."""
    if k < 1:
        raise ValueError(f"a window needs an extent ≥ 1, got {k}")
    return range(k // 2 - k + 1, k // 2 + 1)


def shifting_support(k_time: int, n_off_diag: int, roll: bool = True, band_clip: bool = False) -> list[tuple[int, int]]:
    """(time offset δ, capsule offset ε) pairs of the shifting kernel; ``roll=False`` gives the stationary band."""
    cap_window = set(window(k_time))
    pairs = []
    for d in window(k_time):
        centre = d if roll else 0
        for e in range(-n_off_diag, n_off_diag + 1):
            if band_clip and centre + e not in cap_window:
                continue
            pairs.append((d, centre + e))
    return pairs


def box_support(k_a: int, k_b: int) -> list[tuple[int, int]]:
    """All pairs of a k_a × k_b box (the stationary BubbleVAE kernel, and the 2-D torus kernel)."""
    return [(a, b) for a in window(k_a) for b in window(k_b)]


def circular_correlate(x: torch.Tensor, support: list[tuple[int, int]]) -> torch.Tensor:
    """``v[..., a, b] = Σ_{(δ,ε) ∈ support} x[..., (a+δ) mod A, (b+ε) mod B]`` over the last two axes.

    Repeated pairs count twice (they never occur in the supports above).
    """
    if not support:
        raise ValueError("empty kernel support")
    lo_a, hi_a = min(d for d, _ in support), max(d for d, _ in support)
    lo_b, hi_b = min(e for _, e in support), max(e for _, e in support)
    kernel = torch.zeros(hi_a - lo_a + 1, hi_b - lo_b + 1, dtype=x.dtype, device=x.device)
    for d, e in support:
        kernel[d - lo_a, e - lo_b] += 1.0
    *lead, size_a, size_b = x.shape
    # circular padding by gather: row j of the padded array is row (j + lo) mod size, for any extent
    idx_a = torch.arange(lo_a, size_a + hi_a, device=x.device) % size_a
    idx_b = torch.arange(lo_b, size_b + hi_b, device=x.device) % size_b
    padded = x.index_select(-2, idx_a).index_select(-1, idx_b)
    out = F.conv2d(padded.reshape(-1, 1, *padded.shape[-2:]), kernel[None, None])  # cross-correlation
    return out.reshape(*lead, size_a, size_b)


class Grouper(nn.Module):
    """W as a fixed module: ``forward(u2)`` maps squared u ``(B, S, n_caps, cap_dim)`` to W u², same shape.

    Args:
        kind: ``shifting`` (TVAE), ``stationary`` (BubbleVAE, L0) or ``torus`` (2-D TVAE).
        k_time: window over frames (shifting, stationary).
        n_off_diag: half-width of the capsule band, K = 2·n_off_diag + 1 (shifting).
        k_space: capsule extent of the stationary box; side of the torus box.
        roll: shifting only; False keeps the neighbourhood in place at every time offset (= stationary with
            k_space = 2·n_off_diag + 1).
        band_clip: shifting only; the reference's k × k band matrix (see the module docstring).
    """

    def __init__(
        self,
        kind: str,
        k_time: int = 1,
        n_off_diag: int = 0,
        k_space: int = 1,
        roll: bool = True,
        band_clip: bool = False,
    ):
        super().__init__()
        self.kind = kind
        if kind == "shifting":
            self.support = shifting_support(k_time, n_off_diag, roll, band_clip)
        elif kind == "stationary":
            self.support = box_support(k_time, k_space)
        elif kind == "torus":
            self.support = box_support(k_space, k_space)
        else:
            raise ValueError(f"unknown grouper kind '{kind}'")

    def forward(self, u2: torch.Tensor) -> torch.Tensor:
        if self.kind == "torus":
            b, s, n_caps, dim = u2.shape
            side = round(dim**0.5)
            if side * side != dim:
                raise ValueError(f"the 2-D grouper needs a square capsule, got cap_dim={dim}")
            return circular_correlate(u2.reshape(b, s, n_caps, side, side), self.support).reshape(u2.shape)
        # time and capsule dimension as the last two axes: (B, n_caps, S, cap_dim)
        v = circular_correlate(u2.transpose(1, 2), self.support)
        return v.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, support={len(self.support)} offsets"
