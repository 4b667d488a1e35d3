"""backends/llvm/compiler.py: compile, run through ctypes, and the in-memory and disk caches.

Every test points MLC_CACHE_DIR at its own tmp_path. Fresh-process behaviour (disk hits, two
processes racing to write one entry) runs real subprocesses that print their counters as JSON.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import llvmlite
import numpy as np
import pytest
from llvmlite import ir
from mlc.backends.llvm import compiler, mathlib

REPO = Path(__file__).resolve().parents[1]
P = ctypes.c_void_p
I64 = ctypes.c_int64

LOOP = r"""
define void @{name}(float* noalias %a, float* noalias %b, float* noalias %out, i64 %n) {{
entry:
  %c = icmp sgt i64 %n, 0
  br i1 %c, label %loop, label %done
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %pa = getelementptr inbounds float, float* %a, i64 %i
  %pb = getelementptr inbounds float, float* %b, i64 %i
  %po = getelementptr inbounds float, float* %out, i64 %i
  %x = load float, float* %pa
  %y = load float, float* %pb
  %s = {op} float %x, %y
  store float %s, float* %po
  %i1 = add i64 %i, 1
  %c2 = icmp slt i64 %i1, %n
  br i1 %c2, label %loop, label %done
done:
  ret void
}}
"""
HELPER = "define internal i64 @helper(i64 %x) {\n  ret i64 %x\n}\ndeclare float @expf(float)\n"
ADD_IR = LOOP.format(name="add", op="fadd") + HELPER
MUL_IR = LOOP.format(name="mul", op="fmul")


def big_ir(copies=40):
    """`add` plus many more loops: a larger object, so concurrent writes overlap in time."""
    return ADD_IR + "".join(LOOP.format(name=f"f{i}", op="fsub") for i in range(copies))


def run_binary(cm, name, a, b):
    out = np.empty_like(a)
    cm.cfunc(name, None, P, P, P, I64)(a.ctypes.data, b.ctypes.data, out.ctypes.data, a.size)
    return out


def check_add(cm, n=1003):
    a = np.linspace(-3, 5, n, dtype=np.float32)
    b = np.cos(a)
    np.testing.assert_array_equal(run_binary(cm, "add", a, b), a + b)


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """Own cache folder, empty in-memory cache, counters at zero."""
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLC_DISABLE_CACHE", raising=False)
    compiler.clear_memory_cache()
    compiler.reset_stats()
    yield tmp_path / "cache"
    compiler.clear_memory_cache()


def stats():
    return dict(compiler.STATS)


def entries(folder):
    return sorted(p.name for p in (Path(folder) / "llvm").iterdir())


# --- compile and run --------------------------------------------------------------------------


def test_compile_and_call_vectorized_loop():
    cm = compiler.compile_module(ADD_IR, "add")
    check_add(cm)
    check_add(cm, n=0)
    assert stats()["kernels_compiled"] == 1
    assert not cm.from_disk
    opt = cm.optimized_ir
    assert "fadd <" in opt and "x float>" in opt  # the loop vectorizer ran
    assert cm.symbols == ("add",)  # neither the internal helper nor the declaration


def test_optimize_returns_vector_ir():
    mod = compiler.parse(ADD_IR)
    text = compiler.optimize(mod)
    assert "<8 x float>" in text or "<4 x float>" in text or "<16 x float>" in text
    assert text == str(mod)


def test_unknown_symbol_names_the_exports():
    cm = compiler.compile_module(ADD_IR, "add")
    with pytest.raises(KeyError, match="exports: add"):
        cm.address("helper")


def test_libmvec_kernel_through_mathlib():
    """A kernel calling libmvec (sin) links after `mathlib.load_runtime()`."""
    module = ir.Module(name="sin_kernel")
    d = ir.DoubleType()
    fn = ir.Function(module, ir.FunctionType(d, [d]), name="sin1")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(b.call(mathlib.emit(module, "sin", "float64"), [fn.args[0]]))
    cm = compiler.compile_module(str(module), "sin1")
    sin1 = cm.cfunc("sin1", ctypes.c_double, ctypes.c_double)
    for x in (0.0, 0.5, -2.0, 100.0):
        assert abs(sin1(x) - np.sin(x)) <= 4 * np.spacing(1.0)


# --- errors -----------------------------------------------------------------------------------

BAD_SYNTAX = "define i64 @f(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %nope\n}\n"
BAD_VERIFY = """define i64 @f(i64 %x) {
entry:
  br label %b
b:
  %y = add i64 %z, 1
  %z = add i64 %x, 1
  ret i64 %y
}
"""
UNRESOLVED = """declare void @mlc_no_such_function_anywhere()
define void @g() {
  call void @mlc_no_such_function_anywhere()
  ret void
}
"""


@pytest.mark.parametrize(
    "text, match",
    [(BAD_SYNTAX, r"ret i64 %nope"), (BAD_VERIFY, r"dominate"), (UNRESOLVED, r"could not link")],
)
def test_bad_ir_raises_python_exception(fresh, text, match):
    with pytest.raises(compiler.CompileError, match=match):
        compiler.compile_module(text, "bad")
    assert stats()["memory_cache_hits"] == 0
    if text is not UNRESOLVED:  # LLVM rejected it before compiling: nothing compiled or cached
        assert stats()["kernels_compiled"] == 0
        assert not fresh.exists()


def test_syntax_error_shows_the_line():
    with pytest.raises(compiler.CompileError) as info:
        compiler.compile_module(BAD_SYNTAX, "bad")
    assert ">    3    ret i64 %nope" in str(info.value)


# --- in-memory and disk caches ----------------------------------------------------------------


def test_memory_cache_returns_same_module():
    cm = compiler.compile_module(ADD_IR, "add")
    assert compiler.compile_module(ADD_IR, "add") is cm
    assert stats() == dict(
        kernels_compiled=1, memory_cache_hits=1, disk_cache_hits=0, disk_cache_rejected=0
    )
    other = compiler.compile_module(ADD_IR, "add-other-key")
    assert other is not cm and stats()["kernels_compiled"] == 2
    check_add(other)


def test_disk_cache_in_same_process(fresh):
    compiler.compile_module(ADD_IR, "add")
    assert len(entries(fresh)) == 1
    compiler.clear_memory_cache()
    cm = compiler.compile_module(ADD_IR, "add")
    assert cm.from_disk
    assert stats()["kernels_compiled"] == 1 and stats()["disk_cache_hits"] == 1
    check_add(cm)
    assert "fadd <" in cm.optimized_ir  # recomputed on demand for an object from disk


CHILD = r"""
import ctypes, json, os, sys, time
import numpy as np
from mlc.backends.llvm import compiler

