"""Memorized sparse backpropagation (catalog 1905.10194: Zhang, Yang, Ren, Su & Sun, "Memorized
Sparse Backpropagation", 2019, Neurocomputing 2020), built on meProp's top-k sparse backward
(Sun, Ren, Ma & Wang, ICML 2017).

A weighted layer y = W ⋆ x + b (Linear: ⋆ = matrix product; Conv2d: convolution) receives the
output gradient G = ∂L/∂y, of shape (N, n, …) with n output units/channels. Sparse backprop
propagates only k of the n units; memorized sparse backprop (MSBP) keeps the part it did not
propagate in a memory M (same shape as G, zero at the start) and adds it back at the next step:

    G' = G + M                                   (the gradient with the memory released)
    s_j = Σ_{i, positions} |G'_{i,j,…}|          (score of unit j over the mini-batch)
    S  = top-k_j(s)                              (one set of k units for the whole batch)
    ∂L/∂W_S = G'_Sᵀ ⋆ x,   ∂L/∂b_S = Σ G'_S,   ∂L/∂W_{¬S} = 0,   ∂L/∂b_{¬S} = 0
    ∂L/∂x   = W_Sᵀ ⋆ G'_S                        (only the k selected units reach the input)
    M ← α · G'_{¬S}                              (memory ratio α; α = 0 is plain sparse backprop)

Both weight-gradient and input-gradient products run on k of the n units, so the backward
multiply-adds fall by n / k (the layer's forward and the O(N·n) scoring are unchanged).
``k ≥ n`` is ordinary backprop, computed by the same calls autograd makes (bit-identical).
The counters of :class:`BackpropMemory` record the multiply-adds each backward did and would
have done dense.

Deviations: (1) the selection is shared by the mini-batch (meProp's "unified" top-k, which its
authors use for mini-batch speed-ups) so that W_S and G'_S are dense slices: the saving is real
wall time, not masked zeros. (2) The memory is kept per position of the batch (the shape of G);
a batch of another shape (e.g. the last, smaller one) starts from an empty memory. (3) The sparse
backward runs in training mode only; in eval mode the layers are plain Linear/Conv2d.
(4) Conv2d with ``groups == 1`` only (a group couples output channels to input slices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._registry import register_layer


@dataclass
class BackpropMemory:
    """MSBP state of one layer: the unpropagated gradient and multiply-add counters."""

    alpha: float = 0.0
    memory: torch.Tensor | None = field(default=None, repr=False)
    backward_macs: int = 0
    dense_backward_macs: int = 0

    def release(self, grad: torch.Tensor) -> torch.Tensor:
        """G' = G + M (M = 0 when empty or of another shape)."""
        if self.memory is None or self.memory.shape != grad.shape:
            return grad
        return grad + self.memory

    def keep(self, released: torch.Tensor, selected: torch.Tensor) -> None:
        """M ← α · G' with the selected units (dim 1) zeroed."""
        if self.alpha == 0.0:
            self.memory = None
            return
        rest = released.detach().clone()
        rest.index_fill_(1, selected, 0.0)
        self.memory = rest.mul_(self.alpha)

    def count(self, macs: int, dense_macs: int) -> None:
        self.backward_macs += int(macs)
        self.dense_backward_macs += int(dense_macs)

    def reset_counters(self) -> None:
        self.backward_macs = self.dense_backward_macs = 0


def _select(released: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (ascending) of the k units of dim 1 with the largest summed |G'|."""
    dims = [d for d in range(released.dim()) if d != 1]
    scores = released.abs().sum(dim=dims)
    return torch.topk(scores, k, sorted=False).indices.sort().values


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, k, state):
        ctx.save_for_backward(x, weight)
        ctx.k, ctx.state, ctx.has_bias = k, state, bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        state: BackpropMemory = ctx.state
        n, m = weight.shape
        x2, g2 = x.reshape(-1, m), grad.reshape(-1, n)
        need_x = ctx.needs_input_grad[0]
        rows = g2.shape[0]
        dense = rows * n * m * (1 + need_x)
        grad_x = grad_w = grad_b = None
        if ctx.k >= n:
            state.count(dense, dense)
            if need_x:
                grad_x = g2.mm(weight).reshape(x.shape)
            grad_w = g2.t().mm(x2)
            grad_b = g2.sum(0) if ctx.has_bias else None
            return grad_x, grad_w, grad_b, None, None
        released = state.release(g2)
        selected = _select(released, ctx.k)
        g_sel = released.index_select(1, selected)
        state.keep(released, selected)
        state.count(rows * ctx.k * m * (1 + need_x), dense)
        if need_x:
            grad_x = g_sel.mm(weight.index_select(0, selected)).reshape(x.shape)
        grad_w = weight.new_zeros(n, m).index_copy_(0, selected, g_sel.t().mm(x2))
        if ctx.has_bias:
            grad_b = weight.new_zeros(n).index_copy_(0, selected, g_sel.sum(0))
        return grad_x, grad_w, grad_b, None, None


