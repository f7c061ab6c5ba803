import math

import pytest
import torch
from diagnose_nets import build_mlp
from torch import nn

from dlskills import repro
from dlskills.diagnose.activations import (
    ActivationStatsCallback,
    activation_stats,
    entropy_and_mutual_information,
)


def test_half_dead_relu_layer():
    """Biases of -100 on half the units of a ReLU layer keep them at 0 for every input."""
    model = build_mlp([8], din=4, dout=2)
    with torch.no_grad():
        model[0].weight.normal_(0, 0.1)
        model[0].bias[:4] = -100.0
        model[0].bias[4:] = 1.0
    loader = [(torch.randn(32, 4), torch.randint(0, 2, (32,)))]
    stats = activation_stats(model, loader, num_batches=1)
    (layer,) = stats.layers
    assert layer.dead_fraction == 0.5
    checks = {c.name: c for c in stats.checks()}
    assert checks["dead_units"].verdict == "WARN"
    assert checks["dead_units"].value == 0.5


def test_saturated_sigmoid_is_flagged():
    model = build_mlp([16], din=4, dout=2, activation=nn.Sigmoid)
    with torch.no_grad():
        model[0].weight.mul_(1e3)
    stats = activation_stats(model, [(torch.randn(64, 4), torch.randint(0, 2, (64,)))])
    checks = {c.name: c.verdict for c in stats.checks()}
    assert checks["saturated_units"] == "FAIL"
    assert stats.layers[0].saturated_fraction > 0.9


def test_entropy_and_mutual_information_by_binning():
    """A unit that equals the label carries I = H(Y) = log2(4) = 2 bits; a constant-within-class
    copy too; a unit independent of the label (uniform over bins, balanced) carries 0."""
    labels = torch.arange(4).repeat(64)  # 256 examples, balanced
    informative = labels.float()
    independent = torch.arange(256).div(4, rounding_mode="floor").remainder(4).float()
    units = torch.stack([informative, independent], dim=1)
    entropy, information = entropy_and_mutual_information(units, labels, bins=4)
    torch.testing.assert_close(entropy, torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(information, torch.tensor([2.0, 0.0]), atol=1e-6, rtol=0)


def test_conv_channels_are_units_and_class_means_form_the_heat_map():
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
    x, y = torch.randn(10, 1, 4, 4), torch.tensor([0, 1] * 5)
    stats = activation_stats(model, [(x, y)])
    (layer,) = stats.layers
    assert layer.units == 3
    pooled = torch.relu(model[0](x)).mean(dim=(2, 3)).detach()
    torch.testing.assert_close(layer.class_means[0], pooled[y == 0].mean(0))
    torch.testing.assert_close(layer.class_means[1], pooled[y == 1].mean(0))


def test_stats_and_plot(tmp_path):
    model = build_mlp([8, 8], din=4, dout=3, activation=nn.Tanh)
    stats = activation_stats(model, [(torch.randn(30, 4), torch.randint(0, 3, (30,)))])
    assert [s.name for s in stats.layers] == ["1", "3"]
    assert stats.plot(tmp_path / "a.png").exists()
    assert math.isfinite(stats.to_dict()["layers"][0]["entropy_bits"])


def test_needs_class_labels():
    with pytest.raises(ValueError, match="labels"):
        activation_stats(build_mlp([2], din=2), [(torch.randn(4, 2), torch.randn(4))])


class _Trainer:
    def __init__(self, model, run_dir=None):
        self.model, self.step, self.run_dir = model, 0, run_dir


def test_callback_samples_with_hooks_only_on_sampled_steps(tmp_path):
    model = build_mlp([8], din=4, dout=2)
    callback = ActivationStatsCallback(every=4)
    trainer = _Trainer(model, tmp_path)
    x = torch.randn(16, 4)
    callback.on_fit_start(trainer)
    attached = []
    for step in range(9):
        trainer.step = step
        callback.on_batch_start(trainer)
        attached.append(len(model[1]._forward_hooks))
        model(x).sum().backward()
        callback.on_after_backward(trainer)
        callback.on_batch_end(trainer)
    callback.on_fit_end(trainer)
    assert attached == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert not model[1]._forward_hooks
    assert [row["step"] for row in callback.history] == [0, 4, 8]
    expected = torch.relu(model[0](x)).detach()
    assert callback.history[-1]["mean"][0] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert callback.figure.exists()


def test_callback_removes_hooks_on_exception():
    model = build_mlp([8], din=4, dout=2)
    callback = ActivationStatsCallback(every=1, plot=False)
    trainer = _Trainer(model)
    callback.on_fit_start(trainer)
    callback.on_batch_start(trainer)
    assert model[1]._forward_hooks
    callback.on_exception(trainer, RuntimeError("boom"))
    callback.on_fit_end(trainer)
    assert not model[1]._forward_hooks


def test_callback_with_the_trainer(tmp_path):
    from dlskills.train import Trainer

    model = build_mlp([8, 8], din=4, dout=2)
    callback = ActivationStatsCallback(every=3)
    batches = [(torch.randn(16, 4), torch.randint(0, 2, (16,))) for _ in range(4)]
    Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        batches,
        callbacks=[callback],
        max_epochs=2,
        run_dir=tmp_path,
    ).fit()
    assert [row["step"] for row in callback.history] == [0, 3, 6]
    assert callback.history[0]["layers"] == ["1", "3"]
    assert all(not module._forward_hooks for module in model.modules())
    assert (tmp_path / "activations.png").is_file()


