"""backends/cuda: CUDA C generation, NVRTC compilation and ptxas budgets, launch configurations,
and (through the CPU emulator) the numbers the generated code computes.

No GPU is needed. The sweep generates CUDA C for every fused kernel of the primitive cases
(``prim_cases``: every primitive in every dtype it takes) and of the ``mlc.numpy`` cases
(``numpy_cases`` in four dtypes) plus a few named graphs, compiles them with NVRTC for sm_90 in
batches (one translation unit per batch), and checks what ptxas reports for every entry point:
no spill stores or loads, at most ``REGISTER_BUDGET`` registers (256-thread blocks could afford
255; 128 leaves room for two blocks per SM) and static shared memory within 48 KB. Without
libnvrtc (``pip install nvidia-cuda-nvrtc``) those tests skip; without g++ the emulated ones do.
"""

import math
import zlib

import numpy as np
import numpy_cases
import prim_cases
import pytest
from mlc.backends.cuda import cexpr, codegen, compiler, emulator
from mlc.backends.cuda.runtime import EmuDevice, Executable, address
from mlc.backends.kernel import describe
from mlc.backends.kernel import evaluate as evaluate_program
from mlc.ir import primitives as P
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate as evaluate_graph
from mlc.ir.passes import optimize
from mlc.ir.passes.fusion import fuse

import mlc
import mlc.numpy as mnp

REGISTER_BUDGET = 128
SHARED_BUDGET = 48 * 1024
BATCHES = 24  # the sweep's translation units (parallel under pytest -n)
FLOATS = ("float32", "float64")
ALL_DTYPES = ("bool", "int32", "int64", "float32", "float64")

needs_nvrtc = pytest.mark.skipif(
    not compiler.available(), reason="libnvrtc not installed (pip install nvidia-cuda-nvrtc)"
)
needs_emulator = pytest.mark.skipif(not emulator.available(), reason="no g++ for the emulator")


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLC_CACHE_DIR", str(tmp_path_factory.mktemp("cuda-cache")))
    yield
    mp.undo()


def programs_of(fn, *args):
    return [describe(k) for k in fuse(optimize(mlc.trace(fn, *args))).fused_kernels]


def softmax(x):
    z = x - x.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def layernorm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def logsumexp(x):
    m = x.max(-1)
    return np.log(np.exp(x - m[:, None]).sum(-1)) + m


def gelu(x):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


