import math

import pytest
import torch
from diagnose_nets import HE, build_mlp
from torch import nn

from dlskills.diagnose.confusion import gradient_confusion, per_example_gradients


def test_per_example_gradients_match_a_loop():
    model = build_mlp([6], din=4, dout=3)
    x, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    grads = per_example_gradients(model, nn.CrossEntropyLoss(), x, y)
    for index in range(5):
        loss = nn.functional.cross_entropy(model(x[index : index + 1]), y[index : index + 1])
        expected = torch.cat(
            [g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))]
        )
        torch.testing.assert_close(grads[index], expected)


def test_pairwise_cosines_and_eta():
    model = build_mlp([6], din=4, dout=3)
    x, y = torch.randn(4, 4), torch.randint(0, 3, (4,))
    result = gradient_confusion(model, [(x, y)], nn.CrossEntropyLoss(), num_examples=4)
    grads = per_example_gradients(model, nn.CrossEntropyLoss(), x, y).double()
    expected = [
        float(nn.functional.cosine_similarity(grads[i], grads[j], dim=0))
        for i in range(4)
        for j in range(i + 1, 4)
    ]
    torch.testing.assert_close(result.cosines, torch.tensor(expected, dtype=torch.float32))
    inner = min(float(grads[i] @ grads[j]) for i in range(4) for j in range(i + 1, 4))
    assert result.eta == pytest.approx(max(0.0, -inner), rel=1e-5)
    assert result.min_cosine == pytest.approx(min(expected), rel=1e-5)


def _median_q05(depth, width, seeds=4):
    """5% quantile of pairwise cosines at He init on near-orthogonal inputs (CE loss)."""
    x = nn.functional.normalize(torch.randn(48, 128, generator=torch.Generator().manual_seed(0)))
    x = x * math.sqrt(128)
    y = torch.randint(0, 10, (48,), generator=torch.Generator().manual_seed(1))
    values = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = build_mlp([width] * depth, din=128, weight_scale=HE)
        values.append(
            gradient_confusion(model, [(x, y)], nn.CrossEntropyLoss(), num_examples=48).quantiles()[
                "q05"
            ]
        )
    return float(torch.tensor(values).median())


# The paper's width claim (wider -> less confusion) is not reproduced at initialisation in this
# setting and is therefore not asserted. Measured (He init, 48 near-orthogonal inputs in 256-d,
# 4 seeds; 5% quantile of pairwise cosines, CE loss): 2 layers of width 16 / 128 / 1024 give
# -0.04 / -0.05 / -0.07 (ReLU) and -0.04 / -0.02 / -0.02 (tanh); 200 SGD steps on a teacher task
# did not separate widths either. Depth shows the paper's effect in every variant tried.


def test_deeper_nets_have_more_gradient_confusion():
    """1904.06963: depth raises confusion. At width 64 the lower 5% tail of the pairwise cosines
    of a 1-hidden-layer net sits near -0.05; at 8 layers it is at least twice as negative."""
    shallow, deep = _median_q05(1, 64), _median_q05(8, 64)
    assert deep < 2.0 * shallow < 0


def test_validates_num_examples():
    with pytest.raises(ValueError, match="num_examples"):
        gradient_confusion(
            build_mlp([2]),
            [(torch.randn(2, 16), torch.zeros(2).long())],
            nn.CrossEntropyLoss(),
            num_examples=1,
        )
