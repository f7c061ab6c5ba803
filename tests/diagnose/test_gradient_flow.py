import math

import pytest
import torch
from diagnose_nets import HE, build_mlp
from torch import nn

from dlskills import repro
from dlskills.diagnose.gradient_flow import (
    EXPLODING_FAIL,
    VANISHING_FAIL,
    GradientFlowCallback,
    gradient_flow,
)


def _verdicts(result):
    return {check.name: check.verdict for check in result.checks()}


def test_norms_match_autograd(classification_batch):
    model = build_mlp([8, 8], weight_scale=HE)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    x, y = classification_batch[0]
    loss = nn.functional.cross_entropy(model(x), y)
    weights = [model[0].weight, model[2].weight, model[4].weight]
    grads = torch.autograd.grad(loss, weights)
    # the result keeps float64 norms (float32 squares underflow below |g| ~ 1e-19)
    torch.testing.assert_close(result.grad_norm.float(), torch.stack([g.norm() for g in grads]))
    torch.testing.assert_close(result.weight_norm.float(), torch.stack([w.norm() for w in weights]))
    assert result.layers == ["0.weight", "2.weight", "4.weight"]
    assert result.loss == pytest.approx(loss.item())
    assert all(p.grad is None for p in model.parameters())  # measured on a copy


def test_deep_sigmoid_mlp_with_small_init_vanishes(classification_batch):
    """20 sigmoid layers with weights N(0, 0.25/fan_in): each layer scales the back-propagated
    signal by about σ'·|W| ≈ 0.25·0.5·(width/fan_in)^½, so the first layer's relative gradient is
    ~1e-17 of the last one's."""
    model = build_mlp([64] * 19, activation=nn.Sigmoid, weight_scale=0.5)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    assert result.vanishing < VANISHING_FAIL * 1e-6
    assert _verdicts(result) == {"vanishing_gradients": "FAIL", "exploding_gradients": "OK"}


def test_deep_relu_mlp_with_large_init_explodes(classification_batch):
    """20 ReLU layers at twice the He standard deviation: activations and gradients grow by 2
    per layer, so |g|/|W| ~ 2^19 · (He-init value ~0.05) ≈ 3e4."""
    model = build_mlp([64] * 19, weight_scale=2 * HE)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    assert result.exploding > 1e3 * EXPLODING_FAIL
    assert _verdicts(result)["exploding_gradients"] == "FAIL"


def test_he_init_relu_mlp_is_healthy(classification_batch):
    model = build_mlp([64] * 19, weight_scale=HE)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    assert _verdicts(result) == {"vanishing_gradients": "OK", "exploding_gradients": "OK"}


def test_fast_repro_gradient_variance_grows_with_sum_of_inverse_widths():
    """Hanin 1801.03744: at He init the first layer's normalised gradient variance across inits
    grows with β = Σ 1/width (8 hidden layers of 64, 16, 6: β = 0.125, 0.5, 1.33). Measured
    (60 inits, seeds 0-1): 0.34, 2.8, 8.6 — growth 8.1x and 3.4x, each asserted > 2.5x."""
    result = repro.get("1801.03744")(scale="fast")
    assert result.verdict == repro.fast_verdict("1801.03744") == "reproduced", result.reason
    assert result["growth β 0.125 → 0.5"] > 2.5
    assert result["growth β 0.5 → 1.33"] > 2.5
    assert result["slope of ln(normalised variance) vs β"] > 1.0


class _Trainer:
    """The attributes GradientFlowCallback reads, driven by a plain SGD loop."""

    def __init__(self, model, run_dir=None):
        self.model, self.step, self.run_dir = model, 0, run_dir


