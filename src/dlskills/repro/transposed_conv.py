"""Reproduction of catalog transposed-conv (the seed's empty section 2.1.2), following Dumoulin &
Visin's guide (1603.07285, Sec. 4.1): the transposed convolution is the transpose of the
convolution's sparse matrix C.

Claim: with x flattened, conv2d(x) = C·vec(x), and the transposed convolution with the same
weight is Cᵀ·vec(y) — equivalently the gradient of the convolution with respect to its input.

Measured (``dlskills.nn.conv.matrix``) in float64 on random 2-D configurations per seed
(channels 1–6 with groups, kernels 1–4 per axis, stride 1–3, padding 0–2, dilation 1–2, every
allowed output_padding, inputs up to 9×9): the largest relative error of
- C·vec(x) against ``nn.Conv2d``,
- Cᵀ·vec(y) against ``nn.ConvTranspose2d`` (with its output_padding, the guide's ``a``),
- Cᵀ·vec(y) against autograd's input gradient of ``F.conv2d``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from dlskills.nn.conv.arith import conv_out
from dlskills.nn.conv.matrix import conv2d_as_matrix, conv_transpose2d_as_matrix
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "transposed-conv"
CLAIM = Claim(
    text="Convolution is a sparse matrix C acting on the flattened input; the transposed "
    "convolution is C transposed (the backward pass of the convolution), which is what "
    "nn.ConvTranspose2d computes.",
    value="equal up to rounding",
    source="guide 1603.07285, Sec. 4.1",
)
TOLERANCE = 1e-12  # float64 rounding of sums of ≤ 6·4·4 products


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp_min(1e-300)).item()


def _draw(generator: torch.Generator) -> dict:
    """A random valid configuration (redrawn until the kernel fits the padded input)."""

    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=generator))

    while True:
        groups = pick(1, 3)
        c_in, c_out = groups * pick(1, 2), groups * pick(1, 2)
        kernel, stride = (pick(1, 4), pick(1, 4)), (pick(1, 3), pick(1, 3))
        padding, dilation = (pick(0, 2), pick(0, 2)), (pick(1, 2), pick(1, 2))
        size = (pick(3, 9), pick(3, 9))
        try:
            out = [conv_out(*axis) for axis in zip(size, kernel, stride, padding, dilation)]
        except ValueError:
            continue
        return dict(
            c_in=c_in,
            c_out=c_out,
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            size=size,
            out=out,
        )


def _errors(seed: int, configs: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    worst = {"conv": 0.0, "transposed": 0.0, "gradient": 0.0}
    for _ in range(configs):
        c = _draw(generator)
        conv_args = (c["stride"], c["padding"], c["dilation"], c["groups"])
        weight = torch.randn(
            c["c_out"],
            c["c_in"] // c["groups"],
            *c["kernel"],
            generator=generator,
            dtype=torch.float64,
        )
        bias = torch.randn(c["c_out"], generator=generator, dtype=torch.float64)
        x = torch.randn(2, c["c_in"], *c["size"], generator=generator, dtype=torch.float64)
        want = F.conv2d(x, weight, bias, *conv_args)
        worst["conv"] = max(
            worst["conv"], _relative(conv2d_as_matrix(x, weight, bias, *conv_args), want)
        )
        # the transposed conv of the same weight maps the conv's output size back to its input
        # size; the guide's a = (i + 2p − k̂) mod s picks which of the sizes that share it
        y = torch.randn(2, c["c_out"], *c["out"], generator=generator, dtype=torch.float64)
        k_hat = [d * (k - 1) + 1 for k, d in zip(c["kernel"], c["dilation"])]
        a = tuple(
            (i + 2 * p - k) % s for i, p, k, s in zip(c["size"], c["padding"], k_hat, c["stride"])
        )
        layer = torch.nn.ConvTranspose2d(
            c["c_out"],
            c["c_in"],
            c["kernel"],
            c["stride"],
            c["padding"],
            a,
            c["groups"],
            dilation=c["dilation"],
            dtype=torch.float64,
        )
        with torch.no_grad():
            layer.weight.copy_(weight)
            reference = layer(y)
        got = conv_transpose2d_as_matrix(
            y, weight, layer.bias.detach(), c["stride"], c["padding"], a, c["groups"], c["dilation"]
        )
        worst["transposed"] = max(worst["transposed"], _relative(got, reference))
        x.requires_grad_(True)
        (gradient,) = torch.autograd.grad(F.conv2d(x, weight, None, *conv_args), x, y)
        no_bias = conv_transpose2d_as_matrix(
            y, weight, None, c["stride"], c["padding"], a, c["groups"], c["dilation"]
        )
        worst["gradient"] = max(worst["gradient"], _relative(no_bias, gradient))
    return worst


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """C·x and Cᵀ·y against PyTorch's convolutions on random configurations."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    configs = run.pick(fast=25, full=400)
    errors = [_errors(seed, configs) for seed in run.seeds]
    names = {
        "conv": "C·x vs Conv2d, worst relative error",
        "transposed": "Cᵀ·y vs ConvTranspose2d, worst relative error",
        "gradient": "Cᵀ·y vs conv input gradient, worst relative error",
    }
    return run.result(
        claim=CLAIM,
        measured=[
            Measured.over_seeds(name, "", [e[key] for e in errors], run.seeds)
            for key, name in names.items()
        ],
        thresholds=[
            Threshold(name, "<=", TOLERANCE, "equal up to float64 rounding")
            for name in names.values()
        ],
        config={"configs_per_seed": configs, "dtype": "float64", "max_input": [9, 9]},
    )
