import json
import math
import types

import pytest
import torch
from diagnose_nets import build_mlp, small_cnn
from torch import nn

import dlskills.diagnose
from dlskills.diagnose.doctor import Check, Diagnosis, doctor, grade, recommendations_for

CONTRACT_CHECKS = {
    "vanishing_gradients",
    "exploding_gradients",
    "init_fm1",
    "init_fm2",
    "dead_units",
    "overfitting",
    "underfitting",
}


def test_grade_thresholds_and_messages():
    assert grade("x", 0.5, warn=1, fail=2, what="v").verdict == "OK"
    warn = grade("x", 1.5, warn=1, fail=2, what="v")
    assert (warn.verdict, warn.threshold) == ("WARN", 1)
    fail = grade("x", 3.0, warn=1, fail=2, what="v")
    assert (fail.verdict, fail.threshold, fail.value) == ("FAIL", 2, 3.0)
    assert "3 (WARN > 1, FAIL > 2)" in fail.message
    low = grade("x", 1e-5, warn=1e-2, fail=1e-4, what="v", lower_is_worse=True)
    assert low.verdict == "FAIL" and "<" in low.message
    assert grade("x", math.nan, warn=1, fail=2, what="v").verdict == "FAIL"
    with pytest.raises(ValueError, match="verdict"):
        Check("x", "BAD", 0.0, 0.0, "")


def test_recommendations_follow_the_failing_checks():
    checks = [
        Check("overfitting", "WARN", 0.1, 0.08, ""),
        Check("exploding_gradients", "FAIL", 50.0, 30.0, ""),
        Check("dead_units", "OK", 0.0, 0.1, ""),
    ]
    advice = recommendations_for(checks)
    assert advice[0].startswith("[exploding_gradients]")
    assert any("dropout" in text for text in advice)
    assert not any(text.startswith("[dead_units]") for text in advice)


def test_healthy_cnn_on_digits_has_no_fail(tmp_path, digits_loaders):
    train, val = digits_loaders
    model = small_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    diagnosis = doctor(model, train, nn.CrossEntropyLoss(), val_loader=val, fit_steps=100)
    verdicts = {c.name: c.verdict for c in diagnosis.checks}
    assert set(verdicts) >= CONTRACT_CHECKS
    assert "FAIL" not in verdicts.values(), diagnosis.summary()
    assert diagnosis.check("underfitting").value < 0.9  # learning: well below the prior's loss
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())

    report = diagnosis.write_report(tmp_path / "doctor")
    text = report.read_text()
    assert "init_fm2" in text and "## Recommendations" in text
    assert {p.name for p in diagnosis.figures} >= {"init_check.png", "gradient_flow.png"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in diagnosis.figures)
    saved = json.loads((tmp_path / "doctor" / "diagnosis.json").read_text())
    assert {c["name"] for c in saved["checks"]} == set(verdicts)
    json.dumps(diagnosis.to_dict())


def test_sick_mlp_fails_with_recommendations(classification_batch):
    model = build_mlp([64] * 19, activation=nn.Sigmoid, weight_scale=0.5)
    history = [{"train_loss": 2.3, "val_loss": 2.3, "train_accuracy": 0.1, "val_accuracy": 0.1}] * 4
    diagnosis = doctor(model, classification_batch, nn.CrossEntropyLoss(), history=history)
    assert diagnosis.check("vanishing_gradients").verdict == "FAIL"
    assert diagnosis.check("underfitting").verdict == "FAIL"
    assert diagnosis.verdict == "FAIL"
    assert any("ReLU" in text for text in diagnosis.recommendations)


def test_doctor_validates_arguments(classification_batch):
    with pytest.raises(TypeError, match="model"):
        doctor(object(), classification_batch, nn.CrossEntropyLoss())
    loss = nn.CrossEntropyLoss()
    for bad, name in (
        ({"fit_steps": -1}, "fit_steps"),
        ({"n_inits": 1}, "n_inits"),
        ({"confusion_examples": 1}, "confusion_examples"),
        ({"lr": 0.0}, "lr"),
    ):
        with pytest.raises(ValueError, match=name):
            doctor(build_mlp([4]), classification_batch, loss, **bad)


def test_fit_steps_zero_skips_the_fitting_checks(classification_batch):
    diagnosis = doctor(build_mlp([8]), classification_batch, nn.CrossEntropyLoss(), fit_steps=0)
    assert "fitting" in diagnosis.skipped
    assert "overfitting" not in {c.name for c in diagnosis.checks}


