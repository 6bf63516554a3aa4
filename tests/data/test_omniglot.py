"""OMNIGLOT on a tiny file written in the IWAE ``chardata.mat`` layout: column-major images, one-hot targets,
the held-out validation split, dynamic / fixed binarisation, and the checked download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from vaeray.data import omniglot as omni
from vaeray.data.omniglot import Omniglot, git_blob_id
from vaeray.errors import DataMissingError

N_TRAIN, N_TEST, CLASSES = 1400, 30, 50


def make_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 28, 28)`` grey images: random levels, a white top row, a black bottom-right block, and the
    image index in binary (exact 0/1, so it survives any binarisation) along the left column."""
    img = rng.uniform(0.2, 0.8, size=(n, 28, 28))
    img[:, 0, :] = 1.0
    img[:, 20:, 20:] = 0.0
    bits = (np.arange(n)[:, None] >> np.arange(12)) & 1
    img[:, 2:14, 0] = bits
    return img


def decode_index(x: torch.Tensor) -> torch.Tensor:
    bits = x[:, 0, 2:14, 0].round().long()
    return (bits << torch.arange(12)).sum(1)


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    train, test = make_images(N_TRAIN, rng), make_images(N_TEST, rng)
    y_train, y_test = rng.integers(0, CLASSES, N_TRAIN), rng.integers(0, CLASSES, N_TEST)
    to_columns = lambda imgs: imgs.reshape(len(imgs), -1, order="F").T.astype(np.float32)  # noqa: E731
    root = tmp_path_factory.mktemp("omni")
    (root / "omniglot").mkdir()
    scipy.io.savemat(
        root / "omniglot" / "chardata.mat",
        {
            "data": to_columns(train),
            "testdata": to_columns(test),
            "target": np.eye(CLASSES)[y_train].T,
            "testtarget": np.eye(CLASSES)[y_test].T,
        },
    )
    return root, {"train": train, "test": test, "y_train": y_train, "y_test": y_test}


def test_layout_orientation_and_labels(omni_dir) -> None:
    root, truth = omni_dir
    test = Omniglot(data_dir=str(root), split="test")
    assert len(test) == N_TEST and test.observation_shape == (1, 28, 28) and test.binary
    x = test.observations(torch.arange(N_TEST))
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert (x[:, 0, 0, :] == 1).all() and (x[:, 0, 20:, 20:] == 0).all()  # upright, not transposed
    assert torch.equal(decode_index(x), torch.arange(N_TEST))
    assert test.labels.tolist() == truth["y_test"].tolist()


def test_validation_is_held_out_of_train(omni_dir) -> None:
    root, truth = omni_dir
    train, valid = Omniglot(data_dir=str(root)), Omniglot(data_dir=str(root), split="valid")
    assert len(train) == N_TRAIN - 1345 and len(valid) == 1345
    ti = decode_index(train.observations(torch.arange(len(train))))
    vi = decode_index(valid.observations(torch.arange(len(valid))))
    assert sorted(torch.cat([ti, vi]).tolist()) == list(range(N_TRAIN))  # a partition of the file's images
    assert torch.equal(train.labels, torch.as_tensor(truth["y_train"][ti.numpy()]))
    assert torch.equal(valid.labels, torch.as_tensor(truth["y_train"][vi.numpy()]))


def test_train_is_rebinarised_per_batch_and_heldout_is_fixed(omni_dir) -> None:
    root, truth = omni_dir
    train = Omniglot(data_dir=str(root))
    idx = torch.arange(len(train))
    torch.manual_seed(0)
    a, b = train.observations(idx), train.observations(idx)
    assert not torch.equal(a, b)
    grey = torch.from_numpy(np.rint(truth["train"][decode_index(a).numpy()] * 255) / 255).float()
    assert abs(a.mean() - grey.mean()) < 5e-3  # 43k Bernoulli pixels
    valid = Omniglot(data_dir=str(root), split="valid")
    again = Omniglot(data_dir=str(root), split="valid")
    v = valid.observations(torch.arange(200))
    assert torch.equal(v, valid.observations(torch.arange(200))) and torch.equal(v, again.observations(torch.arange(200)))
    dyn = Omniglot(data_dir=str(root), split="valid", heldout="dynamic")
    assert not torch.equal(dyn.observations(torch.arange(200)), dyn.observations(torch.arange(200)))


def test_git_blob_id_is_gits_object_id(tmp_path: Path) -> None:
    f = tmp_path / "hello"
    f.write_bytes(b"hello\n")
    assert git_blob_id(f) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `echo hello | git hash-object --stdin`


def test_missing_file_and_checked_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataMissingError) as err:
        Omniglot(data_dir=str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "omniglot" / "chardata.mat") in msg and omni.OMNIGLOT_URL in msg
    calls = []

    def fake_fetch(url, dest, **kw):  # no network in tests: "download" the wrong bytes
        calls.append(url)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(b"not the file")
        return Path(dest)

    monkeypatch.setattr(omni, "fetch", fake_fetch)
    with pytest.raises(DataMissingError, match="checksum mismatch"):
        Omniglot(data_dir=str(tmp_path), download=True)
    assert calls == [omni.OMNIGLOT_URL] and not (tmp_path / "omniglot" / "chardata.mat").exists()