def _tanh_layer(weight, bias, din=4, units=8):
    model = nn.Sequential(nn.Linear(din, units), nn.Tanh(), nn.Linear(units, 2))
    with torch.no_grad():
        model[0].weight.fill_(0).add_(weight * torch.randn(units, din))
        model[0].bias.fill_(bias)
    return model


def test_small_varying_tanh_units_are_not_dead():
    """A tanh unit with tiny outputs that still vary over the examples (a signal shrunk by a
    small init) is near-linear, not dead: it used to count as dead because its range was below
    1e-6 in absolute terms."""
    torch.manual_seed(0)
    model = _tanh_layer(weight=1e-9, bias=0.0)
    x = torch.randn(64, 4)
    outputs = torch.tanh(model[0](x)).detach()
    assert outputs.abs().max() < 1e-7 and bool((outputs.amax(0) > outputs.amin(0)).all())
    (layer,) = activation_stats(model, [(x, torch.randint(0, 2, (64,)))]).layers
    assert layer.dead_fraction == 0.0
    assert layer.mean_square == pytest.approx(float(outputs.double().pow(2).mean()), rel=1e-5)


def test_constant_units_with_slope_are_not_dead_but_saturated_ones_are():
    """Weights ~0 and bias 0.5: every unit is constant at tanh(0.5) but its slope
    1 - tanh²(0.5) = 0.79 passes gradient back (a vanished input, not a dead unit). Bias 20:
    constant at 1 - 8e-18 with slope ~4e-17: stuck at the bound, dead."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    (level,) = activation_stats(_tanh_layer(1e-12, 0.5), [(x, y)]).layers
    assert (level.constant_fraction, level.dead_fraction) == (1.0, 0.0)
    (stuck,) = activation_stats(_tanh_layer(1e-12, 20.0), [(x, y)]).layers
    assert (stuck.constant_fraction, stuck.dead_fraction) == (1.0, 1.0)


def test_in_place_relu_dead_units():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    with torch.no_grad():
        model[0].bias[:6] = -100.0
        model[0].bias[6:] = 100.0
    stats = activation_stats(model, [(torch.randn(32, 4), torch.randint(0, 2, (32,)))])
    assert stats.layers[0].dead_fraction == 0.75  # 6 of 8 never fire; 2 always fire (and vary)


def test_callback_dead_fraction_uses_the_slope():
    """The callback's per-step dead fraction follows the same definition."""
    callback = ActivationStatsCallback(every=1, plot=False)
    x = torch.randn(16, 4)
    for model, expected in ((_tanh_layer(1e-9, 0.0), 0.0), (_tanh_layer(1e-12, 20.0), 1.0)):
        trainer = _Trainer(model)
        callback.history.clear()
        callback.on_fit_start(trainer)
        callback.on_batch_start(trainer)
        model(x).sum().backward()
        callback.on_after_backward(trainer)
        callback.on_fit_end(trainer)
        assert callback.history[-1]["dead_fraction"] == [expected]


def test_fast_repro_entropy_falls_with_depth_but_mostly_without_training():
    """1905.08618 (300 Adam steps, digits, 4 ReLU layers of 64, seeds 0-4): in the trained
    nets the mean unit entropy falls from the first to the last hidden layer by 0.40 bits
    (slope -0.13 bits/layer), as the paper reports; but the untrained nets (the control) fall by
    0.31 bits, so training adds only 0.09 ± 0.16: partial."""
    result = repro.get("1905.08618")(scale="fast")
    assert result.verdict == repro.fast_verdict("1905.08618") == "partial", result.reason
    assert result["entropy drop first → last layer, trained"] > 0.1
    assert result["entropy slope over depth, trained"] < 0
    assert result["extra drop from training"] < 0.1
    assert "not training" in result.reason
    assert result.quantity("test accuracy").seeds == (0, 1, 2, 3, 4)
