"""Conformance of the model zoo (1904.05526): every model builds from the registry, gives the
right output shape, fits a small batch, and keeps its activation modules in forward order."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlskills.models import MODELS, create
from dlskills.nn.activations import ACTIVATIONS

ACTIVATION_TYPES = tuple(entry.obj for entry in ACTIVATIONS.entries())

# name, input_shape, outputs, options
CASES = [
    ("mlp", (1, 8, 8), 10, {"depth": 2, "width": 32}),
    ("mlp", (5,), 3, {"norm": "layer", "activation": "gelu", "dropout": 0.1}),
    ("cnn", (1, 8, 8), 10, {"channels": (8, 16)}),
    ("cnn", (3, 12, 12), 4, {"channels": (4, 8, 8), "norm": "group", "activation": "silu"}),
    ("resnet", (3, 8, 8), 5, {"depth": 8, "width": 4}),
    ("resnet", (1, 8, 8), 5, {"depth": 8, "width": 4, "norm": "none", "activation": "elu"}),
    ("rnn", (7, 3), 4, {"cell": "gru", "hidden_size": 16}),
    ("rnn", (7, 3), 4, {"cell": "lstm", "hidden_size": 16, "bidirectional": True}),
    ("gan_discriminator", (1, 8, 8), None, {"widths": (32, 16)}),
]


def case_id(case):
    return f"{case[0]}-{'x'.join(map(str, case[1]))}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_output_shape_and_fits_a_small_batch(case):
    name, shape, outputs, options = case
    model = create(name, input_shape=shape, num_classes=outputs, **options)
    x = torch.randn(16, *shape)
    logits = model(x)
    width = outputs or 1
    assert logits.shape == (16, width)
    if outputs is None:  # discriminator: real (1) vs fake (0)
        target = (torch.arange(16) % 2).float()[:, None]
        loss_fn = F.binary_cross_entropy_with_logits
    else:
        target = torch.arange(16) % width
        loss_fn = F.cross_entropy
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    initial = loss_fn(model(x), target).item()
    for _ in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * initial


@pytest.mark.parametrize(
    "case", [c for c in CASES if c[0] in ("mlp", "cnn", "resnet")], ids=case_id
)
def test_activations_are_separate_modules_in_forward_order(case):
    name, shape, outputs, options = case
    model = create(name, input_shape=shape, num_classes=outputs, **options)
    declared = [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]
    assert declared and len({id(m) for m in declared}) == len(declared)
    called = []
    handles = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in declared]
    model(torch.randn(2, *shape))
    for handle in handles:
        handle.remove()
    assert [id(m) for m in called] == [id(m) for m in declared]


def test_registry_names_and_errors():
    assert {"mlp", "cnn", "resnet", "rnn", "generator", "gan_discriminator", "vae"} <= set(
        MODELS.names()
    )
    for name in ("mlp", "cnn", "resnet", "rnn", "generator", "gan_discriminator", "vae"):
        assert MODELS.entry(name).catalog_id == "1904.05526"
    with pytest.raises(ValueError, match="did you mean 'resnet'"):
        create("resnte", input_shape=(3, 8, 8), num_classes=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'widht'"):
        create("mlp", input_shape=(4,), num_classes=2, widht=3)
    with pytest.raises(ValueError, match="input_shape must be an image"):
        create("cnn", input_shape=(64,), num_classes=2)
    with pytest.raises(TypeError, match="input_shape"):
        create("mlp", input_shape=8, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        create("mlp", input_shape=(4,), num_classes=0)
    with pytest.raises(ValueError, match="unknown activation"):
        create("mlp", input_shape=(4,), num_classes=2, activation="relu7")
    with pytest.raises(ValueError, match="unknown normalization"):
        create("cnn", input_shape=(1, 8, 8), num_classes=2, norm="batchy")
    with pytest.raises(ValueError, match="dropout"):
        create("mlp", input_shape=(4,), num_classes=2, dropout=1.0)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_weight_norm_by_name(name):
    options = {"depth": 8, "width": 4} if name == "resnet" else {}
    model = create(name, input_shape=(1, 8, 8), num_classes=3, norm="weight", **options)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(
        isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm) for m in model.modules()
    )
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_slices_are_plain_sequentials_sharing_the_layers():
    model = create("cnn", input_shape=(1, 8, 8), num_classes=3, channels=(4, 8)).eval()
    head, tail = model[:4], model[4:]
    assert type(head) is nn.Sequential and head[0] is model[0]
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(tail(head(x)), model(x))
