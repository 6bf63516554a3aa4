"""The trainable's pieces that need no running Ray: device choice (damaged checkpoints and error lines are
tested with their modules: tests/core/test_checkpoint.py, tests/core/test_errors.py)."""

from __future__ import annotations

import pytest
import torch

from vaeray.sweep.ray import trainable as vt

AUTO = {"train": {"device": "auto"}}


@pytest.mark.parametrize(
    "gpu_ids, cuda, expected",
    [
        ([], True, "cpu"),  # Ray 2.60 shows every GPU to 0-GPU trials: CUDA being visible is not an invitation
        ([0], True, "cuda"),  # CUDA_VISIBLE_DEVICES is the assigned GPU, so plain "cuda" is it
        ([1], False, "cpu"),  # a logical GPU (tests, misconfigured nodes): fall back, with a warning
    ],
)
def test_device_follows_the_gpus_ray_assigned(monkeypatch, gpu_ids, cuda, expected):
    monkeypatch.setattr(vt.ray, "get_gpu_ids", lambda: gpu_ids)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert vt._device(AUTO).type == expected


def test_an_explicit_device_is_respected(monkeypatch):
    monkeypatch.setattr(vt.ray, "get_gpu_ids", lambda: [0])
    assert vt._device({"train": {"device": "cpu"}}).type == "cpu"
