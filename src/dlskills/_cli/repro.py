"""``dlskills repro ID``: reproduce a reading-list entry's claim and print claim vs measured.

Runs the entry's registered reproduction (``dlskills.repro``; no tests/ folder needed), prints
the claim, a table of each measured quantity against its threshold, and the verdict, and writes
``DIR/result.json`` plus figures (default DIR: ./repro/<id>). ``--all`` runs every registered
entry (one folder each under DIR, default ./repro, plus ``index.json`` and ``table.md``, the
README's table of claims and verdicts) and prints the total time. ``--list`` lists the
registered ids with their declared fast verdicts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HELP = "reproduce an entry's claim: claim vs measured table, verdict, result.json + figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", help="catalog id (see `dlskills repro --list`)")
    parser.add_argument("--all", action="store_true", help="run every registered reproduction")
    parser.add_argument("--list", action="store_true", help="list the registered reproductions")
    parser.add_argument(
        "--scale",
        choices=("fast", "full"),
        default="fast",
        help="fast: what CI runs (seconds); full: closer to the paper (minutes)",
    )
    parser.add_argument(
        "--seeds", type=int, metavar="N", help="run seeds 0..N-1 (default: the entry's own)"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output folder (default: ./repro/<id>; with --all ./repro)"
    )


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


_COLOURS = {"reproduced": "green", "partial": "yellow", "not reproduced": "red"}


def print_result(result: Any, console: Any) -> None:
    """The claim, a claim-vs-measured table and the verdict."""
    from rich.table import Table

    console.print(f"[bold]{result.id}[/bold]  {result.title}  (scale: {result.scale})")
    console.print(f"claim ({result.claim.source}): {result.claim.text}")
    console.print(f"paper's number: {result.claim.value}")
    table = Table(show_lines=False)
    for column in ("quantity", "measured", "threshold", "holds", "why"):
        table.add_column(column, overflow="fold")
    by_name = {m.name: m for m in result.measured}
    judged = set()
    for threshold in result.thresholds:
        quantity = by_name[threshold.quantity]
        judged.add(quantity.name)
        holds = threshold.holds(quantity)
        table.add_row(
            quantity.name,
            quantity.text(),
            threshold.text(),
            "[green]yes[/green]" if holds else "[red]no[/red]",
            threshold.why,
        )
    for quantity in result.measured:
        if quantity.name not in judged:
            table.add_row(quantity.name, quantity.text(), "—", "—", "reported, not judged")
    console.print(table)
    seeds = result.run.get("seeds") or []
    colour = _COLOURS[result.verdict]
    console.print(
        f"verdict: [bold {colour}]{result.verdict}[/bold {colour}] — {result.reason} "
        f"(seeds {', '.join(map(str, seeds))}; {result.wall_time_s:.1f} s)"
    )


def _list() -> int:
    from dlskills import catalog, repro

    for entry_id in repro.ids():
        title = catalog.get(entry_id).title
        print(f"{entry_id:<22} fast: {repro.fast_verdict(entry_id):<15} {title}")
    return 0


def _run_one(args: argparse.Namespace) -> int:
    from dlskills import catalog, repro
    from dlskills.repro.result import RESULT_FILE, prepare_folder

    entry_id = catalog.get(args.id).id  # unknown ids: nearest ids suggested
    repro.get(entry_id)  # an entry without a reproduction says so, before anything is written
    out = prepare_folder(args.out or Path("repro") / entry_id)
    console = _console()
    console.print(f"running {entry_id} at scale {args.scale} ...", style="dim")
    result = repro.run(entry_id, scale=args.scale, seeds=args.seeds, out=out)
    print_result(result, console)
    console.print(f"wrote {out / RESULT_FILE}" + "".join(f", {out / f}" for f in result.figures))
    return 0


class _Progress:
    """A rich bar over the entries on a terminal; one plain line per entry otherwise."""

    def __init__(self, total: int) -> None:
        self.rich = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.rich = Progress(
                "{task.description:<22}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.task = self.rich.add_task("reproducing", total=total)
            self.rich.start()
        self.total, self.done = total, 0

    def start(self, entry_id: str) -> None:
        if self.rich is not None:
            self.rich.update(self.task, description=entry_id)

    def finish(self, entry_id: str, verdict: str, seconds: float) -> None:
        self.done += 1
        if self.rich is not None:
            self.rich.update(self.task, advance=1)
            self.rich.console.print(f"{entry_id:<22} {verdict:<15} {seconds:6.1f} s")
        else:
            print(
                f"repro [{self.done}/{self.total}] {entry_id:<22} {verdict:<15} {seconds:6.1f} s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


def _run_all(args: argparse.Namespace) -> int:
    from dlskills import repro
    from dlskills._io import atomic_write_json, atomic_write_text
    from dlskills.report.repro_table import markdown_table
    from dlskills.repro.result import RESULT_FILE, SCHEMA, prepare_folder

    root = prepare_folder(args.out or "repro")
    ids = repro.ids()
    started = time.perf_counter()
    entries, results = [], []
    progress = _Progress(len(ids))
    try:
        for entry_id in ids:
            progress.start(entry_id)
            clock = time.perf_counter()
            result = repro.run(entry_id, scale=args.scale, seeds=args.seeds, out=root / entry_id)
            progress.finish(entry_id, result.verdict, time.perf_counter() - clock)
            results.append(result)
            entries.append(
                {"id": entry_id, "verdict": result.verdict, "path": f"{entry_id}/{RESULT_FILE}"}
            )
    finally:
        progress.close()
    total = time.perf_counter() - started
    index = {"schema": SCHEMA, "scale": args.scale, "wall_time_s": round(total, 3)}
    atomic_write_json(root / "index.json", {**index, "entries": entries})
    atomic_write_text(root / "table.md", markdown_table(results))
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    print(f"{len(entries)} reproductions at scale {args.scale} in {total:.1f} s: {summary}")
    print(f"wrote {root / 'index.json'} and {root / 'table.md'} (the README's table)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    if args.list:
        return _list()
    if args.all:
        if args.id is not None:
            raise ValueError("give either an id or --all, not both")
        return _run_all(args)
    if args.id is None:
        raise ValueError("name an entry id, --all or --list")
    return _run_one(args)
