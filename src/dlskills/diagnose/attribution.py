"""Input attributions through Captum (catalog 1905.08883, Roscher, Bohn, Duarte & Garcke,
"Explainable Machine Learning for Scientific Insights and Discoveries", 2019: post-hoc
attributions that say which inputs a prediction rests on).

For a model f and the score f_c(x) of class c (``target``):

- ``saliency``:  |∂f_c/∂x|                                   (Simonyan et al. 2014)
- ``integrated_gradients``: (x − x')·∫₀¹ ∂f_c(x' + t(x − x'))/∂x dt, baseline x' (default 0),
  Riemann/Gauss-Legendre sum with ``n_steps``; completeness: Σ attributions = f_c(x) − f_c(x')
  up to the quadrature error (Sundararajan et al. 2017)
- ``smoothgrad``: mean over ``samples`` noisy copies x + N(0, σ²) of |∂f_c/∂x|, σ = ``stdev``
  (Smilkov et al. 2017); the noise is drawn under ``seed``
- ``gradcam``: ReLU(Σ_k α_k A^k) with α_k the spatial mean of ∂f_c/∂A^k over the feature maps
  A of ``layer`` (default: the last Conv2d), upsampled bilinearly to the input size
  (Selvaraju et al. 2017); shape (B, 1, H, W)
- ``occlusion``: f_c(x) − f_c(x with a sliding ``window`` replaced by ``baseline``), averaged
  over the windows covering each input element (Zeiler & Fergus 2014)

Captum computes every method; this module picks defaults, seeds SmoothGrad, finds the Grad-CAM
layer and plots. The model is put in eval mode for the call and restored afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | torch.Tensor | Sequence[int],
    method: str = "saliency",
    **kw: Any,
) -> torch.Tensor:
    """Attributions of ``model``'s class-``target`` score to ``inputs`` (batch first).

    Options per method: integrated_gradients ``baselines`` (0), ``n_steps`` (50);
    smoothgrad ``samples`` (25), ``stdev`` (0.15·(max − min) of the inputs), ``seed`` (0);
    gradcam ``layer`` (last Conv2d), ``upsample`` (True); occlusion ``window`` (per-sample
    shape, default all channels × 3 × 3 for images, 1 element otherwise), ``stride`` (1),
    ``baselines`` (0). Returns a tensor shaped like ``inputs`` ((B, 1, H, W) for Grad-CAM).
    """
    import captum.attr as ca

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise TypeError("inputs must be a floating-point tensor (batch first)")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    allowed = {
        "saliency": set(),
        "integrated_gradients": {"baselines", "n_steps"},
        "smoothgrad": {"samples", "stdev", "seed"},
        "gradcam": {"layer", "upsample"},
        "occlusion": {"window", "stride", "baselines"},
    }[method]
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise TypeError(f"{method} does not take {unknown}; it takes {sorted(allowed)}")
    if isinstance(target, Sequence):
        target = torch.as_tensor(target)
    # a fresh leaf that requires grad: Captum's gradient methods differentiate w.r.t. it
    inputs = inputs.detach().clone().requires_grad_(method != "occlusion")
    was_training = model.training
    model.eval()
    try:
        if method == "saliency":
            return ca.Saliency(model).attribute(inputs, target=target, abs=True)
        if method == "integrated_gradients":
            return ca.IntegratedGradients(model).attribute(
                inputs,
                baselines=kw.get("baselines"),
                target=target,
                n_steps=kw.get("n_steps", 50),
            )
        if method == "smoothgrad":
            stdev = kw.get("stdev")
            if stdev is None:
                stdev = 0.15 * float((inputs.max() - inputs.min()).detach())
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(kw.get("seed", 0))
                return ca.NoiseTunnel(ca.Saliency(model)).attribute(
                    inputs,
                    nt_type="smoothgrad",
                    nt_samples=kw.get("samples", 25),
                    stdevs=stdev,
                    target=target,
                    abs=True,
                )
        if method == "gradcam":
            layer = kw.get("layer") or last_conv(model)
            cam = ca.LayerGradCam(model, layer).attribute(
                inputs, target=target, relu_attributions=True
            )
            if kw.get("upsample", True) and inputs.dim() == 4:
                cam = F.interpolate(
                    cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False
                )
            return cam
        window = kw.get("window")
        if window is None:
            window = (inputs.shape[1], 3, 3) if inputs.dim() == 4 else (1,) * (inputs.dim() - 1)
        return ca.Occlusion(model).attribute(
            inputs,
            sliding_window_shapes=tuple(window),
            strides=kw.get("stride", 1),
            baselines=kw.get("baselines", 0),
            target=target,
        )
    finally:
        model.train(was_training)


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The last ``nn.Conv2d`` in ``model.modules()`` order (Grad-CAM's default layer)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("gradcam needs a Conv2d layer; this model has none (pass layer=...)")
    return convs[-1]


def plot_attributions(
    inputs: torch.Tensor,
    attributions: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    *,
    max_samples: int = 8,
) -> Path:
    """PNG grid: one row per sample (up to ``max_samples``), the input image (channel mean, or
    RGB for 3 channels) then one heat map per method (|attribution| summed over channels), each
    with its colour bar (the methods' scales differ)."""
    from dlskills._plot import colorbar, new_figure, save_figure

    if not attributions:
        raise ValueError("attributions must map at least one method name to a tensor")
    if inputs.dim() not in (3, 4):
        raise ValueError(
            f"plot_attributions needs images (B, C, H, W) or (B, H, W), got "
            f"shape {tuple(inputs.shape)}"
        )
    images = inputs.detach().cpu()
    images = images.unsqueeze(1) if images.dim() == 3 else images
    rows = min(len(images), max_samples)
    fig, axes = new_figure(
        rows,
        1 + len(attributions),
        size=(2.4, 2.0),
        title="Attributions: |attribution| summed over channels, per method",
    )
    axes = axes.reshape(rows, 1 + len(attributions))
    for row in range(rows):
        image = images[row]
        if image.shape[0] == 3:
            shown = (image - image.min()) / (image.max() - image.min() + 1e-12)
            axes[row, 0].imshow(shown.permute(1, 2, 0).numpy())
        else:
            axes[row, 0].imshow(image.mean(0).numpy(), cmap="gray")
        for column, (name, values) in enumerate(attributions.items(), start=1):
            heat = values[row].detach().cpu()
            heat = heat.abs().sum(0) if heat.dim() == 3 else heat.abs()
            shown = axes[row, column].imshow(heat.numpy(), cmap="inferno")
            bar = colorbar(fig, shown, axes[row, column], "|attribution|", fraction=0.046)
            bar.ax.tick_params(labelsize=6)
            bar.ax.yaxis.label.set_fontsize(7)
            if row == 0:
                axes[row, column].set_title(name, fontsize=8)
        axes[row, 0].set_ylabel(f"sample {row}", fontsize=8)
        if row == 0:
            axes[row, 0].set_title("input", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)
