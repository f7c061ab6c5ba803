"""Mean-field parameterised MLP (catalog 1902.02880; Phan-Minh Nguyen, "Mean Field Limit of the
Learning Dynamics of Multilayer Neural Networks", 2019).

With the mean-field scaling every layer after the first *averages* over its inputs instead of
summing them, and the weights stay O(1) whatever the width:

    H₁(j) = σ(⟨w₁(j), x⟩ + b₁(j))                         j ≤ N₁   (an ordinary first layer)
    H_ℓ(j) = σ((1/N_{ℓ−1}) Σ_i w_ℓ(i, j) H_{ℓ−1}(i))      ℓ = 2..L
    ŷ(k)  = (1/N_L) Σ_i w_{L+1}(i, k) H_L(i)

Each weight's gradient then carries the averaging factors of the layers it feeds (1/N₁ for the
first layer, 1/(N_{ℓ−1}·N_ℓ) in the middle, 1/N_L at the output), and the paper's SGD undoes them
in time: the learning rate of a weight is the base rate times those widths
(``mean_field_param_groups``). With that, the training trajectory of the network's *function*
has a limit as all widths grow together, so networks of growing width follow one common
training curve: ``width_convergence`` measures it.

Initialisation: the first layer with std 1/√d (d the input size) and bias std 0.1, every later
weight i.i.d. N(0, 1) (``init_std``), both width-independent as the scaling requires. Named
consequence, not a deviation: with i.i.d. weights the averages of the later layers concentrate
at initialisation (the degenerate start the paper discusses), so the output starts near 0 and
deeper stacks escape it slowly; the check uses two hidden layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlskills.models._registry import (
    SequentialModel,
    check_positive_int,
    check_shape,
    register_model,
)
from dlskills.models.mlp import hidden_widths
from dlskills.nn.activations import get_activation


class MeanFieldLinear(nn.Module):
    """y = x·Wᵀ / fan_in, W (fan_out, fan_in) ~ N(0, init_std²): the average, not the sum."""

    def __init__(self, fan_in: int, fan_out: int, *, init_std: float = 1.0) -> None:
        super().__init__()
        self.fan_in, self.fan_out = fan_in, fan_out
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        nn.init.normal_(self.weight, std=init_std)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight) / self.fan_in

    def extra_repr(self) -> str:
        return f"fan_in={self.fan_in}, fan_out={self.fan_out} (mean-field average)"


@register_model("mean_field_mlp", catalog_id="1902.02880", family="mlp", input="any")
class MeanFieldMLP(SequentialModel):
    """Flatten → Linear(d, N₁) → act → (``depth`` − 1) × [MeanFieldLinear → act] →
    MeanFieldLinear(N_L, num_classes). Train it with ``mean_field_param_groups``."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 2,
        width: int | Sequence[int] = 256,
        activation: str = "tanh",
        init_std: float = 1.0,
    ) -> None:
        shape = check_shape(input_shape)
        check_positive_int("num_classes", num_classes)
        check_positive_int("depth", depth)
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        widths = hidden_widths(depth, width)
        fan_in = math.prod(shape)
        first = nn.Linear(fan_in, widths[0])
        nn.init.normal_(first.weight, std=1.0 / math.sqrt(fan_in))
        nn.init.normal_(first.bias, std=0.1)
        layers: list[nn.Module] = [nn.Flatten(), first, get_activation(activation)]
        for previous, current in itertools.pairwise(widths):
            layers += [MeanFieldLinear(previous, current, init_std=init_std)]
            layers += [get_activation(activation)]
        layers.append(MeanFieldLinear(widths[-1], num_classes, init_std=init_std))
        super().__init__(*layers)
        self.input_shape, self.num_classes, self.widths = shape, num_classes, widths


