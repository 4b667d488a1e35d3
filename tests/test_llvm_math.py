"""backends/llvm/mathlib.py against NumPy: ulp error over all finite floats, special values exactly.

Every function is compiled into a loop kernel `void k(T* x, [T* y,] T* out, i64 n)` at O3 for the
host CPU (one module for all of them), run on random bit patterns (every finite float is equally
likely by representation), signed magnitudes over the whole exponent range, a typical range,
neighbourhoods of overflow/underflow thresholds, and NaN, +-inf, +-0.0, subnormals.
"""

import ctypes
import math
import zlib
from functools import cache

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir
from mlc.backends.llvm import mathlib

DTYPES = ("float32", "float64")
INT = {"float32": np.int32, "float64": np.int64}
UINT = {"float32": np.uint32, "float64": np.uint64}


# --- harness ----------------------------------------------------------------------------------


def _kernel(module, name, dtype):
    """void k_<name>_<dtype>(T* noalias x, [T* noalias y,] T* noalias out, i64 n)."""
    ft = ir.FloatType() if dtype == "float32" else ir.DoubleType()
    i64 = ir.IntType(64)
    nargs = 2 if name in mathlib.BINARY else 1
    fnty = ir.FunctionType(ir.VoidType(), [ft.as_pointer()] * (nargs + 1) + [i64])
    fn = ir.Function(module, fnty, name=f"k_{name}_{dtype}")
    for a in fn.args[:-1]:
        a.add_attribute("noalias")
    math_fn = mathlib.emit(module, name, dtype)
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    n = fn.args[-1]
    b.cbranch(b.icmp_signed(">", n, ir.Constant(i64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    vals = [b.load(b.gep(p, [i], inbounds=True)) for p in fn.args[:nargs]]
    b.store(b.call(math_fn, vals), b.gep(fn.args[nargs], [i], inbounds=True))
    i1 = b.add(i, ir.Constant(i64, 1))
    i.add_incoming(i1, loop)
    b.cbranch(b.icmp_signed("<", i1, n), loop, done)
    b.position_at_end(done)
    b.ret_void()


class _Jit:
    """A module compiled at O3 (loop + SLP vectorization) for the host CPU with MCJIT.

    The engine owns the target machine: both live as long as this object.
    """

    def __init__(self, module):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        mathlib.load_runtime()
        target = llvm.Target.from_default_triple()
        self.tm = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
        )
        module.triple = self.tm.triple
        module.data_layout = str(self.tm.target_data)
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pb = llvm.create_pass_builder(self.tm, pto)
        pb.getModulePassManager().run(mod, pb)
        self.optimized = mod
        self.engine = llvm.create_mcjit_compiler(mod, self.tm)
        self.engine.finalize_object()

    def function_ir(self, name):
        return str(self.optimized.get_function(name))

    def run(self, name, dtype, *args):
        args = [np.ascontiguousarray(a, dtype=dtype) for a in args]
        out = np.empty_like(args[0])
        addr = self.engine.get_function_address(f"k_{name}_{dtype}")
        cfn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (len(args) + 1), ctypes.c_int64)(addr)
        cfn(*[a.ctypes.data for a in args], out.ctypes.data, out.size)
        return out


@cache
def jit():
    module = ir.Module(name="mathlib_test")
    for name in mathlib.NAMES:
        for dtype in DTYPES:
            _kernel(module, name, dtype)
    return _Jit(module)


# --- references -------------------------------------------------------------------------------


def _erf(x):
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(math.erf, otypes=[np.float64])(x)
    return erf(x)


def _logistic(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


REFERENCE = {
    "logistic": _logistic,
    "erf": _erf,
    "pow": np.power,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "atan2": np.arctan2,
    "fabs": np.abs,
}


def reference(name, dtype, *args):
    """NumPy in float64, rounded to dtype (for float64: NumPy's own float64 result)."""
    fn = REFERENCE.get(name) or getattr(np, name)
    with np.errstate(all="ignore"):
        return fn(*[np.asarray(a, np.float64) for a in args]).astype(dtype)


# --- inputs -----------------------------------------------------------------------------------

RANGE = {  # a typical argument range per function (uniform samples)
    "exp": 100.0,
    "expm1": 100.0,
    "exp2": 160.0,
    "logistic": 120.0,
    "tanh": 25.0,
    "erf": 6.0,
    "sin": 1e4,
    "cos": 1e4,
    "tan": 1e4,
    "sinh": 100.0,
    "cosh": 100.0,
    "asin": 1.0,
    "acos": 1.0,
    "atanh": 1.0,
}
THRESHOLDS = {  # arguments where results overflow, underflow or turn subnormal (both dtypes)
    "exp": (
        88.72283935546875,
        -87.33654,
        -103.97208,
        709.782712893384,
        -708.3964185322641,
        -745.1332191019411,
    ),
    "expm1": (88.72283935546875, 709.782712893384, -17.0, -38.0),
    "exp2": (128.0, -126.0, -149.0, -150.0, 1024.0, -1022.0, -1074.0, -1075.0),
    "logistic": (-88.72283935546875, -103.97208, -709.782712893384, -745.1332191019411),
    "tanh": (9.0, 10.0, 19.0, 20.0),
    "erf": (1.0, 3.9, 4.0, 5.9, 6.0),
    "sinh": (89.41598629223294, 710.4758600739439),
    "cosh": (89.41598629223294, 710.4758600739439),
    "log": (1.0,),
    "log1p": (-1.0, 0.0),
    "log2": (1.0,),
    "log10": (1.0,),
    "sin": (math.pi / 2, math.pi, 2.0**23, 1e30),
    "cos": (math.pi / 2, math.pi, 2.0**23, 1e30),
}
LOG_LIKE = {"log", "log1p", "log2", "log10", "sqrt", "acosh"}


def specials(dtype):
    fi = np.finfo(dtype)
    s = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0]
    s += [fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny, -fi.tiny, fi.max, -fi.max]
    s += [fi.tiny * (1 - fi.eps), 1e-30, -1e-30, 1e30, -1e30, 0.3, -0.3, 1e-8, -1e-8]
    return np.array(s, dtype=dtype)


def neighbours(points, dtype, k=48):
    """Each point and its k floats above and below, with both signs."""
    pts = np.array(points, dtype=dtype)
    pts = pts[np.isfinite(pts)]
    steps = np.arange(-k, k + 1, dtype=INT[dtype])
    out = (pts.view(INT[dtype])[:, None] + steps[None, :]).ravel().view(dtype)
    return np.concatenate([out, -out])


def unary_inputs(name, dtype, n=1 << 15):
    rng = np.random.default_rng(zlib.crc32(f"{name}{dtype}".encode()))
    fi = np.finfo(dtype)
    bits = rng.integers(0, np.iinfo(UINT[dtype]).max, n, dtype=UINT[dtype], endpoint=True)
    lo, hi = math.log10(fi.smallest_subnormal), math.log10(fi.max)
    mags = 10.0 ** rng.uniform(lo, hi, n)
    signed = mags * rng.choice([-1.0, 1.0], n)
    r = RANGE.get(name, 10.0)
    parts = [signed, rng.uniform(-r, r, n), specials(dtype)]
    parts.append(neighbours(THRESHOLDS.get(name, ()), dtype))
    if name in LOG_LIKE:
        parts += [mags, 1.0 + rng.uniform(-1e-3, 1e-3, n), rng.uniform(0, 3, n)]
    if name in ("sin", "cos", "tan"):  # floats nearest to multiples of pi/2: worst cancellation
        k = np.arange(1, 1 << 14)
        parts.append(k * (np.pi / 2) * rng.choice([1, 1000, 1e6], k.size))
    with np.errstate(all="ignore"):
        rest = [np.asarray(p, np.float64).astype(dtype) for p in parts]
    return np.concatenate([bits.view(dtype), *rest])


def unary_args(name, dtype):
    return (unary_inputs(name, dtype),)


def binary_args(name, dtype, n=1 << 14):
    rng = np.random.default_rng(zlib.crc32(f"{name}{dtype}".encode()))
    bits = lambda: rng.integers(0, np.iinfo(UINT[dtype]).max, n, UINT[dtype], True).view(dtype)  # noqa: E731
    s = specials(dtype)
    gx, gy = np.meshgrid(s, s)
    xs = [bits(), gx.ravel(), rng.uniform(0, 10, n), rng.uniform(-10, 10, n)]
    ys = [bits(), gy.ravel(), rng.uniform(-40, 40, n), np.round(rng.uniform(-40, 40, n))]
    if name == "pow":  # near 1 with big exponents, huge/tiny bases with small exponents
        xs += [1 + rng.uniform(-1e-3, 1e-3, n), 10.0 ** rng.uniform(-40, 38, n)]
        ys += [rng.uniform(-1e4, 1e4, n), rng.uniform(-3, 3, n)]
        xs.append(
            -np.arange(1, 200, dtype=np.float64).repeat(9)
        )  # negative base, integer exponents
        ys.append(np.tile(np.arange(-4, 5, dtype=np.float64), 199))
    else:
        xs.append(10.0 ** rng.uniform(-300, 300, n) * rng.choice([-1, 1], n))
        ys.append(10.0 ** rng.uniform(-300, 300, n) * rng.choice([-1, 1], n))
    with np.errstate(all="ignore"):
        x = np.concatenate(
            [np.asarray(v, np.float64).astype(dtype) if v.dtype != dtype else v for v in xs]
        )
        y = np.concatenate(
            [np.asarray(v, np.float64).astype(dtype) if v.dtype != dtype else v for v in ys]
        )
    return x, y


def ulp_distance(a, b, dtype):
    """Number of representable floats between a and b (+0.0 and -0.0 count as the same)."""
    ia = a.view(INT[dtype]).astype(np.int64)
    ib = b.view(INT[dtype]).astype(np.int64)
    mask = np.int64(np.iinfo(INT[dtype]).max)
    oa = np.where(ia < 0, -(ia & mask), ia)
    ob = np.where(ib < 0, -(ib & mask), ib)
    same = (oa >= 0) == (ob >= 0)
    far = np.abs(oa).astype(np.uint64) + np.abs(ob).astype(np.uint64)  # opposite signs
    return np.where(same, np.abs(oa - ob).astype(np.uint64), far)


# --- tests ------------------------------------------------------------------------------------

CASES = [(n, d) for n in mathlib.NAMES for d in DTYPES]


def bound(name, dtype):
    if mathlib.method(name, dtype) == "intrinsic":
        return 0
    return mathlib.ULP_BOUND[(name, dtype)]


@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_against_numpy(name, dtype):
    args = binary_args(name, dtype) if name in mathlib.BINARY else unary_args(name, dtype)
    got = jit().run(name, dtype, *args)
    want = reference(name, dtype, *args)
    where = lambda m: [a[m][:5] for a in args]  # noqa: E731
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_g, nan_w), f"NaN mismatch at {where(nan_g != nan_w)}"
    inf = np.isinf(got) | np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), f"inf mismatch at {where(inf & (got != want))}"
    zero = (got == 0) & (want == 0)
    if name not in ("fmin", "fmax", "minimum", "maximum"):  # NumPy leaves +-0 order open there
        bad = zero & (np.signbit(got) != np.signbit(want))
        assert not bad.any(), f"sign of zero differs at {where(bad)}"
    fin = ~(nan_w | inf)
    ulps = ulp_distance(got[fin], want[fin], dtype)
    worst = int(ulps.max()) if ulps.size else 0
    assert worst <= bound(name, dtype), (
        f"{name} {dtype}: {worst} ulp at {[a[fin][np.argmax(ulps)] for a in args]}"
    )


