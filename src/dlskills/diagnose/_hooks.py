"""Support shared by the diagnostics: choosing probe layers, forward hooks that reduce activations
as they pass (and are always removed), re-initialising copies, sampling batches from a loader.

Hooks cost ~1.15x step time while attached (REFERENCES.md), so callers attach them only for the
steps they sample and keep every reduction on the activations' device.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

# Modules from torch.nn.modules.activation that are not element-wise nonlinearities of hidden units.
_NOT_HIDDEN_ACTIVATIONS = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.MultiheadAttention, nn.GLU)
_PARAMETRIC_LAYERS = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)


def is_activation(module: nn.Module) -> bool:
    """True for element-wise activation modules (torch's, or any class from a module path that
    contains ``activation``, such as dlskills.nn.activations)."""
    if isinstance(module, _NOT_HIDDEN_ACTIVATIONS):
        return False
    return "activation" in type(module).__module__ and not list(module.children())


def probe_modules(
    model: nn.Module, layers: Sequence[str] | None = None
) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs the diagnostics read, as (name, module).

    ``layers`` names them explicitly; by default every activation module (the post-activation
    ``z_j`` of Hanin & Rolnick); models that apply activations functionally fall back to the
    outputs of their Linear/Conv layers."""
    named = dict(model.named_modules())
    if layers is not None:
        missing = [name for name in layers if name not in named]
        if missing:
            raise ValueError(f"layers: no module named {missing!r} in the model")
        return [(name, named[name]) for name in layers]
    probes = [(name, module) for name, module in named.items() if is_activation(module)]
    if not probes:
        probes = [(n, m) for n, m in named.items() if isinstance(m, _PARAMETRIC_LAYERS)]
    if not probes:
        raise ValueError("model: found no activation, Linear or Conv module to probe; pass layers=")
    return probes


def weight_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Trainable weight matrices and filters (dim >= 2): the per-layer unit of gradient flow."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    if not named:
        raise ValueError("model: has no trainable weight with two or more dimensions")
    return named


def width(output: torch.Tensor) -> int:
    """Units of a layer output (N, C, ...): features of a Linear, channels of a conv."""
    return int(output.shape[1]) if output.dim() > 1 else 1


class ActivationRecorder:
    """Context manager: forward hooks on ``modules`` that store ``reduce(name, output)`` per call
    (``reduce(name, output, module, input)`` with ``with_input=True``; ``input`` is the first
    positional tensor argument, or None).

    ``records`` holds (label, reduced) in call order, so a module used twice appears twice
    (labelled ``name#2``). Outputs are detached; the hooks are removed on exit, also on error.
    """

    def __init__(
        self,
        modules: Sequence[tuple[str, nn.Module]],
        reduce: Callable[..., Any],
        *,
        with_input: bool = False,
    ) -> None:
        self.modules = list(modules)
        self.reduce = reduce
        self.with_input = with_input
        self.records: list[tuple[str, Any]] = []
        self._handles: list[Any] = []
        self._calls: dict[str, int] = {}

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, tuple):
                output = output[0]
            if not isinstance(output, torch.Tensor):
                return
            count = self._calls.get(name, 0) + 1
            self._calls[name] = count
            label = name if count == 1 else f"{name}#{count}"
            if self.with_input:
                first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
                first = first.detach() if first is not None else None
                reduced = self.reduce(name, output.detach(), module, first)
            else:
                reduced = self.reduce(name, output.detach())
            self.records.append((label, reduced))

        return hook

    def clear(self) -> None:
        self.records.clear()
        self._calls.clear()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> ActivationRecorder:
        """Register the hooks (re-attaching cleanly if they are still on) and clear records."""
        self.remove()
        self.clear()
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules]
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> ActivationRecorder:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def model_device(model: nn.Module) -> torch.device:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def take_batches(
    loader: Iterable[Any], num_batches: int, device: torch.device | str | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``num_batches`` (x, y) batches of ``loader``, moved to ``device``."""
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    batches = []
    for batch in itertools.islice(loader, num_batches):
        if not isinstance(batch, list | tuple) or len(batch) < 2:
            raise TypeError("loader must yield (inputs, targets) batches")
        x, y = batch[0], batch[1]
        batches.append((x.to(device), y.to(device)) if device is not None else (x, y))
    if not batches:
        raise ValueError("loader: yielded no batch")
    return batches


def concat_batches(
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy, so a diagnostic never changes the user's weights, grads or buffers."""
    clone = copy.deepcopy(model)
    clone.zero_grad(set_to_none=True)
    return clone


def set_diagnostic_mode(model: nn.Module) -> nn.Module:
    """Training-mode normalisation (what a training step sees) but no dropout noise, which would
    add within-init variance to statistics measured across inits."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    return model


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def _reset_tree(module: nn.Module) -> None:
    """A module's own ``reset_parameters()`` re-draws its whole subtree (a model-level reset such
    as Fixup's knows the scheme); modules without one, or whose reset needs arguments, are
    re-drawn through their children."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset) and _takes_no_arguments(reset):
        reset()
        return
    for child in module.children():
        _reset_tree(child)


def reinitialize(
    model: nn.Module, seed: int, init_fn: Callable[[nn.Module], Any] | None = None
) -> nn.Module:
    """Draw fresh weights in place from ``seed``: ``init_fn(model)`` or the modules' own
    ``reset_parameters`` (see ``_reset_tree``). The global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if init_fn is not None:
            init_fn(model)
        else:
            _reset_tree(model)
    return model


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
