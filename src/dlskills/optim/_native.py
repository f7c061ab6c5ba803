"""Fused CPU kernels for the element-wise zoo optimizers: one pass over memory per step.

On CPU a ``torch._foreach_*`` op is a loop over the tensors, so an update written as ten foreach
ops streams every parameter-sized buffer ten times; torch's own ``fused=True`` Adam avoids that
with a C++ kernel. These are the same kind of kernel for AdaBound/AMSBound, AggMo, PTS-SGD,
STORM and EASGD: ``_native.c`` (plain C, no torch headers) holds each update as one loop that
reads the gradient and the state once and writes the state and the parameter once, split over
``torch.get_num_threads()`` threads. The maths is the single-tensor Python kernel's, op for op, in
the tensors' own precision (tests: fused == for-loop to 1e-6).

Build: on first use the file is compiled with the system C compiler (``$CC``, else ``cc``;
``-O3 -march=native``, ~1 s) into a cache folder (``$DLSKILLS_CACHE_DIR``, else
``$XDG_CACHE_HOME/dlskills``, else ``~/.cache/dlskills``, or the temp folder when that is not
writable (a per-user folder; a library or folder that another user owns or can write is never
used); the name hashes the source, the flags, the compiler's version and the CPU's feature
flags) and loaded with ctypes; later processes load
the cached library. No compiler, a failed build or ``DLSKILLS_NATIVE=0`` → a one-time warning
(none for the variable) and the optimizers use their torch paths; ``fused=True`` then raises.

A call is fused only when every tensor in it is a dense, contiguous CPU tensor of one dtype,
float32 or float64 (``unsupported_reason`` says why not otherwise). Writes through raw pointers
are invisible to autograd, so the written tensors' version counters are bumped by hand, as torch
documents for custom kernels: a parameter saved for a backward that has not run yet still makes
that backward fail loudly.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SOURCE_NAME = "_native.c"
FLAGS = (
    "-O3",
    "-march=native",
    "-fno-math-errno",  # lets sqrt vectorise; the kernels never read errno
    "-ffp-contract=off",  # no fused multiply-adds: round like the torch ops, op for op
    "-fPIC",
    "-shared",
    "-fopenmp",  # resolves to the libgomp.so.1 torch has loaded: one thread pool
)
_C_TYPES = {torch.float32: "f32", torch.float64: "f64"}
_int64_p = ctypes.POINTER(ctypes.c_int64)
_double_p = ctypes.POINTER(ctypes.c_double)
_pointers_p = ctypes.POINTER(ctypes.c_void_p)
_SIGNATURES: dict[str, list[Any]] = {
    # n_tensors, numels, then the tensor lists, per-tensor numbers, scalars, n_threads
    "adabound": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 5
    + [_double_p] * 3
    + [ctypes.c_double] * 4
    + [ctypes.c_int],
    "aggmo": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 3
    + [_double_p, ctypes.c_int64, ctypes.c_double, ctypes.c_double, ctypes.c_int],
    "pts_sgd": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 4
    + [ctypes.c_double] * 4
    + [ctypes.c_int],
    "easgd_enter": [ctypes.c_int64, _int64_p] + [_pointers_p] * 5 + [ctypes.c_double, ctypes.c_int],
    "easgd_leave": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 8
    + [ctypes.c_double] * 4
    + [ctypes.c_int, ctypes.c_int],
    "easgd_worker": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 5
    + [ctypes.c_double] * 3
    + [ctypes.c_int],
    "elastic": [ctypes.c_int64, _int64_p, _pointers_p, _pointers_p, ctypes.c_double, ctypes.c_int],
    "fg_sgd": [
        *(ctypes.c_int64, _int64_p, _int64_p, _pointers_p, _pointers_p),
        *(ctypes.c_double, ctypes.c_int),
    ],
    "storm": [ctypes.c_int64, _int64_p]
    + [_pointers_p] * 6
    + [_double_p]
    + [ctypes.c_double] * 3
    + [ctypes.c_int],
}


class NativeUnavailable(RuntimeError):
    """The fused kernels cannot be built or loaded here (the message says why)."""


def _cache_dir() -> Path:
    explicit = os.environ.get("DLSKILLS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlskills"


def _private_temp_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"dlskills-{uid}"


def _trusted(path: Path) -> bool:
    """A library is loaded (and a folder written) only if it belongs to this user and nobody
    else can write it: the temp folder is shared, and whoever plants a library there would run
    code in this process."""
    if not hasattr(os, "getuid"):
        return True
    try:
        status = path.stat()
    except OSError:
        return False
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str:
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise NativeUnavailable(f"no C compiler ({compiler!r} not found; set $CC)")
    return compiler


def _compiler_version(compiler: str) -> str:
    try:
        done = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeUnavailable(f"{compiler} --version failed: {error}") from error
    return done.stdout


def build(cache_dir: Path | None = None) -> Path:
    """Compile ``_native.c`` into the cache (if not already there) and return the library's
    path. Raises NativeUnavailable with the compiler's message on failure."""
    source = resources.files("dlskills.optim").joinpath(SOURCE_NAME).read_bytes()
    compiler = _compiler()
    key = hashlib.sha256()
    for part in (source, " ".join(FLAGS).encode(), _compiler_version(compiler).encode()):
        key.update(part)
    key.update(f"{platform.machine()} {_cpu_flags()}".encode())
    name = f"dlskills_optim_{key.hexdigest()[:20]}.so"
    folders = [cache_dir] if cache_dir else [_cache_dir(), _private_temp_dir()]
    for folder in folders:
        if (folder / name).exists() and _trusted(folder) and _trusted(folder / name):
            return folder / name
    for folder in folders:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK) and _trusted(folder):
            break
    else:
        raise NativeUnavailable(
            f"no private writable cache folder among {[str(f) for f in folders]}"
        )
    library = folder / name
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        source_file = Path(scratch) / SOURCE_NAME
        source_file.write_bytes(source)
        built = Path(scratch) / library.name
        try:
            done = subprocess.run(
                [compiler, *FLAGS, "-o", str(built), str(source_file), "-lm"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise NativeUnavailable(f"{compiler} failed to run: {error}") from error
        if done.returncode != 0:
            raise NativeUnavailable(f"{compiler} failed:\n{done.stderr.strip()}")
        os.replace(built, library)  # atomic: concurrent builders each land a whole file
    return library


def _load(path: Path) -> ctypes.CDLL:
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise NativeUnavailable(f"cannot load {path}: {error}") from error
    for name, argtypes in _SIGNATURES.items():
        for suffix in _C_TYPES.values():
            function = getattr(library, f"{name}_{suffix}")
            function.argtypes = argtypes
            function.restype = None
    return library


@functools.cache
def _library() -> ctypes.CDLL | NativeUnavailable:
    if os.environ.get("DLSKILLS_NATIVE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return NativeUnavailable("disabled by DLSKILLS_NATIVE=0")
    try:
        return _load(build())
    except NativeUnavailable as error:
        warnings.warn(
            f"dlskills: fused optimizer kernels unavailable, using the torch paths ({error})",
            RuntimeWarning,
            stacklevel=4,
        )
        return error


def availability() -> str | None:
    """None when the fused kernels are usable, else the reason they are not."""
    library = _library()
    return str(library) if isinstance(library, NativeUnavailable) else None


def available() -> bool:
    return availability() is None


def unsupported_reason(tensor_lists: Sequence[Sequence[Any]]) -> str | None:
    """Why these tensors cannot take the fused path (None: they can). Lists of numbers (step
    sizes, bounds) are ignored; every tensor must be a dense contiguous CPU tensor, all of one
    dtype, float32 or float64."""
    reason = availability()
    if reason is not None:
        return reason
    tensors = [t for items in tensor_lists if items and isinstance(items[0], Tensor) for t in items]
    if not tensors:
        return "no tensors"
    dtype = tensors[0].dtype
    if dtype not in _C_TYPES:
        return f"dtype {dtype} (the fused kernels take float32 or float64)"
    # one cheap test per tensor (this runs every step, over every state tensor), the
    # diagnosis only on failure
    if all(t.is_cpu and t.dtype is dtype and t.is_contiguous() for t in tensors):
        return None
    for t in tensors:
        if not t.is_cpu:
            return f"a tensor is on {t.device} (the fused kernels are for the CPU)"
        if t.dtype is not dtype:
            return f"tensors mix dtypes ({dtype} and {t.dtype})"
    return "a tensor is not dense and contiguous"


def _pointers(tensors: Sequence[Tensor]) -> Any:
    return (ctypes.c_void_p * len(tensors))(*(t.data_ptr() for t in tensors))


def _doubles(values: Sequence[float]) -> Any:
    return (ctypes.c_double * len(values))(*values)


def _call(
    name: str, params: Sequence[Tensor], written: Sequence[Sequence[Tensor]], *args: Any
) -> None:
    library = _library()
    if isinstance(library, NativeUnavailable):
        raise library
    function = getattr(library, f"{name}_{_C_TYPES[params[0].dtype]}")
    numels = (ctypes.c_int64 * len(params))(*(p.numel() for p in params))
    function(len(params), numels, *args, torch.get_num_threads())
    torch.autograd.graph.increment_version([t for tensors in written for t in tensors])


def adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    step_sizes: list[float],
    lower_bounds: list[float],
    upper_bounds: list[float],
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
) -> None:
    maxima = _pointers(max_exp_avg_sqs) if amsbound else None
    _call(
        "adabound",
        params,
        (params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs),
        _pointers(params),
        _pointers(grads),
        _pointers(exp_avgs),
        _pointers(exp_avg_sqs),
        maxima,
        _doubles(step_sizes),
        _doubles(lower_bounds),
        _doubles(upper_bounds),
        beta1,
        beta2,
        eps,
        weight_decay,
    )


def aggmo(
    params: list[Tensor],
    grads: list[Tensor],
    *velocities: list[Tensor],
    lr: float,
    betas: Sequence[float],
    weight_decay: float,
) -> None:
    _call(
        "aggmo",
        params,
        (params, *velocities),
        _pointers(params),
        _pointers(grads),
        _pointers([v for velocity in velocities for v in velocity]),
        _doubles(betas),
        len(betas),
        lr,
        weight_decay,
    )


def pts_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    oldest: list[Tensor],
    grad_sums: list[Tensor],
    *,
    lr: float,
    alpha: float,
    window: int,
    weight_decay: float,
) -> None:
    normaliser = sum(alpha**i for i in range(window))
    _call(
        "pts_sgd",
        params,
        (params, oldest, grad_sums),
        _pointers(params),
        _pointers(grads),
        _pointers(oldest),
        _pointers(grad_sums),
        alpha,
        alpha**window,
        lr / normaliser,
        weight_decay,
    )


def storm(
    params: list[Tensor],
    grads: list[Tensor],
    prev_grads: list[Tensor],
    iterates: list[Tensor],
    grad_estimates: list[Tensor],
    sum_grad_squares: list[Tensor],
    max_grad_norms: list[Tensor],
    *,
    k: float,
    w: float,
    c: float,
) -> None:
    torch._foreach_maximum_(max_grad_norms, torch._foreach_norm(grads))
    _call(
        "storm",
        params,
        (params, grad_estimates, sum_grad_squares),
        _pointers(params),
        _pointers(grads),
        _pointers(prev_grads),
        _pointers(iterates),
        _pointers(grad_estimates),
        _pointers(sum_grad_squares),
        _doubles(torch.stack(max_grad_norms).tolist()),
        k,
        w,
        c,
    )


def _optional(tensors: Sequence[Tensor]) -> Any:
    return _pointers(tensors) if tensors else None


def easgd_enter(
    params: list[Tensor],
    workers: list[Tensor],
    velocities: list[Tensor],
    scratch: list[Tensor],
    pending: list[Tensor],
    *,
    momentum: float,
) -> None:
    _call(
        "easgd_enter",
        params,
        (params, workers, scratch, pending),
        _pointers(params),
        _pointers(workers),
        _optional(velocities),
        _pointers(scratch),
        _optional(pending),
        momentum,
    )


def easgd_leave(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    workers: list[Tensor],
    scratch: list[Tensor],
    pending: list[Tensor],
    next_workers: list[Tensor],
    next_velocities: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
    alpha: float,
    communicate: bool,
) -> None:
    _call(
        "easgd_leave",
        params,
        (params, velocities, workers, scratch, pending, next_workers),
        _pointers(params),
        _optional(grads),
        _optional(velocities),
        _pointers(workers),
        _pointers(scratch),
        _optional(pending),
        _optional(next_workers),
        _optional(next_velocities),
        momentum,
        lr,
        weight_decay,
        alpha,
        int(communicate),
    )


def easgd_worker(
    params: list[Tensor],
    grads: list[Tensor],
    xs: list[Tensor],
    velocities: list[Tensor],
    diffs: list[Tensor],
    *,
    momentum: float,
    lr: float,
    weight_decay: float,
) -> None:
    _call(
        "easgd_worker",
        params,
        (params, xs, velocities),
        _pointers(params),
        _pointers(grads),
        _optional(xs),
        _optional(velocities),
        _optional(diffs),
        momentum,
        lr,
        weight_decay,
    )


def elastic(workers: list[Tensor], centres: list[Tensor], *, alpha: float) -> None:
    _call("elastic", workers, (workers, centres), _pointers(workers), _pointers(centres), alpha)


def fg_sgd(params: list[Tensor], grads: list[Tensor], *, lr: float, manifold: str) -> None:
    """FG-SGD's sphere step on every row (``manifold="po"``: each output channel; "tensor":
    the whole tensor) of tensors with ≥ 2 dimensions."""
    rows = [p.shape[0] if manifold == "po" else 1 for p in params]
    _call(
        "fg_sgd",
        params,
        (params,),
        (ctypes.c_int64 * len(params))(*rows),
        _pointers(params),
        _pointers(grads),
        lr,
    )
