"""Checkpoints in sweeps: a missing or damaged file (a half-uploaded one) is skipped, never fatal."""

from __future__ import annotations

import torch

from vaeray import checkpoint as ckpt_io


def test_damaged_checkpoints_are_skipped_not_fatal(tmp_path):
    good = tmp_path / "good" / "state.pt"
    ckpt_io.save({"model": {"w": torch.ones(2)}, "step": 40}, good)
    assert ckpt_io.read(str(good), torch.device("cpu"))["step"] == 40
    truncated = tmp_path / "bad" / "state.pt"
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[:100])  # a half-uploaded file
    assert ckpt_io.read(str(truncated), torch.device("cpu")) is None
    assert ckpt_io.read(str(tmp_path / "missing" / "state.pt"), torch.device("cpu")) is None
