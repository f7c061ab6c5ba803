"""Support shared by the reproductions: small nets with a controlled init, line fits."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

HE_GAIN = math.sqrt(2.0)


def mlp(
    widths: Sequence[int], *, din: int, dout: int, activation: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """Linear/activation stack with hidden ``widths`` (torch's default init)."""
    layers: list[nn.Module] = []
    fan_in = din
    for width in widths:
        layers += [nn.Linear(fan_in, width), activation()]
        fan_in = width
    layers.append(nn.Linear(fan_in, dout))
    return nn.Sequential(*layers)


def gaussian_init(gain: float) -> Callable[[nn.Module], None]:
    """An init_fn drawing every Linear weight from N(0, gain² / fan_in), biases zero."""

    def init(model: nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=gain / math.sqrt(module.in_features))
                nn.init.zeros_(module.bias)

    return init


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y on x."""
    slope, intercept = statistics.linear_regression(list(map(float, x)), list(map(float, y)))
    return slope, intercept


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread (restored after): wall times comparable between arms
    and results the same on every machine, whatever its core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
