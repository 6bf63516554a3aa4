"""Latent distributions beyond torch's own (DESIGN.md); importing this package registers their KLs in
``torch.distributions.kl``.

* spheres: von Mises–Fisher, Power Spherical, the uniform, products of spheres (Hyperspherical family);
* Boltzmann priors: the RBM with PCD chains, AIS for log Z, the DVAE smoothers and DVAE# relaxed priors
  (Discrete family).
"""

from . import ais, boltzmann, relaxed, smoothing  # noqa: F401  (DVAE family: RBM prior, AIS, relaxations)
from .bessel import bessel_ratio, log_iv, log_sphere_area, log_vmf_normalizer
from .power_spherical import PowerSpherical
from .product import ProductSpheres
from .sphere import HypersphericalUniform
from .vmf import VonMisesFisher

__all__ = [
    "HypersphericalUniform",
    "PowerSpherical",
    "ProductSpheres",
    "VonMisesFisher",
    "bessel_ratio",
    "log_iv",
    "log_sphere_area",
    "log_vmf_normalizer",
]
