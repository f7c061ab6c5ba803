"""ROI regularisation (1905.08615): block contributions, mask, value and gradient against hand
computations on a linear softmax classifier (closed-form derivatives)."""

import pytest
import torch
from torch import nn

from dlskills.train.techniques.roi import block_contributions, roi_mask, roi_regularization


def _linear(seed=0, c=1, h=4, w=4, classes=3):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, classes)).double()
    x = torch.randn(5, c, h, w, dtype=torch.float64)
    return model, x


def test_contributions_are_block_sums_of_gradient_times_input():
    model, x = _linear(c=2)
    weight = model[1].weight.detach()  # (K, C·H·W)
    p = torch.softmax(model(x), 1).detach()
    c = p.argmax(1)
    for n in range(x.shape[0]):
        # ∂g_c/∂x = g_c (W_c − Σ_k g_k W_k) for softmax(W x + b)
        grad = p[n, c[n]] * (weight[c[n]] - p[n] @ weight)
        saliency = (grad * x[n].flatten()).reshape(2, 4, 4).sum(0)
        expected = torch.tensor(
            [[saliency[i : i + 2, j : j + 2].sum() for j in (0, 2)] for i in (0, 2)],
            dtype=torch.float64,
        )
        torch.testing.assert_close(block_contributions(model, x, 2)[n], expected)
    assert model[1].weight.grad is None  # the parameters receive nothing


def test_mask_drops_the_least_contributing_blocks():
    a = torch.tensor([[[3.0, -1.0], [0.5, 2.0]]])
    mask = roi_mask(a, block=2, ratio=0.5)  # 2 of 4 blocks: -1.0 and 0.5
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]).float()
    assert torch.equal(mask, expected.view(1, 1, 4, 4))
    assert torch.equal(roi_mask(a, 2, 0.0), torch.ones(1, 1, 4, 4))


def _by_hand(model, x, block, ratio, seed):
    """x_ROI and R with the same noise draw, p = g(x), q = g(x_ROI)."""
    mask = roi_mask(block_contributions(model, x, block), block, ratio)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    x_roi = mask * x + (1 - mask) * noise
    p = torch.softmax(model(x), 1).detach()
    q = torch.softmax(model(x_roi), 1).detach()
    value = (p * (p.log() - q.log())).sum(1).mean()
    return x_roi, p, q, value


def test_value_and_gradient_match_the_closed_form():
    model, x = _linear(seed=1)
    x_roi, p, q, value = _by_hand(model, x, 2, 0.5, seed=7)
    reg = roi_regularization(
        model, x, block=2, ratio=0.5, generator=torch.Generator().manual_seed(7)
    )
    assert reg.item() == pytest.approx(value.item(), rel=1e-12)
    reg.backward()
    # ∂R/∂z_ROI = (q − p)/N, g(x) held constant: ∂R/∂W = (q − p)ᵀ x_ROI / N, ∂R/∂b = mean(q − p)
    n = x.shape[0]
    expected_w = (q - p).T @ x_roi.flatten(1) / n
    torch.testing.assert_close(model[1].weight.grad, expected_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model[1].bias.grad, (q - p).mean(0), rtol=1e-10, atol=1e-12)


def test_gradient_of_a_conv_net_matches_finite_differences_on_fixed_masked_images():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 16, 4)
    ).double()
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    x_roi, p, _, _ = _by_hand(model, x, 2, 0.5, seed=3)
    roi_regularization(model, x, generator=torch.Generator().manual_seed(3)).backward()
    weight = model[0].weight
    analytic = weight.grad.clone()
    numeric = torch.zeros_like(weight)
    eps = 1e-6
    with torch.no_grad():
        for index in range(weight.numel()):
            flat = weight.view(-1)
            original = flat[index].item()
            values = []
            for sign in (1, -1):
                flat[index] = original + sign * eps
                q = torch.softmax(model(x_roi), 1)  # p and the masked image held fixed
                values.append((p * (p.log() - q.log())).sum(1).mean().item())
            flat[index] = original
            numeric.view(-1)[index] = (values[0] - values[1]) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_no_masked_block_means_no_regularisation():
    model, x = _linear(seed=3)
    assert roi_regularization(model, x, ratio=0.0).item() == pytest.approx(0.0, abs=1e-12)


def test_arguments_are_validated():
    model, x = _linear()
    with pytest.raises(ValueError, match="block"):
        roi_regularization(model, x, block=3)
    with pytest.raises(ValueError, match="ratio"):
        roi_regularization(model, x, ratio=1.0)
    with pytest.raises(ValueError, match="x must be"):
        block_contributions(model, x.flatten(1), 2)
