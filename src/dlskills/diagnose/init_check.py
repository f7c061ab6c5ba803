"""Initialisation check: the two failure modes of Hanin & Rolnick (catalog 1803.01719).

B. Hanin, D. Rolnick, "How to Start Training: The Effect of Initialization and Architecture",
NeurIPS 2018. For a fixed input x and random weights, the normalised squared length of the
activations of layer j,

    M_j = (1/n_j) ‖z_j‖²,

behaves in two ways that make training start badly:

* FM1 — the mean length E[M_j] grows or shrinks exponentially with depth. For ReLU nets
  E[M_j] = M_0 ∏_k (n_{k-1} Var[W_k] / 2), so only Var[W] = 2/fan_in (He) keeps it constant.
* FM2 — the variance of M_j across inits grows like exp(C Σ_{k≤j} 1/n_k), even at the right
  weight variance: many narrow layers make the length of a random net's output unpredictable.
  Constant width beats narrow-then-wide nets with the same number of neurons.

``init_check`` re-initialises a copy of the model ``n_inits`` times (each module's own
``reset_parameters`` or a given ``init_fn``), runs one batch and records M_j per example, init and
probe layer (activation modules by default, see ``_hooks.probe_modules``).

Measured numbers (the doctor's checks):

* FM1 = max_j |log10(E[M_j] / E[M_1])|: the orders of magnitude the mean length drifts across
  depth, relative to the first probe (so input scaling does not count).
* FM2 = Var_init[M_L] / E_init[M_L]² at the last probe, averaged over the examples: the squared
  coefficient of variation, scale-free like the paper's exp(C Σ 1/n) - 1 law.

Deviations: conv layers count channels as the width n_j (the paper treats fully connected nets);
normalisation layers run in training mode and dropout is off while measuring.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlskills.diagnose._hooks import (
    ActivationRecorder,
    check_positive_int,
    concat_batches,
    detached_copy,
    model_device,
    probe_modules,
    reinitialize,
    set_diagnostic_mode,
    take_batches,
    width,
)
from dlskills.diagnose.verdict import Check, grade

# FM1: a 10x drift of the mean squared length across depth already means a badly scaled init
# (He init keeps it within a few tens of percent); 100x is the exponential regime of the paper.
FM1_WARN_DECADES = 1.0
FM1_FAIL_DECADES = 2.0
# FM2: for He-init ReLU nets E[M_L²]/E[M_L]² ≈ ∏_j (1 + 5/n_j) ≈ exp(5β), β = Σ 1/n_j, so the
# normalised variance is ≈ exp(5β) - 1. Measured with 100 inits: 2.0 for 10 layers of width 32
# (β = 0.31, trains fine), 6.6 at width 16 (β = 0.63), 23 for five layers of 4 then five of 60
# (β = 1.33, the paper's narrow-then-wide case that trains slowly).
FM2_WARN = 3.0
FM2_FAIL = 10.0
# Below this drift (a factor 10^0.05 ≈ 1.12) the message calls the mean length level rather than
# growing or shrinking: the three-digit values it prints would otherwise contradict the word.
LEVEL_DECADES = 0.05


def _squared_length(output: torch.Tensor) -> torch.Tensor:
    return output.flatten(1).float().pow(2).mean(dim=1)


@dataclass(frozen=True)
class InitCheckResult:
    """M_j per init, example and layer: ``lengths[i, e, j]``."""

    layers: list[str]
    widths: list[int]
    lengths: torch.Tensor
    input_length: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        """E[M_j] over inits and examples, per layer."""
        return self.lengths.mean(dim=(0, 1))

    @property
    def normalized_variance(self) -> torch.Tensor:
        """Var_init[M_j] / E_init[M_j]², averaged over examples, per layer."""
        mean = self.lengths.mean(dim=0)
        var = self.lengths.var(dim=0, unbiased=True)
        return (var / mean.pow(2).clamp_min(torch.finfo(mean.dtype).tiny)).mean(dim=0)

    @property
    def sum_inverse_width(self) -> torch.Tensor:
        """Σ_{k≤j} 1/n_k, per layer (the paper's β)."""
        return torch.tensor([1.0 / n for n in self.widths], dtype=torch.float64).cumsum(0)

    @property
    def fm1(self) -> float:
        """Probes whose length is exactly 0 on every init (the output of a zero-initialised
        layer, as in Fixup or zero-init residual branches) are structural and left out."""
        mean = self.mean.double()
        mean = mean[mean != 0] if bool((mean != 0).any()) else mean
        return float(torch.log10(mean / mean[0]).abs().max())

    @property
    def fm2(self) -> float:
        """At the last probe whose length is not structurally 0 (see ``fm1``)."""
        nonzero = (self.mean != 0).nonzero().flatten()
        last = int(nonzero[-1]) if nonzero.numel() else -1
        return float(self.normalized_variance[last])

    def drift_description(self) -> str:
        """Words for FM1 that match its numbers: level, or grows/shrinks up to the probe whose
        mean length is furthest (in decades) from the first one's."""
        mean = self.mean.double()
        kept = (
            (mean != 0).nonzero().flatten() if bool((mean != 0).any()) else torch.arange(len(mean))
        )
        ratio = torch.log10(mean[kept] / mean[kept[0]])
        far = int(kept[int(ratio.abs().argmax())])
        first, last = float(mean[kept[0]]), float(mean[kept[-1]])
        ends = f"E[M_1]={first:.3g}, E[M_L]={last:.3g}"
        if not math.isfinite(self.fm1):
            return f"mean squared activation length is not finite ({ends})"
        if self.fm1 < LEVEL_DECADES:
            return f"mean squared activation length stays level across depth ({ends})"
        direction = "grows" if float(mean[far]) > first else "shrinks"
        where = (
            ""
            if far == int(kept[-1])
            else f"; furthest at {self.layers[far]}: {float(mean[far]):.3g}"
        )
        return f"mean squared activation length {direction} across depth ({ends}{where})"

    def checks(self) -> list[Check]:
        fm1, fm2 = self.fm1, self.fm2
        fm1_check = grade(
            "init_fm1",
            fm1 if math.isfinite(fm1) else math.inf,
            warn=FM1_WARN_DECADES,
            fail=FM1_FAIL_DECADES,
            what=f"{self.drift_description()}; max |log10 E[M_j]/E[M_1]|",
        )
        beta = float(self.sum_inverse_width[-1])
        fm2_check = grade(
            "init_fm2",
            fm2 if math.isfinite(fm2) else math.inf,
            warn=FM2_WARN,
            fail=FM2_FAIL,
            what=f"variance of the output length across inits, Var[M_L]/E[M_L]² "
            f"(Σ 1/width = {beta:.3g})",
        )
        return [fm1_check, fm2_check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "widths": self.widths,
            "mean_length": self.mean.tolist(),
            "normalized_variance": self.normalized_variance.tolist(),
            "sum_inverse_width": self.sum_inverse_width.tolist(),
            "fm1": self.fm1,
            "fm2": self.fm2,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Mean (with the spread across inits) and normalised variance of M_j per layer."""
        from dlskills._plot import label_axes, legend, name_ticks, new_figure, save_figure

        fig, axes = new_figure(
            1, 2, size=(5.0, 3.6), title="Initialization check: activation lengths per layer"
        )
        depth = torch.arange(len(self.layers)).numpy()
        per_init = self.lengths.mean(dim=1).numpy()
        ax_mean, ax_var = axes[0, 0], axes[0, 1]
        inits = self.lengths.shape[0]
        ax_mean.fill_between(
            depth, per_init.min(0), per_init.max(0), alpha=0.3, label=f"range over {inits} inits"
        )
        ax_mean.plot(depth, self.mean.numpy(), marker="o", label="mean over inits")
        ax_mean.set_yscale("log")
        label_axes(
            ax_mean,
            "probe layer j",
            "M_j = |z_j|^2 / n_j (log scale)",
            title=f"FM1: mean length (max drift {self.fm1:.2f} decades)",
        )
        name_ticks(ax_mean, self.layers, rotation=45 if len(self.layers) > 4 else 0)
        legend(ax_mean)
        ax_var.plot(self.sum_inverse_width.numpy(), self.normalized_variance.numpy(), marker="o")
        label_axes(
            ax_var,
            "sum of 1/width up to layer j",
            "Var[M_j] / E[M_j]^2",
            title=f"FM2: length variance across {inits} inits",
        )
        return save_figure(fig, path)


def init_check(
    model: nn.Module,
    loader: Iterable[Any],
    n_inits: int = 10,
    *,
    init_fn: Callable[[nn.Module], Any] | None = None,
    num_batches: int = 1,
    layers: Sequence[str] | None = None,
    seed: int = 0,
) -> InitCheckResult:
    """Re-initialise a copy of ``model`` ``n_inits`` times and measure M_j on fixed inputs.

    ``init_fn(model)`` draws the weights in place (default: each module's reset_parameters);
    the user's model is never touched.
    """
    check_positive_int(n_inits, "n_inits", minimum=2)
    probe = set_diagnostic_mode(detached_copy(model))
    device = model_device(probe)
    x, _ = concat_batches(take_batches(loader, num_batches, device))
    modules = probe_modules(probe, layers)
    per_init = []
    names: list[str] = []
    widths: list[int] = []
    recorder = ActivationRecorder(modules, lambda _, out: (_squared_length(out), width(out)))
    with torch.no_grad():
        for index in range(n_inits):
            reinitialize(probe, seed + index, init_fn)
            with recorder:
                probe(x)
            if not recorder.records:
                raise ValueError("layers: none of the probed modules ran in the forward pass")
            if index == 0:
                names = [label for label, _ in recorder.records]
                widths = [w for _, (_, w) in recorder.records]
            per_init.append(torch.stack([length for _, (length, _) in recorder.records], dim=1))
    return InitCheckResult(
        layers=names,
        widths=widths,
        lengths=torch.stack(per_init).cpu(),
        input_length=_squared_length(x).cpu(),
    )
