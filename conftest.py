"""The documentation is a test (issue 16): every fenced block of README.md and docs/*.md runs under
pytest through Sybil (a maintained doc-testing library), so a page that drifts from the code fails.

Conventions for page authors (the markdown renders as usual; the options live in the fence's info
string or in HTML comments, which a reader does not see):

- ``python`` blocks run in order in one namespace per page. The placeholders pages use without
  defining them are set up first, small: ``torch``, ``nn``, ``F``; ``model`` (the default CNN),
  ``loss_fn``, ``optimizer`` (AdamW over it), ``scheduler``; ``train_loader``/``loader``,
  ``val_loader``, ``test_loader`` (batches of 64 from 256/128/128 digits); ``images``, ``labels``
  (8 test digits), ``inputs`` (2 of them), ``x``, ``y`` (a training batch).
  ``<!-- invisible-code-block: python ... -->`` runs other set-up code the reader need not see,
  and checks numbers quoted in tables and prose against the block that produced them
  (``if DOCS_SCALE == "full": assert ...`` where the full computation is slow).
- ``bash`` / ``sh`` blocks: every line is a shell command (``# comments`` ignored); ``console``
  blocks: lines starting with ``$ `` are commands and the lines after one are its expected output.
  Commands run with ``dlskills`` and ``python`` resolving to the interpreter under test
  (``.venv/bin/`` prefixes are dropped), in a fresh folder per page (so ``runs/first`` written by
  one block is there for the next) that links the repository's ``benchmarks/`` and ``tests/``.
- Expected output is compared line by line: text equal up to runs of spaces, numbers equal up to
  ``tol`` (relative, fence option ``tol=0.02``; default: equal as numbers); a line ``...``
  matches any number of lines, a line ending in ``...`` any line that starts like it. A command
  must exit with status 0, or with the block's ``exit=N`` (error messages shown on a page).
- Scale: ``DLSKILLS_DOCS_SCALE=small`` (the default, what CI runs) applies a block's ``small``
  option: for shell blocks extra arguments appended to each command (``small="--epochs 2"``), for
  any block ``OLD->NEW`` substitutions separated by ``;`` (``small="rounds=21->rounds=1"``); the
  expected output of a block with a ``small`` option is then not compared (its numbers are the
  full run's). ``make docs`` (``DLSKILLS_DOCS_SCALE=full``) runs every block as printed and
  compares every output.
- ``<!-- skip: next "reason" -->`` skips the next block (Sybil's skip directive): for commands
  that set up the machine itself (``make demo``), never for slow ones (use ``small``).
- ``timeout=S`` (fence option) bounds a command (default 300 s); the block's test item is
  then bounded by S per command (a python block: S) instead of pytest-timeout's 300 s.
- ``toml`` / ``yaml`` / ``json`` / ``text`` blocks with ``file=NAME`` are written to NAME in the
  page's folder (a config file the next command reads); without ``file`` they are only shown.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.abstract.lexers import LexerCollection
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent
SCALE = os.environ.get("DLSKILLS_DOCS_SCALE", "small")
if SCALE not in ("small", "full"):
    raise ValueError(f"DLSKILLS_DOCS_SCALE must be 'small' or 'full', got {SCALE!r}")
#: seconds a shell command may take unless its block's ``timeout`` option says otherwise
COMMAND_TIMEOUT = 300
#: seconds of a block's test item beyond its commands' own bounds (page set-up, comparisons)
ITEM_TIMEOUT_MARGIN = 60
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _options(info: str) -> dict[str, str]:
    """``key=value`` / ``key="a value"`` pairs of a fence's info string after the language."""
    options = {}
    for item in shlex.split(info):
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"fence option {item!r} is not KEY=VALUE")
        options[key] = value
    return options


def _at_scale(source: str, options: dict[str, str], append: bool) -> str:
    """The block as it runs at the current scale (see the module docstring)."""
    small = options.get("small")
    if SCALE == "full" or small is None:
        return source
    if "->" in small:
        for pair in small.split(";"):
            old, new = pair.split("->")
            if old not in source:
                raise ValueError(f"small option: {old!r} is not in the block")
            source = source.replace(old, new)
        return source
    if not append:
        raise ValueError("small option of a python block must be OLD->NEW substitutions")
    return "\n".join(
        f"{line} {small}" if line.strip() and not line.lstrip().startswith("#") else line
        for line in source.splitlines()
    )


