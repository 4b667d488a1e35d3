"""Transform rules of ir/primitives/reduce.py: reductions, scans, arg-reductions, argsort and
dot_general.

- jvp against central finite differences (float64), vjp against jvp by the projection identity
  ``<w, J u> == <J^T w, u>``;
- second order in all four mode combinations: ``jvp``/``vjp`` of ``jvp_graph(g)`` and of
  ``vjp_graph(g)``, each checked the same way against finite differences of the first-order graph;
- exact hand examples: ties of max/min split evenly, NaN extremes, zeros in prod/cumprod against
  the analytic product of the others;
- batch rules against a loop of ``evaluate`` over the batch, with random batch axes (negative and
  ``None`` included), batches of size 0 and 1, float32/float64/int/bool, and vmap of derivatives.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlc.ir import primitives as P
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate
from mlc.ir.passes.autodiff import jvp_graph, vjp_graph
from mlc.ir.passes.batching import batch_graph

EPS = 1e-6
REDUCTIONS = [P.reduce_sum, P.reduce_prod, P.reduce_max, P.reduce_min]


# -- helpers --------------------------------------------------------------------------------
def param(i, shape, dtype="float64"):
    return P.param(index=i, shape=tuple(shape), dtype=dtype)


def unary(prim, shape, dtype="float64", **attrs):
    x = param(0, shape, dtype)
    return Graph([x], [prim(x, **attrs)], prim.name)


def run(g, *xs):
    with np.errstate(all="ignore"):
        return evaluate(g, *xs)


def is_float(n):
    return n.dtype.kind == "f"


def rand(rng, shape, dtype="float64", special=False):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    x = rng.normal(size=shape)
    if special and x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, size=2)
        flat[picks[0]] = [np.nan, np.inf, -np.inf][rng.integers(3)]
        flat[picks[1]] = flat[rng.integers(flat.size)]  # a tie
    return x.astype(dtype)


def distinct(rng, shape):
    """Values at least 0.08 apart (no ties within a finite-difference step)."""
    n = int(np.prod(shape, dtype=np.int64))
    vals = rng.permutation(n) * 0.1 + rng.uniform(-0.01, 0.01, size=n) - 0.05 * n
    return vals.reshape(shape)


def moderate(rng, shape, zeros=0):
    """Magnitudes in [0.5, 1.5] with random signs (products stay moderate), some exact zeros."""
    x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    if x.size and zeros:
        x.reshape(-1)[rng.integers(0, x.size, size=zeros)] = 0.0
    return x


def scale(*arrays):
    return max([1.0] + [float(np.max(np.abs(a))) for a in arrays if np.size(a)])


def check_jvp(g, xs, rng):
    """The jvp graph against central differences along a random direction; returns (u, Ju)."""
    us = [rng.normal(size=p.shape) for p in g.inputs if is_float(p)]
    outs = run(jvp_graph(g), *xs, *us)
    n = len(g.outputs)
    assert all(np.asarray(a).dtype == o.dtype for a, o in zip(outs, g.outputs + g.outputs))
    it = iter(us)
    dirs = [next(it) if is_float(p) else 0 for p in g.inputs]
    plus = run(g, *[x + EPS * u for x, u in zip(xs, dirs)])
    minus = run(g, *[x - EPS * u for x, u in zip(xs, dirs)])
    for o, t, a, b in zip(g.outputs, outs[n:], plus, minus):
        if not is_float(o):
            assert not np.any(t), "a non-float output has a nonzero tangent"
            continue
        fd = (a - b) / (2 * EPS)
        np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-6 * scale(fd), err_msg=g.name)
    return us, outs[n:]


def check_vjp(g, xs, us, jus, rng):
    """The vjp graph against the jvp: ``<w, J u> == <J^T w, u>``."""
    ws = [
        rng.normal(size=o.shape) if is_float(o) else np.zeros(o.shape, o.dtype) for o in g.outputs
    ]
    outs = run(vjp_graph(g), *xs, *ws)
    cts = outs[len(g.outputs) :]
    floats = [p for p in g.inputs if is_float(p)]
    assert [c.dtype for c in cts] == [p.dtype for p in floats], "cotangent dtype != input dtype"
    assert [c.shape for c in cts] == [p.shape for p in floats]
    lhs = sum(float(np.sum(w * t)) for w, t, o in zip(ws, jus, g.outputs) if is_float(o))
    rhs = sum(float(np.sum(c * u)) for c, u in zip(cts, us))
    s = scale(*ws, *jus, *cts, *us)
    assert np.isclose(lhs, rhs, rtol=1e-9, atol=1e-9 * s), (g.name, lhs, rhs)


def check_first(g, xs, rng):
    us, jus = check_jvp(g, xs, rng)
    check_vjp(g, xs, us, jus, rng)


def check_derivatives(g, xs, rng, second=True):
    """First order, then second order in all four mode combinations."""
    check_first(g, xs, rng)
    if not second:
        return
    for g1 in (jvp_graph(g), vjp_graph(g)):
        extra = [rng.normal(size=p.shape) for p in g1.inputs[len(xs) :]]
        check_first(g1, list(xs) + extra, rng)


def loop(g, args, in_dims, size):
    """The batch by hand: ``g`` on each example, stacked along axis 0."""
    per = []
    for b in range(size):
        ex = [a if d is None else np.take(a, b, axis=d) for a, d in zip(args, in_dims)]
        per.append(run(g, *ex))
    outs = []
    for j, o in enumerate(g.outputs):
        outs.append(np.stack([p[j] for p in per]) if size else np.zeros((0,) + o.shape, o.dtype))
    return outs


def check_batch(g, args, in_dims, size):
    """``batch_graph`` against the loop; ``args`` already carry their batch axes."""
    bg = batch_graph(g, in_dims, size)
    norm = [None if d is None else d % a.ndim for a, d in zip(args, in_dims)]
    got, want = run(bg, *args), loop(g, args, norm, size)
    for a, e in zip(got, want):
        assert a.shape == e.shape and a.dtype == e.dtype, (g.name, a.shape, e.shape)
        if e.dtype.kind == "f":
            tol = 1e-5 if e.dtype == np.float32 else 1e-11
            np.testing.assert_allclose(a, e, rtol=tol, atol=tol, equal_nan=True, err_msg=g.name)
        else:
            np.testing.assert_array_equal(a, e, err_msg=g.name)
    return bg


def batched_args(rng, g, in_dims, size, make):
    args = []
    for p, d in zip(g.inputs, in_dims):
        shape = list(p.shape)
        if d is not None:
            shape.insert(d % (len(shape) + 1), size)
        args.append(make(tuple(shape), p.dtype))
    return args


# -- strategies -----------------------------------------------------------------------------
def draw_shape(data, min_rank=0, max_rank=3, min_side=0, max_side=4):
    rank = data.draw(st.integers(min_rank, max_rank), label="rank")
    return tuple(data.draw(st.integers(min_side, max_side)) for _ in range(rank))


def draw_axes(data, rank):
    return tuple(sorted(data.draw(st.sets(st.integers(0, rank - 1)), label="axes"))) if rank else ()


def draw_bdim(data, rank, allow_none=False):
    """A batch axis for an operand of ``rank`` (negative ones included), or None."""
    choices = st.integers(-rank - 1, rank)
    if allow_none:
        choices = st.none() | choices
    return data.draw(choices, label="bdim")


def seed(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


# -- reductions -----------------------------------------------------------------------------
@given(st.data())
def test_reduce_sum_derivatives(data):
    shape = draw_shape(data)
    g = unary(P.reduce_sum, shape, axes=draw_axes(data, len(shape)))
    rng = seed(data)
    check_derivatives(g, [rng.normal(size=shape)], rng)


@pytest.mark.parametrize("prim", [P.reduce_max, P.reduce_min])
@given(data=st.data())
def test_reduce_extreme_derivatives(prim, data):
    shape = draw_shape(data, min_side=1)
    g = unary(prim, shape, axes=draw_axes(data, len(shape)))
    rng = seed(data)
    check_derivatives(g, [distinct(rng, shape)], rng)


@given(st.data())
def test_reduce_prod_derivatives(data):
    shape = draw_shape(data)
    g = unary(P.reduce_prod, shape, axes=draw_axes(data, len(shape)))
    rng = seed(data)
    zeros = data.draw(st.integers(0, 2), label="zeros")
    # a polynomial in each element: finite differences are smooth at zeros too
    check_derivatives(g, [moderate(rng, shape, zeros)], rng)


def prod_of_others(x, axis):
    """By brute force: for each element, the product of the others along ``axis``."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        line = np.moveaxis(x, axis, -1)[idx[:axis] + idx[axis + 1 :]]
        out[idx] = np.prod(np.delete(line, idx[axis]))
    return out


