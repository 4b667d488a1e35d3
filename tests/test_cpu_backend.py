"""The CPU backend as a user meets it: shape-generic kernels, the disk cache across processes,
recycled buffers that are never shared, threads, and the reference backend still selectable."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mlc

F32 = np.float32


def test_new_batch_size_retraces_but_compiles_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))

    def f(x, w):
        return np.tanh(x @ w).sum(-1) - np.exp(x).max(-1) * 0.5

    g = mlc.jit(f)
    w = np.linspace(-1, 1, 20, dtype=F32).reshape(5, 4)
    before = None
    for batch in (3, 7, 64):
        x = np.linspace(-2, 2, batch * 5, dtype=F32).reshape(batch, 5)
        np.testing.assert_allclose(g(x, w), f(x, w), rtol=1e-5, atol=1e-6)
        stats = mlc.stats()
        if before is not None:
            assert stats["traces"] == before["traces"] + 1
            assert stats["kernels_compiled"] == before["kernels_compiled"]
        before = stats


CHILD = """
import json, numpy as np, mlc
f = mlc.jit(lambda x: np.log1p(np.exp(x)) * np.cos(x).sum())
x = np.linspace(-3, 3, 1000).astype(np.float32)
y = f(x)
print(json.dumps({"stats": mlc.stats(), "y": float(y.sum())}))
"""


def test_a_second_process_compiles_nothing(tmp_path):
    env = dict(os.environ, MLC_CACHE_DIR=str(tmp_path), MLC_BACKEND="cpu")
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["stats"]["kernels_compiled"] >= 1
    assert second["stats"]["kernels_compiled"] == 0
    assert second["stats"]["disk_cache_hits"] == first["stats"]["kernels_compiled"]
    assert first["y"] == second["y"]


def test_recycled_buffers_are_never_shared():
    f = mlc.jit(lambda x: x * 2.0)
    x = np.ones(1 << 19, F32)  # 2 MB: the recycled size class
    a = f(x)
    b = f(x + 1)
    assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, 2.0)
    np.testing.assert_array_equal(b, 4.0)
    view = a[::2]  # a view keeps its block alive
    del a
    c = f(x + 2)
    assert not np.shares_memory(view, c)
    np.testing.assert_array_equal(view, 2.0)
    np.testing.assert_array_equal(c, 6.0)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_threaded_chunks_give_the_same_totals(monkeypatch, threads):
    import mlc.backends.llvm.runtime as rt

    monkeypatch.setenv("MLC_NUM_THREADS", threads)
    monkeypatch.setattr(rt, "MIN_WORK_PER_THREAD", 1 << 10)
    x = np.linspace(-1, 1, 1 << 16).reshape(256, 256)
    f = mlc.jit(lambda x: (np.exp(x).sum(1), np.abs(x).max(), np.argmax(x.sum(0))))
    rows, top, arg = f(x)
    np.testing.assert_allclose(rows, np.exp(x).sum(1), rtol=1e-12)
    assert top == np.abs(x).max() and arg == np.argmax(x.sum(0))


def test_reference_backend_is_still_there():
    f = lambda x: np.sin(x) ** 3 + np.float32(1)  # noqa: E731
    x = np.linspace(-3, 3, 50, dtype=F32)
    ref = mlc.jit(f, backend="numpy")
    cpu = mlc.jit(f, backend="cpu")
    np.testing.assert_array_equal(ref(x), f(x))  # the interpreter is NumPy, bit for bit
    np.testing.assert_allclose(cpu(x), f(x), rtol=4 * np.finfo(F32).eps, atol=1e-7)
    assert "pow" in ref.lower(x).as_text() and "pow" not in cpu.lower(x).as_text()
    assert "define" in cpu.lower(x).llvm_ir()
    with pytest.raises(ValueError, match="backend='cpu'"):
        ref.lower(x).llvm_ir()


def _driven(executable):
    import mlc.backends.llvm.runtime as rt

    return [s for s in executable.steps if isinstance(s, rt._DrivenRun)]


def test_small_kernels_run_through_one_driver_call():
    import mlc.backends.llvm.runtime as rt

    assert rt._abi_ok()  # CPython and NumPy layouts the driver reads

    def f(x, w):
        h = np.tanh(x * 2.0 + 1.0)  # a kernel
        s = h.sum(-1) / h.max()  # row and total reductions
        return (h @ w).max(0) + s.mean(), np.argmax(h, axis=1)

    x = np.linspace(-2, 2, 60, dtype=F32).reshape(6, 10)
    w = np.linspace(-1, 1, 30, dtype=F32).reshape(10, 3)
    g = mlc.jit(f)
    ex = g.lower(x, w).executable
    assert _driven(ex), ex.steps
    assert len(ex.kernel_steps()) == sum(len(s.steps) for s in _driven(ex)) >= 2
    for _ in range(3):  # the table, scratch and slot arrays are reused across calls
        got = g(x, w)
        want = f(x, w)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got[1], want[1])


def test_driver_off_gives_the_same_results(monkeypatch):
    import mlc.backends.llvm.runtime as rt

    def f(x):
        return np.exp(x - x.max(-1, keepdims=True)).sum(-1), (x > 0).sum()

    x = np.linspace(-3, 3, 48).reshape(4, 12)
    on = rt.Executable(mlc.jit(f).lower(x).optimized)
    monkeypatch.setattr(rt, "_DRIVER", False)
    off = rt.Executable(mlc.jit(f).lower(x).optimized)
    assert _driven(on) and not _driven(off)
    for a, b in zip(on(x), off(x)):
        np.testing.assert_array_equal(a, b)


def test_driven_calls_from_several_threads():
    from concurrent.futures import ThreadPoolExecutor

    g = mlc.jit(lambda x: (np.sin(x) * x).sum() + np.cos(x).max())
    xs = [np.linspace(-i, i, 100, dtype=np.float64) for i in range(1, 33)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(g, xs))
    for x, y in zip(xs, got):
        np.testing.assert_allclose(y, (np.sin(x) * x).sum() + np.cos(x).max(), rtol=1e-12)


def test_dead_intermediates_are_reused_within_a_call(monkeypatch):
    import mmap

    import mlc.backends.llvm.runtime as rt

    made, real = [], mmap.mmap

    def counting_mmap(*a, **k):
        made.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(rt, "_POOL_BUFFERS", rt._BufferPool())
    monkeypatch.setattr(rt.mmap, "mmap", counting_mmap)

    def f(x):  # kernel, argsort, kernel (gather), argsort, kernel: three 4 MB kernel outputs
        return np.sort(np.sort(np.exp(x)) * 2) + 1

    x = np.linspace(-1, 1, 1 << 20, dtype=F32)
    g = mlc.jit(f)
    ex = g.lower(x).executable
    dead = [d for _, d in ex.schedule]
    assert sum(len(d) for d in dead) >= 4  # every intermediate is dropped after its last read
    got = g(x)
    np.testing.assert_allclose(got, f(x), rtol=1e-6)
    # each gather kernel still reads the previous kernel's output, so two blocks take turns
    # (without the plan: one per kernel output, three)
    assert len(made) == 2, made
