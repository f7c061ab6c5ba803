"""Curvature probes shared by the second-order optimizers (Becker–LeCun, vSGD).

They keep torch's closure contract (the closure zeroes the gradients, computes the loss,
calls ``backward`` and returns the loss), so the optimizers that use them drop into any training
loop that already works with torch.optim.LBFGS. Hessian-vector products are therefore taken by
a forward finite difference of gradients from the same closure (the same minibatch):

    H·v ≈ (∇L(θ + ε·v) − ∇L(θ)) / ε,     ε = √(machine ε of the dtype) · (1 + max|θ|)

which is exact for quadratics up to rounding and costs one extra closure call per probe. The
Hutchinson estimate of the Hessian diagonal is v ⊙ (H·v) with Rademacher v (E[v vᵀ] = I).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def gradients_of(closure: Callable[[], Any], params: list[Tensor]) -> tuple[Any, list[Tensor]]:
    """Call the closure (with grad enabled) and return its loss and copies of the gradients."""
    with torch.enable_grad():
        loss = closure()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
    return loss, grads


@torch.no_grad()
def finite_difference_hvp(
    closure: Callable[[], Any],
    params: list[Tensor],
    vectors: list[Tensor],
    grads: list[Tensor],
) -> list[Tensor]:
    """H·v by a forward difference of the closure's gradients; parameters are restored exactly
    and each ``p.grad`` is left equal to ``grads`` (the gradient at the unperturbed point)."""
    scale = max(float(p.detach().abs().max()) for p in params) if params else 0.0
    eps = torch.finfo(params[0].dtype).eps ** 0.5 * (1.0 + scale)
    saved = [p.detach().clone() for p in params]
    for p, v in zip(params, vectors):
        p.add_(v, alpha=eps)
    _, shifted = gradients_of(closure, params)
    for p, original, g in zip(params, saved, grads):
        p.copy_(original)
        if p.grad is not None:
            p.grad.copy_(g)
    return [(g_shift - g).div_(eps) for g_shift, g in zip(shifted, grads)]


def rademacher_like(params: list[Tensor], generator: torch.Generator) -> list[Tensor]:
    """Independent ±1 tensors shaped like ``params`` (drawn on the CPU from ``generator``)."""
    return [
        (torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p.device, p.dtype)
        for p in params
    ]


def new_generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int):
        raise ValueError(f"Invalid seed: {seed!r} (must be an int)")
    return torch.Generator().manual_seed(seed)


class SeededProbes:
    """Mixin for optimizers that draw probe vectors: a seeded generator whose state travels in
    ``state_dict`` (as a uint8 tensor), so a resumed run draws the same probes."""

    _generator: torch.Generator

    def _init_probes(self, seed: int) -> None:
        self._generator = new_generator(seed)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()  # type: ignore[misc]
        state["generator_state"] = self._generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)  # type: ignore[misc]
        if generator_state is not None:
            self._generator.set_state(generator_state)
