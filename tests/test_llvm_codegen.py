"""backends/llvm/codegen.py: compiled kernel programs against `kernel.evaluate` and the interpreter.

Graphs are traced (or built from primitives), optimized and fused; every non-library kernel is
described, emitted into one LLVM module, compiled, and run through ctypes. Results must equal
`mlc.backends.kernel.evaluate` on the same inputs and the whole graph run by
`mlc.ir.interpreter.evaluate`: bit for bit (NaN positions and signed zeros included) unless the
program has a transcendental function (mathlib: a few ulp) or a float sum/prod (reassociated),
where a dtype-aware tolerance applies.
"""

import ctypes

import numpy as np
import numpy_cases
import pytest
from mlc.backends.kernel import describe
from mlc.backends.kernel import evaluate as evaluate_program
from mlc.backends.llvm import codegen, compiler
from mlc.ir import primitives as P
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate as evaluate_graph
from mlc.ir.interpreter import evaluate_node
from mlc.ir.passes import optimize
from mlc.ir.passes.fusion import fuse
from models import layernorm, softmax

import mlc
import mlc.numpy as mnp

KERNEL = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p
)
FINAL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
INEXACT_OPS = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "cbrt", "sin", "cos", "tan", "asin",
    "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "pow", "atan2", "hypot",
}  # fmt: skip
FLOATS = ("float32", "float64")
ALL_DTYPES = ("bool", "int32", "int64", "float32", "float64")


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLC_CACHE_DIR", str(tmp_path_factory.mktemp("llvm-cache")))
    yield
    mp.undo()


# -- harness ---------------------------------------------------------------------------------
class Compiled:
    """Programs compiled into one module; each program named by its key (equal keys share code)."""

    def __init__(self, programs, key="test"):
        self.names = {}
        for p in programs:
            self.names.setdefault(p.key(), f"k{len(self.names)}_{p.name}")
        by_name = {}
        for p in programs:
            by_name.setdefault(self.names[p.key()], p)
        self.ir = str(codegen.module_for(by_name))
        self.cm = compiler.compile_module(self.ir, key)

    def run(self, program, inputs, slots=None, chunks=1):
        """Run ``program`` on ``inputs``; the first outer axis split into ``chunks`` calls whose
        partials ``NAME_final`` combines. Returns the outputs."""
        name = self.names[program.key()]
        slots = list(program.slots if slots is None else slots)
        dims = [slots[program.exprs[d].attr] for b in program.buffers for d in b.shape]
        assert all(d >= 0 for d in dims)
        ins = [np.ascontiguousarray(a, dtype=b.dtype) for a, b in zip(inputs, program.buffers)]
        outs = [
            np.full(tuple(slots[program.exprs[d].attr] for d in b.shape), 7, dtype=b.dtype)
            for b in program.buffers
            if b.role == "out"
        ]
        arrays = ins + outs
        ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        slot_arr = np.array(slots + [0], np.int64)
        n = slots[program.exprs[program.extents[program.outer[0]]].attr] if program.outer else 1
        bounds = np.linspace(0, n, chunks + 1).astype(np.int64) if n else np.zeros(chunks + 1)
        size = max(codegen.partials_size(program), 1)
        partials = np.zeros(size * chunks, np.uint8)
        kernel = KERNEL(self.cm.address(name))
        for c in range(chunks):
            at = partials.ctypes.data + c * codegen.partials_size(program)
            kernel(slot_arr.ctypes.data, ptrs, int(bounds[c]), int(bounds[c + 1]), at)
        FINAL(self.cm.address(name + "_final"))(slot_arr.ctypes.data, ptrs, partials.ctypes.data,
                                                chunks)  # fmt: skip
        return outs


def plan_of(fn, *args):
    """The optimized, fused graph of ``fn`` traced on ``args``, and its kernel programs."""
    graph = optimize(mlc.trace(fn, *args))
    plan = fuse(graph)
    return plan, [describe(k) for k in plan.fused_kernels]


def graph_plan(outputs, *params):
    plan = fuse(Graph(list(params), list(outputs)))
    return plan, [describe(k) for k in plan.fused_kernels]


def kernel_inputs(program, env):
    return [
        n.attr("value").array if n.op == "constant" else env[id(n)] for n in program.inputs
    ]  # fmt: skip


