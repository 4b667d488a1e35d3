"""Transform rules (jvp, vjp, batch) of the structure primitives, one focused check per rule.

Every primitive with inputs in ``ir/primitives/structure.py`` (broadcast_in_dim, reshape,
transpose, slice, rev, pad, concatenate, gather, scatter_add) is drawn with random attributes and
shapes (size-0 and size-1 dims included) and checked:

- derivatives: the jvp against central finite differences, the vjp against them through the
  projection identity ``<w, J u> == <J^T w, u>``, and the same two checks on the jvp and vjp
  graphs themselves (second order: jvp of vjp, vjp of vjp, jvp of jvp, vjp of jvp). The graph
  is ``y = prim(...)`` with outputs ``y`` and ``y * y`` so the second order is not trivially 0;
- batching: ``batch_graph`` against a loop of ``evaluate`` over the examples, for random in_dims
  (None, negative), batch sizes 0 to 3, float32/float64/int32/bool operands, and every
  batched/unbatched combination of the inputs, with one application of the primitive.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mlc.ir import Graph, evaluate, toposort, verify
from mlc.ir import primitives as P
from mlc.ir.passes.autodiff import jvp_graph, vjp_graph
from mlc.ir.passes.batching import batch_graph, batch_nodes

EPS = 1e-6
INDEX_DTYPES = ["int32", "int64"]
BATCH_DTYPES = ["float32", "float64", "int32", "bool"]


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


# -- cases: (name, make, specs) -------------------------------------------------------------
# ``specs`` lists the inputs in order: ("x", shape) for a data operand (float in derivative
# checks, any dtype in batching checks), ("index", shape, dtype, lo, hi) for integer indices
# drawn per column (last axis) from [lo, hi]. ``make(*nodes)`` applies the primitive.
@st.composite
def broadcast_case(draw):
    xs = draw(shapes())
    rank = draw(st.integers(len(xs), len(xs) + 2))
    dims = tuple(sorted(draw(st.permutations(range(rank)))[: len(xs)]))
    out = [draw(st.integers(0, 3)) for _ in range(rank)]
    for i, d in enumerate(dims):
        out[d] = draw(st.integers(0, 3)) if xs[i] == 1 else xs[i]
    shape = tuple(out)
    return "broadcast_in_dim", lambda x: P.broadcast_in_dim(x, shape=shape, dims=dims), [("x", xs)]


def _grouping(draw, factors):
    """A shape whose dims are products of consecutive runs of ``factors``, with 1s sprinkled."""
    cuts = sorted(
        draw(st.sets(st.integers(1, max(1, len(factors) - 1)))) if len(factors) > 1 else []
    )
    bounds = [0, *cuts, len(factors)]
    dims = [int(np.prod(factors[a:b])) for a, b in zip(bounds, bounds[1:]) if a < b]
    for _ in range(draw(st.integers(0, 1))):
        dims.insert(draw(st.integers(0, len(dims))), 1)
    return tuple(dims)


@st.composite
def reshape_case(draw):
    factors = draw(st.lists(st.integers(1, 3), max_size=4))
    if draw(st.integers(0, 4)) == 0:
        factors.insert(draw(st.integers(0, len(factors))), 0)
    xs, shape = _grouping(draw, factors), _grouping(draw, factors)
    if 0 in factors and 0 not in xs + shape:  # keep the zero where the grouping dropped it
        xs, shape = xs + (0,), shape + (0,)
    return "reshape", lambda x: P.reshape(x, shape=shape), [("x", xs)]


@st.composite
def transpose_case(draw):
    xs = draw(shapes(max_dims=4))
    perm = tuple(draw(st.permutations(range(len(xs)))))
    return "transpose", lambda x: P.transpose(x, perm=perm), [("x", xs)]


@st.composite
def slice_case(draw):
    xs = draw(shapes(max_side=5))
    start, limit, stride = [], [], []
    for n in xs:
        lo = draw(st.integers(0, n))
        start.append(lo)
        limit.append(draw(st.integers(lo, n)))
        stride.append(draw(st.integers(1, 3)))
    attrs = dict(start=tuple(start), limit=tuple(limit), stride=tuple(stride))
    return "slice", lambda x: P.slice(x, **attrs), [("x", xs)]


@st.composite
def rev_case(draw):
    xs = draw(shapes())
    axes = tuple(draw(st.permutations(range(len(xs))))[: draw(st.integers(0, len(xs)))])
    return "rev", lambda x: P.rev(x, axes=axes), [("x", xs)]


@st.composite
def pad_case(draw):
    xs = draw(shapes())
    low, high, interior = (tuple(draw(st.integers(0, 2)) for _ in xs) for _ in range(3))
    attrs = dict(low=low, high=high, interior=interior)
    return "pad", lambda x, v: P.pad(x, v, **attrs), [("x", xs), ("x", ())]


@st.composite
def concatenate_case(draw):
    base = list(draw(shapes(min_dims=1)))
    axis = draw(st.integers(0, len(base) - 1))
    specs = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(base)
        s[axis] = draw(st.integers(0, 3))
        specs.append(("x", tuple(s)))
    return "concatenate", lambda *xs: P.concatenate(*xs, axis=axis), specs


def _index_spec(draw, xs):
    """Indices of shape I + (k,) into ``xs``, wrapping and clamping values included."""
    k = draw(st.integers(0, len(xs)))
    batch = draw(shapes(max_dims=2))
    dtype = draw(st.sampled_from(INDEX_DTYPES))
    lo = np.array([-n - 2 for n in xs[:k]], dtype=np.int64)
    hi = np.array([n + 2 for n in xs[:k]], dtype=np.int64)
    return ("index", batch + (k,), dtype, lo, hi), batch + tuple(xs[k:])


@st.composite
def gather_case(draw):
    xs = draw(shapes(min_side=1) if draw(st.integers(0, 5)) else shapes())
    index, _ = _index_spec(draw, xs)
    return "gather", lambda x, i: P.gather(x, i), [("x", xs), index]


@st.composite
def scatter_case(draw):
    xs = draw(shapes(min_side=1) if draw(st.integers(0, 5)) else shapes())
    index, updates = _index_spec(draw, xs)
    return "scatter_add", lambda x, i, u: P.scatter_add(x, i, u), [("x", xs), index, ("x", updates)]


CASES = {
    "broadcast_in_dim": broadcast_case(),
    "reshape": reshape_case(),
    "transpose": transpose_case(),
    "slice": slice_case(),
    "rev": rev_case(),
    "pad": pad_case(),
    "concatenate": concatenate_case(),
    "gather": gather_case(),
    "scatter_add": scatter_case(),
}


def sample(spec, rng, dtype="float64", batch=None):
    """An array for ``spec``; ``batch=(size, axis)`` inserts a batch axis of independent draws."""
    size, axis = batch if batch is not None else (None, None)
    lead = () if size is None else (size,)
    if spec[0] == "index":
        _, shape, idtype, lo, hi = spec
        a = rng.integers(lo, hi + 1, size=lead + shape).astype(idtype)
    elif dtype == "bool":
        a = rng.random(lead + spec[1]) < 0.5
    elif np.dtype(dtype).kind == "i":
        a = rng.integers(-5, 6, size=lead + spec[1]).astype(dtype)
    else:
        a = rng.standard_normal(lead + spec[1]).astype(dtype)
    return a if size is None else np.moveaxis(a, 0, axis)


def param(i, shape, dtype):
    return P.param(index=i, shape=tuple(shape), dtype=np.dtype(dtype).name)


# -- derivative checks ----------------------------------------------------------------------
def differentiable_graph(name, make, specs, rng):
    """``x -> (y, y * y)`` with ``y = prim(...)``: data operands are float64 params, indices are
    constants. Returns the graph and its float64 arguments."""
    nodes, args = [], []
    for spec in specs:
        if spec[0] == "index":
            nodes.append(P.const(sample(spec, rng)))
        else:
            nodes.append(param(len(args), spec[1], "float64"))
            args.append(sample(spec, rng))
    y = make(*nodes)
    assert y.op == name
    return Graph([n for n in nodes if n.op == "param"], [y, P.mul(y, y)]), args


def check_first_order(g, args, rng):
    """jvp against central differences, vjp against them by projection; returns the
    (jvp graph, its arguments) and (vjp graph, its arguments) for the next order."""
    verify(g)
    outs = evaluate(g, *args)
    us = [rng.standard_normal(a.shape) for a in args]
    ws = [rng.standard_normal(o.shape) for o in g.outputs]
    plus = evaluate(g, *[a + EPS * u for a, u in zip(args, us)])
    minus = evaluate(g, *[a - EPS * u for a, u in zip(args, us)])
    fd = [(p - m) / (2 * EPS) for p, m in zip(plus, minus)]

    jg = jvp_graph(g)
    verify(jg)
    res = evaluate(jg, *args, *us)
    for got, want in zip(res, outs):
        np.testing.assert_array_equal(got, want)
    for t, f in zip(res[len(outs) :], fd):
        assert t.shape == f.shape and t.dtype == np.float64
        np.testing.assert_allclose(t, f, rtol=1e-6, atol=1e-7 * (1 + np.abs(f).max(initial=0)))

    vg = vjp_graph(g)
    verify(vg)
    res = evaluate(vg, *args, *ws)
    cts = res[len(outs) :]
    for c, a in zip(cts, args):
        assert c.shape == a.shape and c.dtype == np.float64
    lhs = sum(np.vdot(w, f) for w, f in zip(ws, fd))
    rhs = sum(np.vdot(c, u) for c, u in zip(cts, us))
    scale = 1 + sum(np.abs(w).sum() * np.abs(f).max(initial=0) for w, f in zip(ws, fd))
    np.testing.assert_allclose(rhs, lhs, rtol=1e-6, atol=1e-7 * scale)
    return (jg, [*args, *us]), (vg, [*args, *ws])


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_derivatives_first_and_second_order(name, data):
    name_, make, specs = data.draw(CASES[name])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    g, args = differentiable_graph(name_, make, specs, rng)
    (jg, jargs), (vg, vargs) = check_first_order(g, args, rng)
    check_first_order(jg, jargs, rng)  # jvp of jvp, vjp of jvp
    check_first_order(vg, vargs, rng)  # jvp of vjp, vjp of vjp


def test_pad_value_cotangent_ignores_inf_at_operand_positions():
    """The value's cotangent sums ct over the padding only: an inf landing on x's positions must
    not make it inf - inf = NaN."""
    x, v = param(0, (3,), "float64"), param(1, (), "float64")
    g = Graph([x, v], [P.pad(x, v, low=(1,), high=(1,), interior=(1,))])
    ct = np.array([1.0, np.inf, 2.0, 3.0, 4.0, 5.0, 6.0])
    _, ct_x, ct_v = evaluate(vjp_graph(g), np.zeros(3), np.float64(0), ct)
    np.testing.assert_array_equal(ct_x, [np.inf, 3.0, 5.0])
    assert ct_v == 1.0 + 2.0 + 4.0 + 6.0


def test_gather_cotangent_accumulates_repeated_and_clamped_indices():
    x = param(0, (4,), "float64")
    idx = P.const(np.array([[1], [1], [-1], [9], [-9]], np.int32))  # 1, 1, 3, 3 (clamp), 0
    g = Graph([x], [P.gather(x, idx)])
    _, ct = evaluate(vjp_graph(g), np.zeros(4), np.array([1.0, 2.0, 4.0, 8.0, 16.0]))
    np.testing.assert_array_equal(ct, [16.0, 3.0, 0.0, 12.0])


def test_slice_cotangent_places_elements_back():
    x = param(0, (7,), "float64")
    g = Graph([x], [P.slice(x, start=(1,), limit=(6,), stride=(2,))])  # elements 1, 3, 5
    _, ct = evaluate(vjp_graph(g), np.zeros(7), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(ct, [0, 1, 0, 2, 0, 3, 0])


def test_jvp_with_one_zero_tangent():
    """Multi-input rules instantiate a symbolic-zero tangent (wrt picks one input)."""
    x, v = param(0, (2,), "float64"), param(1, (), "float64")
    g = Graph([x, v], [P.pad(x, v, low=(1,), high=(0,), interior=(0,))])
    _, t = evaluate(jvp_graph(g, wrt=[1]), np.ones(2), np.float64(5), np.float64(2))
    np.testing.assert_array_equal(t, [2.0, 0.0, 0.0])
    _, t = evaluate(jvp_graph(g, wrt=[0]), np.ones(2), np.float64(5), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(t, [0.0, 3.0, 4.0])
    a, b = param(0, (2,), "float64"), param(1, (1,), "float64")
    g = Graph([a, b], [P.concatenate(a, b, axis=0)])
    _, t = evaluate(jvp_graph(g, wrt=[1]), np.ones(2), np.ones(1), np.array([7.0]))
    np.testing.assert_array_equal(t, [0.0, 0.0, 7.0])
    x, u = param(0, (3,), "float64"), param(1, (2,), "float64")
    idx = P.const(np.array([[0], [2]]))
    g = Graph([x, u], [P.scatter_add(x, idx, u)])
    _, t = evaluate(jvp_graph(g, wrt=[0]), np.ones(3), np.ones(2), np.array([1.0, 2, 3]))
    np.testing.assert_array_equal(t, [1.0, 2.0, 3.0])
    _, t = evaluate(jvp_graph(g, wrt=[1]), np.ones(3), np.ones(2), np.array([5.0, 6.0]))
    np.testing.assert_array_equal(t, [5.0, 0.0, 6.0])


# -- batching checks ------------------------------------------------------------------------
def batched_graph_case(name, make, specs, dtype):
    nodes = []
    for i, spec in enumerate(specs):
        nodes.append(param(i, spec[1], spec[2] if spec[0] == "index" else dtype))
    y = make(*nodes)
    assert y.op == name
    return Graph(nodes, [y])


def loop_reference(g, arrays, in_dims, size):
    """``g`` evaluated example by example and stacked on axis 0 (the ground truth)."""
    results = []
    for b in range(size):
        args = [a if d is None else np.take(a, b, axis=d) for a, d in zip(arrays, in_dims)]
        results.append(evaluate(g, *args)[0])
    out = g.outputs[0]
    return np.stack(results) if size else np.zeros((0,) + out.shape, out.dtype)


def check_batch(g, specs, in_dims, size, dtype, rng):
    arrays = []
    for spec, p, d in zip(specs, g.inputs, in_dims):
        batch = None if d is None else (size, d if d >= 0 else d + p.ndim + 1)
        arrays.append(sample(spec, rng, dtype, batch))
    bg = batch_graph(g, in_dims, size)
    verify(bg)
    (got,) = evaluate(bg, *arrays)
    want = loop_reference(g, arrays, in_dims, size)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    return bg


def in_dims_strategy(specs):
    """One in_dim per input (None, or an axis counted from either end), not all None."""

    def one(spec):
        r = len(spec[1])
        return st.one_of(st.none(), st.integers(-(r + 1), r))

    return st.tuples(*[one(s) for s in specs]).filter(lambda ds: any(d is not None for d in ds))


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_batching_matches_loop(name, data):
    name_, make, specs = data.draw(CASES[name])
    dtype = data.draw(st.sampled_from(BATCH_DTYPES))
    in_dims = data.draw(in_dims_strategy(specs))
    size = data.draw(st.sampled_from([0, 1, 2, 3]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    g = batched_graph_case(name_, make, specs, dtype)
    bg = check_batch(g, specs, in_dims, size, dtype, rng)
    # The rule made one batched application (a batched pad value adds one constant mask pad).
    env = {}
    for p, q, d in zip(g.inputs, bg.inputs, in_dims):
        env[id(p)] = (q, None if d is None else d % (p.ndim + 1))
    ((out, _),) = batch_nodes(g.outputs, env)
    extra = 1 if name == "pad" and in_dims[1] is not None else 0
    assert sum(n.op == name for n in toposort([out])) == 1 + extra


# Every batched/unbatched combination of the multi-input primitives, at both ends of the axes.
COMBOS = [
    ("pad", (0, None)),
    ("pad", (None, 0)),
    ("pad", (-1, 0)),
    ("concatenate", (0, None, -1)),
    ("concatenate", (None, None, 1)),
    ("concatenate", (-1, 0, 0)),
    ("gather", (0, None)),
    ("gather", (-1, None)),
    ("gather", (None, 0)),
    ("gather", (None, -1)),
    ("gather", (1, 1)),
    ("gather", (-1, -1)),
    ("scatter_add", (0, None, None)),
    ("scatter_add", (None, 0, None)),
    ("scatter_add", (None, None, 0)),
    ("scatter_add", (-1, None, -1)),
    ("scatter_add", (None, -1, 1)),
    ("scatter_add", (2, 0, None)),
    ("scatter_add", (0, -1, -1)),
]


def combo_case(name, rng):
    x = ("x", (3, 2))
    index = ("index", (4, 1), "int32", np.array([-5]), np.array([5]))
    if name == "pad":
        return lambda a, v: P.pad(a, v, low=(1, 0), high=(0, 2), interior=(1, 1)), [x, ("x", ())]
    if name == "concatenate":
        specs = [("x", (3, 1)), ("x", (3, 0)), ("x", (3, 2))]
        return lambda *xs: P.concatenate(*xs, axis=1), specs
    if name == "gather":
        return lambda a, i: P.gather(a, i), [x, index]
    return lambda a, i, u: P.scatter_add(a, i, u), [x, index, ("x", (4, 2))]


@pytest.mark.parametrize("size", [0, 1, 3])
@pytest.mark.parametrize("name,in_dims", COMBOS)
def test_batching_combinations(name, in_dims, size):
    rng = np.random.default_rng(size)
    make, specs = combo_case(name, rng)
    for dtype in BATCH_DTYPES:
        g = batched_graph_case(name, make, specs, dtype)
        check_batch(g, specs, in_dims, size, dtype, rng)


def test_batch_rules_keep_the_operand_in_place():
    """Rules that can leave the batch axis where it is apply the primitive to the operand itself
    (no transpose first), and say where the batch axis went."""
    x = param(0, (2, 3), "float32")
    cases = [
        (P.broadcast_in_dim(x, shape=(4, 2, 5, 3), dims=(1, 3)), [1, 3, 4]),
        (P.transpose(x, perm=(1, 0)), [0, 1, 2]),
        (P.slice(x, start=(0, 1), limit=(2, 3), stride=(1, 2)), [0, 1, 2]),
        (P.rev(x, axes=(0,)), [0, 1, 2]),
        (P.pad(x, P.const(np.float32(0)), low=(1, 0), high=(0, 1), interior=(0, 2)), [0, 1, 2]),
    ]
    for y, out_dims in cases:
        for d, want in zip((0, 1, 2), out_dims):
            shape = list(x.shape)
            shape.insert(d, 4)
            xb = param(0, shape, "float32")
            inputs = (xb,) + y.inputs[1:]
            bdims = (d,) + (None,) * (len(inputs) - 1)
            out, od = y.prim.rules["batch"](inputs, bdims, **dict(y.attrs))
            assert out.op == y.op and out.inputs[0] is xb and od == want, (y.op, d)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_batching_of_derivative_graphs(name, data):
    """vmap of the vjp and jvp graphs (the rules' own outputs batch too)."""
    name_, make, specs = data.draw(CASES[name])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    size = data.draw(st.sampled_from([0, 1, 2]))
    g, args = differentiable_graph(name_, make, specs, rng)
    for h in (vjp_graph(g), jvp_graph(g)):
        dims = tuple(data.draw(st.sampled_from([None, 0, -1])) for _ in h.inputs)
        if all(d is None for d in dims):
            dims = (0,) + dims[1:]
        arrays = []
        for p, d in zip(h.inputs, dims):
            a = rng.standard_normal(((size,) if d is not None else ()) + p.shape)
            arrays.append(a if d is None else np.moveaxis(a, 0, d if d >= 0 else d + p.ndim + 1))
        bg = batch_graph(h, dims, size)
        verify(bg)
        got = evaluate(bg, *arrays)
        for k, out in enumerate(h.outputs):
            loop = Graph(h.inputs, [out])
            want = loop_reference(loop, arrays, dims, size)
            np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-12)
