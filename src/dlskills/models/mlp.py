"""Multi-layer perceptron (catalog 1904.05526 §2, the feed-forward network as a statistical
model): the input is flattened, then ``depth`` hidden layers

    h_ℓ = dropout(act(norm(W_ℓ h_{ℓ−1} + b_ℓ))),   ℓ = 1..depth,   output = W_{L} h_depth + b_L.

Parameters (``norm="none"``, ``bias=True``), with widths n_0 = prod(input_shape), n_1..n_depth
and n_{depth+1} = num_classes: Σ_ℓ (n_{ℓ−1} + 1)·n_ℓ. With batch/layer/group norm the hidden
Linear layers drop their bias (the norm's β replaces it) and each norm adds 2·n_ℓ.
``norm="weight"`` weight-normalises every Linear (output layer included, as in Salimans &
Kingma).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from dlskills.models._registry import (
    SequentialModel,
    check_dropout,
    check_positive_int,
    check_shape,
    finish,
    hidden_block,
    register_model,
    uses_bias,
)


def hidden_widths(depth: int, width: int | Sequence[int]) -> list[int]:
    """The hidden widths: ``width`` repeated ``depth`` times, or the list itself."""
    if isinstance(width, int) and not isinstance(width, bool):
        return [check_positive_int("width", width)] * depth
    widths = list(width)
    if len(widths) != depth:
        raise ValueError(f"width has {len(widths)} entries but depth is {depth}")
    return [check_positive_int("width", w) for w in widths]


@register_model("mlp", catalog_id="1904.05526", family="mlp", input="any")
class MLP(SequentialModel):
    """Flatten → ``depth`` × [Linear → norm → activation → dropout] → Linear(num_classes)."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 2,
        width: int | Sequence[int] = 128,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        shape = check_shape(input_shape)
        check_positive_int("num_classes", num_classes)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be a non-negative int, got {depth!r}")
        widths = hidden_widths(depth, width)
        dropout = check_dropout(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(shape)
        for fan_out in widths:
            linear = nn.Linear(fan_in, fan_out, bias=uses_bias(norm, bias))
            layers += hidden_block(
                linear, fan_out, activation=activation, norm=norm, dropout=dropout, spatial=False
            )
            fan_in = fan_out
        layers.append(nn.Linear(fan_in, num_classes, bias=bias))
        super().__init__(*layers)
        self.input_shape, self.num_classes = shape, num_classes
        finish(self, norm)