def run_plan(plan, programs, compiled, args, chunks=1, check_kernels=True):
    """The graph's outputs computed kernel by kernel (library calls by the interpreter); each
    compiled kernel is also checked against ``kernel.evaluate`` on the same inputs."""
    env = {id(p): np.asarray(a) for p, a in zip(plan.graph.inputs, args)}
    for n in plan.graph.nodes():
        if n.op == "constant":
            env[id(n)] = n.attr("value").array
    progs = iter(programs)
    for k in plan.kernels:
        if k.kind == "library":
            n = k.members[0]
            env[id(n)] = evaluate_node(n, [env[id(i)] for i in n.inputs])
            continue
        p = next(progs)
        ins = kernel_inputs(p, env)
        outs = compiled.run(p, ins, chunks=chunks)
        if check_kernels:
            want = evaluate_program(p, ins)
            for o, w, node in zip(outs, want, p.outputs):
                assert_close(o, w, inexact(p), loose_zero(p), f"{p.name} {node.op}")
        for node, o in zip(p.outputs, outs):
            env[id(node)] = o
    return [env[id(o)] for o in plan.graph.outputs]


def inexact(program) -> bool:
    """Transcendentals (a few ulp) or float sums/products (reassociated)."""
    floats = any(
        e.op in INEXACT_OPS and e.dtype in FLOATS for e in program.exprs
    )  # fmt: skip
    sums = any(r.combiner in ("sum", "prod") and r.dtype in FLOATS for r in program.reductions)
    return floats or sums


def loose_zero(program) -> bool:
    """Float max/min reductions: which of two equal zeros wins is unspecified (NumPy too)."""
    return any(r.combiner in ("max", "min") and r.dtype in FLOATS for r in program.reductions)


