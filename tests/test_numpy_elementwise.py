"""Conformance of mlc.numpy's elementwise functions (mlc/numpy/_ufuncs.py) with NumPy 2.

Every function is checked with ``conformance.check``: NumPy itself, mlc.numpy on concrete arrays,
plain NumPy code on tracers inside ``mlc.jit`` and mlc.numpy inside ``mlc.jit`` must agree in
values, dtype and shape. Shapes come from hypothesis and broadcast (0-d, size-1 and size-0 dims,
mismatched ranks); float inputs include NaN, +-inf and -0.0, so propagation is checked too.

Tolerances are exact by default: the reference backend evaluates each primitive with the NumPy
function NumPy itself uses, so a function that is one primitive gives NumPy's bits. Compositions
that cannot give the same bits say why next to their tolerance.
"""

import numpy as np
import pytest
from conformance import arrays, assert_same, broadcast_shapes, check, check_raises
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from mlc.numpy import _ufuncs

F32, F64, I32, I64, B = (np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, bool))
FLOATS = (F32, F64)
EXACT = {"rtol": 0, "atol": 0}


def ulps(n, atol_ulps_of=None):
    """A tolerance of ``n`` units in the last place, per float dtype (as a function of it).

    ``atol_ulps_of``: also allow ``n`` ulps of this magnitude, for results that cancel (a sum of
    terms near ``atol_ulps_of`` whose result is near 0 carries their absolute error).
    """

    def tol(dtype):
        eps = float(np.finfo(dtype).eps)
        atol = 0 if atol_ulps_of is None else n * eps * atol_ulps_of
        return {"rtol": n * eps, "atol": atol}

    return tol


def _tol(tol, dtype):
    return tol(dtype) if callable(tol) else tol


def check_ew(f, *arrs, tol=EXACT, signed_zeros=True):
    """``check`` with a per-dtype tolerance, plus: the sign of every zero matches NumPy's."""
    with np.errstate(all="ignore"):
        out_dtypes = {np.asarray(e).dtype for e in _leaves(f(np, *arrs))}
    expected = check(f, *arrs, **_tol(tol, F32 if F32 in out_dtypes else F64))
    if signed_zeros:  # on mlc.numpy's eager result (jit runs the same code on tracers)
        for g, e in zip(_leaves(f(mnp, *arrs)), _leaves(expected)):
            e, g = np.asarray(e), np.asarray(g)
            if e.dtype.kind == "f":
                zero = e == 0
                np.testing.assert_array_equal(
                    np.signbit(g[zero]), np.signbit(e[zero]), err_msg="sign of zero"
                )
    return expected


def _leaves(x):
    return [v for item in x for v in _leaves(item)] if isinstance(x, (tuple, list)) else [x]


def numpy_outcome(fn, *dtypes_):
    """What NumPy does with these operand dtypes: ("ok", dtype), ("raises", type), or
    ("unsupported", dtype) when NumPy's result dtype is one mlc does not support (int8 for
    ``bool // bool``, float16 for ``sqrt(bool)``)."""
    try:
        with np.errstate(all="ignore"):
            r = np.asarray(fn(*[np.ones((), d) for d in dtypes_]))
    except Exception as e:
        return "raises", type(e)
    if r.dtype.name not in ("bool", "int32", "int64", "float32", "float64"):
        return "unsupported", r.dtype
    return "ok", r.dtype


def check_by_dtype(fn, f, *arrs, tol=EXACT, signed_zeros=True):
    """``check_ew`` where NumPy computes a supported dtype, else the same error (or, for dtypes
    mlc lacks, a TypeError naming the dtype)."""
    kind, what = numpy_outcome(fn, *[a.dtype for a in arrs])
    if kind == "ok":
        return check_ew(f, *arrs, tol=tol, signed_zeros=signed_zeros)
    if kind == "raises":
        return check_raises(f, *arrs)
    with pytest.raises(TypeError, match=what.name):
        f(mnp, *arrs)
    with pytest.raises(TypeError, match=what.name):
        mlc.jit(lambda *a: f(np, *a))(*arrs)


