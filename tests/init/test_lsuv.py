"""LSUV (Mishkin & Matas; catalog 1803.01719 init schemes): unit output variance per layer."""

import pytest
import torch
from torch import nn

from dlskills import init


def _layer_output_variances(model: nn.Module, data: torch.Tensor) -> list[float]:
    variances = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: variances.append(out.var().item()))
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    with torch.no_grad():
        model(data)
    for hook in hooks:
        hook.remove()
    return variances


def test_every_layer_output_has_unit_variance_on_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(16, 32, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 3 * 3, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    data = 3.0 * torch.randn(128, 3, 8, 8) + 1.0
    init.apply(model, "lsuv", data=data, tol=0.01, max_iters=20)
    variances = _layer_output_variances(model, data)
    assert len(variances) == 4
    assert all(abs(v - 1.0) <= 0.01 for v in variances)
    # the pre-init is orthogonal: after rescaling by a scalar, rows stay mutually orthogonal
    weight = model[5].weight.detach().double()
    gram = weight @ weight.T
    off_diagonal = gram - torch.diag(torch.diagonal(gram))
    assert off_diagonal.abs().max() < 1e-6 * gram.diagonal().mean()


def test_target_variance_and_validation():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    data = torch.randn(256, 10)
    init.apply(model, "lsuv", data=data, target_variance=0.25, tol=1e-3)
    assert all(abs(v - 0.25) <= 1e-3 for v in _layer_output_variances(model, data))
    with pytest.raises(TypeError, match="data"):
        init.apply(model, "lsuv", data=[1, 2])
    with pytest.raises(ValueError, match="tol"):
        init.apply(model, "lsuv", data=data, tol=0)
