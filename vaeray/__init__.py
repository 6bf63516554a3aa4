"""vaeray: VAE studies (many models, hyperparameters and seeds) on one laptop or a Ray cluster.

The model package (``vaeray.models``, ``vaeray.data``, ``vaeray.metrics``, ``vaeray.train``) imports no Ray;
:mod:`vaeray.sweep.ray` is the one adapter folder that does.
"""

__version__ = "0.1.0"