class _SparseConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, k, state, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.k, ctx.state, ctx.has_bias = k, state, bias is not None
        ctx.conv = (stride, padding, dilation)
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        state: BackpropMemory = ctx.state
        stride, padding, dilation = ctx.conv
        need_x = ctx.needs_input_grad[0]
        n = weight.shape[0]
        per_unit = grad[:, :1].numel() * weight[0].numel()  # MACs of one output channel
        dense = n * per_unit * (1 + need_x)

        def backward_of(g, w):
            return torch.ops.aten.convolution_backward(
                g,
                x,
                w,
                [w.shape[0]] if ctx.has_bias else None,
                stride,
                padding,
                dilation,
                False,
                [0, 0],
                1,
                [need_x, True, ctx.has_bias],
            )

        if ctx.k >= n:
            state.count(dense, dense)
            grad_x, grad_w, grad_b = backward_of(grad, weight)
            return grad_x, grad_w, grad_b, None, None, None, None, None
        released = state.release(grad)
        selected = _select(released, ctx.k)
        g_sel = released.index_select(1, selected).contiguous()
        state.keep(released, selected)
        state.count(ctx.k * per_unit * (1 + need_x), dense)
        grad_x, w_sel, b_sel = backward_of(g_sel, weight.index_select(0, selected))
        grad_w = torch.zeros_like(weight).index_copy_(0, selected, w_sel)
        grad_b = weight.new_zeros(n).index_copy_(0, selected, b_sel) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _units(ratio: float, n: int) -> int:
    """k = max(1, round(ratio · n)) units of n."""
    return max(1, min(n, round(ratio * n)))


def _check(ratio: float, alpha: float) -> tuple[float, float]:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(ratio), float(alpha)


@register_layer(
    "msbp_linear",
    catalog_id="1905.10194",
    aliases=("sparse_backprop_linear",),
    example=(dict(in_features=6, out_features=8, ratio=0.25, alpha=0.8), (6,)),
)
class SparseBackpropLinear(nn.Linear):
    """``nn.Linear`` whose training-mode backward propagates the top ``ratio`` of its output
    units, with memory ratio ``alpha`` (MSBP; ``alpha = 0``: sparse backprop, ``ratio = 1``:
    dense)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        ratio: float = 0.04,
        alpha: float = 0.8,
        device=None,
        dtype=None,
    ) -> None:
        ratio, alpha = _check(ratio, alpha)
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.ratio, self.k = ratio, _units(ratio, out_features)
        self.backprop_memory = BackpropMemory(alpha)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not torch.is_grad_enabled():
            return F.linear(input, self.weight, self.bias)
        return _SparseLinear.apply(input, self.weight, self.bias, self.k, self.backprop_memory)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k}, alpha={self.backprop_memory.alpha}"


@register_layer(
    "msbp_conv2d",
    catalog_id="1905.10194",
    aliases=("sparse_backprop_conv2d",),
    example=(dict(in_channels=2, out_channels=4, kernel_size=3, ratio=0.5, alpha=0.8), (2, 5, 5)),
)
class SparseBackpropConv2d(nn.Conv2d):
    """``nn.Conv2d`` (groups = 1, zero padding) whose training-mode backward propagates the top
    ``ratio`` of its output channels, with memory ratio ``alpha``."""

    def __init__(self, *args, ratio: float = 0.04, alpha: float = 0.8, **kwargs) -> None:
        ratio, alpha = _check(ratio, alpha)
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError(f"groups must be 1 for sparse backprop, got {self.groups}")
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("padding must be numeric zero padding for sparse backprop")
        self.ratio, self.k = ratio, _units(ratio, self.out_channels)
        self.backprop_memory = BackpropMemory(alpha)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not torch.is_grad_enabled():
            return super().forward(input)
        return _SparseConv2d.apply(
            input,
            self.weight,
            self.bias,
            self.k,
            self.backprop_memory,
            self.stride,
            self.padding,
            self.dilation,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k}, alpha={self.backprop_memory.alpha}"


def sparsify_backprop(
    model: nn.Module, ratio: float = 0.04, alpha: float = 0.8, *, skip: tuple[str, ...] = ()
) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` and ``nn.Conv2d`` (groups = 1, zero padding) of
    ``model`` whose qualified name is not in ``skip`` by its MSBP twin with the same weights;
    returns ``model``."""
    ratio, alpha = _check(ratio, alpha)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            qualified = f"{name}.{child_name}" if name else child_name
            if qualified in skip or isinstance(child, SparseBackpropLinear | SparseBackpropConv2d):
                continue
            if type(child) is nn.Linear:
                twin = SparseBackpropLinear(
                    child.in_features, child.out_features, child.bias is not None, ratio, alpha
                )
            elif (
                type(child) is nn.Conv2d
                and child.groups == 1
                and child.padding_mode == "zeros"
                and not isinstance(child.padding, str)
            ):
                twin = SparseBackpropConv2d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    bias=child.bias is not None,
                    ratio=ratio,
                    alpha=alpha,
                )
            else:
                continue
            twin.load_state_dict(child.state_dict())
            setattr(module, child_name, twin.to(child.weight.device, child.weight.dtype))
    return model


def backprop_memories(model: nn.Module) -> list[BackpropMemory]:
    """The MSBP states of ``model``'s sparse-backprop layers, in module order."""
    return [
        m.backprop_memory
        for m in model.modules()
        if isinstance(m, SparseBackpropLinear | SparseBackpropConv2d)
    ]


def backward_mac_saving(model: nn.Module) -> float:
    """Dense backward multiply-adds / performed ones, summed over the sparse layers so far."""
    memories = backprop_memories(model)
    done = sum(m.backward_macs for m in memories)
    return math.inf if done == 0 else sum(m.dense_backward_macs for m in memories) / done


__all__ = [
    "BackpropMemory",
    "SparseBackpropConv2d",
    "SparseBackpropLinear",
    "backprop_memories",
    "backward_mac_saving",
    "sparsify_backprop",
]