@pytest.mark.parametrize(
    "x",
    [
        [2.0, 0.0, 3.0, 4.0],
        [0.0, 5.0, 0.0, 2.0],
        [0.0],
        [7.0],
        [[1.5, 0.0, -2.0], [0.0, 0.0, 3.0], [2.0, -1.0, 0.5]],
    ],
)
def test_reduce_prod_zeros_exact(x):
    x = np.array(x)
    axis = x.ndim - 1
    g = unary(P.reduce_prod, x.shape, axes=(axis,))
    _, grad = run(vjp_graph(g), x, np.ones(x.shape[:-1]))
    np.testing.assert_array_equal(grad, prod_of_others(x, axis))
    # jvp along each basis direction gives the same numbers
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1.0
        _, t = run(jvp_graph(g), x, e)
        assert t[idx[:-1]] == prod_of_others(x, axis)[idx]


def test_reduce_prod_zeros_multi_axis_and_second_order():
    x = np.array([[[1.0, 2.0], [0.0, 3.0]], [[4.0, 0.0], [0.0, 5.0]], [[2.0, -1.0], [1.0, 3.0]]])
    g = unary(P.reduce_prod, x.shape, axes=(0, 2))
    _, grad = run(vjp_graph(g), x, np.ones(2))
    flat = np.moveaxis(x, 1, 0).reshape(2, 6)
    want = np.moveaxis(prod_of_others(flat, 1).reshape(2, 3, 2), 0, 1)
    np.testing.assert_array_equal(grad, want)
    # Hessian of prod(x) (one group): d2/dxi dxj = prod of all but i and j, exact with zeros
    v = np.array([2.0, 0.0, 3.0, 0.5])
    h = unary(P.reduce_prod, (4,), axes=(0,))
    hess = np.array([run(jvp_graph(vjp_graph(h)), v, 1.0, e, 0.0)[-1] for e in np.eye(4)])
    want = np.array(
        [[0.0 if i == j else np.prod(np.delete(v, [i, j])) for j in range(4)] for i in range(4)]
    )
    np.testing.assert_array_equal(hess, want)


