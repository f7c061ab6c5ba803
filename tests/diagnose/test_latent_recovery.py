"""Latent recovery (1901.03396): recovery of a known code, the AUC by hand, and the claim that a
memorising generator recovers its training images far better than held-out ones."""

import pytest
import torch
from torch import nn

from dlskills import repro
from dlskills.diagnose.latent_recovery import (
    LatentRecoveryResult,
    recover_latents,
)


def test_recovers_the_code_of_an_image_a_linear_generator_made():
    torch.manual_seed(0)
    generator = nn.Linear(3, 12, bias=False)
    generator.latent_dim = 3
    codes = torch.randn(5, 3)
    with torch.no_grad():
        images = generator(codes)
    recovered = recover_latents(generator, images, steps=500, lr=0.05)
    assert recovered.errors.max() < 1e-8
    torch.testing.assert_close(recovered.latents, codes, atol=1e-3, rtol=0)
    assert generator.weight.requires_grad and generator.training  # left as it was


def test_keeps_the_best_start_and_validates():
    generator = nn.Linear(2, 4)
    with pytest.raises(ValueError, match="latent_dim"):
        recover_latents(generator, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="≥ 1"):
        recover_latents(generator, torch.zeros(1, 4), latent_dim=2, restarts=0)
    one = recover_latents(generator, torch.randn(6, 4), latent_dim=2, restarts=1, steps=3)
    many = recover_latents(generator, torch.randn(6, 4), latent_dim=2, restarts=8, steps=3)
    assert one.errors.shape == many.errors.shape == (6,) and many.latents.shape == (6, 2)


def test_auc_by_hand():
    result = LatentRecoveryResult(torch.tensor([0.1, 0.3]), torch.tensor([0.2, 0.3, 0.5]))
    # pairs (held, train): 0.2>0.1 yes, 0.2>0.3 no, 0.3>0.1 yes, 0.3=0.3 half, 0.5 > both
    assert result.auc == pytest.approx((1 + 0 + 1 + 0.5 + 2) / 6)
    # torch.median: the lower of the two middle values for an even count
    assert result.median_train == pytest.approx(0.1)
    assert result.median_heldout == pytest.approx(0.3)


def test_fast_repro_a_memorising_generator_is_caught():
    """A VAE decoder trained on 50 images recovers them far better than test images (AUC 0.996,
    held-out median error 6x the training one); trained on the whole training split (1,257
    images, the control) it does not tell them apart (AUC 0.48)."""
    result = repro.get("1901.03396")(scale="fast")
    assert result.verdict == repro.fast_verdict("1901.03396") == "reproduced", result.reason
    assert result["AUC, 50 images"] > 0.9
    assert result["AUC, 1257 images"] < 0.7
    assert result["median error ratio held-out/train, 50 images"] > 4


@pytest.mark.slow
def test_full_repro_a_memorising_generator_is_caught(tmp_path):
    """The documented run (2,400 steps, seeds 0-2) and its figure."""
    result = repro.run("1901.03396", scale="full", out=tmp_path)
    assert result.verdict == "reproduced", result.reason
    assert (tmp_path / "recovery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
