"""Test NLL of a discrete VAE with an RBM prior (DVAE# evaluation protocol, Vahdat, Andriyash & Macready 2018,
Sec. 5): the importance-sampled log p(x) of the *discrete* model with many samples (4000 in the paper), with
log Z estimated by AIS on the evaluated weights (1000 linear temperatures, 1024 particles).

log p(x) = log p̃(x) − log Z, so any error in log Z shifts every example's NLL by the same amount: AIS's
forward estimate is a stochastic lower bound of log Z (an optimistic NLL), reverse AIS an upper one (a
pessimistic NLL). Both ends are reported, with the spread of the forward estimate over its repeats.
"""

from __future__ import annotations

import math

from ..data.base import Dataset
from ..errors import ConfigError
from ..registry import METRICS
from .common import Count, LogLikelihood, seeded
from .likelihood import nll


@METRICS.register("dvae_nll")
@seeded
def dvae_nll(
    dataset: Dataset,
    log_likelihood: LogLikelihood,
    *,
    seed: int = 0,
    k: Count = 4000,
    num_examples: Count | None = None,
    batch_size: Count = 100,
) -> dict[str, float]:
    """Mean negative log-likelihood (nats) of the discrete model, with its log Z sandwich.

    Args:
        k: importance samples per example (DVAE#: 4000 at the final test, 100 during training).
        num_examples: a seeded random subset (None: the whole split, as the paper).
        batch_size: examples per ``log_likelihood`` call.

    Returns:
        ``dvae_nll`` and ``dvae_nll_se`` (over examples) with the AIS forward log Z; ``dvae_nll_log_z``,
        ``dvae_nll_log_z_std`` (spread over AIS repeats), ``dvae_nll_log_z_upper`` (reverse AIS; nan if not
        run) and ``dvae_nll_upper`` (the NLL with the upper log Z: the pessimistic end of the sandwich).
    """
    partition = getattr(log_likelihood, "partition", None)
    if partition is None:
        raise ConfigError("metric 'dvae_nll' needs a model with an RBM prior (dvae_*, dvaepp_*, dvaes_*)", "eval.metrics.dvae_nll")
    z = partition()  # estimated (or reused) before the likelihoods, which use the same value
    base = nll.__wrapped__(dataset, log_likelihood, seed=seed, k=k, num_examples=num_examples, batch_size=batch_size)
    upper = z.log_z_upper
    return {
        "dvae_nll": base["nll"],
        "dvae_nll_se": base["nll_se"],
        "dvae_nll_log_z": z.log_z,
        "dvae_nll_log_z_std": z.log_z_std,
        "dvae_nll_log_z_upper": upper,
        "dvae_nll_upper": base["nll"] + (upper - z.log_z) if not math.isnan(upper) else math.nan,
    }
