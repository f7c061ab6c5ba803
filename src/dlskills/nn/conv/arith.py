"""Convolution arithmetic (catalog 1603.07285: Dumoulin & Visin, "A guide to convolution
arithmetic for deep learning", 2016): output sizes of convolution, pooling, transposed and
dilated convolution along one spatial axis, padding helpers, the receptive field of a stack,
and the direct convolution equivalent to a transposed one.

Notation: input size i, kernel k, stride s, zero padding p, dilation d, output size o; the
dilated (effective) kernel is k̂ = k + (k − 1)(d − 1). The guide's relationships:

    R1  no padding, unit stride          o = (i − k) + 1
    R2  zero padding, unit stride        o = (i − k) + 2p + 1
    R3  half (same) padding, odd k       p = ⌊k/2⌋, s = 1:  o = i
    R4  full padding                     p = k − 1, s = 1:  o = i + k − 1
    R5  no padding, stride s             o = ⌊(i − k)/s⌋ + 1
    R6  zero padding, stride s           o = ⌊(i + 2p − k)/s⌋ + 1
    R7  pooling                          o = ⌊(i − k)/s⌋ + 1
    R8  transposed of R1                 k' = k, s' = 1, p' = k − 1:  o' = i' + (k − 1)
    R9  transposed of R2                 p' = k − p − 1:  o' = i' + (k − 1) − 2p
    R10 transposed of R3                 o' = i'
    R11 transposed of R4                 p' = 0:  o' = i' − (k − 1)
    R12 transposed of R5, (i − k) mod s = 0
                                         input stretched by s − 1 zeros between units,
                                         p' = k − 1:  o' = s(i' − 1) + k
    R13 transposed of R6, (i + 2p − k) mod s = 0
                                         stretched input, p' = k − p − 1:  o' = s(i' − 1) + k − 2p
    R14 transposed of R6, general        a = (i + 2p − k) mod s extra zeros at the bottom/right
                                         of the stretched input:  o' = s(i' − 1) + a + k − 2p
    R15 dilated convolution              o = ⌊(i + 2p − k − (k − 1)(d − 1))/s⌋ + 1

PyTorch's shapes are these relationships with k replaced by k̂ (the guide states dilation only
for R15); ``ConvTranspose`` takes the ``a`` term as ``output_padding`` and requires
``output_padding < max(s, d)``. Pooling follows PyTorch rather than the guide where they
differ: the stride defaults to k, padding may be at most ⌊k/2⌋, and with ``ceil_mode`` the
division rounds up unless the last window would start in the right padding.

The receptive field of a stack uses the standard recursion (jump j, size r, centre of the first
unit ``start``, in input-pixel coordinates where pixel u has centre u):
``j_l = j_{l−1}·s_l``, ``r_l = r_{l−1} + (k̂_l − 1)·j_{l−1}``,
``start_l = start_{l−1} + ((k̂_l − 1)/2 − p_l)·j_{l−1}``.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Layer",
    "ReceptiveField",
    "Relationship",
    "TransposedEquivalent",
    "conv_out",
    "conv_transpose_out",
    "effective_kernel",
    "full_padding",
    "pool_out",
    "receptive_field",
    "relationship",
    "same_padding",
    "transposed_equivalent",
]


def _check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int (any integer type, e.g. numpy's, but not bool), at least ``minimum``."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {kind} (>= {minimum}), got {value}")
    return value


def effective_kernel(k: int, d: int = 1) -> int:
    """The dilated kernel size k̂ = k + (k − 1)(d − 1) = d(k − 1) + 1."""
    k = _check_int("kernel size k", k, 1)
    d = _check_int("dilation d", d, 1)
    return d * (k - 1) + 1


def _check_fits(i: int, k_hat: int, p: int) -> None:
    if k_hat > i + 2 * p:
        raise ValueError(
            f"kernel (effective size {k_hat}) is larger than the padded input "
            f"(i + 2p = {i + 2 * p}): no output position fits"
        )


def conv_out(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Convolution output size o = ⌊(i + 2p − k̂)/s⌋ + 1 (R1–R6, R15), as ``nn.Conv*d``."""
    i = _check_int("input size i", i, 1)
    s = _check_int("stride s", s, 1)
    p = _check_int("padding p", p, 0)
    k_hat = effective_kernel(k, d)
    _check_fits(i, k_hat, p)
    return (i + 2 * p - k_hat) // s + 1


