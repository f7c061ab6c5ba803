"""Natural gradient descent for small networks (catalog cond-mat-9901212; natural gradient
learning for multilayer perceptrons, after Amari 1998; K-FAC: Martens & Grosse 2015).

Steepest descent in the geometry of the model's output distribution instead of the parameter
coordinates: the step solves a linear system with the Fisher information F,

    (F + λI)·δ = g,     θ ← θ − lr·δ

``fisher`` chooses how F is formed from one closure evaluation (the batch):

  "exact"      F = Jᵀ H_L J. J: Jacobian of the outputs w.r.t. θ; H_L: Hessian of the loss w.r.t.
               the outputs. For the losses that are negative log-likelihoods of exponential-family
               outputs (squared error ↔ Gaussian, softmax cross-entropy ↔ categorical) this is the
               Fisher of the model's predictive distribution (the Gauss-Newton matrix), exact.
               For linear least squares, lr = 1 and λ → 0, the step lands on the closed-form
               solution (tested).
  "empirical"  F = (1/B) Σᵢ gᵢ gᵢᵀ, gᵢ the per-example gradients (the "empirical Fisher"); the
               loss must be the batch mean of per-example losses.
  "kfac"       Kronecker-factored blocks, one per nn.Linear layer (needs ``model``): with āᵢ the
               layer input (plus a 1 for the bias) and δᵢₖ the output-side vectors obtained by
               back-propagating the columns uᵢₖ of H_L's per-example square root (Λᵢ = Σₖ uᵢₖuᵢₖᵀ),
                   F_layer ≈ A ⊗ G,   A = (1/B) Σᵢ āᵢāᵢᵀ,   G = Σᵢₖ δᵢₖδᵢₖᵀ,
                   δW̄ = (G + √λ I)⁻¹ ∇W̄ (A + √λ I)⁻¹       (factored Tikhonov damping)
               ("KFLR": the exact Gauss-Newton inside each factor, no sampling). Exact for one
               linear layer with a single output (tested against the closed form).

With ``fisher_decay`` > 0, F (or A and G) is a zero-debiased running average over steps.

Closure contract (as CurveBall's): the optimizer differentiates the closure itself, so the
closure must NOT call backward; it returns ``(loss, outputs)`` with ``outputs`` of shape
(B, ...) (batch first) and ``loss`` computed from that very tensor:

    def closure():
        outputs = model(x)
        return loss_fn(outputs, y), outputs

K-FAC keeps forward hooks on the model's nn.Linear layers for the optimizer's lifetime
(``remove_hooks()`` detaches them).

Cost: "exact" and "empirical" build J (B·m × n) and an n × n matrix and solve it (O(n³)); they
refuse n > ``max_params`` (default 4096). "kfac" costs two small matrix inverses per layer.
Deviations from the paper: the damping λ is fixed (no Levenberg–Marquardt adaptation) and K-FAC's
π-correction of the damping split is omitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from dlskills.optim._base import ZooOptimizer
from dlskills.optim._foreach import (
    check_nonnegative,
    check_positive,
    check_unit_interval,
    reject_sparse,
)
from dlskills.optim._registry import register_optimizer

_FISHERS = ("exact", "empirical", "kfac")


def _rows_of(outputs: Tensor, inputs: list[Tensor] | Tensor, retain: bool = True) -> Any:
    """d outputs.flatten()[r] / d inputs for every r, batched (one vmapped backward)."""
    count = outputs.numel()
    eye = torch.eye(count, dtype=outputs.dtype, device=outputs.device).view(count, *outputs.shape)
    return torch.autograd.grad(
        outputs,
        inputs,
        grad_outputs=eye,
        is_grads_batched=True,
        retain_graph=retain,
        allow_unused=True,
    )


def output_jacobian(outputs: Tensor, params: list[Tensor]) -> Tensor:
    """J, shape (outputs.numel(), n): every output's gradient w.r.t. the flattened params."""
    rows = _rows_of(outputs, params)
    return torch.cat(
        [
            torch.zeros(outputs.numel(), p.numel(), dtype=outputs.dtype, device=outputs.device)
            if r is None
            else r.reshape(outputs.numel(), -1)
            for p, r in zip(params, rows)
        ],
        dim=1,
    )


def output_hessian(loss: Tensor, outputs: Tensor) -> tuple[Tensor, Tensor]:
    """(∂L/∂outputs, ∂²L/∂outputs²) with the Hessian as a (numel, numel) matrix."""
    (loss_grad,) = torch.autograd.grad(loss, outputs, create_graph=True, retain_graph=True)
    if not loss_grad.requires_grad:  # loss linear in the outputs: H_L = 0
        zeros = torch.zeros(
            outputs.numel(), outputs.numel(), dtype=outputs.dtype, device=outputs.device
        )
        return loss_grad, zeros
    (rows,) = _rows_of(loss_grad, outputs)
    return loss_grad.detach(), rows.reshape(outputs.numel(), outputs.numel())