def test_every_function_is_branch_free_and_has_a_bound():
    module = ir.Module()
    for name, dtype in CASES:
        fn = mathlib.emit(module, name, dtype)
        assert len(fn.blocks) == 1, name
        assert "alwaysinline" in fn.attributes
        assert mathlib.emit(module, name, dtype) is fn  # memoized
        assert mathlib.method(name, dtype) == "intrinsic" or (name, dtype) in mathlib.ULP_BOUND


def test_float32_exp_loop_is_vectorized():
    text = jit().function_ir("k_exp_float32")
    assert any(f"<{w} x float>" in text for w in (4, 8, 16)), text
    assert "@expf" not in text and "@llvm.exp" not in text, text


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "logistic", "sin", "cos", "erf", "pow"])
def test_hot_float32_loops_have_no_scalar_calls(name):
    text = jit().function_ir(f"k_{name}_float32")
    assert "x float>" in text, f"{name} float32 loop not vectorized"
    assert not any(c in text for c in ("@expf", "@logf", "@sinf", "@cosf", "@powf", "@exp(")), text


@pytest.mark.parametrize("name", ["exp", "tanh", "logistic", "expm1", "log"])
def test_float32_polynomials_stay_in_float32(name):
    """No float64 widening: it would halve the vector width of the loop."""
    text = jit().function_ir(f"k_{name}_float32")
    assert "double" not in text, f"{name} float32 widens to float64"
    assert "x float>" in text, f"{name} float32 loop not vectorized"


