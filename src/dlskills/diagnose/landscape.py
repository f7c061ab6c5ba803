"""Loss-landscape tools (catalog 1905.10268, "Loss surface modality of feed-forward neural network
architectures", 2019; the 2-D slices follow Li, Xu, Taylor, Studer & Goldstein, "Visualizing the
Loss Landscape of Neural Nets", NeurIPS 2018).

- 1-D interpolation between two parameter vectors (Goodfellow et al.'s linear path):
      L(α) = L((1 − α)·θ_a + α·θ_b),   α ∈ [0, 1] (or any range given).
- 2-D slice around θ* along two random directions δ, η:
      L(α, β) = L(θ* + α·δ + β·η),
  with filter-wise normalisation (Li et al.): for every filter i of every weight tensor (a row
  of a Linear weight, an output channel of a conv), δ_i ← δ_i / ‖δ_i‖ · ‖θ_i‖, so the slice has
  the scale of the network's own filters and is comparable across networks. Parameters of one
  dimension (biases, norm scales/shifts) get δ = 0 (Li et al.'s default "biasbn" rule) unless
  ``ignore_bias_bn=False``, in which case δ = θ for them (their code's alternative).
- Basin (mode) counting, as 1905.10268 counts modes: train from ``n_inits`` seeded random inits;
  minima i and j share a basin when the loss on the segment between them rises above the higher
  endpoint by less than ``tolerance``:
      barrier(i, j) = max_α L((1 − α)θ_i + αθ_j) − max(L(θ_i), L(θ_j)) < tolerance;
  basins are the connected components of that relation (single linkage).

``loss_fn`` takes one of two forms: with a ``loader`` of (inputs, targets) batches it is
``loss_fn(outputs, targets)`` and the loss is the sample-weighted mean over the loader; with
``loader=None`` it is ``loss_fn(model)`` → scalar (an analytic test function, or a closure over
fixed data). Evaluation is in eval mode without gradients; buffers (BN running statistics) are
not moved. The model's parameters are restored afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ParamsLike = Sequence[torch.Tensor] | Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Interpolation:
    """Loss along θ(α) = (1 − α)θ_a + αθ_b."""

    alphas: torch.Tensor
    losses: torch.Tensor

    @property
    def barrier(self) -> float:
        """max_α L(α) − max(L(first α), L(last α)): how far the path rises above its higher
        endpoint (0 for a path that never exceeds its ends)."""
        return float(self.losses.max() - torch.maximum(self.losses[0], self.losses[-1]))


@dataclass(frozen=True)
class LossSlice:
    """Losses on the grid θ* + α·δ + β·η: ``losses[i, j]`` at (alphas[i], betas[j])."""

    alphas: torch.Tensor
    betas: torch.Tensor
    losses: torch.Tensor


@dataclass(frozen=True)
class BasinCount:
    """Minima from random inits grouped into basins: ``labels[i]`` is the basin of init i."""

    n_basins: int
    labels: tuple[int, ...]
    final_losses: tuple[float, ...]
    barriers: torch.Tensor


def loss_at(
    model: nn.Module, loss_fn: Callable[..., torch.Tensor], loader: Iterable | None
) -> float:
    """The model's loss: mean over ``loader`` of ``loss_fn(model(x), y)``, or ``loss_fn(model)``."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if loader is None:
                return float(loss_fn(model))
            total, count = 0.0, 0
            for inputs, targets in loader:
                size = len(targets)
                total += float(loss_fn(model(inputs), targets)) * size
                count += size
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("loader yielded no batches")
    return total / count


def interpolate_1d(
    model: nn.Module,
    params_a: ParamsLike,
    params_b: ParamsLike,
    loss_fn: Callable[..., torch.Tensor],
    loader: Iterable | None = None,
    steps: int = 25,
    *,
    alphas: Sequence[float] | torch.Tensor | None = None,
) -> Interpolation:
    """Loss of ``model`` at (1 − α)·θ_a + α·θ_b for ``steps`` evenly spaced α in [0, 1] (or the
    given ``alphas``)."""
    start, end = _as_list(model, params_a), _as_list(model, params_b)
    if alphas is None:
        _check_steps(steps)
        alphas = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    alphas = torch.as_tensor(alphas, dtype=torch.float64)
    delta = [b - a for a, b in zip(start, end, strict=True)]
    with _restored(model) as params:
        losses = []
        for alpha in alphas.tolist():
            _set(params, start, [(alpha, delta)])
            losses.append(loss_at(model, loss_fn, loader))
    return Interpolation(alphas, torch.tensor(losses, dtype=torch.float64))


