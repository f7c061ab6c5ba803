"""The doctor on small models built to have one known defect each (issue 15): the check that
must fire, the named root cause, and the checks that must not FAIL (no blaming the symptom).

Budgets are the doctor's defaults except where a case says otherwise; every model is seeded."""

import pytest
import torch
from defect_models import (
    dead_relu,
    deep_sigmoid,
    deep_tanh,
    digits_loaders,
    healthy_relu,
    healthy_tanh,
    long_rnn,
    overlarge,
    saturated_tanh,
    sequence_loaders,
)
from torch import nn

from dlskills.diagnose.doctor import doctor

# name: (model, data, doctor kwargs, checks that must not be OK, root cause (name, words),
#        checks that must not FAIL)
CASES = {
    "deep_tanh_far_below_xavier": (
        lambda: deep_tanh(0.2),
        digits_loaders,
        {"fit_steps": 100},
        {"vanishing_gradients", "underfitting"},
        ("vanishing_gradients", "vanishing gradients from the init"),
        {"dead_units", "exploding_gradients", "saturated_units"},
    ),
    "deep_sigmoid": (
        deep_sigmoid,
        digits_loaders,
        {"fit_steps": 100},
        {"vanishing_gradients"},
        ("vanishing_gradients", "vanishing gradients"),
        {"dead_units", "exploding_gradients", "saturated_units"},
    ),
    "long_tanh_rnn": (
        long_rnn,
        sequence_loaders,
        {"fit_steps": 40},
        {"vanishing_through_time"},
        ("vanishing_gradients", "vanishing gradients through time in rnn"),
        {"dead_units", "exploding_gradients", "exploding_through_time"},
    ),
    "rnn_large_recurrent_gain": (
        lambda: long_rnn(50, gain=3.0),
        lambda: sequence_loaders(50),
        {"fit_steps": 40},
        {"exploding_through_time"},
        ("exploding_gradients", "exploding gradients through time in rnn"),
        {"dead_units", "vanishing_through_time"},
    ),
    "dead_relu_negative_bias": (
        dead_relu,
        digits_loaders,
        {"fit_steps": 100},
        {"dead_units"},
        ("dead_units", "dead units"),
        {"exploding_gradients", "saturated_units"},
    ),
    "saturated_tanh_large_init": (
        saturated_tanh,
        digits_loaders,
        {"fit_steps": 100},
        {"saturated_units"},
        ("saturated_units", "saturated units"),
        {"dead_units", "exploding_gradients", "vanishing_gradients"},
    ),
    "learning_rate_too_high": (
        healthy_relu,
        digits_loaders,
        {"lr": 1.0},
        {"unstable_training"},
        ("learning_rate", "the learning rate is too high (lr=1)"),
        {"vanishing_gradients", "exploding_gradients", "dead_units", "saturated_units"},
    ),
    "label_noise_overlarge_model": (
        overlarge,
        lambda: digits_loaders(label_noise=0.4),
        {"lr": 3e-3},
        {"overfitting"},
        ("overfitting", "overfitting"),
        {"underfitting", "vanishing_gradients", "exploding_gradients", "dead_units"},
    ),
}

CONTROLS = {"healthy_relu": healthy_relu, "healthy_tanh": healthy_tanh}


@pytest.mark.parametrize("name", sorted(CASES))
def test_known_defect_is_named_first(name):
    make, data, budget, fire, (cause, words), quiet = CASES[name]
    torch.manual_seed(0)
    model = make()
    train, val = data()
    diagnosis = doctor(model, train, nn.CrossEntropyLoss(), val_loader=val, **budget)
    verdicts = {c.name: c.verdict for c in diagnosis.checks}
    for check in fire:
        assert verdicts[check] != "OK", diagnosis.summary()
    for check in quiet:
        assert verdicts.get(check, "OK") != "FAIL", diagnosis.summary()
    first = diagnosis.causes[0]
    assert first.name == cause, diagnosis.summary()
    assert first.text.startswith(words), first.text
    assert diagnosis.root_cause == first.line()
    assert diagnosis.recommendations[0].startswith(f"[{first.checks[0]}]")


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_healthy_controls_get_no_fail(name):
    torch.manual_seed(0)
    train, val = digits_loaders()
    diagnosis = doctor(CONTROLS[name](), train, nn.CrossEntropyLoss(), val_loader=val)
    assert "FAIL" not in {c.verdict for c in diagnosis.checks}, diagnosis.summary()
    assert all(cause.verdict != "FAIL" for cause in diagnosis.causes)


def test_the_issue_deep_tanh_mlp():
    """The issue's first model (24 tanh layers at 0.03x the unit scale, ~100 k parameters, 512
    examples, the default budget): vanishing gradients from the init is the named cause and
    underfitting follows from it; no dead-units FAIL; its subnormal floats are reported; the
    denormal mode and thread count are restored."""
    torch.manual_seed(0)
    model = deep_tanh(0.03)
    assert 95_000 < sum(p.numel() for p in model.parameters()) < 105_000
    train, val = digits_loaders()
    threads = torch.get_num_threads()
    before = torch.tensor([2.0**-130]).mul(1.0)[0] != 0  # subnormals survive: not flushing
    diagnosis = doctor(model, train, nn.CrossEntropyLoss(), val_loader=val)
    assert diagnosis.check("vanishing_gradients").verdict == "FAIL"
    assert diagnosis.check("dead_units").verdict != "FAIL"
    cause = diagnosis.causes[0]
    assert cause.text == "vanishing gradients from the init"
    assert "underfitting" in cause.explains
    assert (
        diagnosis.summary()
        .splitlines()[0]
        .startswith("CAUSE 1. vanishing gradients from the init; underfitting follows from it")
    )
    denormals = diagnosis.details["denormals"]
    assert denormals["subnormal_gradients"] > 0.5  # most gradient entries are subnormal
    assert denormals["flushed_during_diagnosis"] and denormals["threads"] == 1
    assert (torch.tensor([2.0**-130]).mul(1.0)[0] != 0) == before
    assert torch.get_num_threads() == threads