@pytest.mark.skipif(not mathlib.libmvec_path(), reason="no libmvec on this host")
def test_libmvec_variant_is_called_from_vector_loop():
    text = jit().function_ir("k_sin_float64")
    assert "@_ZGVdN4v_sin(<4 x double>" in text or "@_ZGVbN2v_sin(<2 x double>" in text, text


def test_unknown_function_and_dtype():
    with pytest.raises(NotImplementedError, match="nosuch"):
        mathlib.emit(ir.Module(), "nosuch", "float32")
    with pytest.raises(TypeError, match="int32"):
        mathlib.emit(ir.Module(), "exp", "int32")


if __name__ == "__main__":  # throughput against NumPy (not a test)
    import time

    x32 = np.random.default_rng(0).uniform(-10, 10, 1 << 24).astype(np.float32)
    for name in ("exp", "log", "tanh", "logistic", "sin", "cos", "erf", "expm1"):
        for dtype in DTYPES:
            x = np.abs(x32) if name == "log" else x32
            x = x.astype(dtype)
            jit().run(name, dtype, x[:16])
            t0 = time.perf_counter()
            jit().run(name, dtype, x)
            t1 = time.perf_counter()
            np_fn = REFERENCE.get(name) or getattr(np, name)
            np_fn(x)
            t2 = time.perf_counter()
            print(
                f"{name:9s} {dtype}: mlc {1e3 * (t1 - t0):7.1f} ms  numpy {1e3 * (t2 - t1):7.1f} ms"
            )
