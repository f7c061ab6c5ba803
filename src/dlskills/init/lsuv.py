"""Layer-sequential unit-variance init (LSUV; Mishkin & Matas, "All you need is a good init",
ICLR 2016; catalog 1803.01719 "init schemes").

1. Every Linear/Conv weight gets an orthonormal init, biases 0.
2. Layer by layer in forward order: run the data batch, read the layer's output variance v
   (via a forward hook) and rescale W ← W / √v, until |v − target| ≤ tol or ``max_iters``.

The paper uses the output of the layer itself (before the activation) and target variance 1.
Later layers are fixed after earlier ones, so each layer sees the already-normalised inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from dlskills.init._registry import register_initializer, weight_layers
from dlskills.init.orthogonal import orthogonal


@register_initializer(
    "lsuv", catalog_id="1803.01719", needs_data=True, variance="output variance ≈ 1 on data"
)
def lsuv(
    model: nn.Module,
    data: torch.Tensor,
    target_variance: float = 1.0,
    tol: float = 0.01,
    max_iters: int = 10,
) -> nn.Module:
    """LSUV-initialise ``model`` on the input batch ``data`` (see module doc); returns it."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a tensor batch, got {type(data).__name__}")
    if not target_variance > 0:
        raise ValueError(f"target_variance must be positive, got {target_variance!r}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if not isinstance(max_iters, int) or max_iters <= 0:
        raise ValueError(f"max_iters must be a positive int, got {max_iters!r}")
    orthogonal(model)
    was_training = model.training
    model.eval()
    try:
        for layer in weight_layers(model):
            captured: list[torch.Tensor] = []
            handle = layer.register_forward_hook(
                lambda _m, _i, out, sink=captured: sink.append(out)
            )
            try:
                with torch.no_grad():
                    for _ in range(max_iters):
                        captured.clear()
                        model(data)
                        if not captured:
                            break  # the layer is not on this input's forward path
                        variance = captured[0].float().var().item()
                        if abs(variance - target_variance) <= tol or variance == 0.0:
                            break
                        layer.weight.mul_((target_variance / variance) ** 0.5)
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return model
