"""``dlskills report --site DIR``: the reading list as a static site (dlskills.report.site).

dlskills report --site DIR [--results RESULTS] [--runs RUN ...]

RESULTS is a ``dlskills repro --out`` folder (``<id>/result.json`` per entry); each RUN is a
folder written by ``dlskills train`` or ``dlskills doctor``. Open DIR/index.html in a browser.
"""

from __future__ import annotations

import argparse
import sys

HELP = "write the reading list as a static site (entries, results, annotated source, runs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site", metavar="DIR", required=True, help="folder to write the site into"
    )
    parser.add_argument(
        "--results",
        metavar="RESULTS",
        help="reproduction results: a `dlskills repro --out` folder of <id>/result.json",
    )
    parser.add_argument(
        "--runs",
        metavar="RUN",
        nargs="+",
        default=[],
        help="run folders from `dlskills train` or `dlskills doctor`; each gets a page "
        "(default: none)",
    )


def run(args: argparse.Namespace) -> int:
    from dlskills.report.site import build_site

    report = build_site(args.site, results=args.results, runs=args.runs)
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(
        f"wrote {report.index}: {report.entries} entries, {report.results} with results, "
        f"{report.runs} run{'s' if report.runs != 1 else ''}"
    )
    return 0
