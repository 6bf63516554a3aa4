"""Metrics; importing this package registers them all in :data:`vaeray.registry.METRICS`.

A metric sees a dataset and a ``represent`` (or ``log_likelihood``) function, never a model, and returns a
flat ``dict[str, float]`` whose keys start with its name. Disentanglement metrics follow
google-research/disentanglement_lib (each module says where and how we differ); docs/metrics.md lists every
metric's definition, defaults and keys. Nothing here imports ``ray``.
"""

from . import aam, dci, factor_vae, likelihood, mig, modularity, sap  # noqa: F401  (registers the metrics)
from . import discrete  # noqa: F401  (dvae_nll)
from .evaluate import evaluate, validate_specs
from .likelihood import iwae_bound, log_importance_weights, log_likelihood
from ..registry import METRICS

# The result keys each metric reports: the sweep layer checks a sweep's `metric` against them before launch.
KEYS = {
    "mig": ("mig",),
    "aam": ("aam",),
    "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness_train", "dci_informativeness_test"),
    "factor_vae_score": ("factor_vae_score_train", "factor_vae_score_eval", "factor_vae_active_dims"),
    "sap": ("sap",),
    "modularity_explicitness": ("modularity", "explicitness_train", "explicitness_test"),
    "nll": ("nll", "nll_se", "bits_per_dim", "bits_per_dim_se"),
    "dvae_nll": (
        "dvae_nll", "dvae_nll_se", "dvae_nll_log_z", "dvae_nll_log_z_std", "dvae_nll_log_z_upper", "dvae_nll_upper",
    ),
}
for _name, _keys in KEYS.items():
    METRICS.get(_name).keys = _keys

__all__ = ["evaluate", "iwae_bound", "log_importance_weights", "log_likelihood", "validate_specs"]
