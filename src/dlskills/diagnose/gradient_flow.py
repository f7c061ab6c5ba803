"""Gradient flow: per-layer gradient norms, update/weight ratios and vanishing/exploding verdicts
(catalog 1211.5063), and the variance of per-layer gradients across inits (catalog 1801.03744).

* R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent neural networks"
  (2012): back-propagated gradients are products of layer Jacobians, so they shrink (vanish) or
  grow (explode) exponentially with the number of layers they cross.
* B. Hanin, "Which neural net architectures give rise to exploding and vanishing gradients?"
  (NeurIPS 2018): for ReLU nets at the critical init the *mean* squared gradient is depth-
  independent, but its *variance* across inits grows exponentially in β = Σ_j 1/n_j.

Per layer j with weight W_j (every trainable parameter of dim ≥ 2) and gradient g_j = ∂L/∂W_j:

    relative gradient  r_j = ‖g_j‖ / ‖W_j‖       (= update/weight ratio of one SGD step per unit lr)
    vanishing   = min_j r_j / max_j r_j          (how many decades the signal loses across layers)
    exploding   = max_j r_j                      (large: one step would rewrite the weights)
    update/weight (callback) u_j = ‖ΔW_j‖ / ‖W_j‖ of the optimizer's actual step

``gradient_variance`` re-initialises copies ``n_inits`` times and reports, per layer,
Var_init[‖g_j‖²] / E_init[‖g_j‖²]² for a fixed batch (Hanin's scale-free statistic).

``GradientFlowCallback(every=50)`` samples those norms during training without hooks: the norms
come from ``param.grad`` after backward and from a snapshot of the sampled weights taken just
before the optimizer step; all norms of a step are one ``torch._foreach_norm`` call, kept on the
device and moved to the CPU once at fit end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlskills.diagnose._hooks import (
    check_positive_int,
    detached_copy,
    model_device,
    reinitialize,
    set_diagnostic_mode,
    take_batches,
    weight_parameters,
)
from dlskills.diagnose.verdict import VERDICTS, Check, grade
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

# Vanishing: healthy nets keep min/max relative gradient within 1-2 decades (measured: a digits
# CNN 8e-2, a 20-layer He-init ReLU MLP 3e-1); a 20-layer sigmoid MLP loses ~13-18 decades.
# Below 1e-4 the first layers effectively do not train (their steps are 10^4 times smaller).
VANISHING_WARN = 1e-2
VANISHING_FAIL = 1e-4
# Exploding: at init healthy nets have r_j ~ 1e-2..1 (measured: digits CNN 0.2-0.4, the output
# layer of a 20-layer He-init ReLU MLP up to 1.2). With learning rates ~1e-2..1e-1 an r above 30
# means a single step moves the weights by 30-300% of themselves; at twice the He scale a
# 20-layer ReLU MLP reaches 1e5 (Karpathy's rule of thumb puts healthy update/weight ratios
# near 1e-3).
EXPLODING_WARN = 3.0
EXPLODING_FAIL = 30.0
# The absolute criterion ("can any layer learn?"). The ratio above only sees layers that
# disagree; a net whose every layer has a tiny gradient (a deep tanh MLP far below the Xavier
# scale: |g|/|W| ~ 1e-16 in every layer) passes it. One SGD step at learning rate lr changes
# layer j by |ΔW_j|/|W_j| = lr r_j, so the largest possible relative step is lr max_j r_j:
# * FAIL below the resolution of the weights' float type, eps = torch.finfo(dtype).eps
#   (2^-23 ≈ 1.2e-7 for float32): w + Δw rounds back to w, no weight of any layer changes.
#   Adam does not rescue it: its step lr g/(√v + 1e-8) is itself tiny once the per-element
#   gradient is far below its ε = 1e-8.
# * WARN below 1e-6: healthy nets step near 1e-3 of their weights (measured at lr = 1e-3 on
#   digits: the model zoo's CNN's largest lr·r_j is 1.3e-3, its MLP's 1.4e-4), so the best layer
#   learns >= 100x slower than the slowest of those and needs 10^4 steps to move 1 %.
UPDATE_FLOOR_WARN = 1e-6
# The learning rate of the absolute criterion when none is given (the doctor's short-fit default).
DEFAULT_LR = 1e-3
_FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Euclidean norms in float64: in float32 the squares of entries below ~1e-19 underflow and a
    small but non-zero gradient would read as exactly 0."""
    return torch.stack(torch._foreach_norm([t.detach().double() for t in tensors]))


