"""Probes of a style/content model (Multi-Level VAE, Bouchacourt et al., AAAI 2018, Sec. 5) on grouped data.

These metrics see a model only through ``represent_parts(x, group=None) -> {"style": (B, S), "content": (B, C)}``,
the posterior means of each part (the content of every image accumulated over its group when group ids are
given), and the grouped dataset (:mod:`vaeray.data.groups`), whose **group key** (the digit for
``mnist_groups``, the shared factors for ``dsprites_groups``) is the label a probe predicts.

``probe`` (the paper's classification experiment, without the seed repository's leak):

* codes: single-image posterior means of ``num_train`` items of the **training** split (the probe's training
  set) and ``num_test`` items of the evaluation split (its test set; for a dataset without a test split,
  such as dSprites, that is the training set again, drawn independently);
* a multinomial logistic regression (sklearn ``LogisticRegression`` on standardised codes) per part, trained on
  the training codes' keys and scored on the test codes: ``probe_content_accuracy``, ``probe_style_accuracy``;
  ``probe_chance`` is the frequency of the commonest key among the test items;
* accumulation at test time, ``probe_content_accuracy_k{k}`` for each ``k`` in ``group_sizes``: each test item
  (the query) gets ``k − 1`` partners drawn uniformly, with replacement, from the test items with the same
  group id, by the same sampler that forms training groups (:meth:`GroupedData.same_key`); the query's
  content code is the mean of q(C_G | X_G) over those ``k`` images, and the content probe (trained on
  single train images, never shown a test key) predicts the query's key. The grouping is the weak
  supervision the model is trained with (for MNIST it is by digit, so accuracy at large ``k`` measures how well
  the model pools evidence, not label-free accuracy); unlike the seed repository, groups have a fixed size
  ``k`` instead of "every test image of the class", and ``k = 1`` is exactly the single-image accuracy.

``content_factors`` (dSprites): MIG and DCI (disentanglement_lib's estimators, :mod:`.mig`, :mod:`.dci`) of the
single-image content codes against the factors the groups share.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..data.base import Dataset
from ..errors import ConfigError
from ..registry import METRICS
from .common import Count, seeded, to_numpy
from .dci import dci_completeness, dci_disentanglement, importance_matrix_gbt
from .disentanglement import sample_codes, varying_factors
from .mig import mig_from_codes

# (x (B, *obs), group ids (B,) or None) -> {"style": (B, S), "content": (B, C)} posterior means
RepresentParts = Callable[[torch.Tensor, "torch.Tensor | None"], dict]


def _grouped(dataset: Dataset, metric: str) -> None:
    if not hasattr(dataset, "same_key"):
        name = getattr(dataset, "registry_name", type(dataset).__name__)
        raise ConfigError(
            f"metric '{metric}' needs a grouped dataset (mnist_groups, fashion_mnist_groups, dsprites_groups), "
            f"not '{name}'",
            f"eval.metrics.{metric}",
        )


def part_codes(
    dataset: Dataset, represent_parts: RepresentParts, index: torch.Tensor, batch_size: int
) -> dict[str, np.ndarray]:
    """Single-image ``style`` and ``content`` codes ``(n, ·)`` of the items ``index``."""
    out: dict[str, list[np.ndarray]] = {"style": [], "content": []}
    for start in range(0, len(index), batch_size):
        parts = represent_parts(dataset.observations(index[start : start + batch_size].to(dataset.device)), None)
        for name in out:
            out[name].append(to_numpy(parts[name]))
    return {name: np.concatenate(chunks) for name, chunks in out.items()}


def accumulated_content(
    dataset: Dataset, represent_parts: RepresentParts, queries: torch.Tensor, k: int, batch_size: int
) -> np.ndarray:
    """Content codes ``(n, C)`` of each query accumulated with ``k − 1`` same-group partners (module docstring)."""
    chunks = []
    per = max(1, batch_size // k)
    for start in range(0, len(queries), per):
        q = queries[start : start + per].to(dataset.device)
        partners = dataset.same_key(q, torch.rand(len(q), k - 1, device=dataset.device))  # (n, k-1)
        members = torch.cat([q[:, None], partners], 1).reshape(-1)  # (n k,): query first in its block
        group = torch.arange(len(q), device=dataset.device).repeat_interleave(k) * k  # block start = group id
        content = represent_parts(dataset.observations(members), group)["content"]
        chunks.append(to_numpy(content[::k]))
    return np.concatenate(chunks)


def _classifier(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))


def _draw(n_items: int, n: int | None, rng: np.random.Generator) -> torch.Tensor:
    if n is None or n >= n_items:
        return torch.arange(n_items)
    return torch.as_tensor(rng.choice(n_items, size=n, replace=False))


@METRICS.register("probe")
@seeded
def probe(
    dataset: Dataset,
    represent_parts: RepresentParts,
    train_dataset: Dataset,
    *,
    seed: int = 0,
    num_train: Count | None = 10000,
    num_test: Count | None = 5000,
    group_sizes: list[int] = (1, 2, 5, 10),  # type: ignore[assignment]
    batch_size: Count = 1000,
) -> dict[str, float]:
    """Content/style linear-probe accuracy and content accuracy vs test group size (module docstring).

    Args:
        num_train: training-split items the probes are fitted on (None: all).
        num_test: evaluation-split items they are scored on (None: all).
        group_sizes: test group sizes ``k`` for ``probe_content_accuracy_k{k}``.
        batch_size: images per ``represent_parts`` call.
    """
    _grouped(dataset, "probe")
    _grouped(train_dataset, "probe")
    if any(k < 1 for k in group_sizes):
        raise ConfigError(f"group sizes must be >= 1, got {list(group_sizes)}", "eval.metrics.probe.group_sizes")
    rng = np.random.default_rng(seed)
    train_index = _draw(len(train_dataset), num_train, rng)
    test_index = _draw(len(dataset), num_test, rng)
    y_train = to_numpy(train_dataset.group_keys(train_index))
    y_test = to_numpy(dataset.group_keys(test_index))
    train = part_codes(train_dataset, represent_parts, train_index, batch_size)
    test = part_codes(dataset, represent_parts, test_index, batch_size)
    out = {"probe_chance": float(np.bincount(y_test).max() / len(y_test))}
    probes = {}
    for part in ("content", "style"):
        probes[part] = _classifier(seed).fit(train[part], y_train)
        out[f"probe_{part}_accuracy"] = float(np.mean(probes[part].predict(test[part]) == y_test))
    for k in group_sizes:
        codes = accumulated_content(dataset, represent_parts, test_index, int(k), batch_size)
        out[f"probe_content_accuracy_k{k}"] = float(np.mean(probes["content"].predict(codes) == y_test))
    return out


@METRICS.register("content_factors")
@seeded
def content_factors(
    dataset: Dataset,
    represent_parts: RepresentParts,
    *,
    seed: int = 0,
    num_train: Count = 10000,
    num_test: Count = 5000,
    num_bins: Count = 20,
    batch_size: Count = 1024,
) -> dict[str, float]:
    """MIG and DCI of the single-image content codes against the shared factors of ``dsprites_groups``.

    The same estimators and defaults as the ``mig`` and ``dci`` metrics (disentanglement_lib), restricted to
    the content latent (codes) and ``dataset.shared`` (factors): a content latent that captures the shared
    factors one per dimension scores high. (Style factors are not scored here: they live in the style latent.)

    Returns:
        ``content_mig``, ``content_dci_disentanglement`` (NaN with a single shared factor),
        ``content_dci_completeness``,
        ``content_dci_informativeness_test`` (mean accuracy of predicting each shared factor).
    """
    if not hasattr(dataset, "shared_factors"):
        raise ConfigError(
            "metric 'content_factors' needs a dataset grouped by ground-truth factors (dsprites_groups)",
            "eval.metrics.content_factors",
        )
    rng = np.random.default_rng(seed)
    content = lambda x: represent_parts(x, None)["content"]  # noqa: E731
    columns = [int(np.flatnonzero(varying_factors(dataset) == f)[0]) for f in dataset.shared_factors]
    codes_train, factors_train = sample_codes(dataset, content, num_train, rng, batch_size)
    codes_test, factors_test = sample_codes(dataset, content, num_test, rng, batch_size)
    factors_train, factors_test = factors_train[:, columns], factors_test[:, columns]
    mig_score, _ = mig_from_codes(codes_train, factors_train, num_bins)
    importance, _, test_acc = importance_matrix_gbt(
        codes_train, factors_train, codes_test, factors_test, random_state=seed
    )
    # D scores each code's spread over the factors: with one shared factor it is undefined (entropy base 1)
    disentanglement = dci_disentanglement(importance) if len(columns) > 1 else float("nan")
    return {
        "content_mig": mig_score,
        "content_dci_disentanglement": disentanglement,
        "content_dci_completeness": dci_completeness(importance),
        "content_dci_informativeness_test": test_acc,
    }
