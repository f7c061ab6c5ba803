import subprocess
import sys

from dlskills.cli import main


def test_list_names_every_entry_whose_check_is_a_test(capsys):
    assert main(["repro", "--list"]) == 0
    listed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert listed["1603.07285"] == "tests/nn/conv/test_arith.py"
    assert listed["1905.10201"] == "tests/diagnose/test_pmv.py"
    assert "1905.10337" not in listed  # its check is still planned


def test_planned_and_missing_checks_fail_cleanly(capsys):
    assert main(["repro", "1905.10337"]) == 2
    assert "planned, not written yet" in capsys.readouterr().err
    assert main(["repro", "1404.7828"]) == 2
    assert "has no check" in capsys.readouterr().err


def test_runs_the_check_and_returns_its_verdict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dlskills", "repro", "sutton-1986", "--fast"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "failed" not in result.stdout
