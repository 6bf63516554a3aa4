"""Architectures only: they map tensors to raw parameters; models turn those into distributions."""

from .burgess import BurgessDecoder, BurgessEncoder
from .mlp import MLP

__all__ = ["BurgessDecoder", "BurgessEncoder", "MLP"]
