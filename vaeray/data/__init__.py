"""Datasets; importing this package registers them all (this import list is the dataset list)."""

from . import binarized, caltech, dsprites, images, mnist, omniglot  # noqa: F401  (registration side effects)
from .base import Batch, Dataset, GroundTruthDataset, TensorDataset, default_data_dir
from .binarized import BinarizedMNIST, DynamicMNIST
from .caltech import CaltechSilhouettes
from .dsprites import DSprites
from .images import CelebA, Chairs
from .mnist import MNIST, FashionMNIST
from .omniglot import Omniglot

__all__ = [
    "Batch",
    "BinarizedMNIST",
    "CaltechSilhouettes",
    "CelebA",
    "Chairs",
    "DSprites",
    "Dataset",
    "DynamicMNIST",
    "FashionMNIST",
    "GroundTruthDataset",
    "MNIST",
    "Omniglot",
    "TensorDataset",
    "default_data_dir",
]
