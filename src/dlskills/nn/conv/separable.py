"""Depthwise separable convolution and Network Decoupling (1808.05517, Guo et al., "Network
Decoupling: From Regular to Depthwise Separable Convolutions", BMVC 2018).

``DepthwiseSeparableConv2d``: a k×k depthwise conv (groups = C_in) followed by a 1×1 pointwise
conv, the MobileNet/Xception factorisation.

``decouple(conv, rank)``: training-free conversion of a regular conv W ∈ R^{O×C×k×k}. Each filter
W_o, reshaped to a C × k² matrix, has the SVD W_o = Σ_j σ_{o,j} u_{o,j} v_{o,j}ᵀ, so

    y_o = Σ_c W_o[c] ⋆ x_c = Σ_{j<r} (σ_{o,j} v_{o,j}) ⋆ (Σ_c u_{o,j}[c] x_c)

i.e. r paths of a pointwise conv (C → O, weights u_{·,j}) followed by a depthwise k×k conv
(kernel σ_{o,j} v_{o,j} for channel o), summed. It is exact at r = min(C, k²) and the truncation
error is the discarded singular values (Eckart–Young, per filter). As in the paper we put the
pointwise conv first ("PW+DW"); stride, padding and dilation belong to the depthwise part.

Implementation: the r paths are fused into two convs: one pointwise conv C → r·O, then one
grouped k×k conv r·O → O with groups = O (each group sums its r depthwise paths), which is the
same sum computed without a Python loop over paths.

``decouple_model(model, rank=… | energy=…, input_shape=…)`` replaces every eligible conv (2-D,
groups = 1, kernel > 1×1, zero padding, and fewer MACs after decoupling) and reports MACs and
parameters before and after. With ``energy`` the rank of each conv is the smallest one keeping
that fraction of Σ σ² over all its filters.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from dlskills.nn._counting import count_macs
from dlskills.nn._registry import register_layer


@register_layer(
    "depthwise_separable_conv2d",
    catalog_id="1808.05517",
    example=(dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), (3, 5, 5)),
)
class DepthwiseSeparableConv2d(nn.Module):
    """k×k depthwise conv (``depth_multiplier`` filters per input channel) then a 1×1 conv.

    Arguments follow ``nn.Conv2d``; ``bias`` applies to the pointwise conv (the depthwise conv
    has none, since a bias there is absorbed by the pointwise conv's bias).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        depth_multiplier: int = 1,
    ) -> None:
        super().__init__()
        for arg, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("depth_multiplier", depth_multiplier),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels * depth_multiplier,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
        )
        self.pointwise = nn.Conv2d(in_channels * depth_multiplier, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class DecoupledConv2d(nn.Module):
    """Sum of ``rank`` pointwise→depthwise paths that replaces a regular conv (see module doc).

    ``pointwise``: 1×1 conv C → rank·O (channel o·rank + j is path j of output o);
    ``depthwise``: k×k conv rank·O → O with groups = O, carrying stride/padding/dilation/bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        rank: int,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(rank, int) or rank <= 0:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        self.rank = rank
        self.pointwise = nn.Conv2d(in_channels, rank * out_channels, 1, bias=False)
        self.depthwise = nn.Conv2d(
            rank * out_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=out_channels,
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.pointwise(x))


def _filter_svd(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out_channels, in_channels = weight.shape[:2]
    matrices = weight.detach().double().reshape(out_channels, in_channels, -1)
    return torch.linalg.svd(matrices, full_matrices=False)


def full_rank(conv: nn.Conv2d) -> int:
    """The rank at which ``decouple`` is exact: min(C_in, k_h·k_w)."""
    return min(conv.in_channels, math.prod(conv.kernel_size))


def rank_for_energy(conv: nn.Conv2d, energy: float) -> int:
    """Smallest rank keeping at least ``energy`` of Σσ² over all filters of ``conv``."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy!r}")
    _, singular, _ = _filter_svd(conv.weight)
    kept = (singular**2).sum(0).cumsum(0)
    fraction = kept / kept[-1].clamp_min(torch.finfo(kept.dtype).tiny)
    return int((fraction < energy - 1e-12).sum().item()) + 1


def _check_eligible(conv: nn.Module) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    if conv.groups != 1:
        raise ValueError(f"conv must have groups=1 to be decoupled, got groups={conv.groups}")
    if conv.padding_mode != "zeros":
        raise ValueError(f"conv must use zero padding, got padding_mode={conv.padding_mode!r}")


