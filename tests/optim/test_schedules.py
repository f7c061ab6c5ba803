"""Schedules: exact multipliers by hand, warm-up composition, linear scaling rule, resume."""

import json
import math
import subprocess
import sys

import pytest
import torch

from dlskills.optim.schedules import SCHEDULES, build_schedule, linear_scaling_rule


def _lrs(name, steps, base_lr=1.0, **kwargs):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = build_schedule(name, opt, **kwargs)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def test_warmup_then_cosine_by_hand():
    # W = 4, s = 0.25: 0.25, 0.4375, 0.625, 0.8125; then cosine over D = 6 to r = 0.1
    lrs = _lrs(
        "cosine", 12, total_steps=10, warmup_steps=4, warmup_start_factor=0.25, min_lr_ratio=0.1
    )
    warmup = [0.25, 0.4375, 0.625, 0.8125]
    cosine = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * u / 6)) for u in range(7)]
    assert lrs == pytest.approx(warmup + cosine + [0.1])


def test_goyal_warmup_ramps_from_small_batch_rate_to_scaled_rate():
    # 0.1 at 256 → 3.2 at 8192 (k = 32); ramp from 0.1 (= 3.2/32) linearly over 5 steps
    peak = linear_scaling_rule(0.1, 8192)
    lrs = _lrs(
        "constant", 7, base_lr=peak, total_steps=100, warmup_steps=5, warmup_start_factor=256 / 8192
    )
    assert peak == pytest.approx(3.2)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[:6] == pytest.approx([0.1 + (3.2 - 0.1) * t / 5 for t in range(6)])
    assert lrs[6] == pytest.approx(3.2)


def test_step_milestones_count_from_the_first_step():
    lrs = _lrs("step", 8, total_steps=8, warmup_steps=2, milestones=(3, 6), gamma=0.5)
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_linear_decay_to_min_ratio():
    lrs = _lrs("linear", 6, total_steps=4, min_lr_ratio=0.2)
    assert lrs == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.2])


def test_state_dict_is_json_and_resumes_the_same_sequence():
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.5)
    scheduler = build_schedule("cosine", opt, total_steps=20, warmup_steps=3)
    for _ in range(7):
        opt.step()
        scheduler.step()
    state = json.loads(json.dumps(scheduler.state_dict()))
    other_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    other_opt.load_state_dict(opt.state_dict())
    other = build_schedule("cosine", other_opt, total_steps=20, warmup_steps=3)
    other.load_state_dict(state)
    for _ in range(5):
        opt.step()
        scheduler.step()
        other_opt.step()
        other.step()
        assert other_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_registry_lists_the_schedules():
    assert set(SCHEDULES.names()) == {"constant", "cosine", "linear", "step"}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"total_steps": 0}, "total_steps"),
        ({"warmup_steps": 10}, "warmup_steps"),
        ({"warmup_start_factor": 1.5}, "warmup_start_factor"),
        ({"min_lr_ratio": -0.1}, "min_lr_ratio"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=argument):
        build_schedule("cosine", opt, **{"total_steps": 10, **kwargs})


def test_step_schedule_needs_milestones_and_unknown_names_fail():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="milestones"):
        build_schedule("step", opt, total_steps=10)
    with pytest.raises(ValueError, match="unknown schedule"):
        build_schedule("cosin", opt, total_steps=10)


@pytest.mark.parametrize(
    ("args", "argument"),
    [((0.0, 256), "base_lr"), ((0.1, 0), "batch_size"), ((0.1, 256, 0), "base_batch_size")],
)
def test_linear_scaling_rule_validates(args, argument):
    with pytest.raises(ValueError, match=argument):
        linear_scaling_rule(*args)


def test_schedules_is_an_attribute_of_the_package_in_a_fresh_interpreter():
    """Issue 16: ``optim.schedules`` raised AttributeError unless something had imported it."""
    code = (
        "import sys\n"
        "from dlskills import optim\n"
        "assert 'dlskills.optim.schedules' not in sys.modules\n"
        "print(optim.schedules.build_schedule.__name__, optim.averaging.__name__)\n"
        "try:\n"
        "    optim.no_such_thing\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.splitlines() == [
        "build_schedule dlskills.optim.averaging",
        "module 'dlskills.optim' has no attribute 'no_such_thing'",
    ]