def exact_fisher(loss: Tensor, outputs: Tensor, params: list[Tensor]) -> Tensor:
    """F = Jᵀ H_L J over the flattened parameters."""
    jacobian = output_jacobian(outputs, params)
    _, loss_hessian = output_hessian(loss, outputs)
    return jacobian.T @ loss_hessian @ jacobian


def empirical_fisher(loss: Tensor, outputs: Tensor, params: list[Tensor]) -> Tensor:
    """F = (1/B) Σᵢ gᵢgᵢᵀ with gᵢ = B·J_iᵀ ∂L/∂outputs_i (loss = batch mean)."""
    batch = outputs.shape[0]
    jacobian = output_jacobian(outputs, params).view(batch, -1, sum(p.numel() for p in params))
    (loss_grad,) = torch.autograd.grad(loss, outputs, retain_graph=True)
    per_example = batch * torch.einsum("bm,bmn->bn", loss_grad.reshape(batch, -1), jacobian)
    return per_example.T @ per_example / batch


def _solve(matrix: Tensor, rhs: Tensor) -> Tensor:
    # LU solve, not lstsq: lstsq's result depends on memory alignment in the last bits, which
    # would break bit-identical resumption from a checkpoint
    # half-precision parameters solve in float32 (no half LU on CPU)
    work = torch.promote_types(rhs.dtype, torch.float32)
    try:
        return torch.linalg.solve(matrix.to(work), rhs.to(work)).to(rhs.dtype)
    except torch.linalg.LinAlgError as exc:
        raise ValueError("the damped Fisher is singular: use damping > 0") from exc


