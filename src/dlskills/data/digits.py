"""scikit-learn's bundled 8×8 handwritten digits (UCI "Optical Recognition of Handwritten Digits";
1797 images, 10 classes, pixel values 0..16) — the library's default laptop-scale image task.

Preparation: x/16 ∈ [0, 1], shape (1, 8, 8); a stratified split by ``seed`` into 70/15/15
(1257/270/270 at the defaults; val and test are round(0.15·1797) = 270); then standardisation
with the TRAIN pixels' scalar mean and std (one pair for all pixels: several border pixels are
always 0, so per-pixel statistics would divide by zero).
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.datasets import load_digits

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
    bunch = load_digits()
    images = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


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
