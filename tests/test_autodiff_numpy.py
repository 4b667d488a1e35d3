"""The autodiff sweep over every ``mlc.numpy`` function (tests/numpy_cases.py has the cases).

For every differentiable case, in float64, with random input directions ``u`` and output
directions ``w``, through ``mlc.numpy`` and through plain ``numpy`` on tracers:

- first order: ``<w, J u>`` by central finite differences of NumPy's own function, against
  ``<u, J^T w>`` from ``mlc.vjp`` and ``<w, J u>`` from ``mlc.jvp``;
- second order in all four mode combinations (jvp of jvp, jvp of a vjp function, vjp of a jvp
  function, vjp of vjp), each against central differences of the first-order function;
- ``jacfwd == jacrev``, and both agree with the jvp projection;
- the Hessian of the scalar ``sum(f(x) * w)`` is symmetric and matches differences of ``grad``.

For non-differentiable cases (comparisons, floor, argmax, ...) derivatives through them are
exactly zero and raise nothing.
"""

import numpy as np
import pytest
from numpy_cases import CASES, all_cases, missing

import mlc
import mlc.numpy as mnp
from mlc import pytree

EPS = 1e-6
MODULES = {"mnp": mnp, "np": np}
FLOAT_CASES = [c for c in all_cases() if "float64" in c.dtypes]


def params(cases):
    return [
        pytest.param(c, mod, id=f"{c.id}-{name}")
        for c in cases
        for name, mod in MODULES.items()
        if mod is mnp or c.numpy_dispatch is None
    ]


DIFF = params([c for c in FLOAT_CASES if c.differentiable])
NONDIFF = params([c for c in FLOAT_CASES if not c.differentiable])


# -- helpers --------------------------------------------------------------------------------
def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in pytree.flatten(tree)[0]]


def like(tree, values):
    """``values`` (one per leaf) in the structure of ``tree``."""
    return pytree.unflatten(pytree.flatten(tree)[1], list(values))


def inner(a, b) -> float:
    a, b = leaves(a), leaves(b)
    assert [x.shape for x in a] == [y.shape for y in b]
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def normal(rng, tree) -> list[np.ndarray]:
    return [rng.normal(size=x.shape) for x in leaves(tree)]


def shifted(xs, us, eps):
    return tuple(x + eps * u for x, u in zip(xs, us))


def central(fn, xs, us):
    """Central difference of the scalar function ``fn`` at ``xs`` along ``us``."""
    with np.errstate(all="ignore"):
        return (fn(shifted(xs, us, EPS)) - fn(shifted(xs, us, -EPS))) / (2 * EPS)


def assert_close(ad, fd, scale, what, rtol=1e-6):
    """An autodiff value against a finite difference: the error of the difference grows with
    the size of the differenced values (``scale``)."""
    tol = rtol * (1.0 + abs(fd) + scale)
    assert abs(ad - fd) <= tol, f"{what}: autodiff {ad!r} vs finite differences {fd!r}"


def magnitude(w, y) -> float:
    return float(sum(np.sum(np.abs(a * b)) for a, b in zip(leaves(w), leaves(y))))


def setup(case, seed=0):
    rng = np.random.RandomState(seed)
    xs = case.gen(rng)
    with np.errstate(all="ignore"):
        y = case.fn(np, *xs)
    us = normal(rng, xs)
    ws = normal(rng, y)
    return rng, xs, y, us, ws


def test_every_name_has_an_entry():
    assert missing() == [], f"mlc.numpy names with no case or exclusion: {missing()}"
    assert set(CASES) <= set(mnp.__all__), set(CASES) - set(mnp.__all__)


def test_the_sweep_covers_most_functions():
    # a guard against excluding too much: every exclusion is a non-function or takes no array
    differentiable = {c.name for c in FLOAT_CASES if c.differentiable}
    assert len(differentiable) >= 120, len(differentiable)


# -- first order ----------------------------------------------------------------------------
@pytest.mark.parametrize("case, mod", DIFF)
def test_first_order(case, mod):
    rng, xs, y, us, ws = setup(case)

    def f(*a):
        return case.fn(mod, *a)

    out, tan = mlc.jvp(f, xs, us)
    out2, f_vjp = mlc.vjp(f, *xs)
    for got in (out, out2):
        for g, e in zip(leaves(got), leaves(y)):
            assert g.shape == e.shape and g.dtype == e.dtype, (g.shape, g.dtype, e.shape, e.dtype)
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    w = like(out, ws)
    cts = f_vjp(w)
    assert len(cts) == len(xs)
    for c, x in zip(cts, xs):
        assert np.shape(c) == x.shape and np.asarray(c).dtype == x.dtype, (np.shape(c), x.shape)
    for t, e in zip(leaves(tan), leaves(y)):
        assert t.shape == e.shape and t.dtype == e.dtype, (t.shape, t.dtype, e.shape, e.dtype)
    fwd = inner(ws, tan)
    rev = inner(us, cts)
    fd = central(lambda a: inner(ws, case.fn(np, *a)), xs, us)
    scale = magnitude(ws, y)
    assert_close(fwd, fd, scale, "jvp")
    assert_close(rev, fd, scale, "vjp")
    np.testing.assert_allclose(rev, fwd, rtol=1e-9, atol=1e-9 * (1 + scale))


