"""MSBP (1905.10194): k = all is bit-identical to dense backprop; the sparse backward and its
memory against a hand computation on masked dense gradients; the multiply-add counters."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.nn.sparse_backprop import (
    SparseBackpropConv2d,
    SparseBackpropLinear,
    backprop_memories,
    backward_mac_saving,
    sparsify_backprop,
)


def _grads(layer, x, g):
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad()
    layer(x).backward(g)
    return x.grad, layer.weight.grad.clone(), layer.bias.grad.clone()


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
def test_k_all_linear_equals_dense_exactly(shape):
    torch.manual_seed(0)
    dense = nn.Linear(7, 9)
    sparse = SparseBackpropLinear(7, 9, ratio=1.0, alpha=0.8)
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(*shape)
    for _ in range(2):  # a second step: no memory is left over from the first
        g = torch.randn(*shape[:-1], 9)
        for a, b in zip(_grads(dense, x, g), _grads(sparse, x, g)):
            assert torch.equal(a, b)


def test_k_all_conv_equals_dense_exactly():
    torch.manual_seed(0)
    dense = nn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=1)
    sparse = SparseBackpropConv2d(3, 6, 3, stride=2, padding=1, ratio=1.0)
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(2, 3, 9, 9)
    g = torch.randn_like(dense(x))
    for a, b in zip(_grads(dense, x, g), _grads(sparse, x, g)):
        assert torch.equal(a, b)


def _reference_step(x, weight, g, memory, k, alpha):
    """One MSBP backward of y = x Wᵀ + b by hand (float64, masked dense products)."""
    released = g + memory
    scores = released.abs().sum(0)
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[scores.argsort(descending=True)[:k]] = True
    propagated = released * keep
    grads = propagated @ weight, propagated.T @ x, propagated.sum(0)
    return grads, alpha * released * ~keep


def test_sparse_linear_and_memory_match_the_hand_computation():
    torch.manual_seed(1)
    k, alpha = 3, 0.8
    layer = SparseBackpropLinear(6, 10, ratio=0.3, alpha=alpha).double()
    assert layer.k == k
    memory = torch.zeros(4, 10, dtype=torch.float64)
    for _ in range(4):
        x, g = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
        expected, memory = _reference_step(x, layer.weight.detach(), g, memory, k, alpha)
        for got, want in zip(_grads(layer, x, g), expected):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(layer.backprop_memory.memory, memory, rtol=0, atol=1e-12)
    # α = 0 is sparse backprop: nothing remembered
    sbp = SparseBackpropLinear(6, 10, ratio=0.3, alpha=0.0).double()
    _grads(sbp, x, g)
    assert sbp.backprop_memory.memory is None


def test_a_batch_of_another_shape_starts_without_memory():
    torch.manual_seed(2)
    layer = SparseBackpropLinear(6, 10, ratio=0.3, alpha=0.8).double()
    _grads(layer, torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64))
    x, g = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 10, dtype=torch.float64)
    zero = torch.zeros_like(g)
    expected, _ = _reference_step(x, layer.weight.detach(), g, zero, 3, 0.8)
    for got, want in zip(_grads(layer, x, g), expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_sparse_conv_matches_autograd_on_the_masked_gradient():
    torch.manual_seed(3)
    layer = SparseBackpropConv2d(3, 8, 3, padding=1, stride=2, ratio=0.25, alpha=0.5).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    memory = torch.zeros(2, 8, 4, 4, dtype=torch.float64)
    for _ in range(3):
        g = torch.randn(2, 8, 4, 4, dtype=torch.float64)
        released = g + memory
        keep = torch.zeros(8, dtype=torch.bool)
        keep[released.abs().sum((0, 2, 3)).argsort(descending=True)[:2]] = True
        mask = keep.view(1, 8, 1, 1)
        # independent: torch's own conv backward on the masked gradient
        xr = x.clone().requires_grad_(True)
        w = layer.weight.detach().clone().requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)
        F.conv2d(xr, w, b, stride=2, padding=1).backward(released * mask)
        memory = 0.5 * released * ~mask
        for got, want in zip(_grads(layer, x, g), (xr.grad, w.grad, b.grad)):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_mac_counters_and_model_conversion():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Linear(8, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 3)
    )
    reference = nn.Sequential(*[m for m in model])  # same modules before conversion
    x = torch.randn(5, 8)
    before = reference(x).detach()
    sparsify_backprop(model, ratio=0.1, alpha=0.8, skip=("4",))
    assert isinstance(model[0], SparseBackpropLinear) and type(model[4]) is nn.Linear
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)  # same forward
    model(x).sum().backward()
    # layer 0: input needs no gradient -> weight product only: 5·4·8 of 5·40·8
    # layer 2: both products: 2·5·4·40 of 2·5·40·40
    assert [m.backward_macs for m in backprop_memories(model)] == [5 * 4 * 8, 2 * 5 * 4 * 40]
    dense = 5 * 40 * 8 + 2 * 5 * 40 * 40
    assert backward_mac_saving(model) == pytest.approx(dense / (5 * 4 * 8 + 2 * 5 * 4 * 40))
    model.eval()  # eval: plain layers, no memory touched
    assert torch.equal(
        model(x), F.linear(F.relu(model[2](F.relu(model[0](x)))), model[4].weight, model[4].bias)
    )


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="ratio"):
        SparseBackpropLinear(3, 4, ratio=0.0)
    with pytest.raises(ValueError, match="alpha"):
        SparseBackpropLinear(3, 4, alpha=1.5)
    with pytest.raises(ValueError, match="groups"):
        SparseBackpropConv2d(4, 4, 3, groups=2)
