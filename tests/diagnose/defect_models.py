"""Small models built to have one known defect each, with the data they are diagnosed on
(issue 15): the doctor must name the defect and must not blame something else."""

import torch
from diagnose_nets import HE, build_mlp
from torch import nn

from dlskills import models


def digits_loaders(n=512, label_noise=0.0, batch_size=64, seed=0):
    """The first ``n`` scikit-learn digits (pixels scaled to [0, 1], centred) as train and
    validation loaders (validation: the next 256 digits, clean labels); ``label_noise`` of the
    training labels replaced by random classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(digits.target), generator=generator)
    x = torch.tensor(digits.data, dtype=torch.float32)[order] / 16.0
    x = x - x[:n].mean(0)
    y = torch.tensor(digits.target)[order]
    train_y = y[:n].clone()
    if label_noise:
        flip = torch.rand(n, generator=generator) < label_noise
        train_y[flip] = torch.randint(0, 10, (int(flip.sum()),), generator=generator)
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:n], train_y),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    val = [(x[n : n + 256], y[n : n + 256])]
    return train, val


def sequence_loaders(steps=100, features=3, n=256, seed=0):
    """Sequences whose label is the sign of the sum of the first three steps' first feature."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 128, steps, features, generator=generator)
    y = (x[:, :3, 0].sum(1) > 0).long()
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x[:n], y[:n]),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    return train, [(x[n:], y[n:])]


def deep_tanh(scale=0.03, depth=24):
    """The issue's model: a deep tanh MLP (~100 k parameters) far below the Xavier scale."""
    return build_mlp([64] * depth, din=64, activation=nn.Tanh, weight_scale=scale)


def deep_sigmoid():
    return build_mlp([64] * 19, din=64, activation=nn.Sigmoid, weight_scale=0.5)


def long_rnn(steps=100, gain=None):
    """A tanh RNN (64 units) reading a long sequence; ``gain``: orthogonal W_hh at that gain."""
    model = models.create("rnn", input_shape=(steps, 3), num_classes=2, cell="rnn", hidden_size=64)
    if gain is not None:
        nn.init.orthogonal_(model.rnn.weight_hh_l0, gain=gain)
    return model


def dead_relu(bias=-4.0):
    """A ReLU MLP whose first hidden layer has a large negative bias: no unit fires."""
    model = build_mlp([128, 128], din=64, weight_scale=HE)
    with torch.no_grad():
        model[0].bias.fill_(bias)
    return model


def saturated_tanh(scale=10.0):
    """tanh layers with weights 10x the unit scale: almost every output sits at ±1."""
    return build_mlp([128, 128], din=64, activation=nn.Tanh, weight_scale=scale)


def healthy_relu():
    return build_mlp([128, 128], din=64, weight_scale=HE)


def healthy_tanh():
    return build_mlp([128, 128], din=64, activation=nn.Tanh, weight_scale=1.0)


def overlarge():
    """~1.1 M parameters for 512 examples."""
    return build_mlp([1024, 1024], din=64, weight_scale=HE)
