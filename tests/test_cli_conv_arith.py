"""`dlskills conv-arith`: sizes, relationship, matching transposed conv, diagram, errors."""

import subprocess
import sys

import pytest

from dlskills.cli import main


def run_cli(capsys, *argv):
    code = main(["conv-arith", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_direct_conv_prints_size_relationship_and_the_a_term(capsys):
    code, out, _ = run_cli(capsys, "--input", "6", "--kernel", "3", "--stride", "2", "-p", "1")
    assert code == 0
    assert "output size: o = 3" in out
    assert "relationship 6 (zero padding, non-unit strides)" in out
    # guide figure 4.7: (6 + 2 − 3) mod 2 = 1
    assert "output_padding=1): 3 -> 6" in out
    assert "relationship 14" in out
    assert "stretched to 5 (1 zero between units, 1 extra at the bottom/right)" in out


def test_transposed_layer_example_from_the_issue(tmp_path, capsys):
    png = tmp_path / "t.png"
    argv = ["-i", "5", "-k", "3", "-s", "2", "-p", "1", "--transposed", "--png", str(png)]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    assert "output size: o' = s(i' - 1) + a + k_hat - 2p = 2*(5 - 1) + 0 + 3 - 2 = 9" in out
    assert "transpose of the convolution i=9, k=3, s=2, p=1, d=1 (o = 5)" in out
    assert "padding p' = k_hat - p - 1 = 1" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"diagram: {png}" in out


def test_png_default_name_goes_to_the_current_folder_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli(capsys, "-i", "4", "-k", "3")
    assert list(tmp_path.iterdir()) == []
    run_cli(capsys, "-i", "4", "-k", "3", "--png")
    assert [p.name for p in tmp_path.iterdir()] == ["conv-arith.png"]


def test_named_paddings_pooling_and_dilation(capsys):
    _, out, _ = run_cli(capsys, "-i", "7", "-k", "3", "-d", "2", "-p", "same")
    assert "p=2, d=2" in out and "output size: o = 7" in out and "relationship 15" in out
    _, out, _ = run_cli(capsys, "-i", "5", "-k", "3", "-p", "full")
    assert "output size: o = 7" in out and "relationship 4 (full padding" in out
    _, out, _ = run_cli(capsys, "-i", "5", "-k", "2", "--pool", "--ceil-mode")
    assert "s=2" in out and "output size: o = 3" in out and "relationship 7" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-i", "2", "-k", "3"], "larger than the padded input"),
        (["-i", "5", "-k", "4", "-p", "same"], "odd effective kernel"),
        (["-i", "5", "-k", "3", "-s", "2", "--transposed", "-a", "2"], "output_padding"),
        (["-i", "5", "-k", "3", "--pool", "--transposed"], "exclude each other"),
    ],
)
def test_errors_are_one_clean_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_verb_module_imports_nothing_heavy():
    code = (
        "import sys, dlskills._cli.conv_arith; "
        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [["-i", "5", "-k", "2", "--pool", "--ceil-mode"], ["-i", "7", "-k", "3", "-d", "2", "-p", "1"]],
)
def test_pooling_and_dilated_diagrams_are_written(tmp_path, capsys, argv):
    png = tmp_path / "d.png"
    code, out, _ = run_cli(capsys, *argv, "--png", str(png))
    assert code == 0 and png.stat().st_size > 1000 and f"diagram: {png}" in out