# -- unary functions ------------------------------------------------------------------------
# name -> (lo, hi) of the finite inputs. Domains reach outside the function's real domain on
# purpose (log of negatives, arcsin beyond 1): NumPy's NaN there is part of the check. Ranges for
# exp-like functions reach overflow (inf) in float32 and underflow.
UNARY = {
    "negative": (-10, 10),
    "positive": (-10, 10),
    "abs": (-10, 10),
    "absolute": (-10, 10),
    "fabs": (-10, 10),
    "sign": (-10, 10),
    "reciprocal": (-10, 10),
    "square": (-10, 10),
    "sqrt": (-10, 10),
    "cbrt": (-10, 10),
    "exp": (-100, 100),
    "exp2": (-200, 200),
    "expm1": (-100, 100),
    "log": (-10, 10),
    "log2": (-10, 10),
    "log10": (-10, 10),
    "log1p": (-3, 10),
    "sin": (-10, 10),
    "cos": (-10, 10),
    "tan": (-10, 10),
    "arcsin": (-2, 2),
    "arccos": (-2, 2),
    "arctan": (-10, 10),
    "sinh": (-100, 100),
    "cosh": (-100, 100),
    "tanh": (-10, 10),
    "arcsinh": (-10, 10),
    "arccosh": (-2, 10),
    "arctanh": (-2, 2),
    "deg2rad": (-400, 400),
    "rad2deg": (-10, 10),
    "degrees": (-10, 10),
    "radians": (-400, 400),
    "sinc": (-10, 10),
    "floor": (-10, 10),
    "ceil": (-10, 10),
    "trunc": (-10, 10),
    "fix": (-10, 10),
    "rint": (-10, 10),
    "round": (-10, 10),
    "around": (-10, 10),
    "isnan": (-10, 10),
    "isinf": (-10, 10),
    "isfinite": (-10, 10),
    "nan_to_num": (-10, 10),
    "logical_not": (-10, 10),
    "signbit": (-10, 10),
    "invert": (-10, 10),
    "bitwise_not": (-10, 10),
}


def _unary_call(name):
    return lambda m, x: getattr(m, name)(x)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("invert", "bitwise_not")])
@given(data=st.data())
def test_unary_float(name, dtype, data):
    lo, hi = UNARY[name]
    # signbit of NaN is the NaN's sign bit, which comparisons cannot see (no bitcast primitive):
    # signbit gets NaN-free inputs; tested on the sign of zeros and infinities instead.
    x = data.draw(
        arrays(dtype, broadcast_shapes(1).map(lambda s: s[0]), lo, hi, special=name != "signbit")
    )
    check_ew(_unary_call(name), x)


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_int_and_bool(name, data):
    """int32/int64/bool inputs: NumPy's dtype (int -> float64 for sqrt), or its error."""
    dtype = data.draw(st.sampled_from([I32, I64, B]))
    x = data.draw(arrays(dtype, broadcast_shapes(1).map(lambda s: s[0]), *UNARY[name]))
    check_by_dtype(getattr(np, name), _unary_call(name), x)


def test_unary_on_python_scalars_returns_numpy_scalars():
    for name in ["sqrt", "exp", "negative", "abs", "floor", "isnan", "sinc", "square", "sign"]:
        for v in (2, 2.5, -0.0, True):
            kind, _ = numpy_outcome(getattr(np, name), np.asarray(v).dtype)
            if kind != "ok":
                continue
            with np.errstate(all="ignore"):
                e = getattr(np, name)(v)
            g = getattr(mnp, name)(v)
            assert type(g) is type(e), (name, v)
            assert g == e or (np.isnan(e) and np.isnan(g)), (name, v)


