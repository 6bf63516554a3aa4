"""Grouped data for the Multi-Level VAE (Bouchacourt et al., AAAI 2018): batches made of groups that share a key.

Every item has an integer **group key**: the class label for MNIST / Fashion-MNIST, the combination of a
chosen set of shared factors for dSprites (e.g. ``shared: [shape]``: all squares form one key). A batch is
organised into groups of items with equal keys and carries ``Batch.group``: (B,) ids in [0, B), equal ids
meaning one group (the id is the batch position of the group's first member).

Two ways of forming groups, chosen by ``group_size``:

* ``null`` (the paper, Sec. 4): a uniformly random batch; its groups are the keys present in it (about 10
  groups of varying size at batch 256 on MNIST);
* ``k``: ``train.batch_size / k`` groups of exactly ``k`` members. A group's key is that of an item drawn
  uniformly (so keys come in proportion to their frequency), its ``k`` members are drawn uniformly, with
  replacement, from the items with that key. ``train.batch_size`` must be a multiple of ``k``; the number
  of groups per batch is configured through it.

The sampler runs on the dataset's device: the uniform draws come from the training loop's generator (so a
resumed run draws the same groups), and the per-key tables (items sorted by key, each key's start and count)
live on the device, so a step is a few gathers with no host round trip. ``batch`` assigns group ids from the
keys and the position (block ``i // k``), so *any* index gives valid groups (same key within a group);
indices from :meth:`GroupedData.sample_index` give exactly the sampled groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import DATASETS
from ..schema import Range
from .base import Batch, Dataset
from .dsprites import DSprites
from .mnist import MNIST, FashionMNIST

GroupSize = Annotated[int, Range(ge=1)] | None


def group_ids(keys: torch.Tensor, block: int, num_keys: int) -> torch.Tensor:
    """Group ids (B,) for items with ``keys`` (B,) in [0, num_keys): items in the same block of ``block``
    consecutive positions with equal keys form a group, whose id is the position of its first member (so ids
    lie in [0, B)).

    A stable sort and a segment minimum: O(B log B) and no host sync (``torch.unique`` would need one on
    CUDA), so a large evaluation batch costs no B×B comparison matrix.
    """
    n = keys.shape[0]
    position = torch.arange(n, device=keys.device)
    composite = (position // block) * num_keys + keys
    order = torch.sort(composite, stable=True).indices  # equal composites are runs, in position order
    sorted_keys = composite[order]
    starts = torch.ones_like(sorted_keys, dtype=torch.bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    run = torch.cumsum(starts.to(torch.int64), 0) - 1  # run index of each sorted item, in [0, B)
    first = torch.full((n,), n, dtype=torch.int64, device=keys.device)
    first = first.scatter_reduce(0, run, position[order], reduce="amin")
    ids = torch.empty_like(position)
    ids[order] = first[run]
    return ids


class GroupedData(Dataset):
    """Mixin over a concrete dataset: group keys, the on-device group sampler and ``Batch.group``.

    A subclass calls :meth:`init_groups` with every item's key after the base dataset is built.
    """

    group_size: int | None = None
    num_keys: int = 0

    def init_groups(self, keys: torch.Tensor, group_size: int | None) -> None:
        keys = keys.to(torch.int64)
        self.group_size = group_size
        self.num_keys = int(keys.max()) + 1
        counts = torch.bincount(keys, minlength=self.num_keys)
        self._keys = keys
        self._order = torch.argsort(keys, stable=True)  # items sorted by key: key g occupies one segment
        self._counts = counts
        self._starts = torch.cumsum(counts, 0) - counts
        self.to(self.device)

    def group_keys(self, index: torch.Tensor) -> torch.Tensor:
        return self._keys[index.to(self.device)]

    def same_key(self, anchors: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Items drawn uniformly among those sharing each anchor's key: ``u`` (A, m) uniforms -> (A, m) indices."""
        key = self._keys[anchors]
        offset = torch.floor(u * self._counts[key].unsqueeze(-1)).to(torch.int64)
        offset = torch.minimum(offset, self._counts[key].unsqueeze(-1) - 1)  # u * count can round up to count
        return self._order[self._starts[key].unsqueeze(-1) + offset]

    def sample_index(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.group_size is None:
            return super().sample_index(n, generator)
        k = self.group_size
        if n % k:
            raise ConfigError(f"train.batch_size {n} is not a multiple of data.group_size {k}", "data.group_size")
        anchors = torch.randint(len(self), (n // k,), generator=generator).to(self.device)
        u = torch.rand(n // k, k, generator=generator).to(self.device)
        return self.same_key(anchors, u).reshape(n)

    def batch(self, index: torch.Tensor) -> Batch:
        index = index.to(self.device)
        out = super().batch(index)
        out.group = group_ids(self.group_keys(index), self.group_size or max(len(index), 1), self.num_keys)
        return out

    def to(self, device: torch.device | str) -> GroupedData:
        super().to(device)
        for name in ("_keys", "_order", "_counts", "_starts"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).to(self.device))
        return self


@DATASETS.register("mnist_groups")
class MNISTGroups(GroupedData, MNIST):
    """MNIST grouped by digit class (the paper's MNIST setting). ``group_size``: null = the classes present in
    a random batch (the paper), k = groups of exactly k (module docstring); other keys as ``mnist``."""

    def __init__(self, group_size: GroupSize = None, **base):
        super().__init__(**base)
        self.init_groups(self.labels, group_size)


@DATASETS.register("fashion_mnist_groups")
class FashionMNISTGroups(GroupedData, FashionMNIST):
    """Fashion-MNIST grouped by garment class; ``group_size`` as ``mnist_groups``, other keys as ``fashion_mnist``."""

    def __init__(self, group_size: GroupSize = None, **base):
        super().__init__(**base)
        self.init_groups(self.labels, group_size)


class FactorGroups(GroupedData):
    """Mixin over a :class:`GroundTruthDataset`: the group key is the combination of the ``shared`` factors'
    classes (a mixed-radix number, computed from the index on the device); the other factors are the style."""

    shared: tuple[str, ...] = ()
    shared_factors: np.ndarray = np.zeros(0, dtype=np.int64)

    def init_factor_groups(self, shared: Sequence[str], group_size: int | None) -> None:
        names = tuple(self.factor_names)  # type: ignore[attr-defined]
        unknown = [f for f in shared if f not in names]
        if unknown or not shared:
            name = getattr(self, "registry_name", type(self).__name__)
            raise ConfigError(
                f"shared must name {name} factors ({', '.join(names)}), got {list(shared)}", "data.shared"
            )
        self.shared = tuple(f for f in names if f in shared)  # factor order, whatever the list's order
        self.shared_factors = np.array([names.index(f) for f in self.shared])
        self.init_groups(self.keys_from_index(torch.arange(len(self), device=self.device)), group_size)

    def keys_from_index(self, index: torch.Tensor) -> torch.Tensor:
        bases = self.factor_bases[self.shared_factors]  # type: ignore[attr-defined]
        bases = torch.as_tensor(bases, device=index.device)
        sizes_list = np.asarray(self.factor_sizes)[self.shared_factors].tolist()  # type: ignore[attr-defined]
        sizes = torch.as_tensor(sizes_list, device=index.device)
        classes = torch.div(index[:, None], bases, rounding_mode="floor") % sizes  # (N, shared)
        radix = torch.as_tensor(_radix(sizes_list), device=index.device)
        return (classes * radix).sum(-1)  # (no integer matmul on CUDA)


@DATASETS.register("dsprites_groups")
class DSpritesGroups(FactorGroups, DSprites):
    """dSprites grouped by the factors in ``shared`` (the content; the others are the style), e.g. ``[shape]``:
    each group holds sprites of one shape in random scales, orientations and positions. ``group_size``: k
    (default 2, pairs as in weak supervision) or null (the keys present in a random batch); other keys as
    ``dsprites``."""

    def __init__(self, shared: list[str] = ("shape",), group_size: GroupSize = 2, **base):  # type: ignore[assignment]
        super().__init__(**base)
        self.init_factor_groups(shared, group_size)


def _radix(sizes: Sequence[int]) -> list[int]:
    """Mixed-radix place values, last digit fastest: sizes (3, 6) -> [6, 1]."""
    out, place = [], 1
    for s in reversed(list(sizes)):
        out.append(place)
        place *= s
    return out[::-1]
