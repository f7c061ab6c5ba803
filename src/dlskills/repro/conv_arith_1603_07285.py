"""Reproduction of catalog 1603.07285: Dumoulin & Visin, "A guide to convolution arithmetic for
deep learning" (2016).

Claim: the guide's relationships R1–R15 give the output size of every convolution, pooling,
transposed and dilated convolution (i, k, s, p, d), the transposed one with the ``a`` term
(Relationship 14). The guide's own figures are worked examples of them.

Measured (``dlskills.nn.conv.arith``):
- on random configurations per seed (i ∈ [1, 40], k ∈ [1, 9], s ∈ [1, 5], p ∈ [0, 6],
  d ∈ [1, 4], a ∈ [0, 4]), how many sizes from ``conv_out``, ``pool_out`` (max and average
  pooling, floor and ceil mode) and ``conv_transpose_out`` differ from the shape PyTorch's own
  kernels produce (meta tensors: shapes only). A configuration PyTorch rejects must be rejected
  (ValueError) too;
- how many of the guide's figures (Figs. 2.1–2.7, 5.1 direct; 4.1–4.7 transposed, with the
  input size i′, the stretched size ĩ′, p′, a and the relationship number read off each figure)
  ``relationship``/``transposed_equivalent`` reproduce.

Deviation: PyTorch's pooling differs from the guide's R7 (stride defaults to k, padding ≤ k/2,
ceil mode); the module follows PyTorch and the count judges that.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from dlskills.nn.conv.arith import (
    conv_out,
    conv_transpose_out,
    pool_out,
    relationship,
    transposed_equivalent,
)
from dlskills.repro import register
from dlskills.repro.result import Claim, Measured, Result, Run, Threshold

CATALOG_ID = "1603.07285"

# (i, k, s, p, d), the output size and the relationship number, from the guide's figures
GUIDE_DIRECT = [
    ((4, 3, 1, 0, 1), 2, 1),  # Fig. 2.1
    ((5, 4, 1, 2, 1), 6, 2),  # Fig. 2.2
    ((5, 3, 1, 1, 1), 5, 3),  # Fig. 2.3 half padding
    ((5, 3, 1, 2, 1), 7, 4),  # Fig. 2.4 full padding
    ((5, 3, 2, 0, 1), 2, 5),  # Fig. 2.5
    ((5, 3, 2, 1, 1), 3, 6),  # Fig. 2.6
    ((6, 3, 2, 1, 1), 3, 6),  # Fig. 2.7
    ((7, 3, 1, 0, 2), 3, 15),  # Fig. 5.1 dilated
]
# direct conv (i, k, s, p) -> transposed input i', stretched ĩ', p', a, relationship number
GUIDE_TRANSPOSED = [
    ((4, 3, 1, 0), 2, 2, 2, 0, 8),  # Fig. 4.1
    ((5, 4, 1, 2), 6, 6, 1, 0, 9),  # Fig. 4.2
    ((5, 3, 1, 1), 5, 5, 1, 0, 10),  # Fig. 4.3
    ((5, 3, 1, 2), 7, 7, 0, 0, 11),  # Fig. 4.4
    ((5, 3, 2, 0), 2, 3, 2, 0, 12),  # Fig. 4.5
    ((5, 3, 2, 1), 3, 5, 1, 0, 13),  # Fig. 4.6
    ((6, 3, 2, 1), 3, 5, 1, 1, 14),  # Fig. 4.7: the a term
]

CLAIM = Claim(
    text="The output size of a convolution, pooling, transposed or dilated convolution follows "
    "from (i, k, s, p, d) by the guide's relationships 1-15; the transposed convolution needs "
    "the extra a = (i + 2p - k) mod s (Relationship 14).",
    value="every configuration and every worked figure",
    source="Relationships 1-15, Figs. 2.1-2.7, 4.1-4.7, 5.1",
)

META = torch.device("meta")
RANGES = {"i": (1, 40), "k": (1, 9), "s": (1, 5), "p": (0, 6), "d": (1, 4), "a": (0, 4)}


def _torch_size(fn: Callable[..., torch.Tensor], *args, **kwargs) -> int | None:
    """PyTorch's output length, or None where PyTorch rejects the configuration."""
    try:
        return fn(*args, **kwargs).shape[-1]
    except RuntimeError:
        return None


