"""``dlskills bench [NAME]``: list or run the side-by-side benchmarks in the repository's
benchmarks/ folder (each script prints its ratios against its baseline).

Sub-commands: ``dlskills bench list`` lists the scripts and the optimizer benchmark;
``dlskills bench optimizers [--problems P,..] [--optimizers O,..] [--budget B]
[--search design|tpe] [--seeds S] [--out DIR]`` runs the optimizer benchmark
(``dlskills.bench.protocol.run_benchmark``): it prints the summary table and writes
OUT/results.json, OUT/summary.md, OUT/<problem>.png and OUT/runs.jsonl (finished trials; a rerun
with the same OUT skips them).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from dlskills._cli._checkout import checkout_folder

HELP = (
    "list or run the benchmarks (scripts in the repository's benchmarks/ folder); "
    "`bench list`, `bench optimizers --help` (the optimizer benchmark)"
)
SUBCOMMANDS = {
    "list": "list the benchmark scripts and the optimizer benchmark",
    "optimizers": "the optimizer benchmark: tune, rerun over seeds, table and figures "
    "(dlskills bench optimizers --help)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        help="benchmark to run (file name without .py), or a sub-command: "
        + ", ".join(SUBCOMMANDS),
    )
    parser.add_argument("--all", action="store_true", help="run every benchmark in turn")
    parser.add_argument("--dir", metavar="DIR", help="benchmarks folder (default: the repo's)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")


def benchmarks_dir(explicit: str | None = None) -> Path:
    """The benchmarks folder: ``explicit``, $DLSKILLS_BENCHMARKS, the checkout's or ./benchmarks."""
    return checkout_folder("benchmarks", explicit, "DLSKILLS_BENCHMARKS")


def describe(script: Path) -> str:
    """First line of the script's module docstring (read without importing it)."""
    import ast

    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except SyntaxError:
        doc = None
    return doc.strip().splitlines()[0] if doc else ""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class _OneLineErrors(argparse.ArgumentParser):
    """A parser whose errors are ValueErrors, which ``dlskills`` prints as one line."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def optimizers_parser() -> argparse.ArgumentParser:
    from dlskills.bench.protocol import SEARCHES
    from dlskills.cli import DefaultsHelpFormatter

    parser = _OneLineErrors(
        prog="dlskills bench optimizers",
        description="The optimizer benchmark (DeepOBS protocol): tune each optimizer on a fixed "
        "search budget (seed 0, validation metric), rerun the best setting over seeds, report the "
        "final test metric, steps to target, wall time and tuning sensitivity.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--problems", type=_csv, help="comma-separated problems (default: all; `bench list`)"
    )
    parser.add_argument(
        "--optimizers",
        type=_csv,
        help="comma-separated registered optimizers (default: momentum,adam,adamw)",
    )
    parser.add_argument("--budget", type=int, default=8, help="tuning trials per optimizer")
    parser.add_argument(
        "--search",
        choices=SEARCHES,
        default="design",
        help="tuning settings: a fixed log grid / Hammersley design, or optuna's TPE choosing "
        "each from the scores before",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds for the best setting")
    parser.add_argument("--out", default="bench-optimizers", help="output folder")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    return parser


def run_optimizers(argv: list[str]) -> int:
    from dlskills._progress import Progress
    from dlskills.bench.protocol import run_benchmark, summary_table

    options = optimizers_parser().parse_args(argv)
    progress = None if options.no_progress else Progress("bench optimizers", None, unit="trial")
    try:
        results = run_benchmark(
            options.problems,
            options.optimizers,
            budget=options.budget,
            search=options.search,
            seeds=options.seeds,
            out=options.out,
            progress=progress,
            figures=not options.no_figures,
        )
    finally:
        if progress is not None:
            progress.close()
    print(summary_table(results))
    print(f"results: {options.out}/results.json, table: {options.out}/summary.md", end="")
    print("" if options.no_figures else f", figures: {options.out}/<problem>.png")
    return 0


def list_all(folder: Path, scripts: dict[str, Path]) -> None:
    from dlskills.bench.problems import PROBLEMS

    names = [*scripts, *SUBCOMMANDS]
    width = max(len(n) for n in names)
    for name, script in scripts.items():
        print(f"{name:<{width}}  {describe(script)}")
    if not scripts:
        print(f"no benchmarks in {folder}")
    print(f"{'optimizers':<{width}}  {SUBCOMMANDS['optimizers']}")
    for problem in PROBLEMS.values():
        print(f"{'':<{width}}    {problem.name}: {problem.description}")


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    if args.name == "optimizers":
        return run_optimizers(args.args)
    if args.name == "list" and args.args:
        raise ValueError(f"bench list takes no arguments, got {' '.join(args.args)!r}")
    folder = benchmarks_dir(args.dir)
    scripts = {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}
    if args.name in (None, "list") and not args.all:
        list_all(folder, scripts)
        return 0
    if args.name is not None and args.name not in scripts:
        import difflib

        close = difflib.get_close_matches(args.name, list(scripts), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown benchmark {args.name!r}{hint} (known: {', '.join(scripts) or 'none'})"
        )
    chosen = list(scripts.values()) if args.all else [scripts[args.name]]
    status = 0
    for script in chosen:
        print(f"== {script.stem}", flush=True)
        status = max(status, subprocess.call([sys.executable, str(script), *args.args]))
    return status
