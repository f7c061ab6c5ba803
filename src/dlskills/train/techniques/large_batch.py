"""The large-minibatch check (catalog 1706.02677, Goyal et al. 2017, "Accurate, Large Minibatch
SGD: Training ImageNet in 1 Hour").

Rules (implemented in ``dlskills.optim.schedules``):
- linear scaling (§2.1): when the minibatch is multiplied by k, multiply the learning rate by k,
  η_k = k·η (``linear_scaling_rule(η, k·b, base_batch_size=b)``);
- gradual warm-up (§2.2): start at η and raise the rate linearly to k·η over the first W steps,
  lr(t) = k·η·(1/k + (1 − 1/k)·t/W) for t < W (``build_schedule(..., warmup_steps=W,
  warmup_start_factor=1/k)``), then keep k·η.

The check trains the same model on the digits task with SGD + momentum for the same number of
EPOCHS (so the k-fold batch takes k-fold fewer steps) in four arms and reports test accuracy:

    small       batch b,    lr η
    no_scaling  batch k·b,  lr η
    scaled      batch k·b,  lr k·η from the first step
    warmup      batch k·b,  lr k·η after a linear warm-up from η over ``warmup_epochs`` epochs

The paper's claim: ``warmup`` matches ``small`` (within a tolerance), while the large batch
without warm-up (``scaled``) or without scaling (``no_scaling``) falls short.

Deviations: laptop scale. Digits (1257 training images) and a 2×128 MLP replace ResNet-50 on
ImageNet; the "small" batch is 16 rather than 256 (k = 8, 16 give 128 and 256); 10 epochs with
a 2-epoch warm-up replace 90 and 5; the schedule after warm-up is a cosine decay (the same for
every arm, so each run ends at a small rate instead of the paper's step decay at epochs 30/60/80).

What holds here (tests/train/techniques/test_large_batch.py, seeds 0–2, defaults): ``warmup``
is within 0.3 (k = 8) and 1.6 (k = 16) accuracy points of ``small`` on average and
``no_scaling`` is 6 and 18 points worse. The no-warm-up half does NOT reproduce: ``scaled`` is as
good as ``warmup`` at η = 0.02–0.03, and at η ≥ 0.04 (k·η ≥ 0.64 for k = 16) both large-rate
arms collapse erratically, warm-up rescuing one seed and not another. Goyal et al. also report
only a small loss without warm-up below 8k images (their Table 1); the early-training instability
that warm-up cures does not appear in a shallow MLP on digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from dlskills.data import load
from dlskills.models.mlp import MLP
from dlskills.optim.schedules import build_schedule, linear_scaling_rule
from dlskills.train.callbacks.base import Callback
from dlskills.train.trainer import Trainer

ARMS = ("small", "no_scaling", "scaled", "warmup")


@dataclass
class ArmResult:
    """One training run: its batch size, peak learning rate, warm-up length (steps), the
    learning rate of every optimizer step and the final test accuracy."""

    name: str
    k: int
    batch_size: int
    peak_lr: float
    warmup_steps: int
    lrs: list[float] = field(repr=False)
    test_accuracy: float


@dataclass
class LargeBatchResult:
    """``small`` (the baseline) and ``large[k][arm]`` for arm ∈ no_scaling, scaled, warmup."""

    small: ArmResult
    large: dict[int, dict[str, ArmResult]]
    config: dict[str, Any]

    def gaps(self) -> dict[int, dict[str, float]]:
        """Small-batch accuracy minus each large-batch arm's accuracy (positive = worse)."""
        base = self.small.test_accuracy
        return {
            k: {name: base - arm.test_accuracy for name, arm in arms.items()}
            for k, arms in self.large.items()
        }


class _RecordLR(Callback):
    """Collects the learning rate each optimizer step actually uses."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_step(self, trainer: Any) -> None:
        self.lrs.append(trainer.lr)


def _train_arm(
    name: str,
    k: int,
    *,
    splits: Any,
    base_batch_size: int,
    base_lr: float,
    epochs: int,
    warmup_epochs: float,
    schedule: str,
    momentum: float,
    width: int,
    norm: str,
    seed: int,
) -> ArmResult:
    batch_size = base_batch_size * k
    peak_lr = (
        base_lr
        if name in ("small", "no_scaling")
        else linear_scaling_rule(base_lr, batch_size, base_batch_size)
    )
    steps_per_epoch = math.ceil(len(splits.train) / batch_size)
    total_steps = steps_per_epoch * epochs
    warmup_steps = max(1, round(warmup_epochs * steps_per_epoch)) if name == "warmup" else 0
    torch.manual_seed(seed)  # the same initial weights in every arm
    model = MLP(
        input_shape=splits.input_shape, num_classes=splits.num_classes, width=width, norm=norm
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=peak_lr, momentum=momentum)
    scheduler = build_schedule(
        schedule, optimizer, total_steps, warmup_steps, warmup_start_factor=1.0 / k
    )
    train_loader, _, test_loader = splits.loaders(batch_size, seed=seed, eval_batch_size=512)
    recorder = _RecordLR()
    trainer = Trainer(
        model,
        optimizer,
        F.cross_entropy,
        train_loader,
        callbacks=[recorder],
        max_epochs=epochs,
        scheduler=scheduler,
        seed=seed,
        log_every=10**9,
    )
    trainer.fit()
    test = trainer.evaluate(test_loader)
    # a diverged net (NaN outputs) predicts class 0 everywhere; count it as chance, no better
    accuracy = test["accuracy"] if math.isfinite(test["loss"]) else 1.0 / splits.num_classes
    return ArmResult(name, k, batch_size, peak_lr, warmup_steps, recorder.lrs, accuracy)


def large_batch_check(
    k_values: Sequence[int] = (8, 16),
    *,
    seed: int = 0,
    base_batch_size: int = 16,
    base_lr: float = 0.02,
    epochs: int = 10,
    warmup_epochs: float = 2.0,
    schedule: str = "cosine",
    momentum: float = 0.9,
    width: int = 128,
    norm: str = "none",
    dataset: str = "digits",
) -> LargeBatchResult:
    """Train the four arms of the module docstring for every k in ``k_values`` (the small-batch
    arm once) and return their test accuracies and learning-rate traces."""
    ks = [int(k) for k in k_values]
    if not ks or any(k < 2 or k != kv for k, kv in zip(ks, k_values, strict=True)):
        raise ValueError(f"k_values must be integers ≥ 2, got {k_values!r}")
    if isinstance(base_batch_size, bool) or not isinstance(base_batch_size, int):
        raise TypeError(f"base_batch_size must be an int, got {type(base_batch_size).__name__}")
    if base_batch_size < 1:
        raise ValueError(f"base_batch_size must be ≥ 1, got {base_batch_size}")
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not 0 < warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs must be in (0, epochs), got {warmup_epochs}")
    splits = load(dataset, seed=seed)
    common = dict(
        splits=splits,
        base_batch_size=base_batch_size,
        base_lr=base_lr,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        schedule=schedule,
        momentum=momentum,
        width=width,
        norm=norm,
        seed=seed,
    )
    small = _train_arm("small", 1, **common)
    large = {k: {name: _train_arm(name, k, **common) for name in ARMS[1:]} for k in ks}
    config = {key: value for key, value in common.items() if key != "splits"}
    config.update(k_values=ks, dataset=dataset)
    return LargeBatchResult(small, large, config)
