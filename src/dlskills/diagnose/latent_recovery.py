"""Latent recovery: detecting a generator's overfitting (catalog 1901.03396; Webster, Rabin,
Simon & Jurie, "Detecting Overfitting of Deep Generative Networks via Latent Recovery", CVPR
2019).

A generator G: z ↦ x that memorised its training images reproduces *them* far better than it
reproduces other images of the same distribution. The paper measures it by recovering, for each
image x, the latent code that reconstructs it best,

    z*(x) = argmin_z ‖G(z) − x‖²     (gradient descent on z from several random starts)

and comparing the recovery errors e(x) = ‖G(z*(x)) − x‖² / pixels of training images with those
of held-out images: equal distributions mean no memorisation; training errors far below the
held-out ones mean overfitting. ``latent_recovery_gap`` reports both error sets, their medians
and the AUC = P(e(held-out) > e(train)) (0.5: indistinguishable, 1: every training image is
recovered better than every held-out one).

The check (``memorization_check``) trains the decoder of a small VAE on digits with a few
training images and with the whole training split, the same number of steps each, and recovers
latents of 50 of its training images and 50 test images. Deviations: the paper studies GANs on
CelebA/LSUN with a recovery by Adam over thousands of steps; here the generator is a VAE's
decoder (``dlskills.models`` ``vae``) and the recovery runs Adam for ``steps`` iterations from
``restarts`` N(0, I) starts, keeping the best.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn


class RecoveredLatents(NamedTuple):
    latents: Tensor  # (N, latent_dim), the best start's code for each image
    errors: Tensor  # (N,), mean squared error per pixel of G(z*) against the image


def recover_latents(
    generator: nn.Module,
    images: Tensor,
    *,
    latent_dim: int | None = None,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int = 0,
) -> RecoveredLatents:
    """z*(x) for every image by Adam on ‖G(z) − x‖² from ``restarts`` N(0, I) starts (all
    images and starts in one batch), keeping each image's best. ``latent_dim`` defaults to
    ``generator.latent_dim``. The generator's parameters are left untouched (no gradients)."""
    dim = latent_dim if latent_dim is not None else getattr(generator, "latent_dim", None)
    if not isinstance(dim, int) or dim < 1:
        raise ValueError("latent_dim must be given for a generator without a latent_dim")
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps and restarts must be ≥ 1, got {steps} and {restarts}")
    if len(images) == 0:
        raise ValueError("no images to recover")
    was_training = generator.training
    needs_grad = [p.requires_grad for p in generator.parameters()]
    generator.eval()
    generator.requires_grad_(False)
    try:
        starts = torch.Generator().manual_seed(seed)
        codes = torch.randn(restarts * len(images), dim, generator=starts).requires_grad_()
        targets = images.repeat(restarts, *([1] * (images.dim() - 1)))
        optimizer = torch.optim.Adam([codes], lr=lr)
        for _ in range(steps):
            errors = (generator(codes) - targets).pow(2).flatten(1).mean(1)
            optimizer.zero_grad(set_to_none=True)
            errors.sum().backward()
            optimizer.step()
        with torch.no_grad():
            errors = (generator(codes) - targets).pow(2).flatten(1).mean(1)
    finally:
        generator.train(was_training)
        for parameter, flag in zip(generator.parameters(), needs_grad):
            parameter.requires_grad_(flag)
    best, start = errors.view(restarts, len(images)).min(dim=0)
    latents = codes.detach().view(restarts, len(images), dim)[start, torch.arange(len(images))]
    return RecoveredLatents(latents, best)


@dataclass
class LatentRecoveryResult:
    """Recovery errors of training and held-out images."""

    train_errors: Tensor
    heldout_errors: Tensor

    @property
    def auc(self) -> float:
        """P(a held-out error > a training error), ties counting one half."""
        held, train = self.heldout_errors[:, None], self.train_errors[None, :]
        return float(((held > train).float() + 0.5 * (held == train).float()).mean())

    @property
    def median_train(self) -> float:
        return float(self.train_errors.median())

    @property
    def median_heldout(self) -> float:
        return float(self.heldout_errors.median())


