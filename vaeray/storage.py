"""Where a sweep keeps its files: a local directory or a cloud URI (``s3://bucket/prefix``, ``gs://...``).

Every path in the sweep layer is a string that may be either, so one set of helpers serves both: local paths
go through :mod:`os`, URIs through a pyarrow filesystem (imported on first use; parsing a sweep file needs
neither). Every file is written whole (temporary file + rename locally, one PUT on object stores), so a
killed driver never leaves half a ledger entry, and a file that is absent or damaged reads as ``None`` rather
than stopping the sweep. No ``ray`` here.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError


def is_uri(path: str) -> bool:
    """Whether ``path`` names an object store (``file://`` counts as local)."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path)) and not path.startswith("file://")


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def resolve_storage(storage: str, where: str) -> str:
    """A cloud URI as-is; a local path (or ``file://``) made absolute (Tune rejects relative paths)."""
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError("expected a local path or a URI such as s3://bucket/prefix", where)
    if is_uri(storage):
        return storage.rstrip("/")
    if storage.startswith("file://"):
        storage = storage[len("file://") :]
    return str(Path(storage).expanduser().resolve())


def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for a local path or a cloud URI."""
    import pyarrow.fs as pafs

    if is_uri(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def file_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would give a new file (``mkstemp`` gives 0600, which
    would hide results, ledgers and checkpoints from the user's group on a shared machine)."""
    try:
        with open("/proc/self/status") as f:  # thread-safe on Linux, unlike the os.umask round trip
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file: temp file + rename on local disks, a single PUT on object stores."""
    if not is_uri(uri):
        directory = os.path.dirname(uri)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        os.fchmod(fd, file_mode())
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, uri)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    fs, path = filesystem(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)


def read_bytes(uri: str) -> bytes | None:
    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_json(uri: str) -> Any:
    data = read_bytes(uri)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None  # a foreign or damaged file is treated as absent rather than crashing the sweep


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, json.dumps(obj, indent=1, sort_keys=True, default=_jsonable).encode())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return str(value)


def list_dir(uri: str) -> list[str]:
    """Base names of the files directly under ``uri`` (empty if it does not exist)."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(os.path.basename(i.path) for i in infos)


def delete(uri: str, directory: bool = False) -> None:
    """Delete a file (or a whole directory); nothing to delete is not an error."""
    fs, path = filesystem(uri)
    try:
        fs.delete_dir(path) if directory else fs.delete_file(path)
    except FileNotFoundError:
        pass