@pytest.mark.parametrize("prim", [P.reduce_max, P.reduce_min])
def test_reduce_extreme_ties_split_evenly(prim):
    sign = 1.0 if prim is P.reduce_max else -1.0
    x = sign * np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, -1.0], [0.0, 1.0, 2.0, 4.0]])
    g = unary(prim, x.shape, axes=(1,))
    _, grad = run(vjp_graph(g), x, np.array([1.0, 3.0, 2.0]))
    want = np.array([[0, 0.5, 0.5, 0], [1, 1, 1, 0], [0, 0, 0, 2.0]])
    np.testing.assert_array_equal(grad, want)
    t = np.array([[10.0, 1.0, 2.0, 100.0], [3.0, 6.0, 9.0, 100.0], [1.0, 1.0, 1.0, 7.0]])
    _, tan = run(jvp_graph(g), x, t)
    np.testing.assert_array_equal(tan, [1.5, 6.0, 7.0])
    # all four elements tied over both axes
    g2 = unary(prim, (2, 2), axes=(0, 1))
    np.testing.assert_array_equal(
        run(vjp_graph(g2), np.ones((2, 2)), 1.0)[1], np.full((2, 2), 0.25)
    )


@pytest.mark.parametrize("prim", [P.reduce_max, P.reduce_min])
def test_reduce_extreme_nan_and_inf(prim):
    # NaN extreme: the gradient is split among the NaN elements (documented in reduce.py)
    x = np.array([[1.0, np.nan, 3.0, np.nan], [np.inf, 1.0, np.inf, -np.inf]])
    if prim is P.reduce_min:
        x[1] = -x[1]
    g = unary(prim, x.shape, axes=(1,))
    _, grad = run(vjp_graph(g), x, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(grad, [[0, 0.5, 0, 0.5], [0.5, 0, 0.5, 0]])
    # a NaN or inf tangent elsewhere stays out of the result
    t = np.array([[np.nan, 2.0, np.inf, 4.0], [1.0, np.nan, 3.0, np.inf]])
    _, tan = run(jvp_graph(g), x, t)
    np.testing.assert_array_equal(tan, [3.0, 2.0])


def test_reduce_extreme_signed_zero_tie():
    g = unary(P.reduce_max, (2,), axes=(0,))
    _, grad = run(vjp_graph(g), np.array([0.0, -0.0]), 1.0)
    np.testing.assert_array_equal(grad, [0.5, 0.5])


F32_CASES = {
    "sum": (P.reduce_sum, {"axes": (1,)}),
    "prod": (P.reduce_prod, {"axes": (0, 1)}),
    "max": (P.reduce_max, {"axes": (1,)}),
    "min": (P.reduce_min, {"axes": (0,)}),
    "cumsum": (P.cumsum, {"axis": 1, "reverse": False}),
    "cumprod": (P.cumprod, {"axis": 1, "reverse": True}),
    "dot": (P.dot_general, {"contracting": ((1,), (0,)), "batch": ((), ())}),
}


@pytest.mark.parametrize("case", sorted(F32_CASES))
def test_float32_derivatives_keep_dtype(case):
    # gradient dtype = input dtype; float32 values agree with the float64 rules
    prim, attrs = F32_CASES[case]
    shapes = [(3, 4), (4, 2)] if prim is P.dot_general else [(3, 4)]
    rng = np.random.default_rng(1)
    xs = [distinct(rng, s) if "axes" in attrs else moderate(rng, s, zeros=1) for s in shapes]

    def build(dtype):
        ps = [param(i, s, dtype) for i, s in enumerate(shapes)]
        return Graph(ps, [prim(*ps, **attrs)])

    g32, g64 = build("float32"), build("float64")
    for transform in (jvp_graph, vjp_graph):
        d32, d64 = transform(g32), transform(g64)
        extra = [rng.normal(size=p.shape) for p in d64.inputs[len(xs) :]]
        args = xs + extra
        got = run(d32, *[a.astype(np.float32) for a in args])
        want = run(d64, *args)
        for a, e in zip(got, want):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * scale(e))


