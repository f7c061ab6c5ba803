"""The ``dlskills`` command. Thin: parses, calls the library, prints.

Each verb lives in ``dlskills._cli.<verb>`` and exposes ``HELP`` (one line),
``add_arguments(parser)``
and ``run(args) -> int``. Verb modules import torch and the library lazily inside ``run`` so that
``dlskills --help`` answers in well under a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dlskills import __version__

# verb -> module under dlskills._cli (in the order --help lists them)
VERBS: dict[str, str] = {
    "train": "train",
    "papers": "papers",
    "doctor": "doctor",
    "validate": "validate",
    "bench": "bench",
    "repro": "repro",
    "report": "report",
    "conv-arith": "conv_arith",
    "plot": "plot",
}


def _verb_module(module_name: str):
    try:
        return importlib.import_module(f"dlskills._cli.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"dlskills._cli.{module_name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlskills",
        description="The deep-learning basic-skills reading list, executable: "
        "train, diagnose, benchmark, reproduce, browse.",
    )
    parser.add_argument("--version", action="version", version=f"dlskills {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, module_name in VERBS.items():
        module = _verb_module(module_name)
        if module is None:
            continue
        verb_parser = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(verb_parser)
        verb_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, ConnectionError) as exc:
        # User errors (bad option values, missing files, an unreachable rendezvous) print one
        # clear line, not a traceback.
        print(f"dlskills {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
