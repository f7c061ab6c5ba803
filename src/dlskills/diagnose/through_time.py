"""Gradient flow through time in recurrent modules (catalog 1211.5063).

R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent neural networks"
(2012): the gradient that step t receives from the loss is a sum over later steps k of products
of recurrent Jacobians,

    ∂L/∂h_t = ∂L_direct/∂h_t + (∂h_(t+1)/∂h_t)ᵀ ∂L/∂h_(t+1),    ∂h_T/∂h_t = ∏_(t<k≤T) ∂h_k/∂h_(k-1),

so its long-term components shrink (vanish) or grow (explode) exponentially in T - t. Per-
parameter norms (``gradient_flow``) sum over every step and hide this: a tanh RNN whose label
depends on its first steps looks healthy there while those steps receive nothing.

Measured per recurrent module, on one batch, at the current weights (on a copy):

    g_t = ‖∂L/∂h_t‖            the total derivative of the loss w.r.t. the hidden state of step t
                               (all examples of the batch together)
    τ_t = ‖(∂h_T/∂h_t)ᵀ u‖/‖u‖   the transport of a random direction u from the last step back to t:
                               the long-term component alone, independent of the read-out (a mean
                               read-out feeds every step directly and keeps g_t flat even when τ_t
                               vanishes)
    γ = exp(-slope of ln g_t vs t)  the factor per step back in time (least squares over t):
                               g_(t-1) ≈ γ g_t on average; < 1 vanishing, > 1 exploding

Verdicts: ``vanishing_through_time`` = min(g_1 / max_t g_t, τ_1) — how much of the gradient
reaches the first step; ``exploding_through_time`` = max(max_t g_t / g_T, max_t τ_t) — how much
larger it grows than where it enters. Thresholds mirror the per-layer ones of ``gradient_flow``.

The recurrent modules are found in the forward pass: ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (run step
by step on the copy, so that each h_t is a node of the graph), and any module called several
times whose output of one call is passed, as is, to its next call (``nn.RNNCell``,
``nn.LSTMCell``, ``nn.GRUCell`` and user cells; for LSTM-like cells returning (h, c), h).
``modules=[names]`` names them explicitly: each call's output is h_t. Bidirectional RNNs and
packed sequences are not unrolled (a ``ValueError`` says so).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlskills.diagnose._hooks import (
    check_positive_int,
    concat_batches,
    detached_copy,
    model_device,
    set_diagnostic_mode,
    take_batches,
)
from dlskills.diagnose.gradient_flow import VANISHING_FAIL, VANISHING_WARN
from dlskills.diagnose.verdict import Check, grade

# Vanishing through time: the share of the gradient that reaches the first step. The per-layer
# thresholds apply unchanged — a step receiving 10^-4 of the largest gradient learns 10^4 times
# slower (an unrolled RNN is a deep net whose depth is the sequence length). Measured at torch's
# default init, 64 units, 100 steps, last-state read-out: tanh RNN 7e-25 (γ ≈ 0.57 per step),
# GRU 4e-20, LSTM 1e-21; a tanh RNN with orthogonal W_hh (gain 1) over 50 steps 5e-3 (γ ≈ 0.89).
THROUGH_TIME_VANISHING_WARN = VANISHING_WARN
THROUGH_TIME_VANISHING_FAIL = VANISHING_FAIL
# Exploding through time: early steps receiving 100x / 10^4x more than the last one. Measured: a
# tanh RNN with orthogonal W_hh at gain 3 (chaotic regime) over 50 steps grows 1.5e7 (γ ≈ 1.37).
# The per-layer limits (3 / 30 on |g|/|W|) are for a different quantity; these are the vanishing
# ones mirrored.
THROUGH_TIME_EXPLODING_WARN = 1.0 / VANISHING_WARN
THROUGH_TIME_EXPLODING_FAIL = 1.0 / VANISHING_FAIL


@dataclass(frozen=True)
class ModuleThroughTime:
    """g_t and τ_t (t = 1..T) of one recurrent module."""

    name: str
    grad_norm: torch.Tensor  # (T,) float64: ‖∂L/∂h_t‖
    transport: torch.Tensor  # (T,) float64: ‖(∂h_T/∂h_t)ᵀ u‖ / ‖u‖

    @property
    def steps(self) -> int:
        return int(self.grad_norm.numel())

    @property
    def decay(self) -> float:
        """γ: the average factor g_(t-1)/g_t per step back in time (exp of minus the
        least-squares slope of ln g_t over t); < 1 vanishing, > 1 exploding."""
        return _decay(self.grad_norm)

    @property
    def transport_decay(self) -> float:
        return _decay(self.transport)

    @property
    def vanishing(self) -> float:
        """min(g_1 / max_t g_t, τ_1)."""
        largest = float(self.grad_norm.max())
        first = float(self.grad_norm[0]) / largest if largest > 0 else 0.0
        return min(first, float(self.transport[0]))

    @property
    def exploding(self) -> float:
        """max(max_t g_t / g_T, max_t τ_t)."""
        last = float(self.grad_norm[-1])
        largest = float(self.grad_norm.max())
        growth = largest / last if last > 0 else (math.inf if largest > 0 else 1.0)
        return max(growth, float(self.transport.max()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": self.steps,
            "grad_norm": self.grad_norm.tolist(),
            "transport": self.transport.tolist(),
            "decay": self.decay,
            "transport_decay": self.transport_decay,
            "vanishing": self.vanishing,
            "exploding": self.exploding,
        }


def _decay(norms: torch.Tensor) -> float:
    """exp(-slope) of ln norms over t, on the steps with a finite positive norm."""
    t = torch.arange(norms.numel(), dtype=torch.float64)
    keep = torch.isfinite(norms) & (norms > 0)
    if int(keep.sum()) < 2:
        return math.nan
    t, y = t[keep], norms[keep].double().log()
    t = t - t.mean()
    return math.exp(-float((t * (y - y.mean())).sum() / (t * t).sum()))


@dataclass(frozen=True)
class ThroughTimeResult:
    modules: list[ModuleThroughTime]
    loss: float

    def checks(self) -> list[Check]:
        if not self.modules:
            return []
        finite = all(
            bool(torch.isfinite(m.grad_norm).all() and torch.isfinite(m.transport).all())
            for m in self.modules
        )
        weakest = min(self.modules, key=lambda m: m.vanishing)
        strongest = max(self.modules, key=lambda m: m.exploding)
        vanishing = grade(
            "vanishing_through_time",
            weakest.vanishing if finite else math.nan,
            warn=THROUGH_TIME_VANISHING_WARN,
            fail=THROUGH_TIME_VANISHING_FAIL,
            lower_is_worse=True,
            what=f"share of the gradient reaching step 1 of {weakest.steps} in {weakest.name}, "
            f"min(|dL/dh_1| / max_t |dL/dh_t|, transport from step T) (|dL/dh_t| changes "
            f"x{weakest.decay:.3g} per step back in time)",
        )
        exploding = grade(
            "exploding_through_time",
            strongest.exploding if finite else math.inf,
            warn=THROUGH_TIME_EXPLODING_WARN,
            fail=THROUGH_TIME_EXPLODING_FAIL,
            what=f"growth of the gradient back through {strongest.steps} steps in "
            f"{strongest.name}, max(max_t |dL/dh_t| / |dL/dh_T|, transport) (x"
            f"{strongest.decay:.3g} per step back in time)",
        )
        return [vanishing, exploding]

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "modules": [m.to_dict() for m in self.modules]}

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """|dL/dh_t| / |dL/dh_T| (solid) and the transport τ_t (dashed) against t, log scale, one
        colour per module, with the vanishing and exploding FAIL levels."""
        from dlskills._plot import integer_ticks, legend, new_figure, save_figure, threshold_line

        if not self.modules:
            raise ValueError("ThroughTimeResult: no recurrent module was measured")
        fig, ax = new_figure(size=(6.5, 4.2))
        for module in self.modules:
            t = torch.arange(1, module.steps + 1).numpy()
            entering = float(module.grad_norm[-1]) or 1.0
            (line,) = ax.plot(
                t,
                (module.grad_norm / entering).clamp(1e-300, 1e300).numpy(),
                label=f"{module.name}: |dL/dh_t| (x{module.decay:.3g} per step back)",
            )
            ax.plot(
                t,
                module.transport.clamp(1e-300, 1e300).numpy(),
                linestyle="--",
                color=line.get_color(),
                label=f"{module.name}: transport from step T",
            )
        for level, kind, colour in (
            (THROUGH_TIME_VANISHING_FAIL, "vanishing", "tab:red"),
            (THROUGH_TIME_EXPLODING_FAIL, "exploding", "tab:purple"),
        ):
            threshold_line(
                ax, level, f"{kind} FAIL: {level:g} x the last step's", color=colour, linestyle=":"
            )
        ax.set(
            yscale="log",
            xlabel="time step t",
            ylabel="|dL/dh_t| / |dL/dh_T| (log scale)",
            title="Gradient flow through time (catalog 1211.5063)",
        )
        integer_ticks(ax, "x")
        legend(ax, fontsize=7)
        return save_figure(fig, path)


def through_time_demo(steps: int = 100, seed: int = 0) -> ThroughTimeResult:
    """Three tanh RNNs (64 units, last-state read-out) on the same ``steps``-long sequences whose
    label is set by the first three steps: torch's default init (vanishing), an orthogonal
    recurrent matrix at gain 1 (the edge) and at gain 3 (exploding). The figure of the docs."""
    from dataclasses import replace

    from dlskills import models

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, steps, 3, generator=generator)
    y = (x[:, :3, 0].sum(1) > 0).long()
    measured = []
    for label, gain in (("default init", None), ("orthogonal, gain 1", 1.0), ("gain 3", 3.0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = models.create(
                "rnn", input_shape=(steps, 3), num_classes=2, cell="rnn", hidden_size=64
            )
            if gain is not None:
                nn.init.orthogonal_(model.rnn.weight_hh_l0, gain=gain)
        (module,) = gradient_through_time(model, [(x, y)], nn.CrossEntropyLoss()).modules
        measured.append(replace(module, name=f"tanh RNN, {label}"))
    return ThroughTimeResult(modules=measured, loss=math.nan)


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _state(output: Any) -> torch.Tensor | None:
    """h of a cell's output: the tensor itself, or the first tensor of a tuple such as (h, c)."""
    for tensor in _tensors(output):
        return tensor
    return None


