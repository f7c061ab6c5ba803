import math

import pytest
import torch
from diagnose_nets import build_mlp
from torch import nn

from dlskills.diagnose.fitting import analyse_fit, constant_predictor_loss, short_fit


def _verdicts(analysis):
    return {c.name: c.verdict for c in analysis.checks()}


def test_random_labels_are_flagged_as_overfitting():
    """A wide MLP fitted to random labels memorises the training set (train accuracy → 1)
    while validation stays at chance (1/4): the gap is far above the FAIL threshold."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(192, 32, generator=generator)
    y = torch.randint(0, 4, (192,), generator=generator)
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:128], y[:128]),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    val = [(x[128:], y[128:])]
    rows = short_fit(
        build_mlp([256], din=32, dout=4),
        train,
        nn.CrossEntropyLoss(),
        val_loader=val,
        steps=240,
        lr=1e-2,
    )
    assert len(rows) == 8
    analysis = analyse_fit(rows, baseline_loss=constant_predictor_loss(y[:128]))
    assert rows[-1]["train_accuracy"] > 0.95
    assert rows[-1]["val_accuracy"] < 0.45
    assert analysis.gap > 0.5
    assert _verdicts(analysis) == {"overfitting": "FAIL", "underfitting": "OK"}


def test_underfitting_when_the_loss_stays_at_the_constant_predictor():
    rows = [
        {
            "epoch": e,
            "train_loss": 2.30 - 0.001 * e,
            "val_loss": 2.31,
            "train_accuracy": 0.11,
            "val_accuracy": 0.10,
        }
        for e in range(1, 7)
    ]
    analysis = analyse_fit(rows, baseline_loss=math.log(10))
    assert analysis.plateaued
    assert analysis.underfit_ratio == pytest.approx(2.294 / math.log(10))
    assert _verdicts(analysis) == {"overfitting": "OK", "underfitting": "FAIL"}


def test_rising_validation_loss_is_flagged():
    """Prechelt's generalisation loss: val loss 30% above its minimum while the gap widens."""
    train = [1.0, 0.7, 0.5, 0.35, 0.25, 0.18]
    val = [1.0, 0.8, 0.7, 0.75, 0.82, 0.91]
    rows = [{"train_loss": t, "val_loss": v} for t, v in zip(train, val)]
    analysis = analyse_fit(rows, baseline_loss=2.3)
    assert analysis.gap_kind.startswith("(val - train)")
    assert analysis.val_rise == pytest.approx(0.91 / 0.7 - 1)
    checks = {c.name: c for c in analysis.checks()}
    assert checks["overfitting"].verdict == "FAIL"


def test_healthy_curves_are_ok_and_strings_from_csv_are_accepted():
    rows = [
        {
            "epoch": "1",
            "train_loss": "1.0",
            "val_loss": "1.05",
            "train_accuracy": "0.7",
            "val_accuracy": "0.68",
        },
        {
            "epoch": "2",
            "train_loss": "0.4",
            "val_loss": "0.45",
            "train_accuracy": "0.9",
            "val_accuracy": "0.88",
        },
        {
            "epoch": "3",
            "train_loss": "0.2",
            "val_loss": "0.25",
            "train_accuracy": "0.95",
            "val_accuracy": "0.93",
        },
    ]
    assert _verdicts(analyse_fit(rows, baseline_loss=math.log(10))) == {
        "overfitting": "OK",
        "underfitting": "OK",
    }


def test_constant_predictor_loss():
    assert constant_predictor_loss(torch.arange(10).repeat(3)) == pytest.approx(math.log(10))
    assert constant_predictor_loss(torch.tensor([0, 0, 0, 1])) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    )
    assert constant_predictor_loss(torch.tensor([1.0, 3.0])) == pytest.approx(1.0)


def test_short_fit_does_not_touch_the_model_and_holds_out_batches():
    model = build_mlp([8], din=4, dout=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(10)]
    rows = short_fit(model, batches, nn.CrossEntropyLoss(), steps=16, evaluations=4)
    assert [r["step"] for r in rows] == [4, 8, 12, 16]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_validation():
    with pytest.raises(ValueError, match="history"):
        analyse_fit([{"train_loss": 1.0}])
    with pytest.raises(ValueError, match="steps"):
        short_fit(build_mlp([2], din=2), [], nn.CrossEntropyLoss(), steps=0)
    with pytest.raises(ValueError, match="lr"):
        short_fit(build_mlp([2], din=2), [], nn.CrossEntropyLoss(), lr=-1.0)


def test_instability_is_the_rise_above_the_best_loss_so_far():
    """Start 2.0, then 1.0, 0.5, 1.5: the loss climbs 1.0 above its best 0.5, relative to
    max(0.5, 0.1 L₀ = 0.23) → 2.0 (FAIL); a curve that only falls has 0 (OK); a NaN is inf."""
    rows = [
        {"train_loss": loss, "val_loss": loss, "train_accuracy": 0.5, "val_accuracy": 0.5}
        for loss in (1.0, 0.5, 1.5)
    ]
    analysis = analyse_fit(rows, baseline_loss=math.log(10), initial_loss=2.0)
    assert analysis.instability == pytest.approx(2.0)
    assert _verdicts(analysis)["unstable_training"] == "FAIL"
    falling = analyse_fit(rows[:2], baseline_loss=math.log(10), initial_loss=2.0)
    assert falling.instability == 0.0 and _verdicts(falling)["unstable_training"] == "OK"
    rows[1]["train_loss"] = float("nan")
    assert analyse_fit(rows, baseline_loss=2.3, initial_loss=2.0).instability == math.inf
    # near 0 the floor 0.1 L₀ keeps noise from counting: 0.01 → 0.02 is a rise of 0.01/0.23
    small = [dict(rows[0], train_loss=v) for v in (0.01, 0.02)]
    assert analyse_fit(small, baseline_loss=2.3, initial_loss=2.0).instability == pytest.approx(
        0.01 / 0.23
    )
    assert "unstable_training" not in _verdicts(analyse_fit(small, baseline_loss=2.3))
