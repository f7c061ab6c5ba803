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


def test_doctor_cli_prints_one_plain_line_per_check_off_a_terminal(tmp_path, capsys):
    import json

    from dlskills.diagnose.doctor import STAGES

    args = ["doctor", "--model", "mlp", "--fit-steps", "10", "--inits", "2", "--json"]
    assert main([*args, "--out", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("doctor: check ")]
    assert [line.split()[3] for line in lines] == list(STAGES)
    assert lines[0].startswith(f"doctor: check 1/{len(STAGES)} gradient_flow (")
    assert "causes" in json.loads(captured.out)  # stdout stays plain JSON
    assert main([*args, "--out", str(tmp_path / "e"), "--no-progress"]) == 0
    assert "doctor: " not in capsys.readouterr().err


def test_a_terminal_gets_one_bar_with_the_check_under_way():
    import io

    from rich.console import Console

    from dlskills._cli.doctor import CheckProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    progress = CheckProgress(("gradient_flow", "fitting"), console=console)
    progress("gradient_flow", 0, 1)
    progress("gradient_flow", 1, 1)
    for step in range(5):
        progress("fitting", step, 5)
    assert progress.bar.done == 1  # the fit's steps are shown, not counted as checks
    progress("fitting", 5, 5)
    progress.close()
    assert progress.bar.done == 2
    text = buffer.getvalue()
    assert "2/2" in text and "fitting" in text and "doctor: check" not in text


def test_doctor_run_checks_the_folder_and_model_before_loading(tmp_path, capsys):
    """--run on a folder that is not a run, and --model naming another model than the run's, are
    one-line errors; --model naming the run's own model is accepted (it then needs the
    checkpoint, which this config-only folder lacks)."""
    import json

    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert main(["doctor", "--run", str(not_a_run)]) == 2
    assert capsys.readouterr().err == (
        f"dlskills doctor: error: not a run folder: {not_a_run} (no config.json)\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "mlp", "dataset": "digits"}))
    assert main(["doctor", "--run", str(run), "--model", "cnn"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"dlskills doctor: error: --model cnn: run {run} trained model 'mlp'")
    assert "drop --model" in error and error.count("\n") == 1
    assert main(["doctor", "--run", str(run), "--model", "mlp", "--dataset", "digits"]) == 2
    assert f"run folder {run} has no checkpoint" in capsys.readouterr().err
