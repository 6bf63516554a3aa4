"""Grouped data (ML-VAE): group ids from keys and blocks, the group sampler's distribution, the real datasets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from vaeray.data.base import TensorDataset
from vaeray.data.groups import DSpritesGroups, GroupedData, group_ids
from vaeray.errors import ConfigError
from vaeray.registry import DATASETS, load_all

load_all()


class ToyGroups(GroupedData, TensorDataset):
    """10 one-pixel images with keys of uneven frequency: key 0 once, key 1 three times, key 2 six times."""

    def __init__(self, group_size=None):
        keys = torch.tensor([2, 1, 2, 0, 2, 1, 2, 2, 1, 2])
        super().__init__(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), keys)
        self.init_groups(keys, group_size)


def test_group_ids_split_blocks_by_key_and_name_groups_by_their_first_position():
    keys = torch.tensor([1, 1, 2, 1, 2, 2, 1, 1])
    assert group_ids(keys, 4, 3).tolist() == [0, 0, 2, 0, 4, 4, 6, 6]
    assert group_ids(keys, 8, 3).tolist() == [0, 0, 2, 0, 2, 2, 0, 0]  # one block: groups = keys present
    # against the definition, on random keys and blocks
    gen = torch.Generator().manual_seed(0)
    for block in (1, 3, 50, 200):
        keys = torch.randint(0, 7, (200,), generator=gen)
        expected = [next(j for j in range(200) if keys[j] == keys[i] and j // block == i // block) for i in range(200)]
        assert group_ids(keys, block, 7).tolist() == expected


def test_fixed_size_groups_share_a_key_and_come_in_blocks():
    data = ToyGroups(group_size=4)
    gen = torch.Generator().manual_seed(0)
    index = data.sample_index(40, gen)
    batch = data.batch(index)
    assert batch.group.tolist() == [4 * (i // 4) for i in range(40)]
    labels = batch.y.view(10, 4)
    assert (labels == labels[:, :1]).all()
    again = data.sample_index(40, torch.Generator().manual_seed(0))
    assert torch.equal(index, again)  # all draws come from the training loop's generator


def test_group_keys_follow_item_frequency_and_members_are_uniform_within_a_key():
    data = ToyGroups(group_size=5)
    index = data.sample_index(5 * 20000, torch.Generator().manual_seed(1)).view(20000, 5)
    keys = data.labels[index[:, 0]]
    counts = torch.bincount(keys, minlength=3).numpy()
    assert scipy.stats.chisquare(counts, 20000 * np.array([1, 3, 6]) / 10).pvalue > 1e-3
    members = index[keys == 2].flatten()
    per_item = torch.bincount(members, minlength=10).numpy()[[0, 2, 4, 6, 7, 9]]
    assert scipy.stats.chisquare(per_item).pvalue > 1e-3


def test_paper_mode_groups_are_the_keys_present_in_a_uniform_batch():
    data = ToyGroups(group_size=None)
    batch = data.batch(data.sample_index(16, torch.Generator().manual_seed(2)))
    for i, g in enumerate(batch.group.tolist()):
        assert g == int((batch.y == batch.y[i]).nonzero()[0])


def test_batch_size_must_be_a_multiple_of_the_group_size():
    with pytest.raises(ConfigError, match="not a multiple of data.group_size 4"):
        ToyGroups(group_size=4).sample_index(10, torch.Generator())


def test_mnist_groups_are_digit_classes(mnist_root):
    data = DATASETS.build({"name": "mnist_groups", "size": 28, "group_size": 8}, "data", data_dir=str(mnist_root))
    assert len(data) == 60000 and data.num_keys == 10
    batch = data.batch(data.sample_index(64, torch.Generator().manual_seed(0)))
    assert batch.x.shape == (64, 1, 28, 28)
    labels = batch.y.view(8, 8)
    assert (labels == labels[:, :1]).all() and batch.group.tolist() == [8 * (i // 8) for i in range(64)]
    test = DATASETS.build({"name": "mnist_groups", "size": 28}, "data", data_dir=str(mnist_root), split="test")
    assert len(test) == 10000 and torch.equal(test.group_keys(torch.arange(5)), torch.tensor([7, 2, 1, 0, 4]))
    fashion = DATASETS.build(
        {"name": "fashion_mnist_groups", "size": 28, "group_size": 5}, "data", data_dir=str(mnist_root), split="test"
    )
    batch = fashion.batch(fashion.sample_index(50, torch.Generator().manual_seed(0)))
    assert fashion.num_keys == 10 and (batch.y.view(10, 5) == batch.y.view(10, 5)[:, :1]).all()


def test_dsprites_groups_share_the_chosen_factors(procedural_dsprites):
    root = str(procedural_dsprites.cache_path.parent.parent)
    data = DSpritesGroups(data_dir=root, source="procedural", shared=["scale", "shape"], group_size=4)
    assert data.shared == ("shape", "scale") and data.num_keys == 18
    batch = data.batch(data.sample_index(32, torch.Generator().manual_seed(0)))
    shared = batch.factors[:, :2].view(8, 4, 2)
    assert (shared == shared[:, :1]).all()
    assert torch.equal(data.group_keys(torch.arange(len(batch))), torch.zeros(len(batch), dtype=torch.long))
    assert torch.equal(data.keys_from_index(torch.tensor([0, 245760, 40960 * 5])), torch.tensor([0, 6, 5]))
    # the style factors still vary inside a group
    assert batch.factors[:, 2:].view(8, 4, 3).unique(dim=1).shape[1] > 1
    with pytest.raises(ConfigError, match="shared must name dsprites_groups factors"):
        DSpritesGroups(data_dir=root, source="procedural", shared=["colour"])


def test_paper_mode_draws_exactly_the_plain_datasets_batches(procedural_dsprites):
    """The cross-family study trains every family on ``dsprites_groups`` with ``group_size: null`` so that
    ml_vae can join it: the other models must then see the very batches that plain ``dsprites`` gives them."""
    from vaeray.data.dsprites import DSprites

    root = str(procedural_dsprites.cache_path.parent.parent)
    plain = DSprites(data_dir=root, source="procedural")
    grouped = DSpritesGroups(data_dir=root, source="procedural", shared=["shape"], group_size=None)
    for seed in (0, 1):
        a = plain.sample_index(64, torch.Generator().manual_seed(seed))
        b = grouped.sample_index(64, torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
        x, g = plain.batch(a), grouped.batch(b)
        assert torch.equal(x.x, g.x) and torch.equal(x.factors, g.factors)
        assert g.group is not None and x.group is None
        shape = g.factors[:, 0]  # groups are the shapes present, named by their first member's position
        assert torch.equal(g.group, torch.stack([(shape == s).nonzero()[0, 0] for s in shape]))
