"""Small nets with controlled initialisation for the diagnose tests (imported by them)."""

import math

from torch import nn


def build_mlp(widths, *, din=16, dout=10, activation=nn.ReLU, weight_scale=None):
    """Linear/activation stack; ``weight_scale``: weights ~ N(0, scale² / fan_in), zero biases
    (None keeps torch's default init)."""
    layers, fan_in = [], din
    for width in widths:
        layers += [nn.Linear(fan_in, width), activation()]
        fan_in = width
    layers.append(nn.Linear(fan_in, dout))
    model = nn.Sequential(*layers)
    if weight_scale is not None:
        scaled_init(weight_scale)(model)
    return model


def scaled_init(scale):
    """An init_fn drawing every Linear weight from N(0, scale² / fan_in) with zero bias."""

    def init(model):
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=scale / math.sqrt(module.in_features))
                nn.init.zeros_(module.bias)

    return init


HE = math.sqrt(2.0)


def small_cnn(classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, classes),
    )
