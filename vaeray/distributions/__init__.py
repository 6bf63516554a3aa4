"""Distributions on spheres (von Mises–Fisher, Power Spherical, the uniform, products of spheres), with their
KLs registered in ``torch.distributions.kl``. Importing this package registers the KLs."""

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