class _Unrolled(nn.Module):
    """Runs an nn.RNN/LSTM/GRU one step at a time with the same weights and the same outputs,
    so that the top layer's state at each step is one node of the graph (read by both the
    output sequence and the next step). ``states`` holds those nodes after a forward."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        if rnn.bidirectional:
            raise ValueError("a bidirectional RNN has no single direction of time to unroll")
        rnn.dropout = 0.0  # no inter-layer dropout noise while measuring
        self.rnn = rnn
        self.states: list[torch.Tensor] = []

    def forward(self, input: Any, hx: Any = None) -> tuple[torch.Tensor, Any]:
        if not isinstance(input, torch.Tensor) or input.dim() != 3:
            raise ValueError(
                "only batched, padded sequences (3-D tensors) are unrolled, not packed or "
                "unbatched ones"
            )
        time_dim = 1 if self.rnn.batch_first else 0
        lstm = isinstance(self.rnn, nn.LSTM)
        outputs = []
        self.states = []
        for t in range(input.shape[time_dim]):
            _, hx = self.rnn(input.narrow(time_dim, t, 1), hx)
            h = hx[0] if lstm else hx
            top = h[-1]
            self.states.append(top)
            h = torch.cat([h[:-1], top.unsqueeze(0)])
            hx = (h, hx[1]) if lstm else h
            outputs.append(top.unsqueeze(time_dim))
        return torch.cat(outputs, dim=time_dim), hx


def _replace_rnns(model: nn.Module) -> dict[str, _Unrolled]:
    """Swap every nn.RNNBase of ``model`` (a copy) for its unrolled wrapper, by name."""
    replaced: dict[str, _Unrolled] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.RNNBase) and name:
            parent_name, _, attribute = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            wrapper = _Unrolled(module)
            setattr(parent, attribute, wrapper)
            replaced[name] = wrapper
    return replaced


def gradient_through_time(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    num_batches: int = 1,
    modules: Sequence[str] | None = None,
    seed: int = 0,
) -> ThroughTimeResult:
    """g_t = ‖∂L/∂h_t‖ and the transport τ_t of every recurrent module of ``model`` (found in
    the forward pass, or named by ``modules``) on the first ``num_batches`` batches, on a copy.
    A model without recurrent modules gives a result with no modules (and no checks)."""
    check_positive_int(num_batches, "num_batches")
    if isinstance(model, nn.RNNBase):
        raise ValueError("model: wrap the bare nn.RNN in a module with a read-out")
    probe = set_diagnostic_mode(detached_copy(model))
    x, y = concat_batches(take_batches(loader, num_batches, model_device(probe)))
    named = dict(probe.named_modules())
    if modules is not None:
        missing = [name for name in modules if name not in named]
        if missing:
            raise ValueError(f"modules: no module named {missing!r} in the model")
    unrolled = _replace_rnns(probe) if modules is None else {}
    inner = {id(m) for w in unrolled.values() for m in w.modules()}
    watched = [
        (name, module)
        for name, module in probe.named_modules()
        if name
        and id(module) not in inner
        and (modules is None or name in modules)
        and not isinstance(module, _Unrolled)
    ]
    calls: dict[str, list[tuple[torch.Tensor | None, set[int]]]] = {n: [] for n, _ in watched}

    def recorder(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            del module
            calls[name].append((_state(output), {id(t) for t in _tensors(inputs)}))

        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in watched]
    try:
        with torch.enable_grad():
            loss = loss_fn(probe(x), y)
    finally:
        for handle in handles:
            handle.remove()
    found: dict[str, list[torch.Tensor]] = {
        name: wrapper.states for name, wrapper in unrolled.items() if len(wrapper.states) >= 2
    }
    for name, records in calls.items():
        states = [state for state, _ in records]
        if len(states) < 2 or any(s is None or not s.requires_grad for s in states):
            continue
        chained = all(id(states[k - 1]) in records[k][1] for k in range(1, len(records)))
        if modules is not None or chained:
            found[name] = [s for s in states if s is not None]
    results = []
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for name, states in found.items():
        grads = torch.autograd.grad(loss, states, retain_graph=True, allow_unused=True)
        last = states[-1]
        direction = torch.randn(last.shape, generator=generator, dtype=last.dtype).to(last.device)
        moved = torch.autograd.grad(
            last, states, grad_outputs=direction, retain_graph=True, allow_unused=True
        )
        scale = float(direction.double().norm())
        results.append(
            ModuleThroughTime(
                name=name,
                grad_norm=_norm_list(grads, states),
                transport=_norm_list(moved, states) / scale,
            )
        )
    return ThroughTimeResult(modules=results, loss=float(loss.detach()))


def _norm_list(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.tensor(
        [
            float(g.detach().double().norm()) if g is not None else 0.0
            for g, _ in zip(grads, like, strict=True)
        ],
        dtype=torch.float64,
    )
