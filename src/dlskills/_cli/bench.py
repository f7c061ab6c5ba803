"""``dlskills bench [NAME]``: list or run the side-by-side benchmarks in the repository's
benchmarks/ folder (each script prints its ratios against its baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlskills._cli._checkout import checkout_folder

HELP = "list or run the benchmarks (scripts in the repository's benchmarks/ folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="benchmark to run (file name without .py)")
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


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    folder = benchmarks_dir(args.dir)
    scripts = {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}
    if args.name is None and not args.all:
        width = max((len(n) for n in scripts), default=0)
        for name, script in scripts.items():
            print(f"{name:<{width}}  {describe(script)}")
        if not scripts:
            print(f"no benchmarks in {folder}")
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