@pytest.mark.parametrize("prim", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@given(data=st.data())
def test_reduction_batch(prim, dtype, data):
    shape = draw_shape(data, min_side=1)
    axes = draw_axes(data, len(shape))
    g = unary(prim, shape, dtype, axes=axes)
    size = data.draw(st.sampled_from([0, 1, 3]), label="size")
    d = draw_bdim(data, len(shape))
    rng = seed(data)
    args = batched_args(rng, g, [d], size, lambda s, dt: rand(rng, s, dt, special=True))
    bg = check_batch(g, args, [d], size)
    assert bg.count(prim.name) == 1


# -- arg-reductions and argsort (batch only) ------------------------------------------------
@pytest.mark.parametrize("prim", [P.argmax, P.argmin])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@given(data=st.data())
def test_arg_reduction_batch(prim, dtype, data):
    shape = draw_shape(data, min_rank=1, min_side=1)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    g = unary(prim, shape, dtype, axis=axis)
    size = data.draw(st.sampled_from([0, 1, 3]), label="size")
    d = draw_bdim(data, len(shape))
    rng = seed(data)
    args = batched_args(rng, g, [d], size, lambda s, dt: rand(rng, s, dt, special=True))
    assert check_batch(g, args, [d], size).count(prim.name) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@given(data=st.data())
def test_argsort_batch(dtype, data):
    shape = draw_shape(data, min_rank=1)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    descending = data.draw(st.booleans(), label="descending")
    g = unary(P.argsort, shape, dtype, axis=axis, descending=descending)
    size = data.draw(st.sampled_from([0, 1, 3]), label="size")
    d = draw_bdim(data, len(shape))
    rng = seed(data)
    args = batched_args(rng, g, [d], size, lambda s, dt: rand(rng, s, dt, special=True))
    assert check_batch(g, args, [d], size).count("argsort") == 1


@pytest.mark.parametrize("prim", [P.argmax, P.argmin, P.argsort])
def test_index_results_are_not_differentiated(prim):
    attrs = {"axis": 1, "descending": False} if prim is P.argsort else {"axis": 1}
    g = unary(prim, (2, 3), **attrs)
    x = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    out, tan = run(jvp_graph(g), x, np.ones((2, 3)))
    assert tan.dtype == np.int64 and not np.any(tan)
    out, ct = run(vjp_graph(g), x, np.ones(out.shape, np.int64))
    assert ct.dtype == np.float64 and not np.any(ct)


def test_sort_differentiates_through_its_permutation():
    # sort(x) = gather(x, argsort(x)): the gradient follows the permutation
    x = param(0, (5,))
    idx = P.reshape(P.argsort(x, axis=0, descending=False), shape=(5, 1))
    g = Graph([x], [P.mul(P.gather(x, idx), P.const(np.arange(1.0, 6.0)))])
    v = np.array([0.3, -1.0, 2.0, 0.1, 5.0])
    rng = np.random.default_rng(0)
    check_derivatives(g, [v], rng)
    _, grad = run(vjp_graph(g), v, np.ones(5))
    np.testing.assert_array_equal(grad, [3.0, 1.0, 4.0, 2.0, 5.0])


# -- scans ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True])
@given(data=st.data())
def test_cumsum_derivatives(reverse, data):
    shape = draw_shape(data, min_rank=1, max_side=5)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    g = unary(P.cumsum, shape, axis=axis, reverse=reverse)
    rng = seed(data)
    check_derivatives(g, [rng.normal(size=shape)], rng)


@pytest.mark.parametrize("reverse", [False, True])
@given(data=st.data())
def test_cumprod_derivatives(reverse, data):
    shape = draw_shape(data, min_rank=1, max_side=6)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    g = unary(P.cumprod, shape, axis=axis, reverse=reverse)
    rng = seed(data)
    zeros = data.draw(st.integers(0, 2), label="zeros")
    check_derivatives(g, [moderate(rng, shape, zeros)], rng)


def cumprod_jacobian(x, reverse):
    """d y_i / d x_j = prod over the scanned range of i, without j (zero outside it)."""
    n = len(x)
    jac = np.zeros((n, n))
    for i in range(n):
        rng = range(i, n) if reverse else range(i + 1)
        for j in rng:
            jac[i, j] = np.prod([x[k] for k in rng if k != j])
    return jac


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "x",
    [
        [2.0, 0.0, 3.0, 4.0, -1.5],
        [0.0, 0.0, 2.0, 5.0, 1.0, 3.0, -2.0],
        [1.5, 2.0, 3.0, 0.0],
        [0.0],
        [3.0],
        [2.0, -1.0, 0.5, 4.0, 1.5, 2.5, -3.0, 0.25, 1.0],
    ],
)
def test_cumprod_zeros_exact(reverse, x):
    x = np.array(x)
    n = len(x)
    g = unary(P.cumprod, (n,), axis=0, reverse=reverse)
    jac = cumprod_jacobian(x, reverse)
    rows = np.array([run(vjp_graph(g), x, e)[1] for e in np.eye(n)])
    cols = np.array([run(jvp_graph(g), x, e)[1] for e in np.eye(n)]).T
    np.testing.assert_allclose(rows, jac, rtol=1e-14, atol=0)
    np.testing.assert_allclose(cols, jac, rtol=1e-14, atol=0)
    assert np.all((rows == 0) == (jac == 0))  # exact zeros where the product has a zero


