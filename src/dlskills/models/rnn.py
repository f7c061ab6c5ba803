"""Recurrent sequence model (catalog 1904.05526 §2, the RNN; used by 1211.5063's clipping
check). Input (B, T, D); a stack of ``num_layers`` recurrent layers of ``hidden_size`` units, then
a Linear read-out of the last layer's final hidden state (both directions when bidirectional):

    rnn   h_t = tanh(W x_t + U h_{t−1} + b)           (``rnn_relu``: ReLU instead of tanh)
    gru   Cho et al. 2014 gates (torch.nn.GRU)
    lstm  Hochreiter & Schmidhuber 1997 (torch.nn.LSTM); the read-out uses h_T, not c_T

``readout="mean"`` averages the last layer's outputs over time instead. ``num_classes`` is the
output width (classes, or regression targets).
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

CELLS = ("rnn", "rnn_tanh", "rnn_relu", "gru", "lstm")


@register_model("rnn", catalog_id="1904.05526", family="rnn", input="sequence")
class RNNModel(nn.Module):
    """GRU / LSTM / vanilla RNN encoder over (B, T, D) with a Linear read-out."""

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        cell: str = "gru",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: str = "last",
    ) -> None:
        super().__init__()
        shape = check_shape(input_shape, 2, "a sequence (T, D)")
        check_positive_int("num_classes", num_classes)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        cell_name = cell.lower().replace("-", "_") if isinstance(cell, str) else cell
        if cell_name not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        common = dict(
            input_size=shape[1],
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bool(bidirectional),
            dropout=check_dropout(dropout),
        )
        if cell_name == "gru":
            self.rnn: nn.RNNBase = nn.GRU(**common)
        elif cell_name == "lstm":
            self.rnn = nn.LSTM(**common)
        else:
            nonlinearity = "relu" if cell_name == "rnn_relu" else "tanh"
            self.rnn = nn.RNN(nonlinearity=nonlinearity, **common)
        self.directions = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.directions, num_classes)
        self.input_shape, self.num_classes = shape, num_classes
        self.cell, self.readout = cell_name, readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"expected input (B, T, D), got shape {tuple(x.shape)}")
        outputs, state = self.rnn(x)
        if self.readout == "mean":
            return self.head(outputs.mean(dim=1))
        final = state[0] if isinstance(state, tuple) else state  # LSTM state is (h, c)
        last_layer = final[-self.directions :]  # (directions, B, H)
        return self.head(last_layer.transpose(0, 1).reshape(x.shape[0], -1))
