"""``dlskills conv-arith``: output sizes by the guide's relationships (1603.07285), the matching
transposed convolution, and an optional guide-style PNG diagram."""

from __future__ import annotations

import argparse

HELP = "convolution arithmetic: output size, relationship used, matching transposed conv, diagram"


def _padding(text: str) -> int | str:
    if text in ("same", "half", "full"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"padding must be an int, 'same' (= 'half') or 'full', got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", type=int, required=True, help="input size i (one axis)")
    parser.add_argument("--kernel", "-k", type=int, required=True, help="kernel size k")
    parser.add_argument(
        "--stride", "-s", type=int, default=None, help="stride s (default 1; k for --pool)"
    )
    parser.add_argument(
        "--padding", "-p", type=_padding, default=0, help="zero padding p: int, same/half, full"
    )
    parser.add_argument("--dilation", "-d", type=int, default=1, help="dilation d")
    parser.add_argument(
        "--transposed",
        action="store_true",
        help="the layer is a transposed convolution whose input size is --input",
    )
    parser.add_argument(
        "--output-padding", "-a", type=int, default=0, help="a (output_padding) of --transposed"
    )
    parser.add_argument("--pool", action="store_true", help="the layer is a pooling layer")
    parser.add_argument("--ceil-mode", action="store_true", help="pooling with ceil_mode")
    parser.add_argument(
        "--png",
        nargs="?",
        const="conv-arith.png",
        default=None,
        metavar="FILE",
        help="write the guide-style diagram (default file: ./conv-arith.png)",
    )


def _describe_transpose(arith, i: int, k: int, s: int, p: int, d: int, lines: list[str]) -> None:
    """Lines about the transposed convolution of conv(i, k, s, p, d) and its direct form."""
    eq = arith.transposed_equivalent(i, k, s, p, d)
    rel = arith.relationship(i, k, s, p, d, transposed=True)
    k_hat = arith.effective_kernel(k, d)
    lines.append(f"  a = (i + 2p - k_hat) mod s = ({i} + {2 * p} - {k_hat}) mod {s} = {eq.a}")
    lines.append(
        f"  nn.ConvTranspose2d(C_out, C_in, kernel_size={k}, stride={s}, padding={p}, "
        f"output_padding={eq.a}"
        + (f", dilation={d})" if d > 1 else ")")
        + f": {eq.input_size} -> {eq.output_size}"
    )
    read_as = f" (k read as k_hat = {k_hat})" if d > 1 else ""
    lines.append(f"  relationship {rel.number} ({rel.name}): {rel.formula} = {rel.output}{read_as}")
    zeros = f"{s - 1} zero{'s' if s != 2 else ''} between units, " if s > 1 else ""
    lines.append(
        f"  equivalent direct conv: input {eq.input_size} stretched to {eq.stretched_size} "
        f"({zeros}{eq.a} extra at the bottom/right), padding p' = k_hat - p - 1 = "
        f"{eq.padding}, kernel {k}, stride 1" + (f", dilation {d}" if d > 1 else "")
    )


def run(args: argparse.Namespace) -> int:
    from dlskills.nn.conv import arith

    i, k, d = args.input, args.kernel, args.dilation
    if args.pool and args.transposed:
        raise ValueError("--pool and --transposed exclude each other")
    s = args.stride if args.stride is not None else (k if args.pool else 1)
    if args.padding in ("same", "half"):
        p = arith.same_padding(k, d)
    elif args.padding == "full":
        p = arith.full_padding(k, d)
    else:
        p = args.padding
    lines: list[str] = []
    if args.pool:
        o = arith.pool_out(i, k, s, p, d, ceil_mode=args.ceil_mode)
        lines.append(f"pooling: i={i}, k={k}, s={s}, p={p}, d={d}, ceil_mode={args.ceil_mode}")
        lines.append(f"output size: o = {o}")
        rounding = "ceil" if args.ceil_mode else "floor"
        lines.append(
            f"relationship 7 (pooling): o = {rounding}((i + 2p - k_hat) / s) + 1 = "
            f"{rounding}(({i} + {2 * p} - {arith.effective_kernel(k, d)}) / {s}) + 1 = {o}"
        )
    elif args.transposed:
        o = arith.conv_transpose_out(i, k, s, p, args.output_padding, d)
        lines.append(
            f"transposed convolution: i'={i}, k={k}, s={s}, p={p}, a={args.output_padding}, d={d}"
        )
        lines.append(
            f"output size: o' = s(i' - 1) + a + k_hat - 2p = {s}*({i} - 1) + "
            f"{args.output_padding} + {arith.effective_kernel(k, d)} - {2 * p} = {o}"
        )
        lines.append(
            f"it is the transpose of the convolution i={o}, k={k}, s={s}, p={p}, d={d} "
            f"(o = {arith.conv_out(o, k, s, p, d)}):"
        )
        _describe_transpose(arith, o, k, s, p, d, lines)
    else:
        rel = arith.relationship(i, k, s, p, d)
        lines.append(f"convolution: i={i}, k={k}, s={s}, p={p}, d={d}")
        lines.append(f"output size: o = {rel.output}")
        lines.append(f"relationship {rel.number} ({rel.name}): {rel.formula} = {rel.output}")
        lines.append(f"matching transposed convolution (maps {rel.output} back to {i}):")
        _describe_transpose(arith, i, k, s, p, d, lines)
    print("\n".join(lines))
    if args.png:
        from dlskills.nn.conv._diagram import draw_convolution

        path = draw_convolution(
            args.png,
            i,
            k,
            s,
            p,
            d,
            transposed=args.transposed,
            output_padding=args.output_padding,
            pool=args.pool,
            ceil_mode=args.ceil_mode,
        )
        print(f"diagram: {path}")
    return 0
