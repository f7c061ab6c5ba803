"""GradClip (catalog 1211.5063): the clipped global norm."""

import pytest
import torch

from dlskills.train.callbacks import (
    Callback,
    GradClip,
)


def test_grad_clip_bounds_the_global_norm(make_trainer):
    norms = []

    class Measure(Callback):
        def on_before_step(self, trainer):
            grads = [p.grad.flatten() for p in trainer.model.parameters()]
            norms.append(torch.cat(grads).norm().item())

    clip = GradClip(1e-3)
    make_trainer([clip, Measure()], max_epochs=1).fit()
    assert max(norms) == pytest.approx(1e-3, rel=1e-4)
    assert clip.last_norm.item() > 1e-3  # the norm before clipping


def _with_grads(*grads):
    """A stand-in trainer whose model holds parameters with the given gradients."""
    from types import SimpleNamespace

    model = torch.nn.Module()
    for i, grad in enumerate(grads):
        param = torch.nn.Parameter(torch.zeros(len(grad)))
        param.grad = torch.tensor(grad, dtype=torch.float32)
        model.register_parameter(f"p{i}", param)
    return SimpleNamespace(model=model)


def _grads(trainer):
    return [p.grad.tolist() for p in trainer.model.parameters()]


def test_norm_mode_scales_by_hand_computed_factor():
    # ‖(3, 4, 0, 12)‖ = 13; τ = 6.5 halves every component
    trainer = _with_grads([3.0, 4.0], [0.0, 12.0])
    clip = GradClip(6.5)
    clip.on_after_backward(trainer)
    assert clip.last_norm.item() == pytest.approx(13.0)
    assert _grads(trainer) == [pytest.approx([1.5, 2.0], rel=1e-5), pytest.approx([0.0, 6.0])]


def test_value_mode_clamps_each_element_and_keeps_the_norm_before():
    trainer = _with_grads([3.0, -4.0], [0.5, -12.0])
    clip = GradClip(mode="value", clip_value=1.0)
    clip.on_after_backward(trainer)
    assert _grads(trainer) == [[1.0, -1.0], [0.5, -1.0]]
    assert clip.last_norm.item() == pytest.approx(169.25**0.5, rel=1e-6)  # √(9+16+0.25+144)


def test_adaptive_mode_clips_at_factor_times_mean_of_recorded_norms():
    clip = GradClip(mode="adaptive", factor=2.0, window=2)
    # step 1: nothing recorded yet -> no clipping; records 5
    first = _with_grads([3.0, 4.0])
    clip.on_after_backward(first)
    assert _grads(first) == [[3.0, 4.0]] and clip.last_threshold is None
    # step 2: τ = 2·mean(5) = 10 < 20 -> scaled to norm 10; records min(20, 10) = 10
    second = _with_grads([12.0, 16.0])
    clip.on_after_backward(second)
    assert clip.last_threshold.item() == pytest.approx(10.0)
    assert _grads(second) == [pytest.approx([6.0, 8.0], rel=1e-5)]
    # step 3: τ = 2·mean(5, 10) = 15 > 1 -> untouched; records 1
    third = _with_grads([0.6, 0.8])
    clip.on_after_backward(third)
    assert clip.last_threshold.item() == pytest.approx(15.0)
    assert _grads(third) == [pytest.approx([0.6, 0.8])]
    # step 4: window 2 forgets the 5: τ = 2·mean(10, 1) = 11
    fourth = _with_grads([30.0, 40.0])
    clip.on_after_backward(fourth)
    assert clip.last_threshold.item() == pytest.approx(11.0)
    assert _grads(fourth) == [pytest.approx([6.6, 8.8], rel=1e-5)]


def test_adaptive_history_round_trips_through_state():
    clip = GradClip(mode="adaptive", factor=1.0, window=3)
    for grad in ([3.0, 4.0], [6.0, 8.0]):
        clip.on_after_backward(_with_grads(grad))
    restored = GradClip(mode="adaptive", factor=1.0, window=3)
    restored.load_state_dict(clip.state_dict())
    restored.load_tensor_state(clip.tensor_state())
    trainer = _with_grads([30.0, 40.0])
    restored.on_after_backward(trainer)
    assert restored.last_threshold.item() == pytest.approx(5.0)  # mean(5, min(10, 5))
    assert _grads(trainer) == [pytest.approx([3.0, 4.0], rel=1e-5)]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(max_norm=0.0),
        dict(max_norm=1.0, mode="value"),
        dict(mode="value"),
        dict(mode="value", clip_value=-1.0),
        dict(mode="adaptive", window=0),
        dict(mode="adaptive", factor=0),
        dict(mode="bogus"),
    ],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        GradClip(**kwargs)
