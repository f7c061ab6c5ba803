"""Cylinder–Bell–Funnel: the classic synthetic time-series classification task (Saito 1994,
"Local feature extraction and its applications using a library of bases"; one of the UCR
archive's sets, used for SAX-based classification as in catalog 1407.4364).

Three classes of series of ``length`` steps, t = 1 … length. For each series draw the onset
a ~ U{16, …, 32}, the duration b − a ~ U{32, …, 96}, the amplitude noise η ~ N(0, 1) and the
noise ε(t) ~ N(0, 1); with χ(t) = 1 on a ≤ t ≤ b and 0 elsewhere:

    cylinder (0):  c(t) = (6 + η)·χ(t) + ε(t)
    bell     (1):  b(t) = (6 + η)·χ(t)·(t − a)/(b − a) + ε(t)
    funnel   (2):  f(t) = (6 + η)·χ(t)·(b − t)/(b − a) + ε(t)

``cbf_series(n_per_class, seed=...)`` returns balanced arrays (x float32 (3n, length), y int64),
class by class; the registered dataset ``cbf`` splits ``n`` series 70/15/15 (stratified).
Inputs are not standardised: the amplitude is part of the shapes. ``length`` must be at least
128 so that every event fits (b ≤ 128).
"""

from __future__ import annotations

import numpy as np

from dlskills.data._registry import DataSplits, register_dataset
from dlskills.data.synthetic import _check_count, _splits

CLASSES = ("cylinder", "bell", "funnel")


def cbf_series(n_per_class: int, *, seed: int = 0, length: int = 128) -> tuple[np.ndarray, ...]:
    """``n_per_class`` series of each class (cylinder, bell, funnel in that order)."""
    _check_count("n_per_class", n_per_class)
    _check_count("length", length, 128)
    rng = np.random.default_rng(seed)
    n = 3 * n_per_class
    labels = np.repeat(np.arange(3), n_per_class)
    onset = rng.integers(16, 33, n)[:, None]
    end = onset + rng.integers(32, 97, n)[:, None]
    amplitude = 6 + rng.standard_normal((n, 1))
    t = np.arange(1, length + 1)[None, :]
    event = ((t >= onset) & (t <= end)).astype(np.float64)
    ramp = (t - onset) / (end - onset)
    shape = np.where(labels[:, None] == 0, 1.0, np.where(labels[:, None] == 1, ramp, 1 - ramp))
    x = amplitude * event * shape + rng.standard_normal((n, length))
    return x.astype(np.float32), labels.astype(np.int64)


@register_dataset("cbf", catalog_id="1407.4364", task="classification", source="synthetic")
def cbf(
    *,
    seed: int = 0,
    n: int = 900,
    length: int = 128,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 30)
    x, y = cbf_series(n // 3, seed=seed, length=length)
    return _splits(
        "cbf", x, y, task="classification", num_classes=3, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": len(y), "length": length, "classes": list(CLASSES)},
    )  # fmt: skip