def test_lazy_exports_resolve_to_functions():
    assert callable(dlskills.diagnose.doctor)
    assert dlskills.diagnose.doctor is doctor  # not the submodule of the same name
    assert dlskills.diagnose.init_check.__name__ == "init_check"
    assert dlskills.diagnose.Diagnosis is Diagnosis
    with pytest.raises(AttributeError):
        dlskills.diagnose.not_a_diagnostic
    assert {"pmv", "HoldoutGuard", "gradcheck", "GradMask"} <= set(dir(dlskills.diagnose))
    for name in dlskills.diagnose.__all__:  # a function or class, never the submodule
        assert not isinstance(getattr(dlskills.diagnose, name), types.ModuleType), name


def test_progress_reports_every_stage_in_order(classification_batch):
    from dlskills.diagnose.doctor import STAGES

    calls = []
    doctor(
        build_mlp([8]),
        classification_batch * 5,
        nn.CrossEntropyLoss(),
        fit_steps=6,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    starts = [stage for stage, done, _ in calls if done == 0]
    ends = [stage for stage, done, total in calls if done == total]
    assert starts == list(STAGES) and ends == list(STAGES)
    steps = [done for stage, done, total in calls if stage == "fitting" and 0 < done < total]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_denormal_mode_and_threads_are_restored_on_error(classification_batch):
    """The flush and the thread count are set for the diagnostics after the gradient-flow pass
    and restored even when one of them raises."""
    calls = {"n": 0}

    def failing_loss(out, y):
        calls["n"] += 1
        if calls["n"] > 3:  # gradient flow and a few more pass, then a stage fails
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(out, y)

    threads = torch.get_num_threads()
    subnormal = torch.tensor([2.0**-130])
    kept = bool(subnormal.mul(1.0)[0] != 0)
    with pytest.raises(RuntimeError, match="boom"):
        doctor(build_mlp([8]), classification_batch, failing_loss, num_threads=1)
    assert torch.get_num_threads() == threads
    assert bool(subnormal.mul(1.0)[0] != 0) == kept


def test_causes_name_the_root_first_and_recommendations_follow():
    from dlskills.diagnose.causes import find_causes

    checks = [
        Check("vanishing_gradients", "FAIL", 0.0, 1e-4, "v"),
        Check("dead_units", "FAIL", 0.9, 0.5, "d"),
        Check("underfitting", "FAIL", 1.0, 0.9, "u"),
        Check("overfitting", "WARN", 0.1, 0.08, "o"),
        Check("init_fm2", "OK", 1.0, 3.0, "f"),
    ]
    causes = find_causes(checks, {})
    assert [c.name for c in causes] == ["dead_units", "overfitting"]
    assert causes[0].explains == ("vanishing_gradients", "underfitting")
    assert (
        causes[0]
        .line()
        .startswith(
            "dead units (constant over the examples and passing no gradient); "
            "vanishing_gradients and underfitting follow from it"
        )
    )
    advice = recommendations_for(checks, causes)
    assert advice[0].startswith("[dead_units]")
    assert "[underfitting] follows from dead units" in " ".join(advice)
    assert not any("Increase capacity" in text for text in advice)  # the symptom's advice


def test_vanishing_from_the_init_needs_shrinking_activations():
    from dlskills.diagnose.causes import find_causes

    checks = [Check("vanishing_gradients", "FAIL", 1e-20, 1.2e-7, "v")]

    def activations(*squares):
        layers = [{"name": f"a{i}", "mean_square": m} for i, m in enumerate(squares)]
        return {"activations": {"layers": layers}}

    (shrinking,) = find_causes(checks, activations(1.0, 1e-3, 1e-30))
    assert shrinking.text == "vanishing gradients from the init"
    assert "shrink 30 decades" in shrinking.evidence
    (level,) = find_causes(checks, activations(0.2, 0.25, 0.21))
    assert level.text == "vanishing gradients"


def test_check_modules_stand_below_the_doctor():
    """DESIGN.md: the verdict types live below the checks; no check module imports doctor."""
    import ast
    from pathlib import Path

    import dlskills.diagnose.verdict

    folder = Path(dlskills.diagnose.verdict.__file__).parent
    for path in folder.glob("*.py"):
        if path.name in {"doctor.py", "__init__.py"}:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "dlskills.diagnose.doctor", path.name
