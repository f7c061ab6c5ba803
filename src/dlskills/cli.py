"""The ``dlskills`` command. Thin: parses, calls the library, prints.

Each verb lives in ``dlskills._cli.<verb>`` and exposes ``HELP`` (one line),
``add_arguments(parser)``
and ``run(args) -> int``. Verb modules import torch and the library lazily inside ``run`` so that
``dlskills --help`` answers in well under a second.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dlskills import __version__

# verb -> module under dlskills._cli (in the order --help lists them)
VERBS: dict[str, str] = {
    "train": "train",
    "papers": "papers",
    "doctor": "doctor",
    "validate": "validate",
    "bench": "bench",
    "repro": "repro",
    "sweep": "sweep",
    "report": "report",
    "conv-arith": "conv_arith",
    "plot": "plot",
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter: ``--help`` ends each option's line with its default.

    Options whose parser default is None ("not given", so that a config file's value can win)
    show the value they resolve to, from ``resolved()`` (read only while help is printed);
    flags, empty values and help texts that already name their default are left alone."""

    def __init__(self, *args: Any, resolved: Callable[[], dict[str, Any]] = dict, **kw: Any):
        super().__init__(*args, **kw)
        self._resolved = resolved

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, "*"):
            return text
        if default is None:
            default = self._resolved().get(action.dest)
        if default is None or isinstance(default, bool) or default in ("", [], {}, ()):
            return text
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _train_defaults() -> dict[str, Any]:
    """The run configuration's defaults, for ``dlskills train --help`` (no torch import)."""
    import dataclasses

    from dlskills.train.config import TrainConfig

    return {
        field.name: field.default
        for field in dataclasses.fields(TrainConfig)
        if field.default is not dataclasses.MISSING
    }


#: verb -> the defaults its None-defaulted options resolve to (shown by --help)
RESOLVED_DEFAULTS: dict[str, Callable[[], dict[str, Any]]] = {"train": _train_defaults}


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
        formatter = functools.partial(
            DefaultsHelpFormatter, resolved=RESOLVED_DEFAULTS.get(verb, dict)
        )
        verb_parser = sub.add_parser(
            verb, help=module.HELP, description=module.HELP, formatter_class=formatter
        )
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
