"""Two-dimensional test functions and optimizer trajectories (catalog 1609.04747, sutton-1986).

Ruder's overview (1609.04747) illustrates optimizers by their paths on the Beale function, the
Rosenbrock valley and a saddle; Sutton (1986) shows steepest descent crawling along an
ill-conditioned quadratic where momentum and second-order methods do not. This module gives
those surfaces as data so the shared optimizer tests, the plots and the CLI use the same ones.

Each surface is an :class:`Objective2D`: ``f(xy)`` maps a tensor of shape ``(..., 2)`` to shape
``(...)``; it carries its known minimiser (``None`` where the function is unbounded below), a
standard start point and a plot range. Surfaces that are sums of squares also give their
residuals ``r(xy)`` with ``f = Σ r²``, which Gauss-Newton style optimizers (CurveBall, natural
gradient, kSGD) need.

  rosenbrock                  f = (1 − x)² + 100·(y − x²)²                    minimum (1, 1)
  beale                       f = Σₖ (cₖ − x + x·yᵏ)², c = (1.5, 2.25, 2.625)  minimum (3, 0.5)
  ill_conditioned_quadratic   f = ½ θᵀ H θ, H = R(angle)·diag(1, κ)·R(angle)ᵀ  minimum (0, 0)
  noisy_quadratic             f = ½ θᵀ H θ + ξᵀθ, ξ ~ N(0, σ²I) drawn per call   minimum (0, 0) in
                              expectation; ξ comes from a seeded generator (reproducible)
  saddle                      f = x² − y²                                     none (saddle at 0)

``run_trajectory`` drives any registered optimizer from the start point and returns the visited
points; ``closure_for`` builds the closure an optimizer's registry metadata asks for
(``closure``: ``"backward"`` the torch convention, ``"graph"`` loss or (loss, residuals) left
undifferentiated, ``"residuals"`` the residual vector); ``plot_trajectories`` draws the classic
contour-plus-paths figure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class Objective2D:
    """A two-dimensional objective with its known minimiser, start point and plot range."""

    name: str
    value: Callable[[Tensor], Tensor]
    minimum: tuple[float, float] | None
    start: tuple[float, float]
    plot_range: tuple[tuple[float, float], tuple[float, float]]
    residuals: Callable[[Tensor], Tensor] | None = None
    expected_value: Callable[[Tensor], Tensor] | None = None
    log_contours: bool = False

    def __call__(self, xy: Tensor) -> Tensor:
        return self.value(xy)

    def mean_value(self, xy: Tensor) -> Tensor:
        """The noise-free surface (equal to ``value`` for deterministic functions)."""
        return (self.expected_value or self.value)(xy)


def _check_xy(xy: Tensor) -> Tensor:
    if not isinstance(xy, Tensor) or xy.shape[-1:] != (2,):
        raise ValueError(f"xy must be a tensor of shape (..., 2), got {getattr(xy, 'shape', xy)}")
    return xy


def _sum_of_squares(residuals: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    return lambda xy: residuals(xy).square().sum(-1)


def _rosenbrock_residuals(xy: Tensor) -> Tensor:
    x, y = _check_xy(xy).unbind(-1)
    return torch.stack((1 - x, 10 * (y - x * x)), -1)


def rosenbrock() -> Objective2D:
    return Objective2D(
        name="rosenbrock",
        value=_sum_of_squares(_rosenbrock_residuals),
        minimum=(1.0, 1.0),
        start=(-1.5, 2.0),
        plot_range=((-2.0, 2.0), (-1.0, 3.0)),
        residuals=_rosenbrock_residuals,
        log_contours=True,
    )


_BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def _beale_residuals(xy: Tensor) -> Tensor:
    x, y = _check_xy(xy).unbind(-1)
    return torch.stack([c - x + x * y ** (k + 1) for k, c in enumerate(_BEALE_CONSTANTS)], -1)


def beale() -> Objective2D:
    return Objective2D(
        name="beale",
        value=_sum_of_squares(_beale_residuals),
        minimum=(3.0, 0.5),
        start=(1.0, 1.5),
        plot_range=((-4.5, 4.5), (-4.5, 4.5)),
        residuals=_beale_residuals,
        log_contours=True,
    )


def _quadratic_factors(condition_number: float, angle: float) -> tuple[Tensor, Tensor]:
    """(R, eigenvalues) with H = R·diag(eigenvalues)·Rᵀ, float64."""
    if not condition_number >= 1.0:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return rotation, torch.tensor([1.0, float(condition_number)], dtype=torch.float64)


def quadratic_hessian(condition_number: float = 10.0, angle: float = math.pi / 6) -> Tensor:
    """H of :func:`ill_conditioned_quadratic` (float64), for tests and Newton baselines."""
    rotation, eigenvalues = _quadratic_factors(condition_number, angle)
    return rotation @ torch.diag(eigenvalues) @ rotation.T


def _quadratic_residuals(condition_number: float, angle: float) -> Callable[[Tensor], Tensor]:
    rotation, eigenvalues = _quadratic_factors(condition_number, angle)
    # f = ½ θᵀRΛRᵀθ = Σᵢ rᵢ² with r = √(Λ/2)·Rᵀθ
    scaled = (rotation * (eigenvalues / 2).sqrt()).T  # rows: √(λᵢ/2)·(column i of R)

    def residuals(xy: Tensor) -> Tensor:
        xy = _check_xy(xy)
        return xy @ scaled.to(xy.dtype).T

    return residuals


def ill_conditioned_quadratic(
    condition_number: float = 10.0, angle: float = math.pi / 6
) -> Objective2D:
    """½ θᵀHθ with eigenvalues (1, ``condition_number``), eigenvectors rotated by ``angle`` (the
    default 30° keeps the valley off the axes, so per-coordinate methods get no free ride)."""
    residuals = _quadratic_residuals(condition_number, angle)
    return Objective2D(
        name="ill_conditioned_quadratic",
        value=_sum_of_squares(residuals),
        minimum=(0.0, 0.0),
        start=(-1.5, 1.0),
        plot_range=((-2.0, 2.0), (-2.0, 2.0)),
        residuals=residuals,
    )


def noisy_quadratic(
    condition_number: float = 10.0, noise: float = 0.1, seed: int = 0, angle: float = math.pi / 6
) -> Objective2D:
    """The ill-conditioned quadratic plus a fresh linear noise term ξᵀθ at every evaluation, so
    the gradient is H θ + ξ: a stochastic objective with unbiased gradients, reproducible from
    ``seed`` (each Objective2D has its own generator)."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    base = _quadratic_residuals(condition_number, angle)
    rotation, eigenvalues = _quadratic_factors(condition_number, angle)
    hessian = rotation @ torch.diag(eigenvalues) @ rotation.T
    generator = torch.Generator().manual_seed(seed)

    def residuals(xy: Tensor) -> Tensor:
        # ½θᵀHθ + ξᵀθ = ½(θ + H⁻¹ξ)ᵀH(θ + H⁻¹ξ) − const: the shifted quadratic's residuals
        xy = _check_xy(xy)
        xi = noise * torch.randn(xy.shape, generator=generator, dtype=torch.float64)
        shift = torch.linalg.solve(hessian, xi.unsqueeze(-1)).squeeze(-1)
        return base(xy + shift.to(xy.dtype))

    return Objective2D(
        name="noisy_quadratic",
        value=_sum_of_squares(residuals),
        minimum=(0.0, 0.0),
        start=(-1.5, 1.0),
        plot_range=((-2.0, 2.0), (-2.0, 2.0)),
        residuals=residuals,
        expected_value=_sum_of_squares(base),
    )