def assert_close(got, want, approx=False, any_zero=False, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{what}: NaN positions")
    g, w = got[~nan], want[~nan]
    if approx:
        rtol = 1e-5 if got.dtype == np.float32 else 1e-11
        fin = np.isfinite(w)
        np.testing.assert_array_equal(g[~fin], w[~fin], err_msg=f"{what}: infinities")
        scale = 1 + (np.abs(w[fin]).max() if fin.any() else 0)
        np.testing.assert_allclose(g[fin], w[fin], rtol=rtol, atol=rtol * scale, err_msg=what)
    elif any_zero:
        np.testing.assert_array_equal(g, w, err_msg=what)
    else:
        bits = {4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
        bad = g.view(bits) != w.view(bits)
        assert not bad.any(), f"{what}: got {g[bad][:5]}, want {w[bad][:5]}"


def check(fn, *args, chunks=(1,), kernels=None):
    """Trace, fuse and compile ``fn``; compare every chunking with kernel.evaluate and the
    interpreter. Returns the plan's programs."""
    plan, programs = plan_of(fn, *args)
    if kernels is not None:
        assert len(programs) == kernels, str(plan)
    compiled = Compiled(programs)
    want = evaluate_graph(plan.graph, *args)
    approx = any(inexact(p) for p in programs)
    zero = any(loose_zero(p) for p in programs)
    for c in chunks:
        got = run_plan(plan, programs, compiled, args, chunks=c)
        for g, w in zip(got, want):
            assert_close(g, w, approx, zero, f"chunks={c}")
    return programs


# -- special values --------------------------------------------------------------------------
def specials(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        vals = [0, 1, -1, 2, -2, 3, -3, 7, -7, 31, 63, 100, info.min, info.max, info.min + 1]
        return np.array(vals + [info.max - 1], dtype)
    info = np.finfo(dtype)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 2.5, 3.0, -7.0]
    vals += [0.1, -1e-3, 1e5, info.max, -info.max, info.tiny, info.tiny / 4, 3e9, -3e9, 2.0**31]
    vals += [-(2.0**31), 2.0**63, -(2.0**63), 4.7, -0.3]
    return np.array(vals, dtype)


def pairs(dtype):
    v = specials(dtype)
    return np.repeat(v, len(v)), np.tile(v, len(v))


UNARY = (
    "neg abs sign exp exp2 expm1 log log2 log10 log1p sqrt cbrt sin cos tan asin acos atan sinh "
    "cosh tanh asinh acosh atanh floor ceil trunc round is_finite is_nan is_inf not"
).split()
BINARY = (
    "add sub mul div floor_div rem pow max min atan2 hypot eq ne lt le gt ge and or xor".split()
)


def elementwise_cases():
    out = []
    for name in UNARY + BINARY:
        prim = getattr(P, {"not": "logical_not", "and": "logical_and", "or": "logical_or",
                           "xor": "logical_xor"}.get(name, name))  # fmt: skip
        for dtype in ALL_DTYPES:
            arity = 1 if name in UNARY else 2
            params = [P.param(index=i, shape=(3,), dtype=dtype) for i in range(arity)]
            try:
                prim(*params)
            except TypeError:
                continue
            out.append((name, prim, dtype))
    return out


ELEMENTWISE = elementwise_cases()


@pytest.fixture(scope="module")
def elementwise_compiled():
    """Every elementwise primitive for every dtype it accepts, in one module."""
    built = {}
    for name, prim, dtype in ELEMENTWISE:
        arity = 1 if name in UNARY else 2
        n = len(specials(dtype)) ** arity
        params = [P.param(index=i, shape=(n,), dtype=dtype) for i in range(arity)]
        built[(name, dtype)] = graph_plan([prim(*params)], *params)
    for src in ALL_DTYPES:
        for dst in ALL_DTYPES:
            x = P.param(index=0, shape=(len(specials(src)),), dtype=src)
            built[("convert", src, dst)] = graph_plan([P.convert(x, dtype=dst)], x)
    programs = [p for _, ps in built.values() for p in ps]
    return built, Compiled(programs, "elementwise")


def run_built(built, compiled, key, args):
    plan, programs = built[key]
    got = run_plan(plan, programs, compiled, args)
    want = evaluate_graph(plan.graph, *args)
    approx = any(inexact(p) for p in programs)
    for g, w in zip(got, want):
        assert_close(g, w, approx, False, str(key))


@pytest.mark.parametrize("name,dtype", [(n, d) for n, _, d in ELEMENTWISE])
def test_elementwise_special_values(elementwise_compiled, name, dtype):
    built, compiled = elementwise_compiled
    args = pairs(dtype) if name in BINARY else (specials(dtype),)
    if name == "pow" and dtype not in FLOATS:  # NumPy raises on negative integer exponents
        args = (args[0], np.abs(args[1]) % 70)
    run_built(built, compiled, (name, dtype), args)


@pytest.mark.parametrize("dtype", ("float32", "float64", "int32", "int64"))
def test_divmod_pow_random(elementwise_compiled, dtype):
    """floor_div, rem, pow, max, min, mul on random operands of every magnitude, bit-exact
    (the compiled kernels reused with a new size)."""
    built, compiled = elementwise_compiled
    rng = np.random.RandomState(7)
    n = 20000
    if dtype in FLOATS:
        top = 30 if dtype == "float32" else 200
        x = rng.uniform(-1, 1, n) * 2.0 ** rng.randint(-top, top, n)
        y = rng.uniform(-1, 1, n) * 2.0 ** rng.randint(-top, top, n)
        y[::7] = np.round(y[::7] * 4) / 4  # small exact divisors, multiples, ties
        x[::5] = y[::5] * rng.randint(-9, 9, n)[::5] + y[::5] * 0.5 * (rng.randint(0, 2) * 2 - 1)
    else:
        bits = 31 if dtype == "int32" else 63
        x = rng.randint(-(2**bits), 2**bits - 1, n, dtype=np.int64) >> rng.randint(0, bits, n)
        y = rng.randint(-(2**bits), 2**bits - 1, n, dtype=np.int64) >> rng.randint(0, bits, n)
    x, y = x.astype(dtype), y.astype(dtype)
    for name in ("floor_div", "rem", "pow", "max", "min", "mul"):
        if name == "pow" and dtype in FLOATS:
            continue  # mathlib's pow: within a few ulp, tested in test_llvm_math.py
        b = np.abs(y) % 70 if name == "pow" else y
        (program,) = built[(name, dtype)][1]
        got = compiled.run(program, [x, b], slots=[n])[0]
        with np.errstate(all="ignore"):
            want = program.outputs[0].prim.impl(x, b)
        assert_close(got, want, what=f"{name} {dtype}")


def test_int_pow_negative_exponent(elementwise_compiled):
    """NumPy raises; the kernel gives trunc(1 / x**-y): 1 for x = 1, +-1 for x = -1, else 0."""
    built, compiled = elementwise_compiled
    plan, programs = built[("pow", "int64")]
    x, y = pairs("int64")
    keep = y < 0
    x, y = x[keep], y[keep]
    assert programs[0].slots == [len(keep)]
    got = compiled.run(programs[0], [x, y], slots=[len(x)])[0]
    want = np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 1, -1, 1), 0))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("src", ALL_DTYPES)
