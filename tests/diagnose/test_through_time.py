"""Gradient flow through time: ‖∂L/∂h_t‖ and the transport of a direction from the last step,
checked against autograd on explicitly unrolled recurrences (catalog 1211.5063)."""

import math

import pytest
import torch
from torch import nn

from dlskills import models
from dlskills.diagnose.through_time import (
    THROUGH_TIME_EXPLODING_FAIL,
    THROUGH_TIME_VANISHING_FAIL,
    gradient_through_time,
)


def _sequences(batch=16, steps=30, features=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, features, generator=generator)
    return x, (x[:, :3, 0].sum(1) > 0).long()  # the label depends on the first steps


def _unrolled_by_hand(step, x, h, readout, y, seed=0):
    """Run ``h = step(x_t, h)`` over t, read out the last state; return ‖∂L/∂h_t‖ and the
    transport ‖(∂h_T/∂h_t)ᵀ u‖/‖u‖ for u ~ randn(seed), both from autograd."""
    states = []
    for t in range(x.shape[1]):
        h = step(x[:, t], h)
        states.append(h if isinstance(h, torch.Tensor) else h[0])
    loss = nn.functional.cross_entropy(readout(states[-1]), y)
    grads = torch.autograd.grad(loss, states, retain_graph=True)
    u = torch.randn(states[-1].shape, generator=torch.Generator().manual_seed(seed))
    moved = torch.autograd.grad(states[-1], states, grad_outputs=u)
    norms = torch.tensor([g.double().norm() for g in grads])
    transport = torch.tensor([m.double().norm() for m in moved]) / u.double().norm()
    return norms, transport, float(loss.detach())


def test_tanh_rnn_matches_an_explicit_unroll():
    """nn.RNN (batch first) in the model zoo's RNN, against h_t = tanh(W_ih x_t + b_ih +
    W_hh h_(t-1) + b_hh) written out step by step."""
    torch.manual_seed(0)
    model = models.create("rnn", input_shape=(30, 3), num_classes=2, cell="rnn", hidden_size=16)
    x, y = _sequences()
    result = gradient_through_time(model, [(x, y)], nn.CrossEntropyLoss(), seed=0)
    (measured,) = result.modules
    assert measured.name == "rnn" and measured.steps == 30
    rnn = model.rnn

    def step(x_t, h):
        z = x_t @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T
        return torch.tanh(z + rnn.bias_hh_l0)

    norms, transport, loss = _unrolled_by_hand(step, x, torch.zeros(16, 16), model.head, y)
    torch.testing.assert_close(measured.grad_norm, norms, rtol=1e-4, atol=0)
    torch.testing.assert_close(measured.transport, transport, rtol=1e-4, atol=0)
    assert result.loss == pytest.approx(loss, rel=1e-6)
    assert all(p.grad is None for p in model.parameters())  # measured on a copy


def test_two_layer_lstm_sequence_first_matches_lstm_cells():
    """The top layer's h_t of a 2-layer nn.LSTM (time first) against two nn.LSTMCell with its
    weights; the total derivative reaches h_t through the gates of step t+1 and the read-out."""
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 8, num_layers=2)
    head = nn.Linear(8, 2)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm, head

        def forward(self, x):
            out, _ = self.lstm(x.transpose(0, 1))
            return self.head(out[-1])

    x, y = _sequences(steps=12)
    (measured,) = gradient_through_time(Model(), [(x, y)], nn.CrossEntropyLoss()).modules
    cells = [nn.LSTMCell(3, 8), nn.LSTMCell(8, 8)]
    for layer, cell in enumerate(cells):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, kind).data.copy_(getattr(lstm, f"{kind}_l{layer}"))
    zeros = torch.zeros(16, 8)

    def step(x_t, state):
        (h0, c0), (h1, c1) = state if state is not None else ((zeros, zeros), (zeros, zeros))
        h0, c0 = cells[0](x_t, (h0, c0))
        h1, c1 = cells[1](h0, (h1, c1))
        return h1, ((h0, c0), (h1, c1))

    states = []
    state = None
    for t in range(x.shape[1]):
        h, state = step(x[:, t], state)
        states.append(h)
    loss = nn.functional.cross_entropy(head(states[-1]), y)
    grads = torch.autograd.grad(loss, states)
    torch.testing.assert_close(
        measured.grad_norm, torch.tensor([g.double().norm() for g in grads]), rtol=1e-4, atol=0
    )


class _LinearCell(nn.Module):
    """h_t = A x_t + a Q h_(t-1) with Q orthogonal: ∂h_T/∂h_t = (a Q)^(T-t), whose action on
    any direction has norm a^(T-t) exactly."""

    def __init__(self, gain, width=8, features=3):
        super().__init__()
        self.inp = nn.Linear(features, width)
        self.rec = nn.Linear(width, width, bias=False)
        nn.init.orthogonal_(self.rec.weight, gain=gain)

    def forward(self, x_t, h):
        return self.inp(x_t) + self.rec(h)


