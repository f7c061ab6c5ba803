"""MNIST IDX loader on small files written here (header and payload built with struct/numpy)."""

import gzip
import struct

import numpy as np
import pytest
import torch

from dlskills.data import load
from dlskills.data.mnist import parse_idx, read_idx

FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array, type_code=0x08, big_endian_dtype=">u1"):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).astype(big_endian_dtype).tobytes()


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    test_images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    arrays = (train_images, np.arange(60) % 10, test_images, (np.arange(20) * 3) % 10)
    for name, array in zip(FILE_NAMES, arrays):
        data = idx_bytes(array)
        if name.startswith("t10k-images"):
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    return tmp_path, arrays


@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")],
)
def test_parse_idx_round_trip(type_code, dtype):
    offset = 0 if dtype == ">u1" else 5  # negative values for the signed and float types
    array = (np.arange(24).reshape(2, 3, 4) - offset).astype(dtype)
    parsed = parse_idx(idx_bytes(array, type_code, dtype))
    assert parsed.shape == (2, 3, 4) and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, array)


def test_read_idx_reads_gzip_and_magic(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    magic, array = read_idx(tmp_path / "l.gz")
    assert magic == 0x00000801 and array.tolist() == [3, 1, 4]


def test_load_mnist(mnist_dir):
    folder, (_, _, test_images, test_labels) = mnist_dir
    splits = load("mnist", data_dir=folder, val_fraction=1 / 6, seed=1)
    assert splits.sizes() == (50, 10, 20) and splits.input_shape == (1, 28, 28)
    assert splits.num_classes == 10
    # the test split is the t10k file, in order, standardised with train statistics
    restored = splits.test.tensors[0].double() * splits.info["std"] + splits.info["mean"]
    np.testing.assert_allclose(restored[:, 0].numpy() * 255, test_images, atol=1e-3)
    assert splits.test.tensors[1].tolist() == test_labels.tolist()
    assert np.bincount(splits.val.tensors[1].numpy()).tolist() == [1] * 10  # stratified
    x_train = splits.train.tensors[0].double()
    assert x_train.mean().item() == pytest.approx(0, abs=1e-6)
    assert x_train.std(unbiased=False).item() == pytest.approx(1, abs=1e-6)
    other = load("mnist", data_dir=folder, val_fraction=1 / 6, seed=2)
    assert not torch.equal(other.val.tensors[0], splits.val.tensors[0])


def test_data_dir_from_environment_and_sub_folder(mnist_dir, tmp_path_factory, monkeypatch):
    folder, _ = mnist_dir
    root = tmp_path_factory.mktemp("root")
    (root / "MNIST").mkdir()
    folder.rename(root / "MNIST" / "raw")
    monkeypatch.setenv("DLSKILLS_DATA_DIR", str(root))
    assert load("mnist", val_fraction=0.5).sizes() == (30, 30, 20)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        load("mnist", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load("mnist", data_dir=tmp_path / "absent")


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda data: data[:-1], "payload has 47039 bytes.*announces 47040"),
        (lambda data: b"\x01" + data[1:], "not an IDX file"),
        (lambda data: data[:2] + b"\x0a" + data[3:], "unknown IDX data type 0x0A"),
        (lambda data: data[:6], "truncated IDX header"),
    ],
)
def test_malformed_idx_is_reported(mnist_dir, corrupt, message):
    folder, _ = mnist_dir
    path = folder / FILE_NAMES[0]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=message):
        load("mnist", data_dir=folder)


def test_wrong_magic_and_mismatched_counts(mnist_dir):
    folder, (_, train_labels, *_rest) = mnist_dir
    images, labels = folder / FILE_NAMES[0], folder / FILE_NAMES[1]
    original_images = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    with pytest.raises(ValueError, match="magic 0x00000801, expected 0x00000803"):
        load("mnist", data_dir=folder)
    images.write_bytes(original_images)
    labels.write_bytes(idx_bytes(train_labels[:59]))
    with pytest.raises(ValueError, match=r"60 images but .* 59 labels"):
        load("mnist", data_dir=folder)
    labels.write_bytes(idx_bytes(train_labels + 1))
    with pytest.raises(ValueError, match=r"digits 0..9, found 10"):
        load("mnist", data_dir=folder)


def test_corrupt_gzip(mnist_dir):
    folder, _ = mnist_dir
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="cannot read"):
        load("mnist", data_dir=folder)
