"""dSprites: factor layout, the procedural renderer's geometry, packed storage, official-file loading, fetch."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeray.data import dsprites as ds_mod
from vaeray.data.download import fetch
from vaeray.data.dsprites import (
    FACTOR_SIZES,
    FILENAME,
    DSprites,
    canonical_factor_values,
    render,
    shape_area,
    sprite_centre,
    unpack_bits,
)
from vaeray.errors import ConfigError, DataMissingError

N = 737_280
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def grid_view(ds: DSprites) -> np.ndarray:
    """The packed grid as (shape, scale, orientation, posX, posY, 512) without copying."""
    return ds._host_array.reshape(*ds.factor_sizes, 512)


def centroids(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-mass centroid (x right, y down) in continuous coordinates: pixel i spans [i, i + 1)."""
    images = images.reshape(len(images), 64, 64).astype(np.float64)
    mass = images.sum(axis=(1, 2))
    centres = np.arange(64) + 0.5
    return (images.sum(axis=1) @ centres) / mass, (images.sum(axis=2) @ centres) / mass


def values_of(factors: np.ndarray, sizes=FACTOR_SIZES):
    vals = canonical_factor_values(sizes)
    return (factors[:, 0],) + tuple(vals[k][factors[:, k]] for k in range(1, 5))


# --- factor layout --------------------------------------------------------------------------------------------


def test_factor_metadata(procedural_dsprites: DSprites) -> None:
    ds = procedural_dsprites
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32) and len(ds) == N
    # The official bases [737280, 245760, 40960, 1024, 32, 1] without the constant colour factor.
    assert ds.factor_bases.tolist() == [245760, 40960, 1024, 32, 1]
    shape, scale, orient, posx, posy = ds.factor_values
    assert shape.tolist() == [1, 2, 3]
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert orient[0] == 0 and orient[-1] == 2 * np.pi and np.allclose(np.diff(orient), 2 * np.pi / 39)
    np.testing.assert_allclose(posx, np.arange(32) / 31)
    np.testing.assert_allclose(posy, np.arange(32) / 31)
    assert ds.observation_shape == (1, 64, 64) and ds.binary and ds.source == "procedural"


def test_index_factor_round_trip_whole_grid(procedural_dsprites: DSprites) -> None:
    ds = procedural_dsprites
    index = np.arange(N)
    factors = ds.factors_from_index(index)
    np.testing.assert_array_equal(ds.index_from_factors(factors), index)
    # DeepMind's notebook order: posY fastest, then posX, ...; colour class 0 with base 737280.
    np.testing.assert_array_equal(factors, np.stack(np.unravel_index(index, FACTOR_SIZES), axis=1))
    official_bases = np.array([737280, 245760, 40960, 1024, 32, 1])
    with_colour = np.concatenate([np.zeros((N, 1), dtype=np.int64), factors], axis=1)
    np.testing.assert_array_equal(with_colour @ official_bases, index)
    assert factors[32].tolist() == [0, 0, 0, 1, 0]  # "index 32 is (0,0,0,0,1,0)" in the official README


# --- the procedural renderer ----------------------------------------------------------------------------------


def test_grid_generator_equals_renderer(procedural_dsprites: DSprites) -> None:
    """The fast shift-and-paste grid is bit-identical to drawing each image from its factor values."""
    ds = procedural_dsprites
    index = np.random.default_rng(0).choice(N, 192, replace=False)
    expected = render(*values_of(ds.factors_from_index(index)))
    got = ds.observations(torch.as_tensor(index))
    assert got.dtype == torch.float32 and got.shape == (192, 1, 64, 64)
    np.testing.assert_array_equal(got.numpy()[:, 0].astype(bool), expected)


def test_images_binary_and_inside_whole_grid(procedural_dsprites: DSprites) -> None:
    packed = procedural_dsprites._host_array
    x = procedural_dsprites.observations(torch.arange(0, N, 997))
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    # Outermost rows (bytes 0-7, 504-511) and columns (MSB of byte 8r, LSB of byte 8r + 7) never lit.
    assert not packed[:, :8].any() and not packed[:, -8:].any()
    assert not (packed[:, 0::8] & 0x80).any() and not (packed[:, 7::8] & 0x01).any()


