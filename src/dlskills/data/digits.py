"""scikit-learn's bundled 8×8 handwritten digits (UCI "Optical Recognition of Handwritten Digits";
1797 images, 10 classes, pixel values 0..16) — the library's default laptop-scale image task.

Preparation: x/16 ∈ [0, 1], shape (1, 8, 8); a stratified split by ``seed`` into 70/15/15
(1257/270/270 at the defaults; val and test are round(0.15·1797) = 270); then standardisation
with the TRAIN pixels' scalar mean and std (one pair for all pixels: several border pixels are
always 0, so per-pixel statistics would divide by zero).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from dlskills.data._registry import (
    DataSplits,
    register_dataset,
    standardize,
    tensor_dataset,
    three_way_split,
)


@functools.cache
def _images_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 images as (1, 8, 8) in [0, 1] and their labels; parsed once per process (read
    only, so the cached arrays cannot be changed by a caller)."""
    with gzip.open(_bundled_file(), "rt") as file:
        table = np.loadtxt(file, delimiter=",")  # 64 pixels then the label, one image per row
    images = (table[:, :-1] / 16.0).reshape(-1, 1, 8, 8)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def _bundled_file() -> Path:
    """scikit-learn's ``datasets/data/digits.csv.gz``, located without importing scikit-learn
    (its import costs ≈ 2 s, more than the rest of a digits run's start-up)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("digits: scikit-learn is not installed (it bundles the data file)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"digits: scikit-learn's data file {path} is missing")
    return path


@register_dataset("digits", task="classification", source="bundled", input_shape=(1, 8, 8))
def digits(*, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15) -> DataSplits:
    images, labels = _images_and_labels()
    train, val, test = three_way_split(
        len(labels),
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        labels=labels,
    )
    (x_train, x_val, x_test), mean, std = standardize(images[train], images[val], images[test])
    return DataSplits(
        name="digits",
        train=tensor_dataset(x_train, labels[train], "classification"),
        val=tensor_dataset(x_val, labels[val], "classification"),
        test=tensor_dataset(x_test, labels[test], "classification"),
        task="classification",
        num_classes=10,
        input_shape=(1, 8, 8),
        info={"seed": seed, "mean": float(mean), "std": float(std), "pixel_scale": 16.0},
    )