def test_convert_every_pair(elementwise_compiled, src):
    built, compiled = elementwise_compiled
    for dst in ALL_DTYPES:
        run_built(built, compiled, ("convert", src, dst), (specials(src),))


def test_select_and_mixed_chain():
    def f(x, y, p):
        z = np.where(p, x * y - 1.5, np.maximum(x, y))
        return z / (1 + np.abs(y)), (x > y) & p, np.floor_divide(x, y) + np.remainder(x, y)

    x, y = pairs("float32")
    p = np.arange(x.size) % 3 == 0
    check(f, x, y, p)


# -- broadcasting and movement ---------------------------------------------------------------
RNG = np.random.RandomState(0)


def rand(*shape, dtype="float64"):
    return RNG.uniform(-2, 2, size=shape).astype(dtype)


def test_broadcasting():
    check(lambda a, b, c: a * b + c, rand(4, 1, 5), rand(3, 1), rand(5), chunks=(1, 2, 3))
    check(lambda a, b: (a - b, a > b), rand(1, 6, dtype="float32"), rand(7, 1, dtype="float32"))
    check(lambda a, s: a * s, rand(2, 3, 4), rand())


def test_reshape_transpose_slice_rev():
    x = rand(4, 6, 5)
    check(lambda x: (x.transpose(2, 0, 1) * 2).reshape(10, 12) + 1, x, chunks=(1, 3))
    check(lambda x: x.reshape(6, 20)[::2, 1:17:3] - 1, x)
    check(lambda x: np.flip(x, (0, 2)) * x[::-1], x)
    check(lambda x: (x[1:, ::-2, 2:3] + 0.5).T, x)


def test_pad_interior_and_concatenate():
    x = P.param(index=0, shape=(3, 4), dtype="float32")
    v = P.param(index=1, shape=(), dtype="float32")
    y = P.pad(x, v, low=(1, 0), high=(2, 3), interior=(2, 1))
    out = P.add(y, y)
    plan, programs = graph_plan([out], x, v)
    args = [rand(3, 4, dtype="float32"), np.float32(-9.5)]
    got = run_plan(plan, programs, Compiled(programs), args)
    assert_close(got[0], evaluate_graph(plan.graph, *args)[0])
    check(lambda a, b, c: np.concatenate([a, b * 2, c], axis=1) + 1, rand(3, 2), rand(3, 4),
          rand(3, 1))  # fmt: skip
    check(lambda a, b: np.concatenate([a, b]) * 3, rand(2, 3), rand(0, 3))
    check(lambda a: np.pad(a, ((1, 2), (0, 3))) - 1, rand(3, 3))


def test_gather_negative_and_out_of_range():
    x = P.param(index=0, shape=(5, 3), dtype="float64")
    i = P.param(index=1, shape=(7, 1), dtype="int32")
    j = P.param(index=2, shape=(4, 2), dtype="int64")
    outs = [P.mul(P.gather(x, i), P.gather(x, i)), P.neg(P.gather(x, j))]
    plan, programs = graph_plan(outs, x, i, j)
    args = [rand(5, 3), np.array([[0], [4], [-1], [-5], [9], [-9], [2]], np.int32),
            np.array([[1, 2], [-1, -1], [7, 0], [0, -8]], np.int64)]  # fmt: skip
    got = run_plan(plan, programs, Compiled(programs), args)
    for g, w in zip(got, evaluate_graph(plan.graph, *args)):
        assert_close(g, w)
    check(lambda x, idx: x[idx] * 2, rand(6, 4), np.array([3, -1, 0, 5]))