class _LinearRecorder:
    """Forward hooks on a model's nn.Linear layers recording (input, output) of the last call."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not self.layers:
            raise ValueError("fisher='kfac' needs a model with nn.Linear layers")
        self.records: dict[nn.Linear, tuple[Tensor, Tensor]] = {}
        self.handles = [layer.register_forward_hook(self._hook) for layer in self.layers]

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self.records[module] = (inputs[0], output)  # type: ignore[index]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@register_optimizer(
    "natural_gradient",
    catalog_id="cond-mat-9901212",
    aliases=("ngd", "kfac"),
    needs_closure=True,
    closure="graph",
    supports_foreach=False,
    elementwise=False,
    test_function="ill_conditioned_quadratic",
    test_kwargs={"lr": 0.5},
    test_steps=100,
    test_tolerance=1e-3,
)
class NaturalGradient(ZooOptimizer):
    """Damped natural gradient with an exact, empirical or Kronecker-factored Fisher.

    Args:
        params: tensors or param groups (groups may set their own ``lr``).
        lr: step multiplier (> 0).
        damping: λ ≥ 0 added to F (Tikhonov); for "kfac", √λ to each factor.
        fisher: "exact" (Jᵀ H_L J), "empirical" or "kfac".
        model: the nn.Module whose nn.Linear layers own every parameter (``fisher="kfac"``).
        fisher_decay: running-average decay of F (or A, G) in [0, 1); 0 uses this batch only.
        max_params: refuse "exact"/"empirical" above this many parameters (n² memory, n³ solve).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        damping: float = 1e-3,
        fisher: str = "exact",
        model: nn.Module | None = None,
        fisher_decay: float = 0.0,
        max_params: int = 4096,
    ) -> None:
        check_nonnegative("damping", damping)
        check_unit_interval("fisher_decay", fisher_decay)
        if fisher not in _FISHERS:
            raise ValueError(f"Invalid fisher: {fisher!r} (must be one of {', '.join(_FISHERS)})")
        super().__init__(params, {"lr": lr})
        self.damping, self.fisher, self.fisher_decay = damping, fisher, fisher_decay
        params_list = self.trainable()
        count = sum(p.numel() for p in params_list)
        if fisher == "kfac":
            if model is None:
                raise ValueError("fisher='kfac' needs model= (its nn.Linear layers are hooked)")
            self._recorder = _LinearRecorder(model)
            owned = {id(p) for layer in self._recorder.layers for p in layer.parameters()}
            if any(id(p) not in owned for p in params_list):
                self._recorder.remove()
                raise ValueError("fisher='kfac': every parameter must belong to an nn.Linear")
            optimized = {id(p) for p in params_list}
            self._layers = [
                layer
                for layer in self._recorder.layers
                if any(id(p) in optimized for p in layer.parameters())
            ]
        elif count > max_params:
            raise ValueError(
                f"fisher={fisher!r} stores an n×n matrix: {count} parameters exceed "
                f"max_params={max_params} (use fisher='kfac' or raise max_params)"
            )

    @staticmethod
    def _validate(group: dict[str, Any]) -> None:
        check_positive("lr", group["lr"])

    def remove_hooks(self) -> None:
        """Detach K-FAC's forward hooks from the model (the optimizer cannot step afterwards)."""
        recorder = getattr(self, "_recorder", None)
        if recorder is not None:
            recorder.remove()
            recorder.records.clear()

    def _average(self, state: dict[str, Any], key: str, value: Tensor) -> Tensor:
        """Zero-debiased running average of ``value`` stored under ``key`` (decay 0: value)."""
        decay = self.fisher_decay
        if decay == 0.0:
            return value
        if key not in state:
            state[key] = torch.zeros_like(value)
            state[key + "_count"] = 0
        state[key].mul_(decay).add_(value, alpha=1 - decay)
        state[key + "_count"] += 1
        return state[key] / (1 - decay ** state[key + "_count"])

    def step(self, closure: Callable[[], Any] | None = None) -> Tensor:
        if closure is None:
            raise ValueError("NaturalGradient.step needs a closure returning (loss, outputs)")
        params = self.trainable()
        with torch.enable_grad():
            result = closure()
            if not (isinstance(result, tuple | list) and len(result) == 2):
                raise ValueError("the closure must return (loss, outputs), without backward()")
            loss, outputs = result
            if not (isinstance(loss, Tensor) and loss.requires_grad):
                raise ValueError(
                    "the closure's loss has no graph: return it without calling backward()"
                )
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            reject_sparse("NaturalGradient", grads)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            if self.fisher == "kfac":
                directions = self._kfac_directions(loss, outputs, params, grads)
            else:
                directions = self._full_directions(loss, outputs, params, grads)
        with torch.no_grad():
            offset = 0
            for group in self.param_groups:
                for p in group["params"]:
                    if p.requires_grad:
                        p.sub_(directions[offset], alpha=group["lr"])
                        offset += 1
        return loss.detach()

    def _full_directions(
        self, loss: Tensor, outputs: Tensor, params: list[Tensor], grads: list[Tensor]
    ) -> list[Tensor]:
        build = exact_fisher if self.fisher == "exact" else empirical_fisher
        fisher = self._average(self.state[params[0]], "fisher", build(loss, outputs, params))
        flat_grad = torch.cat([g.reshape(-1) for g in grads])
        eye = torch.eye(len(flat_grad), dtype=fisher.dtype, device=fisher.device)
        damped = fisher + self.damping * eye
        flat = _solve(damped, flat_grad.unsqueeze(1)).squeeze(1)
        return [d.view_as(p) for d, p in zip(flat.split([p.numel() for p in params]), params)]

    def _kfac_directions(
        self, loss: Tensor, outputs: Tensor, params: list[Tensor], grads: list[Tensor]
    ) -> list[Tensor]:
        batch = outputs.shape[0]
        loss_grad, loss_hessian = output_hessian(loss, outputs)
        per_example = loss_grad.reshape(batch, -1).shape[1]
        blocks = loss_hessian.view(batch, per_example, batch, per_example)
        blocks = blocks[torch.arange(batch), :, torch.arange(batch), :]  # Λᵢ: (B, m, m)
        eigenvalues, eigenvectors = torch.linalg.eigh(blocks)
        roots = eigenvectors * eigenvalues.clamp(min=0).sqrt().unsqueeze(1)  # columns uᵢₖ
        cotangents = roots.permute(2, 0, 1).reshape(per_example, *outputs.shape)
        records = [self._recorder.records[layer] for layer in self._layers]
        backprop = torch.autograd.grad(
            outputs,
            [out for _, out in records],
            grad_outputs=cotangents,
            is_grads_batched=True,
            retain_graph=True,
        )
        gradient_of = {id(p): g for p, g in zip(params, grads)}
        directions = {}
        sqrt_damping = self.damping**0.5
        for layer, (inputs, _), deltas in zip(self._layers, records, backprop):
            activations = inputs.detach().reshape(-1, layer.in_features)
            if layer.bias is not None:
                activations = torch.cat([activations, torch.ones_like(activations[:, :1])], 1)
            deltas = deltas.reshape(-1, layer.out_features)
            state = self.state[layer.weight]
            a = self._average(state, "kfac_a", activations.T @ activations / batch)
            g = self._average(state, "kfac_g", deltas.T @ deltas)
            weight_grad = gradient_of.get(id(layer.weight), torch.zeros_like(layer.weight))
            if layer.bias is not None:
                bias_grad = gradient_of.get(id(layer.bias), torch.zeros_like(layer.bias))
                weight_grad = torch.cat([weight_grad, bias_grad.unsqueeze(1)], 1)
            eye_g = torch.eye(len(g), dtype=g.dtype, device=g.device)
            eye_a = torch.eye(len(a), dtype=a.dtype, device=a.device)
            left = _solve(g + sqrt_damping * eye_g, weight_grad)
            step = _solve((a + sqrt_damping * eye_a).T, left.T).T
            directions[id(layer.weight)] = step[:, : layer.in_features]
            if layer.bias is not None:
                directions[id(layer.bias)] = step[:, layer.in_features]
        return [directions[id(p)] for p in params]
