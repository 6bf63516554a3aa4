"""Fixtures for the data-layer tests: isolated data dirs, the procedural dSprites grid, the shared MNIST files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # A loader that forgot to honour data_dir would otherwise write into the real ~/.cache/vaeray.
    monkeypatch.setenv("VAERAY_DATA", str(tmp_path_factory.mktemp("default_data_dir")))


@pytest.fixture(scope="session")
def procedural_dsprites(tmp_path_factory: pytest.TempPathFactory):
    """The full procedural grid (about 2 s to generate), built once per session in its own data dir."""
    from vaeray.data.dsprites import DSprites

    return DSprites(data_dir=str(tmp_path_factory.mktemp("dsprites_data")), source="procedural")


def shared_data_dir() -> Path | None:
    """``$VAERAY_SHARED_DATA`` or the ``shared/data`` folder beside the checkout (CI clones shared/ there)."""
    env = os.environ.get("VAERAY_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return path if (path / "mnist").is_dir() else None


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose MNIST/raw and FashionMNIST/raw hold symlinks to the shared .gz files (read-only)."""
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("real MNIST files not found: set VAERAY_SHARED_DATA or put shared/data beside the checkout")
    root = tmp_path_factory.mktemp("mnist_data")
    for folder, cls in (("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")):
        raw = root / cls / "raw"
        raw.mkdir(parents=True)
        for gz in sorted((shared / folder).glob("*.gz")):
            (raw / gz.name).symlink_to(gz.resolve())
    return root