def random_direction(
    model: nn.Module,
    *,
    filter_normalize: bool = True,
    ignore_bias_bn: bool = True,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """A Gaussian direction shaped like ``model.parameters()`` with Li et al.'s normalisation:
    each filter of each ≥2-D tensor rescaled to that filter's norm; 1-D tensors zeroed
    (``ignore_bias_bn``) or set to the parameter itself."""
    direction = []
    for param in model.parameters():
        data = param.detach()
        noise = torch.randn(data.shape, generator=generator, dtype=data.dtype).to(data.device)
        if data.dim() <= 1:
            noise = torch.zeros_like(data) if ignore_bias_bn else data.clone()
        elif filter_normalize:
            filters, weights = noise.reshape(len(noise), -1), data.reshape(len(data), -1)
            scale = weights.norm(dim=1) / (filters.norm(dim=1) + 1e-10)
            noise = (filters * scale[:, None]).reshape(data.shape)
        direction.append(noise)
    return direction


def slice_2d(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    loader: Iterable | None = None,
    steps: int = 21,
    span: float = 1.0,
    *,
    directions: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None = None,
    filter_normalize: bool = True,
    ignore_bias_bn: bool = True,
    seed: int = 0,
) -> LossSlice:
    """Loss on the ``steps`` × ``steps`` grid θ* + α·δ + β·η, α, β ∈ [−span, span], around the
    model's current parameters θ*; δ, η from :func:`random_direction` (seeded) unless given."""
    _check_steps(steps)
    if not span > 0:
        raise ValueError(f"span must be positive, got {span!r}")
    if directions is None:
        generator = torch.Generator().manual_seed(seed)
        directions = tuple(
            random_direction(
                model,
                filter_normalize=filter_normalize,
                ignore_bias_bn=ignore_bias_bn,
                generator=generator,
            )
            for _ in range(2)
        )
    first, second = (_as_list(model, d) for d in directions)
    grid = torch.linspace(-span, span, steps, dtype=torch.float64)
    losses = torch.empty(steps, steps, dtype=torch.float64)
    with _restored(model) as params:
        centre = [p.detach().clone() for p in params]
        for i, alpha in enumerate(grid.tolist()):
            for j, beta in enumerate(grid.tolist()):
                _set(params, centre, [(alpha, first), (beta, second)])
                losses[i, j] = loss_at(model, loss_fn, loader)
    return LossSlice(grid, grid.clone(), losses)


def plot_contour(
    loss_slice: LossSlice, path: str | os.PathLike[str], *, levels: int = 30, log: bool = False
) -> Path:
    """Contour PNG of a :class:`LossSlice` (``log``: contours of log10 loss)."""
    from dlskills._plot import colorbar, label_axes, legend, new_figure, save_figure

    values = loss_slice.losses.clamp_min(1e-12).log10() if log else loss_slice.losses
    fig, ax = new_figure(size=(5.0, 4.5), title="Loss landscape slice (filter-normalised)")
    betas, alphas = torch.meshgrid(loss_slice.betas, loss_slice.alphas, indexing="xy")
    contour = ax.contour(alphas.numpy(), betas.numpy(), values.T.numpy(), levels=levels)
    ax.clabel(contour, fontsize=6)
    colorbar(fig, contour, ax, "log10 loss" if log else "loss")
    ax.plot([0], [0], "k+", label="the model's weights (α = β = 0)")
    label_axes(ax, "α (step along direction δ)", "β (step along direction η)")
    legend(ax, loc="upper right")
    return save_figure(fig, path)


def count_basins(
    model_factory: Callable[[], nn.Module],
    train_fn: Callable[[nn.Module], Any],
    n_inits: int,
    loss_fn: Callable[..., torch.Tensor],
    loader: Iterable | None = None,
    *,
    steps: int = 11,
    tolerance: float = 1e-2,
    seed: int = 0,
) -> BasinCount:
    """Train ``model_factory()`` (built after ``torch.manual_seed(seed + i)``) with
    ``train_fn(model)`` for i < ``n_inits`` and group the minima into basins by the 1-D
    interpolation barrier (``steps`` points per segment, same basin if barrier < ``tolerance``)."""
    if isinstance(n_inits, bool) or not isinstance(n_inits, int) or n_inits < 1:
        raise ValueError(f"n_inits must be a positive int, got {n_inits!r}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be ≥ 0, got {tolerance!r}")
    minima: list[list[torch.Tensor]] = []
    for index in range(n_inits):
        torch.manual_seed(seed + index)
        model = model_factory()
        train_fn(model)
        minima.append([p.detach().clone() for p in model.parameters()])
    final_losses = []
    with _restored(model) as params:
        for minimum in minima:
            _set(params, minimum, [])
            final_losses.append(loss_at(model, loss_fn, loader))
    barriers = torch.zeros(n_inits, n_inits, dtype=torch.float64)
    parent = list(range(n_inits))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n_inits):
        for j in range(i + 1, n_inits):
            path = interpolate_1d(model, minima[i], minima[j], loss_fn, loader, steps)
            barriers[i, j] = barriers[j, i] = path.barrier
            if path.barrier < tolerance:
                parent[root(i)] = root(j)
    roots = [root(i) for i in range(n_inits)]
    numbering = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return BasinCount(
        n_basins=len(numbering),
        labels=tuple(numbering[r] for r in roots),
        final_losses=tuple(final_losses),
        barriers=barriers,
    )


class _restored:
    """Context manager yielding the model's parameters and restoring their values on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.params = list(model.parameters())

    def __enter__(self) -> list[nn.Parameter]:
        self.saved = [p.detach().clone() for p in self.params]
        return self.params

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.saved)


def _set(
    params: list[nn.Parameter],
    base: list[torch.Tensor],
    moves: list[tuple[float, list[torch.Tensor]]],
) -> None:
    """params ← base + Σ coefficient·direction."""
    with torch.no_grad():
        torch._foreach_copy_(params, base)
        for coefficient, direction in moves:
            torch._foreach_add_(params, direction, alpha=coefficient)


def _as_list(model: nn.Module, params: ParamsLike) -> list[torch.Tensor]:
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    if isinstance(params, Mapping):
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"parameter mapping lacks {missing}")
        tensors = [params[n] for n in names]
    else:
        tensors = list(params)
    if len(tensors) != len(shapes) or any(
        t.shape != s for t, s in zip(tensors, shapes, strict=True)
    ):
        raise ValueError("parameters must match model.parameters() in number and shapes")
    return [t.detach() for t in tensors]


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int ≥ 2, got {steps!r}")
