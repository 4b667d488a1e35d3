"""Transform rules of the elementwise primitives (ir/primitives/elementwise.py).

- derivatives of every differentiable primitive against central finite differences in float64:
  forward (``jvp_graph``) elementwise, reverse (``vjp_graph``) by the projection identity
  ``<w, J u> == <J^T w, u>``, and second order by applying both checks again to the first-order
  graphs (forward-over-reverse, reverse-over-reverse, forward-over-forward, reverse-over-forward);
- the conventions: abs'(0) = 0, max/min ties split evenly, NaN in max/min takes the gradient,
  d/dx x**0 = 0 (also at x = 0), d/dy 0**y = 0, hypot'(origin) = 0, select's predicate and casts
  to or from non-floats carry no derivative, cotangents have their input's dtype;
- batching of every primitive (differentiable or not, every dtype it accepts) against a loop
  over the batch, with batch axes anywhere (None, negative, middle), batch sizes 0, 1 and 3.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlc.ir import Graph, evaluate
from mlc.ir import primitives as P
from mlc.ir.passes.autodiff import jvp_graph, vjp_graph
from mlc.ir.passes.batching import batch_graph
from mlc.ir.primitives import elementwise as E

F32, F64, I32, I64, BOOL = "float32", "float64", "int32", "int64", "bool"
SHAPE = (2, 3)
EPS = 1e-6


# -- graphs ---------------------------------------------------------------------------------
def graph_of(prim, dtypes, shape=SHAPE, **attrs) -> Graph:
    """One application of ``prim`` to fresh parameters of ``shape`` and ``dtypes``."""
    params = [P.param(index=i, shape=shape, dtype=d) for i, d in enumerate(dtypes)]
    return Graph(params, [prim(*params, **attrs)], prim.name)


def run(g, *args):
    return evaluate(g, *args)


# -- input domains (float64, away from singularities, branch cuts, ties and jumps) ------------
def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def away(lo, hi):
    """Values with lo <= |x| <= hi, either sign."""
    return lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)


def rem_args(rng, shape):
    # x / y stays away from integers, where np.remainder jumps
    y = away(0.5, 2)(rng, shape)
    x = (rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.9, shape)) * y
    return [x, y]


def untied(rng, shape):
    x = uniform(-2, 2)(rng, shape)
    return [x, x + away(0.1, 1)(rng, shape)]


def pred_args(rng, shape):
    return [rng.random(shape) < 0.5, uniform(-2, 2)(rng, shape), uniform(-2, 2)(rng, shape)]


def each(*gens):
    return lambda rng, shape: [gen(rng, shape) for gen in gens]


R = uniform(-2, 2)
DOMAINS = {
    "neg": each(R),
    "abs": each(away(0.1, 2)),
    "exp": each(R),
    "exp2": each(R),
    "expm1": each(R),
    "log": each(uniform(0.2, 3)),
    "log2": each(uniform(0.2, 3)),
    "log10": each(uniform(0.2, 3)),
    "log1p": each(uniform(-0.8, 3)),
    "sqrt": each(uniform(0.2, 3)),
    "cbrt": each(away(0.3, 2)),
    "sin": each(uniform(-3, 3)),
    "cos": each(uniform(-3, 3)),
    "tan": each(uniform(-1.2, 1.2)),
    "asin": each(uniform(-0.9, 0.9)),
    "acos": each(uniform(-0.9, 0.9)),
    "atan": each(uniform(-3, 3)),
    "sinh": each(R),
    "cosh": each(R),
    "tanh": each(R),
    "asinh": each(uniform(-3, 3)),
    "acosh": each(uniform(1.2, 4)),
    "atanh": each(uniform(-0.9, 0.9)),
    "add": each(R, R),
    "sub": each(R, R),
    "mul": each(R, R),
    "div": each(R, away(0.3, 2)),
    "rem": rem_args,
    "pow": each(uniform(0.3, 2), R),
    "max": untied,
    "min": untied,
    "atan2": each(away(0.3, 2), R),  # x1 away from 0: no crossing of the branch cut
    "hypot": each(away(0.2, 2), R),
    "select": pred_args,
}
INPUT_DTYPES = {"select": (BOOL, F64, F64)}


def diff_prims():
    """Every differentiable elementwise primitive (convert is checked on its own below)."""
    return sorted(
        p.name for p in vars(E).values() if isinstance(p, P.Primitive) and p.differentiable
    )


BY_NAME = {p.name: p for p in vars(E).values() if isinstance(p, P.Primitive)}
ALL_PRIMS = sorted(BY_NAME)


def arity(prim) -> int:
    """How many operands ``prim`` takes (its NumPy evaluation is a ufunc of that many)."""
    for n in (1, 2, 3):
        for d in (F64, BOOL):
            try:
                prim(*[P.param(index=i, shape=(), dtype=d) for i in range(n)])
                return n
            except TypeError:
                continue
    raise AssertionError(prim.name)


def test_every_differentiable_primitive_has_a_domain():
    assert set(diff_prims()) - {"convert"} == set(DOMAINS)


def test_every_primitive_has_its_rules():
    for name in ALL_PRIMS:
        prim = BY_NAME[name]
        assert "batch" in prim.rules, name
        if prim.differentiable:
            assert {"jvp", "vjp"} <= set(prim.rules), name


# -- finite-difference checks ---------------------------------------------------------------
def float_inputs(g):
    return [i for i, p in enumerate(g.inputs) if p.dtype.kind == "f"]


def close(actual, expected, scale, what):
    """Within 1e-6 relative, or a few ulps of the finite difference's round-off (~1e-10 of the
    function's values ``scale``)."""
    atol = 1e-7 * (1 + scale)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=atol, err_msg=what)


