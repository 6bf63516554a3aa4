"""What every metric shares: the callables it is given and how its randomness is pinned to ``seed``.

A metric is a pure function of ``(dataset, represent | log_likelihood, seed, hyperparameters)``. numpy
randomness comes from ``np.random.default_rng(seed)`` inside the metric; torch randomness (a "sampled"
representation draws z ~ q(z|x), an importance-sampled likelihood draws K latents) is pinned by
:func:`seeded`, which runs the metric with torch's generators forked and seeded, so calling a metric
neither depends on nor disturbs the training loop's RNG state.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import numpy as np
import torch

from ..schema import Range

# (B, *observation_shape) float tensor on dataset.device -> (B, D) codes.
Represent = Callable[[torch.Tensor], torch.Tensor]
# (x of shape (B, *observation_shape), K) -> (B,) estimates of log p(x) in nats.
LogLikelihood = Callable[[torch.Tensor, int], torch.Tensor]

# Hyperparameter types: config validation checks the ranges before anything runs (vaeray.schema).
Count = Annotated[int, Range(ge=1, le=10**8)]  # points, votes, trees, samples, batch sizes (bounded: memory)
Bins = Annotated[int, Range(ge=1, le=10**5)]  # histogram bins per code: beyond this the histograms exhaust memory
AtLeastTwo = Annotated[int, Range(ge=2)]  # sample sizes that feed a ddof=1 variance
Positive = Annotated[float, Range(gt=0)]
NonNegative = Annotated[float, Range(ge=0)]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def torch_seed(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Seed torch's CPU generator (and ``device``'s CUDA generator) inside, restore both on exit."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = []
    if device.type == "cuda" and torch.cuda.is_available():
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def seeded(fn: F) -> F:
    """Run a metric under :func:`torch_seed` with its own ``seed`` and ``dataset.device``.

    ``functools.wraps`` keeps ``fn``'s signature visible to ``inspect.signature`` (it follows
    ``__wrapped__``), which is what config validation and the evaluation runner read.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        dataset = bound.arguments.get("dataset")
        with torch_seed(int(bound.arguments.get("seed", 0)), getattr(dataset, "device", None)):
            return fn(*bound.args, **bound.kwargs)

    return wrapper  # type: ignore[return-value]


def to_numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor (any device) or array as a numpy array, dtype kept (dlib's codes are float32 too)."""
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu").numpy()
    return np.asarray(values)
