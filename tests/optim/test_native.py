"""The fused CPU kernels (dlskills.optim._native): built where a compiler exists, equal to the
for-loop reference, refused cleanly where they cannot run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import torch

from dlskills.optim import OPTIMIZERS, _native, create

FUSED = [n for n in OPTIMIZERS.names() if OPTIMIZERS.entry(n).meta.get("supports_fused")]
# sizes that straddle the per-thread split (32768 elements per thread at least) and the
# 16-element alignment of the split points, plus tiny tensors
SHAPES = [(3,), (70001,), (33, 1000), (2, 3, 4), (40000,)]
KWARGS = {
    "adabound": {"lr": 1e-2, "final_lr": 0.05, "weight_decay": 1e-3},
    "amsbound": {"lr": 1e-2, "final_lr": 0.05, "weight_decay": 1e-3},
    "aggmo": {"lr": 1e-2, "weight_decay": 1e-3},
    "pts_sgd": {"lr": 1e-2, "window": 3, "alpha": 0.9, "weight_decay": 1e-3},
    "storm": {"lr": 0.1},
    "easgd": {"lr": 1e-2, "workers": 3, "momentum": 0.5, "weight_decay": 1e-3},
    "fg_sgd": {"lr": 0.05, "weight_decay": 1e-3},
}
KERNEL = {"amsbound": "adabound", "easgd": "easgd_leave"}

needs_native = pytest.mark.skipif(not _native.available(), reason="no fused kernels here")


def _run(name, *, dtype=torch.float32, steps=8, shapes=SHAPES, params=None, **path):
    generator = torch.Generator().manual_seed(0)
    if params is None:
        params = [torch.randn(s, generator=generator, dtype=dtype) for s in shapes]
    params = [p.requires_grad_() for p in params]
    optimizer = create(name, params, **KWARGS.get(name, {}), **path)
    closure_needed = OPTIMIZERS.entry(name).meta.get("needs_closure")
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        if closure_needed:  # the gradients are set by hand: the closure leaves them alone
            optimizer.step(lambda: torch.tensor(0.0))
        else:
            optimizer.step()
    return [p.detach() for p in params]


def test_every_fused_optimizer_is_covered():
    assert set(FUSED) == set(KWARGS)


def test_kernels_build_where_a_c_compiler_exists():
    if shutil.which(os.environ.get("CC") or "cc") is None:
        pytest.skip("no C compiler on this machine")
    assert _native.availability() is None


@needs_native
@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_matches_for_loop(name, dtype):
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    fused = _run(name, dtype=dtype, fused=True)
    loop = _run(name, dtype=dtype, foreach=False, fused=False)
    for a, b in zip(fused, loop):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


@needs_native
@pytest.mark.parametrize("name", FUSED)
def test_default_path_is_the_fused_kernel(name, monkeypatch):
    calls = []
    kernel = getattr(_native, KERNEL.get(name, name))
    module = sys.modules[OPTIMIZERS.entry(name).obj.__module__]
    monkeypatch.setattr(
        module._native,
        kernel.__name__,
        lambda *a, **k: calls.append(1) or kernel(*a, **k),
    )
    _run(name, steps=2)
    assert calls, "foreach=None, fused=None did not take the fused kernel"


@needs_native
def test_result_does_not_depend_on_the_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _run("adabound")
        torch.set_num_threads(2)
        double = _run("adabound")
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(single, double):
        assert torch.equal(a, b)


@needs_native
def test_unsupported_tensors_fall_back_or_refuse():
    def params():
        generator = torch.Generator().manual_seed(1)
        return [torch.randn(50, 40, generator=generator).t(), torch.randn(7, generator=generator)]

    assert not params()[0].is_contiguous()
    fallback = _run("adabound", params=params())
    loop = _run("adabound", params=params(), foreach=False, fused=False)
    for a, b in zip(fallback, loop):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    with pytest.raises(RuntimeError, match="contiguous"):
        _run("adabound", params=params(), fused=True)
    with pytest.raises(RuntimeError, match="dtype"):
        _run("aggmo", params=[torch.randn(8, dtype=torch.bfloat16)], fused=True)
    mixed = [torch.randn(8), torch.randn(8, dtype=torch.float64)]
    with pytest.raises(RuntimeError, match="mix dtypes"):
        _run("pts_sgd", params=mixed, fused=True)


@pytest.mark.parametrize("name", FUSED)
def test_fused_and_foreach_cannot_both_be_forced(name):
    with pytest.raises(ValueError, match="fused"):
        create(
            name,
            [torch.zeros(2, requires_grad=True)],
            **KWARGS.get(name, {}),
            fused=True,
            foreach=True,
        )


@needs_native
def test_writes_are_visible_to_autograd():
    param = torch.randn(100, requires_grad=True)
    optimizer = create("adabound", [param], fused=True)
    pending = (param * param).sum()  # saves param for its backward
    param.grad = torch.ones(100)
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        pending.backward()


@needs_native
def test_storm_inverse_cube_root_edge_cases_match_pow():
    # g_max³ subnormal / zero in float32 with w = 0: (w + G)^(−1/3) on subnormal and zero input
    for g_max in (1e-13, 1e-20):
        results = []
        for path in ({"fused": True}, {"foreach": False, "fused": False}):
            param = torch.zeros(40, requires_grad=True)
            optimizer = create("storm", [param], lr=1.0, w=0.0, g_max=g_max, **path)
            param.grad = torch.full((40,), 1e-30)
            optimizer.step(lambda: None)
            results.append(param.detach().clone())
        torch.testing.assert_close(results[0], results[1], atol=0, rtol=1e-6)
    assert torch.isinf(results[0]).all()  # g_max³ = 0: the rate is infinite, as pow says


def test_failed_build_reports_the_compiler_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", sys.executable)  # runs, but is no C compiler
    with pytest.raises(_native.NativeUnavailable, match="failed"):
        _native.build(tmp_path)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with pytest.raises(_native.NativeUnavailable, match="no C compiler"):
        _native.build(tmp_path)


def test_build_is_cached(tmp_path):
    if shutil.which(os.environ.get("CC") or "cc") is None:
        pytest.skip("no C compiler on this machine")
    first = _native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert _native.build(tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch left behind


def test_disabled_by_environment_variable():
    script = (
        "import torch, warnings\n"
        "warnings.simplefilter('error')\n"
        "from dlskills.optim import _native, create\n"
        "print(_native.availability())\n"
        "p = torch.zeros(3, requires_grad=True)\n"
        "opt = create('adabound', [p], fused=True)\n"
        "p.grad = torch.ones(3)\n"
        "try:\n"
        "    opt.step()\n"
        "except RuntimeError as error:\n"
        "    print('refused:', error)\n"
        "opt = create('adabound', [p])\n"
        "opt.step()\n"
        "print('default ran', bool((p != 0).all()))\n"
    )
    env = {**os.environ, "DLSKILLS_NATIVE": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "disabled by DLSKILLS_NATIVE=0"
    assert lines[1].startswith("refused: fused=True cannot run here: disabled")
    assert lines[2] == "default ran True"


def test_unwritable_cache_folder_falls_back_to_the_temp_folder(tmp_path, monkeypatch):
    if shutil.which(os.environ.get("CC") or "cc") is None:
        pytest.skip("no C compiler on this machine")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("DLSKILLS_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    library = _native.build()
    assert library.parent == tmp_path / "tmp" / f"dlskills-{os.getuid()}"
    assert library.exists()


def test_libraries_that_others_can_write_are_never_loaded(tmp_path):
    if shutil.which(os.environ.get("CC") or "cc") is None:
        pytest.skip("no C compiler on this machine")
    library = _native.build(tmp_path)
    library.write_bytes(b"planted")
    library.chmod(0o666)  # world-writable: somebody else could have put this here
    rebuilt = _native.build(tmp_path)  # not loaded: compiled afresh over it
    assert rebuilt.read_bytes()[:4] == b"\x7fELF"
    assert not rebuilt.stat().st_mode & 0o022
    tmp_path.chmod(0o777)
    with pytest.raises(_native.NativeUnavailable, match="private"):
        _native.build(tmp_path)
