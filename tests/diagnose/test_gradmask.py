"""GradMask (1904.07478): the penalty of a linear model by hand (its input gradient is the
weight), the loss wrapper, and the Trainer callback's step equal to a step on the wrapped loss."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills.diagnose.gradmask import GradMask, GradMaskLoss, gradmask_penalty
from dlskills.train import Trainer


def linear_loss(outputs, targets):
    """Mean over the batch of ⟨v_y, output⟩: linear in the output, so ∂L/∂x_i = Wᵀv_{y_i} / B."""
    v = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    return (outputs * v[targets]).sum(1).mean()


def test_penalty_of_a_linear_model_by_hand():
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 1, 0])
    mask = torch.tensor([1.0, 0.0, 2.0])
    penalty = gradmask_penalty(x, linear_loss(model(x), y), mask)
    v = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    saliency = v[y] @ model.weight.detach() / 4  # rows: Wᵀ v_{y_i} / B
    expected = ((mask * saliency) ** 2).sum()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)
    # create_graph: the penalty has a gradient in W: ∂/∂W Σ_i ‖m ⊙ Wᵀv_i‖²/B²
    (grad_w,) = torch.autograd.grad(penalty, model.weight)
    manual = (
        sum(2 * torch.outer(v[t], mask**2 * (v[t] @ model.weight.detach())) for t in y.tolist())
        / 16
    )
    torch.testing.assert_close(grad_w, manual)


def test_loss_wrapper_adds_lambda_times_penalty():
    model = nn.Linear(3, 2)
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    mask = torch.tensor([0.0, 1.0, 1.0])
    wrapped = GradMaskLoss(model, nn.functional.cross_entropy, 0.7, lambda inputs, targets: mask)
    total = wrapped(x, y)
    assert total.item() == pytest.approx(
        (wrapped.last_task_loss + 0.7 * wrapped.last_penalty).item()
    )
    assert wrapped.last_task_loss.item() == pytest.approx(
        nn.functional.cross_entropy(model(x), y).item()
    )
    zero = GradMaskLoss(model, nn.functional.cross_entropy, 0.7, torch.zeros(3))
    assert zero(x, y).item() == pytest.approx(wrapped.last_task_loss.item())


def test_trainer_callback_steps_on_the_regularised_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    reference = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    reference.load_state_dict(model.state_dict())
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    mask = torch.tensor([1.0, 0.0, 1.0])
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    callback = GradMask(2.0, mask)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(
        model, optimizer, nn.functional.cross_entropy, loader, callbacks=[callback], max_steps=1
    ).fit()
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    GradMaskLoss(reference, nn.functional.cross_entropy, 2.0, mask)(x, y).backward()
    ref_optimizer.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert callback.last_penalty.item() > 0


def test_validation():
    with pytest.raises(ValueError, match="lam"):
        GradMask(-1.0, torch.ones(1))
    with pytest.raises(ValueError, match="require grad"):
        gradmask_penalty(torch.randn(2), torch.tensor(1.0), torch.ones(2))