def test_area_grows_with_scale_and_matches_geometry(procedural_dsprites: DSprites) -> None:
    grid = grid_view(procedural_dsprites)
    areas = np.empty(grid.shape[:5], dtype=np.int32)
    for s in range(3):
        areas[s] = POPCOUNT[grid[s]].sum(axis=-1)
    assert (areas > 0).all()
    assert (np.diff(areas, axis=1) > 0).all()  # strictly larger at every larger scale, everywhere
    assert (areas == areas[..., :1, :1]).all()  # position only translates the sprite
    scales = canonical_factor_values()[1]
    exact = np.array([[shape_area(s, c) for c in scales] for s in range(3)])
    rel = np.abs(areas[..., 0, 0] / exact[:, :, None] - 1)
    assert rel.max() < 0.08, rel.max()
    # Relative sizes from the geometry: heart (429 px^2 at scale 1) > square (400) > ellipse (308).
    assert exact[2, -1] > exact[0, -1] > exact[1, -1]
    assert (areas[0] > areas[1]).all() and areas[2].mean() > areas[0].mean()


def test_position_moves_centroid_right_and_down(procedural_dsprites: DSprites) -> None:
    grid = grid_view(procedural_dsprites)
    for shape, scale, orient in [(0, 5, 3), (1, 2, 17), (2, 0, 30)]:
        along_x = np.unpackbits(grid[shape, scale, orient, :, 7], axis=-1)
        along_y = np.unpackbits(grid[shape, scale, orient, 20, :], axis=-1)
        cx, cy_fixed = centroids(along_x)
        cx_fixed, cy = centroids(along_y)
        np.testing.assert_allclose(cx - cx[0], np.arange(32))  # one pixel right per posX step
        np.testing.assert_allclose(cy - cy[0], np.arange(32))  # one pixel down per posY step
        assert np.ptp(cy_fixed) == 0 and np.ptp(cx_fixed) == 0
    # Off the grid too: sub-pixel positions move the centroid monotonically, within 0.5 px of the centre.
    pos = np.linspace(0, 1, 125)
    cx, _ = centroids(render(2, 0.7, 1.0, pos, 0.3))
    _, cy = centroids(render(1, 0.9, 2.0, 0.6, pos))
    assert (np.diff(cx) >= 0).all() and (np.diff(cy) >= 0).all()
    assert np.abs(cx - sprite_centre(pos)).max() < 0.5 and np.abs(cy - sprite_centre(pos)).max() < 0.5


def test_orientation_rotates_counter_clockwise(procedural_dsprites: DSprites) -> None:
    grid = grid_view(procedural_dsprites)
    thetas = canonical_factor_values()[2]
    # Ellipse: the principal axis of the pixel mass follows the orientation (mod pi), counter-clockwise.
    img = np.unpackbits(grid[1, 5, :, 16, 16], axis=-1).reshape(40, 64, 64).astype(np.float64)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    cx, cy = centroids(img)
    dx, up = xs - cx[:, None, None], -(ys - cy[:, None, None])
    mu20, mu02, mu11 = ((img * d).sum(axis=(1, 2)) for d in (dx * dx, up * up, dx * up))
    axis = 0.5 * np.arctan2(2 * mu11, mu20 - mu02)
    err = np.angle(np.exp(2j * (axis - thetas))) / 2
    assert np.degrees(np.abs(err)).max() < 2.0
    # Orientation 0 and 2 pi are the same image for every shape, scale and position.
    for s in range(3):
        np.testing.assert_array_equal(grid[s, :, 0], grid[s, :, 39])
    # Ellipse and heart (no 2 pi / 39-compatible symmetry) differ at every one of the 39 distinct angles.
    for s in (1, 2):
        for k in range(6):
            assert len(np.unique(grid[s, k, :39, 0, 0], axis=0)) == 39
    heart = np.unpackbits(grid[2, 5, [0, 13, 26], 16, 16], axis=-1).reshape(3, 64, 64).astype(bool)
    heart_pi = render(2, 1.0, np.pi, 16 / 31, 16 / 31)[0]
    assert (heart[0] & heart_pi).sum() / (heart[0] | heart_pi).sum() < 0.8
    # Upright at 0: mirror-symmetric about the vertical axis x = 32, widest rows above the centre (lobes up).
    np.testing.assert_array_equal(heart[0], heart[0][:, ::-1])
    widths = heart[0].sum(axis=1)
    assert np.flatnonzero(widths == widths.max()).mean() + 0.5 < centroids(heart[:1])[1][0]
    assert (heart[0] != heart[1]).any() and (heart[1] != heart[2]).any()


def test_shapes_differ_at_equal_factors(procedural_dsprites: DSprites) -> None:
    grid = procedural_dsprites._host_array.reshape(3, -1, 512)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert (grid[a] != grid[b]).any(axis=1).all()


def test_square_is_axis_aligned_at_zero() -> None:
    img = render(0, 1.0, 0.0, 15 / 31, 15 / 31)[0]  # a grid position: centre on the pixel corner (31, 31)
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    assert img.sum() == 400 and len(rows) == len(cols) == 20  # a filled 20 x 20 block
    assert img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all() and rows[0] == cols[0] == 21


