"""CIFAR-10 from the local "python version" batches (Krizhevsky 2009, cs.toronto.edu/~kriz).

Expected in ``data_dir`` (or its ``cifar-10-batches-py/`` sub-folder): ``data_batch_1`` …
``data_batch_5`` and ``test_batch``, each a pickled dict with ``data`` (N×3072 uint8, row-major
R, G, B planes of 32×32) and ``labels`` (N ints 0..9). Nothing is downloaded.

The batches are pickles, and a pickle can run any code it names. The project never loads an
unrestricted pickle from disk, so :class:`RestrictedUnpickler` resolves only the globals that
rebuild a numpy array or scalar (``_reconstruct``, ``_frombuffer``, ``scalar``, ``ndarray``,
``dtype``) plus ``_codecs.encode`` (Python 3 protocol-2 pickles store bytes through it), and
refuses every other global with an error that names it — ``os.system`` included. Deviation
from the format's own instructions (``pickle.load``): deliberate, for safety; real batches
load unchanged.

Preparation: pixels/255 as (3, 32, 32); a stratified validation split carved from the training
batches by ``seed`` (``val_fraction`` = 0.1 → 45 000/5 000); per-channel standardisation with
the TRAIN split's mean and std.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dlskills.data._registry import (
    DataSplits,
    register_dataset,
    resolve_data_dir,
    standardize,
    tensor_dataset,
    validation_split,
)

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)

_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FROMBUFFER = np.empty(0).__reduce_ex__(5)[0]
_SCALAR = np.int64(0).__reduce__()[0]
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, strings, numbers and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy array reconstruction is "
                "allowed in CIFAR-10 batches"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (bytes keys stay bytes)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels N int64) of one batch file; ValueError if malformed."""
    try:
        batch = restricted_loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 batch (a dict was expected)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' entries")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE):
        raise ValueError(f"{path}: data must be N×3072 uint8, got {data.shape} {data.dtype}")
    if labels.shape != (len(data),) or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise ValueError(f"{path}: labels must be {len(data)} ints in 0..9")
    return data.reshape(-1, *IMAGE_SHAPE), labels


def find_folder(root: Path) -> Path:
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH)):
            return folder
    raise FileNotFoundError(
        f"cifar10: expected {', '.join(TRAIN_BATCHES)} and {TEST_BATCH} in {str(root)!r} (or its "
        "cifar-10-batches-py/ sub-folder); dlskills never downloads data"
    )


@register_dataset("cifar10", task="classification", source="local", aliases=("cifar-10",))
def cifar10(
    *, seed: int = 0, data_dir: str | os.PathLike[str] | None = None, val_fraction: float = 0.1
) -> DataSplits:
    folder = find_folder(resolve_data_dir(data_dir, "cifar10"))
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    train_images = np.concatenate([images for images, _ in parts])
    train_labels = np.concatenate([labels for _, labels in parts])
    test_images, test_labels = read_batch(folder / TEST_BATCH)
    train, val = validation_split(train_labels, seed=seed, val_fraction=val_fraction)
    (x_train, x_val, x_test), mean, std = standardize(
        train_images[train].astype(np.float32) / 255.0,
        train_images[val].astype(np.float32) / 255.0,
        test_images.astype(np.float32) / 255.0,
        axis=(0, 2, 3),
    )
    return DataSplits(
        name="cifar10",
        train=tensor_dataset(x_train, train_labels[train], "classification"),
        val=tensor_dataset(x_val, train_labels[val], "classification"),
        test=tensor_dataset(x_test, test_labels, "classification"),
        task="classification",
        num_classes=10,
        input_shape=IMAGE_SHAPE,
        info={"seed": seed, "mean": mean.tolist(), "std": std.tolist(), "folder": str(folder)},
    )
