"""The registry-wide sweep of transform rules: every primitive, present and future.

For every primitive in ``PRIMITIVES`` (cases in ``tests/prim_cases.py``):

- the sweep names every primitive lacking a case or a rule (``batch`` for every primitive with
  inputs, ``jvp`` and ``vjp`` for every differentiable one);
- non-differentiable primitives give zero tangents and cotangents through the transforms;
- derivatives, in float64: the projection check ``<w, J u>`` (central differences) against
  ``<w, jvp(u)>`` (``jvp_graph``) and ``<J^T w, u>`` (``vjp_graph``), then the same check on
  the first-order graphs, which covers second order in all four mode combinations
  (``jvp_graph``/``vjp_graph`` of ``jvp_graph(g)`` and of ``vjp_graph(g)``);
- batching: ``batch_graph`` against a loop of ``evaluate`` over the batch, for random in/out
  dims (``None`` and negative ones included), batch sizes 0, 1 and 3, nested batching, and
  every dtype the primitive accepts.

Focused tests of each rule (ties, NaN, special points) live next to the per-file rule tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlc.ir import primitives as P
from mlc.ir.graph import PRIMITIVES
from mlc.ir.interpreter import evaluate
from mlc.ir.passes import autodiff as AD
from mlc.ir.passes.batching import batch_graph

from tests.prim_cases import CASES, SOURCES, accepted_dtypes, build, missing_cases

F64 = np.dtype("float64")

# The primitives whose derivative is zero by definition (``differentiable=False``). Listed here
# so that changing a primitive's differentiability is a visible decision.
NONDIFFERENTIABLE = {
    "sign", "floor", "ceil", "trunc", "round", "is_finite", "is_nan", "is_inf", "not",
    "floor_div", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "xor",
    "argmax", "argmin", "argsort",
}  # fmt: skip

# (test, primitive) -> reason, for rules known to be wrong (reported to their owners).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

WITH_INPUTS = sorted(n for n in PRIMITIVES if n not in SOURCES)
DIFFERENTIABLE = [n for n in WITH_INPUTS if PRIMITIVES[n].differentiable]
NOT_DIFFERENTIABLE = [n for n in WITH_INPUTS if not PRIMITIVES[n].differentiable]


def known(test, name):
    """Marks for a (test, primitive) pair: xfail(strict=True) when it is a known failure."""
    reason = KNOWN_FAILURES.get((test, name))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def marked(test, names):
    return [pytest.param(n, marks=known(test, n), id=n) for n in names]


def example(name, rng, dtype):
    args, attrs = CASES[name](rng, dtype)
    return build(name, args, attrs), [np.asarray(a) for a in args]


# -- the sweep -------------------------------------------------------------------------------
def test_every_primitive_has_a_case():
    assert missing_cases() == [], (
        f"primitives with no case in tests/prim_cases.py: {missing_cases()}; add a generator "
        "of valid inputs (or list the primitive in SOURCES if it takes no inputs)"
    )


def test_sources_take_no_inputs():
    assert set(SOURCES) <= set(PRIMITIVES)
    nodes = [
        P.param(index=0, shape=(2,), dtype="float32"),
        P.const(np.arange(3.0)),
        P.iota(shape=(2, 3), dtype="int32", axis=1),
    ]
    assert sorted(n.op for n in nodes) == sorted(SOURCES)
    assert all(n.inputs == () for n in nodes)
    assert not set(SOURCES) & set(CASES)


def test_every_primitive_has_its_rules():
    missing = []
    for name, prim in PRIMITIVES.items():
        if name in SOURCES:
            continue
        kinds = ("jvp", "vjp", "batch") if prim.differentiable else ("batch",)
        missing += [f"{name}.{k}" for k in kinds if k not in prim.rules]
    assert missing == [], f"missing transform rules: {', '.join(missing)}"


def test_nondifferentiable_primitives_are_listed():
    assert set(NOT_DIFFERENTIABLE) == NONDIFFERENTIABLE, (
        "primitives marked differentiable=False changed: "
        f"new {sorted(set(NOT_DIFFERENTIABLE) - NONDIFFERENTIABLE)}, "
        f"gone {sorted(NONDIFFERENTIABLE - set(NOT_DIFFERENTIABLE))}"
    )


@pytest.mark.parametrize("name", WITH_INPUTS)
def test_cases_are_valid(name):
    """Each case builds and evaluates (the interpreter checks the type rule) for every dtype."""
    assert accepted_dtypes(name), f"{name}: its case is refused for every supported dtype"
    for dtype in accepted_dtypes(name):
        for seed in range(5):
            g, args = example(name, np.random.RandomState(seed), dtype)
            out = evaluate(g, *args)
            assert len(out) == 1 and out[0].shape == g.outputs[0].shape


# -- non-differentiable primitives ---------------------------------------------------------
@pytest.mark.parametrize("name", NOT_DIFFERENTIABLE)
def test_nondifferentiable_gives_zero_tangents(name):
    dtypes = accepted_dtypes(name)
    dtype = F64 if F64 in dtypes else dtypes[0]
    rng = np.random.RandomState(0)
    g, args = example(name, rng, dtype)
    floats = [i for i, p in enumerate(g.inputs) if p.dtype.kind == "f"]
    out = g.outputs[0]

    # Forward: a tangent for every float input, and the output's tangent is zero.
    tparams = {id(g.inputs[i]): g.inputs[i] for i in floats}
    assert AD.jvp_nodes(g.outputs, tparams) == [None]
    jg = AD.jvp_graph(g)
    assert len(jg.inputs) == len(args) + len(floats) and len(jg.outputs) == 2
    tangents = [rng.standard_normal(args[i].shape).astype(args[i].dtype) for i in floats]
    primal, tangent = evaluate(jg, *args, *tangents)
    np.testing.assert_array_equal(primal, evaluate(g, *args)[0])
    assert tangent.shape == out.shape and tangent.dtype == out.dtype
    assert not tangent.any(), f"{name}: nonzero tangent {tangent}"

    # Reverse: every float input's cotangent is zero.
    assert AD.vjp_nodes(g.outputs, [out], [g.inputs[i] for i in floats]) == [None] * len(floats)
    vg = AD.vjp_graph(g)
    ct = np.ones(out.shape, out.dtype)
    res = evaluate(vg, *args, ct)
    assert len(res) == 1 + len(floats)
    for i, c in zip(floats, res[1:]):
        assert c.shape == args[i].shape and c.dtype == args[i].dtype
        assert not c.any(), f"{name}: nonzero cotangent {c} for input {i}"


# -- derivatives -----------------------------------------------------------------------------
def projection_check(g, args, rng, fwd_label, rev_label):
    """``<w, J u>`` by central differences == ``<w, jvp(u)>`` == ``<J^T w, u>`` for random
    directions ``u`` (float inputs) and weights ``w`` (float outputs). Non-float inputs (indices,
    predicates) are held fixed; non-float outputs get zero cotangents."""
    fin = [i for i, p in enumerate(g.inputs) if p.dtype.kind == "f"]
    fout = [j for j, o in enumerate(g.outputs) if o.dtype.kind == "f"]
    # float64 throughout: eps 1e-6; a float32 value anywhere (convert) needs a wider step.
    low = any(g.inputs[i].dtype != F64 for i in fin) or any(g.outputs[j].dtype != F64 for j in fout)
    eps, rtol = (1e-3, 1e-3) if low else (1e-6, 1e-5)
    u = {i: rng.standard_normal(args[i].shape).astype(args[i].dtype) for i in fin}
    outs = evaluate(g, *args)
    w = {j: rng.standard_normal(outs[j].shape) for j in fout}

    def at(t):
        moved = list(args)
        for i in fin:
            moved[i] = (args[i] + t * u[i].astype(F64)).astype(args[i].dtype)
        return evaluate(g, *moved)

    plus, minus = at(eps), at(-eps)
    fd = sum(np.vdot(w[j], (plus[j].astype(F64) - minus[j]) / (2 * eps)) for j in fout)

    jg = AD.jvp_graph(g)
    jouts = evaluate(jg, *args, *[u[i] for i in fin])
    assert len(jouts) == 2 * len(outs), f"{fwd_label}: {len(jouts)} outputs"
    for o, t in zip(g.outputs, jouts[len(outs) :]):
        assert t.shape == o.shape and t.dtype == o.dtype, f"{fwd_label}: tangent {t.dtype}{t.shape}"
    for got, want in zip(jouts, outs):
        np.testing.assert_array_equal(got, want, err_msg=f"{fwd_label}: primal outputs changed")
    tangents = jouts[len(outs) :]
    fwd = sum(np.vdot(w[j], tangents[j].astype(F64)) for j in fout)

    vg = AD.vjp_graph(g)
    cts = [
        w[j].astype(o.dtype) if j in w else np.zeros(o.shape, o.dtype)
        for j, o in enumerate(g.outputs)
    ]
    vouts = evaluate(vg, *args, *cts)
    assert len(vouts) == len(outs) + len(fin), f"{rev_label}: {len(vouts)} outputs"
    grads = vouts[len(outs) :]
    for i, c in zip(fin, grads):
        assert c.shape == args[i].shape and c.dtype == args[i].dtype, (
            f"{rev_label}: cotangent {c.dtype}{c.shape} for input {i} of {args[i].dtype}"
            f"{args[i].shape}"
        )
    rev = sum(np.vdot(c.astype(F64), u[i]) for i, c in zip(fin, grads))

    scale = max(
        1.0,
        sum(float(np.abs(w[j] * tangents[j]).sum()) for j in fout),
        sum(float(np.abs(c * u[i]).sum()) for i, c in zip(fin, grads)),
    )
    fd, fwd, rev = float(fd), float(fwd), float(rev)
    assert np.isfinite([fd, fwd, rev]).all(), f"non-finite: fd {fd}, jvp {fwd}, vjp {rev}"
    assert abs(fwd - fd) <= rtol * scale, f"{fwd_label}: <w, jvp u> = {fwd}, differences {fd}"
    assert abs(rev - fd) <= rtol * scale, f"{rev_label}: <vjp w, u> = {rev}, differences {fd}"
    assert abs(fwd - rev) <= rtol * scale, f"{fwd_label} {fwd} vs {rev_label} {rev}"
    return u, w


@pytest.mark.parametrize("name", marked("derivatives", DIFFERENTIABLE))
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_derivatives(name, seed):
    rng = np.random.RandomState(seed)
    g, args = example(name, rng, F64)
    u, w = projection_check(g, args, rng, "jvp_graph(g)", "vjp_graph(g)")
    fin = [i for i, p in enumerate(g.inputs) if p.dtype.kind == "f"]
    out = g.outputs[0]

    # Second order: the first-order graphs are functions of primals and tangents/cotangents.
    jg = AD.jvp_graph(g)
    projection_check(
        jg,
        args + [u[i] for i in fin],
        rng,
        "jvp_graph(jvp_graph(g)) (fwd-fwd)",
        "vjp_graph(jvp_graph(g)) (rev-fwd)",
    )
    vg = AD.vjp_graph(g)
    ct = w[0].astype(out.dtype) if 0 in w else np.zeros(out.shape, out.dtype)
    projection_check(
        vg,
        args + [ct],
        rng,
        "jvp_graph(vjp_graph(g)) (fwd-rev)",
        "vjp_graph(vjp_graph(g)) (rev-rev)",
    )


# -- batching --------------------------------------------------------------------------------
def _norm(d, rank):
    """A batch dim of an array of unbatched rank ``rank`` as a position (negatives count from
    the end of the batched array)."""
    return None if d is None else d + rank + 1 if d < 0 else d


def batched_args(rng, base, in_dims, size):
    """Each input with ``size`` examples stacked at its in_dim (``None``: left as it is).
    Examples are permutations of the base example's values, so each one stays valid."""
    out = []
    for a, d in zip(base, in_dims):
        d = _norm(d, a.ndim)
        if d is None:
            out.append(a)
            continue
        shape = list(a.shape)
        shape.insert(d, size)
        if size == 0:
            out.append(np.zeros(shape, a.dtype))
            continue
        examples = [rng.permutation(a.reshape(-1)).reshape(a.shape) for _ in range(size)]
        out.append(np.stack(examples, axis=d))
    return out


