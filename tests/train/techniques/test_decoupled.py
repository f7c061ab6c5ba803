"""FDG (1906.09108): the pipeline's timing and delayed updates against a hand-written
simulation, K = 1 as plain backprop, and the claim: near-backprop accuracy on digits."""

import pytest
import torch
from torch import nn

from dlskills import repro
from dlskills.train.techniques.decoupled import (
    DecoupledArm,
    DelayedGradientTrainer,
    decoupled_check,
    plot_decoupled,
    split_sequential,
)


def test_one_module_is_plain_backprop():
    torch.manual_seed(0)
    batches = [(torch.randn(8, 5), torch.randint(0, 3, (8,))) for _ in range(6)]
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    twin = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    twin.load_state_dict(model.state_dict())
    trainer = DelayedGradientTrainer([model], [torch.optim.SGD(model.parameters(), lr=0.1)])
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    for x, y in batches:
        loss = trainer.train_step(x, y)
        optimizer.zero_grad()
        expected = nn.functional.cross_entropy(twin(x), y)
        expected.backward()
        optimizer.step()
        assert torch.equal(loss, expected.detach())
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def _hand_simulation(w0a, w0b, w1, batches, lr, shrink):
    """K = 2 by hand (no autograd): module 0 = x ↦ tanh(x·Aᵀ)·Bᵀ, module 1 = h ↦ h·Wᵀ with the
    loss ½‖out − y‖². At iteration t module 1 trains on module 0's output of t − 1 (batch t − 1)
    and posts δ = ∂L/∂h; module 0 backpropagates β·δ (posted at t − 1, so for batch t − 2)
    through its forward of t − 2 — stored activations, *current* B — updates, then runs batch t.
    """
    a, b, w = w0a.clone(), w0b.clone(), w1.clone()
    stored = {}  # iteration → (x, z = x·Aᵀ, u = tanh z, h = u·Bᵀ)
    posted = None  # δ from module 1 at the previous iteration
    losses = []
    for t, (x, _) in enumerate(batches):
        new_posted = None
        if t >= 2 and posted is not None:  # module 0's delayed update (d_0 = 2)
            x_old, z_old, u_old, _ = stored.pop(t - 2)
            g_h = shrink * posted
            grad_b = g_h.T @ u_old
            g_z = (g_h @ b) * (1 - torch.tanh(z_old) ** 2)
            grad_a = g_z.T @ x_old
            a, b = a - lr * grad_a, b - lr * grad_b
        z = x @ a.T
        u = torch.tanh(z)
        stored[t] = (x, z, u, u @ b.T)
        if t >= 1:  # module 1 on the output module 0 posted at t − 1
            h, target = stored[t - 1][3], batches[t - 1][1]
            out = h @ w.T
            g_out = out - target
            losses.append(0.5 * (g_out**2).sum())
            new_posted = g_out @ w
            w = w - lr * (g_out.T @ h)
        posted = new_posted
    return a, b, w, losses


@pytest.mark.parametrize("shrink", [1.0, 0.5])
def test_two_modules_match_the_hand_simulation(shrink):
    generator = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    batches = [(randn(6, 3), randn(6, 2)) for _ in range(9)]
    w0a, w0b, w1 = randn(4, 3) * 0.5, randn(4, 4) * 0.5, randn(2, 4) * 0.5
    first = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 4, bias=False))
    second = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        first[0].weight.copy_(w0a)
        first[2].weight.copy_(w0b)
        second.weight.copy_(w1)
    first, second = first.double(), second.double()
    trainer = DelayedGradientTrainer(
        [first, second],
        [torch.optim.SGD(m.parameters(), lr=0.05) for m in (first, second)],
        lambda out, y: 0.5 * ((out - y) ** 2).sum(),
        shrink=shrink,
    )
    losses = [trainer.train_step(x, y) for x, y in batches]
    a, b, w, expected_losses = _hand_simulation(w0a, w0b, w1, batches, 0.05, shrink)
    assert losses[0] is None  # the pipeline fills for K − 1 = 1 iteration
    torch.testing.assert_close(torch.stack(losses[1:]), torch.stack(expected_losses))
    torch.testing.assert_close(first[0].weight.detach(), a)
    torch.testing.assert_close(first[2].weight.detach(), b)
    torch.testing.assert_close(second.weight.detach(), w)
    assert trainer.delays == [2, 0]


def test_split_sequential_shares_the_layers_and_validates():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    pieces = split_sequential(model, [2, 4])
    assert [len(p) for p in pieces] == [2, 2, 1]
    assert pieces[1][0] is model[2]
    x = torch.randn(5, 2)
    torch.testing.assert_close(pieces[2](pieces[1](pieces[0](x))), model(x))
    for bad in ([0], [5], [3, 2], [2, 2]):
        with pytest.raises(ValueError, match="boundaries"):
            split_sequential(model, bad)
    with pytest.raises(TypeError, match="Sequential"):
        split_sequential(nn.Linear(2, 2), [1])


def test_arguments_are_validated():
    layer = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="shrink"):
        DelayedGradientTrainer([layer], [optimizer], shrink=0.0)
    with pytest.raises(ValueError, match="one optimizer per module"):
        DelayedGradientTrainer([layer, layer], [optimizer])
    with pytest.raises(ValueError, match="at least one"):
        DelayedGradientTrainer([], [])


def test_fast_repro_decoupled_modules_train_near_backprop_on_digits():
    """The claim (1906.09108) at fast scale: an MLP cut into K = 2 and K = 3 modules trained with
    delayed gradients shrunk by β = 0.5 reaches plain backprop's test accuracy on digits within
    1.5 points (paired per seed, mean of seeds 0-2, 15 epochs; at 10 epochs K = 2 is still
    2.2 points behind)."""
    result = repro.get("1906.09108")(scale="fast")
    assert result.verdict == repro.fast_verdict("1906.09108") == "reproduced", result.reason
    assert result.quantity("backprop − FDG K = 2").seeds == (0, 1, 2)
    assert result["test accuracy, backprop"] > 95.0
    assert result["backprop − FDG K = 2"] <= 1.5
    assert result["backprop − FDG K = 3"] <= 1.5


def test_plot_shows_every_arm(tmp_path):
    arms = decoupled_check([((), 1.0), ((3,), 0.5)], seeds=(0,), epochs=1)
    assert [len(arm.accuracy[0]) for arm in arms] == [1, 1]
    path = plot_decoupled(arms, tmp_path / "fdg.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_is_readable(tmp_path, saved_figures):
    arms = [
        DecoupledArm((), 0.0, [[0.90, 0.95, 0.97], [0.91, 0.94, 0.96]]),
        DecoupledArm((2,), 0.5, [[0.88, 0.94, 0.96], [0.90, 0.93, 0.97]]),
    ]
    plot_decoupled(arms, tmp_path / "fdg.png")
    [fig] = saved_figures
    assert saved_figures.readable(fig)
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 2
    assert saved_figures.integer_ticks(ax.xaxis) == [1, 2, 3]
