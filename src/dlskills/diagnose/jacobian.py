"""Input-output Jacobian spectrum and log-norm statistics (catalog 1812.05994).

B. Hanin, M. Nica, "Products of Many Large Random Matrices and Gradients in Deep Neural
Networks" (2018). For a ReLU net with He init, J = ∂f/∂x is a product of random matrices and, for a
fixed unit direction u,

    ln ‖J u‖²  ≈  Normal(μ, σ²),   σ² ≈ 5 β,  μ ≈ -5β/2,   β = Σ_j 1/n_j,

(each hidden layer multiplies ‖J u‖² by (2/n) χ²_k with k ~ Binomial(n, 1/2) active units, whose
log has variance ≈ 4/n + 1/n = 5/n, and E‖J u‖² = 1 forces μ = -σ²/2). So the spread of the
gradient's size grows linearly in Σ 1/width, not in depth alone: deep and narrow is unstable,
deep and wide is not.

* ``jacobian_spectrum(model, inputs)``: singular values of the full Jacobian of each example
  (``torch.func.vmap`` over ``jacrev``) — at init or at any point of training.
* ``log_norm_statistics(model, inputs, n_inits)``: ln ‖J u‖²/‖u‖² for a random direction u per
  example over random re-inits (one Jacobian-vector product per init), with mean and variance.
* ``JacobianCallback(probe, every)``: the spectrum of a fixed probe batch during training.

Deviations: the model runs in eval mode (normalisation layers use their running statistics, so
examples stay independent); conv inputs are flattened, so the Jacobian is (outputs × all input
pixels).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from dlskills.diagnose._hooks import check_positive_int, model_device, reinitialize
from dlskills.diagnose.verdict import Check, grade
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

# Var[ln ‖J u‖²] ≈ 5β: a variance of 2 (β ≈ 0.4) means the gradient's size varies by a factor
# e^{±1.4} between directions/inits; at 8 (β ≈ 1.6) by e^{±2.8} ≈ 17x, where the paper's deep
# narrow nets stop training reliably.
SPREAD_WARN = 2.0
SPREAD_FAIL = 8.0


def _eval_copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def _single_example(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())

    def forward(x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (params, buffers), (x.unsqueeze(0),)).flatten()

    return forward


@dataclass(frozen=True)
class JacobianSpectrum:
    """Singular values of ∂f(x_i)/∂x_i, one row per example (descending)."""

    singular_values: torch.Tensor

    @property
    def log_singular_values(self) -> torch.Tensor:
        return torch.log10(self.singular_values.clamp_min(1e-30))

    def to_dict(self) -> dict[str, Any]:
        logs = self.log_singular_values
        return {
            "max_singular_value": float(self.singular_values[:, 0].mean()),
            "min_singular_value": float(self.singular_values[:, -1].mean()),
            "mean_log10_singular_value": float(logs.mean()),
            "std_log10_singular_value": float(logs.std()) if logs.numel() > 1 else 0.0,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        from dlskills._plot import label_axes, new_figure, save_figure

        fig, ax = new_figure(title="Input-output Jacobian spectrum")
        ax.hist(self.log_singular_values.flatten().tolist(), bins=40)
        label_axes(ax, "log10 singular value", "singular values")
        return save_figure(fig, path)


def jacobian_spectrum(
    model: nn.Module, inputs: torch.Tensor, *, max_examples: int = 16
) -> JacobianSpectrum:
    """Singular values of the input-output Jacobian of each of the first ``max_examples`` inputs."""
    check_positive_int(max_examples, "max_examples")
    probe = _eval_copy(model)
    x = inputs[:max_examples].detach()
    jacobians = vmap(jacrev(_single_example(probe)))(x)
    return JacobianSpectrum(torch.linalg.svdvals(jacobians.flatten(2).double()).float().cpu())


def _jacobian_vector_product(
    model: nn.Module, inputs: torch.Tensor, directions: torch.Tensor
) -> torch.Tensor:
    """J u for every example by the double-backward trick: g(v) = Jᵀv is linear in v, so
    ∂⟨g(v), u⟩/∂v = J u. Plain reverse-mode autograd: no torch.func / forward-AD warm-up, which
    costs seconds on the first call for normalisation layers."""
    with torch.enable_grad():
        x = inputs.detach().requires_grad_(True)
        output = model(x)
        cotangent = torch.zeros_like(output, requires_grad=True)
        (transposed,) = torch.autograd.grad(output, x, cotangent, create_graph=True)
        (tangent,) = torch.autograd.grad(transposed, cotangent, directions)
    return tangent.detach()


@dataclass(frozen=True)
class LogNormStatistics:
    """ln(‖J u‖² / ‖u‖²) per init and example: ``log_sq_norms[i, e]``."""

    log_sq_norms: torch.Tensor

    @property
    def mean(self) -> float:
        return float(self.log_sq_norms.mean())

    @property
    def variance(self) -> float:
        return float(self.log_sq_norms.var())

    def checks(self) -> list[Check]:
        variance = self.variance if math.isfinite(self.mean) else math.inf
        return [
            grade(
                "jacobian_spread",
                variance,
                warn=SPREAD_WARN,
                fail=SPREAD_FAIL,
                what=f"Var[ln |J u|^2] over random directions u (mean {self.mean:.3g})",
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "variance": self.variance}

    def plot(self, path: str | os.PathLike[str]) -> Path:
        from dlskills._plot import label_axes, new_figure, save_figure

        fig, ax = new_figure(
            title=f"Jacobian log-norms: mean {self.mean:.2f}, variance {self.variance:.2f}"
        )
        ax.hist(self.log_sq_norms.flatten().tolist(), bins=40)
        label_axes(ax, "ln |J u|^2 / |u|^2 (random directions u)", "directions")
        return save_figure(fig, path)


def log_norm_statistics(
    model: nn.Module,
    inputs: torch.Tensor,
    n_inits: int = 10,
    *,
    init_fn: Callable[[nn.Module], Any] | None = None,
    seed: int = 0,
    reinit: bool = True,
) -> LogNormStatistics:
    """ln ‖J u‖²/‖u‖² for one Gaussian direction u per input, over ``n_inits`` random inits of a
    copy (``reinit=False``: the current weights, ``n_inits`` draws of directions)."""
    check_positive_int(n_inits, "n_inits")
    probe = _eval_copy(model)
    x = inputs.detach()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    rows = []
    for index in range(n_inits):
        if reinit:
            reinitialize(probe, seed + index, init_fn)
            for parameter in probe.parameters():
                parameter.requires_grad_(False)
        directions = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        tangent = _jacobian_vector_product(probe, x, directions)
        ratio = tangent.flatten(1).double().pow(2).sum(1) / directions.flatten(1).double().pow(
            2
        ).sum(1)
        rows.append(torch.log(ratio))
    log_sq_norms = torch.stack(rows).float().cpu()
    if bool(torch.isneginf(log_sq_norms).all()):
        raise ValueError("model: its output does not depend on the input at these weights")
    return LogNormStatistics(log_sq_norms)


class JacobianCallback(Callback):
    """Every ``every`` steps: the Jacobian spectrum of the fixed ``probe`` inputs.

    ``history`` holds {"step", "max_singular_value", "min_singular_value",
    "mean_log10_singular_value", "std_log10_singular_value"}; the plot at fit end goes to
    ``trainer.run_dir/jacobian_spectrum.png``.
    """

    def __init__(self, probe: torch.Tensor, every: int = 200, *, plot: bool = True) -> None:
        if not isinstance(probe, torch.Tensor) or probe.dim() < 2:
            raise TypeError("probe must be a batch of inputs (a tensor with a batch dimension)")
        self.probe = probe
        self.every = check_positive_int(every, "every")
        self.plot_at_end = plot
        self.history: list[dict[str, Any]] = []
        self.figure: Path | None = None

    def on_batch_end(self, trainer: Trainer) -> None:
        if trainer.step % self.every:
            return
        probe = self.probe.to(model_device(trainer.model))
        spectrum = jacobian_spectrum(trainer.model, probe)  # on an eval-mode copy
        self.history.append({"step": int(trainer.step), **spectrum.to_dict()})

    def on_fit_end(self, trainer: Trainer) -> None:
        run_dir = getattr(trainer, "run_dir", None)
        if self.plot_at_end and run_dir is not None and self.history:
            self.figure = self.plot(Path(run_dir) / "jacobian_spectrum.png")

    def plot(self, path: str | os.PathLike[str]) -> Path:
        from dlskills._plot import integer_ticks, label_axes, legend, new_figure, save_figure

        if not self.history:
            raise ValueError("JacobianCallback: nothing sampled yet")
        steps = [row["step"] for row in self.history]
        fig, ax = new_figure(title="Input-output Jacobian spectrum during training")
        for key in ("max_singular_value", "min_singular_value"):
            ax.plot(steps, [row[key] for row in self.history], label=key.replace("_", " "))
        ax.set_yscale("log")
        label_axes(ax, "optimizer step", "singular value (log scale)")
        integer_ticks(ax, "x")
        legend(ax)
        return save_figure(fig, path)

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.every = int(state.get("every", self.every))
        self.history = list(state.get("history", []))
