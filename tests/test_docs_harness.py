"""The docs harness (conftest.py at the repository root): how a page's printed output is compared
with what a command prints, and how the small scale rewrites a block."""

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "docs_harness", Path(__file__).resolve().parents[1] / "conftest.py"
)
harness = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(harness)


def test_numbers_compare_within_the_relative_tolerance_and_text_exactly():
    page = ["rank  model   relevance", "   1  mlp:width=64   0.684"]
    assert (
        harness.output_mismatch(page, ["rank model relevance", "1 mlp:width=64 0.6845"], 1e-3)
        is None
    )
    assert "0.690 differs from the page's 0.684" in harness.output_mismatch(
        page, ["rank model relevance", "1 mlp:width=64 0.690"], 1e-3
    )
    # a number is a token: 64 in the model name is compared too, and words must match
    assert harness.output_mismatch(page, ["rank model relevance", "1 mlp:width=65 0.684"], 0.0)
    assert harness.output_mismatch(page, ["rank model accuracy", "1 mlp:width=64 0.684"], 0.0)


def test_ellipsis_lines_and_prefix_lines():
    page = ["start", "...", "error: unknown optimizer 'adamx'; did you mean ..."]
    printed = ["start", "epoch 1", "epoch 2", "error: unknown optimizer 'adamx'; did you mean x, y"]
    assert harness.output_mismatch(page, printed, 0.0) is None
    assert harness.output_mismatch(page, ["start"], 0.0) is not None
    assert "unexpected line" in harness.output_mismatch(["a"], ["a", "b"], 0.0)


def test_small_scale_appends_arguments_or_substitutes(monkeypatch):
    monkeypatch.setattr(harness, "SCALE", "small")
    assert harness._at_scale("dlskills train\n# c\n", {"small": "--epochs 2"}, append=True) == (
        "dlskills train --epochs 2\n# c"
    )
    assert harness._at_scale("f(steps=300)", {"small": "steps=300->steps=3"}, append=False) == (
        "f(steps=3)"
    )
    with pytest.raises(ValueError, match="not in the block"):
        harness._at_scale("f()", {"small": "steps=300->steps=3"}, append=False)
    monkeypatch.setattr(harness, "SCALE", "full")
    assert harness._at_scale("f(steps=300)", {"small": "steps=300->steps=3"}, False) == (
        "f(steps=300)"
    )


def test_commands_of_console_and_bash_blocks():
    console = "$ dlskills a\nout 1\n$ dlskills b \\\n  --x 1\n"
    assert harness._commands("console", console) == [
        ("dlskills a", ["out 1"]),
        ("dlskills b --x 1", []),
    ]
    assert harness._commands("bash", "dlskills a   # note\n# only a comment\n") == [
        ("dlskills a", [])
    ]
    assert harness._options('small="--epochs 2" tol=0.01') == {"small": "--epochs 2", "tol": "0.01"}


def test_a_blocks_timeout_option_bounds_its_test_item_per_command():
    two_commands = ("bash", {"timeout": "100"}, "dlskills bench a\n# note\ndlskills bench b\n")
    margin = harness.ITEM_TIMEOUT_MARGIN
    assert harness.block_timeout(two_commands) == 200 + margin
    assert harness.block_timeout(("python", {"timeout": "90"}, "x = 1\ny = 2\n")) == 90 + margin
    assert harness.block_timeout(("bash", {}, "dlskills bench a\n")) is None
    assert harness.block_timeout(None) is None  # items that are not fenced blocks

    class Item:
        def __init__(self, parsed):
            self.example = type("Example", (), {"parsed": parsed})()
            self.markers = []

        def add_marker(self, marker):
            self.markers.append(marker)

    long, plain = Item(two_commands), Item(("bash", {}, "dlskills papers\n"))
    harness.pytest_collection_modifyitems([long, plain])
    assert [(m.name, m.args) for m in long.markers] == [("timeout", (200 + margin,))]
    assert plain.markers == []