def check_derivatives(g: Graph, args, rng, label=""):
    """Check ``jvp_graph(g)`` and ``vjp_graph(g)`` at ``args`` against central differences.

    Returns the first-order graphs with the arguments they were checked at, so the caller can
    check them again (second order)."""
    args = [np.asarray(a) for a in args]
    wrt = float_inputs(g)
    us = [rng.standard_normal(args[i].shape) for i in wrt]
    n_out = len(g.outputs)

    def at(sign):
        moved = list(args)
        for i, u in zip(wrt, us):
            moved[i] = args[i] + sign * EPS * u
        return run(g, *moved)

    plus, minus = at(1), at(-1)
    fd = [(p - m) / (2 * EPS) for p, m in zip(plus, minus)]
    scale = max([float(np.max(np.abs(v), initial=0)) for v in plus + minus])
    outs = run(g, *args)

    # forward mode: J u, elementwise
    jg = jvp_graph(g)
    jres = run(jg, *args, *us)
    for k in range(n_out):
        np.testing.assert_array_equal(jres[k], outs[k])
        assert jres[n_out + k].dtype == outs[k].dtype
        close(jres[n_out + k], fd[k], scale, f"{label} jvp output {k}")

    # reverse mode: <J^T w, u> == <w, J u>
    ws = [rng.standard_normal(o.shape) for o in outs]
    vg = vjp_graph(g)
    vres = run(vg, *args, *ws)
    cts = vres[n_out:]
    assert len(cts) == len(wrt)
    for i, ct in zip(wrt, cts):
        assert ct.dtype == args[i].dtype and ct.shape == args[i].shape
    lhs = sum(float(np.sum(ct * u)) for ct, u in zip(cts, us))
    rhs = sum(float(np.sum(w * f)) for w, f in zip(ws, fd))
    size = sum(w.size for w in ws)
    close(lhs, rhs, scale * (1 + size), f"{label} vjp projection")
    return (jg, args + us), (vg, args + ws)


