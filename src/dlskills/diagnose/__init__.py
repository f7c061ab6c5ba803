"""dlskills.diagnose: the doctor and its diagnostics, for any nn.Module + DataLoader + loss.

Names are exported lazily (nothing heavy is imported with the package): ``dlskills.diagnose.X``
imports the submodule that defines X on first access.

Several submodules share their name with the function they define (``doctor``, ``init_check``,
``pmv``, ``gradcheck``, ...). For those, the package attribute is always the function, even after
``import dlskills.diagnose.doctor``; reach the module itself with
``from dlskills.diagnose.doctor import ...`` or ``sys.modules``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "doctor": "doctor",
    "Diagnosis": "doctor",
    "Check": "verdict",
    "grade": "verdict",
    "init_check": "init_check",
    "InitCheckResult": "init_check",
    "gradient_flow": "gradient_flow",
    "gradient_variance": "gradient_flow",
    "GradientFlowResult": "gradient_flow",
    "GradientVarianceResult": "gradient_flow",
    "GradientFlowCallback": "gradient_flow",
    "gradient_through_time": "through_time",
    "ThroughTimeResult": "through_time",
    "through_time_demo": "through_time",
    "jacobian_spectrum": "jacobian",
    "log_norm_statistics": "jacobian",
    "JacobianSpectrum": "jacobian",
    "LogNormStatistics": "jacobian",
    "JacobianCallback": "jacobian",
    "gradient_confusion": "confusion",
    "per_example_gradients": "confusion",
    "GradientConfusion": "confusion",
    "activation_stats": "activations",
    "ActivationStats": "activations",
    "ActivationStatsCallback": "activations",
    "entropy_and_mutual_information": "activations",
    "analyse_fit": "fitting",
    "short_fit": "fitting",
    "constant_predictor_loss": "fitting",
    "FitAnalysis": "fitting",
    # diagnostics of the validation helper (pmv.py, holdout.py, landscape.py, ...)
    "pmv": "pmv",
    "PMVResult": "pmv",
    "HoldoutGuard": "holdout",
    "interpolate_1d": "landscape",
    "slice_2d": "landscape",
    "count_basins": "landscape",
    "train_classic": "classic_tasks",
    "solve_rate": "classic_tasks",
    "teacher_student": "filter_recovery",
    "plot_filter_recovery": "filter_recovery",
    "FilterRecovery": "filter_recovery",
    "TwoLayerCNN": "filter_recovery",
    "recover_latents": "latent_recovery",
    "latent_recovery_gap": "latent_recovery",
    "memorization_check": "latent_recovery",
    "plot_latent_recovery": "latent_recovery",
    "LatentRecoveryResult": "latent_recovery",
    "attribute": "attribution",
    "GradMask": "gradmask",
    "gradcheck": "gradcheck",
    "ntk_features": "kernels",
    "ntk_gram": "kernels",
    "RandomReLUFeatures": "kernels",
    "kernel_ridge": "kernels",
    "KernelFit": "kernels",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps a function named like its submodule as the package attribute: the import system
    sets ``package.<submodule>`` after importing it, which would otherwise hide the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and _EXPORTS.get(name) == name
            and value.__name__ == f"{__name__}.{name}"
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
