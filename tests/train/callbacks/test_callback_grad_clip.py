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
