"""Style/content probes with oracle representations: known accuracies, the accumulation curve, the leak it avoids,
content disentanglement on the shared factors, and the runner's requirements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaeray.data.base import TensorDataset
from vaeray.data.groups import GroupedData
from vaeray.errors import ConfigError
from vaeray.metrics import evaluate
from vaeray.metrics.probes import content_factors, probe


class Keyed(GroupedData, TensorDataset):
    """``n`` items; item i's single pixel stores i, its key is i mod 5 (so 5 balanced groups)."""

    def __init__(self, n: int, offset: int = 0):
        ids = torch.arange(offset, offset + n)
        super().__init__(ids.to(torch.float32).view(n, 1), ids % 5, scale=1.0)
        self.init_groups(ids % 5, None)


def oracle(noise: float, style_signal: float = 0.0):
    """represent_parts whose content is one-hot(key) plus fixed per-item Gaussian noise of scale ``noise``;
    with group ids the content is the group's mean (the product of equal-variance Gaussians)."""
    table = torch.randn(100000, 5, generator=torch.Generator().manual_seed(7))

    def represent_parts(x: torch.Tensor, group: torch.Tensor | None = None) -> dict:
        i = x[:, 0].long()
        onehot = torch.nn.functional.one_hot(i % 5, 5).float()
        content = onehot + noise * table[i]
        style = style_signal * onehot + table[(i * 7 + 3) % 100000]
        if group is not None:
            sums = torch.zeros_like(content).index_add(0, group, content)
            counts = torch.zeros(len(i)).index_add(0, group, torch.ones(len(i)))
            content = (sums / counts.clamp_min(1)[:, None])[group]
        return {"style": style, "content": content}

    return represent_parts


def test_oracle_content_is_read_and_noise_style_is_at_chance():
    out = probe(Keyed(1000), oracle(0.05), Keyed(2000, offset=5000), num_train=None, num_test=None, group_sizes=[1])
    assert out["probe_content_accuracy"] == 1.0 and out["probe_chance"] == pytest.approx(0.2)
    assert abs(out["probe_style_accuracy"] - 0.2) < 0.06  # 1000 test items: a few σ of binomial noise


def test_accumulating_same_group_partners_recovers_noisy_content():
    train = Keyed(4000, offset=5000)
    out = probe(Keyed(2000), oracle(1.2), train, num_train=None, num_test=None, group_sizes=[1, 3, 9])
    acc = [out[f"probe_content_accuracy_k{k}"] for k in (1, 3, 9)]
    assert acc[0] == out["probe_content_accuracy"]
    assert 0.3 < acc[0] < 0.75 and acc[0] + 0.1 < acc[1] < acc[2] and acc[2] > 0.8  # measured 0.43, 0.63, 0.86
    # partners come from the query's group: with random partners the mean would drift towards the centre
    # and no accumulation could lift accuracy above the single-image level


def test_test_groups_have_the_requested_size_and_share_the_query_key(monkeypatch):
    seen = []

    def spy(x, group=None):
        if group is not None:
            seen.append((x[:, 0].long(), group))
        return oracle(0.1)(x, group)

    probe(Keyed(200), spy, Keyed(200, offset=500), num_train=None, num_test=50, group_sizes=[4], batch_size=40)
    ids = torch.cat([s[0] for s in seen]).view(-1, 4)
    assert ids.shape == (50, 4) and (ids % 5 == ids[:, :1] % 5).all()  # 50 queries, 4 members, one key
    for _, group in seen:
        assert group.tolist() == [4 * (j // 4) for j in range(len(group))]


def test_content_factors_scores_the_shared_factors_only(make_toy):
    toy = make_toy((3, 4, 5))
    toy.shared_factors = np.array([0])

    def parts(code):
        return lambda x, group=None: {"style": x, "content": code(x)}

    noise = lambda x: torch.rand(len(x), 1)  # noqa: E731
    shared = content_factors(toy, parts(lambda x: torch.cat([x[:, :1], noise(x)], 1)), num_train=2000, num_test=500)
    other = content_factors(toy, parts(lambda x: torch.cat([x[:, 1:2], noise(x)], 1)), num_train=2000, num_test=500)
    assert shared["content_mig"] > 0.9 and shared["content_dci_informativeness_test"] == 1.0
    assert other["content_mig"] < 0.05 and other["content_dci_informativeness_test"] < 0.5
    assert np.isnan(shared["content_dci_disentanglement"])  # one shared factor: D is undefined
    assert shared["content_dci_completeness"] > other["content_dci_completeness"]


def test_the_runner_requires_a_grouped_dataset_and_a_style_content_model():
    plain = TensorDataset(torch.zeros(10, 1, dtype=torch.uint8), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ConfigError, match="needs a model with style and content latents"):
        evaluate({"probe": {}}, dataset=Keyed(50), represent=lambda x: x)
    with pytest.raises(ConfigError, match="needs a grouped dataset") as info:
        evaluate({"probe": {}}, dataset=plain, represent_parts=oracle(0.1))
    assert info.value.path == "eval.metrics.probe"
    with pytest.raises(ConfigError, match="dsprites_groups"):
        evaluate({"content_factors": {}}, dataset=Keyed(50), represent_parts=oracle(0.1))
