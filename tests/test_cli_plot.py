"""`dlskills plot` (1609.04747 trajectory plots and the docs' figures); --help defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

from dlskills._cli.plot import parse_optimizers
from dlskills.cli import main


def test_parse_optimizers_options_and_default_lr():
    # tuples as in `dlskills train --opt betas=0.9,0.99`: the numbers after betas= belong to it
    parsed = parse_optimizers("sgd:lr=0.01, adam:betas=0.9,0.99 ,momentum", lr=0.5)
    assert parsed == {
        "sgd": {"lr": 0.01},
        "adam": {"betas": (0.9, 0.99), "lr": 0.5},
        "momentum": {"lr": 0.5},
    }
    assert parse_optimizers("aggmo:betas=0,0.9,0.99:lr=0.1") == {
        "aggmo": {"betas": (0, 0.9, 0.99), "lr": 0.1}
    }
    assert parse_optimizers("adam:betas=(0.9,0.99),sgd") == {
        "adam": {"betas": (0.9, 0.99)},
        "sgd": {},
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_optimizers("sgd:lr")
    with pytest.raises(ValueError, match=r"write a tuple with commas, betas=0\.9,0\.99"):
        parse_optimizers("adam:betas=0.9;0.99")
    with pytest.raises(ValueError, match="at least one"):
        parse_optimizers(" , ")


def test_plot_writes_png(tmp_path):
    out = tmp_path / "beale.png"
    code = main(
        [
            "plot",
            "optimizers",
            "--function",
            "beale",
            "--optimizers",
            "sgd:lr=0.01,momentum:lr=0.002,adam:lr=0.1",
            "--steps",
            "50",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_optimizer_is_a_clean_error(tmp_path, capsys):
    code = main(["plot", "optimizers", "--optimizers", "sgdd", "--out", str(tmp_path / "x.png")])
    assert code == 2
    assert "did you mean 'sgd'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_figures_go_to_the_figures_folder_by_default_with_progress_lines(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "optimizers", "--steps", "5"]) == 0
    assert (tmp_path / "figures" / "optimizers.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {Path('figures') / 'optimizers.png'}" in capsys.readouterr().out


def test_every_verb_shows_its_defaults_in_help(capsys):
    import argparse

    from dlskills.cli import build_parser

    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for verb, verb_parser in subparsers.choices.items():
        text = " ".join(verb_parser.format_help().split())
        for action in verb_parser._actions:
            default = action.default
            if action.option_strings and default not in (None, False, True, argparse.SUPPRESS):
                assert f"default: {default}" in text or "default" in (action.help or ""), (
                    verb,
                    action.dest,
                )
    train = " ".join(subparsers.choices["train"].format_help().split())
    # train's options default to "not given" (a --config file wins): help shows the config's
    assert "model name (cnn, mlp, resnet, ...) (default: cnn)" in train
    assert "(default: None)" not in train
    plot = " ".join(subparsers.choices["plot"].format_help().split())
    assert "test function (default: beale)" in plot and "steps per optimizer (default: 300)" in plot


def test_verb_module_imports_nothing_heavy():
    code = (
        "import sys, dlskills._cli.plot;"
        "heavy = [m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_function_choices_match_the_library():
    from dlskills._cli.plot import _FUNCTIONS
    from dlskills.bench.surfaces import FUNCTIONS

    assert set(_FUNCTIONS) == set(FUNCTIONS)
