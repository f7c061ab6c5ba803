"""Gradient confusion: how much per-example gradients disagree (catalog 1904.06963).

K. Sankararaman, S. De, Z. Xu, W. R. Huang, T. Goldstein, "The Impact of Neural Network
Overparameterization on Gradient Confusion and Stochastic Gradient Descent" (ICML 2020). A set of
per-example losses f_i has gradient confusion η when

    ⟨∇f_i(w), ∇f_j(w)⟩ ≥ -η   for all i ≠ j;

high confusion (strongly negative inner products) slows SGD. The paper shows that, at standard
inits, wider layers lower the confusion and more layers raise it, and measures it through the
pairwise cosine similarities cos_ij = ⟨∇f_i, ∇f_j⟩ / (‖∇f_i‖ ‖∇f_j‖): their minimum and their
distribution.

``per_example_gradients`` computes all ∇f_i in one call (``torch.func.vmap`` over ``grad`` of a
``functional_call``); ``gradient_confusion`` returns every pairwise cosine (upper triangle), the
minimum cosine, the minimum raw inner product (the paper's -η) and quantiles. The doctor measures
it on a re-initialised copy, as the paper's claims are about architectures at init: on trained
weights, a few hard examples of confusable classes have nearly opposite gradients by nature.

Deviation: the model runs in eval mode so that each example's loss depends on that example only
(batch normalisation in training mode would couple them).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from dlskills.diagnose._hooks import check_positive_int, concat_batches, model_device, take_batches
from dlskills.diagnose.verdict import Check, grade

# The check grades the 5% quantile of the pairwise cosines (the minimum of ~500 pairs is an
# extreme value dominated by one hard pair). At init, measured q05: -0.05 to -0.25 for 1-4 layer
# MLPs and the digits CNN, -0.35 to -0.55 for 8-layer MLPs (deeper: more confusion, as in the
# paper). Below -0.4 a twentieth of the example pairs pull the weights in clearly opposed
# directions; below -0.7 they nearly cancel.
CONFUSION_WARN = -0.4
CONFUSION_FAIL = -0.7
CONFUSION_QUANTILE = 0.05


def per_example_gradients(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """∇_w f_i for every example, flattened: a (num_examples, num_parameters) tensor."""
    probe = copy.deepcopy(model).eval()
    params = {n: p.detach() for n, p in probe.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model: has no trainable parameters")
    buffers = dict(probe.named_buffers())

    def example_loss(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
        output = functional_call(probe, (weights, buffers), (x.unsqueeze(0),))
        return loss_fn(output, y.unsqueeze(0))

    grads = vmap(grad(example_loss), in_dims=(None, 0, 0))(params, inputs, targets)
    return torch.cat([g.flatten(1) for g in grads.values()], dim=1)


@dataclass(frozen=True)
class GradientConfusion:
    """Pairwise statistics of per-example gradients (i < j)."""

    cosines: torch.Tensor
    inner_products: torch.Tensor

    @property
    def min_cosine(self) -> float:
        return float(self.cosines.min())

    @property
    def mean_cosine(self) -> float:
        return float(self.cosines.mean())

    @property
    def eta(self) -> float:
        """The paper's confusion bound: -min_ij ⟨∇f_i, ∇f_j⟩ (0 when no pair disagrees)."""
        return max(0.0, -float(self.inner_products.min()))

    def quantiles(self, q: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> dict[str, float]:
        values = torch.quantile(self.cosines.double(), torch.tensor(q, dtype=torch.float64))
        return {f"q{round(p * 100):02d}": float(v) for p, v in zip(q, values)}

    def checks(self) -> list[Check]:
        low = float(torch.quantile(self.cosines.double(), CONFUSION_QUANTILE))
        return [
            grade(
                "gradient_confusion",
                low,
                warn=CONFUSION_WARN,
                fail=CONFUSION_FAIL,
                lower_is_worse=True,
                what=f"5% quantile of pairwise cosines of per-example gradients "
                f"(min {self.min_cosine:.3g}, mean {self.mean_cosine:.3g})",
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_cosine": self.min_cosine,
            "mean_cosine": self.mean_cosine,
            "eta": self.eta,
            **self.quantiles(),
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        from dlskills._plot import label_axes, legend, new_figure, save_figure, threshold_line

        fig, ax = new_figure(title=f"Gradient confusion: min cosine {self.min_cosine:.2f}")
        ax.hist(self.cosines.tolist(), bins=50, range=(-1.0, 1.0), label="example pairs")
        threshold_line(
            ax, CONFUSION_WARN, f"WARN below {CONFUSION_WARN:g}", axis="x", color="orange"
        )
        threshold_line(ax, CONFUSION_FAIL, f"FAIL below {CONFUSION_FAIL:g}", axis="x")
        label_axes(ax, "cosine of two examples' gradients", "pairs of examples")
        legend(ax)
        return save_figure(fig, path)


def gradient_confusion(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    num_examples: int = 32,
) -> GradientConfusion:
    """Gradient confusion over the first ``num_examples`` examples of ``loader``."""
    check_positive_int(num_examples, "num_examples", minimum=2)
    device = model_device(model)
    batches, collected = [], 0
    for batch in take_batches(loader, num_examples, device):
        batches.append(batch)
        collected += len(batch[0])
        if collected >= num_examples:
            break
    x, y = concat_batches(batches)
    grads = per_example_gradients(model, loss_fn, x[:num_examples], y[:num_examples]).double()
    gram = grads @ grads.T
    norms = gram.diagonal().sqrt().clamp_min(1e-30)
    i, j = torch.triu_indices(len(grads), len(grads), offset=1, device=gram.device)
    if i.numel() == 0:
        raise ValueError("loader: need at least two examples for pairwise gradient statistics")
    cosines = gram[i, j] / (norms[i] * norms[j])
    return GradientConfusion(cosines=cosines.float().cpu(), inner_products=gram[i, j].float().cpu())