def mean_field_param_groups(model: MeanFieldMLP, lr: float) -> list[dict]:
    """Param groups for any torch optimizer with the mean-field learning rates: ``lr``·N₁ for
    the first layer, ``lr``·N_{ℓ−1}·N_ℓ for a middle layer, ``lr``·N_L for the output layer."""
    if not isinstance(model, MeanFieldMLP):
        raise TypeError(f"model must be a MeanFieldMLP, got {type(model).__name__}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    layers = [m for m in model if isinstance(m, nn.Linear | MeanFieldLinear)]
    groups = [{"params": list(layers[0].parameters()), "lr": lr * model.widths[0]}]
    for layer in layers[1:-1]:
        groups.append({"params": [layer.weight], "lr": lr * layer.fan_in * layer.fan_out})
    groups.append({"params": [layers[-1].weight], "lr": lr * layers[-1].fan_in})
    return groups


@dataclass
class WidthConvergence:
    """Training-loss curves (one per seed) of each width, every ``every`` steps."""

    widths: list[int]
    steps: list[int] = field(default_factory=list)
    curves: dict[int, Tensor] = field(default_factory=dict)  # width -> (seeds, points)

    def distance_to_widest(self) -> dict[int, float]:
        """Mean over seeds of the largest gap between a width's curve and the mean curve of the
        widest network (the stand-in for the limit)."""
        limit = self.curves[max(self.widths)].mean(0)
        return {
            w: float((self.curves[w] - limit).abs().max(dim=1).values.mean())
            for w in self.widths
            if w != max(self.widths)
        }


def width_convergence(
    widths: Sequence[int] = (16, 64, 256, 1024),
    *,
    seeds: Sequence[int] = (0, 1),
    steps: int = 400,
    lr: float = 0.3,
    batch_size: int = 128,
    every: int = 20,
    progress: Callable[[int, int, str], Any] | None = None,
) -> WidthConvergence:
    """Train a two-hidden-layer ``MeanFieldMLP`` of each width (N₁ = N₂ = width) on the digits
    training split with plain SGD at the mean-field rates, every width on the same sequence of
    minibatches, and record the full training-set cross-entropy every ``every`` steps.
    ``progress(done, total, what)`` is called after every (width, seed) run."""
    from dlskills.data import load

    train = load("digits", seed=0).train
    inputs = torch.stack([train[i][0] for i in range(len(train))])
    targets = torch.stack([torch.as_tensor(train[i][1]) for i in range(len(train))])
    result = WidthConvergence(sorted(widths))
    result.steps = list(range(every, steps + 1, every))
    for width in result.widths:
        runs = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = MeanFieldMLP(input_shape=tuple(inputs.shape[1:]), num_classes=10, width=width)
            optimizer = torch.optim.SGD(mean_field_param_groups(model, lr))
            batches = torch.Generator().manual_seed(1_000 + seed)
            curve = []
            for step in range(1, steps + 1):
                index = torch.randint(0, len(inputs), (batch_size,), generator=batches)
                loss = F.cross_entropy(model(inputs[index]), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step % every == 0:
                    with torch.no_grad():
                        curve.append(float(F.cross_entropy(model(inputs), targets)))
            runs.append(curve)
            if progress is not None:
                progress(
                    len(result.curves) * len(seeds) + len(runs),
                    len(result.widths) * len(seeds),
                    f"width {width}, seed {seed}",
                )
        result.curves[width] = torch.tensor(runs)
    return result


def plot_width_convergence(result: WidthConvergence, path: str | Path) -> Path:
    """The training curves of every width (mean over seeds), and their distance to the widest
    against the width (log–log, with the 1/√N slope for reference)."""
    from matplotlib.ticker import NullFormatter

    from dlskills._plot import integer_ticks, label_axes, legend, new_figure, save_figure

    fig, axes = new_figure(
        1, 2, size=(5.0, 3.8), title="Mean-field MLP: training converges as the width N grows"
    )
    curves_ax, distance_ax = axes[0]
    for width in result.widths:
        curves_ax.plot(result.steps, result.curves[width].mean(0).tolist(), label=f"N = {width}")
    curves_ax.set_yscale("log")
    label_axes(
        curves_ax,
        "SGD step",
        "training cross-entropy (nats, log scale)",
        title="two hidden layers of width N",
    )
    integer_ticks(curves_ax, "x")
    legend(curves_ax)
    distances = result.distance_to_widest()
    xs = sorted(distances)
    distance_ax.loglog(xs, [distances[w] for w in xs], "o-", label="max gap to the widest")
    reference = [distances[xs[0]] * math.sqrt(xs[0] / w) for w in xs]
    distance_ax.loglog(xs, reference, "--", color="0.5", label="∝ 1/√N")
    distance_ax.set_xticks(xs, [str(w) for w in xs])
    distance_ax.xaxis.set_minor_formatter(NullFormatter())
    label_axes(
        distance_ax,
        "width N (hidden units per layer)",
        "max gap in cross-entropy (nats)",
        title="distance to the widest network's curve",
    )
    legend(distance_ax)
    return save_figure(fig, path)


__all__ = [
    "MeanFieldLinear",
    "MeanFieldMLP",
    "WidthConvergence",
    "mean_field_param_groups",
    "plot_width_convergence",
    "width_convergence",
]
