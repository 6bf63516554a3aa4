"""Latent distributions beyond torch's own (DESIGN.md): each family's module registers its KLs on import."""

from . import ais, boltzmann, relaxed, smoothing  # noqa: F401  (DVAE family: RBM prior, AIS, relaxations)
