"""``dlskills repro ID``: rerun the check that verifies a reading-list entry's claim.

An entry's ``check`` names the test module(s) that verify its claim at laptop scale; ``repro``
runs them with pytest, long (``slow``) checks included, and prints the verdict. Entries whose
check is still planned say so. The tests ship with the source repository (like benchmarks/).
"""

from __future__ import annotations

import argparse

from dlskills._cli._checkout import checkout_folder

HELP = "rerun the check of a reading-list entry (its tests, slow ones included)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", help="catalog id (see `dlskills papers`)")
    parser.add_argument("--list", action="store_true", help="list the entries with a check")
    parser.add_argument("--fast", action="store_true", help="skip the slow checks")
    parser.add_argument("--dir", metavar="DIR", help="repository root (default: the checkout)")


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from dlskills import catalog

    runnable = [e for e in catalog.load() if e.check.startswith("tests/")]
    if args.list or args.id is None:
        for entry in runnable:
            print(f"{entry.id:<22} {entry.check}")
        return 0
    entry = catalog.get(args.id)
    if not entry.check:
        raise ValueError(f"{entry.id} has no check (kind: {'+'.join(entry.kind)})")
    if not entry.check.startswith("tests/"):
        raise ValueError(
            f"the check of {entry.id} is planned, not written yet (status: {entry.status})"
        )
    tests = checkout_folder("tests", args.dir and f"{args.dir}/tests")
    target = tests.parent / entry.check
    marker = "not slow" if args.fast else "slow or not slow"
    print(f"== {entry.id}: {entry.title}\n   check: {entry.check}", flush=True)
    return subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-m", marker, str(target)], cwd=tests.parent
    )
