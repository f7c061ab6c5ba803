"""Optimizers (READING_LIST.md §4.1): torch.optim classics by name plus the zoo, one file each.

``create(name, params, **kw)`` builds any registered optimizer; the classes are also attributes of
this package (``dlskills.optim.AdaBound``), resolved through the registry. Schedules live in
``dlskills.optim.schedules``, iterate averaging in ``dlskills.optim.averaging``
(``AveragedParameters``), and ``compile_step(optimizer)`` compiles an optimizer's update.
"""

import importlib
import importlib.util
from typing import Any

from dlskills.optim._registry import OPTIMIZERS, register_optimizer
from dlskills.optim.averaging import AveragedParameters
from dlskills.optim.compile import compile_stats, compile_step


def create(name: str, params: Any, **kwargs: Any) -> Any:
    """Build the optimizer registered as ``name`` over ``params`` (tensors or param groups)."""
    return OPTIMIZERS.create(name, params, **kwargs)


def closure_kind(optimizer: Any) -> str | None:
    """The closure ``optimizer.step`` needs, from its registry metadata: None (plain ``step()``),
    "backward" (torch's convention), "graph" (returns (loss, outputs), no backward) or
    "residuals" (returns outputs − targets). Unregistered optimizers take no closure."""
    for entry in OPTIMIZERS.entries():
        if entry.obj is type(optimizer):
            return (
                entry.meta.get("closure", "backward") if entry.meta.get("needs_closure") else None
            )
    return None


def __getattr__(attribute: str) -> Any:
    # public submodules (``optim.schedules``) resolve on first access, as after an import of them
    if not attribute.startswith("_") and importlib.util.find_spec(f"{__name__}.{attribute}"):
        return importlib.import_module(f"{__name__}.{attribute}")
    try:
        return OPTIMIZERS.find_object(attribute)
    except AttributeError:
        raise AttributeError(f"module 'dlskills.optim' has no attribute {attribute!r}") from None


__all__ = [
    "OPTIMIZERS",
    "AveragedParameters",
    "closure_kind",
    "compile_stats",
    "compile_step",
    "create",
    "register_optimizer",
]
