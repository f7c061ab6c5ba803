"""Support for the model checks: the digits split as tensors and a minimal seeded SGD loop.

Used by the tests and slow checks of DiCENet-small, VarGNet-small, Fixup ResNet, the SNN kit and
Network Decoupling, which only need "train a tiny model on digits for a few epochs and report
test accuracy"; full training goes through ``dlskills.train``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn


def digits_tensors(
    seed: int = 0, image: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``dlskills.data`` digits (standardised, stratified by ``seed``) as (x_train, y_train,
    x_test, y_test); images (N, 1, 8, 8), or flat (N, 64) features when ``image`` is False."""
    from dlskills.data import load

    splits = load("digits", seed=seed)
    (x_train, y_train), (x_test, y_test) = splits.train.tensors, splits.test.tensors
    if not image:
        x_train, x_test = x_train.flatten(1), x_test.flatten(1)
    return x_train, y_train, x_test, y_test


def accuracy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode (the training flag is restored)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = (model(inputs).argmax(1) == targets).float().mean().item()
    model.train(was_training)
    return correct


def quick_fit(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
    batch_size: int = 64,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    param_groups: Callable[[nn.Module, float], Iterable] | None = None,
) -> float:
    """Train ``model`` with SGD + momentum and cross-entropy; return its test accuracy.

    ``param_groups(model, lr)`` may build the optimizer's groups (e.g. Fixup's lr/10 scalars).
    """
    x_train, y_train, x_test, y_test = data
    generator = torch.Generator().manual_seed(seed)
    groups = param_groups(model, lr) if param_groups else model.parameters()
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return accuracy(model, x_test, y_test)
