"""Synthetic tasks, generated from ``seed`` alone (data and split), in milliseconds.

spirals  two interleaved spirals, labels 0/1. For t ~ U(0, 1) and class k ∈ {0, 1}:
         r = t, θ = 2π·turns·t + kπ, x = r·(cos θ, sin θ) + noise·N(0, I₂).
blobs    ``n_classes`` isotropic Gaussian blobs in ``dim`` dimensions (scikit-learn's
         ``make_blobs``: centres uniform in [−box, box]^dim, per-blob std ``cluster_std``,
         classes of equal size ±1).
teacher  regression: x ~ N(0, I_dim), y = f(x) + noise·N(0, I_outputs) with f a random MLP of
         ``depth`` hidden layers of ``width`` units, weights N(0, 1/fan_in), zero biases and
         activation ``activation`` (so f(x) has O(1) scale whatever the width).

``n`` is the total number of samples, split 70/15/15 (stratified for classification) by the
same ``seed``. Inputs are not standardised: each generator already produces unit-scale inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dlskills.data._registry import (
    DataSplits,
    register_dataset,
    tensor_dataset,
    three_way_split,
)
from dlskills.nn.activations import get_activation


def _check_count(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _splits(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    num_classes: int | None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    info: dict,
) -> DataSplits:
    labels = y if task == "classification" else None
    parts = three_way_split(
        len(x), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, labels=labels
    )
    train, val, test = (tensor_dataset(x[i], y[i], task) for i in parts)
    return DataSplits(
        name=name,
        train=train,
        val=val,
        test=test,
        task=task,
        num_classes=num_classes,
        input_shape=tuple(x.shape[1:]),
        info={"seed": seed, **info},
    )


@register_dataset("spirals", task="classification", source="synthetic")
def spirals(
    *,
    seed: int = 0,
    n: int = 1000,
    noise: float = 0.05,
    turns: float = 1.5,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 20)
    _check_non_negative("noise", noise)
    if isinstance(turns, bool) or not isinstance(turns, int | float) or turns <= 0:
        raise ValueError(f"turns must be a positive number, got {turns!r}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    t = rng.uniform(0.0, 1.0, n)
    angle = 2 * math.pi * turns * t + math.pi * labels
    points = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    points += noise * rng.standard_normal((n, 2))
    return _splits(
        "spirals", points, labels, task="classification", num_classes=2, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "noise": noise, "turns": turns},
    )  # fmt: skip


@register_dataset("blobs", task="classification", source="synthetic")
def blobs(
    *,
    seed: int = 0,
    n: int = 1000,
    n_classes: int = 3,
    dim: int = 2,
    cluster_std: float = 1.0,
    box: float = 5.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n_classes", n_classes, 2)
    _check_count("n", n, 10 * n_classes)
    _check_count("dim", dim)
    _check_non_negative("cluster_std", cluster_std)
    _check_non_negative("box", box)
    from sklearn.datasets import make_blobs  # imported here: ≈ 2 s, only blobs needs it

    x, y = make_blobs(
        n_samples=n, n_features=dim, centers=n_classes, cluster_std=cluster_std,
        center_box=(-box, box), random_state=seed,
    )  # fmt: skip
    return _splits(
        "blobs", x, y, task="classification", num_classes=n_classes, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "n_classes": n_classes, "dim": dim, "cluster_std": cluster_std, "box": box},
    )  # fmt: skip


@register_dataset("teacher", task="regression", source="synthetic")
def teacher(
    *,
    seed: int = 0,
    n: int = 1000,
    dim: int = 10,
    width: int = 32,
    depth: int = 1,
    outputs: int = 1,
    activation: str = "tanh",
    noise: float = 0.1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    _check_count("n", n, 20)
    _check_count("dim", dim)
    _check_count("width", width)
    _check_count("depth", depth, 0)
    _check_count("outputs", outputs)
    _check_non_negative("noise", noise)
    generator = torch.Generator().manual_seed(seed)
    act = get_activation(activation)
    x = torch.randn(n, dim, generator=generator, dtype=torch.float64)

    def random_layer(features: torch.Tensor, fan_out: int) -> torch.Tensor:
        fan_in = features.shape[1]
        weight = torch.randn(fan_in, fan_out, generator=generator, dtype=torch.float64)
        return features @ weight / math.sqrt(fan_in)

    hidden = x
    for _ in range(depth):
        hidden = act(random_layer(hidden, width))
    y = random_layer(hidden, outputs) + noise * torch.randn(
        n, outputs, generator=generator, dtype=torch.float64
    )
    return _splits(
        "teacher", x.numpy(), y.numpy(), task="regression", num_classes=None, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction,
        info={"n": n, "dim": dim, "width": width, "depth": depth, "outputs": outputs,
              "activation": activation, "noise": noise},
    )  # fmt: skip
