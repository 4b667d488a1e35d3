"""``backend="cuda"`` end to end, without a GPU: every graph below is fused, its kernels are
generated as CUDA C, compiled with g++ against the emulation header and run on the CPU, once in
forward and once in reverse thread order, and compared with NumPy and with the LLVM backend.

The same source is what NVRTC compiles for a GPU (``tests/test_cuda_codegen.py`` checks that
with ptxas); ``pytest -m gpu`` runs the conformance, autodiff and batching suites on a real
device (``test_suites_on_a_gpu`` below), and is skipped where there is none.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from models import gelu, layernorm, softmax

import mlc

emulator = pytest.importorskip("mlc.backends.cuda.emulator")
if not emulator.available():  # pragma: no cover - g++ is part of the test machine
    pytest.skip("the CUDA emulator needs g++", allow_module_level=True)

RNG = np.random.default_rng(7)
F32, F64 = np.float32, np.float64


def normal(*shape, dtype=F32):
    return RNG.standard_normal(shape).astype(dtype)


def with_specials(x):
    x = x.copy()
    flat = x.reshape(-1)
    if flat.size >= 4 and x.dtype.kind == "f":
        flat[0], flat[1], flat[2], flat[3] = np.nan, np.inf, -np.inf, -0.0
    return x


def mlp_loss(w1, w2, x, y):
    h = np.maximum(x @ w1, 0.0)
    z = h @ w2
    z = z - z.max(-1, keepdims=True)
    return -(y * (z - np.log(np.exp(z).sum(-1, keepdims=True)))).sum() / x.shape[0]


CASES = {
    # pointwise, every dtype
    "gelu f32": (gelu, (normal(257, 33),)),
    "gelu f64 specials": (gelu, (with_specials(normal(64, dtype=F64)),)),
    "int ops": (
        lambda a, b: (a // b, a % b, a * b - np.maximum(a, b), np.abs(a) ** 2),
        (
            RNG.integers(-50, 50, (6, 9)).astype(np.int32),
            RNG.integers(-4, 5, (6, 9)).astype(np.int32),
        ),
    ),
    "int64 and bool": (
        lambda a, m: (np.where(m, a, -a), (a > 3) & m, a.astype(F64) / 3, m.sum()),
        (RNG.integers(-9, 9, (5, 7)), RNG.random((5, 7)) > 0.5),
    ),
    "broadcast and casts": (
        lambda x, v: (x * v[:, None] + 1).astype(np.int32) + x.T.sum(0).astype(np.int32)[:, None],
        (normal(4, 6) * 5, normal(4)),
    ),
    "math f32": (
        lambda x: (np.log1p(np.abs(x)), np.sin(x) * np.cos(x), np.expm1(x / 4), np.arctan2(x, 2.0)),
        (with_specials(normal(9, 11)),),
    ),
    "max min NaN": (
        lambda x, y: (np.maximum(x, y), np.minimum(x, y), x.max(-1), x.min(0)),
        (with_specials(normal(5, 8)), normal(5, 8)),
    ),
    # row reductions: a warp per row (short rows), a block per row (long rows), phases
    "softmax short rows": (softmax, (normal(37, 19),)),
    "softmax long rows": (softmax, (normal(3, 3000),)),
    "layernorm": (layernorm, (normal(6, 1500), normal(1500), normal(1500))),
    "logsumexp f64": (
        lambda x: np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1)) + x.max(-1),
        (normal(17, 70, dtype=F64),),
    ),
    "argmax argmin ties NaN": (
        lambda x: (np.argmax(x, -1), np.argmin(x, 0), np.argmax(x)),
        (np.round(with_specials(normal(6, 40))),),
    ),
    # column reductions and totals (two stages: many blocks, then one)
    "column sums": (lambda x: (x.sum(0), x.max(0), (x * x).mean(0)), (normal(300, 7),)),
    "middle axis": (lambda x: x.sum(1) - x.prod(1), (normal(4, 5, 3),)),
    "big total": (lambda x: (x.sum(), np.abs(x).max(), (x > 0).sum()), (normal(200_001),)),
    "per-row totals": (lambda x: np.log(np.exp(x).sum(-1)).mean(), (normal(33, 65),)),
    "empty and size one": (lambda x, y: (x.sum(0), y * 2, y.sum()), (normal(0, 3), normal(1, 1))),
    # movement, indexing, library calls
    "movement": (
        lambda x: (
            np.concatenate([x, x[::-1] * 2], 1),
            np.pad(x, 1, constant_values=-1.0),
            x.T[1:, ::2],
        ),
        (normal(5, 6),),
    ),
    "gather and scatter": (
        lambda x, i: (x[i], x[:, i].sum(1), np.cumsum(x, 0), np.sort(x, -1)),
        (normal(7, 7), np.array([3, 0, -1, 6])),
    ),
    "matmul chain": (
        lambda a, b, c: np.tanh(a @ b) @ c + 1,
        (normal(9, 13), normal(13, 4), normal(4, 3)),
    ),
}


def _assert_close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN")
    tol = 2e-5 if got.dtype == F32 else 1e-12
    scale = np.abs(np.where(np.isfinite(want), want, 0)).max(initial=0) + 1
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def _leaves(x):
    return list(x) if isinstance(x, tuple) else [x]


@pytest.fixture(params=["emu", "emu-reverse"])
def emu(request, monkeypatch):
    monkeypatch.setenv("MLC_CUDA_DEVICE", request.param)
    return request.param


@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_and_the_cpu_backend(emu, name):
    fn, args = CASES[name]
    with np.errstate(all="ignore"):
        want = fn(*args)
    got = mlc.jit(fn, backend="cuda")(*args)
    cpu = mlc.jit(fn, backend="cpu")(*args)
    for i, (g, w, c) in enumerate(zip(_leaves(got), _leaves(want), _leaves(cpu))):
        assert type(g) is not np.generic or np.ndim(w) == 0
        _assert_close(g, w, f"{name}[{i}] vs numpy ({emu})")
        _assert_close(g, c, f"{name}[{i}] vs cpu ({emu})")


def test_transforms_run_on_cuda(emu, monkeypatch):
    monkeypatch.setenv("MLC_BACKEND", "cuda")
    w1, w2 = normal(12, 16) * 0.3, normal(16, 5) * 0.3
    x, y = normal(8, 12), np.eye(5, dtype=F32)[RNG.integers(0, 5, 8)]
    loss, grads = mlc.jit(mlc.value_and_grad(mlp_loss, argnums=(0, 1)))(w1, w2, x, y)
    cpu = mlc.jit(mlc.value_and_grad(mlp_loss, argnums=(0, 1)), backend="cpu")(w1, w2, x, y)
    _assert_close(loss, cpu[0], "loss")
    for g, c in zip(grads, cpu[1]):
        _assert_close(g, c, "grad")
    # finite differences on one weight
    eps = 1e-2
    d = np.zeros_like(w2)
    d[3, 2] = eps
    fd = (mlp_loss(w1, w2 + d, x, y) - mlp_loss(w1, w2 - d, x, y)) / (2 * eps)
    assert abs(grads[1][3, 2] - fd) < 1e-2 * (1 + abs(fd))
    per_example = mlc.vmap(lambda v: softmax(v).max())(x)  # eager vmap: also on cuda
    _assert_close(per_example, softmax(x).max(-1), "vmap")


def test_shape_generic_source(monkeypatch):
    monkeypatch.setenv("MLC_CUDA_DEVICE", "emu")
    f = mlc.jit(softmax, backend="cuda")
    small, large = f.lower(normal(4, 8)), f.lower(normal(64, 2000))
    assert small.cuda_source() == large.cuda_source()
    assert "2000" not in large.cuda_source()


def test_lowered_cuda_source_needs_the_cuda_backend():
    with pytest.raises(ValueError, match="backend='cuda'"):
        mlc.jit(softmax, backend="cpu").lower(normal(2, 3)).cuda_source()


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


SUITES = [
    "tests/test_numpy_elementwise.py",
    "tests/test_numpy_reductions.py",
    "tests/test_numpy_shape.py",
    "tests/test_numpy_indexing.py",
    "tests/test_numpy_linalg.py",
    "tests/test_numpy_creation.py",
    "tests/test_autodiff_numpy.py",
    "tests/test_autodiff.py",
    "tests/test_batching_numpy.py",
    "tests/test_vmap.py",
]


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_present(), reason="no CUDA GPU (CuPy finds no device)")
def test_suites_on_a_gpu():
    """The conformance, autodiff and batching suites with ``MLC_BACKEND=cuda`` on the GPU."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, MLC_BACKEND="cuda")
    env.pop("MLC_CUDA_DEVICE", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *SUITES],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
