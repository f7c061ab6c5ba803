"""FG-SGD: a sphere step by hand, norms kept, Rayleigh quotients minimised, vectors as SGD."""

import math

import pytest
import torch

from dlskills.optim import FGSGD


def test_one_step_by_hand():
    # ω = (1, 0), g = (0.3, 0.4): tangent r = (0, 0.4), ‖r‖ < 1 so v = r,
    # ω' = cos(lr·0.4)·ω − sin(lr·0.4)·(0, 1)
    weight = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    opt = FGSGD([weight], lr=0.5)
    weight.grad = torch.tensor([[0.3, 0.4]], dtype=torch.float64)
    opt.step()
    angle = 0.5 * 0.4
    expected = torch.tensor([[math.cos(angle), -math.sin(angle)]], dtype=torch.float64)
    torch.testing.assert_close(weight.detach(), expected)


def test_large_gradients_are_rescaled_to_unit_norm():
    # g = (0, 5): ‖r‖ = 5 > 1, so v = r/5 and the rotation angle is exactly lr
    weight = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    opt = FGSGD([weight], lr=0.3)
    weight.grad = torch.tensor([[0.0, 5.0]], dtype=torch.float64)
    opt.step()
    expected = torch.tensor([[math.cos(0.3), -math.sin(0.3)]], dtype=torch.float64)
    torch.testing.assert_close(weight.detach(), expected)


@pytest.mark.parametrize("foreach", [False, True])
def test_minimises_rayleigh_quotients_on_unit_spheres(foreach):
    # min over unit ω of ωᵀAω is A's smallest eigenvalue; every output row must find it
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.5, 0.5], dtype=torch.float64)) @ q.T
    weight = torch.randn(3, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    opt = FGSGD([weight], lr=0.1, foreach=foreach)
    for _ in range(400):
        opt.zero_grad()
        torch.einsum("ri,ij,rj->", weight, a, weight).backward()
        opt.step()
    rows = weight.detach()
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(3, dtype=torch.float64))
    quotients = torch.einsum("ri,ij,rj->r", rows, a, rows)
    torch.testing.assert_close(quotients, torch.full((3,), 0.5, dtype=torch.float64))


def test_construction_renormalises_each_output_kernel():
    weight = torch.tensor([[3.0, 4.0], [0.0, 2.0]], requires_grad=True)
    FGSGD([weight], lr=0.1)
    torch.testing.assert_close(weight.detach(), torch.tensor([[0.6, 0.8], [0.0, 1.0]]))


def test_first_gradient_is_taken_at_the_renormalised_weights():
    """ω = (3, 4) becomes (0.6, 0.8) when the optimizer is built; the loss ½‖ω − e₁‖² is then
    differentiated there, g = ω − e₁ = (−0.4, 0.8), r = g − ⟨g, ω⟩ω = (−0.64, 0.48) (‖r‖ = 0.8
    < 1, so v = r) and ω' = cos(lr·0.8)·ω − sin(lr·0.8)·r/0.8."""
    weight = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    opt = FGSGD([weight], lr=0.5)
    target = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    (0.5 * (weight - target).square().sum()).backward()
    opt.step()
    omega = torch.tensor([0.6, 0.8], dtype=torch.float64)
    r = torch.tensor([-0.64, 0.48], dtype=torch.float64)
    expected = math.cos(0.4) * omega - math.sin(0.4) * r / 0.8
    torch.testing.assert_close(weight.detach()[0], expected, rtol=1e-12, atol=1e-15)


def test_weights_changed_after_construction_are_renormalised_without_a_step():
    weight = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    opt = FGSGD([weight], lr=0.5)
    with torch.no_grad():
        weight.copy_(torch.tensor([[3.0, 4.0]]))  # e.g. a checkpoint loaded afterwards
    weight.grad = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # taken at (3, 4)
    opt.step()
    torch.testing.assert_close(weight.detach(), torch.tensor([[0.6, 0.8]], dtype=torch.float64))
    opt.step()  # from now on it moves
    assert not torch.allclose(weight.detach(), torch.tensor([[0.6, 0.8]], dtype=torch.float64))


def test_rows_already_on_the_sphere_are_left_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 7, generator=generator)
    weight = weight / weight.norm(dim=1, keepdim=True)
    before = weight.clone()
    FGSGD([weight.requires_grad_()], lr=0.1)
    assert torch.equal(weight.detach(), before)


@pytest.mark.parametrize("foreach", [False, True])
def test_zero_rows_enter_the_sphere_along_minus_the_gradient_and_never_nan(foreach):
    weight = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], requires_grad=True)
    opt = FGSGD([weight], lr=0.1, foreach=foreach)
    assert torch.equal(weight.detach()[:2], torch.zeros(2, 3))  # construction keeps them 0
    weight.grad = torch.tensor([[0.3, 0.4, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    opt.step()
    torch.testing.assert_close(weight.detach()[0], torch.tensor([-0.6, -0.8, 0.0]))
    assert torch.equal(weight.detach()[1], torch.zeros(3))  # no gradient yet: stays 0
    torch.testing.assert_close(weight.detach()[2], torch.tensor([1.0, 0.0, 0.0]))


def test_fixup_style_zero_initialised_branch_trains_without_nan():
    torch.manual_seed(0)
    first, last = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)
    torch.nn.init.zeros_(last.weight)  # Fixup: the branch's last layer starts at 0
    torch.nn.init.zeros_(last.bias)
    params = list(first.parameters()) + list(last.parameters())
    opt = FGSGD(params, lr=0.05)
    x, y = torch.randn(32, 4), torch.randn(32, 4)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = (x + last(torch.relu(first(x))) - y).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(p).all() for p in params)
    torch.testing.assert_close(last.weight.detach().norm(dim=1), torch.ones(4))
    assert losses[-1] < losses[0]


def test_tensor_manifold_keeps_the_whole_tensor_on_one_sphere():
    weight = torch.tensor([[3.0, 4.0], [0.0, 2.0]], requires_grad=True)
    opt = FGSGD([weight], lr=0.1, manifold="tensor")
    for _ in range(3):
        weight.grad = torch.randn(2, 2)
        opt.step()
    assert weight.detach().norm().item() == pytest.approx(1.0, abs=1e-6)


def test_vectors_follow_sgd_with_weight_decay():
    ours = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    sgd = ours.detach().clone().requires_grad_()
    opt_ours = FGSGD([ours], lr=0.1, weight_decay=0.01)
    opt_sgd = torch.optim.SGD([sgd], lr=0.1, weight_decay=0.01)
    for _ in range(5):
        grad = torch.randn(3)
        ours.grad, sgd.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_sgd.step()
    torch.testing.assert_close(ours.detach(), sgd.detach())


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"lr": 0.0}, "lr"), ({"manifold": "stiefel"}, "manifold"), ({"weight_decay": -1}, "weight")],
)
def test_invalid_hyper_parameters_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        FGSGD([torch.zeros(1, requires_grad=True)], **kwargs)
