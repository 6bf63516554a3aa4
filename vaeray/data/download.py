"""Getting dataset files onto disk and sharing them between trials.

Three small pieces every loader needs:

* :func:`fetch` downloads one file with ``urllib`` into a temporary file beside the destination, checks its
  checksum and renames it into place, so a killed download never leaves a half file under the final name.
* :func:`atomic_array` writes a ``.npy`` cache the same way: the array is filled through a memory map on a
  temporary file and renamed when complete, so several trials building the same cache at once cannot read a
  partial one (each writes its own temporary file; the last rename wins and all are identical).
* :func:`shared_tensor` opens such a cache as a CPU tensor backed by a copy-on-write memory map: every trial
  on a node reads the same page-cached bytes (no per-trial copy), and an accidental in-place write stays
  private to that process instead of corrupting the cache or crashing on a read-only mapping.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import DataMissingError
from ..storage import file_mode

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest (``"md5"``, ``"sha256"``) of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _temp_beside(dest: Path) -> Path:
    # Same directory as dest so that os.replace is an atomic rename on one filesystem.
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.fchmod(fd, file_mode())  # caches get the user's umask, not mkstemp's 0600
    os.close(fd)
    return Path(name)


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its checksum; return ``dest``.

    Raises :class:`DataMissingError` (one line: what to put where) when the URL cannot be read (offline, 404)
    or when the checksum differs; in both cases ``dest`` is left untouched and the temporary file is removed.
    """
    dest = Path(dest)
    expected = [(alg, value.lower()) for alg, value in (("sha256", sha256), ("md5", md5)) if value]
    hashers = {alg: hashlib.new(alg) for alg, _ in expected}
    tmp = _temp_beside(dest)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    for h in hashers.values():
                        h.update(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataMissingError(
                f"could not download {url} ({_one_line(reason)}); download it by hand and put it at {dest}"
            ) from None
        for alg, want in expected:
            got = hashers[alg].hexdigest()
            if got != want:
                raise DataMissingError(
                    f"checksum mismatch for {url}: {alg} is {got}, expected {want}; "
                    f"download it again and put it at {dest}"
                )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())


@contextmanager
def atomic_array(path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype | type) -> Iterator[np.ndarray]:
    """Yield a writable ``.npy`` memory map of ``shape``; it appears at ``path`` only if the block completes."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array  # close the mapping before the rename
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_shared(path: str | os.PathLike) -> np.ndarray:
    """A ``.npy`` file as a copy-on-write memory map (``mmap_mode='c'``): shared pages, private writes."""
    return np.load(path, mmap_mode="c")


def shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor viewing ``array`` without copying (``array`` is typically from :func:`open_shared`)."""
    return torch.from_numpy(array)


def valid_cache(path: Path, shape: tuple[int, ...], dtype: np.dtype | type) -> bool:
    """True if ``path`` is a readable ``.npy`` of exactly ``shape`` and ``dtype`` (else it is rebuilt)."""
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return array.shape == tuple(shape) and array.dtype == np.dtype(dtype)
