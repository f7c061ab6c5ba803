"""The dataset registry, the ``DataSplits`` every loader returns, and the split/standardise
helpers the loaders share.

A dataset is a function ``(*, seed, data_dir, **kw) -> DataSplits`` registered with
``register_dataset(name, task=..., source=...)``; ``source`` is "bundled", "synthetic" or "local"
(reads ``data_dir``; nothing is ever downloaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlskills._registry import Registry

DATASETS = Registry("dataset", discover="dlskills.data")
register_dataset = DATASETS.register

TASKS = ("classification", "regression")
DATA_DIR_ENV = "DLSKILLS_DATA_DIR"


@dataclass(frozen=True)
class DataSplits:
    """Train/validation/test ``TensorDataset``s (x float32; y int64 for classification, float32
    of shape (N, outputs) for regression) and what a model builder needs to know about them."""

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    task: str
    num_classes: int | None
    input_shape: tuple[int, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if (self.task == "classification") != (self.num_classes is not None):
            raise ValueError("num_classes must be set for classification and None for regression")

    @property
    def output_dim(self) -> int:
        """Outputs a model needs: the class count, or the regression target's width."""
        if self.num_classes is not None:
            return self.num_classes
        targets = self.train.tensors[1]
        return int(targets.shape[1]) if targets.dim() > 1 else 1

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)

    def loaders(
        self, batch_size: int, *, seed: int = 0, eval_batch_size: int | None = None
    ) -> tuple[DataLoader, DataLoader, DataLoader]:
        """(train, val, test) loaders. Train shuffles with its own ``torch.Generator`` seeded by
        ``seed`` (``train_loader.generator``, so a checkpoint can save and restore its state);
        val and test keep their order. ``num_workers=0``: the tensors are already in memory."""
        _check_positive_int("batch_size", batch_size)
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        _check_positive_int("eval_batch_size", eval_batch_size)
        generator = torch.Generator().manual_seed(check_seed(seed))
        train = DataLoader(self.train, batch_size=batch_size, shuffle=True, generator=generator)
        val = DataLoader(self.val, batch_size=eval_batch_size, shuffle=False)
        test = DataLoader(self.test, batch_size=eval_batch_size, shuffle=False)
        return train, val, test


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return seed


def check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes: val and test are ``round(fraction·n)``, train the rest."""
    n_val, n_test = round(val_fraction * n), round(test_fraction * n)
    n_train = n - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} leave an empty split "
            f"of {n} samples"
        )
    return n_train, n_val, n_test


def carve(
    indices: np.ndarray, size: int, seed: int, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (rest, carved) with ``size`` carved out at random, stratified by
    ``labels[indices]`` when labels are given.

    The draw is scikit-learn's ``train_test_split(indices, test_size=size, random_state=seed,
    stratify=...)`` (ShuffleSplit / StratifiedShuffleSplit), index for index, made with numpy's
    ``RandomState`` here so that loading data does not import scikit-learn (≈ 2 s before a run's
    first step; tests/data/test_data_registry.py compares the two):

      unstratified   one permutation π of the n positions: carved = π[:size], rest = π[size:]
      stratified     per class k (sorted labels, n_k members in index order), the rest gets
                     r_k and the carved part c_k members, both from the largest-remainder
                     rounding below; then, class by class, a permutation of the n_k members
                     gives the first r_k to the rest and the next c_k to the carved part.
    """
    rng = np.random.RandomState(seed)
    if labels is None:
        order = rng.permutation(len(indices))
        return np.sort(indices[order[size:]]), np.sort(indices[order[:size]])
    classes, class_of, class_sizes = np.unique(
        labels[indices], return_inverse=True, return_counts=True
    )
    rest_size = len(indices) - size
    if class_sizes.min() < 2 or min(rest_size, size) < len(classes):
        raise ValueError(
            f"cannot stratify {len(indices)} samples of {len(classes)} classes (smallest class: "
            f"{class_sizes.min()}) into parts of {rest_size} and {size}"
        )
    members = np.split(np.argsort(class_of, kind="stable"), np.cumsum(class_sizes)[:-1])
    rest_counts = _proportional_counts(class_sizes, rest_size, rng)
    carved_counts = _proportional_counts(class_sizes - rest_counts, size, rng)
    rest, carved = [], []
    for k in range(len(classes)):
        shuffled = members[k][rng.permutation(class_sizes[k])]
        rest.append(shuffled[: rest_counts[k]])
        carved.append(shuffled[rest_counts[k] : rest_counts[k] + carved_counts[k]])
    return np.sort(indices[np.concatenate(rest)]), np.sort(indices[np.concatenate(carved)])


def _proportional_counts(
    class_sizes: np.ndarray, draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """``draws`` shared among classes in proportion to ``class_sizes``: the floors of the exact
    shares, then one more for the largest remainders, ties among equal remainders drawn at random
    (scikit-learn's ``_approximate_mode``, the same random draws)."""
    shares = class_sizes / class_sizes.sum() * draws
    counts = np.floor(shares)
    missing = int(draws - counts.sum())
    remainders = shares - counts
    # distinct remainders, largest first (np.unique would import numpy.ma before the first step)
    for remainder in sorted(set(remainders.tolist()), reverse=True):
        if missing == 0:
            break
        (tied,) = np.where(remainders == remainder)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        counts[chosen] += 1
        missing -= len(chosen)
    return counts.astype(int)


def three_way_split(
    n: int,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test) of a random split of ``range(n)``, stratified by
    ``labels`` when given; a function of ``seed`` only."""
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    _, n_val, n_test = split_counts(n, val_fraction, test_fraction)
    rest, test = carve(np.arange(n), n_test, seed, labels)
    train, val = carve(rest, n_val, seed, labels)
    return train, val, test


def validation_split(
    labels: np.ndarray, *, seed: int, val_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, val): ``round(val_fraction·n)`` samples carved from a training set
    (stratified by ``labels``) for datasets whose test split is fixed by their authors."""
    check_fraction("val_fraction", val_fraction)
    n_val = round(val_fraction * len(labels))
    if not 1 <= n_val < len(labels):
        raise ValueError(
            f"val_fraction={val_fraction} leaves an empty split of {len(labels)} samples"
        )
    return carve(np.arange(len(labels)), n_val, seed, labels)


def standardize(
    train: np.ndarray, *others: np.ndarray, axis: tuple[int, ...] | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Standardise every array with the TRAIN mean and std (over ``axis`` of train, all axes by
    default, so other statistics never leak into the inputs). Returns (arrays, mean, std)."""
    mean = train.mean(axis=axis, keepdims=True, dtype=np.float64)
    std = train.std(axis=axis, keepdims=True, dtype=np.float64)
    if np.any(std == 0):
        raise ValueError("cannot standardise: the training inputs are constant")
    arrays = [((a - mean) / std).astype(np.float32) for a in (train, *others)]
    return arrays, mean.squeeze(), std.squeeze()


def tensor_dataset(x: np.ndarray, y: np.ndarray, task: str) -> TensorDataset:
    target_dtype = torch.int64 if task == "classification" else torch.float32
    return TensorDataset(
        torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
        torch.as_tensor(np.ascontiguousarray(y), dtype=target_dtype),
    )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None, dataset: str) -> Path:
    """``data_dir``, else ``$DLSKILLS_DATA_DIR``, else ``./data``; must be an existing folder."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV, "data")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{dataset}: data_dir {str(path)!r} is not a folder (pass data_dir= or set "
            f"${DATA_DIR_ENV}; dlskills never downloads data)"
        )
    return path
