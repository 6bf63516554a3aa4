"""TVAE sequence data: the batched transformation ops and the MNIST / dSprites sequence datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms.functional import adjust_hue

from vaeray.data import dsprites as ds
from vaeray.data.base import GroundTruthDataset
from vaeray.data.sequence_ops import colourise, hue_colour, perspective, rotate_scale
from vaeray.data.sequences import DSpritesSequences, MNISTSequences, factor_sets
from vaeray.errors import ConfigError


def blob(n=28):
    """An asymmetric test image: an L-shaped bar, so rotations and flips are all distinguishable."""
    img = torch.zeros(1, 1, n, n, dtype=torch.float64)
    img[..., 5:20, 8:11] = 1.0
    img[..., 17:20, 8:22] = 0.5
    return img


@pytest.mark.parametrize("hue", [-3.0, -1.2, 0.0, 0.4, 2.5])
def test_colourise_equals_torchvision_adjust_hue_of_the_red_channel_digit(hue):
    grey = torch.rand(1, 1, 8, 8)
    red = torch.cat([grey, torch.zeros_like(grey), torch.zeros_like(grey)], 1)
    factor = (hue / (2 * math.pi) + 0.5) % 1.0 - 0.5  # torchvision takes the shift as a fraction in [−½, ½]
    want = adjust_hue(red, factor)
    torch.testing.assert_close(colourise(grey, torch.tensor([hue])), want, atol=2e-6, rtol=0)


def test_hue_colour_primaries():
    got = hue_colour(torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3, math.pi]))
    torch.testing.assert_close(got, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]]))


def test_rotation_and_scale():
    img = blob()
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    torch.testing.assert_close(rotate_scale(img, zero, one), img)
    for k in (1, 2, 3):  # counter-clockwise quarter turns are exact on the pixel grid
        torch.testing.assert_close(rotate_scale(img, 90.0 * k * one, one), torch.rot90(img, k, (-2, -1)))
    small = rotate_scale(img, zero, 0.5 * one)
    assert small.sum() / img.sum() == pytest.approx(0.25, rel=0.05)  # area shrinks by the scale squared


def test_perspective_identity_flip_and_foreshortening():
    img = blob()
    torch.testing.assert_close(perspective(img, torch.zeros(1)), img)
    # 180° about y and about z is a vertical flip of the plane, seen face on
    torch.testing.assert_close(perspective(img, torch.full((1,), 180.0)), img.flip(-2), atol=1e-9, rtol=0)
    tilted = perspective(img, torch.full((1,), 60.0))
    assert 0.2 < tilted.sum() / img.sum() < 0.8  # foreshortened, not blank


@pytest.fixture(scope="module")
def rot_data(mnist_root):
    return MNISTSequences(str(mnist_root), split="train", n_transforms=4, transforms="rotation", limit=50)


def test_mnist_rotation_sequences_cycle_by_exact_quarter_turns(rot_data):
    torch.manual_seed(0)
    b = rot_data.batch(torch.arange(6))
    assert b.x.shape == (6, 4, 3, 28, 28) and b.factors.shape == (6, 4, 3) and b.x.min() >= 0 and b.x.max() <= 1
    assert (b.extra["transform"] == 0).all()
    f = b.factors
    assert ((f[:, 1:, 0] - f[:, :-1, 0]) % 4 == 1).all()  # the angle steps once per frame, cyclically
    assert (f[:, 1:, 1:] == f[:, :1, 1:]).all()  # scale and hue stay fixed
    torch.testing.assert_close(b.x[:, 1:], torch.rot90(b.x[:, :-1], 1, (-2, -1)), atol=1e-5, rtol=0)
    # frame 0 made by hand from the digit
    angles, scales, hues = factor_sets(4)
    grey = rot_data.images[:6].double() / 255
    want = colourise(rotate_scale(grey, angles[f[:, 0, 0]], scales[f[:, 0, 1]]), hues[f[:, 0, 2]])
    torch.testing.assert_close(b.x[:, 0].double(), want, atol=1e-5, rtol=0)


def test_mnist_single_mixes_kinds_and_the_test_split_is_fixed(mnist_root):
    train = MNISTSequences(str(mnist_root), n_transforms=5, limit=40)
    kinds = train.batch(torch.arange(40)).extra["transform"]
    assert set(kinds.tolist()) == {0, 1, 2}
    test = MNISTSequences(str(mnist_root), split="test", n_transforms=5, test_transforms="rotation_hue", limit=20)
    a, b = test.batch(torch.arange(20)), test.batch(torch.arange(20))
    assert torch.equal(a.x, b.x) and (a.extra["transform"] == 3).all()
    assert (a.factors[..., 0] == a.factors[..., 2]).all() and (a.factors[..., 1] == -1).all()  # together, scale 1
    persp = MNISTSequences(str(mnist_root), split="test", n_transforms=18, transforms="perspective_hue", limit=4)
    assert persp.batch(torch.arange(4)).x.shape == (4, 18, 3, 28, 28)


def test_mnist_sequence_config_errors(mnist_root):
    with pytest.raises(ConfigError, match="unknown transforms 'shear'"):
        MNISTSequences(str(mnist_root), transforms="shear")


class RenderedSprites(GroundTruthDataset):
    """The full dSprites factor grid drawn on demand by the project's procedural renderer (no 360 MiB cache)."""

    factor_names = ds.FACTOR_NAMES
    factor_sizes = ds.FACTOR_SIZES
    observation_shape = (1, 64, 64)
    binary = True

    def __len__(self):
        return int(np.prod(self.factor_sizes))

    def observations(self, index):
        values = ds.canonical_factor_values()
        f = self.factors_from_index(index.cpu().numpy())
        imgs = ds.render(f[:, 0], *(values[k][f[:, k]] for k in range(1, 5)))
        return torch.as_tensor(imgs, dtype=torch.float32)[:, None].to(self.device)