# -- second order ---------------------------------------------------------------------------
@pytest.mark.parametrize("case, mod", DIFF)
def test_second_order(case, mod):
    rng, xs, y, us, ws = setup(case, seed=1)
    u2 = normal(rng, xs)  # the second input direction
    v2 = normal(rng, xs)  # an input-space cotangent for the vjp function
    n = len(xs)

    def f(*a):
        return case.fn(mod, *a)

    w = like(mlc.jvp(f, xs, us)[0], ws)

    def fwd1(*a):  # x -> J(x) u (output space)
        return mlc.jvp(f, a, tuple(us))[1]

    def rev1(*a):  # x -> J(x)^T w (input space)
        return tuple(mlc.vjp(f, *a)[1](w))

    scale_f = magnitude(ws, mlc.jvp(f, xs, us)[1]) + magnitude(ws, y)
    scale_r = magnitude(v2, rev1(*xs)) + magnitude(ws, y)
    fd_fwd = central(lambda a: inner(ws, fwd1(*a)), xs, u2)
    fd_rev = central(lambda a: inner(v2, rev1(*a)), xs, u2)

    results = {
        "fwd-fwd": (inner(ws, mlc.jvp(fwd1, xs, u2)[1]), fd_fwd, scale_f),
        "rev-fwd": (inner(u2, mlc.vjp(fwd1, *xs)[1](w)), fd_fwd, scale_f),
        "fwd-rev": (inner(v2, mlc.jvp(rev1, xs, u2)[1]), fd_rev, scale_r),
        "rev-rev": (inner(u2, mlc.vjp(rev1, *xs)[1](tuple(v2))), fd_rev, scale_r),
    }
    assert n == len(u2)
    for mode, (ad, fd, scale) in results.items():
        assert_close(ad, fd, scale, mode, rtol=1e-5)


# -- Jacobians and Hessians -----------------------------------------------------------------
def contract(block, u):
    """``block`` (out.shape + in.shape) applied to ``u`` (in.shape)."""
    return np.tensordot(block, u, axes=u.ndim)


