"""Metrics; importing this package registers them all in :data:`vaeray.registry.METRICS`.

A metric sees a dataset and a ``represent`` (or ``log_likelihood``) function, never a model, and returns a
flat ``dict[str, float]`` whose keys start with its name. Disentanglement metrics follow
google-research/disentanglement_lib (each module says where and how we differ); docs/metrics.md lists every
metric's definition, defaults and keys. Nothing here imports ``ray``.
"""

from . import aam, dci, factor_vae, likelihood, mig, modularity, sap  # noqa: F401  (registers the metrics)
from . import discrete  # noqa: F401  (dvae_nll)
from . import probes  # noqa: F401  (ML-VAE: probe, content_factors)
from . import equivariance, sequence_likelihood  # noqa: F401  (TVAE: equivariance, capcorr, sequence_nll)
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
    "nll": ("nll", "nll_se", "bits_per_dim", "bits_per_dim_se", "elbo", "elbo_se"),  # elbo: with elbo: true
    "probe": ("probe_chance", "probe_content_accuracy", "probe_style_accuracy")
    + tuple(f"probe_content_accuracy_k{k}" for k in (1, 2, 5, 10)),  # the default group_sizes
    "content_factors": (
        "content_mig", "content_dci_disentanglement", "content_dci_completeness", "content_dci_informativeness_test"
    ),
    "equivariance": ("equivariance_error", "equivariance_error_untrained", "equivariance_error_random",
                     "equivariance_error_ratio"),
    "capcorr": ("capcorr", "capcorr_posX", "capcorr_posY", "capcorr_orientation", "capcorr_scale"),
    "sequence_nll": ("sequence_nll", "sequence_nll_per_frame", "sequence_nll_frame", "sequence_nll_frame_reference"),
    "dvae_nll": (
        "dvae_nll", "dvae_nll_se", "dvae_nll_log_z", "dvae_nll_log_z_std", "dvae_nll_log_z_upper", "dvae_nll_upper",
    ),
}
for _name, _keys in KEYS.items():
    METRICS.get(_name).keys = _keys

# The key by which each metric ranks models and whether lower or higher is better: what checkpoint selection
# (train.early_stop_metric, vaeray/early_stopping.py) compares. A metric missing here cannot select.
GOALS = {
    "mig": ("mig", "max"),
    "aam": ("aam", "max"),
    "dci": ("dci_disentanglement", "max"),
    "factor_vae_score": ("factor_vae_score_eval", "max"),
    "sap": ("sap", "max"),
    "modularity_explicitness": ("modularity", "max"),
    "nll": ("nll", "min"),
    "probe": ("probe_content_accuracy", "max"),
    "content_factors": ("content_mig", "max"),
    "equivariance": ("equivariance_error", "min"),
    "capcorr": ("capcorr", "max"),
    "sequence_nll": ("sequence_nll", "min"),
    "dvae_nll": ("dvae_nll", "min"),
}
for _name, _goal in GOALS.items():
    METRICS.get(_name).goal = _goal

__all__ = ["evaluate", "iwae_bound", "log_importance_weights", "log_likelihood", "validate_specs"]
