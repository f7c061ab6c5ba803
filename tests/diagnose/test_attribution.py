"""Attributions (1905.08883) through Captum: IG completeness, saliency = |∂f/∂x|, SmoothGrad of a
linear model = |w|, occlusion of a linear model = w·x, Grad-CAM against a hand computation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.diagnose.attribution import attribute, last_conv, plot_attributions


def tanh_mlp():
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
    )


def test_integrated_gradients_completeness():
    model = tanh_mlp().double()
    x = torch.randn(4, 5, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 1])
    attributions = attribute(model, x, target, "integrated_gradients", n_steps=200)
    with torch.no_grad():
        gain = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(attributions.sum(1), gain, atol=1e-4, rtol=1e-3)


def test_saliency_is_the_absolute_input_gradient():
    model = tanh_mlp()
    x = torch.randn(3, 5)
    x_grad = x.clone().requires_grad_(True)
    model(x_grad)[:, 2].sum().backward()
    torch.testing.assert_close(attribute(model, x, 2, "saliency"), x_grad.grad.abs())


def test_smoothgrad_and_occlusion_on_a_linear_model():
    model = nn.Linear(4, 2)
    x = torch.randn(3, 4)
    w = model.weight.detach()[1]
    smooth = attribute(model, x, 1, "smoothgrad", samples=7, seed=1)
    torch.testing.assert_close(smooth, w.abs().expand(3, 4))  # the gradient is w everywhere
    occlusion = attribute(model, x, 1, "occlusion")  # one element at a time, baseline 0
    torch.testing.assert_close(occlusion, x * w)


def test_smoothgrad_is_seeded():
    model, x = tanh_mlp(), torch.randn(2, 5)
    first = attribute(model, x, 0, "smoothgrad", seed=3)
    assert torch.equal(first, attribute(model, x, 0, "smoothgrad", seed=3))
    assert not torch.equal(first, attribute(model, x, 0, "smoothgrad", seed=4))


def test_gradcam_matches_a_hand_computation(tmp_path):
    model = small_cnn()
    x = torch.randn(2, 1, 6, 6)
    assert last_conv(model) is model[2]
    maps = {}
    handle = model[2].register_forward_hook(lambda module, args, output: maps.update(a=output))
    scores = model(x)
    handle.remove()
    grads = torch.autograd.grad(scores[:, 1].sum(), maps["a"])[0]
    expected = F.relu((grads.mean((2, 3), keepdim=True) * maps["a"]).sum(1, keepdim=True))
    cam = attribute(model, x, 1, "gradcam", upsample=False)
    torch.testing.assert_close(cam, expected.detach())
    upsampled = attribute(model, x, 1, "gradcam")
    assert upsampled.shape == (2, 1, 6, 6)
    attributions = {m: attribute(model, x, 1, m) for m in ("saliency", "gradcam", "occlusion")}
    assert attributions["occlusion"].shape == x.shape
    assert plot_attributions(x, attributions, tmp_path / "attr.png").stat().st_size > 1000


def test_errors():
    with pytest.raises(ValueError, match="Conv2d"):
        attribute(tanh_mlp(), torch.randn(1, 5), 0, "gradcam")
    with pytest.raises(ValueError, match="method"):
        attribute(tanh_mlp(), torch.randn(1, 5), 0, "lime")
    with pytest.raises(TypeError, match="n_steps"):
        attribute(tanh_mlp(), torch.randn(1, 5), 0, "saliency", n_steps=3)
