"""The benchmark problems measure what their table says: each metric against an independent
computation, the closures against autograd and the loss, the batch stream against one epoch."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlskills.bench import problems, surfaces


def test_every_problem_is_listed_with_a_budget_and_a_target():
    assert list(problems.PROBLEMS) == [
        "noisy_quadratic",
        "rosenbrock",
        "beale",
        "digits_logreg",
        "digits_mlp",
        "digits_cnn",
        "adding_rnn",
        "digits_vae",
    ]
    for problem in problems.PROBLEMS.values():
        assert problem.steps > 0 and 0 < problem.eval_every <= problem.steps
        assert problem.goal in ("min", "max") and math.isfinite(problem.target)


def test_surface_metrics_at_the_start_point():
    # Rosenbrock at (−1.5, 2): (1 + 1.5)² + 100·(2 − 2.25)² = 6.25 + 6.25
    assert problems.get("rosenbrock").build(0).evaluate("test") == pytest.approx(12.5)
    # Beale at (1, 1.5): Σ (c_k − 1 + 1.5^k)²
    beale = sum((c - 1 + 1.5 ** (k + 1)) ** 2 for k, c in enumerate((1.5, 2.25, 2.625)))
    assert problems.get("beale").build(0).evaluate("test") == pytest.approx(beale)
    # the noisy quadratic's metric is the noise-free ½θᵀHθ (κ = 100), whatever the seed
    theta = torch.tensor([-1.5, 1.0], dtype=torch.float64)
    expected = 0.5 * theta @ surfaces.quadratic_hessian(100.0) @ theta
    for seed in (0, 1):
        task = problems.get("noisy_quadratic").build(seed)
        assert task.evaluate("test") == pytest.approx(float(expected))
        assert task.evaluate("val") == task.evaluate("test")


def test_noisy_quadratic_gradient_is_h_theta_plus_seeded_noise():
    task = problems.get("noisy_quadratic").build(3)
    task.closure("backward")()
    theta = torch.tensor([-1.5, 1.0], dtype=torch.float64)
    xi = 0.5 * torch.randn(2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(task.point.grad, surfaces.quadratic_hessian(100.0) @ theta + xi)


@pytest.mark.parametrize("name", ["digits_logreg", "digits_mlp", "digits_cnn"])
def test_digit_problems_measure_test_accuracy(name):
    from dlskills.data import load

    task = problems.get(name).build(0)
    x, y = load("digits", seed=0).test.tensors
    task.model.eval()
    with torch.no_grad():
        expected = (task.model(x).argmax(1) == y).double().mean().item()
    assert len(y) == 270
    assert task.evaluate("test") == pytest.approx(expected, abs=1e-6)
    assert task.model.training is False  # evaluate restores the mode it found


def test_adding_metric_is_the_mean_squared_error_and_the_constant_bar():
    from dlskills.data import load

    task = problems.get("adding_rnn").build(0)
    x, y = load("adding", seed=0, n=2000, length=10).test.tensors
    with torch.no_grad():
        expected = ((task.model(x) - y) ** 2).mean().item()
    assert task.evaluate("test") == pytest.approx(expected)
    with torch.no_grad():
        task.model.head.weight.zero_()
        task.model.head.bias.fill_(1.0)  # predicts E[y] = 1: MSE = Var(y) ≈ 1/6
    assert task.evaluate("test") == pytest.approx(((1.0 - y) ** 2).mean().item())
    assert task.evaluate("test") == pytest.approx(1 / 6, rel=0.15)


def test_vae_metric_is_the_negative_elbo_with_z_at_the_mean():
    from dlskills.data import load

    task = problems.get("digits_vae").build(0)
    x, _ = load("digits", seed=0).test.tensors
    vae = task.model
    with torch.no_grad():
        hidden = vae.encoder(x)
        mean, log_var = vae.to_mean(hidden), vae.to_log_var(hidden)
        squared = (vae.decoder(mean) - x).pow(2).flatten(1).sum(1)
        kl = 0.5 * (mean**2 + log_var.exp() - log_var - 1).sum(1)
    assert task.evaluate("test") == pytest.approx((0.5 * squared + kl).mean().item(), rel=1e-5)


def test_closures_agree_with_the_loss_and_autograd():
    task = problems.get("adding_rnn").build(1)
    task.next_batch()
    x, y = task.batch
    loss = task.closure("backward")()
    grads = [p.grad.clone() for p in task.params]
    expected = F.mse_loss(task.model(x), y)
    reference = torch.autograd.grad(expected, task.params)
    assert loss.item() == pytest.approx(expected.item())
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got, want)
    graph_loss, outputs = task.closure("graph")()
    assert graph_loss.item() == pytest.approx(expected.item()) and outputs.shape == y.shape
    residuals = task.closure("residuals")()
    assert residuals.square().mean().item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="residuals"):
        problems.get("digits_mlp").build(0).closure("residuals")
    vae = problems.get("digits_vae").build(0)
    vae.next_batch()
    assert vae.closure("graph")().dim() == 0  # loss only: no outputs for a Gauss-Newton product


def test_batches_cover_one_epoch_without_repeats_and_follow_the_seed():
    task = problems.get("digits_logreg").build(5)
    x_train = task.data["train"][0]
    seen = []
    for _ in range(len(x_train) // 64):
        task.next_batch()
        assert len(task.batch[0]) == 64
        seen.append(task.batch[0])
    rows = torch.cat(seen).flatten(1)
    assert len(torch.unique(rows, dim=0)) == len(rows) == (len(x_train) // 64) * 64
    again = problems.get("digits_logreg").build(5)
    again.next_batch()
    torch.testing.assert_close(again.batch[0], seen[0])
    other = problems.get("digits_logreg").build(6)
    other.next_batch()
    assert not torch.equal(other.batch[0], seen[0])


def test_reached_and_better_follow_the_goal_and_rank_nan_last():
    accuracy, loss = problems.get("digits_mlp"), problems.get("rosenbrock")
    assert accuracy.reached(0.96) and not accuracy.reached(0.959)
    assert loss.reached(0.01) and not loss.reached(0.011)
    assert not loss.reached(math.nan)
    assert accuracy.better(0.9, 0.8) and loss.better(0.1, 0.2)
    assert loss.better(1e9, math.nan) and not loss.better(math.nan, 1e9)


def test_unknown_problem_names_the_close_one():
    with pytest.raises(ValueError, match="did you mean 'digits_mlp'"):
        problems.get("digit_mlp")