def latent_recovery_gap(
    generator: nn.Module, train_images: Tensor, heldout_images: Tensor, **recovery: object
) -> LatentRecoveryResult:
    """Recover latents of both image sets (``recovery``: ``recover_latents`` options)."""
    return LatentRecoveryResult(
        recover_latents(generator, train_images, **recovery).errors,  # type: ignore[arg-type]
        recover_latents(generator, heldout_images, **recovery).errors,  # type: ignore[arg-type]
    )


def memorization_check(
    train_sizes: Sequence[int] = (50, 1257),
    *,
    steps: int = 2400,
    beta: float = 1.0,
    evaluated: int = 50,
    seed: int = 0,
    progress: Callable[[int, int, str], Any] | None = None,
) -> dict[int, LatentRecoveryResult]:
    """For each size n: a VAE (latent 8) trained for ``steps`` Adam steps (lr 1e-3, batch 64)
    on the first n images of the digits training split; then the latent-recovery gap of its
    decoder between ``evaluated`` of those training images and ``evaluated`` test images.
    ``progress(done, total, what)`` is called after every training step and every recovery."""
    from dlskills.data import load
    from dlskills.models import create

    splits = load("digits", seed=0)
    train = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    test = torch.stack([splits.test[i][0] for i in range(evaluated)])
    results = {}
    total = len(train_sizes) * (steps + 1)  # the steps, then the recovery, of every size
    for position, size in enumerate(train_sizes):
        if not 0 < size <= len(train):
            raise ValueError(f"train sizes must be in 1..{len(train)}, got {size}")
        torch.manual_seed(seed)
        vae = create("vae", input_shape=tuple(train.shape[1:]), num_classes=10, latent_dim=8)
        optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
        images, order = train[:size], torch.Generator().manual_seed(seed)
        vae.train()
        done = 0
        while done < steps:
            permutation = torch.randperm(size, generator=order)
            for start in range(0, size, 64):
                loss = vae.loss(images[permutation[start : start + 64]], beta=beta)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += 1
                if progress is not None:
                    progress(position * (steps + 1) + done, total, f"VAE on {size} images")
                if done == steps:
                    break
        results[size] = latent_recovery_gap(vae.decoder, images[:evaluated], test, seed=seed)
        if progress is not None:
            progress((position + 1) * (steps + 1), total, f"latents recovered ({size} images)")
    return results


def plot_latent_recovery(results: dict[int, LatentRecoveryResult], path: str | Path) -> Path:
    """Per training-set size, the recovery errors of training and held-out images (log x)."""
    from matplotlib.ticker import NullFormatter

    from dlskills._plot import label_axes, legend, new_figure, save_figure

    fig, axes = new_figure(
        1,
        len(results),
        size=(4.0, 3.2),
        title="Latent recovery: can the decoder reproduce training vs held-out images?",
    )
    for ax, (size, result) in zip(axes[0], sorted(results.items())):
        everything = torch.cat([result.train_errors, result.heldout_errors]).clamp_min(1e-8)
        bins = torch.logspace(
            float(everything.min().log10()), float(everything.max().log10()), 25
        ).tolist()
        ax.hist(result.train_errors.clamp_min(1e-8).tolist(), bins=bins, alpha=0.6, label="train")
        ax.hist(result.heldout_errors.tolist(), bins=bins, alpha=0.6, label="held-out")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        label_axes(
            ax,
            "recovery error (MSE per pixel)",
            "images",
            title=f"trained on {size} images: AUC {result.auc:.2f}",
        )
        legend(ax)
    return save_figure(fig, path)


__all__ = [
    "LatentRecoveryResult",
    "RecoveredLatents",
    "latent_recovery_gap",
    "memorization_check",
    "plot_latent_recovery",
    "recover_latents",
]