def check_two_orders(g, args, rng, label):
    (jg, jargs), (vg, vargs) = check_derivatives(g, args, rng, label)
    check_derivatives(vg, vargs, rng, label + " (vjp)")  # forward- and reverse-over-reverse
    check_derivatives(jg, jargs, rng, label + " (jvp)")  # forward- and reverse-over-forward


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_derivatives_against_finite_differences(name):
    prim = BY_NAME[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    args = DOMAINS[name](rng, SHAPE)
    dtypes = INPUT_DTYPES.get(name, (F64,) * len(args))
    check_two_orders(graph_of(prim, dtypes), args, rng, name)


@pytest.mark.parametrize("name", sorted(n for n in DOMAINS if arity(BY_NAME[n]) == 2))
def test_derivatives_of_a_repeated_operand(name):
    """f(x, x): both cotangents accumulate on one input (mul(x, x), pow(x, x), ...)."""
    prim = BY_NAME[name]
    rng = np.random.default_rng(7)
    x = P.param(index=0, shape=SHAPE, dtype=F64)
    lo = 1.2 if name in ("pow", "rem") else 0.5  # pow: x > 0; rem(x, x) = 0 (constant)
    args = [rng.uniform(lo, 2, SHAPE)]
    check_two_orders(Graph([x], [prim(x, x)]), args, rng, f"{name}(x, x)")


def test_pow_with_negative_base_and_integer_exponent():
    rng = np.random.default_rng(3)
    x = P.param(index=0, shape=SHAPE, dtype=F64)
    three = P.broadcast_in_dim(P.const(np.float64(3.0)), shape=SHAPE, dims=())
    g = Graph([x], [P.pow(x, three)])  # d/dx x^3 = 3 x^2 for negative x as well
    check_two_orders(g, [rng.uniform(-2, -0.3, SHAPE)], rng, "pow(x<0, 3)")


def test_composite_chain_to_third_order():
    """A small chain of rules, differentiated three times in reverse mode."""
    rng = np.random.default_rng(11)
    x, y = (P.param(index=i, shape=SHAPE, dtype=F64) for i in range(2))
    out = P.div(P.mul(P.tanh(x), P.exp(P.sin(y))), P.hypot(x, P.add(y, P.log1p(P.mul(x, x)))))
    g = Graph([x, y], [out])
    args = [rng.uniform(-1, 1, SHAPE), rng.uniform(-1, 1, SHAPE)]
    _, (vg, vargs) = check_derivatives(g, args, rng, "chain")
    _, (vvg, vvargs) = check_derivatives(vg, vargs, rng, "chain'")
    check_derivatives(vvg, vvargs, rng, "chain''")


# -- conventions ----------------------------------------------------------------------------
def grads(g, *args, cts=None):
    """The cotangents of every float input of ``g`` (one output), for output cotangent 1."""
    outs = run(g, *args)
    cts = [np.ones_like(o) for o in outs] if cts is None else cts
    return run(vjp_graph(g), *args, *cts)[len(outs) :]


def tangent(g, args, tangents):
    outs = run(g, *args)
    return run(jvp_graph(g), *args, *tangents)[len(outs)]


def test_abs_derivative_is_sign_and_zero_at_zero():
    x = np.array([0.0, -0.0, 2.0, -3.0])
    g = graph_of(E.abs, (F64,), shape=x.shape)
    np.testing.assert_array_equal(grads(g, x)[0], [0, 0, 1, -1])
    np.testing.assert_array_equal(tangent(g, [x], [np.full(4, 5.0)]), [0, 0, 5, -5])
    # d/dx of the cotangent sign(x) w: zero everywhere (the value's cotangent set to 0)
    second = grads(vjp_graph(g), x, np.ones(4), cts=[np.zeros(4), np.ones(4)])
    np.testing.assert_array_equal(second[0], np.zeros(4))


@pytest.mark.parametrize("prim", [E.max, E.min])
def test_max_min_ties_split_the_gradient_evenly(prim):
    x = np.array([1.0, 2.0, 3.0, -0.0, np.inf])
    y = np.array([1.0, 5.0, -1.0, 0.0, np.inf])
    g = graph_of(prim, (F64, F64), shape=x.shape)
    gx, gy = grads(g, x, y, cts=[np.full(5, 4.0)])
    x_wins = [2.0, 0.0, 4.0, 2.0, 2.0] if prim is E.max else [2.0, 4.0, 0.0, 2.0, 2.0]
    np.testing.assert_array_equal(gx, x_wins)
    np.testing.assert_array_equal(gx + gy, np.full(5, 4.0))  # nothing lost, nothing doubled
    t = tangent(g, [x, y], [np.full(5, 1.0), np.full(5, 3.0)])
    np.testing.assert_array_equal(t, (np.array(x_wins) * 1 + (4 - np.array(x_wins)) * 3) / 4)


@pytest.mark.parametrize("prim", [E.max, E.min])
def test_max_min_gradient_follows_the_nan_they_propagate(prim):
    x = np.array([np.nan, 1.0, np.nan])
    y = np.array([1.0, np.nan, np.nan])
    g = graph_of(prim, (F64, F64), shape=x.shape)
    gx, gy = grads(g, x, y)
    np.testing.assert_array_equal(gx, [1, 0, 1])  # NumPy returns the first NaN
    np.testing.assert_array_equal(gy, [0, 1, 0])


def test_pow_exponent_zero_has_zero_derivative_everywhere():
    x = np.array([0.0, -1.5, 2.0, 0.0])
    y = np.zeros(4)
    g = graph_of(E.pow, (F64, F64), shape=x.shape)
    gx, gy = grads(g, x, y)
    np.testing.assert_array_equal(gx, np.zeros(4))
    assert gy[2] == pytest.approx(np.log(2.0))
    assert gy[0] == 0 and gy[3] == 0  # d/dy 0^y := 0 (JAX's convention), finite
    # second derivatives stay finite as well (no 0 * inf from a discarded branch)
    hx, hy, _ = grads(vjp_graph(g), x, y, np.ones(4), cts=[np.ones(4)] * 3)
    assert np.isfinite(hx[[0, 2, 3]]).all() and np.isfinite(hy[[0, 2, 3]]).all()


def test_pow_at_zero_base():
    x = np.zeros(4)
    y = np.array([1.0, 2.0, 3.0, 0.5])
    g = graph_of(E.pow, (F64, F64), shape=x.shape)
    gx, gy = grads(g, x, y)
    np.testing.assert_array_equal(gx, [1, 0, 0, np.inf])  # y x^(y-1); sqrt has a vertical slope
    np.testing.assert_array_equal(gy, np.zeros(4))  # 0^y = 0 for every y > 0
    # d2/dx2 x^y at 0: 0 for y=1, 2 for y=2, 0 for y=3; the mixed partial x^(y-1) (1 + y ln x)
    # tends to 0 for y > 1 (at y = 1 it has no limit; the rules give a finite value)
    zeros, ones = np.zeros(4), np.ones(4)
    hx, hy, _ = grads(vjp_graph(g), x, y, ones, cts=[zeros, ones, zeros])
    np.testing.assert_array_equal(hx[:3], [0, 2, 0])
    np.testing.assert_array_equal(hy[1:3], [0, 0])
    assert np.isfinite(hy[:3]).all()


def test_hypot_at_the_origin_has_zero_derivative():
    z = np.zeros(2)
    g = graph_of(E.hypot, (F64, F64), shape=(2,))
    gx, gy = grads(g, z, z)
    np.testing.assert_array_equal(gx, [0, 0])
    np.testing.assert_array_equal(gy, [0, 0])
    # asinh'(x) = 1 / hypot(x, 1): its second order goes through hypot's rule
    g = graph_of(E.asinh, (F64,), shape=(2,))
    np.testing.assert_allclose(grads(g, z)[0], [1, 1])


def test_rem_derivatives():
    x = np.array([7.5, -7.5, 7.5])
    y = np.array([2.0, 2.0, -2.0])
    g = graph_of(E.rem, (F64, F64), shape=(3,))
    gx, gy = grads(g, x, y)
    np.testing.assert_array_equal(gx, [1, 1, 1])
    np.testing.assert_array_equal(gy, -np.floor_divide(x, y))  # [-3, 4, 4]


def test_select_predicate_gets_no_cotangent_and_branches_stay_separate():
    p = np.array([True, False, True])
    a = np.array([1.0, np.inf, 2.0])
    b = np.array([np.nan, 3.0, np.inf])
    g = graph_of(E.select, (BOOL, F64, F64), shape=(3,))
    ga, gb = grads(g, p, a, b, cts=[np.array([5.0, 6.0, 7.0])])  # no cotangent for p
    np.testing.assert_array_equal(ga, [5, 0, 7])
    np.testing.assert_array_equal(gb, [0, 6, 0])
    t = tangent(g, [p, a, b], [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])])
    np.testing.assert_array_equal(t, [1, 5, 3])
    pred = P.param(index=0, shape=(3,), dtype=BOOL)
    cts = E.select.rules["vjp"](pred, [pred, pred, pred], None)
    assert cts[0] is None