@pytest.mark.parametrize("case, mod", DIFF)
def test_jacobians(case, mod):
    rng, xs, y, us, ws = setup(case, seed=2)
    argnums = tuple(range(len(xs)))

    def f(*a):
        return case.fn(mod, *a)

    jf = mlc.jacfwd(f, argnums=argnums)(*xs)
    jr = mlc.jacrev(f, argnums=argnums)(*xs)
    lf, lr = leaves(jf), leaves(jr)
    assert len(lf) == len(lr) == len(leaves(y)) * len(xs)
    for a, b in zip(lf, lr):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float64, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # <w, J u> from the blocks equals the jvp projection
    ys = leaves(y)
    blocks = [lf[k * len(xs) : (k + 1) * len(xs)] for k in range(len(ys))]
    for blk, e in zip(blocks, ys):
        for b, x in zip(blk, xs):
            assert b.shape == e.shape + x.shape, (b.shape, e.shape, x.shape)
    proj = sum(np.sum(w * sum(contract(b, u) for b, u in zip(blk, us))) for w, blk in
               zip(ws, blocks))  # fmt: skip
    tan = mlc.jvp(f, xs, us)[1]
    np.testing.assert_allclose(proj, inner(ws, tan), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case, mod", DIFF)
def test_hessian(case, mod):
    rng, xs, y, us, ws = setup(case, seed=3)
    n = len(xs)
    argnums = tuple(range(n))

    def s(*a):  # the scalar sum(f(x) * w)
        ys = pytree.flatten(case.fn(mod, *a))[0]
        assert len(ys) == len(ws)
        return sum(mnp.sum(yk * wk) for yk, wk in zip(ys, ws))

    h = mlc.hessian(s, argnums=argnums)(*xs)
    assert len(h) == n and all(len(row) == n for row in h)
    for i in range(n):
        for j in range(n):
            hij = np.asarray(h[i][j])
            assert hij.shape == xs[i].shape + xs[j].shape, (i, j, hij.shape)
            # H[j][i] with its two halves swapped is H[i][j]
            hji = np.asarray(h[j][i]).reshape(xs[j].size, xs[i].size).T.reshape(hij.shape)
            np.testing.assert_allclose(hij, hji, rtol=1e-8, atol=1e-8, err_msg=f"H[{i}][{j}]")
    grad = mlc.grad(s, argnums=argnums)
    g0 = grad(*xs)
    scale = sum(float(np.sum(np.abs(g))) for g in g0) + magnitude(ws, y)
    with np.errstate(all="ignore"):
        gp = grad(*shifted(xs, us, EPS))
        gm = grad(*shifted(xs, us, -EPS))
    for i in range(n):
        hu = sum(contract(np.asarray(h[i][j]), us[j]) for j in range(n))
        fd = (np.asarray(gp[i]) - np.asarray(gm[i])) / (2 * EPS)
        tol = 1e-5 * (1 + np.abs(fd) + scale / max(1, xs[i].size))
        assert np.all(np.abs(hu - fd) <= tol), f"H u vs differences of grad, argument {i}"


# -- non-differentiable functions -----------------------------------------------------------
@pytest.mark.parametrize("case, mod", NONDIFF)
def test_non_differentiable_gives_exact_zeros(case, mod):
    rng, xs, y, us, ws = setup(case, seed=4)
    n = len(xs)
    if not case.values:  # the values are unspecified (empty_like): only the derivatives count
        ws = [np.zeros_like(w) for w in ws]
    ds = normal(rng, xs)

    def f(*a):
        return case.fn(mod, *a)

    out, tan = mlc.jvp(f, xs, us)
    for t in leaves(tan):
        assert np.all(t == 0), "a tangent through a non-differentiable function is not zero"
    _, f_vjp = mlc.vjp(f, *xs)
    ct = like(out, [np.ones(np.shape(o), np.asarray(o).dtype) for o in leaves(out)])
    for c, x in zip(f_vjp(ct), xs):
        assert np.asarray(c).dtype == x.dtype and np.all(np.asarray(c) == 0)

    def h(*a):  # S(f(x)) * T(x): the gradient is S(f(x)) * dT, exactly
        ys = pytree.flatten(f(*a))[0]
        total = sum(mnp.sum(mnp.astype(yk, np.float64) * wk) for yk, wk in zip(ys, ws))
        return total * sum(mnp.sum(x * d) for x, d in zip(a, ds))

    grads = mlc.grad(h, argnums=tuple(range(n)))(*xs)
    total = sum(np.sum(np.asarray(yk, np.float64) * wk) for yk, wk in zip(leaves(y), ws))
    for g, d in zip(grads, ds):
        np.testing.assert_allclose(g, total * d, rtol=1e-12, atol=1e-12)


def test_floor_times_x_gives_floor():
    x = np.random.RandomState(5).uniform(-3, 3, size=(3, 4))
    g = mlc.grad(lambda x: (mnp.floor(x) * x).sum())(x)
    np.testing.assert_array_equal(g, np.floor(x))
    g = mlc.grad(lambda x: (np.floor(x) * x).sum())(x)
    np.testing.assert_array_equal(g, np.floor(x))


@pytest.mark.parametrize("case", [c for c in all_cases() if c.numpy_dispatch], ids=lambda c: c.id)
def test_undispatched_numpy_functions_raise_clearly(case):
    # NumPy converts these arguments before dispatching (docs/numpy.md): a clear error, not a
    # silent constant.
    xs = case.gen(np.random.RandomState(6))
    with pytest.raises(mlc.ConcretizationError, match="concrete value"):
        mlc.jvp(lambda *a: case.fn(np, *a), xs, xs)


@pytest.mark.parametrize("case, mod", DIFF)
def test_float32_derivatives_keep_dtypes(case, mod):
    """float32 inputs: cotangents are float32 (the input dtype), tangents have the output's
    dtype, and both agree with the float64 derivatives to float32 accuracy."""
    rng, xs, y, us, ws = setup(case, seed=8)
    xs32 = tuple(x.astype(np.float32) for x in xs)
    us32 = tuple(u.astype(np.float32) for u in us)

    def f(*a):
        return case.fn(mod, *a)

    with np.errstate(all="ignore"):
        y32 = case.fn(np, *xs32)
        out, tan = mlc.jvp(f, xs32, us32)
        _, f_vjp = mlc.vjp(f, *xs32)
        cts = f_vjp(like(out, [w.astype(e.dtype) for w, e in zip(ws, leaves(y32))]))
    for t, e in zip(leaves(tan), leaves(y32)):
        assert t.dtype == e.dtype and t.shape == e.shape, (t.dtype, e.dtype)
    for c in cts:
        assert np.asarray(c).dtype == np.float32
    fwd64 = inner(ws, mlc.jvp(f, xs, us)[1])
    scale = magnitude(ws, mlc.jvp(f, xs, us)[1]) + magnitude(us, mlc.vjp(f, *xs)[1](like(out, ws)))
    assert abs(inner(ws, tan) - fwd64) <= 1e-4 * (1 + scale)
    assert abs(inner(us, cts) - fwd64) <= 1e-4 * (1 + scale)
