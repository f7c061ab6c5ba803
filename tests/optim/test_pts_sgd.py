"""PTS-SGD: window averages by hand, the exponential window, window = 1 is SGD."""

import pytest
import torch

from dlskills.optim import PTSSGD

GRADS = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 1.0]]


def _run(**kwargs):
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = PTSSGD([param], **kwargs)
    path = []
    for grad in GRADS:
        param.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        path.append(param.detach().clone())
    return path


@pytest.mark.parametrize("foreach", [False, True])
def test_plain_window_average_by_hand(foreach):
    # w = 2, lr = 1: steps −g1/2, −(g1+g2)/2, −(g2+g3)/2, −(g3+g4)/2 (g_j = 0 for j ≤ 0)
    path = _run(lr=1.0, window=2, foreach=foreach)
    expected = [[-0.5, -1.0], [-2.5, -1.5], [-4.25, -1.25], [-3.5, -2.0]]
    for got, want in zip(path, expected):
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_exponential_window_by_hand():
    # w = 2, α = 0.5, W = 1.5, lr = 1.5 so θ moves by S_t = g_t + 0.5·g_{t−1}
    path = _run(lr=1.5, window=2, alpha=0.5)
    g = torch.tensor(GRADS, dtype=torch.float64)
    sums = [g[0], g[1] + 0.5 * g[0], g[2] + 0.5 * g[1], g[3] + 0.5 * g[2]]
    expected = -torch.cumsum(torch.stack(sums), dim=0)
    torch.testing.assert_close(torch.stack(path), expected)


def test_window_one_is_sgd():
    ours = torch.tensor([1.0, -1.0], requires_grad=True)
    sgd = torch.tensor([1.0, -1.0], requires_grad=True)
    opt_ours = PTSSGD([ours], lr=0.1, window=1, weight_decay=0.01)
    opt_sgd = torch.optim.SGD([sgd], lr=0.1, weight_decay=0.01)
    for grad in GRADS:
        ours.grad, sgd.grad = torch.tensor(grad), torch.tensor(grad)
        opt_ours.step()
        opt_sgd.step()
    torch.testing.assert_close(ours.detach(), sgd.detach())


def test_smoothing_reduces_the_spread_of_noisy_steps():
    # on pure noise, a w-window average has 1/w of the variance of one gradient
    generator = torch.Generator().manual_seed(0)
    param = torch.zeros(20000, dtype=torch.float64, requires_grad=True)
    opt = PTSSGD([param], lr=1.0, window=4)
    moves = []
    for _ in range(6):
        before = param.detach().clone()
        param.grad = torch.randn(20000, generator=generator, dtype=torch.float64)
        opt.step()
        moves.append(param.detach() - before)
    assert moves[-1].var().item() == pytest.approx(1 / 4, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lr": 0.0}, "lr"),
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"alpha": 0.0}, "alpha"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_invalid_hyper_parameters_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        PTSSGD([torch.zeros(1, requires_grad=True)], **kwargs)
