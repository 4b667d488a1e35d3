"""Shared checks: an mlc.numpy function against NumPy, eagerly and inside mlc.jit.

``check(f, *arrays)`` runs ``f(np, *arrays)`` (the expectation), ``f(mnp, *arrays)`` on concrete
arrays, ``mlc.jit(lambda *a: f(np, *a))`` (plain NumPy code on tracers) and
``mlc.jit(lambda *a: f(mnp, *a))``, and compares values, dtypes and shapes. Arguments that are not
arrays belong inside ``f`` (they are static).
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mlc
import mlc.numpy as mnp

TOL = {np.dtype(np.float32): (2e-5, 1e-6), np.dtype(np.float64): (1e-12, 1e-14)}


def assert_same(got, expected, rtol=None, atol=None, what=""):
    """Same shape, same dtype, same values (NaN where NumPy has NaN; dtype-aware tolerance)."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), what
        for g, e in zip(got, expected):
            assert_same(g, e, rtol, atol, what)
        return
    e = np.asarray(expected)
    g = np.asarray(got)
    assert g.shape == e.shape, f"{what}: shape {g.shape} != NumPy's {e.shape}"
    assert g.dtype == e.dtype, f"{what}: dtype {g.dtype} != NumPy's {e.dtype}"
    if e.dtype.kind == "f":
        r, a = TOL.get(e.dtype, (1e-6, 1e-8))
        np.testing.assert_allclose(
            g,
            e,
            rtol=r if rtol is None else rtol,
            atol=a if atol is None else atol,
            equal_nan=True,
            err_msg=what,
        )
    else:
        np.testing.assert_array_equal(g, e, err_msg=what)


# Compiled backends compute transcendentals with their own vectorized code, within a stated
# bound in ulps (docs/llvm-math.md), and sum in another order than NumPy's pairwise summation.
BACKEND_ULPS = {"numpy": 0, "cpu": 4}


def backend_tolerance(expected, rtol, atol):
    """``(rtol, atol)`` widened by the default backend's stated error bound."""
    from mlc.api import _default_backend

    ulps = BACKEND_ULPS.get(_default_backend(), 4)
    leaves = expected if isinstance(expected, (tuple, list)) else [expected]
    floats = [np.asarray(e).dtype for e in leaves if np.asarray(e).dtype.kind == "f"]
    if not ulps or not floats:
        return rtol, atol
    dtype = min(floats, key=lambda d: d.itemsize)  # the coarsest float decides
    base_r, base_a = TOL.get(dtype, (1e-6, 1e-8))
    eps = float(np.finfo(dtype).eps)
    rtol = max(base_r if rtol is None else rtol, ulps * eps)
    atol = max(base_a if atol is None else atol, ulps * float(np.finfo(dtype).smallest_subnormal))
    return rtol, atol


def check(f, *arrays, rtol=None, atol=None, jit=True):
    """Check ``f(module, *arrays)`` through mlc.numpy and through NumPy on tracers."""
    with np.errstate(all="ignore"):
        expected = f(np, *arrays)
    assert_same(f(mnp, *arrays), expected, rtol, atol, "mlc.numpy on concrete arrays")
    if jit:
        r, a = backend_tolerance(expected, rtol, atol)
        assert_same(mlc.jit(lambda *a: f(np, *a))(*arrays), expected, r, a, "numpy in jit")
        assert_same(mlc.jit(lambda *a: f(mnp, *a))(*arrays), expected, r, a, "mnp in jit")
    return expected


def check_raises(f, *arrays):
    """``f`` raises the same exception type through NumPy, mlc.numpy and jit; returns mlc's."""
    import pytest

    with pytest.raises(Exception) as np_err:
        f(np, *arrays)
    etype = np_err.type
    with pytest.raises(etype) as e1:
        f(mnp, *arrays)
    with pytest.raises(etype):
        mlc.jit(lambda *a: f(np, *a))(*arrays)
    return e1.value


# -- hypothesis strategies ------------------------------------------------------------------
FLOATS = (np.float32, np.float64)


def shapes(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcast_shapes(n, min_dims=0, max_dims=4, min_side=0, max_side=4):
    """``n`` shapes that broadcast together (size-1, size-0 dims, mismatched ranks)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda r: r.input_shapes)


def arrays(dtype, shape, lo=-10.0, hi=10.0, special=False):
    """Arrays of ``dtype``; with ``special``, NaN, +-inf and -0.0 appear too."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        width = 32 if dtype == np.float32 else 64
        elems = st.floats(lo, hi, width=width)
        if special:
            elems = st.one_of(elems, st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 0.0]))
    elif dtype.kind == "b":
        elems = st.booleans()
    else:
        elems = st.integers(int(lo), int(hi))
    return hnp.arrays(dtype, shape, elements=elems)
