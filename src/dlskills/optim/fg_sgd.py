"""FG-SGD, fine-grained SGD on products of weight manifolds (catalog 1905.09054; Ozay, NeurIPS
2019, "Fine-grained Optimization of Deep Neural Networks").

The paper renormalises each weight kernel onto a unit sphere (so its norms are bounded by 1),
treats the network's weights as a point on a *product* of such spheres, and trains with SGD on
that product: per component manifold, project the Euclidean gradient onto the tangent space,
rescale it by the component's own bound, and move along the manifold with the exponential map.
For each component ω (a row of a weight, see ``manifold``), with Euclidean gradient g:

    r = g − ⟨g, ω⟩·ω                         Riemannian gradient on the unit sphere
    v = r / max(1, ‖r‖)                      the paper's h(·, r(t, Θ)) = grad/max(1, Γ)^(1/2)
                                             with Γ = ‖grad‖² on the unit sphere
    ω ← cos(lr·‖v‖)·ω − sin(lr·‖v‖)·v/‖v‖    exponential map along −v (stays on the sphere;
                                             rows are renormalised afterwards so rounding
                                             cannot drift them off it)

Parameters with fewer than two dimensions (biases, normalisation scales) are Euclidean
components: θ ← θ − lr·(g + weight_decay·θ). ``manifold`` picks the product structure:
"po" (default) puts each output-channel kernel (row of ``weight.view(out, -1)``) on its own
sphere, the paper's PO strategy; "tensor" puts the whole tensor on one sphere.

Deviations, named: the authors' code was not available, so the rule is implemented from the
paper's equations with the unit sphere as the only component manifold (the paper also uses
oblique and Stiefel manifolds and mixes them, PIO); the step-size function g(t, Θ) is the group's
``lr`` (drive it with any LR scheduler). The paper's first renormalisation stage happens when a
parameter joins the optimizer (construction or ``add_param_group``): each component is divided
by its norm, so the first gradient is taken at the renormalised weights (this leaves a
network's function unchanged only where the layer is scale-invariant, e.g. followed by
BatchNorm, as in the paper's setting). Components already of unit norm to √(dtype eps) are left
bit-for-bit alone. A component found off its sphere at its first step (the weights were changed
after construction) is renormalised and takes no step then, since its gradient belongs to the
old weights. A component of norm 0 (e.g. Fixup's zero-initialised layers) has no direction to
keep: it stays 0 until its first non-zero gradient, and that step puts it on the sphere at
−r/‖r‖ (the exponential-map step from the origin, renormalised); it never becomes NaN. The
paper's second stage (a fixed rescaling of the normalised weights) is a model-side
reparametrisation and is not part of the optimizer.

Update paths: ``_single_tensor_fg_sgd`` loops over tensors; ``_multi_tensor_fg_sgd`` batches all
sphere components with the same length into one matrix (one kernel per op for the whole group)
and the Euclidean ones through ``torch._foreach_*``; by default (``fused=None``, ``foreach=None``)
the sphere tensors take the fused CPU kernel of ``dlskills.optim._native``, one row at a time
while it is in cache: w and g read once, w written once, where the torch ops stream the tensor
about twenty times a step.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import Tensor

from dlskills.optim import _native
from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import check_fused, check_nonnegative, check_positive, dispatch
from dlskills.optim._registry import register_optimizer

MANIFOLDS = ("po", "tensor")


def _components(tensor: Tensor, manifold: str) -> Tensor:
    """The tensor as a (components, length) matrix view, one sphere per row."""
    if manifold == "tensor":
        return tensor.reshape(1, -1)
    return tensor.reshape(tensor.shape[0], -1)


def _sphere_step(points: Tensor, grads: Tensor, lr: float) -> Tensor:
    """One FG-SGD step for a batch of unit-sphere points (rows); returns the new rows. A zero
    row enters the sphere at −r/‖r‖ (stays 0 while its gradient is 0)."""
    tangent = grads - (grads * points).sum(dim=1, keepdim=True) * points
    norm = torch.linalg.vector_norm(tangent, dim=1, keepdim=True)
    scaled_norm = norm / norm.clamp(min=1.0)
    angle = lr * scaled_norm
    tiny = torch.finfo(norm.dtype).tiny
    direction = tangent / norm.clamp(min=tiny)
    moved = torch.cos(angle) * points - torch.sin(angle) * direction
    # rounding leaves a radial part in ``direction`` that the exp map would amplify near a
    # minimum (where the tangent is tiny), so the result is put back on the sphere
    moved = moved / torch.linalg.vector_norm(moved, dim=1, keepdim=True).clamp(min=tiny)
    at_origin = (points == 0).all(dim=1, keepdim=True)
    return torch.where(at_origin, -direction, moved)


def _to_sphere_(param: Tensor, manifold: str) -> bool:
    """Divide each non-zero component that is off the unit sphere (by more than √eps) by its
    norm, in place; True if any was."""
    rows = _components(param, manifold)
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    tolerance = torch.finfo(param.dtype).eps ** 0.5
    off = (norms > 0) & ((norms - 1).abs() > tolerance)
    if not bool(off.any()):
        return False
    scaled = rows / norms.clamp(min=torch.finfo(param.dtype).tiny)
    param.copy_(torch.where(off, scaled, rows).reshape(param.shape))
    return True


def _single_tensor_fg_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    lr: float,
    weight_decay: float,
    manifold: str,
) -> None:
    for param, grad in zip(params, grads):
        if param.dim() < 2:
            param.sub_(grad.add(param, alpha=weight_decay) if weight_decay else grad, alpha=lr)
            continue
        points = _components(param, manifold)
        points.copy_(_sphere_step(points, _components(grad, manifold), lr))


def _multi_tensor_fg_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    lr: float,
    weight_decay: float,
    manifold: str,
) -> None:
    euclidean = [i for i, p in enumerate(params) if p.dim() < 2]
    if euclidean:
        e_params = [params[i] for i in euclidean]
        e_grads = [grads[i] for i in euclidean]
        if weight_decay:
            e_grads = torch._foreach_add(e_grads, e_params, alpha=weight_decay)
        torch._foreach_add_(e_params, e_grads, alpha=-lr)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(params):
        if p.dim() >= 2:
            by_length[_components(p, manifold).shape[1]].append(i)
    for members in by_length.values():
        views = [_components(params[i], manifold) for i in members]
        batch_grads = torch.cat([_components(grads[i], manifold) for i in members])
        stepped = _sphere_step(torch.cat(views), batch_grads, lr)
        torch._foreach_copy_(views, list(stepped.split([v.shape[0] for v in views])))


def fg_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    lr: float,
    weight_decay: float,
    manifold: str,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> None:
    """Functional FG-SGD over lists (sphere components must have unit norm, or be 0). The
    sphere tensors take the fused CPU kernel (``fused`` as in the other zoo optimizers: one
    pass over memory instead of one per elementary op); vectors the Euclidean step."""
    sphere = [i for i, p in enumerate(params) if p.dim() >= 2]
    euclidean = [i for i, p in enumerate(params) if p.dim() < 2]
    for members, native in ((sphere, _native_sphere_step), (euclidean, None)):
        dispatch(
            _single_tensor_fg_sgd,
            _multi_tensor_fg_sgd,
            ([params[i] for i in members], [grads[i] for i in members]),
            foreach,
            fused=fused if native is not None else False,
            native=native,
            lr=lr,
            weight_decay=weight_decay,
            manifold=manifold,
        )


def _native_sphere_step(
    params: list[Tensor], grads: list[Tensor], *, lr: float, weight_decay: float, manifold: str
) -> None:
    del weight_decay  # the sphere has none: the step's length is the angle
    _native.fg_sgd(params, grads, lr=lr, manifold=manifold)


@register_optimizer(
    "fg_sgd",
    catalog_id="1905.09054",
    aliases=("fgsgd",),
    needs_closure=False,
    supports_foreach=True,
    supports_fused=True,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.05},
    test_steps=600,
    test_tolerance=1e-3,
)
class FGSGD(ZooOptimizer):
    """SGD on a product of unit spheres (weights) and Euclidean spaces (vectors).

    Args:
        params: tensors or param groups.
        lr: step size along the manifold (radians per unit rescaled gradient), > 0.
        manifold: "po" (a sphere per output channel) or "tensor" (one sphere per tensor).
        weight_decay: L2 coefficient for the Euclidean (< 2-D) parameters only; on a sphere the
            norm is fixed, so decay has no meaning there.
        foreach: True/False force the batched/for-loop path; None picks per
            ``dlskills.optim._foreach``.
        fused: None (default) runs the fused CPU kernel (``dlskills.optim._native``) on the
            sphere tensors when they allow and ``foreach`` is None; True requires it; False
            never uses it.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        manifold: str = "po",
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "manifold": manifold,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "fused": fused,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])
        if group["manifold"] not in MANIFOLDS:
            raise ValueError(f"Invalid manifold: {group['manifold']!r} (one of {MANIFOLDS})")
        check_nonnegative("weight_decay", group["weight_decay"])
        check_fused(group["foreach"], group.get("fused"))

    def _join(self, group: dict[str, Any]) -> None:
        with torch.no_grad():  # the first renormalisation stage, before any gradient
            for p in group["params"]:
                if p.dim() >= 2 and p.requires_grad:  # a frozen kernel stays as it is
                    _to_sphere_(p, group["manifold"])

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = self._loss_of(closure)
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("FGSGD does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["renormalised"] = torch.tensor(True)
                    # changed since it joined: renormalise, and drop the gradient taken at the
                    # old weights
                    if p.dim() >= 2 and _to_sphere_(p, group["manifold"]):
                        continue
                params.append(p)
                grads.append(p.grad)
            if params:
                self.functional(
                    params,
                    grads,
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                    manifold=group["manifold"],
                    foreach=group["foreach"],
                    fused=group.get("fused"),  # absent from pre-fused checkpoints
                )
        return loss

    functional = staticmethod(fg_sgd)