NAMED = {
    "gelu": (gelu, ((64, 300), "float32")),
    "softmax": (softmax, ((64, 300), "float32")),
    "layernorm": (layernorm, ((64, 300), "float64")),
    "logsumexp": (logsumexp, ((64, 300), "float32")),
    "argmax": (lambda x: np.argmax(x, axis=1), ((64, 300), "float32")),
    "colsum": (lambda x: x.sum(0), ((300, 64), "float32")),
    "total": (lambda x: (x * x).sum(), ((300, 64), "float64")),
    "loss_and_grad": (lambda x: (x.mean(), 2 * x), ((30, 7), "float32")),
    "int_bool": (lambda x: ((x // 3 > 2) & (x % 5 != 0), (x * x).max(1)), ((9, 40), "int32")),
}


def named_programs(name, shape=None):
    fn, (default, dtype) = NAMED[name]
    x = np.ones(shape or default, dtype)
    return programs_of(fn, x)


# -- the corpus ------------------------------------------------------------------------------
_CORPUS = None


def corpus() -> dict:
    """key -> program for every fused kernel of the prim and numpy cases and the named graphs."""
    global _CORPUS
    if _CORPUS is not None:
        return _CORPUS
    progs = {}

    def add(graph):
        for k in fuse(graph).fused_kernels:
            p = describe(k)
            progs.setdefault(p.key(), p)

    rng = np.random.RandomState(0)
    for name in sorted(prim_cases.CASES):
        for dtype in prim_cases.accepted_dtypes(name):
            args, attrs = prim_cases.CASES[name](rng, dtype)
            graph = prim_cases.build(name, args, attrs)
            try:
                graph = optimize(graph)
            except Exception:  # e.g. custom_call's attributes do not verify: fuse it as built
                pass
            add(graph)
    for case in numpy_cases.all_cases():
        if not case.values:
            continue
        base = case.gen(rng)
        for dtype in ("float64", "float32", "int32", "bool"):
            if dtype not in case.dtypes:
                continue
            args = tuple(numpy_cases.cast(a, dtype) for a in base)
            try:
                with np.errstate(all="ignore"):
                    case.fn(np, *args)
                add(optimize(mlc.trace(lambda *a, c=case: c.fn(mnp, *a), *args)))
            except Exception:  # NumPy or mlc refuses this dtype: not a kernel to compile
                continue
    for name in NAMED:
        for p in named_programs(name):
            progs.setdefault(p.key(), p)
    _CORPUS = progs
    return progs


def batch(i: int) -> list:
    """The kernels of sweep batch ``i`` (by a stable hash of their keys)."""
    out = []
    for key, p in corpus().items():
        if zlib.crc32(key.encode()) % BATCHES == i:
            out.append(codegen.generate(p, f"k{zlib.crc32(key.encode()):08x}_{len(out)}"))
    return out


def test_corpus_is_broad():
    progs = corpus().values()
    assert len(progs) > 1000
    ops = {e.op for p in progs for e in p.exprs}
    assert {"exp", "tanh", "floor_div", "rem", "pow", "convert", "select", "index"} <= ops
    combiners = {(r.combiner, r.level) for p in progs for r in p.reductions}
    for comb in ("sum", "prod", "max", "min", "argmax", "argmin"):
        assert (comb, "row") in combiners
    assert ("sum", "total") in combiners
    dtypes = {b.dtype for p in progs for b in p.buffers}
    assert set(ALL_DTYPES) <= dtypes
    lanes = [codegen.vector_plan(p) for p in progs]
    assert sum(v is not None for v in lanes) > 500  # the sweep compiles their vector entries
    assert {v.lanes for v in lanes if v} == {2, 4}


@needs_nvrtc
@pytest.mark.parametrize("i", range(BATCHES))
def test_sweep_compiles_within_budget(i):
    kernels = batch(i)
    assert kernels
    source = codegen.module_source(kernels)
    usage = compiler.resource_usage(source)
    entries = {n for k in kernels for n in k.entries}
    assert entries == set(usage), sorted(entries ^ set(usage))[:5]
    bad = {
        n: u
        for n, u in usage.items()
        if u["spill_stores"] or u["spill_loads"] or u["registers"] > REGISTER_BUDGET
        or u["shared"] > SHARED_BUDGET
    }  # fmt: skip
    assert not bad, bad


# -- generated code --------------------------------------------------------------------------
def test_one_kernel_per_row_pattern_with_team_reductions():
    for name in ("softmax", "layernorm", "logsumexp"):
        (p,) = named_programs(name)
        src = codegen.generate(p, name).source
        assert "__shfl_xor_sync" in src and "__syncthreads" in src
        passes = {"softmax": 3, "layernorm": 3, "logsumexp": 2}[name]  # max, sum, then stores
        assert src.count("for (I j = lane; j < nin; j += team)") == passes
    (p,) = named_programs("gelu")
    src = codegen.generate(p, "gelu").source
    assert "tanhf(" in src and "__expf" not in src and "__tanhf" not in src  # no fast math
    assert "__shfl" not in src and "__syncthreads" not in src  # pointwise


def test_argmax_and_totals():
    (p,) = named_programs("argmax")
    k = codegen.generate(p, "am")
    assert "ap0 < 0 ||" in k.code  # first occurrence: the position joins the comparison
    (p,) = named_programs("total")
    k = codegen.generate(p, "tot")
    assert set(k.entries) == {"tot", "tot_i32", "tot_final"}
    assert k.entries["tot"][-1] == ("ptr", "unsigned char")  # the scratch buffer
    assert "nparts" in k.source


def test_entry_parameters():
    (p,) = named_programs("softmax")
    k = codegen.generate(p, "sm")
    params = [("i64", "long long")] * len(p.slots) + [("ptr", "float"), ("ptr", "float")]
    assert k.entries == {"sm": params, "sm_i32": params}
    assert 'extern "C" __global__ void sm(long long s0' in k.source
    assert "const float* __restrict__ b0" in k.source and "float* __restrict__ b1" in k.source


def test_gather_keeps_64_bit_indices():
    x = P.param(index=0, shape=(5, 3), dtype="float32")
    i = P.param(index=1, shape=(4, 1), dtype="int64")
    plan = fuse(Graph([x, i], [P.gather(x, i)]))
    k = codegen.generate(describe(plan.fused_kernels[0]), "g")
    assert set(k.entries) == {"g"} and not k.i32


def test_source_has_no_sizes():
    # (a mean divides by its count, a constant of the graph: those kernels are per size)
    for name in ("gelu", "softmax", "logsumexp", "argmax", "colsum", "total", "int_bool"):
        small = named_programs(name, (3, 5))
        big = named_programs(name, (1000, 777))
        assert [p.key() for p in small] == [p.key() for p in big], name
        for a, b in zip(small, big):
            src = codegen.generate(b, "k").source
            assert src == codegen.generate(a, "k").source
            assert "777" not in src and "1000" not in src


def test_literals_are_exact():
    assert cexpr.literal(0.1, "float32") == float(np.float32(0.1)).hex() + "f"
    assert cexpr.literal(-0.0, "float64") == "-0x0.0p+0"
    assert cexpr.literal(np.inf, "float32") == "__int_as_float(0x7f800000)"
    assert cexpr.literal(np.nan, "float64").startswith("__longlong_as_double(0x7ff8")
    assert cexpr.literal(-(2**31), "int32") == "(-2147483647 - 1)"
    assert cexpr.literal(-(2**63), "int64") == "(-9223372036854775807LL - 1)"
    assert cexpr.literal(True, "bool") == "true"


# -- compiler --------------------------------------------------------------------------------
@needs_nvrtc
def test_compile_error_carries_source_and_log():
    src = 'extern "C" __global__ void broken(float* b0) {\n  b0[0] = undefined_name;\n}\n'
    with pytest.raises(compiler.CudaCompileError) as info:
        compiler.compile(src)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert "undefined_name" in err.log and "error" in err.log
    assert "    2    b0[0] = undefined_name;" in str(err)  # the source, numbered
    assert err.source == src


@needs_nvrtc
def test_disk_cache_and_integrity(tmp_path, monkeypatch):
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    (p,) = named_programs("gelu")
    src = codegen.generate(p, "cache_probe").source
    compiler.clear_memory_cache()
    compiler.reset_stats()
    cubin = compiler.compile(src)
    assert cubin[:4] == b"\x7fELF"
    assert compiler.STATS["kernels_compiled"] == 1
    compiler.compile(src)
    assert compiler.STATS["memory_cache_hits"] == 1
    compiler.clear_memory_cache()
    assert compiler.compile(src) == cubin
    assert compiler.STATS["disk_cache_hits"] == 1
    path = compiler.entry_path(src)
    data = bytearray(open(path, "rb").read())
    data[-10] ^= 0xFF  # corrupt the cubin
    open(path, "wb").write(bytes(data))
    compiler.clear_memory_cache()
    assert compiler.compile(src) == cubin
    assert compiler.STATS["disk_cache_rejected"] == 1
    assert compiler.STATS["kernels_compiled"] == 2
    usage = compiler.resource_usage(src)
    assert set(usage) == {"cache_probe", "cache_probe_vec"}  # (no division: no 32-bit entry)
    assert all(u["registers"] > 0 for u in usage.values())


def test_parse_ptxas():
    log = (
        "ptxas info    : Compiling entry function 'k' for 'sm_90'\n"
        "ptxas info    : Function properties for k\n"
        "ptxas         .     8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n"
        "ptxas info    : Used 40 registers, used 1 barriers, 256 bytes smem\n"
    )
    assert compiler.parse_ptxas(log) == {
        "k": dict(registers=40, spill_stores=4, spill_loads=4, shared=256, stack=8)
    }


# -- launch configurations -------------------------------------------------------------------
SIZES = (0, 1, 7, 33, 1000, 5000, 1 << 20, 1 << 33)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_launch_configurations_are_sane(name):
    dev = codegen.H100
    for p in named_programs(name):
        k = codegen.generate(p, "k")
        for size in SIZES:
            slots = [size if s > 1 else s for s in p.slots]  # unit dims stay unit
            launches = k.launches(slots, dev)
            assert launches
            for x in launches:
                assert x.kernel in k.entries
                threads = math.prod(x.block)
                assert 1 <= threads <= dev.max_threads_per_block
                assert threads % dev.warp_size == 0  # full warps: shuffles use the full mask
                assert x.block[0] & (x.block[0] - 1) == 0  # a team is a power of two
                assert x.block[0] <= dev.warp_size or x.block[1] == 1
                assert all(1 <= g < 2**31 for g in x.grid) and x.grid[1:] == (1, 1)
                assert x.shared_bytes <= dev.max_shared_per_block
            first = launches[0]
            if k.has_final:
                assert launches[-1].kernel.endswith("_final") and launches[-1].grid == (1, 1, 1)
                need = codegen.HEADER + first.grid[0] * codegen.RECORD * k.totals
                assert first.scratch_bytes >= need
            ext = [slots[p.exprs[e].attr] for e in p.extents]
            sizes = [math.prod(ext), *slots]
            sizes += [math.prod(slots[p.exprs[d].attr] for d in b.shape) for b in p.buffers]
            fits = max(sizes) <= codegen.I32_LIMIT
            assert first.kernel.endswith("_i32") == (k.i32 and fits)
            if size <= 1000:
                assert fits


def test_team_choice():
    dev = codegen.H100
    (p,) = named_programs("softmax")
    k = codegen.generate(p, "k")
    rows, inner = (p.slots[p.exprs[e].attr] for e in p.extents)
    by_inner = {}
    for n in (1, 5, 32, 1000, 5000):
        slots = [n if s == inner else 64 if s == rows else s for s in p.slots]
        by_inner[n] = k.launches(slots, dev)[0].block
    assert by_inner[1] == (1, 256, 1) and by_inner[5] == (8, 32, 1)
    assert by_inner[32] == by_inner[1000] == (32, 8, 1)
    assert by_inner[5000] == (256, 1, 1)  # one block per long row
    (p,) = named_programs("colsum", (50, 4000))
    k = codegen.generate(p, "k")
    assert k.launches(None, dev)[0].block == (1, 256, 1)  # one thread per column
    (p,) = named_programs("colsum", (3000, 5))
    k = codegen.generate(p, "k")
    assert k.launches(None, dev)[0].block == (32, 8, 1)  # few columns: a warp per column


# -- numbers, through the emulator -----------------------------------------------------------
def specials(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        vals = [0, 1, -1, 2, -2, 3, -3, 7, -7, 31, 63, 100, info.min, info.max, info.min + 1]
        return np.array(vals, dtype)
    info = np.finfo(dtype)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 2.5, 3.0, -7.0]
    vals += [0.1, -1e-3, 1e5, info.max, info.tiny, 3e9, -3e9, 2.0**31, -(2.0**63), 4.7, -0.3]
    return np.array(vals, dtype)


UNARY = (
    "neg abs sign exp exp2 expm1 log log2 log10 log1p sqrt cbrt sin cos tan asin acos atan sinh "
    "cosh tanh asinh acosh atanh floor ceil trunc round is_finite is_nan is_inf not"
).split()
BINARY = "add sub mul div floor_div rem pow max min atan2 hypot eq ne lt le gt ge and or xor"
BINARY = BINARY.split()
INEXACT = set(UNARY[UNARY.index("exp") : UNARY.index("atanh") + 1]) | {"pow", "atan2", "hypot"}
RENAMED = {"not": "logical_not", "and": "logical_and", "or": "logical_or", "xor": "logical_xor"}


def assert_same(got, want, approx, what):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{what}: NaN positions")
    g, w = got[~nan], want[~nan]
    if approx:
        rtol = 1e-5 if got.dtype == np.float32 else 1e-12
        fin = np.isfinite(w)
        np.testing.assert_array_equal(g[~fin], w[~fin], err_msg=f"{what}: infinities")
        scale = 1 + (np.abs(w[fin]).max() if fin.any() else 0)  # sums cancel: absolute error
        np.testing.assert_allclose(g[fin], w[fin], rtol=rtol, atol=rtol * scale, err_msg=what)
    else:
        bits = np.uint32 if got.dtype == np.float32 else np.uint64
        np.testing.assert_array_equal(g.view(bits), w.view(bits), err_msg=what)


@needs_emulator
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_elementwise_primitive_emulated(dtype):
    """Every elementwise primitive (and every conversion) on special values, one graph per
    dtype, forward and reverse thread order: bit for bit unless transcendental."""
    v = specials(dtype)
    n = len(v)
    x, y = np.repeat(v, n), np.tile(v, n)
    px = P.param(index=0, shape=x.shape, dtype=dtype)
    py = P.param(index=1, shape=x.shape, dtype=dtype)
    outs, names = [], []
    for name in UNARY + BINARY:
        prim = getattr(P, RENAMED.get(name, name))
        args = (px,) if name in UNARY else (px, py)
        try:
            outs.append(prim(*args))
        except TypeError:
            continue
        names.append(name)
    for dst in ALL_DTYPES:
        outs.append(P.convert(px, dtype=dst))
        names.append(f"convert->{dst}")
    yy = np.abs(y) % 70 if dtype.startswith("int") else y  # NumPy raises on x ** -k
    graph = Graph([px, py], outs)
    with np.errstate(all="ignore"):
        want = evaluate_graph(graph, x, yy)
    for order in ("forward", "reverse"):
        got = Executable(graph, EmuDevice(order))(x, yy)
        for name, g, w in zip(names, got, want):
            assert_same(g, w, name in INEXACT and dtype in FLOATS, f"{name} {dtype} {order}")


def reduction_cases():
    rng = np.random.default_rng(3)
    f = rng.integers(-3, 4, (37, 50)).astype(np.float32)  # ties
    f[2, 7] = np.nan
    f[5, :] = np.nan
    long = rng.standard_normal((3, 2500))
    long[1, 2000] = np.nan
    i = rng.integers(-100, 100, (40, 33)).astype(np.int64)
    b = rng.integers(0, 2, (20, 45)).astype(bool)
    tall = rng.standard_normal((3000, 5)).astype(np.float32)
    empty = np.zeros((4, 0), np.float32)
    return [f, long, i, b, tall, empty, f[:1, :1], rng.standard_normal(7000)]


@needs_emulator
@pytest.mark.parametrize("k", range(8))
def test_reductions_emulated(k):
    """Row (warp and block teams), column and total reductions of every combiner, NaN and ties
    included, forward and reverse thread order."""
    x = reduction_cases()[k]

    def fn(x):
        out = []
        axes = (-1, 0, None) if x.ndim == 2 else (None,)
        for axis in axes:
            out += [x.max(axis=axis), x.min(axis=axis)] if x.size else []
            if x.dtype != bool:
                out += [x.sum(axis=axis), x.prod(axis=axis)]
            if x.size:
                out += [np.argmax(x, axis=axis), np.argmin(x, axis=axis)]
        return tuple(out)

    with np.errstate(all="ignore"):
        graph = optimize(mlc.trace(fn, x))
        want = evaluate_graph(graph, x)
    for order in ("forward", "reverse"):
        got = Executable(graph, EmuDevice(order))(x)
        for j, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, g.dtype.kind == "f", f"output {j} {order}")


@needs_emulator
@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_graphs_emulated(name):
    fn, (shape, dtype) = NAMED[name]
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    graph = optimize(mlc.trace(fn, x))
    want = evaluate_graph(graph, x)
    got = Executable(graph, EmuDevice("reverse"))(x)
    for g, w in zip(got, want):
        assert_same(g, w, g.dtype.kind == "f", name)


@needs_emulator
def test_64_bit_entry_matches_32_bit_entry():
    (p,) = named_programs("layernorm", (5, 40))
    k = codegen.generate(p, "ln")
    mod = emulator.build(k.source, k.entries)
    x = np.random.default_rng(0).standard_normal((5, 40))
    outs = []
    for entry in ("ln", "ln_i32"):
        out = np.full((5, 40), np.nan)
        (launch,) = k.launches()
        mod.launch(entry, launch.grid, launch.block, 0, [*p.slots, x, out], order="reverse")
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], layernorm(x), rtol=1e-12, atol=1e-12)


