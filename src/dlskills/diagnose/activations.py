"""Activation statistics, dead and saturated units, entropy and mutual information with the labels
(catalog 1905.08618).

"Neurons Activation Visualization and Information Theoretic Analysis" (2019) looks inside a net
through the distribution of each layer's activations: heat maps of the activations by class,
their entropy, and how much information about the label each layer carries. Per probe layer
(activation modules by default) and unit k (a feature, or a conv channel averaged over space):

    mean, std, M = E[a²]           over examples (and positions); M is the squared length
    constant_k   = [max_n a_nk - min_n a_nk ≤ ε max_n |a_nk|]   constant on the sample, relative
                                                       to the unit's own size
    dead_k       = constant_k and max_n |f'(z_nk)| ≤ s   constant *and* passing no gradient: a
                                                       ReLU that never fires, a sigmoid or tanh
                                                       stuck at a bound
    saturated    = fraction of outputs within 2% of a bounded activation's range ends
    H(A_k)       = -Σ_b p_b log2 p_b                  over B equal-width bins of the unit's range
    I(A_k; Y)    = H(A_k) - Σ_c p(c) H(A_k | Y = c)   the plug-in (binning) estimate, in bits

A tanh or sigmoid unit whose output is small (a signal that shrank across depth) but varies over
the examples is not dead, nor is one that is constant because its input no longer varies while
its slope f'(z) is still ~1: those are the symptoms of a vanishing signal, which the gradient
checks grade. The slope f' is taken by autograd on the activation module's input, for element-wise
activation modules; other probes (Linear/Conv outputs, user layers) count as dead when constant.

The layer's entropy and mutual information are the means over its units. Binning estimators are
biased upwards by about (B - 1)(C - 1)/(2 N ln 2) bits for N examples and C classes; the value is
reported as measured and is meant for comparing layers and training stages with the same N.

``ActivationStatsCallback(every=50)`` attaches hooks only on sampled steps (a forward hook costs
~1.15x a step), reduces on the device, and removes its hooks on every path out of a step and at
fit end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlskills.diagnose._hooks import (
    ActivationRecorder,
    check_positive_int,
    concat_batches,
    detached_copy,
    is_activation,
    model_device,
    probe_modules,
    set_diagnostic_mode,
    take_batches,
)
from dlskills.diagnose.verdict import Check, grade
from dlskills.train.callbacks.base import Callback

if TYPE_CHECKING:
    from dlskills.train.trainer import Trainer

# Dead units: a few percent of dead ReLUs is normal; when a tenth of a layer is constant the
# learning rate or bias init is suspect, and a layer half dead has lost half of its width.
DEAD_WARN = 0.10
DEAD_FAIL = 0.50
# Saturation: outputs pinned at the bounds of sigmoid/tanh pass (almost) no gradient.
SATURATED_WARN = 0.20
SATURATED_FAIL = 0.50
SATURATION_MARGIN = 0.02
# A unit whose range on the sample is below this fraction of its own largest |output| is
# constant (float32 rounding of a constant unit leaves ~1e-7 relative noise; a unit that varies
# by one part in a million over the examples carries no usable signal).
DEAD_TOLERANCE = 1e-6
# ... and it is dead when, in addition, the activation's slope |f'(z)| stays below this on every
# example: a ReLU at z ≤ 0 has f' = 0, tanh within 2 % of ±1 has f' ≤ 0.04, a sigmoid within 2 %
# of 0 or 1 has f' ≤ 0.02 (SATURATION_MARGIN). A unit that is constant with f' ~ 1 still passes
# gradient back (its *input* stopped varying: a vanished signal, not a dead unit).
DEAD_SLOPE = 0.05

# Output ranges of bounded activations: (low, high).
_BOUNDS: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0),
    nn.Hardsigmoid: (0.0, 1.0),
    nn.Tanh: (-1.0, 1.0),
    nn.Hardtanh: (-1.0, 1.0),
    nn.Softsign: (-1.0, 1.0),
    nn.ReLU6: (0.0, 6.0),
}


def _bounds(module: nn.Module) -> tuple[float, float] | None:
    if isinstance(module, nn.Hardtanh):  # also ReLU6
        return float(module.min_val), float(module.max_val)
    for kind, bounds in _BOUNDS.items():
        if isinstance(module, kind):
            return bounds
    return None


def _units(output: torch.Tensor) -> torch.Tensor:
    """(examples, units): conv channels are averaged over their positions."""
    if output.dim() <= 1:
        return output.reshape(-1, 1).float()
    if output.dim() == 2:
        return output.float()
    return output.float().flatten(2).mean(dim=2)


def _unit_samples(output: torch.Tensor) -> torch.Tensor:
    """(samples, units): every position of a conv channel counts as a sample of that unit."""
    if output.dim() <= 2:
        return output.reshape(output.shape[0], -1).float()
    return output.float().transpose(0, 1).flatten(1).T


def _slope_samples(module: nn.Module, inputs: torch.Tensor | None) -> torch.Tensor | None:
    """|f'(z)| of an element-wise activation module at its inputs z (same shape as the output),
    by one autograd call on a copy of z (``module.forward`` so no hook fires again); None when
    the probe is not an element-wise activation."""
    if inputs is None or not inputs.is_floating_point() or not is_activation(module):
        return None
    with torch.enable_grad():
        leaf = inputs.detach().clone().requires_grad_(True)
        out = module.forward(leaf.clone())  # the clone lets in-place activations run
        if not isinstance(out, torch.Tensor) or out.shape != leaf.shape or not out.requires_grad:
            return None
        (slope,) = torch.autograd.grad(out.sum(), leaf)
    return _unit_samples(slope.abs())


def _dead_and_constant(
    samples: torch.Tensor, slopes: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit masks (dead, constant) of (samples, units) outputs and their slopes."""
    spread = samples.max(dim=0).values - samples.min(dim=0).values
    size = samples.abs().max(dim=0).values
    constant = spread <= DEAD_TOLERANCE * size
    if slopes is None:
        return constant, constant
    return constant & (slopes.max(dim=0).values <= DEAD_SLOPE), constant


