"""Importance-sampled log-likelihood of sequence models (the Topographic VAE), per sequence and per frame.

The model's ``log_likelihood(x, k, per=...)`` gives both estimates (:meth:`vaeray.models.topographic.
_Topographic.log_likelihood`), each with the −log K term of Burda et al. (2016, Eq. 8):

* ``per="sequence"``: the K-sample IWAE bound on log p(x_1..S) of the whole sequence — a lower bound that
  tightens with K, the number to compare across models;
* ``per="frame"``: what the paper reports, log (1/K) Σ_k w_lk frame by frame, which is not a bound on any
  marginal of the sequence model (t_l depends on u at other frames). The reference also omits −log K, so its
  figure is log K nats per frame higher; ``<name>_frame_reference`` reproduces that convention.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.base import Dataset
from ..errors import ConfigError
from ..registry import METRICS
from .common import Count, LogLikelihood, seeded, to_numpy


@METRICS.register("sequence_nll")
@seeded
def sequence_nll(
    dataset: Dataset,
    log_likelihood: LogLikelihood,
    *,
    seed: int = 0,
    k: Count = 10,
    num_sequences: Count | None = 200,
    batch_size: Count = 10,
) -> dict[str, float]:
    """Negative log-likelihoods in nats on the first ``num_sequences`` sequences (``k`` = 10 in the paper).

    Returns ``sequence_nll`` (per sequence), ``sequence_nll_per_frame`` (the same divided by S),
    ``sequence_nll_frame`` (the per-frame estimator, mean per frame) and ``sequence_nll_frame_reference``
    (that minus log K: the reference's number, without −log K).
    """
    n = len(dataset) if num_sequences is None else min(num_sequences, len(dataset))
    seq, frame, frames = [], [], 1
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x = dataset.batch(torch.arange(start, min(start + batch_size, n))).x
            try:
                seq.append(to_numpy(log_likelihood(x, k, per="sequence")).astype(np.float64))  # type: ignore[call-arg]
                per_frame = to_numpy(log_likelihood(x, k, per="frame")).astype(np.float64)  # type: ignore[call-arg]
            except TypeError:
                raise ConfigError("sequence_nll needs a sequence model (log_likelihood with per=...)",
                                  "eval.metrics.sequence_nll") from None
            frames = per_frame.shape[-1]
            frame.append(per_frame.reshape(-1))
    nll_seq = -float(np.concatenate(seq).mean())
    nll_frame = -float(np.concatenate(frame).mean())
    return {
        "sequence_nll": nll_seq,
        "sequence_nll_per_frame": nll_seq / frames,
        "sequence_nll_frame": nll_frame,
        "sequence_nll_frame_reference": nll_frame - math.log(k),
    }