# --- storage ---------------------------------------------------------------------------------------------------


def test_unpack_bits_is_exact_inverse_of_packbits() -> None:
    packed = np.random.default_rng(1).integers(0, 256, size=(33, 512), dtype=np.uint8)
    expected = np.unpackbits(packed, axis=1).reshape(33, 1, 64, 64)
    np.testing.assert_array_equal(unpack_bits(torch.from_numpy(packed)).numpy(), expected)
    images = np.random.default_rng(2).random((5, 64, 64)) < 0.3
    round_trip = unpack_bits(torch.from_numpy(np.packbits(images.reshape(5, -1), axis=1)))
    np.testing.assert_array_equal(round_trip.numpy()[:, 0], images)


def test_sample_factors_agree_with_batch(procedural_dsprites: DSprites) -> None:
    ds = procedural_dsprites
    factors, obs = ds.sample(64, np.random.default_rng(3))
    assert factors.shape == (64, 5) and (factors < np.array(FACTOR_SIZES)).all() and (factors >= 0).all()
    batch = ds.batch(torch.as_tensor(ds.index_from_factors(factors)))
    assert torch.equal(batch.x, obs)
    np.testing.assert_array_equal(batch.factors.numpy(), factors)
    np.testing.assert_array_equal(ds.observations_from_factors(factors).numpy(), obs.numpy())


def test_cpu_dataset_is_a_view_of_the_shared_cache(procedural_dsprites: DSprites, monkeypatch) -> None:
    ds = procedural_dsprites
    assert ds.packed.dtype == torch.uint8 and ds.resident_bytes == N * 512 <= 512 * 2**20
    assert ds.packed.data_ptr() == ds._host_array.ctypes.data  # no copy of the memory map
    assert ds.cache_path.name == "procedural_v1_packed.npy" and Path(ds._host_array.filename) == ds.cache_path
    before = ds.cache_path.stat().st_mtime_ns
    monkeypatch.setattr(ds_mod, "generate_packed", lambda out: pytest.fail("cache was regenerated"))
    again = DSprites(data_dir=str(ds.cache_path.parents[1]), source="auto")
    assert again.source == "procedural" and ds.cache_path.stat().st_mtime_ns == before
    assert torch.equal(again.packed[:1000], ds.packed[:1000])


def test_bad_parameters_raise_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="valid: auto, official, procedural"):
        DSprites(data_dir=str(tmp_path), source="offical")
    with pytest.raises(ConfigError, match="no split 'test'"):
        DSprites(data_dir=str(tmp_path), split="test")


# --- the official file ---------------------------------------------------------------------------------------