def test_sqrt_of_a_safe_value_keeps_nan_out_of_a_discarded_branch():
    """where(x > 0, sqrt(x), 0): the discarded branch's inf slope must not reach the gradient
    when the branch input is made safe too (the double-where pattern the rules rely on)."""
    x = P.param(index=0, shape=(3,), dtype=F64)
    pos = P.gt(x, P.broadcast_in_dim(P.const(np.float64(0)), shape=(3,), dims=()))
    one = P.broadcast_in_dim(P.const(np.float64(1)), shape=(3,), dims=())
    zero = P.broadcast_in_dim(P.const(np.float64(0)), shape=(3,), dims=())
    g = Graph([x], [P.select(pos, P.sqrt(P.select(pos, x, one)), zero)])
    (gx,) = grads(g, np.array([0.0, -1.0, 4.0]))
    np.testing.assert_array_equal(gx, [0, 0, 0.25])


def test_cotangents_have_their_inputs_dtype_and_none_for_non_floats():
    for name in diff_prims():
        prim = BY_NAME[name]
        if name == "convert":
            continue
        for dt in (F32, F64):
            dtypes = (BOOL, dt, dt) if name == "select" else (dt,) * arity(prim)
            g = graph_of(prim, dtypes)
            out = g.outputs[0]
            ct = P.param(index=9, shape=SHAPE, dtype=dt)
            cts = prim.rules["vjp"](ct, list(g.inputs), out)
            assert len(cts) == len(g.inputs), name
            for p, c in zip(g.inputs, cts):
                if p.dtype.kind != "f":
                    assert c is None, name
                elif c is not None:
                    assert c.type == p.type, (name, c.type, p.type)
            tans = [P.param(index=10 + i, shape=SHAPE, dtype=dt) for i in range(len(dtypes))]
            tans = [t if p.dtype.kind == "f" else None for t, p in zip(tans, g.inputs)]
            t = prim.rules["jvp"](list(g.inputs), tans, out)
            assert t.type == out.type, name