@dataclass(frozen=True)
class LayerStats:
    name: str
    units: int
    mean: float
    std: float
    dead_fraction: float
    saturated_fraction: float | None
    entropy_bits: float
    mutual_information_bits: float
    class_means: torch.Tensor  # (classes, units): the heat map
    mean_square: float = math.nan  # M = E[a²] over examples, positions and units
    constant_fraction: float = math.nan  # constant units, dead or not
    kind: str = ""  # the module's class name (ReLU, Linear, ...)

    @property
    def label(self) -> str:
        """The layer as figures name it: ``features.2 (ReLU)``, never a bare index."""
        return f"{self.name} ({self.kind})" if self.kind else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "mean": self.mean,
            "std": self.std,
            "mean_square": self.mean_square,
            "dead_fraction": self.dead_fraction,
            "constant_fraction": self.constant_fraction,
            "saturated_fraction": self.saturated_fraction,
            "entropy_bits": self.entropy_bits,
            "mutual_information_bits": self.mutual_information_bits,
        }


def _binned(units: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin index of every value, equal-width bins over each unit's own range."""
    low = units.min(dim=0).values
    span = (units.max(dim=0).values - low).clamp_min(1e-12)
    return ((units - low) / span * bins).long().clamp_(0, bins - 1)


def _entropy_bits(counts: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of the last dimension's histogram(s)."""
    total = counts.sum(dim=-1, keepdim=True).clamp_min(1)
    p = counts / total
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(dim=-1)


def entropy_and_mutual_information(
    units: torch.Tensor, labels: torch.Tensor, bins: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit H(A_k) and I(A_k; Y) in bits by binning (vectorised over units and classes)."""
    n, k = units.shape
    index = _binned(units, bins)  # (n, k)
    classes = int(labels.max()) + 1
    offsets = torch.arange(k, device=units.device) * bins
    joint = torch.zeros(classes, k * bins, device=units.device)
    joint.index_put_(
        (labels.long().repeat_interleave(k), (index + offsets).flatten()),
        torch.ones(n * k, device=units.device),
        accumulate=True,
    )
    joint = joint.view(classes, k, bins)
    marginal = joint.sum(dim=0)  # (k, bins)
    entropy = _entropy_bits(marginal)
    class_prior = joint.sum(dim=(1, 2)) / (n * k)  # p(c): each example is counted k times
    conditional = (_entropy_bits(joint) * class_prior[:, None]).sum(dim=0)
    return entropy, entropy - conditional


def _layer_stats(
    name: str,
    output: torch.Tensor,
    labels: torch.Tensor,
    module: nn.Module,
    inputs: torch.Tensor | None,
    bins: int,
) -> LayerStats:
    samples = _unit_samples(output)
    dead, constant = _dead_and_constant(samples, _slope_samples(module, inputs))
    bounds = _bounds(module)
    saturated = None
    if bounds is not None:
        low, high = bounds
        margin = SATURATION_MARGIN * (high - low)
        saturated = float(((samples <= low + margin) | (samples >= high - margin)).float().mean())
    units = _units(output)
    entropy, information = entropy_and_mutual_information(units, labels, bins)
    classes = int(labels.max()) + 1
    class_means = torch.zeros(classes, units.shape[1], device=units.device)
    class_means.index_add_(0, labels.long(), units)
    class_means /= torch.bincount(labels.long(), minlength=classes).clamp_min(1)[:, None]
    return LayerStats(
        name=name,
        kind=type(module).__name__,
        units=units.shape[1],
        mean=float(samples.mean()),
        std=float(samples.std()),
        dead_fraction=float(dead.float().mean()),
        constant_fraction=float(constant.float().mean()),
        mean_square=float(samples.double().pow(2).mean()),
        saturated_fraction=saturated,
        entropy_bits=float(entropy.mean()),
        mutual_information_bits=float(information.mean()),
        class_means=class_means.cpu(),
    )


@dataclass(frozen=True)
class ActivationStats:
    layers: list[LayerStats]
    num_examples: int

    def checks(self) -> list[Check]:
        worst_dead = max(self.layers, key=lambda s: s.dead_fraction)
        checks = [
            grade(
                "dead_units",
                worst_dead.dead_fraction,
                warn=DEAD_WARN,
                fail=DEAD_FAIL,
                what=f"fraction of dead units (constant over {self.num_examples} examples and "
                f"passing no gradient: ReLU at 0, saturated at a bound) in {worst_dead.name}",
            )
        ]
        bounded = [s for s in self.layers if s.saturated_fraction is not None]
        if bounded:
            worst = max(bounded, key=lambda s: s.saturated_fraction or 0.0)
            checks.append(
                grade(
                    "saturated_units",
                    worst.saturated_fraction or 0.0,
                    warn=SATURATED_WARN,
                    fail=SATURATED_FAIL,
                    what=f"fraction of outputs at the activation bounds in {worst.name}",
                )
            )
        return checks

    def to_dict(self) -> dict[str, Any]:
        return {"num_examples": self.num_examples, "layers": [s.to_dict() for s in self.layers]}

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Heat maps of the class-conditional mean activation (class x unit) per layer, and the
        entropy / mutual information per layer."""
        from dlskills._plot import (
            colorbar,
            integer_ticks,
            label_axes,
            legend,
            name_ticks,
            new_figure,
            save_figure,
        )

        shown = self.layers[:8]
        fig, axes = new_figure(
            1,
            len(shown) + 1,
            size=(3.2, 3.2),
            title=f"Activations on {self.num_examples} examples"
            + (
                f" (first {len(shown)} of {len(self.layers)} layers)"
                if len(shown) < len(self.layers)
                else ""
            ),
        )
        for ax, stats in zip(axes[0], shown):
            image = ax.imshow(
                stats.class_means.numpy(), aspect="auto", cmap="viridis", interpolation="nearest"
            )
            label_axes(ax, "unit", "class", title=f"{stats.label}\ndead {stats.dead_fraction:.0%}")
            integer_ticks(ax, "both")
            colorbar(fig, image, ax, "mean activation per class", fraction=0.05)
        ax = axes[0, -1]
        depth = range(len(self.layers))
        ax.plot(depth, [s.entropy_bits for s in self.layers], marker="o", label="H(A)")
        ax.plot(depth, [s.mutual_information_bits for s in self.layers], marker="s", label="I(A;Y)")
        label_axes(ax, "probe layer", "bits per unit", title="Information per unit")
        name_ticks(ax, [s.label for s in self.layers], rotation=45)
        legend(ax)
        return save_figure(fig, path)


def activation_stats(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    num_batches: int = 2,
    bins: int = 16,
    layers: Sequence[str] | None = None,
) -> ActivationStats:
    """Per-layer activation statistics on the first ``num_batches`` batches (on a copy)."""
    check_positive_int(bins, "bins", minimum=2)
    probe = set_diagnostic_mode(detached_copy(model))
    x, y = concat_batches(take_batches(loader, num_batches, model_device(probe)))
    if y.dtype.is_floating_point or y.dim() != 1:
        raise ValueError("loader: activation statistics need integer class labels (N,)")
    modules = probe_modules(probe, layers)
    # reduce inside the hook: a later in-place op (x += residual) may overwrite the output
    recorder = ActivationRecorder(
        modules,
        lambda name, out, module, inputs: _layer_stats(name, out, y, module, inputs, bins),
        with_input=True,
    )
    with torch.no_grad(), recorder:
        probe(x)
    stats = [replace(layer, name=label) for label, layer in recorder.records]
    if not stats:
        raise ValueError("layers: none of the probed modules ran in the forward pass")
    return ActivationStats(layers=stats, num_examples=len(x))


class ActivationStatsCallback(Callback):
    """Every ``every`` steps: per-layer mean, std, dead and saturated fractions of the training
    batch's activations, recorded on the device and moved to the CPU at fit end.

    ``history`` is a list of {"step", "layers", "mean", "std", "dead_fraction",
    "saturated_fraction"} (per-layer lists). A heat-map plot (layer x sampled step) goes to
    ``trainer.run_dir/activations.png`` at fit end when the trainer has a run directory.
    """

    def __init__(
        self, every: int = 50, *, layers: Sequence[str] | None = None, plot: bool = True
    ) -> None:
        self.every = check_positive_int(every, "every")
        self.layer_names = list(layers) if layers is not None else None
        self.plot_at_end = plot
        self.history: list[dict[str, Any]] = []
        self.figure: Path | None = None
        self._recorder: ActivationRecorder | None = None
        self._bounds: dict[str, tuple[float, float] | None] = {}
        self._pending: list[tuple[int, list[str], torch.Tensor]] = []
        self._sampled_step = 0

    def _reduce(
        self, name: str, output: torch.Tensor, module: nn.Module, inputs: torch.Tensor | None
    ) -> torch.Tensor:
        """(mean, std, dead fraction, saturated fraction or NaN) of one output, on its device."""
        samples = _unit_samples(output)
        dead = _dead_and_constant(samples, _slope_samples(module, inputs))[0].float().mean()
        bounds = self._bounds.get(name)
        if bounds is None:
            saturated = torch.full_like(dead, float("nan"))
        else:
            margin = SATURATION_MARGIN * (bounds[1] - bounds[0])
            at_bounds = (samples <= bounds[0] + margin) | (samples >= bounds[1] - margin)
            saturated = at_bounds.float().mean()
        return torch.stack((samples.mean(), samples.std(), dead, saturated))

    def on_fit_start(self, trainer: Trainer) -> None:
        modules = probe_modules(trainer.model, self.layer_names)
        self._bounds = {name: _bounds(module) for name, module in modules}
        self._recorder = ActivationRecorder(modules, self._reduce, with_input=True)

    def on_batch_start(self, trainer: Trainer) -> None:
        if self._recorder is not None and trainer.step % self.every == 0:
            self._sampled_step = int(trainer.step)
            self._recorder.attach()

    def on_after_backward(self, trainer: Trainer) -> None:
        self._collect()

    def on_batch_end(self, trainer: Trainer) -> None:
        self._collect()

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._collect()  # a batch cancelled before backward fires neither event above

    def _collect(self) -> None:
        recorder = self._recorder
        if recorder is None or not recorder.attached:
            return
        recorder.remove()
        if recorder.records:
            labels = [label for label, _ in recorder.records]
            values = torch.stack([value for _, value in recorder.records])  # (layers, 4)
            self._pending.append((self._sampled_step, labels, values))
        recorder.clear()

    def records(self) -> list[dict[str, Any]]:
        for step, labels, values in self._pending:
            rows = values.cpu().tolist()
            self.history.append(
                {
                    "step": step,
                    "layers": labels,
                    "mean": [r[0] for r in rows],
                    "std": [r[1] for r in rows],
                    "dead_fraction": [r[2] for r in rows],
                    "saturated_fraction": [None if math.isnan(r[3]) else r[3] for r in rows],
                }
            )
        self._pending.clear()
        return self.history

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        if self._recorder is not None:
            self._recorder.remove()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._recorder is not None:
            self._recorder.remove()
            self._recorder.clear()
        self.records()
        run_dir = getattr(trainer, "run_dir", None)
        if self.plot_at_end and run_dir is not None and self.history:
            self.figure = self.plot(Path(run_dir) / "activations.png")

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Heat maps (probe layer x sampled step) of the activation std and the dead fraction."""
        from dlskills._plot import (
            colorbar,
            integer_ticks,
            label_axes,
            name_ticks,
            new_figure,
            save_figure,
        )

        rows = self.records()
        if not rows:
            raise ValueError("ActivationStatsCallback: nothing sampled yet")
        width = min(len(r["layers"]) for r in rows)
        std = torch.tensor([r["std"][:width] for r in rows]).T
        dead = torch.tensor([r["dead_fraction"][:width] for r in rows]).T
        fig, axes = new_figure(1, 2, size=(5.5, 4.0), title="Activations during training")
        steps = [r["step"] for r in rows]
        extent = (steps[0], steps[-1] if len(steps) > 1 else steps[0] + 1, width - 0.5, -0.5)
        for ax, values, title, bar in (
            (axes[0, 0], std.clamp_min(1e-12).log10(), "std", "log10 activation std"),
            (axes[0, 1], dead * 100, "dead units", "dead units (%)"),
        ):
            image = ax.imshow(values.numpy(), aspect="auto", cmap="magma", extent=extent)
            label_axes(ax, "optimizer step", "probe layer", title=title)
            name_ticks(ax, rows[-1]["layers"][:width], axis="y")
            integer_ticks(ax, "x")
            colorbar(fig, image, ax, bar)
        return save_figure(fig, path)

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "history": self.records()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.every = int(state.get("every", self.every))
        self.history = list(state.get("history", []))