ir_path, key, go = sys.argv[1], sys.argv[2], sys.argv[3]
ir_text = open(ir_path).read()
if go:  # line up with the other process: both compile and write at the same moment
    open(go + ".ready." + str(os.getpid()), "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
cm = compiler.compile_module(ir_text, key)
a = np.linspace(-3, 5, 1003, dtype=np.float32)
b = np.cos(a)
out = np.empty_like(a)
P = ctypes.c_void_p
cm.cfunc("add", None, P, P, P, ctypes.c_int64)(a.ctypes.data, b.ctypes.data, out.ctypes.data, a.size)
print(json.dumps({"stats": dict(compiler.STATS), "ok": bool(np.array_equal(out, a + b))}))
"""


def child(tmp_path, ir_text, key, go="", popen=False):
    ir_file = tmp_path / f"{key}.ll"
    ir_file.write_text(ir_text)
    args = [sys.executable, "-c", CHILD, str(ir_file), key, go]
    kw = dict(cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if popen:
        return subprocess.Popen(args, **kw)
    proc = subprocess.run(args, timeout=60, **kw)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_disk_cache_hit_in_fresh_process(tmp_path, fresh):
    compiler.compile_module(ADD_IR, "add")
    first = child(tmp_path, ADD_IR, "add")  # a fresh process: nothing in memory
    assert first["ok"]
    assert first["stats"]["kernels_compiled"] == 0
    assert first["stats"]["disk_cache_hits"] == 1
    assert first["stats"]["disk_cache_rejected"] == 0


def truncate(path, other):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_object_byte(path, other):
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))


def flip_header_byte(path, other):
    data = bytearray(path.read_bytes())
    i = data.index(b'"symbols"') + 2
    data[i] ^= 0x20
    path.write_bytes(bytes(data))


def empty(path, other):
    path.write_bytes(b"")


def foreign(path, other):
    shutil.copyfile(other, path)  # another key's intact entry under this key's name


@pytest.mark.parametrize(
    "damage",
    [truncate, flip_object_byte, flip_header_byte, empty, foreign],
    ids=lambda f: f.__name__,
)
def test_bad_entry_is_rejected_and_rewritten(fresh, damage):
    compiler.compile_module(ADD_IR, "add")
    compiler.compile_module(MUL_IR, "mul")
    path = Path(compiler.entry_path("add", ADD_IR))
    damage(path, Path(compiler.entry_path("mul", MUL_IR)))
    compiler.clear_memory_cache()

    cm = compiler.compile_module(ADD_IR, "add")
    assert not cm.from_disk
    assert stats()["disk_cache_rejected"] == 1 and stats()["kernels_compiled"] == 3
    check_add(cm)

    compiler.clear_memory_cache()  # the entry was overwritten with a good one
    assert compiler.compile_module(ADD_IR, "add").from_disk
    assert stats()["disk_cache_rejected"] == 1 and stats()["disk_cache_hits"] == 1


def test_entry_layout_is_checked_field_by_field():
    h = compiler.entry_hash("k", ADD_IR)
    data = compiler._encode_entry(h, "k", b"\x7fELF-object", ("add",))
    assert compiler._decode_entry(data, h) == (b"\x7fELF-object", ("add",))
    assert compiler._decode_entry(data, compiler.entry_hash("other", ADD_IR)) is None
    assert compiler._decode_entry(b"garbage" + data, h) is None


def test_two_processes_racing_on_one_entry(tmp_path, monkeypatch):
    text = big_ir()
    for rnd in range(3):
        cache = tmp_path / f"race{rnd}"
        monkeypatch.setenv("MLC_CACHE_DIR", str(cache))
        go = str(tmp_path / f"go{rnd}")
        procs = [child(tmp_path, text, "race", go=go, popen=True) for _ in range(2)]
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob(f"go{rnd}.ready.*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        Path(go).touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
            results.append(json.loads(out))
        for r in results:
            assert r["ok"]
            assert r["stats"]["disk_cache_rejected"] == 0
            assert r["stats"]["kernels_compiled"] + r["stats"]["disk_cache_hits"] == 1
        path = Path(compiler.entry_path("race", text))
        assert entries(cache) == [path.name]  # no temp file left behind
        assert compiler._decode_entry(path.read_bytes(), compiler.entry_hash("race", text))


# --- cache folder, disabled cache, failures ---------------------------------------------------


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    assert compiler.cache_dir() == str(tmp_path / "cache")
    monkeypatch.setenv("MLC_CACHE_DIR", "")
    assert compiler.cache_dir() is None
    monkeypatch.delenv("MLC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiler.cache_dir() == str(tmp_path / "xdg" / "mlc")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compiler.cache_dir() == str(tmp_path / "home" / ".cache" / "mlc")
    monkeypatch.setenv("MLC_DISABLE_CACHE", "1")
    assert compiler.cache_dir() is None


@pytest.mark.parametrize("env", [("MLC_CACHE_DIR", ""), ("MLC_DISABLE_CACHE", "1")])
def test_disabled_cache_writes_nothing(fresh, monkeypatch, env):
    monkeypatch.setenv(*env)
    check_add(compiler.compile_module(ADD_IR, "add"))
    compiler.clear_memory_cache()
    check_add(compiler.compile_module(ADD_IR, "add"))
    assert stats()["kernels_compiled"] == 2 and stats()["disk_cache_hits"] == 0
    assert not fresh.exists()


def test_unwritable_cache_dir_degrades(tmp_path, monkeypatch):
    # A regular file where a folder should be: fails for root too (chmod would not).
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "file" / "cache"))
    check_add(compiler.compile_module(ADD_IR, "add"))
    compiler.clear_memory_cache()
    check_add(compiler.compile_module(ADD_IR, "add"))
    assert stats()["kernels_compiled"] == 2 and stats()["disk_cache_rejected"] == 0


def test_entry_path_taken_by_a_folder_degrades(fresh):
    Path(compiler.entry_path("add", ADD_IR)).mkdir(parents=True)
    check_add(compiler.compile_module(ADD_IR, "add"))
    assert stats()["kernels_compiled"] == 1


def test_disk_full_degrades_and_leaves_no_temp_file(fresh, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compiler.os, "replace", full)
    cm = compiler.compile_module(ADD_IR, "add")
    monkeypatch.undo()
    check_add(cm)
    assert entries(fresh) == []


def test_entry_hash_covers_key_ir_and_versions(monkeypatch):
    import mlc

    h = compiler.entry_hash("add", ADD_IR)
    assert len(h) == 64
    assert compiler.entry_hash("add2", ADD_IR) != h
    assert compiler.entry_hash("add", ADD_IR + "\n") != h
    monkeypatch.setattr(mlc, "__version__", mlc.__version__ + ".dev1")
    assert compiler.entry_hash("add", ADD_IR) != h
    monkeypatch.undo()
    monkeypatch.setattr(llvmlite, "__version__", "0.0.0")
    assert compiler.entry_hash("add", ADD_IR) != h


# --- BLAS -------------------------------------------------------------------------------------


def gemm_ir(symbol, t):
    """void mm(T* a, T* b, T* c, i64 m, i64 n, i64 k): c = a @ b, row-major, via cblas_?gemm."""
    p = f"{t}*"
    return f"""
declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, {p}, i64, {p}, i64, {t}, {p}, i64)
define void @mm({p} %a, {p} %b, {p} %c, i64 %m, i64 %n, i64 %k) {{
  call void @{symbol}(i32 101, i32 111, i32 111, i64 %m, i64 %n, i64 %k, {t} 1.0, {p} %a,
                      i64 %k, {p} %b, i64 %n, {t} 0.0, {p} %c, i64 %n)
  ret void
}}
"""


@pytest.mark.parametrize(
    "dtype, t, name", [("float32", "float", "sgemm"), ("float64", "double", "dgemm")]
)
def test_blas_gemm_matches_numpy(dtype, t, name):
    blas = compiler.load_blas()
    if blas is None:
        pytest.skip("NumPy has no bundled OpenBLAS here")
    assert blas.int_bits == 64 and os.path.exists(blas.path)
    cm = compiler.compile_module(gemm_ir(blas.symbol(name), t), f"gemm-{dtype}")
    mm = cm.cfunc("mm", None, P, P, P, I64, I64, I64)
    rng = np.random.default_rng(0)
    for m, n, k in [(5, 3, 7), (64, 33, 17), (1, 1, 1)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c = np.empty((m, n), dtype)
        mm(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k)
        np.testing.assert_allclose(c, a @ b, rtol=1e-5 if dtype == "float32" else 1e-12)
