"""Transformation sequences for the Topographic VAE (Keller & Welling, NeurIPS 2021).

A batch is ``Batch(x=(B, S, C, H, W))``: B sequences of S frames (``observation_shape = (S, C, H, W)``), with
``factors`` ``(B, S, K)`` the integer class of every factor in every frame and ``extra["transform"]`` ``(B,)``
the index (into :attr:`transform_names`) of what moves. Frames are made on the dataset's device from the
resident images by the batched ops of :mod:`.sequence_ops`.

**MNIST** (``mnist_sequences``), as the reference's ``Preprocessor``: 28×28 digits in the red channel of a
colour image, three factors with S values each: rotation 0°, 360/S°, … (20° steps for S = 18), scale
``linspace(0.60, 1.26, S)``, hue ``radians(angle) − π``. ``transforms``:

* ``single``: each sequence picks one of rotation / scale / hue uniformly; that factor cycles through its S
  values from a random start, the other two are fixed at random values (the paper's MNIST runs);
* ``rotation``, ``scale``, ``hue``: only that one (the others still fixed at random values);
* ``rotation_hue``: rotation and hue cycle together from one random start, scale 1 (``rotcolor``);
* ``perspective_hue``: the perspective angle and hue cycle together, scale 1 (``perspective``).

``test_transforms`` sets the test split's kind: the generalisation experiment trains on ``single`` and tests
on ``rotation_hue``. The train split draws fresh random parameters at every batch (torch's global generator
on the device, checkpointed by ``fit``); the test split's are a fixed table drawn from ``seed``.

**dSprites** (``dsprites_sequences``), as the reference's loader: the factor grid subsampled to shape (3) ×
scale (classes 1–5) × orientation (every 2nd of the first 30) × posX, posY (every 2nd of the first 30),
i.e. sizes 3, 5, 15, 15, 15; a sequence starts at a random point of that grid and one of posX, posY,
orientation, scale steps by one grid value per frame, modulo its size. ``factors`` holds subgrid classes.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import DATASETS
from ..schema import Range
from .base import Batch, Dataset, GroundTruthDataset
from .sequence_ops import colourise, perspective, rotate_scale

MNIST_KINDS = ("rotation", "scale", "hue", "rotation_hue", "perspective_hue")
MNIST_TRANSFORMS = ("single", *MNIST_KINDS)
Transforms = Literal["single", "rotation", "scale", "hue", "rotation_hue", "perspective_hue"]
Frames = Annotated[int, Range(ge=1)]


def factor_sets(s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The S angles (degrees), scales and hues (radians) of the reference's MNIST sequences."""
    angles = torch.arange(s, dtype=torch.float64) * (360.0 / s)
    return angles, torch.linspace(0.60, 1.26, s, dtype=torch.float64), torch.deg2rad(angles) - math.pi


def _draw(n: int, kinds: torch.Tensor, s: int, gen: torch.Generator | None, device) -> dict[str, torch.Tensor]:
    """Per-sequence parameters: a transform kind (uniform over ``kinds``), a start and three fixed classes."""
    opts = dict(generator=gen, device=device if gen is None else "cpu")
    pick = torch.randint(len(kinds), (n,), **opts)
    return {
        "kind": kinds.to(pick.device)[pick],
        "start": torch.randint(s, (n,), **opts),
        "fixed": torch.randint(s, (n, 3), **opts),
    }


