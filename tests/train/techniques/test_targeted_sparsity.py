"""Targeted sparsity regularisation (2002.09237): the relaxed sparsity, the penalty and its
gradient against hand computations; the zero-fraction indicator; the hooks' life cycle."""

import math

import pytest
import torch
from torch import nn

from dlskills.train.techniques.targeted_sparsity import (
    TargetedSparsity,
    activation_sparsity,
    relaxed_sparsity,
)


def test_relaxed_sparsity_is_the_sigmoid_mean_and_tends_to_the_zero_fraction():
    z = torch.tensor([[-2.0, -0.5, 0.3], [1.0, 4.0, -3.0]], dtype=torch.float64)
    values = z.flatten().tolist()
    mean = sum(values) / 6
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    expected = sum(1 / (1 + math.exp(v / (0.1 * sd))) for v in values) / 6
    assert relaxed_sparsity(z, 0.1).item() == pytest.approx(expected, rel=1e-12)
    assert relaxed_sparsity(z, 1e-4).item() == pytest.approx(3 / 6, abs=1e-9)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


def test_penalty_and_its_gradient_match_the_hand_computation():
    net = _net().double()
    x = torch.randn(7, 4, dtype=torch.float64)
    tau, lam, t = 0.2, 3.0, 0.5
    reg = TargetedSparsity(net, weight=lam, target=tau, temperature=t)
    z1 = net[0](x)
    z2 = net[2](torch.relu(z1))
    net(x)
    penalty = reg.penalty()

    def by_hand(z):
        a = t * z.detach().std()
        s = torch.sigmoid(-z / a)
        excess = s.mean() - tau
        value = max(excess.item(), 0.0) ** 2
        # dR/dz_i = λ · 2 · max(0, ŝ − τ) · (1/n) · σ'(−z_i/a) · (−1/a), a detached
        grad = -lam * 2 * max(excess.item(), 0.0) / z.numel() * s * (1 - s) / a
        return value, grad.detach()

    (v1, g1), (v2, g2) = by_hand(z1), by_hand(z2)
    assert penalty.item() == pytest.approx(lam * (v1 + v2), rel=1e-12)
    assert v1 + v2 > 0
    # gradient with respect to the first layer's weights, by the chain rule through z1 and z2
    penalty.backward()
    expected_w0 = g1.T @ x + ((g2 @ net[2].weight) * (z1 > 0)).T @ x
    torch.testing.assert_close(net[0].weight.grad, expected_w0.detach(), rtol=1e-10, atol=1e-12)


def test_only_layers_above_their_target_are_penalised():
    net = _net()
    x = torch.randn(16, 4)
    reg = TargetedSparsity(net, weight=1.0, target=[1.0, 0.0])
    net(x)
    assert reg.penalty().item() == pytest.approx(
        relaxed_sparsity(net[2](torch.relu(net[0](x))), 0.1).item() ** 2, rel=1e-5
    )
    reg.remove()
    net(x)
    with pytest.raises(RuntimeError, match="forward pass"):
        reg.penalty()


def test_eval_and_no_grad_passes_are_not_recorded():
    net = _net()
    reg = TargetedSparsity(net, layers=["1"])
    net.eval()
    net(torch.randn(3, 4))
    net.train()
    with torch.no_grad():
        net(torch.randn(3, 4))
    assert reg.sparsity == {}


def test_activation_sparsity_is_the_zero_fraction_of_each_relu():
    net = _net()
    x = torch.randn(10, 4)
    h1 = torch.relu(net[0](x))
    h2 = torch.relu(net[2](h1))
    found = activation_sparsity(net, x)
    assert found == pytest.approx(
        {"1": (h1 == 0).float().mean().item(), "3": (h2 == 0).float().mean().item()}
    )
    assert net.training


def test_arguments_are_validated():
    net = _net()
    with pytest.raises(ValueError, match="weight"):
        TargetedSparsity(net, weight=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        TargetedSparsity(net, temperature=0.0)
    with pytest.raises(ValueError, match="target"):
        TargetedSparsity(net, target=[0.5])
    with pytest.raises(ValueError, match="layers"):
        TargetedSparsity(net, layers=["nope"])
    with pytest.raises(ValueError, match="layers"):
        TargetedSparsity(nn.Linear(2, 2))
