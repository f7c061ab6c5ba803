"""Synthetic long-term-dependency tasks for recurrent nets (catalog 1211.5063: Pascanu et al. 2012
§5 train on these pathological problems of Hochreiter & Schmidhuber 1997, "Long short-term
memory", experiments 4 and 6a). Inputs are sequences (N, T, D), generated from ``seed`` alone
and split 70/15/15 like the other synthetic sets.

adding          regression. Step t carries (v_t, m_t): v_t ~ U(0, 1), and m_t ∈ {0, 1} marks exactly
                two steps, t₁ uniform in [0, ⌈T/10⌉) and t₂ uniform in [⌊T/2⌋, T). Target
                y = v_{t₁} + v_{t₂}. Predicting the constant E[y] = 1 gives MSE = Var(y) = 1/6,
                the bar a model must beat (``ADDING_TRIVIAL_MSE``).
temporal_order  4-class classification over one-hot symbols of the alphabet
                (a, b, c, d, X, Y, B, E): step 0 is B, step T−1 is E, every other step is a random
                distractor a–d, except t₁ uniform in [⌊T/10⌋, ⌊2T/10⌋) and t₂ uniform in
                [⌊5T/10⌋, ⌊6T/10⌋), which hold X or Y. Class = 2·[s_{t₁} = Y] + [s_{t₂} = Y]
                (XX = 0, XY = 1, YX = 2, YY = 3); chance accuracy 1/4.

Deviations: H&S draw the adding values from [−1, 1] and place t₁ among the first ten steps; we
follow Pascanu et al. / Martens & Sutskever (values in [0, 1], positions as fractions of T) so the
task scales with T. Temporal order uses H&S's window fractions (10–20 and 50–60 for T = 100)
for every T. Inputs are not standardised: the markers and one-hot codes carry the task.
"""

from __future__ import annotations

import math

import numpy as np

from dlskills.data._registry import DataSplits, register_dataset
from dlskills.data.synthetic import _check_count, _splits

ADDING_TRIVIAL_MSE = 1.0 / 6.0
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
_X, _Y, _BEGIN, _END = (TEMPORAL_ORDER_SYMBOLS.index(s) for s in "XYBE")
_DISTRACTORS = 4


@register_dataset("adding", catalog_id="1211.5063", task="regression", source="synthetic")
def adding(
    *,
    seed: int = 0,
    n: int = 2000,
    length: int = 50,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 20)
    _check_count("length", length, 2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, length))
    first = rng.integers(0, math.ceil(length / 10), n)
    second = rng.integers(length // 2, length, n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=2)
    y = (values[rows, first] + values[rows, second])[:, None]
    return _splits(
        "adding", x, y, task="regression", num_classes=None, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "length": length, "trivial_mse": ADDING_TRIVIAL_MSE},
    )  # fmt: skip


@register_dataset(
    "temporal_order", catalog_id="1211.5063", task="classification", source="synthetic"
)
def temporal_order(
    *,
    seed: int = 0,
    n: int = 2000,
    length: int = 100,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 40)
    _check_count("length", length, 10)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, _DISTRACTORS, (n, length))
    symbols[:, 0], symbols[:, -1] = _BEGIN, _END
    first = rng.integers(length // 10, 2 * length // 10, n)
    second = rng.integers(5 * length // 10, 6 * length // 10, n)
    labels = rng.permutation(np.arange(n) % 4)  # balanced classes
    rows = np.arange(n)
    symbols[rows, first] = np.where(labels // 2 == 1, _Y, _X)
    symbols[rows, second] = np.where(labels % 2 == 1, _Y, _X)
    x = np.eye(len(TEMPORAL_ORDER_SYMBOLS))[symbols]
    return _splits(
        "temporal_order", x, labels, task="classification", num_classes=4, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "length": length, "symbols": "".join(TEMPORAL_ORDER_SYMBOLS)},
    )  # fmt: skip
