"""MNIST from local IDX files (LeCun, Cortes & Burges; the format of yann.lecun.com/exdb/mnist).

Expected in ``data_dir`` (or its ``mnist/`` or ``MNIST/raw/`` sub-folder), raw or gzip-compressed
(``.gz``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``. Nothing is downloaded.

IDX format: a big-endian header — two zero bytes, a type byte (0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of dimensions d —
then d big-endian uint32 sizes and the data in C order. MNIST images are magic 0x00000803
(uint8, 3 dims: N×28×28), labels 0x00000801 (uint8, 1 dim: N).

Preparation: pixels/255, shape (1, H, W); a stratified validation split carved from the training
files by ``seed`` (``val_fraction`` = 1/12 → the usual 55 000/5 000); the t10k files are the test
split; standardisation with the TRAIN split's scalar mean and std.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from dlskills.data._registry import (
    DataSplits,
    register_dataset,
    resolve_data_dir,
    standardize,
    tensor_dataset,
    validation_split,
)

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """The array stored in IDX ``data`` (native byte order); ValueError naming ``source`` if the
    header is malformed or the payload has the wrong length."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{source}: not an IDX file (the first two bytes must be zero)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{source}: unknown IDX data type 0x{type_code:02X}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header ({ndim} dimensions announced)")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{source}: IDX payload has {len(data) - header} bytes, the header {shape} of "
            f"{dtype.name} announces {expected - header}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> tuple[int, np.ndarray]:
    """(magic number, array) of the IDX file at ``path`` (gzip-compressed if it ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:  # a corrupt .gz raises BadGzipFile (an OSError) or EOF
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    array = parse_idx(data, str(path))
    return int.from_bytes(data[:4], "big"), array


def find_files(root: Path) -> dict[str, Path]:
    """The four MNIST files under ``root`` (raw preferred over .gz); FileNotFoundError naming
    the expected files otherwise."""
    for folder in (root, root / "mnist", root / "MNIST" / "raw"):
        found = {}
        for key, name in FILES.items():
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FILES):
            return found
    raise FileNotFoundError(
        f"mnist: expected {', '.join(FILES.values())} (raw or .gz) in {str(root)!r} "
        "(or its mnist/ or MNIST/raw/ sub-folder); dlskills never downloads data"
    )


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images_magic, images = read_idx(images_path)
    labels_magic, labels = read_idx(labels_path)
    if images_magic != IMAGES_MAGIC:
        raise ValueError(
            f"{images_path}: magic 0x{images_magic:08X}, expected 0x{IMAGES_MAGIC:08X} "
            "(uint8 images, 3 dims)"
        )
    if labels_magic != LABELS_MAGIC:
        raise ValueError(
            f"{labels_path}: magic 0x{labels_magic:08X}, expected 0x{LABELS_MAGIC:08X} "
            "(uint8 labels, 1 dim)"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


@register_dataset("mnist", task="classification", source="local")
def mnist(
    *,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 1 / 12,
) -> DataSplits:
    files = find_files(resolve_data_dir(data_dir, "mnist"))
    train_images, train_labels = _read_pair(files["train_images"], files["train_labels"])
    test_images, test_labels = _read_pair(files["test_images"], files["test_labels"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(
            f"mnist: train images are {train_images.shape[1:]} but test images are "
            f"{test_images.shape[1:]}"
        )
    train, val = validation_split(train_labels, seed=seed, val_fraction=val_fraction)
    pixels = [a[:, None].astype(np.float32) / 255.0 for a in (train_images, test_images)]
    (x_train, x_val, x_test), mean, std = standardize(pixels[0][train], pixels[0][val], pixels[1])
    return DataSplits(
        name="mnist",
        train=tensor_dataset(x_train, train_labels[train], "classification"),
        val=tensor_dataset(x_val, train_labels[val], "classification"),
        test=tensor_dataset(x_test, test_labels, "classification"),
        task="classification",
        num_classes=10,
        input_shape=tuple(x_train.shape[1:]),
        info={
            "seed": seed,
            "mean": float(mean),
            "std": float(std),
            "files": {k: str(v) for k, v in files.items()},
        },
    )