def _saddle(xy: Tensor) -> Tensor:
    x, y = _check_xy(xy).unbind(-1)
    return x * x - y * y


def saddle() -> Objective2D:
    return Objective2D(
        name="saddle",
        value=_saddle,
        minimum=None,
        start=(-1.0, 1e-3),
        plot_range=((-1.5, 1.5), (-1.5, 1.5)),
    )


FUNCTIONS: dict[str, Callable[..., Objective2D]] = {
    "rosenbrock": rosenbrock,
    "beale": beale,
    "ill_conditioned_quadratic": ill_conditioned_quadratic,
    "noisy_quadratic": noisy_quadratic,
    "saddle": saddle,
}


def get(name: str, **kwargs: Any) -> Objective2D:
    """The test function registered as ``name``, built with ``kwargs`` (e.g. condition_number)."""
    factory = FUNCTIONS.get(str(name).strip().lower().replace("-", "_"))
    if factory is None:
        raise ValueError(f"unknown test function {name!r} (known: {', '.join(FUNCTIONS)})")
    return factory(**kwargs)


def _resolve(function: str | Objective2D) -> Objective2D:
    return function if isinstance(function, Objective2D) else get(function)


def closure_for(function: str | Objective2D, point: Tensor, kind: str = "backward") -> Callable:
    """The closure an optimizer with registry metadata ``closure=kind`` expects, over ``point``.

    ``"backward"``: zero the gradient, ``f(point).backward()``, return the loss (torch's contract).
    ``"graph"``: return ``(loss, residuals)`` for sums of squares, else the loss; no backward.
    ``"residuals"``: return the residual vector ``r(point)`` (least-squares optimizers).
    """
    function = _resolve(function)
    if kind == "backward":

        def closure() -> Tensor:
            point.grad = None
            loss = function(point)
            loss.backward()
            return loss.detach()

    elif kind == "graph":

        def closure() -> Any:
            if function.residuals is None:
                return function(point)
            residuals = function.residuals(point)
            return residuals.square().sum(), residuals

    elif kind == "residuals":
        if function.residuals is None:
            raise ValueError(f"{function.name} is not a sum of squares; it has no residuals")

        def closure() -> Tensor:
            return function.residuals(point)

    else:
        raise ValueError(f"closure kind must be 'backward', 'graph' or 'residuals', got {kind!r}")
    return closure


