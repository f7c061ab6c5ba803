"""Conformance suite over every registered layer (dlskills.nn.LAYERS): a layer is tested here by
registering it with an ``example`` (constructor kwargs, input shape)."""

import pytest
import torch

from dlskills.nn._registry import LAYERS

ENTRIES = LAYERS.entries()


def _build(entry, dtype=torch.float32):
    kwargs, input_shape = entry.meta["example"]
    torch.manual_seed(0)
    layer = entry.obj(**kwargs).to(dtype)
    # perturb every parameter away from its (often zero/one) init so gradients are generic
    with torch.no_grad():
        for param in layer.parameters():
            param.add_(0.1 * torch.randn_like(param))
    x = torch.randn(2, *input_shape, dtype=dtype)
    return layer, x


def test_every_layer_has_a_catalog_id_and_an_example():
    assert len(ENTRIES) >= 8
    for entry in ENTRIES:
        assert entry.catalog_id, entry.name
        kwargs, input_shape = entry.meta["example"]
        assert isinstance(kwargs, dict) and all(n > 0 for n in input_shape)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_forward_is_finite_and_eval_is_deterministic(entry):
    layer, x = _build(entry)
    layer.eval()
    first, second = layer(x), layer(x)
    assert first.shape[0] == x.shape[0]
    assert torch.isfinite(first).all()
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_float64_gradcheck(entry):
    layer, x = _build(entry, torch.float64)
    # eval: train-time randomness (dropout, random shift) would make finite differences meaningless
    layer.eval()
    params = [p for p in layer.parameters() if p.requires_grad]
    x.requires_grad_(True)

    # functional_call keeps autograd links from the outputs to the weight tensors
    names = [n for n, p in layer.named_parameters() if p.requires_grad]

    def call(inp, *weights):
        return torch.func.functional_call(layer, dict(zip(names, weights)), (inp,))

    weights = [p.detach().clone().requires_grad_(True) for p in params]
    assert torch.autograd.gradcheck(
        call, (x, *weights), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True
    )
