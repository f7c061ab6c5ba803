"""Kim's one-layer CNN for sentence classification (Kim 2014, "Convolutional Neural Networks for
Sentence Classification"), with the knobs that catalog 1510.03820 (Zhang & Wallace, "A
Sensitivity Analysis of (and Practitioners' Guide to) Convolutional Neural Networks for Sentence
Classification") studies: region sizes, feature maps per region size, activation, pooling and
dropout.

For a sentence of token ids w_1..w_T with embeddings x_i = E[w_i] ∈ R^d (d = ``embed_dim``):

    c^{h,j}_i = f(W^{h,j} · x_{i:i+h−1} + b^{h,j})     i = 1..T−h+1
                (feature maps j = 1..m, m = ``feature_maps``, per region size h ∈ ``region_sizes``)
    pooling    1-max:  ĉ^{h,j} = max_i c^{h,j}_i                         (Kim; the paper's default)
               k-max:  the k largest c^{h,j}_i, kept in sentence order   (k = ``k``)
               avg:    ĉ^{h,j} = mean_i c^{h,j}_i
    z = concat over (h, j) of ĉ^{h,j}  →  dropout(p)  →  logits = V z + v

f is an activation from ``dlskills.nn.activations`` (the paper compares ReLU, tanh, sigmoid,
softplus, identity, ...).

Input: (B, T) token ids, int64 or float (``dlskills.data`` stores float inputs; they are cast
back to int64). ``vocab_size`` embeddings, row 0 (``<pad>``) fixed at zero.

Deviations from the papers: the embeddings are random and trained ("CNN-rand"; no word2vec or
GloVe vectors are shipped), the l2 max-norm constraint on V (Kim's s = 3, which 1510.03820 found
of little effect) is left out (use weight decay), and the optimizer is the caller's (Kim used
Adadelta).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlskills.models._registry import (
    check_dropout,
    check_positive_int,
    check_shape,
    register_model,
)
from dlskills.nn.activations import get_activation

POOLINGS = ("max", "kmax", "avg")


@register_model("textcnn", catalog_id="1510.03820", family="cnn", input="tokens")
class TextCNN(nn.Module):
    """Embedding → parallel Conv1d per region size → activation → pooling over time → dropout →
    Linear. ``input_shape`` is ``(T,)``, the sentence length."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        vocab_size: int,
        embed_dim: int = 16,
        region_sizes: Sequence[int] = (3, 4, 5),
        feature_maps: int = 32,
        activation: str = "relu",
        pooling: str = "max",
        k: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        (length,) = check_shape(input_shape, 1, "a sentence length (T,)")
        check_positive_int("num_classes", num_classes)
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("feature_maps", feature_maps)
        check_positive_int("k", k)
        if isinstance(region_sizes, int) or not region_sizes:
            raise ValueError(
                f"region_sizes must be a non-empty sequence of ints, got {region_sizes!r}"
            )
        for size in region_sizes:
            check_positive_int("region_sizes", size)
        if max(region_sizes) > length:
            raise ValueError(
                f"region_sizes: {max(region_sizes)} is longer than the sentences ({length} tokens)"
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if pooling == "kmax" and length - max(region_sizes) + 1 < k:
            raise ValueError(
                f"k: {k}-max pooling needs at least {k} positions, region size "
                f"{max(region_sizes)} leaves {length - max(region_sizes) + 1}"
            )
        self.input_shape, self.num_classes = (length,), num_classes
        self.region_sizes, self.pooling, self.k = tuple(region_sizes), pooling, k
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, feature_maps, h) for h in region_sizes)
        self.activations = nn.ModuleList(get_activation(activation) for _ in region_sizes)
        self.dropout = nn.Dropout(check_dropout(dropout))
        pooled = feature_maps * (k if pooling == "kmax" else 1)
        self.classifier = nn.Linear(pooled * len(region_sizes), num_classes)

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, m, positions) feature maps → (B, m·k) for k-max, else (B, m)."""
        if self.pooling == "max":
            return maps.amax(dim=2)
        if self.pooling == "avg":
            return maps.mean(dim=2)
        positions = maps.topk(self.k, dim=2).indices.sort(dim=2).values
        return maps.gather(2, positions).flatten(1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(tokens.long()).transpose(1, 2)  # (B, d, T)
        pooled = [
            self.pool(activation(conv(embedded)))
            for conv, activation in zip(self.convs, self.activations)
        ]
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))