def test_iota():
    check(lambda x: x + np.arange(12).reshape(3, 4), rand(3, 4))
    check(lambda x: x * np.arange(4, dtype=np.float32), rand(2, 4, dtype="float32"))


# -- reductions ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_reductions_all_axes(dtype):
    x = rand(4, 5, 6) * 3
    x = x > 0 if dtype == "bool" else x.astype(dtype)
    if dtype in FLOATS:
        x[0, 1, 2], x[2, 3, 0], x[3, :, 4] = np.nan, np.inf, -np.inf
        x[1, 1, :] = 0.5  # ties

    def f(x):
        out = []
        for axis in (0, 1, 2, (0, 2), (1, 2), None):
            if dtype != "bool":
                out += [x.sum(axis), x.prod(axis)]
            out += [x.max(axis), x.min(axis)]
        for axis in (0, 1, 2):
            out += [np.argmax(x, axis), np.argmin(x, axis)]
        return tuple(out)

    check(f, x, chunks=(1, 3))


def test_column_reductions_in_strips():
    """Reductions that keep the last axis run it in strips of STRIP lanes: full strips, a
    partial one, several phases, epilogues, argmax, chunks along a strip axis or before it."""
    n = 2 * codegen.STRIP + 22
    x = rand(9, n, dtype="float32")
    x[3, 5] = np.nan
    x[:, 7] = 1.0  # ties
    softmax0 = lambda x: np.exp(x - x.max(0)) / np.exp(x - x.max(0)).sum(0)  # noqa: E731
    check(softmax0, x, chunks=(1, 2, 3), kernels=1)
    check(lambda x: ((x - x.mean(0)) / x.std(0), np.argmax(x, 0), x.min(0)), x, chunks=(1, 3))
    y = rand(3, 7, n)
    check(lambda y: (y.sum(1), y - y.max(1, keepdims=True), np.argmin(y, 1)), y, chunks=(1, 2))
    check(lambda y: (y * y).sum((0, 1)), y, chunks=(1, 2))
    programs = check(lambda x: (np.tanh(x.sum(0)) ** 2).mean(), x, chunks=(1, 2, 3))
    assert any(r.per_row for p in programs for r in p.reductions)  # a total of column values


def test_argmax_ties_nan_and_totals():
    x = np.array([1.0, 3.0, np.nan, 3.0, np.nan, -1.0, 3.0])
    check(lambda x: (np.argmax(x), np.argmin(x)), x, chunks=(1, 2, 3))
    y = np.array([1.0, 3.0, 2.0, 3.0, -4.0, 0.0, -4.0])
    check(lambda x: (np.argmax(x), np.argmin(x), x.max(), x.min()), y, chunks=(1, 2, 3))
    # totals over loop nests with unit axes, and over per-row values (argmax of row sums)
    check(lambda x: np.argmax(x, 1), rand(1, 8), chunks=(1, 2))
    check(lambda x: (np.argmax(x, 0), x * 2), rand(8, 1), chunks=(1, 2))
    w = rand(6, 5)
    w[[1, 4]] = 3.0  # equal row sums: the first wins
    check(lambda x: (np.argmax(x.sum(1)), np.argmin(x.sum(1))), w, chunks=(1, 2, 3))
    z = np.array([[5, 1, 5, 0], [2, 2, -3, -3]], np.int32)
    check(lambda x: (np.argmax(x, 1), np.argmin(x, 1), np.argmax(x, 0)), z, chunks=(1, 2))


def test_empty_axes():
    check(lambda x: (x.sum(1), x.prod(1), x * 2), rand(3, 0))
    check(lambda x: (x.sum(0), x.sum()), rand(0, 4))
    check(lambda x: x + 1, rand(0))


def test_softmax_layernorm_logsumexp_one_kernel():
    x = rand(6, 33, dtype="float32") * 4
    x[2, 5] = 30.0

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def layernorm(x):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-5)

    def logsumexp(x):
        m = x.max(-1, keepdims=True)
        return np.log(np.exp(x - m).sum(-1, keepdims=True)) + m

    for f in (softmax, layernorm, logsumexp):
        check(f, x, chunks=(1, 2, 3), kernels=1)
    out = Compiled(plan_of(softmax, x)[1]).run(plan_of(softmax, x)[1][0], [x])[0]
    assert out.max() <= 1.0 and np.allclose(out.sum(-1), 1, rtol=1e-5)
    check(lambda x: (x - x.mean(0)) / x.std(0), rand(20, 7), chunks=(1, 3))  # column stats