@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_inf_stays_where_it_belongs(reverse):
    # The scan never multiplies by a padding value: the first output (last when reverse), which
    # nothing precedes, keeps its exact tangent 1 next to an inf (0 * inf would make it NaN).
    g = unary(P.cumprod, (3,), axis=0, reverse=reverse)
    x = np.array([np.inf, 2.0, 3.0])
    e = np.array([1.0, 0.0, 0.0])
    if reverse:
        x, e = x[::-1].copy(), e[::-1].copy()
    tan = run(jvp_graph(g), x, e)[1]
    assert tan[-1 if reverse else 0] == 1.0
    ct = run(vjp_graph(g), x, e)[1]
    assert ct[-1 if reverse else 0] == 1.0


def test_cumprod_rules_are_not_quadratic():
    # the tangent is a log-depth scan: O(log n) nodes, no (n, n) intermediate
    g = unary(P.cumprod, (1000,), axis=0, reverse=False)
    for d in (jvp_graph(g), vjp_graph(g)):
        assert len(d.nodes()) < 200
        assert max(n.type.size for n in d.nodes()) <= 1000


@pytest.mark.parametrize("prim", [P.cumsum, P.cumprod])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@given(data=st.data())
def test_scan_batch(prim, dtype, data):
    shape = draw_shape(data, min_rank=1)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    g = unary(prim, shape, dtype, axis=axis, reverse=data.draw(st.booleans(), label="reverse"))
    size = data.draw(st.sampled_from([0, 1, 3]), label="size")
    d = draw_bdim(data, len(shape))
    rng = seed(data)
    args = batched_args(rng, g, [d], size, lambda s, dt: rand(rng, s, dt, special=True))
    assert check_batch(g, args, [d], size).count(prim.name) == 1


