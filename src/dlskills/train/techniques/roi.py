"""ROI regularisation (catalog 1905.08615: Kaizuka, Nagasaki & Sako, "ROI Regularization for
Semi-supervised and Supervised Learning", 2019).

A classifier f with posterior g(x) = softmax(f(x)) should keep its prediction when the parts of
the image that do not support it are replaced by noise. For an image x (C, H, W) cut into
b × b blocks B_1 … B_J and its predicted class c = argmax g(x):

    contribution   a_j = Σ_{i ∈ B_j} x_i · ∂g_c(x)/∂x_i         (first-order estimate of how
                                                               much g_c falls when B_j is erased)
    mask           m_i = 0 for i in the ⌊ρ·J⌋ blocks of smallest a_j, 1 elsewhere
    masked image   x_ROI = m ⊙ x + (1 − m) ⊙ r,   r ~ N(0, 1) per pixel (a random image)
    regulariser    R(x) = KL( g(x) ‖ g(x_ROI) ) = Σ_k g_k(x) (log g_k(x) − log g_k(x_ROI))

averaged over the batch, with g(x), c, a and m held constant (no gradient flows through them,
as in virtual adversarial training, which the paper combines it with). It needs no label, so it
applies to unlabelled images (semi-supervised: L = CE(labelled) + λ·R(all)); its gradient with
respect to the logits z_ROI = f(x_ROI) is (g(x_ROI) − g(x)) / N.

Deviations: the block contributions use gradient × input (the paper's exact contribution
measure is not reproduced here); r is standard normal noise, the scale of standardised images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_blocks(x: torch.Tensor, block: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    if x.shape[2] % block or x.shape[3] % block:
        raise ValueError(f"block {block} must divide the image size {tuple(x.shape[2:])}")


def block_contributions(model: nn.Module, x: torch.Tensor, block: int) -> torch.Tensor:
    """a (N, H/b, W/b): Σ over each block (and channel) of x · ∂g_c/∂x, c the predicted class.
    The model's parameters receive no gradient."""
    _check_blocks(x, block)
    inputs = x.detach().requires_grad_(True)
    with torch.enable_grad():
        probabilities = F.softmax(model(inputs), dim=1)
        top = probabilities.gather(1, probabilities.argmax(1, keepdim=True)).sum()
        (grad,) = torch.autograd.grad(top, inputs)
    saliency = (grad * x.detach()).sum(1, keepdim=True)
    return F.avg_pool2d(saliency, block).squeeze(1) * block * block


def roi_mask(contributions: torch.Tensor, block: int, ratio: float) -> torch.Tensor:
    """Pixel mask (N, 1, H, W): 0 on the ⌊ratio · J⌋ blocks of smallest contribution, else 1."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be a number in [0, 1), got {ratio!r}")
    n = contributions.shape[0]
    flat = contributions.reshape(n, -1)
    masked = int(ratio * flat.shape[1])
    keep = torch.ones_like(flat)
    if masked:
        keep.scatter_(1, flat.argsort(dim=1)[:, :masked], 0.0)
    keep = keep.reshape(contributions.shape).unsqueeze(1)
    return keep.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)


def roi_regularization(
    model: nn.Module,
    x: torch.Tensor,
    *,
    block: int = 2,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """R = mean over the batch of KL(g(x) ‖ g(x_ROI)) (see the module doc); differentiable in
    the model's parameters through g(x_ROI) only."""
    with torch.no_grad():
        target = F.log_softmax(model(x), dim=1)
    mask = roi_mask(block_contributions(model, x, block), block, ratio)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    masked = mask * x + (1 - mask) * noise
    log_q = F.log_softmax(model(masked), dim=1)
    return F.kl_div(log_q, target, reduction="batchmean", log_target=True)


__all__ = ["block_contributions", "roi_mask", "roi_regularization"]
