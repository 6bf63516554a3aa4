"""Models; importing this package registers them all (this import list is the model list)."""

from . import gaussian  # noqa: F401
from . import discrete  # noqa: F401  (dvae_spike_exp, dvaepp_*, dvaes_*)
from . import disentangle, factor  # noqa: F401  (beta_vae_h, beta_vae_b, beta_tcvae; factor_vae)
from . import hyperspherical  # noqa: F401  (svae)
from . import multilevel  # noqa: F401  (ml_vae)
from . import topographic  # noqa: F401  (tvae, bubble_vae, tvae_l0, nontvae, tvae_2d)
from .base import Model, ParamGroup

__all__ = ["Model", "ParamGroup"]