class SmallSpritesSequences(DSpritesSequences):
    @staticmethod
    def make_base(data_dir, device, source, download):
        return RenderedSprites().to(device)


def test_dsprites_sequences_step_one_factor_on_the_subgrid():
    data = SmallSpritesSequences(split="test", num_test=12, seed=3)
    assert data.factor_sizes == (3, 5, 15, 15, 15) and data.observation_shape == (15, 1, 64, 64)
    b = data.batch(torch.arange(12))
    assert b.x.shape == (12, 15, 1, 64, 64) and b.factors.shape == (12, 15, 5)
    moving = torch.tensor([3, 4, 2, 1])[b.extra["transform"]]
    sizes = torch.tensor(data.factor_sizes)
    for i in range(12):
        f, m = b.factors[i], moving[i]
        assert ((f[1:, m] - f[:-1, m]) % sizes[m] == 1).all()
        others = [k for k in range(5) if k != m]
        assert (f[:, others] == f[:1, others]).all()
    # frames are the base grid's images at the subgrid classes (first + step · class)
    f = b.factors[0]
    full = torch.tensor([0, 1, 0, 0, 0]) + torch.tensor([1, 1, 2, 2, 2]) * f
    want = RenderedSprites().observations(torch.as_tensor(RenderedSprites().index_from_factors(full.numpy())))
    assert torch.equal(b.x[0], want)
    # posX moves the sprite right by 2 px per frame (subgrid step 2 on the 1 px grid)
    x_seq = next(i for i in range(12) if moving[i] == 3)
    cols = b.x[x_seq, :3, 0].sum(1)  # (3, 64) column mass
    centres = (cols * torch.arange(64)).sum(-1) / cols.sum(-1)
    torch.testing.assert_close(centres.diff(), torch.full((2,), 2.0), atol=1e-4, rtol=0)
