"""`dlskills plot optimizers` (1609.04747 trajectory plots)."""

import subprocess
import sys

import pytest

from dlskills._cli.plot import parse_optimizers
from dlskills.cli import main


def test_parse_optimizers_options_and_default_lr():
    parsed = parse_optimizers("sgd:lr=0.01, adam:betas=0.9;0.99 ,momentum", lr=0.5)
    assert parsed == {
        "sgd": {"lr": 0.01},
        "adam": {"betas": (0.9, 0.99), "lr": 0.5},
        "momentum": {"lr": 0.5},
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_optimizers("sgd:lr")
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
    from dlskills.optim.test_functions import FUNCTIONS

    assert set(_FUNCTIONS) == set(FUNCTIONS)
