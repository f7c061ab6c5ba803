"""`dlskills papers`: browse the reading list (dlskills.catalog).

dlskills papers [--section S] [--status ST] [--kind K] [--json]   the list, grouped by section
dlskills papers show ID [--json]                                  one entry, every field
"""

from __future__ import annotations

import argparse
import json

HELP = "browse the reading list by section with each entry's status; `show ID` for one entry"

_STATUS_STYLE = {"planned": "dim", "implemented": "yellow", "verified": "green"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "show"),
        default="list",
        help="`list` (default) or `show ID`",
    )
    parser.add_argument(
        "id", nargs="?", metavar="ID", help="catalog id for `show`, e.g. 1902.09843"
    )
    parser.add_argument(
        "--section",
        help="only this section: its number ('4.1', or '4' for all of 4.x) or part of its name",
    )
    parser.add_argument("--status", choices=("planned", "implemented", "verified"))
    parser.add_argument("--kind", choices=("code", "check", "doc"))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _matching_sections(query: str, names: list[str]) -> list[str]:
    wanted = query.strip().lower()
    for name in names:
        if name.lower() == wanted:
            return [name]
    numbered = [
        n
        for n in names
        if n.split(" ", 1)[0].lower() == wanted or n.lower().startswith(f"{wanted}.")
    ]
    matches = numbered or [n for n in names if wanted and wanted in n.lower()]
    if not matches:
        raise ValueError(f"no section matches {query!r} (sections: {'; '.join(names)})")
    return matches


def _select(args: argparse.Namespace, catalog) -> list:
    entries = catalog.load()
    if args.section is not None:
        keep = set(_matching_sections(args.section, catalog.sections(entries)))
        entries = [e for e in entries if e.section in keep]
    if args.status is not None:
        entries = [e for e in entries if e.status == args.status]
    if args.kind is not None:
        entries = [e for e in entries if args.kind in e.kind]
    return entries


def _counts_line(counts: dict[str, int], total: int) -> str:
    parts = " · ".join(f"{n} {status}" for status, n in counts.items())
    return f"{total} entries: {parts}"


def _print_list(entries: list, catalog) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    for section in catalog.sections(entries):
        rows = [e for e in entries if e.section == section]
        table = Table(
            title=Text(f"{section} ({len(rows)})", style="bold"),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            expand=True,
        )
        table.add_column("id", style="cyan", no_wrap=True)
        table.add_column("title", ratio=1)
        table.add_column("year", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for e in rows:
            table.add_row(
                Text(e.id),
                Text(e.title),
                "" if e.year is None else str(e.year),
                "+".join(e.kind),
                Text(e.status, style=_STATUS_STYLE.get(e.status, "")),
            )
        console.print(table)
    console.print(Text(_counts_line(catalog.status_counts(entries), len(entries)), style="bold"))


def _check_hint(entry) -> str:
    from dlskills import catalog

    check = entry.check or catalog.reproduction_of(entry)
    return f"{check}  (run: dlskills repro {entry.id})" if check else "—"


def _print_entry(entry) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = [
        ("id", entry.id),
        ("title", entry.title),
        ("authors", ", ".join(entry.authors) or "—"),
        ("year", "—" if entry.year is None else str(entry.year)),
        ("venue", entry.venue or "—"),
        ("section", entry.section),
        ("seed section", entry.seed_section or "—"),
        ("kind", " + ".join(entry.kind)),
        ("status", entry.status),
        ("links", "\n".join(f"{label}: {url}" for label, url in entry.links) or "—"),
        ("summary", entry.summary),
        ("what it becomes", entry.becomes or "—"),
    ]
    if entry.note_zh:
        rows.append(("seed note (zh)", entry.note_zh))
    if entry.out_of_scope:
        rows.append(("out of scope", entry.out_of_scope))
    rows.append(("implemented by", "\n".join(entry.implemented_by) or "— (nothing yet)"))
    if entry.see_also or "doc" in entry.kind:
        rows.append(("see also", "\n".join(entry.see_also) or "—"))
    rows.append(("check", _check_hint(entry)))

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(ratio=1)
    for key, value in rows:
        grid.add_row(key, Text(value))
    Console().print(grid)


def run(args: argparse.Namespace) -> int:
    from dlskills import catalog

    if args.action == "show":
        if not args.id:
            raise ValueError(
                "`dlskills papers show` needs an ID, e.g. dlskills papers show 1902.09843"
            )
        entry = catalog.get(args.id)
        if args.json:
            print(json.dumps(entry.to_dict(), ensure_ascii=False, indent=2))
        else:
            _print_entry(entry)
        return 0
    if args.id is not None:
        raise ValueError(
            f"unexpected argument {args.id!r}; did you mean `dlskills papers show {args.id}`?"
        )

    entries = _select(args, catalog)
    if args.json:
        document = {
            "total": len(entries),
            "status_counts": catalog.status_counts(entries),
            "sections": catalog.sections(entries),
            "entries": [e.to_dict() for e in entries],
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        _print_list(entries, catalog)
    return 0