# -- vectorized pointwise entries ------------------------------------------------------------
def one_program(fn, *args):
    (p,) = programs_of(fn, *args)
    return p


def iota_program(n=8):
    x = P.param(index=0, shape=(n, 3), dtype="float32")
    out = P.add(x, P.iota(shape=(n, 3), dtype="float32", axis=0))
    (k,) = fuse(Graph([x], [out])).fused_kernels  # (unoptimized: the iota stays in the kernel)
    return describe(k)


def test_vector_plan_takes_only_linear_accesses():
    f32, b = np.ones((6, 5), np.float32), np.ones((6, 5), bool)

    def plan(fn, *args):
        return codegen.vector_plan(one_program(fn, *args))

    assert plan(gelu, f32).lanes == 4  # float4
    assert plan(lambda x: x * 2.0, np.ones(7)).lanes == 2  # double2
    assert plan(lambda x: x.astype(np.float64), f32).lanes == 2  # the widest buffer decides
    assert plan(lambda x: x > 0, f32).lanes == 4  # bool as uchar4
    assert plan(lambda x, y: x ^ y, b, b).lanes == 4
    assert plan(lambda x: x * 3, np.ones((4, 1, 5), np.int64)).lanes == 2  # a unit axis
    got = plan(lambda x, y: x * y, f32, np.ones((), np.float32))  # a broadcast scalar
    assert got.lanes == 4 and got.buffers == (0, 2) and len(got.broadcast) == 1
    assert got.needs is None
    assert plan(lambda x, y: x * y, f32, np.ones((1, 5), np.float32)) is None  # a broadcast row
    assert plan(lambda x, y: x * y, f32, np.ones((6, 1), np.float32)) is None  # a column
    assert plan(lambda x: x.T * 2, f32) is None
    assert plan(lambda x: x[::2] * 2, f32) is None
    assert plan(lambda x: x[:, ::-1] * 2, f32) is None
    for name in ("softmax", "colsum", "total", "argmax"):
        assert all(codegen.vector_plan(p) is None for p in named_programs(name)), name
    assert codegen.vector_plan(iota_program()).needs == "split"


