"""CelebA and 3D Chairs on tiny image folders of known content: crop, resize, channels, splits, cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaeray.data import images as images_mod
from vaeray.data.images import CelebA, Chairs
from vaeray.errors import ConfigError, DataMissingError


def centroid(img: np.ndarray) -> tuple[float, float]:
    """Intensity centroid (x, y) in continuous pixel coordinates of a 2-d array."""
    img = img.astype(np.float64)
    centres = np.arange(img.shape[0]) + 0.5
    return float(img.sum(axis=0) @ centres / img.sum()), float(img.sum(axis=1) @ centres / img.sum())


def celeba_like(value: int) -> Image.Image:
    """A 178x218 aligned-CelebA-sized image: a grey square of ``value`` that maps to output pixels
    x in [16, 32), y in [32, 48) after the 178x178 centre crop (rows 20..197) and the resize to 64
    (178 / 64 = 2.78 source px per output px), plus a white band in rows 0..14, which the crop removes."""
    img = np.zeros((218, 178, 3), dtype=np.uint8)
    img[20 + 89 : 20 + 134, 45:89] = value
    img[0:15, :] = 255
    return Image.fromarray(img)


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    lines = []
    for k, part in enumerate([0, 0, 0, 1, 2, 2], start=1):
        name = f"{k:06d}.jpg"
        celeba_like(255 - 20 * k).save(root / "img_align_celeba" / name, quality=95)
        lines.append(f"{name} {part}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_celeba_crop_resize_and_splits(celeba_root: Path) -> None:
    train = CelebA(data_dir=str(celeba_root))
    assert len(train) == 3 and train.observation_shape == (3, 64, 64)
    x = train.observations(torch.arange(3))
    assert x.dtype == torch.float32 and x.shape == (3, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    img = x[0].mean(0).numpy()
    assert img[33:47, 17:31].min() > 0.85  # inside the square (rows 33..46, columns 17..30), level 235
    away = np.ones_like(img, dtype=bool)
    away[30:50, 14:34] = False  # rows, columns: the square and a 2-px margin for blur and JPEG ringing
    assert img[away].max() < 0.1  # dark elsewhere: the band above the crop left no trace at the top
    cx, cy = centroid(img)
    assert abs(cx - 24) < 0.5 and abs(cy - 40) < 0.5
    # Partition order is kept: train holds images 1, 2, 3 with squares 235, 215, 195.
    levels = x[:, :, 40, 24].mean(1) * 255
    assert torch.allclose(levels, torch.tensor([235.0, 215.0, 195.0]), atol=4)
    assert len(CelebA(data_dir=str(celeba_root), split="valid")) == 1
    test = CelebA(data_dir=str(celeba_root), split="test")
    assert len(test) == 2 and abs(test.observations(torch.tensor([1]))[0, :, 40, 24].mean() * 255 - 135) < 4


def test_celeba_cache_is_reused_without_the_images(celeba_root: Path) -> None:
    first = CelebA(data_dir=str(celeba_root)).observations(torch.arange(3))
    shutil.rmtree(celeba_root / "celeba" / "img_align_celeba")
    again = CelebA(data_dir=str(celeba_root))
    assert torch.equal(again.observations(torch.arange(3)), first)
    assert again.cache_path == celeba_root / "celeba" / "cache" / "celeba_train_64.npy"
    assert again.images.data_ptr() == again._host_array.ctypes.data  # CPU: a view of the shared map


def test_celeba_missing_names_path_and_source(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        CelebA(data_dir=str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "celeba" / "img_align_celeba") in msg
    assert images_mod.CELEBA_URL in msg
    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    with pytest.raises(DataMissingError, match="list_eval_partition.txt"):
        CelebA(data_dir=str(tmp_path))


def test_celeba_plain_folder(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    folder.mkdir()
    # 128x160 PNGs: the centred square is rows 16..143; a 32-px square at crop (32..63, 64..95) maps to
    # output x in [16, 32), y in [32, 48) at exactly 2 source px per output px.
    img = np.zeros((160, 128, 3), dtype=np.uint8)
    img[16 + 64 : 16 + 96, 32:64] = (255, 0, 0)
    Image.fromarray(img).save(folder / "a.png")
    Image.fromarray(img[:, ::-1].copy()).save(folder / "b.png")
    ds = CelebA(data_dir=str(tmp_path / "data"), folder=str(folder))
    x = ds.observations(torch.arange(2)).numpy()
    assert len(ds) == 2
    assert (x[0, 0, 33:47, 17:31] == 1).all() and (x[0, 1:] == 0).all()  # red stays in the red channel
    assert centroid(x[0, 0]) == pytest.approx((24, 40), abs=0.01)
    assert centroid(x[1, 0]) == pytest.approx((40, 40), abs=0.01)  # sorted names: b.png is the mirror
    assert ds.cache_path.parent == tmp_path / "data" / "celeba" / "cache"
    with pytest.warns(UserWarning, match="no 'test' split"):
        assert len(CelebA(data_dir=str(tmp_path / "data"), folder=str(folder), split="test")) == 2
    with pytest.raises(ConfigError, match="no split 'val'"):
        CelebA(data_dir=str(tmp_path / "data"), folder=str(folder), split="val")
    with pytest.raises(DataMissingError, match="nowhere"):
        CelebA(data_dir=str(tmp_path / "data"), folder=str(tmp_path / "nowhere"))


def render_chair(background=(255, 255, 255, 255), square=(0, 0, 0, 255)) -> Image.Image:
    """A 600x600 'render': a square at source (250..349) of the 400x400 centre crop (100..499) maps to
    output [24, 40) at 6.25 source px per output px; a black stripe in columns 0..79 lies outside the crop."""
    img = np.zeros((600, 600, 4), dtype=np.uint8)
    img[:] = background
    img[250:350, 250:350] = square
    img[:, 0:80] = (0, 0, 0, 255)
    return Image.fromarray(img, mode="RGBA")


@pytest.fixture
def chairs_root(tmp_path: Path) -> Path:
    for chair, colours in {"chair_a": [(0, 0, 0, 255), (255, 0, 0, 255)], "chair_b": [(0, 0, 0, 255)]}.items():
        renders = tmp_path / "chairs" / "rendered_chairs" / chair / "renders"
        renders.mkdir(parents=True)
        for k, colour in enumerate(colours):
            render_chair(square=colour).convert("RGB").save(renders / f"image_{k:03d}_p020_t000_r096.png")
    # transparent background (composited onto white) on chair_b's second view
    render_chair(background=(0, 0, 0, 0)).save(tmp_path / "chairs" / "rendered_chairs" / "chair_b" / "renders" /
                                                "image_001_p020_t000_r096.png")
    return tmp_path


def test_chairs_greyscale_centre_crop(chairs_root: Path) -> None:
    ds = Chairs(data_dir=str(chairs_root))
    assert len(ds) == 4 and ds.observation_shape == (1, 64, 64)
    x = ds.observations(torch.arange(4)).numpy()[:, 0] * 255
    inside, outside = x[:, 25:39, 25:39], np.concatenate([x[:, :, :20], x[:, :, 44:]], axis=2)
    assert (outside > 254).all()  # white around, the stripe outside the crop is gone
    assert (inside[[0, 2, 3]] < 1).all()  # black squares (sorted order: a/000, a/001, b/000, b/001)
    assert np.abs(inside[1] - 76).max() <= 1  # pure red -> ITU-R 601 luma 0.299 * 255
    assert centroid(255 - x[0]) == pytest.approx((32, 32), abs=0.01)
    assert (255 - x[0]).sum() / 255 == pytest.approx(16 * 16, abs=2)  # (100 source px / 6.25)^2 of ink


def test_chairs_cache_reuse_and_missing_folder(chairs_root: Path, tmp_path_factory) -> None:
    first = Chairs(data_dir=str(chairs_root)).observations(torch.arange(4))
    shutil.rmtree(chairs_root / "chairs" / "rendered_chairs")
    assert torch.equal(Chairs(data_dir=str(chairs_root)).observations(torch.arange(4)), first)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DataMissingError) as err:
        Chairs(data_dir=str(empty))
    msg = str(err.value)
    assert "\n" not in msg and str(empty / "chairs" / "rendered_chairs") in msg and images_mod.CHAIRS_URL in msg


def test_chairs_crop_parameter_and_validation(chairs_root: Path) -> None:
    full = Chairs(data_dir=str(chairs_root), crop=1.0).observations(torch.tensor([0])).numpy()[0, 0] * 255
    # Uncropped, the square covers 100 / 600 of the side and the stripe reaches the left edge.
    assert (full[:, :8] < 1).all()  # columns 0..79 of 600 are the first 8.5 of 64
    assert (255 - full[:, 16:]).sum() / 255 == pytest.approx((100 / 9.375) ** 2, abs=2)
    with pytest.raises(ConfigError):
        Chairs(data_dir=str(chairs_root), crop=0.0)
    with pytest.raises(ConfigError):
        Chairs(data_dir=str(chairs_root), split="test")


def test_large_arrays_stay_on_the_host_for_accelerators(chairs_root: Path, monkeypatch) -> None:
    ds = Chairs(data_dir=str(chairs_root))
    assert ds.resident_bytes == 4 * 64 * 64 and ds.images.data_ptr() == ds._host_array.ctypes.data
    monkeypatch.setattr(images_mod, "DEVICE_BUDGET", 0)
    ds.to("meta")  # an accelerator-like device: over budget, so the images stay in host memory
    assert ds.images.device.type == "cpu" and ds.resident_bytes == 0
