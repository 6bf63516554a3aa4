"""Datasets; importing this package registers them all (this import list is the dataset list)."""

from . import dsprites, images, mnist  # noqa: F401  (registration side effects)
from . import groups  # noqa: F401  (ML-VAE grouped datasets)
from . import sequences  # noqa: F401  (mnist_sequences, dsprites_sequences)
from .base import Batch, Dataset, GroundTruthDataset, TensorDataset, default_data_dir
from .dsprites import DSprites
from .images import CelebA, Chairs
from .mnist import MNIST, FashionMNIST

__all__ = [
    "Batch",
    "CelebA",
    "Chairs",
    "DSprites",
    "Dataset",
    "FashionMNIST",
    "GroundTruthDataset",
    "MNIST",
    "TensorDataset",
    "default_data_dir",
]
