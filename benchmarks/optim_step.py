"""Optimizer step time: the zoo against torch Adam (foreach, fused) and the peer packages.

Parameter lists with random gradients (no model): a ResNet-18-shaped list (62 tensors, 11.69 M
parameters, shapes below) and a many-small-tensors list (400 × 1024, the regime where foreach
wins), plus few-large (4 × 2²²) to show where it loses. For every candidate one ``step()`` is
timed per round, candidates interleaved within each round so machine-load drift hits all alike;
the table shows the median over rounds and ratios to torch.optim.Adam(foreach=True) and
Adam(fused=True) on the same list, and to the peer implementation of the same algorithm
(adabound / torch_optimizer) where one exists. Zoo rows: the default path (foreach=None,
fused=None: the fused CPU kernel of dlskills.optim._native where the optimizer has one, else the
rule in dlskills.optim._foreach), the forced for-loop and foreach paths, and, with --compile,
``compile_step`` (compile time printed apart; steady state measured after warm-up).

Targets (issue 3): element-wise zoo default ≤ 1.3× Adam(foreach) and ≥ 2× faster than the peer;
compile_step ≤ 1.5× Adam(fused). Issue 14: every zoo step within 1.2× of its own memory-traffic
bound — the parameter-sized passes its rule must read or write (``PASSES``) × 4 B × n ÷ the
bandwidth of an in-place add of n floats timed in the same rounds (column "× bound", passes in
brackets).

    python benchmarks/optim_step.py [--rounds 15] [--shapes resnet18 small large]
                                    [--compile adabound aggmo] [--threads N] [--png FILE]
                                    [--json FILE]
    python benchmarks/optim_step.py --from-json FILE --png FILE    (redraw, no timing)

``--json`` saves the medians (seconds per step, by list and candidate) so that the figure can be
redrawn later without timing again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

# torchvision.models.resnet18() parameter shapes in registration order (62 tensors, 11,689,512)
RESNET18_SHAPES: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
for _block in range(2):
    RESNET18_SHAPES += [(64, 64, 3, 3), (64,), (64,), (64, 64, 3, 3), (64,), (64,)]
for _width in (128, 256, 512):
    _inp = _width // 2
    RESNET18_SHAPES += [(_width, _inp, 3, 3), (_width,), (_width,)]
    RESNET18_SHAPES += [(_width, _width, 3, 3), (_width,), (_width,)]
    RESNET18_SHAPES += [(_width, _inp, 1, 1), (_width,), (_width,)]
    RESNET18_SHAPES += [(_width, _width, 3, 3), (_width,), (_width,)]
    RESNET18_SHAPES += [(_width, _width, 3, 3), (_width,), (_width,)]
RESNET18_SHAPES += [(1000, 512), (1000,)]

SHAPE_SETS: dict[str, list[tuple[int, ...]]] = {
    "resnet18": RESNET18_SHAPES,
    "small": [(1024,)] * 400,
    "large": [(1 << 22,)] * 4,
}

ZOO: dict[str, dict[str, Any]] = {
    "adabound": {"lr": 1e-3},
    "amsbound": {"lr": 1e-3},
    "aggmo": {"lr": 1e-3},
    "pts_sgd": {"lr": 1e-3, "window": 10},
    "storm": {},
    "fg_sgd": {"lr": 1e-3},
    # one simulated worker: a step is then one local step plus one elastic update, comparable
    # with one Adam step (K workers cost K local steps)
    "easgd": {"lr": 1e-3, "workers": 1},
}


#: parameter-sized float32 passes one step must make at the least: each tensor of the rule read
#: or written once. The memory-traffic bound of a step is passes × 4 B × n ÷ bandwidth, the
#: bandwidth measured in the same rounds by an in-place add of n floats (x ← x + y/2: 3 passes).
#: In place, as the optimizers write: a copy into another buffer also reads its destination
#: before writing it (read for ownership), and measured 2/3 of this bandwidth here.
PASSES: dict[str, int] = {
    "torch": 7,  # Adam: θ, g, m, v read; θ, m, v written
    "adabound": 7,  # Adam's tensors; the clip of the step is arithmetic
    "amsbound": 9,  # + the running maximum of v, read and written
    "aggmo": 9,  # θ, g and the K = 3 velocities read; θ and the velocities written
    "pts_sgd": 7,  # θ, g, the expiring slot, the sum read; θ, the slot (now g_t), the sum written
    # the update reads g, g_prev, d, G and writes d, G; the closure at θ_{t-1} needs θ_t parked
    # and put back (4), θ_{t+1} written from θ_t (2), ‖g‖ for the clip (1): docs/optimizers.md
    "storm": 13,
    "fg_sgd": 3,  # θ, g read, θ written: row norms and tangent products while a row is in cache
    # one worker: the centre parked and the worker loaded for its gradient, its exchange and
    # local step, stored back and the centre restored (docs/optimizers.md, "How EASGD got there")
    "easgd": 9,
}
BANDWIDTH = "in-place add (3 passes)"


def _peers() -> dict[str, list[tuple[str, Callable[[list[torch.Tensor]], Any]]]]:
    peers: dict[str, list[tuple[str, Callable[[list[torch.Tensor]], Any]]]] = {}
    try:
        import adabound

        peers.setdefault("adabound", []).append(
            ("adabound.AdaBound", lambda ps: adabound.AdaBound(ps, lr=1e-3))
        )
        peers.setdefault("amsbound", []).append(
            ("adabound.AdaBound(amsbound)", lambda ps: adabound.AdaBound(ps, amsbound=True))
        )
    except ImportError:
        pass
    try:
        import torch_optimizer

        peers.setdefault("adabound", []).append(
            ("torch_optimizer.AdaBound", lambda ps: torch_optimizer.AdaBound(ps, lr=1e-3))
        )
        peers.setdefault("aggmo", []).append(
            ("torch_optimizer.AggMo", lambda ps: torch_optimizer.AggMo(ps, lr=1e-3))
        )
    except ImportError:
        pass
    return peers


def _parameters(shapes: list[tuple[int, ...]], seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = (torch.randn(shape, generator=generator) * 0.05).requires_grad_()
        p.grad = torch.randn(shape, generator=generator) * 1e-2
        params.append(p)
    return params


def _stepper(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    from dlskills.optim import OPTIMIZERS

    needs_closure = any(
        type(optimizer) is e.obj and e.meta.get("needs_closure") for e in OPTIMIZERS.entries()
    )
    if needs_closure:  # gradients are already in .grad: the closure's cost is not measured
        loss = torch.zeros(())
        return lambda: optimizer.step(lambda: loss)
    return optimizer.step


def bench_shape(shape_name: str, args: argparse.Namespace) -> dict[str, float]:
    from dlskills.optim import create
    from dlskills.optim.compile import compile_stats, compile_step

    shapes = SHAPE_SETS[shape_name]
    numel = sum(torch.Size(s).numel() for s in shapes)
    print(f"\n## {shape_name}: {len(shapes)} tensors, {numel / 1e6:.2f} M parameters")
    candidates: dict[str, Callable[[], Any]] = {}
    group_of: dict[str, str] = {}
    seed = 0

    def add(label: str, build: Callable[[list[torch.Tensor]], Any], group: str = "") -> Any:
        nonlocal seed
        seed += 1
        optimizer = build(_parameters(shapes, seed))
        candidates[label] = _stepper(optimizer)
        group_of[label] = group
        return optimizer

    source, target = torch.randn(numel), torch.randn(numel)
    candidates[BANDWIDTH] = lambda: target.add_(source, alpha=0.5)
    add("torch Adam(foreach)", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True))
    add("torch Adam(fused)", lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True))
    add("torch Adam(for-loop)", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False))
    peers = _peers()
    compiled: dict[str, Any] = {}
    for name in args.optimizers:
        kwargs = ZOO[name]
        add(f"{name} default", lambda ps, n=name, kw=kwargs: create(n, ps, **kw), name)
        add(f"{name} for-loop", lambda ps, n=name, kw=kwargs: create(n, ps, foreach=False, **kw))
        add(f"{name} foreach", lambda ps, n=name, kw=kwargs: create(n, ps, foreach=True, **kw))
        for label, build in peers.get(name, []):
            add(f"  peer {label}", build, f"peer:{name}")
        if name in args.compile:
            opt = add(
                f"{name} compile_step",
                lambda ps, n=name, kw=kwargs: compile_step(create(n, ps, **kw)),
            )
            started = time.perf_counter()
            for _ in range(3):  # first call compiles, the second may recompile (dynamic ints)
                candidates[f"{name} compile_step"]()
            compiled[name] = (time.perf_counter() - started, compile_stats(opt))

    from dlskills._progress import Progress

    with warnings.catch_warnings(), Progress(shape_name, args.rounds, unit="round") as progress:
        warnings.simplefilter("ignore", UserWarning)  # adabound's deprecated add() overloads
        for step in candidates.values():  # warm-up: state allocation
            step()
        times: dict[str, list[float]] = {label: [] for label in candidates}
        for _ in range(args.rounds):
            for label, step in candidates.items():
                started = time.perf_counter()
                step()
                times[label].append(time.perf_counter() - started)
            progress.advance(f"{len(candidates)} candidates")
    median = {label: statistics.median(t) for label, t in times.items()}
    adam_foreach, adam_fused = median["torch Adam(foreach)"], median["torch Adam(fused)"]
    add_seconds = median.pop(BANDWIDTH)
    print(
        f"bandwidth: {3 * 4 * numel / add_seconds / 1e9:.1f} GB/s (an in-place add of the "
        f"{numel:,} floats in {add_seconds * 1e3:.2f} ms); bound = passes / 3 × that add"
    )
    print("| candidate | median ms | × Adam(foreach) | × Adam(fused) | peer ÷ this | × bound |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, value in median.items():
        peer_ratio = ""
        name = label.split()[0]
        passes = PASSES.get(name) if not label.startswith(" ") else None
        bound = f"{value / (passes / 3 * add_seconds):.2f} ({passes})" if passes else ""
        peer_labels = [k for k, g in group_of.items() if g == f"peer:{name}"]
        if group_of.get(label) == name and peer_labels:
            fastest_peer = min(median[k] for k in peer_labels)
            peer_ratio = f"{fastest_peer / value:.2f}"
        print(
            f"| {label} | {value * 1e3:.2f} | {value / adam_foreach:.2f} | "
            f"{value / adam_fused:.2f} | {peer_ratio} | {bound} |"
        )
    for name, (seconds, stats) in compiled.items():
        print(
            f"compile_step({name}): first 3 calls {seconds:.1f} s, of which compiling "
            f"{stats.compile_seconds:.1f} s in {stats.compiling_calls} call(s)"
        )
    return median


RATIO_TICKS = (0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20)


#: bar colour -> what it means (the figure's legend)
KINDS = {
    "0.55": "torch.optim.Adam",
    "tab:blue": "zoo optimizer, default path",
    "#9ecae1": "zoo optimizer, for-loop / foreach",
    "tab:green": "zoo optimizer, compile_step",
    "tab:red": "peer package",
}


def plot(results: dict[str, dict[str, float]], path: str) -> None:
    """One panel per parameter list: each candidate's step time ÷ Adam(fused), log scale."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    from dlskills._plot import new_figure, save_figure

    def colour(label: str) -> str:
        if label.startswith("torch"):
            return "0.55"
        if label.strip().startswith("peer"):
            return "tab:red"
        if label.endswith("compile_step"):
            return "tab:green"
        return "tab:blue" if label.endswith("default") else "#9ecae1"

    rows = max(len(median) for median in results.values())
    fig, _ = new_figure(
        1,
        len(results),
        size=(5.5, 0.22 * rows + 1.6),
        title="Optimizer step time relative to torch Adam(fused) (lower is faster)",
    )
    for ax, (shape_name, median) in zip(fig.axes, results.items()):
        labels = list(median)[::-1]
        fused = median["torch Adam(fused)"]
        ratios = [median[label] / fused for label in labels]
        ax.barh(range(len(labels)), ratios, color=[colour(label) for label in labels])
        ax.set_yticks(range(len(labels)), [label.strip() for label in labels], fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8, label="= torch Adam(fused)")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(RATIO_TICKS))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", which="both", labelsize=7)
        ax.set_xlabel("step time ÷ torch Adam(fused) (log scale)")
        ax.set_ylabel("candidate")
        ax.set_title(shape_name, fontsize=9)
    used = {colour(label) for median in results.values() for label in median}
    handles = [Patch(color=c, label=text) for c, text in KINDS.items() if c in used]
    handles.append(fig.axes[0].get_lines()[0])
    fig.legend(handles=handles, loc="lower center", ncols=3, fontsize=7, frameon=False)
    fig.get_layout_engine().set(rect=(0, 0.07, 1, 1))
    save_figure(fig, path)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--shapes", nargs="+", default=["resnet18", "small", "large"], choices=sorted(SHAPE_SETS)
    )
    parser.add_argument("--optimizers", nargs="+", default=list(ZOO), choices=list(ZOO))
    parser.add_argument(
        "--compile",
        nargs="*",
        default=[],
        choices=list(ZOO),
        help="zoo optimizers to also run through compile_step (slow to build)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--png", help="also draw the ratios to Adam(fused) as bar charts here")
    parser.add_argument("--json", help="also save the medians (s per step) to this JSON file")
    parser.add_argument(
        "--from-json", metavar="FILE", help="draw --png from a --json file instead of timing"
    )
    args = parser.parse_args()
    if args.from_json:
        if not args.png:
            parser.error("--from-json draws a figure: give --png FILE")
        with open(args.from_json, encoding="utf-8") as file:
            plot(json.load(file)["medians"], args.png)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    assert len(RESNET18_SHAPES) == 62
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    results = {shape_name: bench_shape(shape_name, args) for shape_name in args.shapes}
    if args.json:
        record = {"torch": torch.__version__, "threads": torch.get_num_threads(), **vars(args)}
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"run": record, "medians": results}, file, indent=1)
    if args.png:
        plot(results, args.png)


if __name__ == "__main__":
    main()