def test_integer_inputs_get_no_derivative():
    """An int operand cast to float (mul(x, float(i))): only x has a cotangent and a tangent."""
    x = P.param(index=0, shape=(3,), dtype=F64)
    i = P.param(index=1, shape=(3,), dtype=I32)
    g = Graph([x, i], [P.mul(x, P.convert(i, dtype=F64))])
    xs, iv = np.array([1.0, 2.0, 3.0]), np.array([4, -5, 6], np.int32)
    vres = run(vjp_graph(g), xs, iv, np.ones(3))
    assert len(vres) == 2  # output, d/dx only
    np.testing.assert_array_equal(vres[1], [4, -5, 6])
    jres = run(jvp_graph(g), xs, iv, np.array([1.0, 1.0, 2.0]))
    assert len(jres) == 2
    np.testing.assert_array_equal(jres[1], [4, -5, 12])


# -- convert --------------------------------------------------------------------------------
@pytest.mark.parametrize("src,dst", [(F32, F64), (F64, F32), (F64, F64), (F32, F32)])
def test_convert_between_floats_casts_tangents_and_cotangents(src, dst):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(SHAPE).astype(src)
    u = rng.standard_normal(SHAPE).astype(src)
    w = rng.standard_normal(SHAPE).astype(dst)
    g = graph_of(E.convert, (src,), dtype=dst)
    t = tangent(g, [x], [u])
    assert t.dtype == np.dtype(dst)
    np.testing.assert_array_equal(t, u.astype(dst))
    (ct,) = grads(g, x, cts=[w])
    assert ct.dtype == np.dtype(src)
    np.testing.assert_array_equal(ct, w.astype(src))
    # second order: a cast is linear, so its second derivative is 0
    h, hw = grads(vjp_graph(g), x, w, cts=[np.zeros(SHAPE, dst), np.ones(SHAPE, src)])
    np.testing.assert_array_equal(h, np.zeros(SHAPE, src))
    np.testing.assert_array_equal(hw, np.ones(SHAPE, dst))  # the cotangent map is the cast