def _drive(callback, model, batches, lr, steps):
    trainer = _Trainer(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    callback.on_fit_start(trainer)
    for step in range(steps):
        x, y = batches[step % len(batches)]
        trainer.step = step
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        callback.on_after_backward(trainer)
        callback.on_before_step(trainer)
        optimizer.step()
        trainer.step = step + 1
        callback.on_batch_end(trainer)
    callback.on_fit_end(trainer)
    return trainer


def test_callback_samples_every_n_and_measures_the_sgd_update(classification_batch):
    """For SGD, ΔW = -lr·g, so |ΔW|/|W| · |W| = lr · |g| exactly."""
    model = build_mlp([8], weight_scale=HE)
    callback = GradientFlowCallback(every=3, plot=False)
    _drive(callback, model, classification_batch, lr=0.1, steps=10)
    assert [row["step"] for row in callback.history] == [0, 3, 6, 9]
    for row in callback.history:
        update = torch.tensor(row["update_ratio"]) * torch.tensor(row["weight_norm"])
        torch.testing.assert_close(update, 0.1 * torch.tensor(row["grad_norm"]))
    steps = [step for step, checks in callback.verdicts()]
    assert steps == [0, 3, 6, 9]


def test_callback_with_the_trainer_plots_into_run_dir(tmp_path, classification_batch):
    from dlskills.train import Trainer

    model = build_mlp([8], weight_scale=HE)
    callback = GradientFlowCallback(every=2)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        classification_batch,
        callbacks=[callback],
        max_steps=5,
        run_dir=tmp_path,
    )
    trainer.fit()
    assert [row["step"] for row in callback.history] == [0, 2, 4]
    assert callback.figure == tmp_path / "gradient_flow.png"
    assert callback.figure.exists()


def test_validates_every():
    with pytest.raises(ValueError, match="every"):
        GradientFlowCallback(every=0)
    assert math.isfinite(EXPLODING_FAIL)


def test_zero_initialised_layers_are_left_out_of_the_verdicts(classification_batch):
    """A zero-initialised classifier (Fixup, zero-init residual) is a structural zero, not an
    infinite relative gradient; when it blocks every other gradient, both checks WARN."""
    model = build_mlp([16, 16], weight_scale=HE)
    nn.init.zeros_(model[-1].weight)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    assert float(result.grad_norm[0]) == 0.0  # nothing flows past the zero layer
    assert {c.name: c.verdict for c in result.checks()} == {
        "vanishing_gradients": "WARN",
        "exploding_gradients": "WARN",
    }
    model = build_mlp([16, 16], weight_scale=HE)
    nn.init.zeros_(model[2].weight)  # a zero hidden layer: the ones after it still train
    nn.init.constant_(model[2].bias, 0.1)
    checks = gradient_flow(model, classification_batch, nn.CrossEntropyLoss()).checks()
    assert [c.verdict for c in checks] == ["OK", "OK"]
    assert "left out" in checks[0].message


def test_callback_drops_a_sample_whose_step_was_cancelled(classification_batch):
    model = build_mlp([8], weight_scale=HE)
    callback = GradientFlowCallback(every=2, plot=False)
    trainer = _Trainer(model)
    callback.on_fit_start(trainer)
    x, y = classification_batch[0]
    nn.functional.cross_entropy(model(x), y).backward()
    callback.on_after_backward(trainer)  # step 0 sampled, then the batch is cancelled
    trainer.step = 1  # (a real trainer would not advance; a later step must not reuse it)
    callback.on_after_backward(trainer)
    callback.on_before_step(trainer)
    callback.on_batch_end(trainer)
    callback.on_fit_end(trainer)
    assert callback.history == []


def _relative_by_autograd(model, x, y):
    """|dL/dW_j| / |W_j| of every Linear weight, in float64, straight from autograd."""
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), weights)
    return torch.stack(
        [g.double().norm() / w.detach().double().norm() for g, w in zip(grads, weights)]
    )


def test_agreeing_but_tiny_gradients_fail_the_absolute_floor(classification_batch):
    """24 tanh layers at 0.2x the unit scale: every layer's gradient carries the same product
    of 23 small Jacobians (|g_j| ~ |δ_j| |h_(j-1)| ~ 0.2^(L-1)), so the layers agree (min/max
    relative gradient ~0.3) while none can learn: lr·max r_j ~ 1e-20 is far below float32's
    resolution 1.2e-7."""
    model = build_mlp([64] * 24, activation=nn.Tanh, weight_scale=0.2)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss(), lr=1e-3)
    x, y = classification_batch[0]
    relative = _relative_by_autograd(model, x, y)
    assert float(relative.min() / relative.max()) > VANISHING_FAIL  # the ratio alone says OK
    check = {c.name: c for c in result.checks()}["vanishing_gradients"]
    assert check.verdict == "FAIL"
    assert check.value == pytest.approx(1e-3 * float(relative.max()), rel=1e-4)
    assert check.threshold == torch.finfo(torch.float32).eps
    assert "no layer can learn" in check.message
    assert result.max_update < torch.finfo(torch.float32).eps * 1e-6  # far below, not marginal


