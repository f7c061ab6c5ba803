"""Check for catalog 1211.5063 (Pascanu et al. 2012): gradient-norm clipping rescues a vanilla
tanh RNN on the adding task.

Set-up: adding task with T = 10 steps (2000 sequences, seed s), tanh RNN of 32 units read out
linearly, SGD with momentum 0.9 at a learning rate of 0.2, batches of 32 drawn with
replacement, 3000 steps, the same initialisation with and without ``GradClip(0.5)`` (norm
mode); a run stops as diverged at its first non-finite training loss. Claim (every seed of 3):
without clipping the gradients explode and the run ends with a non-finite test MSE (or one above
the trivial predictor's 1/6); with clipping the test MSE is below 1/5 of the trivial
predictor's.
"""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from dlskills.data import load
from dlskills.data.long_term import ADDING_TRIVIAL_MSE
from dlskills.models import create
from dlskills.train.callbacks import GradClip

LENGTH, HIDDEN, LR, STEPS, MAX_NORM = 10, 32, 0.2, 3000, 0.5


def _test_mse(seed, clip):
    """Test MSE after training; inf as soon as the training loss is non-finite (diverged)."""
    splits = load("adding", seed=seed, n=2000, length=LENGTH)
    (x_train, y_train), (x_test, y_test) = splits.train.tensors, splits.test.tensors
    torch.manual_seed(seed)
    model = create("rnn", input_shape=(LENGTH, 2), num_classes=1, cell="rnn", hidden_size=HIDDEN)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    # the callback itself, driven by a minimal loop (it only reads trainer.model)
    clipper, trainer = GradClip(MAX_NORM), SimpleNamespace(model=model)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(STEPS):
        batch = torch.randint(0, len(x_train), (32,), generator=generator)
        loss = F.mse_loss(model(x_train[batch]), y_train[batch])
        if not math.isfinite(loss.item()):
            return math.inf
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            clipper.on_after_backward(trainer)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return F.mse_loss(model(x_test), y_test).item()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_norm_clipping_rescues_the_vanilla_rnn_on_adding(seed):
    unclipped = _test_mse(seed, False)
    clipped = _test_mse(seed, True)
    print(f"seed {seed}: test MSE unclipped={unclipped:.4g} clipped={clipped:.4g} "
          f"trivial={ADDING_TRIVIAL_MSE:.4g}")  # fmt: skip
    assert not math.isfinite(unclipped) or unclipped > ADDING_TRIVIAL_MSE
    assert clipped < ADDING_TRIVIAL_MSE / 5  # explains > 80% of the target variance
