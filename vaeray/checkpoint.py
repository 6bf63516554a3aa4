"""Checkpoint files: one dict, written atomically, read with ``weights_only=True``.

Atomic = write to a temporary file in the same directory, flush, ``os.replace``: a crash mid-write leaves the
previous checkpoint intact, never a truncated one. ``weights_only=True`` refuses arbitrary pickled code, so a
checkpoint from elsewhere cannot execute anything when loaded. :func:`read` is the forgiving form for sweeps,
whose checkpoints may sit in a bucket and may be half-uploaded.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import storage
from .errors import CheckpointError

log = logging.getLogger(__name__)


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, disallowed global
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first[:200]}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a vaeray checkpoint (no 'model' entry)")
    return state


def read(uri: str, map_location: Any = "cpu") -> dict[str, Any] | None:
    """A checkpoint at a local path or a cloud URI, or None (with a warning) if it is missing or damaged: a
    resuming trial then falls back to an older checkpoint instead of failing on a half-uploaded file."""
    try:
        if storage.is_uri(uri):
            data = storage.read_bytes(uri)
            if data is None:
                return None
            with tempfile.TemporaryDirectory() as d:
                local = Path(d) / Path(uri).name
                local.write_bytes(data)
                return load(local, map_location=map_location)
        return load(uri, map_location=map_location)
    except (CheckpointError, OSError) as e:
        log.warning("ignoring checkpoint %s: %s", uri, e)
        return None