def _ours(fn: Callable[..., int], *args, **kwargs) -> int | None:
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def _mismatches(seed: int, configs: int) -> dict[str, int]:
    rng = random.Random(seed)
    counts = {"conv": 0, "pool": 0, "transposed": 0}
    for _ in range(configs):
        i, k, s, p, d, a = (rng.randint(*RANGES[name]) for name in "ikspda")
        x, w = torch.empty(1, 1, i, device=META), torch.empty(1, 1, k, device=META)
        want = _torch_size(F.conv1d, x, w, stride=s, padding=p, dilation=d)
        counts["conv"] += _ours(conv_out, i, k, s, p, d) != want
        pool_p, ceil_mode = p % 5, rng.random() < 0.5
        pool_s = None if rng.random() < 0.2 else s
        got = _ours(pool_out, i, k, pool_s, pool_p, d, ceil_mode=ceil_mode)
        max_size = _torch_size(F.max_pool1d, x, k, pool_s, pool_p, d, ceil_mode=ceil_mode)
        wrong = got != max_size
        if d == 1:  # average pooling has no dilation
            avg = _torch_size(F.avg_pool1d, x, k, pool_s, pool_p, ceil_mode=ceil_mode)
            wrong |= got != avg
        counts["pool"] += wrong
        want = _torch_size(
            F.conv_transpose1d, x, w, stride=s, padding=p, output_padding=a, dilation=d
        )
        if a >= max(s, d):
            want = None  # the CPU kernel and the module reject it; the meta kernel skips the check
        counts["transposed"] += _ours(conv_transpose_out, i, k, s, p, a, d) != want
    return counts


def guide_figures_matched() -> int:
    """How many of the guide's 15 worked figures the relationships reproduce exactly."""
    matched = 0
    for config, output, number in GUIDE_DIRECT:
        found = relationship(*config)
        matched += conv_out(*config) == output and (found.number, found.output) == (number, output)
    for config, i_t, stretched, p_t, a, number in GUIDE_TRANSPOSED:
        eq = transposed_equivalent(*config)
        found = relationship(*config, transposed=True)
        matched += (
            (eq.input_size, eq.stretched_size, eq.padding, eq.a) == (i_t, stretched, p_t, a)
            and (eq.kernel, eq.stride, eq.output_size) == (config[1], 1, config[0])
            and (found.number, found.output) == (number, config[0])
        )
    return matched


@register(CATALOG_ID)
def repro(scale: str = "fast", seeds: int | Iterable[int] | None = None, out=None) -> Result:
    """Output-size relationships against PyTorch's shapes and the guide's figures."""
    run = Run(CATALOG_ID, scale, seeds, out, default_seeds={"fast": (0,), "full": (0, 1, 2)})
    configs = run.pick(fast=1500, full=20000)
    counts = [_mismatches(seed, configs) for seed in run.seeds]
    figures = len(GUIDE_DIRECT) + len(GUIDE_TRANSPOSED)
    names = {
        "conv": "conv sizes unlike PyTorch",
        "pool": "pooling sizes unlike PyTorch",
        "transposed": "transposed-conv sizes unlike PyTorch",
    }
    measured = [
        Measured.over_seeds(name, f"of {configs}", [c[key] for c in counts], run.seeds)
        for key, name in names.items()
    ]
    measured.append(
        Measured.exact("guide figures reproduced", f"of {figures}", guide_figures_matched())
    )
    thresholds = [
        Threshold(name, "<=", 0, "the relationships are exact: no configuration may differ")
        for name in names.values()
    ]
    thresholds.append(
        Threshold("guide figures reproduced", ">=", figures, "every worked figure of the guide")
    )
    return run.result(
        claim=CLAIM,
        measured=measured,
        thresholds=thresholds,
        config={"configs_per_seed": configs, "ranges": RANGES},
    )