class _FencedBlocks:
    """A Sybil parser for fenced blocks of the given languages, with options in the info string,
    and for ``<!-- invisible-code-block: LANGUAGE ... -->`` comments."""

    def __init__(self, languages: str, evaluator: Any) -> None:
        self.lexers = LexerCollection(
            [
                FencedCodeBlockLexer(
                    language=rf"(?:{languages})(?:[ \t][^\n]*)?",
                    mapping={"language": "arguments", "source": "source"},
                ),
                DirectiveInHTMLCommentLexer(
                    directive=r"invisible-code-block", arguments=rf"(?:{languages})[^\n]*"
                ),
            ]
        )
        self.evaluator = evaluator

    def __call__(self, document: Any) -> Any:
        for region in self.lexers(document):
            language, _, info = region.lexemes["arguments"].strip().partition(" ")
            region.parsed = (language, _options(info), region.lexemes["source"])
            region.evaluator = self.evaluator
            yield region


def _run_python(example: Example) -> None:
    _, options, source = example.parsed
    code = _at_scale(str(source), options, append=False)
    # pad so that tracebacks point at the page's own line numbers
    exec(compile("\n" * example.line + code, example.path, "exec"), example.namespace)


def _write_file(example: Example) -> None:
    _, options, source = example.parsed
    if "file" in options:
        (Path(example.namespace["docs_folder"]) / options["file"]).write_text(str(source))


def _shell_environment(folder: Path) -> dict[str, str]:
    """PATH with ``dlskills`` and ``python`` pointing at the interpreter under test."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in (("python", ""), ("python3", ""), ("dlskills", " -m dlskills")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{target} "$@"\n')
        script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env["PYTHONPATH"]) if p)
    env["COLUMNS"] = "100"
    return env


def _commands(language: str, source: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) pairs; bash blocks have no expected output."""
    commands: list[tuple[str, list[str]]] = []
    for line in re.sub(r"\s*\\\n\s*", " ", source).splitlines():  # join continued lines
        if language == "console":
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif commands:
                commands[-1][1].append(line)
            elif line.strip():
                raise ValueError(f"console block: output before any '$ ' command: {line!r}")
        else:
            command = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
            if command:
                commands.append((command, []))
    return commands


