import pytest

from dlskills.cli import main


def _model_available(name):
    from dlskills import models

    return name in models.MODELS


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_doctor_cli_writes_a_report(tmp_path, capsys, model):
    if not _model_available(model):
        pytest.skip(f"model {model!r} is not registered yet")
    out = tmp_path / "doctor"
    code = main(
        ["doctor", "--model", model, "--fit-steps", "40", "--inits", "3", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("init_fm1", "vanishing_gradients", "dead_units", "overfitting"):
        assert name in printed
    assert (out / "report.md").is_file()
    assert (out / "init_check.png").is_file()


def test_doctor_cli_rejects_bad_budget(capsys):
    assert main(["doctor", "--inits", "1"]) == 2
    assert "--inits" in capsys.readouterr().err
