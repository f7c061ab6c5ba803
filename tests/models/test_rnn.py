"""RNN sequence model: read-outs equal their definition on torch's outputs; cells by name."""

import pytest
import torch
from torch import nn

from dlskills.models import create


@pytest.mark.parametrize(("cell", "kind"), [("gru", nn.GRU), ("lstm", nn.LSTM), ("rnn", nn.RNN)])
def test_last_readout_is_the_final_hidden_state(cell, kind):
    model = create("rnn", input_shape=(6, 3), num_classes=2, cell=cell, hidden_size=5)
    assert isinstance(model.rnn, kind)
    x = torch.randn(4, 6, 3)
    outputs, _ = model.rnn(x)
    torch.testing.assert_close(model(x), model.head(outputs[:, -1]))


def test_bidirectional_readout_joins_both_final_states():
    model = create(
        "rnn", input_shape=(6, 3), num_classes=2, cell="gru", hidden_size=5, bidirectional=True,
        num_layers=2,
    )  # fmt: skip
    x = torch.randn(4, 6, 3)
    outputs, _ = model.rnn(x)
    # forward direction ends at t = T−1, backward direction at t = 0
    final = torch.cat([outputs[:, -1, :5], outputs[:, 0, 5:]], dim=1)
    torch.testing.assert_close(model(x), model.head(final))


def test_mean_readout_and_relu_cell():
    model = create("rnn", input_shape=(6, 3), num_classes=2, cell="rnn_relu", readout="mean")
    assert model.rnn.nonlinearity == "relu"
    x = torch.randn(4, 6, 3)
    torch.testing.assert_close(model(x), model.head(model.rnn(x)[0].mean(dim=1)))


def test_gru_parameter_count():
    model = create("rnn", input_shape=(10, 3), num_classes=4, cell="gru", hidden_size=8)
    # three gates, each W (8×3), U (8×8) and two biases; head 8·4 + 4
    assert sum(p.numel() for p in model.parameters()) == 3 * (8 * 3 + 8 * 8 + 2 * 8) + 36


def test_any_sequence_length_and_errors():
    model = create("rnn", input_shape=(10, 3), num_classes=1, cell="lstm")
    assert model(torch.randn(2, 25, 3)).shape == (2, 1)
    with pytest.raises(ValueError, match="cell must be one of"):
        create("rnn", input_shape=(10, 3), num_classes=1, cell="transformer")
    with pytest.raises(ValueError, match="readout"):
        create("rnn", input_shape=(10, 3), num_classes=1, readout="max")
    with pytest.raises(ValueError, match=r"sequence \(T, D\)"):
        create("rnn", input_shape=(1, 8, 8), num_classes=1)
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        model(torch.randn(25, 3))
