"""Every dataset registers on ``import vaeray.data`` with a config-schema-friendly constructor."""

from __future__ import annotations

import inspect

import pytest

import vaeray.data  # noqa: F401  (registration happens on import)
from vaeray.data.base import Dataset
from vaeray.registry import DATASETS

NAMES = [
    "binarized_mnist",
    "caltech_silhouettes",
    "celeba",
    "chairs",
    "dsprites",
    "dynamic_mnist",
    "fashion_mnist",
    "mnist",
    "omniglot",
]


def test_all_datasets_registered() -> None:
    assert set(NAMES) <= set(DATASETS)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_is_a_schema(name: str) -> None:
    cls = DATASETS.get(name)
    assert issubclass(cls, Dataset) and "train" in cls.splits
    params = inspect.signature(cls).parameters
    assert params["data_dir"].default is None
    assert params["split"].default == "train" and params["device"].default == "cpu"
    for key, param in DATASETS.parameters(name).items():
        # Every user-settable parameter has a default of a plain YAML type.
        assert param.default is not inspect.Parameter.empty, key
        assert param.default is None or type(param.default) in (int, float, str, bool), key
