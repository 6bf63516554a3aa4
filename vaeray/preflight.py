"""Checks that need more than a schema: would this model build for this data?

The schema catches a wrong type or range in one key. Some mistakes only show when the pieces meet: a Burgess
net asked to encode 8x8 images, a layer that does not fit the observation shape. :func:`check_model` builds
the model on PyTorch's ``meta`` device (shapes only, no memory, no data), so the dry run and ``vaeray train``
refuse such a config before anything is written or any trial starts, with the constructor's own reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .errors import ConfigError, VaerayError
from .registry import DATASETS, MODELS

MAX_PARAMETERS = 4 * 10**9  # 16 GB of float32 weights: beyond any VAE here, and a sure out-of-memory


def observation_shape(data: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The observation shape of a resolved ``data`` section when the class knows it without loading data
    (a ``shape_for(**settings)`` static method or a class-level ``observation_shape``), else None."""
    cls = DATASETS.get(data["name"], "data.name")
    settings = {k: v for k, v in data.items() if k != "name"}
    shape_for = getattr(cls, "shape_for", None)
    if callable(shape_for):
        return tuple(int(s) for s in shape_for(**settings))
    shape = getattr(cls, "observation_shape", None)
    if isinstance(shape, tuple) and shape:
        return tuple(int(s) for s in shape)
    return None


def check_model(config: Mapping[str, Any], shape: tuple[int, ...] | None = None, dataset_size: int | None = None) -> None:
    """Build ``config['model']`` for observations of ``shape`` on the meta device; a constructor's refusal
    becomes a one-line :class:`ConfigError` at ``model``. Does nothing when the shape is unknown."""
    shape = shape if shape is not None else observation_shape(config["data"])
    if shape is None:
        return
    from .schema import parameters

    accepted = parameters(MODELS.get(config["model"]["name"], "model.name"))
    try:
        with torch.device("meta"):
            injected: dict[str, Any] = {}  # what build_model injects from the data, stood in for by shapes
            if "data_mean" in accepted:
                injected["data_mean"] = torch.full(shape, 0.5)
            if "data_name" in accepted:
                injected["data_name"] = config["data"]["name"]
            model = MODELS.build(
                config["model"], "model", observation_shape=shape, dataset_size=dataset_size or 1000, **injected
            )
    except VaerayError:
        raise
    except NotImplementedError:  # a constructor that needs real tensors (an .item(), a numpy copy): not checkable
        return
    except Exception as e:
        if "meta" in str(e).lower():  # the same, reported as a RuntimeError by torch
            return  # the constructor's own reason (ValueError, RuntimeError from a layer, ...)
        raise ConfigError(f"cannot build this model for {shape_text(shape)} observations: {one_line(e)}", "model") from None
    n = sum(p.numel() for p in model.parameters())
    if n > MAX_PARAMETERS:
        raise ConfigError(f"the model would have {n:,} parameters (more than {MAX_PARAMETERS:,})", "model")


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception as one short line: its message's first line (or its class name when it has none)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
