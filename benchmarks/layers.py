"""Layer cost against the regular convolution each one replaces or extends (issue 4).

Rows (forward + backward unless marked, default shape batch 8, 64 → 64 channels, 32 × 32,
3 × 3 kernel, padding 1):

- ``deform_conv2d`` (1703.06211, random fractional offsets), without and with the DCNv2 mask,
  against ``F.conv2d`` of the same shape; target ≤ 6× on CPU for the v1 forward + backward.
- ``DeformConv2d`` (offset conv included) against ``nn.Conv2d``.
- ``DepthwiseSeparableConv2d`` (1808.05517) and ``DiCE`` (1906.03516) against ``nn.Conv2d``
  with the same input and output shape: time and multiply-accumulate (MAC) ratios.

Candidates are interleaved within each round (one call of each, in turn) so machine-load drift
hits all alike; the table shows the median over rounds and the ratio to the baseline. MACs per
sample come from ``dlskills.nn._counting`` (weighted layers only, as in the papers' tables);
for deform_conv2d they are the convolution's plus 4 per bilinear sample and channel.

    python benchmarks/layers.py [--rounds 15] [--batch 8] [--channels 64] [--size 32]
                                [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn._counting import count_macs
from dlskills.nn.conv.deform import DeformConv2d
from dlskills.nn.functional import deform_conv2d

TARGET_DEFORM_RATIO = 6.0
Row = tuple[str, str, float | None, float | None, float | None]  # name, baseline, s, s, MACs x


def interleaved_medians(candidates: dict[str, Callable[[], object]], rounds: int) -> dict:
    """Median seconds per call of each candidate, one call of each per round, after a warm-up
    (a line per round on stderr, a bar on a terminal)."""
    from dlskills._progress import Progress

    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    with Progress(" vs ".join(candidates)[:60], rounds, unit="round") as progress:
        for _ in range(rounds):
            for name, fn in candidates.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            progress.advance()
    return {name: statistics.median(values) for name, values in times.items()}


def forward_backward(fn: Callable[[], torch.Tensor], params: list[torch.Tensor]):
    def step() -> None:
        for p in params:
            p.grad = None
        fn().sum().backward()

    return step


def deform_rows(args, generator) -> list[Row]:
    b, c, size, k = args.batch, args.channels, args.size, 3
    x = torch.randn(b, c, size, size, generator=generator, requires_grad=True)
    weight = torch.randn(c, c, k, k, generator=generator, requires_grad=True)
    offset = (0.5 * torch.randn(b, 2 * k * k, size, size, generator=generator)).requires_grad_()
    mask = torch.rand(b, k * k, size, size, generator=generator, requires_grad=True)

    def conv() -> torch.Tensor:
        return F.conv2d(x, weight, padding=1)

    def deform_v1() -> torch.Tensor:
        return deform_conv2d(x, offset, weight, padding=1)

    def deform_v2() -> torch.Tensor:
        return deform_conv2d(x, offset, weight, padding=1, mask=mask)

    def forward_only(fn):
        def run() -> None:
            with torch.no_grad():
                fn()

        return run

    module_in = torch.randn(b, c, size, size, generator=generator)
    deform_module = DeformConv2d(c, c, k, padding=1)
    regular_module = nn.Conv2d(c, c, k, padding=1)
    medians = interleaved_medians(
        {
            "conv2d": forward_backward(conv, [x, weight]),
            "deform v1": forward_backward(deform_v1, [x, weight, offset]),
            "deform v2": forward_backward(deform_v2, [x, weight, offset, mask]),
            "conv2d fwd": forward_only(conv),
            "deform v1 fwd": forward_only(deform_v1),
            "nn.Conv2d": forward_backward(
                lambda: regular_module(module_in), list(regular_module.parameters())
            ),
            "DeformConv2d": forward_backward(
                lambda: deform_module(module_in), list(deform_module.parameters())
            ),
        },
        args.rounds,
    )
    conv_macs = c * c * k * k * size * size
    sampling_macs = 4 * c * k * k * size * size
    module_macs = count_macs(regular_module, (c, size, size)).macs
    deform_module_macs = count_macs(deform_module.offset_conv, (c, size, size)).macs + conv_macs
    return [
        ("deform_conv2d v1", "F.conv2d", medians["deform v1"], medians["conv2d"],
         (conv_macs + sampling_macs) / conv_macs),
        ("deform_conv2d v2 (mask)", "F.conv2d", medians["deform v2"], medians["conv2d"],
         (conv_macs + sampling_macs) / conv_macs),
        ("deform_conv2d v1, forward only", "F.conv2d fwd", medians["deform v1 fwd"],
         medians["conv2d fwd"], (conv_macs + sampling_macs) / conv_macs),
        ("DeformConv2d (with offset conv)", "nn.Conv2d", medians["DeformConv2d"],
         medians["nn.Conv2d"], (deform_module_macs + sampling_macs) / module_macs),
    ]  # fmt: skip


def replacement_rows(
    args, generator
) -> list[tuple[str, str, float | None, float | None, float | None]]:
    b, c, size = args.batch, args.channels, args.size
    x = torch.randn(b, c, size, size, generator=generator)
    regular = nn.Conv2d(c, c, 3, padding=1)
    rows = []
    factories: dict[str, Callable[[], nn.Module]] = {}
    try:
        from dlskills.nn.conv.separable import DepthwiseSeparableConv2d

        factories["DepthwiseSeparableConv2d"] = lambda: DepthwiseSeparableConv2d(c, c, 3, padding=1)
    except ImportError as error:
        rows.append(("DepthwiseSeparableConv2d", f"not available ({error})", None, None, None))
    try:
        from dlskills.nn.conv.dice import DiCE

        factories["DiCE"] = lambda: DiCE(c, c, 3)
    except ImportError as error:
        rows.append(("DiCE", f"not available ({error})", None, None, None))
    for name, factory in factories.items():
        try:
            layer = factory()
            if layer(x[:1]).shape != regular(x[:1]).shape:
                raise ValueError("output shape differs from the regular conv's")
        except (TypeError, ValueError) as error:
            rows.append((name, f"not available ({error})", None, None, None))
            continue
        medians = interleaved_medians(
            {
                "regular": forward_backward(lambda: regular(x), list(regular.parameters())),
                name: forward_backward(lambda layer=layer: layer(x), list(layer.parameters())),
            },
            args.rounds,
        )
        macs = count_macs(layer, (c, size, size)).macs / count_macs(regular, (c, size, size)).macs
        rows.append((name, "nn.Conv2d", medians[name], medians["regular"], macs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch}, "
        f"{args.channels} -> {args.channels} channels, {args.size}x{args.size}, 3x3, padding 1; "
        f"median of {args.rounds} interleaved rounds, forward + backward unless marked"
    )
    rows = deform_rows(args, generator) + replacement_rows(args, generator)
    header = (
        f"{'layer':34s} {'baseline':14s} {'ms':>9s} {'base ms':>9s} {'time x':>7s} {'MACs x':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name, baseline, seconds, base_seconds, macs in rows:
        if seconds is None:
            print(f"{name:34s} {baseline}")
            continue
        print(
            f"{name:34s} {baseline:14s} {seconds * 1e3:9.2f} {base_seconds * 1e3:9.2f} "
            f"{seconds / base_seconds:7.2f} {macs:7.3f}"
        )
    ratio = rows[0][2] / rows[0][3]
    verdict = "PASS" if ratio <= TARGET_DEFORM_RATIO else "FAIL"
    print(
        f"\ndeform_conv2d v1 forward+backward / conv2d = {ratio:.2f}x "
        f"(target <= {TARGET_DEFORM_RATIO:g}x): {verdict}"
    )


if __name__ == "__main__":
    main()
