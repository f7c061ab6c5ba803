"""Generator, GAN discriminator and VAE for digits: shapes, the ELBO formula, they train."""

import math

import pytest
import torch

from dlskills.data import load
from dlskills.models import create


def test_generator_samples_images_reproducibly():
    generator = create("generator", input_shape=(1, 8, 8), latent_dim=5, widths=(16,))
    z = generator.sample_latent(3, generator=torch.Generator().manual_seed(1))
    assert z.shape == (3, 5) and generator(z).shape == (3, 1, 8, 8)
    again = generator.sample(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again, generator(z))
    bounded = create("generator", input_shape=(1, 8, 8), output_activation="sigmoid")
    images = bounded.sample(4)
    assert images.min() >= 0 and images.max() <= 1
    # latent 5 → 16 → 64 pixels
    assert sum(p.numel() for p in generator.parameters()) == 6 * 16 + 17 * 64


def test_vae_loss_is_the_negative_elbo():
    vae = create("vae", input_shape=(1, 8, 8), latent_dim=3, widths=(16,)).eval()
    x = torch.randn(5, 1, 8, 8)
    mean, log_var = vae.encode(x)
    reconstruction = vae.decoder(mean)  # eval mode: z = μ
    squared = ((reconstruction - x) ** 2).sum(dim=(1, 2, 3))
    kl = torch.tensor(
        [
            0.5 * sum(m**2 + math.exp(v) - v - 1 for m, v in zip(mu.tolist(), lv.tolist()))
            for mu, lv in zip(mean, log_var)
        ]
    )
    expected = (0.5 * squared + kl).mean()
    torch.testing.assert_close(vae.loss(x), expected)
    torch.testing.assert_close(vae.loss(x, beta=0.0), (0.5 * squared).mean())
    assert vae.sample(2).shape == (2, 1, 8, 8)


def test_vae_samples_the_code_in_training_mode():
    vae = create("vae", input_shape=(4,), latent_dim=2, widths=(8,)).train()
    x = torch.randn(3, 4)
    assert not torch.equal(vae(x)[0], vae(x)[0])


def test_vae_and_gan_train_on_digits():
    x = load("digits", seed=0).train.tensors[0][:128]
    vae = create("vae", input_shape=(1, 8, 8))
    optimizer = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = vae.loss(x)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]

    # one discriminator vs a fixed generator: it learns to tell real digits from samples
    generator = create("generator", input_shape=(1, 8, 8))
    discriminator = create("gan_discriminator", input_shape=(1, 8, 8))
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        fake = generator.sample(128, generator=torch.Generator().manual_seed(0))
    for _ in range(30):
        optimizer.zero_grad()
        loss = bce(discriminator(x), torch.ones(128, 1)) + bce(
            discriminator(fake), torch.zeros(128, 1)
        )
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (
            (discriminator(x) > 0).float().mean() + (discriminator(fake) < 0).float().mean()
        ) / 2
    assert accuracy > 0.95


def test_argument_errors():
    with pytest.raises(ValueError, match="latent_dim"):
        create("generator", input_shape=(1, 8, 8), latent_dim=0)
    with pytest.raises(ValueError, match="widths"):
        create("gan_discriminator", input_shape=(1, 8, 8), widths=(0,))
    with pytest.raises(ValueError, match="positive int"):
        create("generator", input_shape=(1, 8, 8)).sample(0)