def test_signbit_sees_negative_zero_and_infinities():
    x = np.array([-0.0, 0.0, -1.0, 1.0, -np.inf, np.inf, np.nan], np.float32)
    check_ew(lambda m, x: m.signbit(x), x)
    check_ew(lambda m, x: m.copysign(np.float32(2.0), x), x[:-1])


# -- binary functions -----------------------------------------------------------------------
# name -> (lo, hi, tolerance, signed_zeros)
# maximum/minimum/fmax/fmin: which of +0.0 and -0.0 NumPy returns for equal zeros depends on
# its loop (the SIMD body and the scalar tail of one call disagree), so the sign of those zeros
# is not compared.
UNSIGNED_ZEROS = {"maximum", "minimum", "fmax", "fmin"}
BINARY = {
    "add": (-10, 10, EXACT),
    "subtract": (-10, 10, EXACT),
    "multiply": (-10, 10, EXACT),
    "divide": (-10, 10, EXACT),
    "true_divide": (-10, 10, EXACT),
    "floor_divide": (-10, 10, EXACT),
    "mod": (-10, 10, EXACT),
    "remainder": (-10, 10, EXACT),
    # NumPy's float power and float_power loops pick a vectorized or a scalar pow by memory
    # layout; mlc broadcasts operands before the primitive, so the two may differ by 1 ulp.
    "power": (-10, 10, ulps(2)),
    "float_power": (-10, 10, ulps(2)),
    "arctan2": (-10, 10, EXACT),
    "hypot": (-10, 10, EXACT),
    "maximum": (-10, 10, EXACT),
    "minimum": (-10, 10, EXACT),
    "fmax": (-10, 10, EXACT),
    "fmin": (-10, 10, EXACT),
    # NumPy's logaddexp(2) is a C loop calling libm's scalar exp/log1p per element; mlc runs the
    # same formula (x + log1p(exp(-|x - y|)), same branches) through NumPy's vectorized exp and
    # log1p, which differ from libm by an ulp. Where the result cancels to near 0, that ulp of
    # the inputs' magnitude (<= 10) is all that is left: hence the absolute part.
    "logaddexp": (-10, 10, ulps(4, atol_ulps_of=16)),
    "logaddexp2": (-10, 10, ulps(4, atol_ulps_of=16)),
    "heaviside": (-10, 10, EXACT),
    "copysign": (-10, 10, EXACT),
    "equal": (-3, 3, EXACT),
    "not_equal": (-3, 3, EXACT),
    "less": (-3, 3, EXACT),
    "less_equal": (-3, 3, EXACT),
    "greater": (-3, 3, EXACT),
    "greater_equal": (-3, 3, EXACT),
    "logical_and": (-2, 2, EXACT),
    "logical_or": (-2, 2, EXACT),
    "logical_xor": (-2, 2, EXACT),
}


def _binary_call(name):
    return lambda m, x, y: getattr(m, name)(x, y)


def _two_arrays(data, dtypes_, lo, hi, special):
    s1, s2 = data.draw(broadcast_shapes(2))
    x = data.draw(arrays(dtypes_[0], s1, lo, hi, special=special))
    y = data.draw(arrays(dtypes_[1], s2, lo, hi, special=special))
    return x, y


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_float(name, dtype, data):
    lo, hi, tol = BINARY[name]
    x, y = _two_arrays(data, (dtype, dtype), lo, hi, special=True)
    if name == "copysign":
        y = np.where(np.isnan(y), dtype.type(1), y)  # a NaN's sign bit: see signbit above
    check_ew(_binary_call(name), x, y, tol=tol, signed_zeros=name not in UNSIGNED_ZEROS)


