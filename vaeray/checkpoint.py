"""Checkpoint files: one dict, written atomically with a checksum, read with ``weights_only=True``.

Atomic = write to a temporary file in the same directory, flush, ``os.replace``: a crash mid-write leaves the
previous checkpoint intact, never a truncated one. The file starts with a header carrying the SHA-256 of the
``torch.save`` payload, verified on every load, so a file damaged after it was written (a torn copy, a bad
disk, a half-uploaded object) is refused with one line instead of loading garbage. Files written before the
header existed still load. ``weights_only=True`` refuses arbitrary pickled code, so a checkpoint from
elsewhere cannot execute anything when loaded. :func:`read` is the forgiving form for sweeps, whose
checkpoints may sit in a bucket and may be half-uploaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import storage
from .errors import CheckpointError

log = logging.getLogger(__name__)
MAGIC = b"VAERAY-CKPT-1 sha256="  # + 64 hex digits + b"\n", then the torch.save bytes


def dumps(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file: checksum header + ``torch.save`` payload."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dumps(state)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, storage.file_mode())  # the user's umask, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def loads(data: bytes, name: str, map_location: Any = "cpu") -> dict[str, Any]:
    """Verify and unpickle (weights only) the bytes of a checkpoint file."""
    payload = data
    if data.startswith(MAGIC):
        head, sep, payload = data[len(MAGIC) :].partition(b"\n")
        if not sep or hashlib.sha256(payload).hexdigest().encode() != head:
            raise CheckpointError(f"cannot read checkpoint {name}: damaged (its checksum does not match: a torn or corrupted write)")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, disallowed global
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {name}: {first[:200]}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{name} is not a vaeray checkpoint (no 'model' entry)")
    return state


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    return loads(data, str(path), map_location)


def read(uri: str, map_location: Any = "cpu") -> dict[str, Any] | None:
    """A checkpoint at a local path or a cloud URI, or None (with a warning) if it is missing or damaged: a
    resuming trial then falls back to an older checkpoint instead of failing on a half-uploaded file."""
    try:
        if storage.is_uri(uri):
            data = storage.read_bytes(uri)
            if data is None:
                return None
            return loads(data, uri, map_location)
        return load(uri, map_location=map_location)
    except (CheckpointError, OSError) as e:
        log.warning("ignoring checkpoint %s: %s", uri, e)
        return None
