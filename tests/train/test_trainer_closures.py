"""Closure-based optimizers (registry metadata ``needs_closure``) train through the Trainer: the
Trainer's step equals a hand-written loop that calls ``optimizer.step(closure)``."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlskills import optim
from dlskills.train import Trainer

CLOSURE_OPTIMIZERS = sorted(
    e.name for e in optim.OPTIMIZERS.entries() if e.meta.get("needs_closure")
)
# vSGD: its first init_samples steps only gather statistics (the authors: 10)
KWARGS = {
    "ksgd": {},
    "curveball": {},
    "easgd": {"lr": 0.05},
    "vsgd": {"lr": 0.01, "init_samples": 2},
}


def _problem(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)


def _model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double().float()


def _hand_loop(name, loader, steps):
    model = _model()
    opt = optim.create(name, model.parameters(), **KWARGS.get(name, {"lr": 0.01}))
    kind = optim.closure_kind(opt)
    loss_fn = nn.MSELoss()
    done = 0
    while done < steps:
        for x, y in loader:

            def backward_closure(x=x, y=y):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss

            def graph_closure(x=x, y=y):
                out = model(x)
                return loss_fn(out, y), out

            def residual_closure(x=x, y=y):
                return model(x) - y

            closure = {
                "backward": backward_closure,
                "graph": graph_closure,
                "residuals": residual_closure,
            }[kind]
            # the Trainer's own forward/backward before the step: the optimizer may read .grad
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step(closure)
            done += 1
            if done == steps:
                break
    return model


def test_every_closure_kind_is_known():
    assert {"storm", "curveball", "ksgd"} <= set(CLOSURE_OPTIMIZERS)
    kinds = {
        optim.closure_kind(
            optim.create(n, [nn.Parameter(torch.zeros(2))], **KWARGS.get(n, {"lr": 0.01}))
        )
        for n in CLOSURE_OPTIMIZERS
    }
    assert kinds <= {"backward", "graph", "residuals"}
    assert optim.closure_kind(torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)) is None


@pytest.mark.parametrize("name", CLOSURE_OPTIMIZERS)
def test_trainer_step_equals_a_hand_loop_with_the_closure(name):
    loader = _problem()
    model = _model()
    opt = optim.create(name, model.parameters(), **KWARGS.get(name, {"lr": 0.01}))
    before = nn.MSELoss()(model(loader.dataset.tensors[0]), loader.dataset.tensors[1]).item()
    Trainer(model, opt, nn.MSELoss(), loader, max_steps=8, seed=0).fit()
    expected = _hand_loop(name, loader, steps=8)
    for got, want in zip(model.parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    after = nn.MSELoss()(model(loader.dataset.tensors[0]), loader.dataset.tensors[1]).item()
    assert after < before


def test_residual_optimizers_refuse_class_labels():
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    model = nn.Linear(3, 2)
    opt = optim.create("ksgd", model.parameters())
    trainer = Trainer(
        model, opt, nn.CrossEntropyLoss(), DataLoader(TensorDataset(x, y)), max_steps=1
    )
    with pytest.raises(ValueError, match="regression task"):
        trainer.fit()


@pytest.mark.parametrize("name", optim.OPTIMIZERS.names())
def test_every_registered_optimizer_builds_from_a_train_config(name):
    from dlskills.models import create
    from dlskills.train.config import make_config
    from dlskills.train.runs import _optimizer_kwargs

    config = make_config({"optimizer": name, "lr": 0.01})
    model = create("mlp", input_shape=(1, 8, 8), num_classes=10, width=8, depth=1)
    kwargs = _optimizer_kwargs(config, optim.OPTIMIZERS.get(name), model)
    optimizer = optim.create(name, model.parameters(), **kwargs)
    assert optimizer.param_groups[0]["lr"] == 0.01