# Mixed and non-float operand pairs: NumPy's promotion (int32 with float32 is float64, bool
# arithmetic, int / int is float64) or NumPy's error (bool - bool).
MIXED = [
    (I32, I32), (I64, I64), (I32, I64), (B, B), (B, I32), (I64, B),
    (F32, F64), (F32, I32), (I64, F32), (F64, I32), (B, F32), (F64, B),
]  # fmt: skip


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_mixed_dtypes(name, data):
    lo, hi, tol = BINARY[name]
    dtypes_ = data.draw(st.sampled_from(MIXED))
    if name in ("power", "float_power") and dtypes_[1].kind in "iu":
        lo = 0  # NumPy raises on integers to negative integer powers, per value
    x, y = _two_arrays(data, dtypes_, lo, hi, special=False)
    if name == "power" and dtypes_[1].kind in "iu":
        y = np.abs(y)
    check_by_dtype(
        getattr(np, name), _binary_call(name), x, y, tol=tol,
        signed_zeros=name not in UNSIGNED_ZEROS,
    )  # fmt: skip


SCALARS = [2, -3, 2.5, -0.0, True, np.float64(1.5), np.float32(-2.0), np.int32(3), np.int64(-2)]


@pytest.mark.parametrize("dtype", [F32, F64, I32, I64, B], ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_with_scalars(name, dtype):
    """Python scalars are weak (NEP 50: ``f32 * 2.5`` stays float32), NumPy scalars are not;
    both orders (``f(x, 2)`` and ``f(2, x)``)."""
    lo, hi, tol = BINARY[name]
    x = (
        np.array([-2, -1, 0, 1, 3, 7], dtype)
        if dtype.kind != "f"
        else np.array([-2.5, -1, -0.0, 0.0, 0.5, 3, np.nan, np.inf, -np.inf], dtype)
    )
    fn = getattr(np, name)
    ok = []  # (a, b) pairs NumPy computes; the array is the string "x"
    for s in SCALARS:
        for a, b in (("x", s), (s, "x")):
            pair = [x if isinstance(v, str) else v for v in (a, b)]
            kind, what = numpy_outcome(lambda a, b, pair=pair: fn(*pair), x.dtype, x.dtype)
            if kind == "ok":
                ok.append((a, b))
            elif kind == "raises":
                check_raises(lambda m, x, pair=pair: getattr(m, name)(*pair), x)
            else:
                with pytest.raises(TypeError, match=what.name):
                    getattr(mnp, name)(*pair)

    def f(m, x):
        sub = lambda v: x if isinstance(v, str) else v  # noqa: E731
        return tuple(getattr(m, name)(sub(a), sub(b)) for a, b in ok)

    check_ew(f, x, tol=tol, signed_zeros=name not in UNSIGNED_ZEROS)


def test_binary_on_python_scalars_returns_numpy_scalars():
    for name in ["add", "multiply", "divide", "power", "maximum", "equal", "arctan2", "hypot"]:
        for a, b in [(2, 3), (2.0, 3), (True, 2), (np.float32(2), 3.0)]:
            e, g = getattr(np, name)(a, b), getattr(mnp, name)(a, b)
            assert type(g) is type(e) and g == e, (name, a, b, g, e)


# -- comparisons: NEP 50 corner cases -------------------------------------------------------
CMPS = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


@pytest.mark.parametrize("dtype", [I32, I64], ids=str)
def test_compare_int_array_with_out_of_range_python_int(dtype):
    """NumPy 2 compares by value (no OverflowError, no wrap-around)."""
    info = np.iinfo(dtype)
    bigs = [v for v in (2**31, 2**40, 2**63, -(2**40), -(2**70)) if not info.min <= v <= info.max]
    x = np.array([[-5], [0], [7]], dtype)
    check_ew(lambda m, x: tuple(getattr(m, c)(x, v) for c in CMPS for v in bigs), x)
    check_ew(lambda m, x: tuple(getattr(m, c)(v, x) for c in CMPS for v in bigs), x)


def test_compare_float32_with_python_float_uses_float32():
    # 0.1 rounds to float32 first (weak scalar), so 0.1f == 0.1 is True, as in NumPy 2.
    x = np.array([0.1, 0.2], np.float32)
    out = check_ew(lambda m, x: (m.equal(x, 0.1), m.less(x, 0.1), x == 0.1), x)
    assert out[0][0]


# -- NEP 50 promotion, eagerly and inside jit -----------------------------------------------
f32 = np.array([1.5, -2.0, 3.0], np.float32)
f64 = np.array([1.5, -2.0, 3.0], np.float64)
i32 = np.array([1, -2, 3], np.int32)
i64 = np.array([1, -2, 3], np.int64)
bools = np.array([True, False, True])


@pytest.mark.parametrize(
    "f, args, dtype",
    [
        (lambda x: x * 2.0, (f32,), F32),
        (lambda x: 2.0 * x, (f32,), F32),
        (lambda x: x + 1, (f32,), F32),
        (lambda x: x * np.float64(2.0), (f32,), F64),
        (lambda x: x * np.float32(2.0), (f64,), F64),
        (lambda x: x + 2, (i32,), I32),
        (lambda x: x + np.int64(2), (i32,), I64),
        (lambda x: x * 1.5, (i32,), F64),
        (lambda x: x / 2, (i32,), F64),
        (lambda x: x + 1.0, (f64,), F64),
        (lambda x, y: x + y, (f32, i64), F64),
        (lambda x, y: x * y, (i64, f32), F64),
        (lambda x, y: x + y, (f32, i32), F64),
        (lambda x, y: x + y, (i32, i64), I64),
        (lambda x, y: x - y, (f32, f64), F64),
        (lambda x: x + 1, (bools,), I64),
        (lambda x: x + 1.0, (bools,), F64),
        (lambda x, y: x * y, (bools, f32), F32),
        (lambda x: np.sqrt(x), (i32,), F64),
        (lambda x: np.exp(x), (i64,), F64),
        (lambda x: np.where(x > 0, x, 0.5), (f32,), F32),
        (lambda x: np.maximum(x, 0), (f32,), F32),
    ],
)
def test_nep50_promotion(f, args, dtype):
    with np.errstate(all="ignore"):
        expected = f(*args)
    assert np.asarray(expected).dtype == dtype  # the table states NumPy's rule
    got = mlc.jit(f)(*args)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    check_ew(lambda m, *a: f(*a), *args)


def test_nep50_promotion_eager_through_mlc_numpy():
    assert mnp.multiply(f32, 2.0).dtype == F32
    assert mnp.multiply(2.0, f32).dtype == F32
    assert mnp.multiply(f32, np.float64(2.0)).dtype == F64
    assert mnp.add(i32, 2).dtype == I32
    assert mnp.add(i32, 2.5).dtype == F64
    assert mnp.add(f64, 1).dtype == F64
    assert mnp.add(f32, i64).dtype == F64
    assert mnp.add(i64, f32).dtype == F64
    assert mnp.add(bools, 1).dtype == I64
    assert mnp.where(bools, f32, 0.5).dtype == F32
    assert mnp.clip(f32, 0, 1.5).dtype == F32
    assert mnp.clip(i32, 0, 1.5).dtype == F64


def test_python_float_jit_argument_is_weak():
    assert mlc.jit(lambda x, s: x * s)(f32, 2.0).dtype == F32
    assert mlc.jit(lambda x, s: x + s)(i32, 3).dtype == I32
    assert mlc.jit(lambda x, s: x + s)(i32, 3.5).dtype == F64
    assert mlc.jit(lambda x, s: x * s)(f32, np.float64(2.0)).dtype == F64
    np.testing.assert_array_equal(mlc.jit(lambda x, s: x * s)(f32, 2.0), f32 * 2.0)


def test_python_int_overflow_raises_like_numpy():
    with pytest.raises(OverflowError):
        i32 + 2**40
    with pytest.raises(OverflowError):
        mnp.add(i32, 2**40)
    with pytest.raises(OverflowError):
        mlc.jit(lambda x: x + 2**40)(i32)
    with pytest.raises(OverflowError):
        mlc.jit(lambda x: np.multiply(x, -(2**40)))(i32)
    check_ew(lambda m, x: m.add(x, 2**40), i64)  # fits int64


def test_python_int_jit_argument_out_of_range_raises():
    with pytest.raises(OverflowError):
        mlc.jit(lambda x, s: x + s)(i32, 2**40)
    f = mlc.jit(lambda x, s: (x.astype(np.int64) + s, x < s, x * 1.0 + s))
    for s in (2**40, -(2**40), 7):
        assert_same(f(i32, s), (i32.astype(np.int64) + s, i32 < s, i32 * 1.0 + s))


# -- Python operators on tracers ------------------------------------------------------------
def _operators(m, x, y):
    return (
        x + y, x - y, x * y, x / y, x // y, x % y, x ** y,
        x == y, x != y, x < y, x <= y, x > y, x >= y,
        -x, +x, abs(x),
        2 - x, 2 + x, 2 * x, 2 / x, 2 // x, 2 % x, 2 ** x, 2.5 - x,
        x - 2, x ** 2, x ** 0.5, x / 2, x // 2, x % 2,
        2 < x, 2 == x,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", [F32, F64, I32, I64], ids=str)
@given(data=st.data())
def test_python_operators_on_tracers(dtype, data):
    x, y = _two_arrays(data, (dtype, dtype), -5, 5, special=dtype.kind == "f")
    if dtype.kind in "iu":  # ints to negative int powers raise in NumPy, per value
        x, y = np.abs(x), np.abs(y)
    check_ew(_operators, x, y)


@given(data=st.data())
def test_bool_and_invert_operators_on_tracers(data):
    s1, s2 = data.draw(broadcast_shapes(2))
    a, b = data.draw(arrays(B, s1)), data.draw(arrays(B, s2))
    check_ew(lambda m, a, b: (a & b, a | b, a ^ b, ~a, a + b, a * b, a == b, a != b), a, b)
    k = data.draw(arrays(I32, s1, -(2**31), 2**31 - 1))
    check_ew(lambda m, k: (~k, -k, abs(k)), k)  # ~INT_MIN and -INT_MIN wrap, as in NumPy


def test_divmod_and_reflected_operators():
    x = np.array([[-3.5], [0.0], [7.25]], np.float32)
    y = np.array([2.0, -1.5], np.float32)
    check_ew(lambda m, x, y: divmod(x, y), x, y)
    check_ew(lambda m, x, y: (1 - x, 1 / x, 3 // x, 3 % x, 0.5**x, 2**y), x, y)


def test_bool_operator_errors():
    check_raises(lambda m, a: a - a, bools)
    check_raises(lambda m, a: -a, bools)
    check_raises(lambda m, x: ~x, f32)


# -- where, select, clip, nan_to_num, heaviside, round --------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + (I32,), ids=str)
@given(data=st.data())
def test_where(dtype, data):
    s0, s1, s2 = data.draw(broadcast_shapes(3))
    c = data.draw(arrays(B, s0))
    x = data.draw(arrays(dtype, s1, special=dtype.kind == "f"))
    y = data.draw(arrays(data.draw(st.sampled_from([dtype, F32, I64, B])), s2))
    check_ew(lambda m, c, x, y: m.where(c, x, y), c, x, y)
    check_ew(lambda m, c, x: (m.where(c, x, 0), m.where(c, 1.5, x), m.where(c, -0.0, 7)), c, x)
    # A non-bool condition is truth-tested (NaN is true).
    check_ew(lambda m, x, y: m.where(x, x, y), x, y)


def test_where_errors():
    check_raises(lambda m, c: m.where(c, 1), bools)
    check_raises(lambda m, c, x: m.where(c, x, np.ones(2)), bools, f32)
    with pytest.raises(NotImplementedError, match="one argument"):
        mlc.jit(lambda c: mnp.where(c))(bools)


@pytest.mark.parametrize("dtype", FLOATS + (I64,), ids=str)
@given(data=st.data())
def test_select(dtype, data):
    s0, s1, s2, s3 = data.draw(broadcast_shapes(4))
    x = data.draw(arrays(dtype, s0, special=dtype.kind == "f"))
    y = data.draw(arrays(dtype, s1, special=dtype.kind == "f"))
    c1, c2 = data.draw(arrays(B, s2)), data.draw(arrays(B, s3))
    # Overlapping conditions: the first true one wins.
    check_ew(lambda m, x, y, c1, c2: m.select([c1, c2], [x, y]), x, y, c1, c2)
    check_ew(lambda m, x, y, c1, c2: m.select([c1, c2, c1], [x, y, 3], default=-0.5), x, y, c1, c2)
    check_ew(lambda m, x, c1: m.select([x > 0, c1], [x, 2 * x], default=np.nan), x, c1)


def test_select_errors():
    check_raises(lambda m, x: m.select([x > 0, x < 0], [x]), f32)
    check_raises(lambda m, x: m.select([x], [x]), f32)  # non-bool condition
    check_raises(lambda m, x: m.select([], []), f32)


@pytest.mark.parametrize("dtype", FLOATS + (I32, I64), ids=str)
@given(data=st.data())
def test_clip(dtype, data):
    s0, s1, s2 = data.draw(broadcast_shapes(3))
    a = data.draw(arrays(dtype, s0, special=dtype.kind == "f"))
    lo = data.draw(arrays(dtype, s1, special=dtype.kind == "f"))
    hi = data.draw(arrays(dtype, s2, -3, 3))
    # NumPy 2 defines clip as minimum(maximum(a, lo), hi): NaN propagates, and lo > hi gives hi.
    kw = {"signed_zeros": False}  # clip is maximum/minimum (see UNSIGNED_ZEROS)
    check_ew(lambda m, a, lo, hi: m.clip(a, lo, hi), a, lo, hi, **kw)
    check_ew(lambda m, a, lo: (m.clip(a, lo, None), m.clip(a, None, lo)), a, lo, **kw)
    check_ew(
        lambda m, a, hi: (m.clip(a, min=hi), m.clip(a, max=hi), m.clip(a, -1, 2.5)), a, hi, **kw
    )
    check_ew(lambda m, a: (m.clip(a, None, None), a.clip(-2, 2), m.clip(a, 3, 1)), a, **kw)


def test_clip_errors():
    check_raises(lambda m, a: m.clip(a, 0, 1, min=0), f32)
    check_raises(lambda m, a: m.clip(a, np.ones(2), 1), f32)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@given(data=st.data())
def test_nan_to_num(dtype, data):
    x = data.draw(arrays(dtype, broadcast_shapes(1).map(lambda s: s[0]), -1e3, 1e3, special=True))
    check_ew(lambda m, x: m.nan_to_num(x), x)
    check_ew(lambda m, x: m.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0), x)
    check_ew(lambda m, x: m.nan_to_num(x, copy=False, posinf=1e300), x)  # inf in float32


def test_nan_to_num_ints_bools_and_scalars():
    check_ew(lambda m, x: m.nan_to_num(x), i32)
    check_ew(lambda m, x: m.nan_to_num(x), bools)
    for v in (float("nan"), float("inf"), -float("inf"), 1.5):
        e, g = np.nan_to_num(v), mnp.nan_to_num(v)
        assert type(g) is type(e) and g == e


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@given(data=st.data())
def test_heaviside(dtype, data):
    s1, s2 = data.draw(broadcast_shapes(2))
    x = data.draw(arrays(dtype, s1, -3, 3, special=True))
    h0 = data.draw(arrays(dtype, s2, 0, 1, special=True))
    check_ew(lambda m, x, h0: m.heaviside(x, h0), x, h0)
    check_ew(lambda m, x: (m.heaviside(x, 0.5), m.heaviside(x, x)), x)


DECIMALS = (0, 1, 2, 3, -1, -2)


def _rounds(m, a):
    return tuple(m.round(a, d) for d in DECIMALS) + (m.around(a, decimals=2), a.round(1))


@pytest.mark.parametrize("dtype", FLOATS + (I32, I64), ids=str)
@given(data=st.data())
def test_round_decimals(dtype, data):
    """NumPy's formula: scale by 10**decimals, rint (half to even), scale back; integers with
    negative decimals go through float64 and back."""
    x = data.draw(
        arrays(
            dtype, broadcast_shapes(1).map(lambda s: s[0]), -1000, 1000, special=dtype.kind == "f"
        )
    )
    check_ew(_rounds, x)


@pytest.mark.parametrize("dtype", FLOATS + (I32, I64), ids=str)
def test_round_halves(dtype):
    halves = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.125, 0.375, 15, 25, -35, 1.005, -0.0], dtype)
    check_ew(_rounds, halves)


def test_round_bool_needs_float16():
    with pytest.raises(TypeError, match="float16"):
        mnp.round(bools)
    assert np.round(bools).dtype == np.float16  # NumPy's reason


# -- keyword arguments and errors -----------------------------------------------------------
def test_dtype_keyword():
    check_ew(lambda m, x, y: m.add(x, y, dtype=np.float32), i32, i32)
    check_ew(lambda m, x: m.sqrt(x, dtype=np.float32), i64)
    check_ew(lambda m, x: m.exp(x, dtype=np.float32), f64)
    check_ew(lambda m, x, y: m.multiply(x, y, dtype=np.float64), f32, f32)


def test_shape_mismatch_raises_valueerror_naming_the_line():
    err = check_raises(lambda m, x, y: m.add(x, y), np.ones(3), np.ones(4))
    assert "test_numpy_elementwise.py" in str(err)
    assert "(3,)" in str(err) and "(4,)" in str(err)
    err = check_raises(lambda m, x, y: x * y, np.ones((2, 3)), np.ones((3, 2)))
    check_raises(lambda m, x, y: m.less(x, y), np.ones(3), np.ones(2))
    check_raises(lambda m, x, y: m.logical_and(x, y), np.ones(3), np.ones(2))


def test_out_and_where_keywords_are_rejected_clearly():
    with pytest.raises(NotImplementedError, match="out="):
        mnp.add(f32, f32, out=np.empty(3, np.float32))
    with pytest.raises(NotImplementedError, match="where="):
        mnp.sin(f32, where=bools)
    with pytest.raises(TypeError, match="unexpected keyword"):
        mnp.add(f32, f32, bogus=1)
    with pytest.raises(NotImplementedError, match="out="):
        mlc.jit(lambda x: np.exp(x, out=x))(f32)


@pytest.mark.parametrize(
    "f",
    [
        lambda m, x: m.negative(x),
        lambda m, x: m.positive(x),
        lambda m, x: m.sign(x),
        lambda m, x: m.subtract(x, x),
    ],
)
def test_numpy_type_errors_for_bool(f):
    check_raises(f, bools)


def test_unsupported_result_dtypes_name_the_dtype():
    """bool // bool is int8 and sqrt(bool) is float16 in NumPy; mlc has neither dtype."""
    for f, dt in [(np.floor_divide, "int8"), (np.square, "int8"), (np.sqrt, "float16")]:
        with pytest.raises(TypeError, match=dt):
            getattr(mnp, f.__name__)(*([bools] * f.nin))


def test_every_public_function_is_tested():
    tested = set(UNARY) | set(BINARY) | {"where", "select", "clip", "nan_to_num", "heaviside"}
    tested |= {"bitwise_and", "bitwise_or", "bitwise_xor"}  # via & | ^ on bools
    assert set(_ufuncs.__all__) <= tested, sorted(set(_ufuncs.__all__) - tested)
