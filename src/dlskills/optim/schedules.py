"""Learning-rate schedules as torch LR schedulers (catalog 1706.02677, 1902.04103).

``build_schedule(name, optimizer, total_steps, warmup_steps=0, **kw)`` returns a
``torch.optim.lr_scheduler.LambdaLR`` that is stepped once per *optimizer step* (not per epoch).
With t the number of optimizer steps already taken (t = 0 for the first step), the learning rate
of group i is ``lr_i(t) = base_lr_i · f(t)`` with

  warm-up (Goyal et al. 2017, "gradual warm-up"), W = warmup_steps, s = warmup_start_factor:
      f(t) = s + (1 − s)·t/W                           for t < W
  then the main schedule ("constant", "cosine", "linear", "step"), with u = t − W the steps
  since warm-up ended, D = total_steps − W its length and r = min_lr_ratio:
      constant  f = 1
      cosine    f = r + (1 − r)·(1 + cos(π·min(u, D)/D))/2       (Loshchilov & Hutter; 1902.04103)
      linear    f = 1 − (1 − r)·min(u, D)/D
      step      f = gamma^(number of milestones m ≤ t)           (milestones count from step 0,
                                                                  as Goyal's "epochs 30, 60, 80")

Goyal et al. ramp from the small-batch rate η to kη over 5 epochs: pass ``warmup_start_factor =
1/k`` (``base_batch_size / batch_size``) with ``base_lr = linear_scaling_rule(η, batch_size)``.
The default s = 0 ramps from zero as the Bag-of-Freebies/GluonCV code (1902.04103) does; the
first step then has lr 0 (optimizer state still accumulates), which is why s is exposed.

Linear scaling rule (1706.02677 §2.1): "when the minibatch size is multiplied by k, multiply the
learning rate by k": ``linear_scaling_rule(base_lr, batch_size, base_batch_size=256)`` returns
``base_lr · batch_size / base_batch_size`` (Goyal et al.: η = 0.1·kn/256 for ResNet-50).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR

from dlskills._registry import Registry

SCHEDULES = Registry("schedule")


def linear_scaling_rule(base_lr: float, batch_size: int, base_batch_size: int = 256) -> float:
    """Goyal et al.'s linear scaling rule: ``base_lr · batch_size / base_batch_size``.

    ``base_lr`` is the learning rate tuned at ``base_batch_size``; e.g. 0.1 at 256 gives 3.2 at
    8192. Pair it with ``build_schedule(..., warmup_steps=W, warmup_start_factor=base_batch_size
    / batch_size)`` for the paper's gradual warm-up."""
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if int(base_batch_size) != base_batch_size or base_batch_size < 1:
        raise ValueError(f"base_batch_size must be a positive integer, got {base_batch_size}")
    return base_lr * batch_size / base_batch_size


@SCHEDULES.register("constant")
def constant(u: int, t: int, spec: ScheduleSpec) -> float:
    """f = 1."""
    return 1.0


@SCHEDULES.register("cosine", catalog_id="1902.04103")
def cosine(u: int, t: int, spec: ScheduleSpec) -> float:
    """Half-cosine from 1 to ``min_lr_ratio`` over the post-warm-up steps, then flat."""
    progress = min(u, spec.decay_steps) / spec.decay_steps
    half_cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return spec.min_lr_ratio + (1.0 - spec.min_lr_ratio) * half_cosine


@SCHEDULES.register("linear")
def linear(u: int, t: int, spec: ScheduleSpec) -> float:
    """Straight line from 1 to ``min_lr_ratio`` over the post-warm-up steps, then flat."""
    return 1.0 - (1.0 - spec.min_lr_ratio) * min(u, spec.decay_steps) / spec.decay_steps


@SCHEDULES.register("step", catalog_id="1706.02677")
def step(u: int, t: int, spec: ScheduleSpec) -> float:
    """Multiply by ``gamma`` at each milestone (absolute optimizer steps, warm-up included)."""
    return spec.gamma ** sum(1 for m in spec.milestones if t >= m)


@dataclass
class ScheduleSpec:
    """The LambdaLR multiplier f(t). Plain fields only, so ``scheduler.state_dict()`` (which
    stores a callable object's ``__dict__``) is JSON-serialisable for dlskills checkpoints."""

    schedule: str
    decay_steps: int
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0
    min_lr_ratio: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1

    def __call__(self, t: int) -> float:
        if t < self.warmup_steps:
            s = self.warmup_start_factor
            return s + (1.0 - s) * t / self.warmup_steps
        return SCHEDULES.get(self.schedule)(t - self.warmup_steps, t, self)


def _check_ratio(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def build_schedule(
    name: str,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    *,
    warmup_start_factor: float = 0.0,
    min_lr_ratio: float = 0.0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> LambdaLR:
    """A per-optimizer-step LR scheduler ``name`` ∈ {constant, cosine, linear, step} with an
    optional linear warm-up (rules in the module docstring). Call ``scheduler.step()`` after
    every ``optimizer.step()``."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        kind = type(optimizer).__name__
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {kind}")
    if int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps}")
    if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be an integer in [0, total_steps), got {warmup_steps}")
    _check_ratio("warmup_start_factor", warmup_start_factor)
    _check_ratio("min_lr_ratio", min_lr_ratio)
    canonical = SCHEDULES.entry(name).name
    steps = [int(m) for m in milestones]
    if canonical == "step":
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if not steps or steps[0] <= 0 or steps != sorted(set(steps)):
            raise ValueError(f"milestones must be increasing positive steps, got {milestones!r}")
    multiplier = ScheduleSpec(
        schedule=canonical,
        decay_steps=int(total_steps - warmup_steps),
        warmup_steps=int(warmup_steps),
        warmup_start_factor=float(warmup_start_factor),
        min_lr_ratio=float(min_lr_ratio),
        milestones=steps,
        gamma=float(gamma),
    )
    return LambdaLR(optimizer, lr_lambda=multiplier)