def test_vector_source():
    for fn, x, vec in [
        (gelu, np.ones(9, np.float32), "float4"),
        (lambda x: x * 2.0, np.ones(9), "double2"),
        (lambda x: x * 3, np.ones(9, np.int32), "int4"),
        (lambda x: x * 3, np.ones(9, np.int64), "longlong2"),
        (lambda x: ~x, np.ones(9, bool), "uchar4"),
    ]:
        k = codegen.generate(one_program(fn, x), "k")
        assert set(k.entries) == {"k", "k_vec"}, vec  # no division anywhere: no 32-bit entries
        assert f"const {vec} l0 = reinterpret_cast<const {vec}*>(b0)[q];" in k.code, vec
        assert f"reinterpret_cast<{vec}*>(b1)[q] = make_{vec}(" in k.code, vec
        assert "I rest" not in k.code and "%" not in k.code, vec  # offsets are the linear index
        assert "b0[lin]" in k.code  # the scalar entry and the remainder
    k = codegen.generate(iota_program(), "k")  # the lanes split their index: 32-bit only
    assert set(k.entries) == {"k", "k_i32", "k_vec_i32"}
    (p,) = named_programs("gelu")
    assert "_vec" not in codegen.generate(named_programs("softmax")[0], "k").code


@needs_nvrtc
def test_vector_entry_has_vector_loads_and_stores_in_ptx():
    """NVVM keeps the vector accesses (the sweep checks every vector entry for spills)."""
    cases = [
        (gelu, np.ones(9, np.float32), ".v4.f32"),
        (lambda x: x * 2.0, np.ones(9), ".v2.f64"),
        (lambda x: x * 3, np.ones(9, np.int32), ".v4.u32"),
        (lambda x: x * 3, np.ones(9, np.int64), ".v2.u64"),
        (lambda x: ~x, np.ones(9, bool), ".v4.u8"),
    ]
    kernels = [codegen.generate(one_program(f, x), f"k{i}") for i, (f, x, _) in enumerate(cases)]
    ptx = compiler.ptx(codegen.module_source(kernels))

    def entry(name):
        start = ptx.index(f".entry {name}(")
        end = ptx.find(".entry", start + 1)
        return ptx[start : end if end > 0 else len(ptx)]

    for i, (_, _, suffix) in enumerate(cases):
        vec = entry(f"k{i}_vec")
        assert f"ld.global.nc{suffix}" in vec and f"st.global{suffix}" in vec, suffix
        assert suffix not in entry(f"k{i}"), suffix