def test_totals_value_and_grad_chunks():
    def loss(w, x, y):
        z = np.tanh(x * w)
        return ((z - y) ** 2).mean() + 0.1 * (w**2).sum()

    w, x, y = rand(8, 16), rand(8, 16), rand(8, 16)
    programs = check(mlc.value_and_grad(loss), w, x, y, chunks=(1, 2, 3))
    assert any(r.level == "total" for p in programs for r in p.reductions)

    def row_loss(x):  # a total of per-row values: logsumexp then mean
        m = x.max(-1, keepdims=True)
        return (np.log(np.exp(x - m).sum(-1)) + m[:, 0]).mean()

    check(mlc.value_and_grad(row_loss), rand(5, 9, dtype="float32"), chunks=(1, 2, 3))


def test_size_zero_and_rank_zero():
    check(lambda x, y: (x * y, (x - y).sum()), rand(0, 3), rand(0, 3), chunks=(1, 2))
    check(lambda x: np.sin(x) * 2, rand())
    check(lambda x: (x * 2, x.sum()), rand(1))


def test_reuse_compiled_kernel_with_new_sizes():
    def f(x, b):
        return np.exp(x - x.max(-1, keepdims=True)) * b, (x * b).sum()

    _, small = plan_of(f, rand(3, 5, dtype="float32"), rand(5, dtype="float32"))
    plan, big = plan_of(f, rand(11, 5, dtype="float32"), rand(5, dtype="float32"))
    assert [p.key() for p in small] == [p.key() for p in big]
    compiled = Compiled(small)
    args = [rand(11, 5, dtype="float32"), rand(5, dtype="float32")]
    for c in (1, 4):
        got = run_plan(plan, big, compiled, args, chunks=c)
        for g, w in zip(got, evaluate_graph(plan.graph, *args)):
            assert_close(g, w, True)


# -- generated code --------------------------------------------------------------------------
def test_vectorizes_exp_and_row_sum():
    _, exp_p = plan_of(lambda x: np.exp(x) * 2, rand(64, 64, dtype="float32"))
    _, sum_p = plan_of(lambda x: x.sum(-1), rand(64, 64, dtype="float32"))
    for programs in (exp_p, sum_p):
        ir_text = Compiled(programs).cm.optimized_ir
        assert any(f"<{w} x float>" in ir_text for w in (4, 8, 16))
        assert "@expf" not in ir_text
    raw = Compiled(exp_p).ir
    assert '"prefer-vector-width"="512"' in raw  # exp is compute-bound: zmm where the host has it
    assert "prefer-vector-width" not in Compiled(sum_p).ir  # memory-bound: LLVM's default
    assert "reassoc" not in raw and "fast" not in raw and "contract" not in raw
    assert "fadd reassoc nsz" in Compiled(sum_p).ir


def test_module_api():
    _, programs = plan_of(lambda x: (x * 2, x.sum()), rand(3, 4))
    m = codegen.module_for(programs)
    names = {f.name for f in m.functions}
    p = programs[0]
    assert {p.name, p.name + "_final"} <= names
    assert codegen.partials_size(p) == 16 * len(codegen.total_reductions(p))
    with pytest.raises(ValueError):
        codegen.module_for([p, p])


# -- the mlc.numpy sweep ---------------------------------------------------------------------
SWEEP_DTYPES = ("float64", "float32", "int32", "bool")


def _sweep_plans():
    rng = np.random.RandomState(1)
    out = []
    for case in numpy_cases.all_cases():
        if not case.values:
            continue
        base = case.gen(rng)
        for dtype in SWEEP_DTYPES:
            if dtype not in case.dtypes:
                continue
            args = tuple(numpy_cases.cast(a, dtype) for a in base)
            try:
                with np.errstate(all="ignore"):
                    case.fn(np, *args)
                graph = optimize(mlc.trace(lambda *a, c=case: c.fn(mnp, *a), *args))
            except Exception:  # NumPy or mlc refuses this dtype: not ours to test here
                continue
            plan = fuse(graph)
            if not plan.fused_kernels:
                continue  # library calls only
            out.append((f"{case.id}-{dtype}", plan, [describe(k) for k in plan.fused_kernels],
                        args))  # fmt: skip
    return out