class _CellLoop(nn.Module):
    def __init__(self, cell, width=8):
        super().__init__()
        self.cell, self.head, self.width = cell, nn.Linear(width, 2), width

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.width)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(h)


@pytest.mark.parametrize(("gain", "steps"), [(0.5, 20), (1.0, 20), (1.5, 30)])
def test_user_cell_transport_is_the_gain_power(gain, steps):
    x, y = _sequences(steps=steps)
    result = gradient_through_time(_CellLoop(_LinearCell(gain)), [(x, y)], nn.CrossEntropyLoss())
    (measured,) = result.modules
    assert measured.name == "cell"
    expected = torch.tensor([gain ** (steps - 1 - t) for t in range(steps)], dtype=torch.float64)
    torch.testing.assert_close(measured.transport, expected, rtol=1e-4, atol=0)
    # the read-out is on h_T only, so ∂L/∂h_t = ((aQ)^(T-t))ᵀ ∂L/∂h_T: same powers, decay = a
    relative = measured.grad_norm / measured.grad_norm[-1]
    torch.testing.assert_close(relative, expected, rtol=1e-4, atol=0)
    assert measured.decay == pytest.approx(gain, rel=1e-4)
    checks = {c.name: c for c in result.checks()}
    vanishing, exploding = checks["vanishing_through_time"], checks["exploding_through_time"]
    if gain < 1:  # 0.5^19 = 1.9e-6
        assert vanishing.verdict == "FAIL" and vanishing.value < THROUGH_TIME_VANISHING_FAIL
        assert vanishing.value == pytest.approx(gain ** (steps - 1), rel=1e-4)
    elif gain > 1:  # 1.5^29 = 1.3e5
        assert exploding.verdict == "FAIL" and exploding.value > THROUGH_TIME_EXPLODING_FAIL
        assert exploding.value == pytest.approx(gain ** (steps - 1), rel=1e-4)
    else:
        assert (vanishing.verdict, exploding.verdict) == ("OK", "OK")


def test_rnn_cell_loop_is_found_and_feedforward_models_have_no_modules():
    torch.manual_seed(0)
    x, y = _sequences(steps=10)
    cell_model = _CellLoop(nn.RNNCell(3, 8))
    (measured,) = gradient_through_time(cell_model, [(x, y)], nn.CrossEntropyLoss()).modules
    assert measured.name == "cell" and measured.steps == 10
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(30, 8), nn.Tanh(), nn.Linear(8, 2))
    result = gradient_through_time(mlp, [(x, y)], nn.CrossEntropyLoss())
    assert result.modules == [] and result.checks() == []


def test_long_tanh_rnn_vanishes_and_a_large_recurrent_gain_explodes():
    """The issue's case: a tanh RNN over 100 steps whose label depends on the first steps
    (default init: γ ≈ 0.57 per step back, 1e-24 of the gradient reaches step 1); the same
    measurement at recurrent gain 3 (orthogonal W_hh, chaotic regime) grows ~1e7 over 50."""
    x, y = _sequences(batch=32, steps=100)
    torch.manual_seed(0)
    model = models.create("rnn", input_shape=(100, 3), num_classes=2, cell="rnn", hidden_size=64)
    result = gradient_through_time(model, [(x, y)], nn.CrossEntropyLoss())
    checks = {c.name: c for c in result.checks()}
    assert checks["vanishing_through_time"].verdict == "FAIL"
    assert checks["exploding_through_time"].verdict == "OK"
    torch.manual_seed(0)
    model = models.create("rnn", input_shape=(50, 3), num_classes=2, cell="rnn", hidden_size=64)
    nn.init.orthogonal_(model.rnn.weight_hh_l0, gain=3.0)
    result = gradient_through_time(model, [(x[:, :50], y)], nn.CrossEntropyLoss())
    checks = {c.name: c for c in result.checks()}
    assert checks["exploding_through_time"].verdict == "FAIL"
    assert checks["vanishing_through_time"].verdict == "OK"
    assert result.modules[0].decay > 1


def test_bidirectional_rnn_is_refused_and_plot(tmp_path):
    x, y = _sequences(steps=8)
    model = models.create("rnn", input_shape=(8, 3), num_classes=2, cell="gru", bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        gradient_through_time(model, [(x, y)], nn.CrossEntropyLoss())
    model = models.create("rnn", input_shape=(8, 3), num_classes=2, cell="gru")
    result = gradient_through_time(model, [(x, y)], nn.CrossEntropyLoss())
    assert result.plot(tmp_path / "tt.png").read_bytes()[:4] == b"\x89PNG"
    assert math.isfinite(result.to_dict()["modules"][0]["decay"])


def test_demo_orders_the_three_recurrent_gains():
    from dlskills.diagnose.through_time import through_time_demo

    default, edge, large = through_time_demo(steps=30).modules
    assert default.decay < edge.decay < 1 < large.decay
    assert large.name == "tanh RNN, gain 3"
