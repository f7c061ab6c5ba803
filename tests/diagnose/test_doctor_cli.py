from dlskills.cli import main


def test_doctor_cli_writes_a_report(tmp_path, capsys):
    """The default model (cnn) when the zoo has it, else the MLP, on digits with a small budget."""
    from dlskills import models

    model = "cnn" if "cnn" in models.MODELS else "mlp"
    out = tmp_path / "doctor"
    code = main(
        ["doctor", "--model", model, "--fit-steps", "40", "--inits", "3", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("init_fm1", "init_fm2", "vanishing_gradients", "dead_units", "overfitting"):
        assert name in printed
    assert "overall FAIL" not in printed
    assert (out / "report.md").is_file()
    assert (out / "init_check.png").is_file()


def test_doctor_cli_rejects_bad_budget(capsys):
    assert main(["doctor", "--inits", "1"]) == 2
    assert "--inits" in capsys.readouterr().err


def test_doctor_cli_on_a_finished_run_uses_its_curves(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--model", "mlp", "--epochs", "2", "--out", str(run), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["doctor", "--run", str(run), "--inits", "2"]) == 0
    printed = capsys.readouterr().out
    assert "overfitting" in printed and "underfitting" in printed
    report = (run / "doctor" / "report.md").read_text()
    assert "fitting.png" in report