def _run_shell(example: Example) -> None:
    language, options, source = example.parsed
    folder = Path(example.namespace["docs_folder"])
    env = example.namespace["docs_env"]
    compare = SCALE == "full" or "small" not in options
    tolerance = float(options.get("tol", 0))
    expected_status = int(options.get("exit", 0))
    timeout = float(options.get("timeout", COMMAND_TIMEOUT))
    source = str(source)
    # substitutions apply to the block (each OLD somewhere in it); appended arguments to every
    # command
    substituted = "->" in options.get("small", "")
    if substituted:
        source = _at_scale(source, options, append=False)
    for command, expected in _commands(language, source):
        command = command.replace(".venv/bin/", "")
        if not substituted:
            command = _at_scale(command, options, append=True)
        completed = subprocess.run(
            ["bash", "-c", command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        output = completed.stdout + completed.stderr
        if completed.returncode != expected_status:
            raise AssertionError(
                f"{example.path}:{example.line}: `{command}` exited with "
                f"{completed.returncode}:\n{output[-3000:]}"
            )
        if compare and expected:
            mismatch = output_mismatch(expected, output.splitlines(), tolerance)
            if mismatch:
                raise AssertionError(
                    f"{example.path}:{example.line}: `{command}`: {mismatch}\n"
                    f"--- the page shows:\n" + "\n".join(expected) + f"\n--- it printed:\n{output}"
                )


def _line_mismatch(expected: str, actual: str, tolerance: float) -> str | None:
    if expected.endswith("...") and expected.strip() != "...":
        expected = expected[:-3].rstrip()
        actual = actual[: len(expected)]
    expected_numbers, actual_numbers = NUMBER.findall(expected), NUMBER.findall(actual)
    expected_text, actual_text = (" ".join(NUMBER.sub("#", s).split()) for s in (expected, actual))
    if expected_text != actual_text or len(expected_numbers) != len(actual_numbers):
        return f"{actual!r} differs from {expected!r}"
    for shown, printed in zip(expected_numbers, actual_numbers, strict=True):
        if abs(float(printed) - float(shown)) > tolerance * abs(float(shown)):
            return f"{printed} differs from the page's {shown} (tolerance {tolerance:g}, relative)"
    return None


def output_mismatch(expected: list[str], actual: list[str], tolerance: float) -> str | None:
    """None when ``actual`` matches ``expected`` (see the module docstring), else the first
    difference. A ``...`` line matches any number of lines."""
    expected = [line.rstrip() for line in expected]
    actual = [line.rstrip() for line in actual]
    while expected and not expected[-1]:
        expected.pop()
    while actual and not actual[-1]:
        actual.pop()

    def match(e: int, a: int) -> str | None:
        if e == len(expected):
            return None if a == len(actual) else f"unexpected line {actual[a]!r}"
        if expected[e].strip() == "...":
            failure = "nothing after '...' matched"
            for start in range(a, len(actual) + 1):
                failure = match(e + 1, start)
                if failure is None:
                    return None
            return failure
        if a == len(actual):
            return f"missing line {expected[e]!r}"
        return _line_mismatch(expected[e], actual[a], tolerance) or match(e + 1, a + 1)

    return match(0, 0)


def _placeholders() -> dict[str, Any]:
    """The names pages use for "your model and data" (see the module docstring)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from dlskills.data import load
    from dlskills.models import create

    torch.manual_seed(0)
    torch.set_num_threads(1)  # as `dlskills train` does: small models, a shared machine
    splits = load("digits", seed=0)

    def loader(part: Any, count: int, shuffle: bool) -> DataLoader:
        x, y = part.tensors
        generator = torch.Generator().manual_seed(0)
        dataset = TensorDataset(x[:count], y[:count])
        return DataLoader(dataset, batch_size=64, shuffle=shuffle, generator=generator)

    model = create("cnn", input_shape=(1, 8, 8), num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    images, labels = splits.test.tensors[0][:8], splits.test.tensors[1][:8]
    train_loader = loader(splits.train, 256, True)
    x, y = splits.train.tensors[0][:64], splits.train.tensors[1][:64]
    return {
        "x": x,
        "y": y,
        "torch": torch,
        "nn": nn,
        "F": F,
        "model": model,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": optimizer,
        "scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 40),
        "train_loader": train_loader,
        "loader": train_loader,
        "val_loader": loader(splits.val, 128, False),
        "test_loader": loader(splits.test, 128, False),
        "images": images,
        "labels": labels,
        "inputs": images[:2],
    }


def _set_up_page(namespace: dict[str, Any]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dlskills-docs-"))
    for name in ("benchmarks", "tests"):
        (folder / name).symlink_to(ROOT / name)
    namespace["docs_folder"] = str(folder)
    namespace["docs_env"] = _shell_environment(folder)
    namespace["docs_previous_cwd"] = os.getcwd()
    os.chdir(folder)
    namespace["DOCS_SCALE"] = SCALE
    namespace.update(_placeholders())


def _tear_down_page(namespace: dict[str, Any]) -> None:
    os.chdir(namespace["docs_previous_cwd"])
    shutil.rmtree(namespace["docs_folder"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[
        _FencedBlocks("python", _run_python),
        _FencedBlocks("bash|sh|console", _run_shell),
        _FencedBlocks("toml|yaml|json|text", _write_file),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    setup=_set_up_page,
    teardown=_tear_down_page,
).pytest()


def pytest_configure(config: pytest.Config) -> None:
    # A page's blocks share a namespace and a folder, so they must run on one xdist worker, in
    # order: xdist's "loadfile" keeps each file on one worker. ("loadgroup" with xdist_group
    # marks does not group under pytest 9, whose node ids no longer read xdist's rewrite.) For
    # test modules "loadfile" differs from the default "load" only in how work is balanced.
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "loadfile"


def block_timeout(parsed: Any) -> float | None:
    """The bound of a fenced block's test item when its ``timeout`` option sets one: the option
    per command (shell blocks) or for the block (python), plus ``ITEM_TIMEOUT_MARGIN``."""
    if not (isinstance(parsed, tuple) and len(parsed) == 3 and isinstance(parsed[1], dict)):
        return None
    language, options, source = parsed
    if "timeout" not in options:
        return None
    commands = 1 if language == "python" else max(len(_commands(language, str(source))), 1)
    return float(options["timeout"]) * commands + ITEM_TIMEOUT_MARGIN


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-timeout bounds every item by the configured 300 s; a block that declares a longer
    # bound (the full-scale benchmark commands of `make docs`) gets it for its whole item.
    for item in items:
        seconds = block_timeout(getattr(getattr(item, "example", None), "parsed", None))
        if seconds is not None:
            item.add_marker(pytest.mark.timeout(seconds))