def loop(fn, args, in_dims, size, out_dims, out_types):
    """The reference: ``fn`` on each example, results stacked at ``out_dims`` (an int: for all)."""
    if isinstance(out_dims, int):
        out_dims = [out_dims] * len(out_types)
    results = []
    for b in range(size):
        ex = [
            a if d is None else np.take(a, b, axis=_norm(d, a.ndim - 1))
            for a, d in zip(args, in_dims)
        ]
        results.append(fn(*ex))
    stacked = []
    for j, (t, d) in enumerate(zip(out_types, out_dims)):
        d = _norm(d, len(t.shape))
        if size == 0:
            shape = list(t.shape)
            shape.insert(d, 0)
            stacked.append(np.zeros(shape, t.dtype))
        else:
            stacked.append(np.stack([r[j] for r in results], axis=d))
    return stacked


def random_dims(rng, ranks, allow_none=True):
    """A batch dim per input (``None`` for some, negative ones too; at least one batched)."""
    while True:
        dims = [
            None if allow_none and rng.randint(3) == 0 else int(rng.randint(-r - 1, r + 1))
            for r in ranks
        ]
        if any(d is not None for d in dims):
            return dims


def assert_same(got, want, label):
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{label}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}"
    )
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=label)
        return
    rtol = 1e-4 if want.dtype == np.float32 else 1e-10  # summation order may differ
    finite = np.abs(want[np.isfinite(want)])
    atol = rtol * (1.0 + (finite.max() if finite.size else 0.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=label)


def check_batched(g, base, rng, size, in_dims, out_dims):
    bg = batch_graph(g, in_dims, size, out_dims)
    args = batched_args(rng, base, in_dims, size)
    got = evaluate(bg, *args)
    want = loop(lambda *a: evaluate(g, *a), args, in_dims, size, out_dims, g.outputs)
    label = f"size {size}, in_dims {in_dims}, out_dims {out_dims}"
    for x, y in zip(got, want):
        assert_same(x, y, label)
    return bg, args


BATCH_CASES = [
    pytest.param(n, d, id=f"{n}-{d.name}", marks=known("batching", n))
    for n in WITH_INPUTS
    if n in CASES  # a primitive without a case fails test_every_primitive_has_a_case
    for d in accepted_dtypes(n)
]


@pytest.mark.parametrize("name, dtype", BATCH_CASES)
def test_batching(name, dtype):
    for seed in (0, 1, 2):
        batching_check(name, dtype, seed)


def batching_check(name, dtype, seed):
    rng = np.random.RandomState(seed)
    g, base = example(name, rng, dtype)
    ranks = [a.ndim for a in base]
    out_rank = g.outputs[0].ndim
    for size in (0, 1, 3):
        in_dims = random_dims(rng, ranks)
        out_dims = int(rng.randint(-out_rank - 1, out_rank + 1))
        check_batched(g, base, rng, size, in_dims, out_dims)

    # Every input batched at its last axis (a negative dim), the output at the front.
    check_batched(g, base, rng, 3, [-1] * len(base), 0)

    # Nested: batch the batched graph (inner size 2, outer size 3).
    in1 = random_dims(rng, ranks)
    out1 = int(rng.randint(-out_rank - 1, out_rank + 1))
    g1, base1 = check_batched(g, base, rng, 2, in1, out1)
    in2 = random_dims(rng, [a.ndim for a in base1])
    out2 = int(rng.randint(-out_rank - 2, out_rank + 2))
    g2 = batch_graph(g1, in2, 3, out2)
    args2 = batched_args(rng, base1, in2, 3)

    def inner(*a):
        return loop(lambda *b: evaluate(g, *b), a, in1, 2, [out1], g.outputs)

    want = loop(inner, args2, in2, 3, [out2], g1.outputs)
    assert_same(evaluate(g2, *args2)[0], want[0], f"nested: inner {in1}/{out1}, outer {in2}/{out2}")

    # One batched application, never a loop: the graph does not grow with the batch size.
    sizes = [len(batch_graph(g, in1, n, out1).nodes()) for n in (3, 4)]
    assert sizes[0] == sizes[1], f"batched graph has {sizes} nodes for batch sizes 3 and 4"