@pytest.mark.parametrize("case", ["sum", "prod", "max", "min", "cumsum", "cumprod", "rcumprod"])
@pytest.mark.parametrize("size", [0, 1, 3])
def test_vmap_of_derivatives(case, size):
    # the rules' own graphs batch too (vmap of jvp and of vjp, batch axis 1 and None)
    prim, attrs = {
        "sum": (P.reduce_sum, {"axes": (0, 2)}),
        "prod": (P.reduce_prod, {"axes": (1, 2)}),
        "max": (P.reduce_max, {"axes": (1,)}),
        "min": (P.reduce_min, {"axes": (0, 2)}),
        "cumsum": (P.cumsum, {"axis": 1, "reverse": True}),
        "cumprod": (P.cumprod, {"axis": 2, "reverse": False}),
        "rcumprod": (P.cumprod, {"axis": 1, "reverse": True}),
    }[case]
    rng = np.random.default_rng(size)
    g = unary(prim, (2, 3, 5), **attrs)
    for d in (jvp_graph(g), vjp_graph(g)):
        dims = [1] + [None if i % 2 else -1 for i in range(len(d.inputs) - 1)]

        def make(s, dt):
            return moderate(rng, s, zeros=2)

        check_batch(d, batched_args(rng, d, dims, size, make), dims, size)


# -- dot_general ----------------------------------------------------------------------------
def draw_dot(data):
    """Random operand shapes and dimension numbers: batch, contracting and free dims in random
    positions and pairings (no contracting dims = outer product, several batch dims)."""
    nb, nc, nlf, nrf = (data.draw(st.integers(0, 2), label=k) for k in ("nb", "nc", "nlf", "nrf"))
    sizes = {
        k: [data.draw(st.integers(1, 3)) for _ in range(m)]
        for k, m in (("b", nb), ("c", nc), ("l", nlf), ("r", nrf))
    }
    lroles = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)]
    rroles = list(lroles)
    lroles += [("l", i) for i in range(nlf)]
    rroles += [("r", i) for i in range(nrf)]
    lroles = data.draw(st.permutations(lroles), label="lhs dims")
    rroles = data.draw(st.permutations(rroles), label="rhs dims")
    lshape = tuple(sizes[k][i] for k, i in lroles)
    rshape = tuple(sizes[k][i] for k, i in rroles)
    bpairs = data.draw(st.permutations(range(nb)), label="batch order")
    cpairs = data.draw(st.permutations(range(nc)), label="contract order")
    lb = tuple(lroles.index(("b", i)) for i in bpairs)
    rb = tuple(rroles.index(("b", i)) for i in bpairs)
    lc = tuple(lroles.index(("c", i)) for i in cpairs)
    rc = tuple(rroles.index(("c", i)) for i in cpairs)
    return lshape, rshape, {"contracting": (lc, rc), "batch": (lb, rb)}