def pool_out(
    i: int, k: int, s: int | None = None, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> int:
    """Pooling output size (R7) with PyTorch's rules (``nn.MaxPool*d``/``nn.AvgPool*d``).

    ``s`` defaults to ``k``; ``p`` must not exceed ``k // 2``; with ``ceil_mode`` the division
    rounds up, except that the last window must start inside the input or the left padding;
    as in PyTorch, that last window may then reach past the right padding.
    """
    i = _check_int("input size i", i, 1)
    k = _check_int("kernel size k", k, 1)
    s = k if s is None else _check_int("stride s", s, 1)
    p = _check_int("padding p", p, 0)
    k_hat = effective_kernel(k, d)
    if p > k // 2:
        raise ValueError(
            f"padding p must be at most half the kernel size (k // 2 = {k // 2}), got {p}"
        )
    span = i + 2 * p - k_hat
    if not ceil_mode:
        _check_fits(i, k_hat, p)
        return span // s + 1
    o = -(-span // s) + 1
    if (o - 1) * s >= i + p:  # the last window would start in the right padding
        o -= 1
    if o < 1:
        raise ValueError(
            f"kernel (effective size {k_hat}) leaves no output position on the padded input "
            f"(i + 2p = {i + 2 * p})"
        )
    return o


def conv_transpose_out(
    i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0, d: int = 1
) -> int:
    """Transposed convolution output size o' = s(i − 1) + a + k̂ − 2p (R8–R14 with a =
    ``output_padding``), as ``nn.ConvTranspose*d``."""
    i = _check_int("input size i", i, 1)
    s = _check_int("stride s", s, 1)
    p = _check_int("padding p", p, 0)
    output_padding = _check_int("output_padding", output_padding, 0)
    k_hat = effective_kernel(k, d)
    if output_padding >= max(s, d):
        raise ValueError(
            f"output_padding ({output_padding}) must be smaller than the stride ({s}) or the "
            f"dilation ({d})"
        )
    o = s * (i - 1) + output_padding + k_hat - 2 * p
    if o < 1:
        raise ValueError(f"padding p={p} removes the whole output: s(i − 1) + a + k̂ − 2p = {o} < 1")
    return o


def same_padding(k: int, d: int = 1) -> int:
    """Half ("same") padding p = ⌊k̂/2⌋, which keeps o = i at unit stride (R3); needs odd k̂."""
    k_hat = effective_kernel(k, d)
    if k_hat % 2 == 0:
        raise ValueError(
            f"half (same) padding needs an odd effective kernel size, got k̂ = {k_hat}: "
            "symmetric zero padding cannot keep the size"
        )
    return k_hat // 2


def full_padding(k: int, d: int = 1) -> int:
    """Full padding p = k̂ − 1: every partial overlap of kernel and input counts (R4)."""
    return effective_kernel(k, d) - 1


@dataclass(frozen=True)
class Relationship:
    """Which of the guide's relationships gives an output size, and the size it gives."""

    number: int
    name: str
    formula: str
    output: int


_DIRECT = {
    1: ("no zero padding, unit strides", "o = (i - k) + 1"),
    2: ("zero padding, unit strides", "o = (i - k) + 2p + 1"),
    3: ("half (same) padding, unit strides", "o = i"),
    4: ("full padding, unit strides", "o = i + (k - 1)"),
    5: ("no zero padding, non-unit strides", "o = floor((i - k) / s) + 1"),
    6: ("zero padding, non-unit strides", "o = floor((i + 2p - k) / s) + 1"),
    15: ("dilated convolution", "o = floor((i + 2p - k - (k - 1)(d - 1)) / s) + 1"),
}
_TRANSPOSED = {
    8: ("transposed: no zero padding, unit strides", "o' = i' + (k - 1)"),
    9: ("transposed: zero padding, unit strides", "o' = i' + (k - 1) - 2p"),
    10: ("transposed: half (same) padding, unit strides", "o' = i'"),
    11: ("transposed: full padding, unit strides", "o' = i' - (k - 1)"),
    12: ("transposed: no zero padding, non-unit strides", "o' = s(i' - 1) + k"),
    13: ("transposed: zero padding, non-unit strides", "o' = s(i' - 1) + k - 2p"),
    14: (
        "transposed: zero padding, non-unit strides, a = (i + 2p - k) mod s",
        "o' = s(i' - 1) + a + k - 2p",
    ),
}


def _direct_number(k: int, s: int, p: int, d: int) -> int:
    if d > 1:
        return 15
    if s > 1:
        return 5 if p == 0 else 6
    if p == 0:
        return 1
    if k % 2 == 1 and p == k // 2:
        return 3
    if p == k - 1:
        return 4
    return 2


def relationship(
    i: int, k: int, s: int = 1, p: int = 0, d: int = 1, *, transposed: bool = False
) -> Relationship:
    """The guide's relationship (R1–R6, R15; R8–R14 with ``transposed``) for a convolution.

    For ``transposed=True``, (i, k, s, p) describe the *direct* convolution whose transpose is
    meant (as in the guide): the transposed convolution's input is i' = conv_out(i, k, s, p)
    and its output o' is i again, through the ``a`` term. Dilated transposed convolutions are
    reported with k̂ in place of k (the guide does not treat them).
    """
    if not transposed:
        number = _direct_number(k, s, p, d)
        name, formula = _DIRECT[number]
        return Relationship(number, name, formula, conv_out(i, k, s, p, d))
    equivalent = transposed_equivalent(i, k, s, p, d)
    direct = _direct_number(effective_kernel(k, d), s, p, 1)
    if s == 1:
        number = {1: 8, 2: 9, 3: 10, 4: 11}[direct]
    elif equivalent.a == 0:
        number = 12 if p == 0 else 13
    else:
        number = 14
    name, formula = _TRANSPOSED[number]
    return Relationship(number, name, formula, equivalent.output_size)


@dataclass(frozen=True)
class TransposedEquivalent:
    """The direct convolution equivalent to the transpose of conv(i, k, s, p, d).

    The transposed convolution reads ``input_size`` (i' = the direct conv's output) units; the
    equivalent direct convolution reads them stretched (``stride − 1`` zeros between units,
    ``stretched_size`` units), with ``a`` extra zeros on the bottom/right edge, pads
    ``padding`` (p' = k̂ − p − 1) zeros on each side, and has stride 1 and the same kernel.
    ``output_padding`` (= a) is what ``nn.ConvTranspose`` needs to recover ``output_size`` = i.
    """

    input_size: int
    stretched_size: int
    kernel: int
    stride: int
    padding: int
    a: int
    dilation: int
    output_size: int

    @property
    def output_padding(self) -> int:
        return self.a


def transposed_equivalent(
    i: int, k: int, s: int = 1, p: int = 0, d: int = 1
) -> TransposedEquivalent:
    """The guide's direct-convolution form of the transpose of conv(i, k, s, p, d) (R8–R14).

    k' = k, s' = 1, p' = k̂ − p − 1, the input stretched by s − 1 zeros between units and
    a = (i + 2p − k̂) mod s zeros added at the bottom/right; its output size is i.
    """
    o = conv_out(i, k, s, p, d)  # validates the arguments
    i, k, s, p, d = (operator.index(v) for v in (i, k, s, p, d))
    k_hat = effective_kernel(k, d)
    a = (i + 2 * p - k_hat) % s
    stretched = o + (o - 1) * (s - 1)
    padding = k_hat - p - 1
    if padding < 0:
        raise ValueError(
            f"padding p={p} exceeds k̂ − 1 = {k_hat - 1}: the equivalent direct convolution "
            "would need negative padding (cropping)"
        )
    output = stretched + a + 2 * padding - k_hat + 1
    return TransposedEquivalent(
        input_size=o,
        stretched_size=stretched,
        kernel=k,
        stride=1,
        padding=padding,
        a=a,
        dilation=d,
        output_size=output,
    )


@dataclass(frozen=True)
class Layer:
    """One layer of a stack along one axis: kernel, stride, padding, dilation."""

    k: int
    s: int = 1
    p: int = 0
    d: int = 1


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one unit of the last layer, in input pixels.

    ``size``: pixels (along the axis) that can affect one unit; ``jump``: distance in input
    pixels between neighbouring units; ``start``: centre of the first unit's field (input
    pixel u has centre u, so a negative start lies in the padding).
    """

    size: int
    jump: int
    start: float


def _as_layer(spec: Any) -> Layer:
    """A Layer from a Layer, a (k, s, p, d) prefix tuple, a mapping, or a conv/pool module."""
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, Mapping):
        return Layer(**{key: spec[key] for key in ("k", "s", "p", "d") if key in spec})
    if isinstance(spec, tuple | list):
        return Layer(*spec)
    if hasattr(spec, "kernel_size"):

        def first(value: Any) -> int:
            return value[0] if isinstance(value, tuple | list) else value

        stride = getattr(spec, "stride", None)
        return Layer(
            first(spec.kernel_size),
            first(stride) if stride is not None else first(spec.kernel_size),
            first(getattr(spec, "padding", 0)),
            first(getattr(spec, "dilation", 1)),
        )
    raise TypeError(
        "each layer must be a Layer, a (k, s, p, d) tuple, a mapping with keys k/s/p/d, or a "
        f"module with kernel_size/stride/padding/dilation; got {type(spec).__name__}"
    )


def receptive_field(layers: Iterable[Any]) -> ReceptiveField:
    """Receptive field (size, jump, start) of a stack of convolution/pooling layers.

    Modules (``nn.Conv2d``, ``nn.MaxPool2d``, …) contribute their first spatial axis; string
    paddings such as ``"same"`` are not supported (give the integer padding).
    """
    size, jump, start = 1, 1, 0.0
    for index, spec in enumerate(layers):
        layer = _as_layer(spec)
        try:
            k_hat = effective_kernel(layer.k, layer.d)
            stride = _check_int("stride s", layer.s, 1)
            padding = _check_int("padding p", layer.p, 0)
        except (TypeError, ValueError) as error:
            raise type(error)(f"layer {index}: {error}") from None
        size += (k_hat - 1) * jump
        start += ((k_hat - 1) / 2 - padding) * jump
        jump *= stride
    return ReceptiveField(size=size, jump=jump, start=start)
