"""Small generative models for digits (catalog 1904.05526 §2: GANs and, as the likelihood-based
counterpart, the VAE; the generator is also the model of 1901.03396's latent-recovery check).

generator          z ~ N(0, I_latent) → MLP(widths) → Linear → output activation → image shape
gan_discriminator  image → flatten → MLP(widths, leaky ReLU) → one real/fake logit
                   (Goodfellow et al. 2014; pair it with BCE-with-logits)
vae                (Kingma & Welling 2014) encoder MLP → (μ, log σ²); z = μ + σ·ε;
                   decoder = a ``Generator``. ``loss(x)`` is the negative ELBO per sample with a
                   unit-variance Gaussian decoder, up to its constant:
                   ½‖x − x̂‖² + ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), averaged over the batch.

For these models ``input_shape`` is the shape of the data modelled (default digits' (1, 8, 8));
``num_classes`` is accepted for the uniform ``create`` signature and not used (the models are
unconditional). Outputs are unbounded by default because dlskills' image datasets are
standardised; pass ``output_activation="sigmoid"`` for data in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlskills.models._registry import (
    SequentialModel,
    check_positive_int,
    check_shape,
    finish,
    hidden_block,
    register_model,
    uses_bias,
)
from dlskills.nn.activations import get_activation


def _mlp_layers(
    fan_in: int, widths: Sequence[int], *, activation: str, norm: str
) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    for width in widths:
        check_positive_int("widths", width)
        linear = nn.Linear(fan_in, width, bias=uses_bias(norm))
        layers += hidden_block(
            linear, width, activation=activation, norm=norm, dropout=0.0, spatial=False
        )
        fan_in = width
    return layers, fan_in


@register_model("generator", catalog_id="1904.05526", family="generative", input="latent")
class Generator(SequentialModel):
    """MLP from a ``latent_dim`` Gaussian code to a sample of ``input_shape``."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int | None = None,
        latent_dim: int = 16,
        widths: Sequence[int] = (64, 128),
        activation: str = "relu",
        norm: str = "none",
        output_activation: str = "identity",
    ) -> None:
        shape = check_shape(input_shape)
        check_positive_int("latent_dim", latent_dim)
        layers, fan_in = _mlp_layers(latent_dim, widths, activation=activation, norm=norm)
        layers += [
            nn.Linear(fan_in, math.prod(shape)),
            get_activation(output_activation),
            nn.Unflatten(1, shape),
        ]
        super().__init__(*layers)
        self.input_shape, self.latent_dim = shape, latent_dim
        finish(self, norm)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes z ~ N(0, I) on the model's device."""
        check_positive_int("n", n)
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(device)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self(self.sample_latent(n, generator=generator))


@register_model("gan_discriminator", catalog_id="1904.05526", family="generative", input="any")
class Discriminator(SequentialModel):
    """Flatten → MLP(widths) → one logit (real vs generated)."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int | None = None,
        widths: Sequence[int] = (128, 64),
        activation: str = "leaky_relu",
        norm: str = "none",
    ) -> None:
        shape = check_shape(input_shape)
        layers, fan_in = _mlp_layers(math.prod(shape), widths, activation=activation, norm=norm)
        super().__init__(nn.Flatten(), *layers, nn.Linear(fan_in, 1))
        self.input_shape = shape
        finish(self, norm)


@register_model("vae", catalog_id="1904.05526", family="generative", input="any")
class VAE(nn.Module):
    """Variational auto-encoder with MLP encoder and a :class:`Generator` decoder."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int | None = None,
        latent_dim: int = 8,
        widths: Sequence[int] = (128, 64),
        activation: str = "relu",
        output_activation: str = "identity",
    ) -> None:
        super().__init__()
        shape = check_shape(input_shape)
        check_positive_int("latent_dim", latent_dim)
        layers, fan_in = _mlp_layers(math.prod(shape), widths, activation=activation, norm="none")
        self.encoder = nn.Sequential(nn.Flatten(), *layers)
        self.to_mean = nn.Linear(fan_in, latent_dim)
        self.to_log_var = nn.Linear(fan_in, latent_dim)
        self.decoder = Generator(
            input_shape=shape,
            latent_dim=latent_dim,
            widths=tuple(reversed(widths)),
            activation=activation,
            output_activation=output_activation,
        )
        self.input_shape, self.latent_dim = shape, latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(x)
        return self.to_mean(hidden), self.to_log_var(hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, μ, log σ²); z is sampled in training mode and z = μ in eval mode."""
        mean, log_var = self.encode(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean) if self.training else mean
        return self.decoder(z), mean, log_var

    def loss(self, x: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
        """Negative ELBO per sample (see module doc); ``beta`` weights the KL term."""
        reconstruction, mean, log_var = self(x)
        squared_error = (reconstruction - x).pow(2).flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(1)
        return (0.5 * squared_error + beta * kl).mean()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decoder.sample(n, generator=generator)