def dot_graph(lshape, rshape, attrs, dtype="float64"):
    a, b = param(0, lshape, dtype), param(1, rshape, dtype)
    return Graph([a, b], [P.dot_general(a, b, **attrs)], "dot_general")


def test_dot_general_vjp_matches_einsum():
    # a hand example with the batch dim in different places and a transposed result layout
    g = dot_graph((2, 3, 4), (4, 2, 5), {"contracting": ((2,), (0,)), "batch": ((0,), (1,))})
    rng = np.random.default_rng(0)
    a, b, ct = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2, 5)), rng.normal(size=(2, 3, 5))
    out, ta, tb = run(vjp_graph(g), a, b, ct)
    np.testing.assert_allclose(out, np.einsum("bik,kbj->bij", a, b), rtol=1e-12)
    np.testing.assert_allclose(ta, np.einsum("bij,kbj->bik", ct, b), rtol=1e-12)
    np.testing.assert_allclose(tb, np.einsum("bij,bik->kbj", ct, a), rtol=1e-12)


@given(st.data())
def test_dot_general_derivatives(data):
    lshape, rshape, attrs = draw_dot(data)
    g = dot_graph(lshape, rshape, attrs)
    rng = seed(data)
    check_derivatives(g, [rng.normal(size=lshape), rng.normal(size=rshape)], rng)


def test_dot_general_one_operand_constant():
    # a tangent for one operand only (the other has none) and int operands (no cotangent)
    a = param(0, (3, 4))
    w = P.const(np.arange(8.0).reshape(4, 2))
    g = Graph([a], [P.dot_general(a, w, contracting=((1,), (0,)), batch=((), ()))])
    rng = np.random.default_rng(3)
    check_derivatives(g, [rng.normal(size=(3, 4))], rng)
    ai, bi = param(0, (2, 3), "int32"), param(1, (3,), "int32")
    gi = Graph([ai, bi], [P.dot_general(ai, bi, contracting=((1,), (0,)), batch=((), ()))])
    assert len(vjp_graph(gi).outputs) == 1  # no float inputs: no cotangents


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@given(data=st.data())
def test_dot_general_batch(dtype, data):
    lshape, rshape, attrs = draw_dot(data)
    g = dot_graph(lshape, rshape, attrs, dtype)
    dims = [draw_bdim(data, len(lshape), True), draw_bdim(data, len(rshape), True)]
    if dims == [None, None]:
        dims[data.draw(st.integers(0, 1), label="which")] = 0
    size = data.draw(st.sampled_from([0, 1, 3]), label="size")
    rng = seed(data)
    args = batched_args(rng, g, dims, size, lambda s, dt: rand(rng, s, dt))
    assert check_batch(g, args, dims, size).count("dot_general") == 1  # one dot, no loop


@given(st.data())
def test_dot_general_vmap_of_vjp(data):
    lshape, rshape, attrs = draw_dot(data)
    d = vjp_graph(dot_graph(lshape, rshape, attrs))
    dims = [draw_bdim(data, p.ndim, True) for p in d.inputs]
    if all(x is None for x in dims):
        dims[0] = 0
    size = data.draw(st.sampled_from([0, 1, 2]), label="size")
    rng = seed(data)
    check_batch(d, batched_args(rng, d, dims, size, lambda s, dt: rng.normal(size=s)), dims, size)
