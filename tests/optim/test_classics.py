"""The torch.optim classics by name: right classes and defaults, catalog ids, reference maths."""

import pytest
import torch

from dlskills.optim import OPTIMIZERS, create

CLASSICS = {
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "amsgrad": torch.optim.Adam,
    "adamax": torch.optim.Adamax,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "asgd": torch.optim.ASGD,
}


@pytest.mark.parametrize(("name", "cls"), CLASSICS.items())
def test_create_returns_the_torch_class(name, cls):
    assert type(create(name, [torch.zeros(2, requires_grad=True)])) is cls


def test_named_variants_set_their_options():
    params = [torch.zeros(2, requires_grad=True)]
    assert create("momentum", params).param_groups[0]["momentum"] == 0.9
    nesterov = create("Nesterov", params).param_groups[0]
    assert nesterov["nesterov"] is True and nesterov["momentum"] == 0.9
    assert create("amsgrad", params).param_groups[0]["amsgrad"] is True
    assert type(create("gd", params)) is torch.optim.SGD
    assert type(create("batch-gd", params)) is torch.optim.SGD


def test_catalog_ids():
    ids = {name: OPTIMIZERS.entry(name).catalog_id for name in CLASSICS}
    assert ids["momentum"] == "qian-1999"
    assert ids["adagrad"] == "duchi-2011"
    assert ids["adadelta"] == "1212.5701"
    assert ids["adam"] == ids["amsgrad"] == ids["adamax"] == "1412.6980"
    assert ids["sgd"] == ids["nesterov"] == ids["rmsprop"] == "1609.04747"


def test_heavy_ball_and_nesterov_steps_by_hand():
    # constant g = 1, lr = 0.1, μ = 0.9:
    # heavy ball: b = 1, 1.9 → θ = −0.1·(1 + 1.9) = −0.29
    # Nesterov: b = 1, 1.9, step g + μb = 1.9, 2.71 → θ = −0.1·(1.9 + 2.71) = −0.461
    for name, expected in (("momentum", -0.29), ("nesterov", -0.461)):
        param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = create(name, [param], lr=0.1)
        for _ in range(2):
            param.grad = torch.ones(1, dtype=torch.float64)
            opt.step()
        assert param.item() == pytest.approx(expected)


def test_adam_first_step_is_lr_times_sign():
    # bias-corrected m̂ = g, v̂ = g², so the first step is lr·g/(|g| + ε) ≈ lr·sign(g)
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = create("adam", [param], lr=0.01)
    param.grad = torch.tensor([3.0, -0.5], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(param.detach(), torch.tensor([-0.01, 0.01], dtype=torch.float64))