def _fraction(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "n/a"


@dataclass(frozen=True)
class GradientFlowResult:
    """Per-layer gradient and weight norms at one point of training.

    ``received[j]`` is False for a parameter that no gradient reached (unused by the forward);
    ``lr`` and ``eps`` (the float resolution of the weights) set the absolute no-learning floor;
    ``subnormal_gradients`` / ``subnormal_activations`` are the fractions of entries that are
    subnormal floats, ``underflowing_squares`` of gradient entries whose square is (the second
    moments of Adam/RMSprop and every norm square them) (None when not measured)."""

    layers: list[str]
    grad_norm: torch.Tensor
    weight_norm: torch.Tensor
    loss: float
    received: torch.Tensor | None = None
    lr: float = DEFAULT_LR
    eps: float = _FLOAT32_EPS
    subnormal_gradients: float | None = None
    underflowing_squares: float | None = None
    subnormal_activations: float | None = None

    @property
    def relative(self) -> torch.Tensor:
        """r_j = |g_j| / |W_j| in float64 (a zero weight is clamped to 1e-300)."""
        return self.grad_norm.double() / self.weight_norm.double().clamp_min(1e-300)

    @property
    def _received(self) -> torch.Tensor:
        if self.received is None:
            return torch.ones(len(self.layers), dtype=torch.bool)
        return self.received.bool()

    @property
    def blocked(self) -> torch.Tensor:
        """Layers that take part in the loss with non-zero weights yet get exactly 0 gradient."""
        return self._received & (self.weight_norm != 0) & (self.grad_norm == 0)

    @property
    def structural(self) -> torch.Tensor:
        """Layers left out of the verdicts because their zeros are by construction: no gradient
        reaches them (unused parameters), their weight is exactly 0 (a zero-initialised
        classifier or residual branch, Fixup), or — only when such a zero layer exists — their
        gradient is exactly 0 because it flows through that layer. Exact-zero gradients in a
        network with no zero layer are a finding (dead units, underflow), not structure."""
        zero_weight = self.weight_norm == 0
        out = ~self._received | zero_weight
        if bool(zero_weight.any()):
            out = out | self.blocked
        return out

    @property
    def graded(self) -> torch.Tensor:
        """Layers the verdicts compare (see ``structural``); non-finite norms stay in."""
        return ~self.structural

    def _graded_relative(self) -> torch.Tensor:
        relative = self.relative[self.graded]
        return relative if relative.numel() else self.relative

    @property
    def vanishing(self) -> float:
        """min_j r_j / max_j r_j over the graded layers (0 when one gets exactly 0)."""
        relative = self._graded_relative()
        return float(relative.min() / relative.max().clamp_min(1e-300))

    @property
    def exploding(self) -> float:
        return float(self._graded_relative().max())

    @property
    def max_update(self) -> float:
        """lr max_j r_j: the largest relative change one SGD step at ``lr`` makes to a layer."""
        return self.lr * self.exploding

    def _zero_layer_learns(self) -> bool:
        """A zero-initialised layer with a non-zero gradient moves off 0: the net can learn."""
        return bool(((self.weight_norm == 0) & (self.grad_norm != 0) & self._received).any())

    def checks(self) -> list[Check]:
        relative = self.relative
        graded = self.graded
        finite = bool(torch.isfinite(self.grad_norm).all()) and math.isfinite(self.loss)
        if finite and not bool(graded.any()):
            if bool((self.weight_norm == 0).any()):
                message = (
                    "no layer has both non-zero weights and a non-zero gradient (a "
                    "zero-initialised output layer blocks the flow at these weights); diagnose "
                    "again after a few steps"
                )
                return [
                    Check("vanishing_gradients", "WARN", math.nan, VANISHING_WARN, message),
                    Check("exploding_gradients", "WARN", math.nan, EXPLODING_WARN, message),
                ]
            message = "no weight receives a gradient: the loss does not depend on the parameters"
            return [
                Check("vanishing_gradients", "FAIL", 0.0, VANISHING_FAIL, message),
                Check("exploding_gradients", "OK", 0.0, EXPLODING_WARN, message),
            ]
        names = [name for name, keep in zip(self.layers, graded.tolist()) if keep]
        kept = relative[graded]
        first, last = names[int(kept.argmin())], names[int(kept.argmax())]
        excluded = len(self.layers) - len(names)
        note = f"; {excluded} layers with structural zeros left out" if excluded else ""
        zeros = int((self.blocked & graded).sum())
        if zeros:
            note += f"; {zeros} of {len(names)} layers get exactly 0 gradient"
        subnormal = ""
        if self.subnormal_gradients or self.subnormal_activations:
            subnormal = (
                f"; subnormal floats: {_fraction(self.subnormal_gradients)} of gradient and "
                f"{_fraction(self.subnormal_activations)} of activation entries"
            )
        vanishing = grade(
            "vanishing_gradients",
            self.vanishing if finite else math.nan,
            warn=VANISHING_WARN,
            fail=VANISHING_FAIL,
            lower_is_worse=True,
            what=f"smallest/largest relative gradient |g|/|W| ({first} vs {last}{note}{subnormal})",
        )
        if finite and not self._zero_layer_learns():
            floor = grade(
                "vanishing_gradients",
                self.max_update,
                warn=UPDATE_FLOOR_WARN,
                fail=self.eps,
                lower_is_worse=True,
                what=f"no layer can learn: one SGD step at lr={self.lr:.3g} changes a layer by at "
                f"most lr·|g|/|W| ({last}), against the weights' float resolution "
                f"eps={self.eps:.3g}; the layers agree with each other (smallest/largest "
                f"relative gradient {self.vanishing:.3g}{note}{subnormal})",
            )
            if VERDICTS.index(floor.verdict) > VERDICTS.index(vanishing.verdict):
                vanishing = floor
        exploding = grade(
            "exploding_gradients",
            self.exploding if finite else math.inf,
            warn=EXPLODING_WARN,
            fail=EXPLODING_FAIL,
            what=f"largest relative gradient |g|/|W| ({last}; loss {self.loss:.3g})",
        )
        return [vanishing, exploding]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "grad_norm": self.grad_norm.tolist(),
            "weight_norm": self.weight_norm.tolist(),
            "relative": self.relative.tolist(),
            "received": self._received.tolist(),
            "structural": self.structural.tolist(),
            "loss": self.loss,
            "lr": self.lr,
            "eps": self.eps,
            "max_update": self.max_update,
            "subnormal_gradients": self.subnormal_gradients,
            "underflowing_squares": self.underflowing_squares,
            "subnormal_activations": self.subnormal_activations,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Bar chart of |g_j| and |g_j|/|W_j| per layer (log scale), with the exploding limit
        and the no-learning floor eps/lr as labelled lines."""
        from dlskills._plot import legend, name_ticks, new_figure, save_figure

        fig, ax = new_figure(size=(max(6.0, 0.35 * len(self.layers)), 4.0))
        index = torch.arange(len(self.layers)).numpy()
        tiny = 1e-45
        grad = self.grad_norm.double().clamp_min(tiny)
        relative = self.relative.clamp(tiny, 1e30)
        ax.bar(index - 0.2, grad.numpy(), width=0.4, label="|grad| (loss units per weight unit)")
        ax.bar(index + 0.2, relative.numpy(), width=0.4, label="|grad| / |W| (per unit lr)")
        ax.axhline(
            EXPLODING_FAIL,
            color="red",
            linestyle="--",
            linewidth=0.8,
            label=f"exploding FAIL: |g|/|W| > {EXPLODING_FAIL:g}",
        )
        ax.axhline(
            self.eps / self.lr,
            color="purple",
            linestyle=":",
            linewidth=0.8,
            label=f"no-learning floor eps/lr = {self.eps / self.lr:.2g} (lr={self.lr:g})",
        )
        ax.set(
            yscale="log",
            xlabel="weight (input → output)",
            ylabel="norm (log scale)",
            title="Gradient flow per layer",
        )
        name_ticks(ax, self.layers, rotation=70)
        legend(ax, fontsize=7)
        return save_figure(fig, path)


def _loss_and_grads(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """Accumulate the gradient of the mean loss over ``batches``; returns that loss."""
    model.zero_grad(set_to_none=True)
    total = 0.0
    for x, y in batches:
        loss = loss_fn(model(x), y) / len(batches)
        loss.backward()
        total += float(loss.detach())
    return total


def _subnormal_counts(tensor: torch.Tensor, *, squared: bool = False) -> tuple[int, int]:
    """(subnormal entries, all entries) of a floating tensor; ``squared``: non-zero entries
    whose square is below the smallest normal float (subnormal or flushed to 0)."""
    if not tensor.is_floating_point():
        return 0, 0
    tiny = torch.finfo(tensor.dtype).tiny
    tiny = math.sqrt(tiny) if squared else tiny
    count = int(((tensor != 0) & (tensor.abs() < tiny)).sum())
    return count, tensor.numel()


def gradient_flow(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    num_batches: int = 1,
    lr: float = DEFAULT_LR,
) -> GradientFlowResult:
    """Per-layer gradient norms of ``loss_fn`` on the first batches, at the current weights
    (computed on a copy: the user's model and its .grad are untouched). ``lr`` sets the
    absolute no-learning floor (see ``UPDATE_FLOOR_WARN``). The same pass counts the subnormal
    entries of every leaf module's outputs and of the gradients (measure with denormals not
    flushed to see them)."""
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    probe = set_diagnostic_mode(detached_copy(model))
    batches = take_batches(loader, num_batches, model_device(probe))
    counts = [0, 0]

    def census(module: nn.Module, inputs: Any, output: Any) -> None:
        del module, inputs
        for tensor in output if isinstance(output, tuple | list) else (output,):
            if isinstance(tensor, torch.Tensor):
                subnormal, total = _subnormal_counts(tensor.detach())
                counts[0] += subnormal
                counts[1] += total

    leaves = [m for m in probe.modules() if not list(m.children())]
    handles = [m.register_forward_hook(census) for m in leaves]
    try:
        loss = _loss_and_grads(probe, batches, loss_fn)
    finally:
        for handle in handles:
            handle.remove()
    named = weight_parameters(probe)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in named]
    grads_seen = [p.grad for p in probe.parameters() if p.grad is not None]
    grad_counts = [_subnormal_counts(g) for g in grads_seen]
    squares = [_subnormal_counts(g, squared=True) for g in grads_seen]
    grad_total = sum(total for _, total in grad_counts)
    return GradientFlowResult(
        layers=[n for n, _ in named],
        grad_norm=_norms(grads).cpu(),
        weight_norm=_norms([p.detach() for _, p in named]).cpu(),
        loss=loss,
        received=torch.tensor([p.grad is not None for _, p in named]),
        lr=float(lr),
        eps=float(torch.finfo(named[0][1].dtype).eps),
        subnormal_gradients=sum(c for c, _ in grad_counts) / grad_total if grad_total else None,
        underflowing_squares=(
            sum(c for c, _ in squares) / grad_total if grad_total and squares else None
        ),
        subnormal_activations=counts[0] / counts[1] if counts[1] else None,
    )


@dataclass(frozen=True)
class GradientVarianceResult:
    """‖∂L/∂W_j‖² per init and layer: ``squared_norms[i, j]``."""

    layers: list[str]
    squared_norms: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        return self.squared_norms.mean(dim=0)

    @property
    def normalized_variance(self) -> torch.Tensor:
        """Var_init[‖g_j‖²] / E_init[‖g_j‖²]² per layer."""
        return self.squared_norms.var(dim=0) / self.mean.pow(2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "mean_squared_norm": self.mean.tolist(),
            "normalized_variance": self.normalized_variance.tolist(),
        }


def gradient_variance(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    n_inits: int = 20,
    *,
    init_fn: Callable[[nn.Module], Any] | None = None,
    num_batches: int = 1,
    seed: int = 0,
) -> GradientVarianceResult:
    """Per-layer squared gradient norms on a fixed batch over ``n_inits`` random inits of a copy
    (Hanin 1801.03744: their variance grows with Σ 1/width)."""
    check_positive_int(n_inits, "n_inits", minimum=2)
    probe = set_diagnostic_mode(detached_copy(model))
    batches = take_batches(loader, num_batches, model_device(probe))
    named = weight_parameters(probe)
    rows = []
    for index in range(n_inits):
        reinitialize(probe, seed + index, init_fn)
        _loss_and_grads(probe, batches, loss_fn)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in named]
        rows.append(_norms(grads).double().pow(2))
    return GradientVarianceResult(
        layers=[n for n, _ in named], squared_norms=torch.stack(rows).cpu()
    )


class GradientFlowCallback(Callback):
    """Every ``every`` steps: per-layer gradient norm, weight norm and update/weight ratio.

    ``history`` (after fit, or ``records()`` at any time) is a list of
    {"step", "grad_norm", "weight_norm", "update_ratio"} with per-layer lists; ``layers`` names
    them. ``verdicts()`` grades every sample. At fit end a plot goes to
    ``trainer.run_dir/gradient_flow.png`` when the trainer has a run directory.
    """

    def __init__(self, every: int = 50, *, plot: bool = True) -> None:
        self.every = check_positive_int(every, "every")
        self.plot_at_end = plot
        self.layers: list[str] = []
        self._params: list[torch.Tensor] = []
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._before: list[torch.Tensor] | None = None
        self._sample: tuple[int, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.figure: Path | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        named = weight_parameters(trainer.model)
        self.layers = [n for n, _ in named]
        self._params = [p for _, p in named]

    def on_after_backward(self, trainer: Trainer) -> None:
        if trainer.step % self.every:
            self._sample = None  # drop a sample whose batch was cancelled before its end
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        # one fused call for all layers' norms, kept on the device (no per-layer .item())
        self._sample = (int(trainer.step), torch.stack(torch._foreach_norm(grads)).detach())

    def on_before_step(self, trainer: Trainer) -> None:
        if self._sample is not None:
            self._before = [p.detach().clone() for p in self._params]

    def on_batch_end(self, trainer: Trainer) -> None:
        if self._sample is None:
            return
        step, grad_norm = self._sample
        if self._before is None:  # the batch was cancelled after backward: no step to measure
            self._sample = None
            return
        weights = [p.detach() for p in self._params]
        weight_norm = torch.stack(torch._foreach_norm(weights))
        update = torch.stack(torch._foreach_norm(torch._foreach_sub(weights, self._before)))
        self._pending.append((step, grad_norm, weight_norm, update))
        self._sample, self._before = None, None

    def records(self) -> list[dict[str, Any]]:
        """Move the samples taken since the last call to the CPU and append them to history."""
        for step, grad_norm, weight_norm, update in self._pending:
            weight = weight_norm.float().cpu()
            self.history.append(
                {
                    "step": step,
                    "grad_norm": grad_norm.float().cpu().tolist(),
                    "weight_norm": weight.tolist(),
                    "update_ratio": (update.float().cpu() / weight.clamp_min(1e-30)).tolist(),
                }
            )
        self._pending.clear()
        return self.history

    def verdicts(self) -> list[tuple[int, list[Check]]]:
        """The vanishing/exploding checks of every sample, in step order."""
        return [
            (
                row["step"],
                GradientFlowResult(
                    layers=self.layers,
                    grad_norm=torch.tensor(row["grad_norm"]),
                    weight_norm=torch.tensor(row["weight_norm"]),
                    loss=0.0,
                ).checks(),
            )
            for row in self.records()
        ]

    def on_fit_end(self, trainer: Trainer) -> None:
        self.records()
        self._sample, self._before = None, None
        run_dir = getattr(trainer, "run_dir", None)
        if self.plot_at_end and run_dir is not None and self.history:
            self.figure = self.plot(Path(run_dir) / "gradient_flow.png")

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Relative gradient and update/weight ratio per layer over the sampled steps."""
        from dlskills._plot import integer_ticks, label_axes, legend, new_figure, save_figure

        rows = self.records()
        if not rows:
            raise ValueError("GradientFlowCallback: nothing sampled yet")
        steps = [row["step"] for row in rows]
        grad = torch.tensor([row["grad_norm"] for row in rows])
        weight = torch.tensor([row["weight_norm"] for row in rows]).clamp_min(1e-30)
        update = torch.tensor([row["update_ratio"] for row in rows])
        fig, axes = new_figure(1, 2, size=(5.5, 4.0), title="Gradient flow during training")
        for j, name in enumerate(self.layers):
            relative = (grad[:, j] / weight[:, j]).clamp_min(1e-30)
            axes[0, 0].plot(steps, relative.numpy())  # same colour per layer in both panels
            axes[0, 1].plot(steps, update[:, j].clamp_min(1e-30).numpy(), label=name)
        for ax, ylabel, title in (
            (axes[0, 0], "|grad| / |W| (log scale)", "relative gradient"),
            (axes[0, 1], "|ΔW| / |W| (log scale)", "update / weight"),
        ):
            ax.set_yscale("log")
            label_axes(ax, "optimizer step", ylabel, title=title)
            integer_ticks(ax, "x")
        # one legend (right panel) names the layers of both
        legend(axes[0, 1], fontsize=6, title="layer", ncols=1 + len(self.layers) // 12)
        return save_figure(fig, path)

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "history": self.records()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.every = int(state.get("every", self.every))
        self.history = list(state.get("history", []))