@DATASETS.register("mnist_sequences")
class MNISTSequences(Dataset):
    """MNIST transformation sequences (see the module docstring).

    Args:
        n_transforms: S, frames per sequence (18 in the paper).
        transforms: the kind of sequence (``single``, ``rotation``, ``scale``, ``hue``, ``rotation_hue``,
            ``perspective_hue``).
        test_transforms: the test split's kind; None is ``transforms``.
        limit: use only the first ``limit`` digits of the split.
        seed: seeds the test split's fixed table.
        download: fetch MNIST with torchvision when absent.
    """

    splits = ("train", "test")
    transform_names = MNIST_KINDS
    factor_names = ("rotation", "scale", "hue")

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        n_transforms: Frames = 18,
        transforms: Transforms = "single",
        test_transforms: Transforms | None = None,
        limit: Annotated[int, Range(ge=1)] | None = None,
        seed: int = 0,
        download: bool = False,
    ):
        from .mnist import MNIST

        kind = transforms if split == "train" or test_transforms is None else test_transforms
        for name, value in (("transforms", transforms), ("test_transforms", test_transforms or transforms)):
            if value not in MNIST_TRANSFORMS:
                raise ConfigError(f"unknown {name} '{value}'; valid: {', '.join(MNIST_TRANSFORMS)}", f"data.{name}")
        if not isinstance(n_transforms, int) or n_transforms < 1:
            raise ConfigError(f"n_transforms must be a positive integer, not {n_transforms!r}", "data.n_transforms")
        digits = MNIST(data_dir, split=split, device="cpu", size=28, download=download)
        images, labels = digits.images, digits.labels
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.images, self.labels = images, labels
        self.kind = kind
        self.kinds = torch.tensor(
            [0, 1, 2] if kind == "single" else [MNIST_KINDS.index(kind)], dtype=torch.int64
        )
        self.n_transforms = s = n_transforms
        self.observation_shape = (s, 3, 28, 28)
        self.factor_sizes = (s, s, s)
        self.sets = factor_sets(s)
        self.table = None
        if split != "train":
            self.table = _draw(len(images), self.kinds, s, torch.Generator().manual_seed(seed), "cpu")
        self.device = torch.device("cpu")
        self.to(device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> MNISTSequences:
        super().to(device)
        self.images = self.images.to(self.device)
        self.sets = tuple(v.to(self.device) for v in self.sets)
        if self.table is not None:
            self.table = {k: v.to(self.device) for k, v in self.table.items()}
        return self

    def frame_classes(self, kind: torch.Tensor, start: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """``(B, S, 3)`` classes (rotation, scale, hue) of every frame; scale class −1 means scale 1."""
        s = self.n_transforms
        steps = (start[:, None] + torch.arange(s, device=start.device)) % s  # (B, S)
        classes = fixed[:, None, :].expand(-1, s, -1).clone()
        for k, moving in enumerate(((0,), (1,), (2,), (0, 2), (0, 2))):
            sel = kind == k
            for f in moving:
                classes[..., f] = torch.where(sel[:, None], steps, classes[..., f])
            if k >= 3:  # the combined kinds keep scale 1 (the reference's DualTransform scale set "1.0")
                classes[..., 1] = torch.where(sel[:, None], -1, classes[..., 1])
        return classes

    def batch(self, index: torch.Tensor) -> Batch:
        index = index.to(self.device)
        n, s = index.shape[0], self.n_transforms
        params = (_draw(n, self.kinds, s, None, self.device) if self.table is None
                  else {k: v[index] for k, v in self.table.items()})
        classes = self.frame_classes(params["kind"], params["start"], params["fixed"])
        angles, scales, hues = self.sets
        flat = classes.reshape(-1, 3)
        angle = angles[flat[:, 0]]
        scale = torch.where(flat[:, 1] < 0, torch.ones_like(angle), scales[flat[:, 1].clamp(min=0)])
        grey = self.images[index].float().div_(255.0)  # (B, 1, 28, 28)
        frames = grey.repeat_interleave(s, dim=0)  # (B·S, 1, 28, 28), frame-major within each sequence
        persp = (params["kind"] == MNIST_KINDS.index("perspective_hue")).repeat_interleave(s)
        warped = rotate_scale(frames, torch.where(persp, torch.zeros_like(angle), angle), scale.to(frames.dtype))
        if bool(persp.any()):
            warped = torch.where(persp[:, None, None, None], perspective(frames, angle.to(frames.dtype)), warped)
        x = colourise(warped, hues[flat[:, 2]].to(frames.dtype)).clamp_(0, 1)
        return Batch(x=x.reshape(n, s, 3, 28, 28), y=self.labels[index], factors=classes,
                     extra={"transform": params["kind"]})


DSPRITES_SUBGRID = ((0, 1, 3), (1, 1, 5), (0, 2, 15), (0, 2, 15), (0, 2, 15))  # (first class, step, size)
DSPRITES_MOVING = (3, 4, 2, 1)  # posX, posY, orientation, scale: the factors a sequence may move


@DATASETS.register("dsprites_sequences")
class DSpritesSequences(Dataset):
    """dSprites sequences (see the module docstring); frames from :class:`vaeray.data.dsprites.DSprites`.

    Args:
        n_transforms: S, frames per sequence (15 in the paper: x0 and 14 steps).
        source: the dSprites source (``auto``, ``official``, ``procedural``).
        num_test: sequences in the fixed test table (held-out draws for CapCorr).
        seed: seeds the test table.
    """

    splits = ("train", "test")
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = tuple(size for _, _, size in DSPRITES_SUBGRID)
    transform_names = ("posX", "posY", "orientation", "scale")

    def __init__(
        self,
        data_dir: str | None = None,
        split: str = "train",
        device: str = "cpu",
        n_transforms: Frames = 15,
        source: Literal["auto", "official", "procedural"] = "auto",
        num_test: Annotated[int, Range(ge=1)] = 1000,
        seed: int = 0,
        download: bool = False,
    ):
        if not isinstance(n_transforms, int) or n_transforms < 1:
            raise ConfigError(f"n_transforms must be a positive integer, not {n_transforms!r}", "data.n_transforms")
        self.base = self.make_base(data_dir, device, source, download)
        sub = torch.tensor(DSPRITES_SUBGRID, dtype=torch.int64)
        self.first, self.step, self.sizes = sub[:, 0], sub[:, 1], sub[:, 2]
        self.n_transforms = n_transforms
        self.observation_shape = (n_transforms, *self.base.observation_shape)
        self.binary = getattr(self.base, "binary", False)
        self.n_starts = int(np.prod(self.factor_sizes))
        self.table = None
        if split != "train":
            gen = torch.Generator().manual_seed(seed)
            self.table = (torch.randint(self.n_starts, (num_test,), generator=gen),
                          torch.randint(len(DSPRITES_MOVING), (num_test,), generator=gen))
        self.device = torch.device("cpu")
        self.to(device)

    @staticmethod
    def make_base(data_dir, device, source, download) -> GroundTruthDataset:
        from .dsprites import DSprites

        return DSprites(data_dir, device=device, source=source, download=download)

    def __len__(self) -> int:
        return self.n_starts if self.table is None else len(self.table[0])

    def to(self, device: torch.device | str) -> DSpritesSequences:
        super().to(device)
        self.base.to(self.device)
        for name in ("first", "step", "sizes"):
            setattr(self, name, getattr(self, name).to(self.device))
        if self.table is not None:
            self.table = tuple(t.to(self.device) for t in self.table)
        return self

    def batch(self, index: torch.Tensor) -> Batch:
        index = index.to(self.device)
        if self.table is None:
            start, moving = index, torch.randint(len(DSPRITES_MOVING), index.shape, device=self.device)
        else:
            start, moving = self.table[0][index], self.table[1][index]
        s = self.n_transforms
        sub_bases = np.concatenate([np.cumprod(self.factor_sizes[::-1])[::-1][1:], [1]])
        bases = torch.as_tensor(sub_bases, device=self.device)
        classes0 = torch.div(start[:, None], bases, rounding_mode="floor") % self.sizes  # (B, 5) subgrid classes
        factor = torch.as_tensor(DSPRITES_MOVING, device=self.device)[moving]  # (B,)
        onehot = torch.nn.functional.one_hot(factor, 5)  # (B, 5)
        t = torch.arange(s, device=self.device)
        classes = (classes0[:, None, :] + t[None, :, None] * onehot[:, None, :]) % self.sizes  # (B, S, 5)
        full = self.first + self.step * classes  # classes of the full dSprites grid
        full_bases = torch.as_tensor(self.base.factor_bases, device=self.device)
        frames = self.base.observations((full * full_bases).sum(-1).reshape(-1))
        return Batch(x=frames.reshape(len(index), s, *frames.shape[1:]), factors=classes, extra={"transform": moving})