def test_numpy_cases_sweep():
    """Every mlc.numpy case, fused: each kernel against kernel.evaluate, the plan against the
    interpreter."""
    plans = _sweep_plans()
    assert len(plans) > 300
    compiled = Compiled([p for _, _, ps, _ in plans for p in ps], "sweep")
    failures = []
    for label, plan, programs, args in plans:
        try:
            with np.errstate(all="ignore"):
                want = evaluate_graph(plan.graph, *args)
                got = run_plan(plan, programs, compiled, args, chunks=2)
            approx = any(inexact(p) for p in programs)
            zero = any(loose_zero(p) for p in programs)
            for g, w in zip(got, want):
                assert_close(g, w, approx, zero, label)
        except AssertionError as e:
            failures.append(f"{label}: {str(e)[:300]}")
    assert not failures, f"{len(failures)} of {len(plans)}:\n" + "\n".join(failures)


# -- row kernels: the exp stashed in the output, the next row prefetched ----------------------
def _emitter(program):
    import llvmlite.ir as lir

    return codegen._KernelEmitter(lir.Module(), program, "t")


def test_softmax_computes_exp_once_per_element():
    x = np.ones((3, 40), np.float32)
    (program,) = plan_of(softmax, x)[1]
    em = _emitter(program)
    stash = em.stash_plan(program.stores, em.phase(program.phases - 1))
    assert [program.exprs[c].op for c, _ in stash] == ["exp"]
    # the input is prefetched for the next row; it is read in the first phase
    assert [b for b, _ in em.prefetch_plan()] == [0]


def test_prefetch_skips_broadcast_and_gathered_inputs():
    x = np.ones((3, 40), np.float32)
    g = np.ones(40, np.float32)
    (program,) = plan_of(lambda x, g: (x * g).sum(-1, keepdims=True) - x, x, g)[1]
    em = _emitter(program)
    full = [i for i, b in enumerate(program.buffers) if b.shape == program.extents]
    assert {b for b, _ in em.prefetch_plan()} == {full[0]}  # x, not g (a broadcast row)
    idx = np.array([2, 0, 1])
    (program,) = plan_of(lambda x, i: x[i] - x[i].max(-1, keepdims=True), x, idx)[1]
    em = _emitter(program)
    for _, off in em.prefetch_plan():  # a gathered row's address needs a load: never prefetched
        assert all(program.exprs[a].op != "load" for a in program.walk([off]))


@pytest.mark.parametrize("n", [1, 15, 16, 17, 48, 131])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernels_at_every_strip_remainder(n, dtype):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((5, n)) * 4).astype(dtype)
    x[1, 0] = np.nan
    x[2, -1] = np.inf
    g, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    check(softmax, x, chunks=(1, 2), kernels=1)
    check(layernorm, x, g, b, chunks=(1, 3), kernels=1)
    check(lambda x: mnp.log(mnp.exp(x - x.max(-1, keepdims=True)).sum(-1)), x, chunks=(1, 2))


@pytest.mark.parametrize("n", [1, 16, 17, 131])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streaming_final_pass(monkeypatch, n, dtype):
    """Large outputs of a row kernel are written with non-temporal stores (behind a run-time
    size test, fenced before the kernel returns); the values are the same."""
    monkeypatch.setattr(codegen, "STREAM_MIN_BYTES", 0)  # stream at every size
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((6, n)) * 3).astype(dtype)
    x[2, 0] = np.nan
    g, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    programs = check(layernorm, x, g, b, chunks=(1, 3), kernels=1)
    text = str(codegen.module_for({"t": programs[0]}))
    if n > 1:  # rows of one element fuse into a pointwise kernel: no final pass
        assert "!nontemporal" in text and "fence seq_cst" in text
    check(lambda x: x - x.max(-1, keepdims=True), x, chunks=(1, 2), kernels=1)
    # a pass with a transcendental, or one that reads a stashed value back, never streams
    (sm,) = plan_of(softmax, x)[1]
    assert "!nontemporal" not in str(codegen.module_for({"t": sm}))