def test_convert_float64_chain_against_finite_differences():
    rng = np.random.default_rng(6)
    x = P.param(index=0, shape=SHAPE, dtype=F64)
    g = Graph([x], [P.mul(P.convert(P.convert(x, dtype=F64), dtype=F64), P.sin(x))])
    check_two_orders(g, [rng.uniform(-2, 2, SHAPE)], rng, "convert")


@pytest.mark.parametrize("src,dst", [(F64, I32), (F64, BOOL), (I64, F64), (BOOL, F32)])
def test_convert_from_or_to_non_floats_has_no_derivative(src, dst):
    x = P.param(index=0, shape=(3,), dtype=src)
    out = P.convert(x, dtype=dst)
    ct = P.param(index=1, shape=(3,), dtype=dst)
    assert E.convert.rules["vjp"](ct, [x], out, dtype=dst) == (None,)
    if src == F64:  # to a non-float: the passes see no float result, so zero tangents
        t = P.param(index=1, shape=(3,), dtype=src)
        assert E.convert.rules["jvp"]([x], [t], out, dtype=dst) is None
        g = Graph([x], [out])
        res = run(jvp_graph(g), np.array([0.5, 1.5, -2.0]), np.ones(3))
        np.testing.assert_array_equal(res[1], np.zeros(3, dst))
        res = run(vjp_graph(g), np.array([0.5, 1.5, -2.0]), np.ones(3, dst))
        np.testing.assert_array_equal(res[1], np.zeros(3))
    else:  # from a non-float: nothing to differentiate
        g = Graph([x], [P.mul(out, out)])
        assert len(vjp_graph(g).outputs) == 1


# -- batching -------------------------------------------------------------------------------
def signatures(prim):
    """The input dtypes ``prim`` accepts (one tuple per case)."""
    name = prim.name
    if name == "select":
        return [(BOOL, d, d) for d in (F32, F64, I32, BOOL)]
    if name == "convert":
        return [(d,) for d in (F32, F64, I32, I64, BOOL)]
    n = arity(prim)
    out = []
    for d in (F32, F64, I32, I64, BOOL):
        try:
            prim(*[P.param(index=i, shape=(), dtype=d) for i in range(n)])
        except TypeError:
            continue
        out.append((d,) * n)
    return out


CASES = [(name, sig) for name in ALL_PRIMS for sig in signatures(BY_NAME[name])]


def test_batch_cases_cover_every_primitive_and_dtype_kind():
    assert {name for name, _ in CASES} == set(ALL_PRIMS)
    kinds = {np.dtype(d).kind for _, sig in CASES for d in sig}
    assert kinds == {"f", "i", "b"}


