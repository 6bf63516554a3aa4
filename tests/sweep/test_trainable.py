"""The trainable's pieces that need no running Ray: device choice, damaged checkpoints, error lines."""

from __future__ import annotations

import pytest
import torch

from vaeray import checkpoint as ckpt_io
from vaeray import tune as vt

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


def test_damaged_checkpoints_are_skipped_not_fatal(tmp_path):
    good = tmp_path / "good" / "state.pt"
    ckpt_io.save({"model": {"w": torch.ones(2)}, "step": 40}, good)
    assert vt._read_state(str(good), torch.device("cpu"))["step"] == 40
    truncated = tmp_path / "bad" / "state.pt"
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[:100])  # a half-uploaded file
    assert vt._read_state(str(truncated), torch.device("cpu")) is None
    assert vt._read_state(str(tmp_path / "missing" / "state.pt"), torch.device("cpu")) is None


def test_error_line_is_the_exception_message_not_the_traceback():
    text = (
        "Failure # 1 (occurred at 2026-11-21)\n"
        "ray::ImplicitFunc.train() (pid=1, ip=1.2.3.4)\n"
        "Traceback (most recent call last):\n"
        '  File "vaeray/train.py", line 149, in fit\n'
        "vaeray.errors.DivergenceError: the loss diverged at step 7: loss became nan (lower train.lr, ...)\n"
    )
    assert vt._last_exception_line(text) == "the loss diverged at step 7: loss became nan (lower train.lr, ...)"
    assert vt._last_exception_line("...\nRuntimeError: CUDA out of memory.") == "RuntimeError: CUDA out of memory."
