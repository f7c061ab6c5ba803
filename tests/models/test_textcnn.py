"""Kim's TextCNN (1510.03820): the forward rule recomputed from its weights with F.conv1d, each
pooling by its definition, and the argument checks."""

import pytest
import torch
import torch.nn.functional as F

from dlskills.data import load
from dlskills.models import create
from dlskills.train.config import make_config
from dlskills.train.runs import build_model


def reference(model, tokens):
    """Embedding → conv per region size → activation → pooling → linear, written out."""
    x = model.embedding.weight[tokens].transpose(1, 2)
    pooled = []
    for conv, activation in zip(model.convs, model.activations):
        maps = activation(F.conv1d(x, conv.weight, conv.bias))
        if model.pooling == "max":
            pooled.append(maps.max(dim=2).values)
        elif model.pooling == "avg":
            pooled.append(maps.sum(dim=2) / maps.shape[2])
        else:  # the k largest of each map, in sentence order
            rows = []
            for b in range(maps.shape[0]):
                row = []
                for j in range(maps.shape[1]):
                    top = sorted(maps[b, j].argsort(descending=True)[: model.k].tolist())
                    row += [maps[b, j, i] for i in top]
                rows.append(torch.stack(row))
            pooled.append(torch.stack(rows))
    return F.linear(torch.cat(pooled, 1), model.classifier.weight, model.classifier.bias)


@pytest.mark.parametrize("pooling", ["max", "avg", "kmax"])
def test_forward_is_the_papers_rule(pooling):
    torch.manual_seed(0)
    options = {"region_sizes": (2, 3, 5), "feature_maps": 4, "activation": "tanh"}
    model = create(
        "textcnn", input_shape=(12,), num_classes=3, vocab_size=30, pooling=pooling, **options
    )
    model.eval()
    tokens = torch.randint(1, 30, (5, 12))
    expected = reference(model, tokens)
    assert torch.allclose(model(tokens), expected, atol=1e-6)
    assert torch.allclose(model(tokens.float()), expected, atol=1e-6)  # dlskills.data's floats
    assert model.embedding.weight[0].abs().sum() == 0  # <pad>


def test_kmax_keeps_sentence_order():
    options = {"region_sizes": (3,), "pooling": "kmax", "k": 3}
    model = create("textcnn", input_shape=(7,), num_classes=2, vocab_size=5, **options)
    maps = torch.tensor([[[3.0, 1.0, 5.0, 2.0, 4.0]]])
    assert model.pool(maps).tolist() == [[3.0, 5.0, 4.0]]


def test_shapes_and_parameter_count():
    model = create("textcnn", input_shape=(20,), num_classes=2, vocab_size=58)
    assert model(torch.zeros(4, 20, dtype=torch.long)).shape == (4, 2)
    # embeddings 58·16, convs 32·16·h + 32 for h = 3, 4, 5, classifier 96·2 + 2
    expected = 58 * 16 + sum(32 * 16 * h + 32 for h in (3, 4, 5)) + 96 * 2 + 2
    assert sum(p.numel() for p in model.parameters()) == expected


def test_bad_arguments_name_themselves():
    kw = {"input_shape": (6,), "num_classes": 2, "vocab_size": 10}
    with pytest.raises(ValueError, match="region_sizes"):
        create("textcnn", region_sizes=(7,), **kw)
    with pytest.raises(ValueError, match="pooling"):
        create("textcnn", pooling="min", **kw)
    with pytest.raises(ValueError, match="k: 3-max"):
        create("textcnn", region_sizes=(5,), pooling="kmax", **kw)
    with pytest.raises(ValueError, match="input_shape"):
        create("textcnn", input_shape=(1, 6), num_classes=2, vocab_size=10)


def test_build_model_passes_the_vocabulary_size():
    config = make_config({"model": "textcnn", "dataset": "sentences"})
    splits = load("sentences", seed=0, n=100)
    model = build_model(config, splits)
    assert model.embedding.num_embeddings == splits.info["vocab_size"]
