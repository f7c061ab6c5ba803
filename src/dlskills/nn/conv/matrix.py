"""Convolution as a matrix, and the transposed convolution as its transpose (catalog
1603.07285, section 4.1 of Dumoulin & Visin's guide; catalog "transposed-conv").

Flatten an input x of shape [C_in, H, W] row-major into a vector. A 2-D convolution (PyTorch's
cross-correlation) with weight w [C_out, C_in/g, kh, kw] is then a sparse matrix C of shape
(C_out·H_out·W_out) × (C_in·H·W)::

    C[(o, y, x), (c, y·s − p + i·d, x·s − p + j·d)] = w[o, c − g(o)·C_in/g, i, j]

for every output unit (o, y, x), tap (i, j) and input channel c of o's group g(o), whenever
the input position lies inside the image (positions in the zero padding have no column). Then

    conv2d(x) = C · vec(x)            and            conv_transpose2d(y) = Cᵀ · vec(y),

the second because the transposed convolution is, by definition, the map whose matrix is the
transpose of the convolution's (equivalently, the gradient of the convolution with respect to
its input). ``ConvTranspose2d`` stores exactly the same weight tensor, read as
[C_in of the transposed conv, C_out/g, kh, kw]. Cᵀ maps back to the convolution's input size
i; when several input sizes i give the same output size (stride > 1), PyTorch selects one with
``output_padding`` = a = (i + 2p − k̂) mod s (the guide's relationship 14).

These functions are for understanding and testing, not speed: C has C_out·H_out·W_out·(C_in/g)·kh·kw
stored entries at most.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlskills.nn.conv.arith import conv_out, conv_transpose_out
from dlskills.nn.functional import _pair

__all__ = ["conv2d_as_matrix", "conv_matrix", "conv_transpose2d_as_matrix"]


def _check_weight(weight: Tensor, groups: int) -> None:
    if not isinstance(weight, Tensor) or weight.dim() != 4:
        raise ValueError("weight must be a 4-D tensor [C_out, C_in / groups, kh, kw]")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if weight.shape[0] % groups:
        raise ValueError(f"weight.shape[0]={weight.shape[0]} must be divisible by groups={groups}")


def _per_axis(stride, padding, dilation) -> tuple[tuple[int, int], ...]:
    return _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)


def conv_matrix(
    weight: Tensor,
    input_size: tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """The sparse (COO) matrix C of ``conv2d(·, weight, stride, padding, dilation, groups)`` on
    inputs of spatial size ``input_size``; shape (C_out·H_out·W_out, C_in·H·W).

    ``C.to_dense()`` shows the guide's picture (e.g. its 4 × 16 matrix for a 3 × 3 kernel on
    a 4 × 4 input). The values are ``weight``'s entries (differentiable).
    """
    _check_weight(weight, groups)
    height, width = _pair(input_size, "input_size", 1)
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = _per_axis(stride, padding, dilation)
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    in_channels = group_in * groups
    out_h = conv_out(height, kernel_h, stride_h, pad_h, dil_h)
    out_w = conv_out(width, kernel_w, stride_w, pad_w, dil_w)
    device = weight.device

    # One candidate entry per (o, y, x, c_local, i, j), broadcast over six axes.
    o = torch.arange(out_channels, device=device).view(-1, 1, 1, 1, 1, 1)
    y = torch.arange(out_h, device=device).view(1, -1, 1, 1, 1, 1)
    x = torch.arange(out_w, device=device).view(1, 1, -1, 1, 1, 1)
    c_local = torch.arange(group_in, device=device).view(1, 1, 1, -1, 1, 1)
    i = torch.arange(kernel_h, device=device).view(1, 1, 1, 1, -1, 1)
    j = torch.arange(kernel_w, device=device).view(1, 1, 1, 1, 1, -1)
    channel = (o // (out_channels // groups)) * group_in + c_local
    in_y = y * stride_h - pad_h + i * dil_h
    in_x = x * stride_w - pad_w + j * dil_w
    shape = (out_channels, out_h, out_w, group_in, kernel_h, kernel_w)
    row = ((o * out_h + y) * out_w + x).expand(shape)
    col = (channel * height + in_y) * width + in_x
    inside = ((in_y >= 0) & (in_y < height) & (in_x >= 0) & (in_x < width)).expand(shape)
    values = weight.view(out_channels, 1, 1, group_in, kernel_h, kernel_w).expand(shape)
    indices = torch.stack((row[inside], col.expand(shape)[inside]))
    size = (out_channels * out_h * out_w, in_channels * height * width)
    # entries are generated in (row, column) order without repeats, hence already coalesced
    return torch.sparse_coo_tensor(
        indices, values[inside], size, is_coalesced=True, check_invariants=True
    )


def conv2d_as_matrix(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """``F.conv2d`` computed as C · vec(x) for each sample of ``input`` [B, C_in, H, W]."""
    if not isinstance(input, Tensor) or input.dim() != 4:
        raise ValueError("input must be a 4-D tensor [B, C_in, H, W]")
    _check_weight(weight, groups)
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"input has {input.shape[1]} channels; weight expects "
            f"{weight.shape[1]} × groups = {weight.shape[1] * groups}"
        )
    matrix = conv_matrix(weight, tuple(input.shape[-2:]), stride, padding, dilation, groups)
    out = torch.sparse.mm(matrix, input.flatten(1).t()).t()
    axes = zip(input.shape[2:], weight.shape[2:], *_per_axis(stride, padding, dilation))
    out = out.reshape(*input.shape[:1], weight.shape[0], *(conv_out(*a) for a in axes))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def conv_transpose2d_as_matrix(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """``F.conv_transpose2d`` (same argument order) computed as Cᵀ · vec(y), where C is the
    matrix of the convolution with the same ``weight`` whose output has ``input``'s size."""
    if not isinstance(input, Tensor) or input.dim() != 4:
        raise ValueError("input must be a 4-D tensor [B, C_in, H, W]")
    _check_weight(weight, groups)
    if input.shape[1] != weight.shape[0]:
        raise ValueError(
            f"input has {input.shape[1]} channels; a transposed-conv weight "
            f"[C_in, C_out / groups, kh, kw] expects weight.shape[0] = {weight.shape[0]}"
        )
    strides, paddings, dilations = _per_axis(stride, padding, dilation)
    out_h, out_w = (
        conv_transpose_out(*args)
        for args in zip(
            input.shape[2:],
            weight.shape[2:],
            strides,
            paddings,
            _pair(output_padding, "output_padding", 0),
            dilations,
        )
    )
    matrix = conv_matrix(weight, (out_h, out_w), stride, padding, dilation, groups)
    if matrix.shape[0] != input[0].numel():
        raise ValueError(
            f"output_padding {output_padding!r} is not smaller than the stride: the convolution "
            f"of an {(out_h, out_w)} input does not give the input size {tuple(input.shape[2:])}"
        )
    out = torch.sparse.mm(matrix.t(), input.flatten(1).t()).t()
    out = out.reshape(input.shape[0], weight.shape[1] * groups, out_h, out_w)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