def write_official_like(path, sizes=(3, 2, 2, 4, 4), n_images=None, bytes_keys=False) -> np.ndarray:
    """A small file in the official layout (keys, dtypes, pickled metadata dict); returns its images."""
    classes = np.stack(np.unravel_index(np.arange(math.prod(sizes)), sizes), axis=1)
    values = canonical_factor_values(sizes)
    imgs = render(*values_of(classes, sizes)).astype(np.uint8)
    latents_classes = np.concatenate([np.zeros((len(classes), 1), np.int64), classes], axis=1)
    latents_values = np.concatenate(
        [np.ones((len(classes), 1))] + [values[k][classes[:, k]][:, None] for k in range(5)], axis=1
    )
    names = ("color", "shape", "scale", "orientation", "posX", "posY")
    meta = {
        "date": "April 2017",
        "description": "Disentanglement test Sprites dataset (test copy)",
        "version": 1,
        "latents_names": names,
        "latents_possible_values": dict(zip(names, (np.array([1.0]),) + values)),
        "latents_sizes": np.array((1, *sizes)),
        "author": "test",
        "title": "dSprites dataset",
    }
    if bytes_keys:  # what an encoding="bytes" load of the Python 2 pickle gives
        meta = {k.encode(): v for k, v in meta.items()}
        meta[b"latents_possible_values"] = {k.encode(): v for k, v in meta[b"latents_possible_values"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        imgs=imgs[:n_images] if n_images else imgs,
        latents_classes=latents_classes,
        latents_values=latents_values,
        metadata=np.array(meta, dtype=object),
    )
    return imgs


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_official_format_loads_on_a_reduced_grid(tmp_path, bytes_keys) -> None:
    imgs = write_official_like(tmp_path / "dsprites" / FILENAME, bytes_keys=bytes_keys)
    ds = DSprites(data_dir=str(tmp_path))  # auto picks the official file when it is there
    assert ds.source == "official" and ds.factor_sizes == (3, 2, 2, 4, 4) and len(ds) == 192
    assert ds.factor_bases.tolist() == [64, 32, 16, 4, 1]
    for got, want in zip(ds.factor_values, canonical_factor_values((3, 2, 2, 4, 4))):
        np.testing.assert_allclose(got, want)
    batch = ds.batch(torch.arange(192))
    np.testing.assert_array_equal(batch.x.numpy()[:, 0], imgs)
    np.testing.assert_array_equal(batch.factors.numpy(), ds.factors_from_index(np.arange(192)))
    assert (tmp_path / "dsprites" / "official_v1_packed.npy").is_file()


def test_official_cache_is_reused_until_the_file_changes(tmp_path, monkeypatch) -> None:
    npz = tmp_path / "dsprites" / FILENAME
    imgs = write_official_like(npz)
    DSprites(data_dir=str(tmp_path), source="official")
    with monkeypatch.context() as m:
        m.setattr(ds_mod, "_read_metadata", lambda path: pytest.fail("the .npz was read again"))
        ds = DSprites(data_dir=str(tmp_path), source="official")
        assert ds.factor_sizes == (3, 2, 2, 4, 4)
        np.testing.assert_array_equal(ds.observations(torch.arange(192)).numpy()[:, 0], imgs)
    write_official_like(npz, sizes=(3, 2, 2, 2, 4))  # a different file: rebuilt, not served stale
    assert DSprites(data_dir=str(tmp_path), source="official").factor_sizes == (3, 2, 2, 2, 4)


def test_official_file_with_wrong_image_count_is_rejected_in_one_line(tmp_path) -> None:
    npz = tmp_path / "dsprites" / FILENAME
    write_official_like(npz, n_images=190)
    with pytest.raises(DataMissingError) as err:
        DSprites(data_dir=str(tmp_path), source="official")
    msg = str(err.value)
    assert "\n" not in msg and str(npz) in msg and "prod(latents_sizes)" in msg and ds_mod.URL in msg


def test_official_file_out_of_factor_order_is_rejected(tmp_path) -> None:
    npz = tmp_path / "dsprites" / FILENAME
    write_official_like(npz)
    with np.load(npz, allow_pickle=True) as z:
        arrays = {k: z[k] for k in z.files}
    perm = np.random.default_rng(4).permutation(192)  # shuffled consistently: images still match classes
    arrays["imgs"], arrays["latents_classes"] = arrays["imgs"][perm], arrays["latents_classes"][perm]
    np.savez_compressed(npz, **arrays)
    with pytest.raises(DataMissingError, match="row-major factor order"):
        DSprites(data_dir=str(tmp_path), source="official")


def test_missing_official_file_offline_names_path_and_url(tmp_path) -> None:
    with pytest.raises(DataMissingError) as err:
        DSprites(data_dir=str(tmp_path), source="official")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "dsprites" / FILENAME) in msg and ds_mod.URL in msg


def test_download_goes_through_fetch_with_checksum(tmp_path, monkeypatch) -> None:
    served = tmp_path / "server" / FILENAME
    imgs = write_official_like(served)
    monkeypatch.setattr(ds_mod, "URL", served.as_uri())
    monkeypatch.setattr(ds_mod, "MD5", hashlib.md5(served.read_bytes()).hexdigest())
    ds = DSprites(data_dir=str(tmp_path / "data"), download=True)
    assert ds.source == "official" and (tmp_path / "data" / "dsprites" / FILENAME).read_bytes() == served.read_bytes()
    np.testing.assert_array_equal(ds.observations(torch.arange(192)).numpy()[:, 0], imgs)
    monkeypatch.setattr(ds_mod, "URL", (tmp_path / "nowhere.npz").as_uri())  # unreachable: offline
    with pytest.raises(DataMissingError) as err:
        DSprites(data_dir=str(tmp_path / "other"), source="official", download=True)
    assert "\n" not in str(err.value) and str(tmp_path / "other" / "dsprites" / FILENAME) in str(err.value)


# --- fetch ----------------------------------------------------------------------------------------------------


def test_fetch_verifies_checksums_atomically(tmp_path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"dsprites" * 1000)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DataMissingError) as err:
        fetch(src.as_uri(), dest, sha256="0" * 64)
    msg = str(err.value)
    assert "\n" not in msg and "checksum mismatch" in msg and str(dest) in msg
    assert hashlib.sha256(src.read_bytes()).hexdigest() in msg
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial or temporary file left
    with pytest.raises(DataMissingError, match="md5"):
        fetch(src.as_uri(), dest, md5="f" * 32)
    got = fetch(src.as_uri(), dest, sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
                md5=hashlib.md5(src.read_bytes()).hexdigest())
    assert got == dest and dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]
