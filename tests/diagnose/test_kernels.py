"""Kernel baselines: the NTK against its closed form for linear and two-layer ReLU nets, random
ReLU features against the arc-cosine kernel, kernel ridge against scikit-learn."""

import math

import pytest
import torch
from sklearn.kernel_ridge import KernelRidge
from torch import nn

from dlskills.diagnose.kernels import (
    RandomReLUFeatures,
    kernel_ridge,
    ntk_features,
    ntk_gram,
    ridge_coefficients,
)


def test_ntk_of_a_linear_model_is_the_inner_product_plus_one():
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    x1, x2 = torch.randn(7, 5), torch.randn(3, 5)
    torch.testing.assert_close(ntk_gram(model, x1, x2), x1 @ x2.T + 1)


def test_ntk_of_a_two_layer_relu_net_matches_its_closed_form():
    # f = aᵀ ReLU(Wx + b) + c:  Θ(x, x') = h·h' + 1 + Σ_j a_j² 1_j(x) 1_j(x') (x·x' + 1)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    x1, x2 = torch.randn(6, 4), torch.randn(5, 4)
    w, b, a = model[0].weight, model[0].bias, model[2].weight[0]

    def parts(x):
        pre = x @ w.T + b
        return torch.relu(pre), (pre > 0).float()

    (h1, on1), (h2, on2) = parts(x1), parts(x2)
    expected = h1 @ h2.T + 1 + ((on1 * a**2) @ on2.T) * (x1 @ x2.T + 1)
    before = [p.clone() for p in model.parameters()]
    torch.testing.assert_close(ntk_gram(model, x1, x2), expected.detach(), rtol=1e-5, atol=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    gram = ntk_gram(model, x1)
    torch.testing.assert_close(gram, gram.T)
    assert torch.linalg.eigvalsh(gram.double()).min() > -1e-6  # a Gram matrix


def test_ntk_features_chunks_and_rejects_several_outputs():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(10, 3)
    torch.testing.assert_close(ntk_features(model, x, chunk=3), ntk_features(model, x))
    assert ntk_features(model, x).shape == (10, 3 * 8 + 8 + 8 + 1)
    with pytest.raises(ValueError, match="one output per example"):
        ntk_features(nn.Linear(3, 2), x)
    with pytest.raises(ValueError, match="chunk"):
        ntk_features(model, x, chunk=0)


def test_random_relu_features_approach_the_arc_cosine_kernel():
    # E[ReLU(w·x) ReLU(w·x')] for w ~ N(0, I/d) = |x||x'| (sin θ + (π − θ) cos θ) / (2π d)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    phi = RandomReLUFeatures(6, 200_000, seed=4)(x)
    norms = x.norm(dim=1)
    cos = ((x @ x.T) / torch.outer(norms, norms)).clamp(-1, 1)
    theta = torch.arccos(cos)
    arccos = (
        torch.outer(norms, norms) * (torch.sin(theta) + (math.pi - theta) * cos) / (12 * math.pi)
    )
    torch.testing.assert_close(phi @ phi.T, arccos, rtol=0.02, atol=0.005)
    assert not any(p.requires_grad for p in RandomReLUFeatures(6, 10).parameters())
    with pytest.raises(ValueError, match="bias_std"):
        RandomReLUFeatures(6, 10, bias_std=-1.0)


def test_kernel_ridge_matches_scikit_learn_and_picks_the_best_validation_ridge():
    generator = torch.Generator().manual_seed(5)
    x, x_val = torch.randn(40, 3, generator=generator), torch.randn(20, 3, generator=generator)
    target = lambda z: torch.sin(z[:, 0]) + z[:, 1] * z[:, 2]  # noqa: E731
    y, y_val = target(x) + 0.1 * torch.randn(40, generator=generator), target(x_val)
    gram = torch.exp(-(torch.cdist(x, x) ** 2) / 2).double()
    gram_val = torch.exp(-(torch.cdist(x_val, x) ** 2) / 2).double()
    for ridge in (1e-3, 0.1):
        reference = KernelRidge(alpha=ridge * gram.trace().item() / 40, kernel="precomputed")
        reference.fit(gram.numpy(), y.double().numpy())
        coefficients = ridge_coefficients(gram, y, ridge)
        ours = (gram_val @ coefficients).numpy()
        torch.testing.assert_close(
            torch.from_numpy(ours),
            torch.from_numpy(reference.predict(gram_val.numpy())),
            rtol=1e-5,
            atol=1e-5,  # the small ridge leaves the RBF Gram ill-conditioned
        )
    fit = kernel_ridge(gram, y, gram_val, y_val, ridges=(1e-4, 1e-2, 1.0, 100.0))
    assert fit.ridge == min(fit.val_mse, key=fit.val_mse.get)
    assert fit.val_mse[100.0] > fit.val_mse[fit.ridge]
    torch.testing.assert_close(
        fit.predict(gram_val), gram_val @ ridge_coefficients(gram, y, fit.ridge)
    )
    with pytest.raises(ValueError, match="ridge must be positive"):
        ridge_coefficients(gram, y, 0.0)
    with pytest.raises(ValueError, match="ridges"):
        kernel_ridge(gram, y, gram_val, y_val, ridges=())