def decouple(conv: nn.Conv2d, rank: int | None = None) -> DecoupledConv2d:
    """Training-free ``DecoupledConv2d`` equal to ``conv`` truncated to ``rank`` paths.

    ``rank=None`` uses the full rank min(C_in, k²), which reproduces ``conv`` exactly.
    """
    _check_eligible(conv)
    limit = full_rank(conv)
    rank = limit if rank is None else rank
    if not isinstance(rank, int) or not 1 <= rank <= limit:
        raise ValueError(f"rank must be an int in [1, {limit}] for this conv, got {rank!r}")
    out_channels, in_channels = conv.out_channels, conv.in_channels
    kernel_h, kernel_w = conv.kernel_size
    left, singular, right_t = _filter_svd(conv.weight)
    # left: (O, C, m), right_t: (O, m, k²); keep the first `rank` paths of every filter
    pointwise = left[:, :, :rank].transpose(1, 2).reshape(out_channels * rank, in_channels, 1, 1)
    depthwise = (singular[:, :rank, None] * right_t[:, :rank, :]).reshape(
        out_channels, rank, kernel_h, kernel_w
    )
    decoupled = DecoupledConv2d(
        in_channels,
        out_channels,
        conv.kernel_size,
        rank,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        decoupled.pointwise.weight.copy_(pointwise)
        decoupled.depthwise.weight.copy_(depthwise)
        if conv.bias is not None:
            decoupled.depthwise.bias.copy_(conv.bias)
    decoupled.train(conv.training)
    return decoupled


@dataclass(frozen=True)
class DecoupleReport:
    """What ``decouple_model`` did: per-conv ranks and whole-model counts before and after."""

    ranks: dict[str, int]
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int

    @property
    def mac_saving(self) -> float:
        """Fraction of multiply-accumulates removed (0.6 = 60 % fewer)."""
        return 1.0 - self.macs_after / self.macs_before

    @property
    def param_saving(self) -> float:
        return 1.0 - self.params_after / self.params_before


def _decoupled_macs(conv: nn.Conv2d, rank: int, in_hw: tuple[int, int], out_hw: int) -> int:
    return (
        rank
        * conv.out_channels
        * (conv.in_channels * in_hw[0] * in_hw[1] + math.prod(conv.kernel_size) * out_hw)
    )


def decouple_model(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    rank: int | None = None,
    energy: float | None = None,
    inplace: bool = False,
) -> tuple[nn.Module, DecoupleReport]:
    """Decouple every eligible ``nn.Conv2d`` of ``model``; give exactly one of rank/energy.

    A conv is eligible when it has groups = 1, a kernel larger than 1×1, zero padding, and the
    decoupled form needs fewer MACs on ``input_shape`` (one sample, no batch dimension). A fixed
    ``rank`` is capped at each conv's full rank. Returns the converted model (a deep copy unless
    ``inplace``) and a ``DecoupleReport``.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    if rank is not None and (not isinstance(rank, int) or rank <= 0):
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    target = model if inplace else copy.deepcopy(model)

    shapes: dict[str, tuple[tuple[int, int], int]] = {}
    hooks = [
        module.register_forward_hook(
            lambda mod, inputs, output, name=name: shapes.__setitem__(
                name, (tuple(inputs[0].shape[-2:]), output[0, 0].numel())
            )
        )
        for name, module in target.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        before = count_macs(target, input_shape)
    finally:
        for hook in hooks:
            hook.remove()

    ranks: dict[str, int] = {}
    for name, module in list(target.named_modules()):
        if not isinstance(module, nn.Conv2d) or name not in shapes:
            continue
        if module.groups != 1 or module.padding_mode != "zeros" or module.kernel_size == (1, 1):
            continue
        chosen = min(rank, full_rank(module)) if rank is not None else None
        if chosen is None:
            chosen = rank_for_energy(module, energy)
        in_hw, out_hw = shapes[name]
        regular_macs = module.out_channels * module.in_channels * math.prod(module.kernel_size)
        if _decoupled_macs(module, chosen, in_hw, out_hw) >= regular_macs * out_hw:
            continue
        parent_name, _, child_name = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        setattr(parent, child_name, decouple(module, chosen))
        ranks[name] = chosen
    after = count_macs(target, input_shape)
    report = DecoupleReport(
        ranks=ranks,
        macs_before=before.macs,
        macs_after=after.macs,
        params_before=before.params,
        params_after=after.params,
    )
    return target, report


__all__ = [
    "DecoupleReport",
    "DecoupledConv2d",
    "DepthwiseSeparableConv2d",
    "decouple",
    "decouple_model",
    "full_rank",
    "rank_for_energy",
]
