"""Polyak/EMA averaging: equal to torch.optim.swa_utils.AveragedModel, burn-in, swap, state."""

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dlskills.optim.averaging import AveragedParameters


def _train(model, averaged, reference, steps=25, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    averaged.attach(opt)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(8, 3, generator=generator)).square().mean().backward()
        opt.step()
        if reference is not None:
            reference.update_parameters(model)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("mode", ["polyak", "ema"])
def test_matches_torch_averaged_model(mode, foreach):
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    if mode == "polyak":
        reference = AveragedModel(model)
    else:
        reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.8))
    averaged = AveragedParameters(model, mode=mode, decay=0.8, foreach=foreach)
    _train(model, averaged, reference)
    for ours, theirs in zip(averaged.averages, reference.module.parameters()):
        torch.testing.assert_close(ours, theirs.detach(), atol=1e-6, rtol=1e-6)


def test_polyak_is_the_mean_of_the_iterates_after_burn_in():
    param = torch.zeros(2, requires_grad=True)
    averaged = AveragedParameters([param], mode="polyak", start=2)
    iterates = []
    for k in range(6):
        with torch.no_grad():
            param.copy_(torch.tensor([float(k), float(k * k)]))
        iterates.append(param.detach().clone())
        averaged.update()
    torch.testing.assert_close(averaged.averages[0], torch.stack(iterates[2:]).mean(0))
    assert averaged.n_averaged == 4


def test_ema_warmup_uses_the_short_decay_early_and_the_cap_late():
    # d_n = min(0.5, (1 + n)/(10 + n)): 3/12 at n = 2, 4/13 at n = 3, 0.5 from n = 8 on
    param = torch.zeros(1, requires_grad=True)
    averaged = AveragedParameters([param], mode="ema", decay=0.5, warmup=True)
    expected = None
    for n in range(1, 13):
        with torch.no_grad():
            param.fill_(float(n * n))
        averaged.update()
        d = min(0.5, (1 + n) / (10 + n))
        expected = float(n * n) if expected is None else d * expected + (1 - d) * n * n
        assert averaged.averages[0].item() == pytest.approx(expected, rel=1e-6)
    assert averaged.state_dict()["warmup"] is True


def test_swapped_evaluates_with_averages_and_restores():
    param = torch.tensor([1.0], requires_grad=True)
    averaged = AveragedParameters([param], mode="polyak")
    averaged.update()
    with torch.no_grad():
        param.fill_(3.0)
    averaged.update()
    with averaged.swapped():
        assert param.item() == pytest.approx(2.0)
    assert param.item() == pytest.approx(3.0)


def test_state_dict_round_trip_continues_identically():
    model = torch.nn.Linear(3, 2)
    averaged = AveragedParameters(model, mode="ema", decay=0.9)
    _train(model, averaged, None, steps=5)
    copy = torch.nn.Linear(3, 2)
    copy.load_state_dict(model.state_dict())
    restored = AveragedParameters(copy, mode="polyak")
    restored.load_state_dict(averaged.state_dict())
    _train(model, averaged, None, steps=5, seed=1)
    _train(copy, restored, None, steps=5, seed=1)
    for a, b in zip(averaged.averages, restored.averages):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"mode": "swa"}, "mode"), ({"decay": 1.0}, "decay"), ({"start": -1}, "start")],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        AveragedParameters([torch.zeros(1)], **kwargs)