def run_trajectory(
    optimizer_name: str,
    function: str | Objective2D,
    steps: int,
    *,
    start: tuple[float, float] | None = None,
    dtype: torch.dtype = torch.float64,
    **optimizer_kwargs: Any,
) -> Tensor:
    """Points visited by optimizer ``optimizer_name`` from the function's start: ``(steps+1, 2)``.

    The optimizer is built with ``dlskills.optim.create(optimizer_name, [point], **kwargs)``; its
    registry metadata says whether ``step`` takes a closure and of which kind.
    """
    from dlskills.optim import OPTIMIZERS

    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps}")
    function = _resolve(function)
    entry = OPTIMIZERS.entry(optimizer_name)
    point = torch.tensor(start or function.start, dtype=dtype, requires_grad=True)
    optimizer = entry.obj([point], **optimizer_kwargs)
    kind = entry.meta.get("closure", "backward")
    closure = closure_for(function, point, kind)
    path = [point.detach().clone()]
    for _ in range(int(steps)):
        if entry.meta.get("needs_closure", False):
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        path.append(point.detach().clone())
    return torch.stack(path)


def plot_trajectories(
    function: str | Objective2D,
    optimizers: dict[str, dict[str, Any]],
    steps: int,
    path: str | os.PathLike[str],
    *,
    resolution: int = 200,
) -> Path:
    """Contours of ``function`` with each optimizer's path (``{name: kwargs}``); writes a PNG."""
    from dlskills._plot import colorbar, label_axes, legend, new_figure, save_figure

    function = _resolve(function)
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer")
    (x_low, x_high), (y_low, y_high) = function.plot_range
    xs = torch.linspace(x_low, x_high, resolution, dtype=torch.float64)
    ys = torch.linspace(y_low, y_high, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
    with torch.no_grad():
        surface = function.mean_value(grid)
    fig, ax = new_figure(size=(6.5, 5.5))
    if function.log_contours:
        lowest = max(float(surface.min()), 1e-2)
        levels = torch.logspace(math.log10(lowest), math.log10(float(surface.max())), 30).tolist()
    else:
        levels = 30
    contours = ax.contour(xs, ys, surface, levels=levels, cmap="viridis", linewidths=0.6, alpha=0.6)
    colorbar(
        fig, contours, ax, "f(x, y)" + (" (log-spaced contours)" if function.log_contours else "")
    )
    for name, kwargs in optimizers.items():
        trajectory = run_trajectory(name, function, steps, **kwargs)
        finite = torch.isfinite(trajectory).all(-1)
        trajectory = trajectory[: int(finite.long().cumprod(0).sum())]
        label = name + "".join(f" {k}={v:g}" for k, v in kwargs.items() if isinstance(v, float))
        ax.plot(trajectory[:, 0], trajectory[:, 1], lw=1.5, label=label)
    ax.plot(*function.start, "ko", ms=5, label="start")
    if function.minimum is not None:
        ax.plot(*function.minimum, "r*", ms=12, label="minimum")
    ax.set(xlim=(x_low, x_high), ylim=(y_low, y_high))
    label_axes(ax, "x", "y", title=f"{function.name}: {steps} steps per optimizer")
    legend(ax, loc="best")
    return save_figure(fig, path)