def test_update_floor_warns_between_eps_and_1e6(classification_batch):
    """The same healthy He-init MLP at a learning rate so small that lr·max r_j lands between
    the two floors: WARN (and OK at the usual 1e-3)."""
    model = build_mlp([16, 16], weight_scale=HE)
    x, y = classification_batch[0]
    largest = float(_relative_by_autograd(model, x, y).max())
    lr = 3e-7 / largest  # max update 3e-7: below 1e-6, above float32 eps
    for rate, verdict in ((lr, "WARN"), (1e-3, "OK")):
        result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss(), lr=rate)
        assert {c.name: c.verdict for c in result.checks()}["vanishing_gradients"] == verdict


def test_a_network_of_exact_zero_gradients_is_a_finding(classification_batch):
    """The last hidden ReLU layer is dead for every input (bias -100): the output is constant,
    so every weight gets exactly 0 gradient. No layer is zero-initialised, so these zeros are
    not structural and vanishing_gradients FAILs (it used to WARN as 'nothing graded')."""
    model = build_mlp([16, 16], weight_scale=HE)
    with torch.no_grad():
        model[2].bias.fill_(-100.0)
    result = gradient_flow(model, classification_batch, nn.CrossEntropyLoss())
    assert result.grad_norm.eq(0).all()
    check = {c.name: c for c in result.checks()}["vanishing_gradients"]
    assert check.verdict == "FAIL" and check.value == 0.0
    assert "exactly 0 gradient" in check.message


def test_unused_parameters_are_structural(classification_batch):
    """A weight the forward never uses gets no gradient (grad None): left out, not a FAIL."""

    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = build_mlp([16], weight_scale=HE)
            self.spare = nn.Linear(16, 16)

        def forward(self, x):
            return self.net(x)

    result = gradient_flow(WithSpare(), classification_batch, nn.CrossEntropyLoss())
    assert result.received.tolist() == [True, True, False]
    assert result.structural.tolist() == [False, False, True]
    assert [c.verdict for c in result.checks()] == ["OK", "OK"]


def test_subnormal_entries_are_counted():
    """Weights of 2^-140 (a float32 subnormal) on a unit input: the Linear's outputs are
    subnormal, so are the ones of the identity after it; the gradients of the weight and bias
    are 1 (the loss is the output's sum), so no gradient is subnormal."""
    if torch.set_flush_denormal(False) is False:
        pytest.skip("no denormal control on this CPU")
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.fill_(2.0**-140)
        layer.bias.zero_()
    model = nn.Sequential(layer, nn.Identity())
    batch = [(torch.ones(2, 4), torch.zeros(2, 3))]
    result = gradient_flow(model, batch, lambda out, y: out.sum())
    assert result.subnormal_activations == 1.0  # 6 + 6 outputs, all subnormal
    assert result.subnormal_gradients == 0.0


def test_gradients_whose_squares_underflow_are_counted():
    """Loss = 1e-21 · the sum of a Linear's outputs over two unit inputs: every weight and bias
    gradient is 2e-21, a normal float whose square (4e-42) is below float32's smallest normal
    1.2e-38 (Adam's second moment would be subnormal)."""
    layer = nn.Linear(4, 3)
    batch = [(torch.ones(2, 4), torch.zeros(2, 3))]
    result = gradient_flow(nn.Sequential(layer), batch, lambda out, y: 1e-21 * out.sum())
    assert result.subnormal_gradients == 0.0
    assert result.underflowing_squares == 1.0  # weight (12) and bias (3) entries: all of them
