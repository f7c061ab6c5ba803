"""Targeted sparsity regularisation (catalog 2002.09237: Huesmann, Klemm, Linsen & Risse,
"Exploiting the Full Capacity of Deep Neural Networks while Avoiding Overfitting by Targeted
Sparsity Regularization", 2020).

The paper's observation: as a ReLU network overfits, the activations of some layers become
sparse (more units output exactly 0); its remedy: a loss term, per targeted layer, that keeps
that layer's activation sparsity from rising, so a large model can train long without
overfitting. With z the input of activation layer ℓ (pre-activation, any shape (N, …)):

    sparsity       s_ℓ  = mean_i 1[z_i ≤ 0]                      (fraction of inactive outputs)
    relaxed        ŝ_ℓ  = mean_i σ(−z_i / (T · sd(z)))           (sd detached; T: temperature)
    regulariser    R    = λ · Σ_{ℓ ∈ targets} max(0, ŝ_ℓ − τ_ℓ)²
    training loss  L_task + R

τ_ℓ is the target sparsity of layer ℓ (one number for every targeted layer, or one per layer);
only layers above their target are pushed back, and only the targeted layers (``layers``: names
of the activation modules; default: every ReLU) are touched. ŝ → s as T → 0; dividing by the
layer's own spread makes T the same for every layer.

Deviation: the paper's exact sparsity measure and per-layer weighting are not reproduced; this
is the rule as described above (a sigmoid relaxation of the zero fraction, a hinge at a target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn


def relaxed_sparsity(pre_activation: torch.Tensor, temperature: float) -> torch.Tensor:
    """ŝ = mean σ(−z / (T · sd(z))), sd over the whole tensor, detached."""
    scale = pre_activation.detach().std().clamp_min(1e-12) * temperature
    return torch.sigmoid(-pre_activation / scale).mean()


def activation_sparsity(model: nn.Module, inputs: torch.Tensor) -> dict[str, float]:
    """Fraction of outputs equal to 0 of every ReLU of ``model`` on ``inputs`` (eval mode,
    no gradients; the training flag is restored): the paper's overfitting indicator."""
    found: dict[str, float] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: found.__setitem__(name, (out == 0).float().mean().item())
        )
        for name, module in model.named_modules()
        if isinstance(module, nn.ReLU)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return found


class TargetedSparsity:
    """Collects ŝ_ℓ of the targeted activation layers during each training forward pass;
    ``penalty()`` returns R for the latest pass (add it to the loss). ``remove()`` detaches
    the hooks."""

    def __init__(
        self,
        model: nn.Module,
        weight: float = 1.0,
        target: float | Sequence[float] = 0.5,
        temperature: float = 0.1,
        layers: Iterable[str] | None = None,
    ) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"weight must be a non-negative number, got {weight!r}")
        if not isinstance(temperature, int | float) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        modules = dict(model.named_modules())
        if layers is None:
            names = [n for n, m in modules.items() if isinstance(m, nn.ReLU)]
        else:
            names = list(layers)
            unknown = [n for n in names if n not in modules]
            if unknown:
                raise ValueError(f"layers {unknown} are not modules of the model")
        if not names:
            raise ValueError("layers: the model has no activation layer to target")
        targets = [float(target)] * len(names) if isinstance(target, int | float) else list(target)
        if len(targets) != len(names) or not all(0.0 <= t <= 1.0 for t in targets):
            raise ValueError(
                f"target must be one number in [0, 1] or one per layer ({len(names)}), "
                f"got {target!r}"
            )
        self.weight, self.temperature = float(weight), float(temperature)
        self.targets = dict(zip(names, targets))
        self.sparsity: dict[str, torch.Tensor] = {}
        self._handles = [
            modules[name].register_forward_pre_hook(self._hook(name)) for name in names
        ]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if module.training and torch.is_grad_enabled():
                self.sparsity[name] = relaxed_sparsity(inputs[0], self.temperature)

        return hook

    def penalty(self) -> torch.Tensor:
        """R = λ Σ max(0, ŝ_ℓ − τ_ℓ)² over the layers seen in the latest training forward."""
        if not self.sparsity:
            raise RuntimeError("penalty() needs a training-mode forward pass first")
        terms = [
            torch.relu(value - self.targets[name]).square() for name, value in self.sparsity.items()
        ]
        self.sparsity = {}
        return self.weight * torch.stack(terms).sum()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


__all__ = ["TargetedSparsity", "activation_sparsity", "relaxed_sparsity"]