def test_vector_launches():
    k = codegen.generate(one_program(gelu, np.ones(10, np.float32)), "g")
    assert (k.lanes, k.vector_buffers, k.vector_entry) == (4, (0, 1), "g_vec")
    assert [x.kernel for x in k.launches([4097])] == ["g"]  # not known to be aligned
    (x,) = k.launches([4097], aligned=True)
    assert (x.kernel, x.grid, x.block) == ("g_vec", (4, 1, 1), (256, 1, 1))  # 1024 groups
    assert k.launches([3], aligned=True)[0].kernel == "g"  # fewer elements than lanes
    assert k.launches([4], aligned=True)[0].kernel == "g_vec"
    cap = codegen.H100.sm_count * 8 * 4
    assert k.launches([1 << 33], aligned=True)[0] == codegen.Launch(
        "g_vec", (cap, 1, 1), (256, 1, 1)
    )
    k = codegen.generate(iota_program(), "t")
    assert k.launches([1000, 3], aligned=True)[0].kernel == "t_vec_i32"
    assert k.launches([1 << 31, 3], aligned=True)[0].kernel == "t"  # too big for 32 bits
    assert k.launches([1000, 3], aligned=False)[0].kernel == "t_i32"


def at_offset(values, offset_bytes):
    """A C-contiguous copy of ``values`` that starts ``offset_bytes`` past a 16-byte boundary."""
    item = values.dtype.itemsize
    raw = np.zeros(values.size + 64 // item, values.dtype)
    skip = (-address(raw) + offset_bytes) % 16
    assert skip % item == 0
    out = raw[skip // item : skip // item + values.size]
    out[...] = values
    assert address(out) % 16 == offset_bytes and out.flags.c_contiguous
    return out


def vector_graph(dtype, n=8):
    """Pointwise outputs of ``dtype`` inputs x, y and a broadcast scalar s: an arithmetic op,
    NaN-propagating max, a comparison (a bool output) and a conversion (another width)."""
    x = P.param(index=0, shape=(n,), dtype=dtype)
    y = P.param(index=1, shape=(n,), dtype=dtype)
    s = P.param(index=2, shape=(), dtype=dtype)
    sb = P.broadcast_in_dim(s, shape=(n,), dims=())
    if dtype == "bool":
        outs = [P.logical_xor(x, sb), P.logical_and(x, y), P.convert(x, dtype="int32")]
    else:
        other = "float64" if dtype in ("float32", "int32") else "float32"
        outs = [P.add(P.mul(x, sb), y), P.max(x, y), P.lt(x, y), P.convert(x, dtype=other)]
        outs += [P.floor_div(x, y)]
    return Graph([x, y, s], outs)


@needs_emulator
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_vector_entry_emulated(dtype):
    """The vector entry, for sizes around the lane count and the grid, against the program's
    meaning (``kernel.evaluate``) and the scalar entry, bit for bit, both thread orders."""
    (k,) = fuse(vector_graph(dtype)).fused_kernels
    p = describe(k)
    kernel = codegen.generate(p, "v")
    assert kernel.lanes == (2 if dtype in ("int32", "int64", "float32", "float64") else 4)
    mod = emulator.build(kernel.source, kernel.entries)
    rng = np.random.default_rng(5)
    v = specials(dtype)
    for n in (0, 1, 3, 4, 5, 1023, 4097):
        params = [rng.choice(v, n), rng.choice(v, n), np.array(v[-1], dtype)]  # x, y, s
        args = [params[node.attr("index")] for node in p.inputs]  # in buffer order
        with np.errstate(all="ignore"):
            want = evaluate_program(p, args, [n])
        for entry, grid in [(kernel.vector_entry, 1), (kernel.vector_entry, 3), ("v", 2)]:
            for order in ("forward", "reverse"):
                ins = [at_offset(a, 0) for a in args]
                outs = [at_offset(np.zeros_like(w), 0) for w in want]
                mod.launch(entry, (grid, 1, 1), (256, 1, 1), 0, [n, *ins, *outs], order=order)
                for j, (g, w) in enumerate(zip(outs, want)):
                    assert_same(g, w, False, f"{entry} n={n} output {j} {order}")


@needs_emulator
def test_runtime_runs_the_vector_entry_only_when_aligned():
    graph = optimize(mlc.trace(gelu, np.ones(4097, np.float32)))
    ex = Executable(graph, EmuDevice("reverse"))
    (step,) = ex.steps
    ran = []

    class Spy:
        def launch(self, name, *args):
            ran.append(name)
            module.launch(name, *args)

    module, step.module = step.module, Spy()
    x = np.random.default_rng(2).standard_normal(4097).astype(np.float32)
    want = evaluate_graph(graph, x)[0]
    for offset, entry in [(0, step.kernel.vector_entry), (4, step.kernel.name)]:
        view = at_offset(x, offset)  # offset 4: a contiguous view, not 16-byte aligned
        (got,) = ex(view)
        assert ran.pop() == entry, offset
        assert_same(got, want, True, f"offset {offset}")
    assert address(x[1:]) == x.ctypes.data + 4