def values(rng, name, dtype, shape, index):
    """Random values of ``dtype``; floats include NaN, inf and -0.0."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind == "i":
        if name == "pow" and index == 1:
            return rng.integers(0, 4, shape).astype(dt)  # ints to negative powers raise
        return rng.integers(-6, 7, shape).astype(dt)
    x = rng.standard_normal(shape) * 3
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0])
    mask = rng.random(shape) < 0.2
    x = np.where(mask, rng.choice(special, shape), x)
    return x.astype(dt)


def loop_then_stack(g, per_example, size, out_shape, out_dtype):
    if size == 0:
        return np.zeros((0,) + out_shape, out_dtype)
    return np.stack([run(g, *args)[0] for args in per_example])


@st.composite
def batch_setup(draw, n_inputs, rank=None):
    rank = draw(st.integers(0, 2)) if rank is None else rank
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank)))
    size = draw(st.sampled_from([0, 1, 3]))
    dims = st.one_of(st.none(), st.integers(-(rank + 1), rank))
    in_dims = draw(st.lists(dims, min_size=n_inputs, max_size=n_inputs))
    if all(d is None for d in in_dims):
        in_dims[draw(st.integers(0, n_inputs - 1))] = draw(st.integers(-(rank + 1), rank))
    out_dim = draw(st.integers(-(rank + 1), rank))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, size, tuple(in_dims), out_dim, seed


def check_batching(g, size, in_dims, out_dim, seed, name):
    rng = np.random.default_rng(seed)
    n = len(g.inputs)
    per_input = []  # per input: an unbatched array or one array per example
    for i, p in enumerate(g.inputs):
        if in_dims[i] is None:
            per_input.append(values(rng, name, p.dtype, p.shape, i))
        else:
            per_input.append([values(rng, name, p.dtype, p.shape, i) for _ in range(size)])
    examples = [
        [per_input[i] if in_dims[i] is None else per_input[i][b] for i in range(n)]
        for b in range(size)
    ]
    batched_args = []
    for i, p in enumerate(g.inputs):
        if in_dims[i] is None:
            batched_args.append(per_input[i])
            continue
        stacked = np.stack(per_input[i]) if size else np.zeros((0,) + p.shape, p.dtype)
        batched_args.append(np.moveaxis(stacked, 0, in_dims[i]))
    out = g.outputs[0]
    expected = loop_then_stack(g, examples, size, out.shape, out.dtype)
    bg = batch_graph(g, in_dims, size, out_dims=out_dim)
    (got,) = run(bg, *batched_args)
    got = np.moveaxis(got, out_dim, 0)
    assert got.dtype == expected.dtype and got.shape == expected.shape, name
    if expected.dtype.kind == "f":
        rtol = 1e-6 if expected.dtype == np.float32 else 1e-14
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)
    return bg


@pytest.mark.parametrize("name,sig", CASES, ids=[f"{n}-{'-'.join(s)}" for n, s in CASES])
@settings(max_examples=8)
@given(data=st.data())
def test_batching_matches_a_loop(name, sig, data):
    prim = BY_NAME[name]
    attrs = {}
    if name == "convert":
        attrs["dtype"] = data.draw(st.sampled_from([F32, F64, I32, I64, BOOL]))
    shape, size, in_dims, out_dim, seed = data.draw(batch_setup(len(sig)))
    g = graph_of(prim, sig, shape=shape, **attrs)
    bg = check_batching(g, size, in_dims, out_dim, seed, name)
    assert bg.count(g.outputs[0].op) == 1  # one batched application, never a loop


@pytest.mark.parametrize("name", sorted(DOMAINS))
@settings(max_examples=5)
@given(data=st.data())
def test_batching_a_vjp_graph_matches_a_loop(name, data):
    """vmap of grad: the derivative graphs the rules build batch like any other graph.

    Every output of ``vjp_graph`` (the value and each cotangent) is batched on its own, with the
    primal inputs drawn from the primitive's domain and the cotangent from a normal."""
    prim = BY_NAME[name]
    gen = DOMAINS[name]
    dtypes = INPUT_DTYPES.get(name, (F64,) * arity(prim))
    vg = vjp_graph(graph_of(prim, dtypes, shape=(2,)))
    _, size, in_dims, _, seed = data.draw(batch_setup(len(vg.inputs), rank=1))
    rng = np.random.default_rng(seed)

    def example():
        return [np.asarray(a) for a in gen(rng, (2,))] + [rng.standard_normal(2)]

    fixed, per = example(), [example() for _ in range(size)]
    examples = [
        [fixed[i] if d is None else per[b][i] for i, d in enumerate(in_dims)] for b in range(size)
    ]
    args = []
    for i, (p, d) in enumerate(zip(vg.inputs, in_dims)):
        if d is None:
            args.append(fixed[i])
            continue
        stacked = np.stack([e[i] for e in per]) if size else np.zeros((0,) + p.shape, p.dtype)
        args.append(np.moveaxis(stacked, 0, d))
    for out in vg.outputs:
        one = Graph(vg.inputs, [out], name)
        expected = loop_then_stack(one, examples, size, out.shape, out.dtype)
        (got,) = run(batch_graph(one, in_dims, size), *args)
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0, equal_nan=True)
