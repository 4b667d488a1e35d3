"""Elementwise functions of mlc.numpy: NumPy's ufuncs and their friends.

Result dtypes are asked of NumPy itself (``ufunc_dtype``), so int->float rules, NEP 50 weak
scalars and bool arithmetic all match NumPy. Where NumPy computes a function from others
(``sinc``, ``logaddexp``, ``deg2rad``), the composition follows NumPy's own formula so the
numbers agree.
"""

import math
import operator

import numpy as np

from mlc.errors import where as where_
from mlc.ir import dtypes
from mlc.ir import primitives as P

from ._core import (
    Tracer,
    all_weak,
    broadcast_shapes,
    broadcast_to,
    cast,
    elementwise,
    lift,
    numpy_function,
    result_type,
    ufunc_dtype,
)


def _check_kwargs(name, out=None, where=True, **kwargs):
    if out is not None:
        raise NotImplementedError(f"mlc.numpy.{name}: out= is not supported (arrays are immutable)")
    if where is not True:
        raise NotImplementedError(f"mlc.numpy.{name}: where= is not supported; use mlc.numpy.where")
    bad = set(kwargs) - {"dtype", "casting", "order", "subok", "signature"}
    if bad:
        raise TypeError(f"{name}() got an unexpected keyword argument '{sorted(bad)[0]}'")


def _unary(name, prim, np_fn):
    """A float ufunc: ints and bools are computed in the float dtype NumPy gives them."""

    @numpy_function
    def f(x, /, out=None, *, where=True, dtype=None, **kwargs):
        _check_kwargs(name, out, where, **kwargs)
        dt = dtypes.dtype(dtype) if dtype is not None else ufunc_dtype(np_fn, x)
        return elementwise(prim, x, dtype=dt)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"Elementwise {name}, as numpy.{np_fn.__name__}."
    return f


def _binary(name, prim, np_fn):
    @numpy_function
    def f(x, y, /, out=None, *, where=True, dtype=None, **kwargs):
        _check_kwargs(name, out, where, **kwargs)
        dt = dtypes.dtype(dtype) if dtype is not None else ufunc_dtype(np_fn, x, y)
        return elementwise(prim, x, y, dtype=dt)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"Elementwise {name}, as numpy.{np_fn.__name__}."
    return f


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, (bool, np.generic))


def _out_of_range(x, dt) -> bool:
    """``x`` is a Python int that ``dt`` (an integer dtype) cannot hold."""
    v = x.pyval if isinstance(x, Tracer) else x
    if dt.kind not in "iu" or not _is_int(v):
        return False
    info = np.iinfo(dt)
    return not info.min <= v <= info.max


def _compare(name, prim, np_fn, py_op):
    @numpy_function
    def f(x, y, /, out=None, *, where=True, **kwargs):
        _check_kwargs(name, out, where, **kwargs)
        ufunc_dtype(np_fn, x, y)  # NumPy's own checks (e.g. no loop for these dtypes)
        # A Python int's value does not change the dtype (NEP 50), even past int64.
        dt = result_type(*(1 if _is_int(v) else v for v in (x, y)))
        shape = broadcast_shapes(*(() if _is_int(v) else lift(v).shape for v in (x, y)))
        if _out_of_range(x, dt) != _out_of_range(y, dt):
            # NumPy 2 compares an integer array with an out-of-range Python int by value: the
            # answer is the same for every element (any in-range value stands in for them).
            value = lambda v: v.pyval if isinstance(v, Tracer) else v  # noqa: E731
            a, b = (0, value(y)) if _out_of_range(y, dt) else (value(x), 0)
            return broadcast_to(lift(np.bool_(py_op(a, b))), shape)
        a, b = cast(lift(x), dt), cast(lift(y), dt)
        return Tracer(prim(broadcast_to(a, shape).node, broadcast_to(b, shape).node))

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"Elementwise comparison, as numpy.{np_fn.__name__}."
    return f


def _to_bool(x):
    x = lift(x)
    if x.dtype == dtypes.bool_:
        return x
    return elementwise(P.ne, x, 0, dtype=x.dtype, out_weak=False)


def _logical(name, prim):
    @numpy_function
    def f(x, y, /, out=None, *, where=True, **kwargs):
        _check_kwargs(name, out, where, **kwargs)
        return elementwise(prim, _to_bool(x), _to_bool(y), dtype=dtypes.bool_, out_weak=False)

    f.__name__ = f.__qualname__ = name
    return f


# -- arithmetic -----------------------------------------------------------------------------
add = _binary("add", P.add, np.add)
subtract = _binary("subtract", P.sub, np.subtract)
multiply = _binary("multiply", P.mul, np.multiply)
divide = _binary("divide", P.div, np.divide)
true_divide = divide
floor_divide = _binary("floor_divide", P.floor_div, np.floor_divide)
remainder = _binary("remainder", P.rem, np.remainder)
mod = remainder
power = _binary("power", P.pow, np.power)
maximum = _binary("maximum", P.max, np.maximum)
minimum = _binary("minimum", P.min, np.minimum)
arctan2 = _binary("arctan2", P.atan2, np.arctan2)
hypot = _binary("hypot", P.hypot, np.hypot)


@numpy_function
def float_power(x, y, /, out=None, **kwargs):
    """x ** y computed in float64 (numpy.float_power)."""
    _check_kwargs("float_power", out, **kwargs)
    return elementwise(P.pow, x, y, dtype=ufunc_dtype(np.float_power, x, y))


@numpy_function
def negative(x, /, out=None, **kwargs):
    _check_kwargs("negative", out, **kwargs)
    x = lift(x)
    if x.dtype == dtypes.bool_:
        raise TypeError(
            "The numpy boolean negative, the `-` operator, is not supported, "
            "use the `~` operator or the logical_not function instead."
        )
    return elementwise(P.neg, x, dtype=ufunc_dtype(np.negative, x))


@numpy_function
def positive(x, /, out=None, **kwargs):
    _check_kwargs("positive", out, **kwargs)
    ufunc_dtype(np.positive, x)  # NumPy's own TypeError for bool
    x = lift(x)
    return Tracer(x.node, weak=x.weak, pyval=x.pyval)


@numpy_function
def absolute(x, /, out=None, **kwargs):
    _check_kwargs("absolute", out, **kwargs)
    x = lift(x)
    if x.dtype == dtypes.bool_:
        return x
    return elementwise(P.abs, x, dtype=ufunc_dtype(np.absolute, x))


abs = absolute
fabs = _unary("fabs", P.abs, np.fabs)


@numpy_function
def sign(x, /, out=None, **kwargs):
    _check_kwargs("sign", out, **kwargs)
    return elementwise(P.sign, x, dtype=ufunc_dtype(np.sign, x))


@numpy_function
def reciprocal(x, /, out=None, **kwargs):
    """1/x; for integers NumPy's loop computes ``1.0 / x`` in double and casts it back (1 for 1,
    -1 for -1, 0 for |x| > 1; x = 0 casts inf, which C leaves to the platform, as NumPy does)."""
    _check_kwargs("reciprocal", out, **kwargs)
    x = lift(x)
    dt = ufunc_dtype(np.reciprocal, x)
    if dt.kind == "f":
        return elementwise(P.div, 1, x, dtype=dt)
    return cast(elementwise(P.div, 1, x, dtype=dtypes.float64, out_weak=False), dt)


@numpy_function
def square(x, /, out=None, **kwargs):
    _check_kwargs("square", out, **kwargs)
    x = lift(x)
    return elementwise(P.mul, x, x, dtype=ufunc_dtype(np.square, x))


sqrt = _unary("sqrt", P.sqrt, np.sqrt)
cbrt = _unary("cbrt", P.cbrt, np.cbrt)
exp = _unary("exp", P.exp, np.exp)
exp2 = _unary("exp2", P.exp2, np.exp2)
expm1 = _unary("expm1", P.expm1, np.expm1)
log = _unary("log", P.log, np.log)
log2 = _unary("log2", P.log2, np.log2)
log10 = _unary("log10", P.log10, np.log10)
log1p = _unary("log1p", P.log1p, np.log1p)
sin = _unary("sin", P.sin, np.sin)
cos = _unary("cos", P.cos, np.cos)
tan = _unary("tan", P.tan, np.tan)
arcsin = _unary("arcsin", P.asin, np.arcsin)
arccos = _unary("arccos", P.acos, np.arccos)
arctan = _unary("arctan", P.atan, np.arctan)
sinh = _unary("sinh", P.sinh, np.sinh)
cosh = _unary("cosh", P.cosh, np.cosh)
tanh = _unary("tanh", P.tanh, np.tanh)
arcsinh = _unary("arcsinh", P.asinh, np.arcsinh)
arccosh = _unary("arccosh", P.acosh, np.arccosh)
arctanh = _unary("arctanh", P.atanh, np.arctanh)


def _rounding(name, prim, np_fn):
    @numpy_function
    def f(x, /, out=None, **kwargs):
        _check_kwargs(name, out, **kwargs)
        x = lift(x)
        dt = ufunc_dtype(np_fn, x)
        if dt.kind != "f":  # NumPy returns integers unchanged
            return cast(x, dt)
        return elementwise(prim, x, dtype=dt)

    f.__name__ = f.__qualname__ = name
    return f


floor = _rounding("floor", P.floor, np.floor)
ceil = _rounding("ceil", P.ceil, np.ceil)
trunc = _rounding("trunc", P.trunc, np.trunc)
rint = _rounding("rint", P.round, np.rint)
fix = trunc


@numpy_function
def round(a, decimals=0, out=None):
    """Round half to even at ``decimals`` places, with NumPy's formula (scale, rint, unscale)."""
    _check_kwargs("round", out)
    a = lift(a)
    if a.dtype == dtypes.bool_:
        raise TypeError(
            f"mlc.numpy.round: NumPy rounds bool to float16, which mlc does not "
            f"support; convert first, e.g. x.astype(float) (at {where_()})"
        )
    if a.dtype.kind != "f":
        if decimals >= 0:
            return a
        # NumPy: in float64, divide by 10**-decimals, rint, multiply back, cast to the int type.
        s = float(10.0 ** (-decimals))
        return cast(multiply(rint(true_divide(cast(a, dtypes.float64), s)), s), a.dtype)
    if decimals == 0:
        return rint(a)
    if decimals > 0:
        s = float(10.0**decimals)
        return true_divide(rint(multiply(a, s)), s)
    s = float(10.0 ** (-decimals))
    return multiply(rint(true_divide(a, s)), s)


around = round


def _angle(name, num, den, np_fn):
    @numpy_function
    def f(x, /, out=None, **kwargs):
        _check_kwargs(name, out, **kwargs)
        dt = ufunc_dtype(np_fn, x)
        # NumPy's C: x * (180.0f / NPY_PIf) in float32, x * (180.0 / NPY_PI) in float64.
        factor = np.asarray(num, dt) / np.asarray(den, dt)
        return elementwise(P.mul, x, factor, dtype=dt)

    f.__name__ = f.__qualname__ = name
    return f


deg2rad = _angle("deg2rad", math.pi, 180.0, np.deg2rad)
radians = _angle("radians", math.pi, 180.0, np.radians)
rad2deg = _angle("rad2deg", 180.0, math.pi, np.rad2deg)
degrees = _angle("degrees", 180.0, math.pi, np.degrees)


@numpy_function
def sinc(x):
    """sin(pi x) / (pi x), with NumPy's formula (x = 0 replaced by 1e-20)."""
    x = lift(x)
    dt = np.result_type(
        x.dtype if not x.weak else np.float64, np.float64 if x.dtype.kind != "f" else x.dtype
    )
    x = cast(x, dtypes.dtype(dt))
    y = multiply(np.asarray(math.pi, x.dtype), where(equal(x, 0), np.asarray(1.0e-20, x.dtype), x))
    return true_divide(sin(y), y)


@numpy_function
def fmax(x, y, /, out=None, **kwargs):
    """Maximum that ignores NaN when only one side is NaN."""
    _check_kwargs("fmax", out, **kwargs)
    dt = ufunc_dtype(np.fmax, x, y)
    x, y = cast(lift(x), dt), cast(lift(y), dt)
    m = maximum(x, y)
    if dt.kind != "f":
        return m
    return where(isnan(x), y, where(isnan(y), x, m))


@numpy_function
def fmin(x, y, /, out=None, **kwargs):
    """Minimum that ignores NaN when only one side is NaN."""
    _check_kwargs("fmin", out, **kwargs)
    dt = ufunc_dtype(np.fmin, x, y)
    x, y = cast(lift(x), dt), cast(lift(y), dt)
    m = minimum(x, y)
    if dt.kind != "f":
        return m
    return where(isnan(x), y, where(isnan(y), x, m))


@numpy_function
def clip(
    a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue, **kw
):
    """minimum(maximum(a, a_min), a_max), as NumPy 2 defines clip (NaN propagates)."""
    _check_kwargs("clip", out)
    if (a_min is not np._NoValue or a_max is not np._NoValue) and (
        min is not np._NoValue or max is not np._NoValue
    ):
        raise ValueError(
            "Passing `min` or `max` keyword argument when `a_min` and `a_max` are provided is "
            f"forbidden. (at {where_()})"
        )
    lo = a_min if a_min is not np._NoValue else min
    hi = a_max if a_max is not np._NoValue else max
    lo = None if lo is np._NoValue else lo
    hi = None if hi is np._NoValue else hi
    a = lift(a)
    ops = [x for x in (a, lo, hi) if x is not None]
    dt = result_type(*ops)
    r = cast(a, dt)
    if lo is not None:
        r = maximum(r, lo)
    if hi is not None:
        r = minimum(r, hi)
    return cast(r, dt)


@numpy_function
def logaddexp(x, y, /, out=None, **kwargs):
    """log(exp(x) + exp(y)) without overflow, as NumPy computes it."""
    _check_kwargs("logaddexp", out, **kwargs)
    dt = ufunc_dtype(np.logaddexp, x, y)
    x, y = cast(lift(x), dt), cast(lift(y), dt)
    d = subtract(x, y)
    big = where(greater(d, 0), x + log1p(exp(negative(d))), y + log1p(exp(d)))
    big = where(isnan(d), d, big)
    return where(equal(x, y), x + np.asarray(math.log(2.0), dt), big)


@numpy_function
def logaddexp2(x, y, /, out=None, **kwargs):
    """log2(2**x + 2**y) without overflow, as NumPy computes it."""
    _check_kwargs("logaddexp2", out, **kwargs)
    dt = ufunc_dtype(np.logaddexp2, x, y)
    x, y = cast(lift(x), dt), cast(lift(y), dt)
    d = subtract(x, y)
    log2e = np.asarray(1.0 / math.log(2.0), dt)
    big = where(greater(d, 0), x + log2e * log1p(exp2(negative(d))), y + log2e * log1p(exp2(d)))
    big = where(isnan(d), d, big)
    return where(equal(x, y), x + np.asarray(1.0, dt), big)


# -- comparisons, predicates, logic ---------------------------------------------------------
equal = _compare("equal", P.eq, np.equal, operator.eq)
not_equal = _compare("not_equal", P.ne, np.not_equal, operator.ne)
less = _compare("less", P.lt, np.less, operator.lt)
less_equal = _compare("less_equal", P.le, np.less_equal, operator.le)
greater = _compare("greater", P.gt, np.greater, operator.gt)
greater_equal = _compare("greater_equal", P.ge, np.greater_equal, operator.ge)
logical_and = _logical("logical_and", P.logical_and)
logical_or = _logical("logical_or", P.logical_or)
logical_xor = _logical("logical_xor", P.logical_xor)


@numpy_function
def logical_not(x, /, out=None, **kwargs):
    _check_kwargs("logical_not", out, **kwargs)
    return Tracer(P.logical_not(_to_bool(x).node))


def _bool_only(name, logical):
    @numpy_function
    def f(x, y, /, out=None, **kwargs):
        _check_kwargs(name, out, **kwargs)
        a, b = lift(x), lift(y)
        if a.dtype != dtypes.bool_ or b.dtype != dtypes.bool_:
            raise NotImplementedError(f"mlc.numpy.{name} supports bool arrays only (no bit ops)")
        return logical(a, b)

    f.__name__ = f.__qualname__ = name
    return f


bitwise_and = _bool_only("bitwise_and", logical_and)
bitwise_or = _bool_only("bitwise_or", logical_or)
bitwise_xor = _bool_only("bitwise_xor", logical_xor)


@numpy_function
def invert(x, /, out=None, **kwargs):
    _check_kwargs("invert", out, **kwargs)
    dt = ufunc_dtype(np.invert, x)  # NumPy's own TypeError for floats
    x = lift(x)
    if dt == dtypes.bool_:
        return logical_not(x)
    # Two's complement: ~x == -x - 1, wrapping at the minimum as NumPy's bit flip does.
    return elementwise(P.sub, negative(cast(x, dt)), 1, dtype=dt, out_weak=x.weak)


bitwise_not = invert


def _predicate(name, prim):
    @numpy_function
    def f(x, /, out=None, **kwargs):
        _check_kwargs(name, out, **kwargs)
        return Tracer(prim(lift(x).node))

    f.__name__ = f.__qualname__ = name
    return f


isnan = _predicate("isnan", P.is_nan)
isinf = _predicate("isinf", P.is_inf)
isfinite = _predicate("isfinite", P.is_finite)


@numpy_function
def signbit(x, /, out=None, **kwargs):
    """True where the sign bit is set (-0.0 included)."""
    _check_kwargs("signbit", out, **kwargs)
    x = lift(x)
    if x.dtype.kind != "f":
        return less(x, 0)
    # -0.0 and NaNs with the sign set: 1/x is -inf for -0.0.
    return logical_or(less(x, 0), logical_and(equal(x, 0), less(true_divide(1, x), 0)))


# -- selection ------------------------------------------------------------------------------
@numpy_function
def where(condition, x=None, y=None, /):
    """Elements of x where condition, else of y (broadcast together, NumPy-promoted)."""
    if x is None or y is None:
        if x is None and y is None:
            raise NotImplementedError(
                "mlc.numpy.where(condition) with one argument (nonzero) has a data-dependent "
                "shape and cannot be traced; use the three-argument form"
            )
        raise ValueError("either both or neither of x and y should be given")
    c = _to_bool(condition)
    dt = result_type(x, y)
    a, b = cast(lift(x), dt), cast(lift(y), dt)
    shape = broadcast_shapes(c.shape, a.shape, b.shape)
    nodes = [broadcast_to(t, shape).node for t in (c, a, b)]
    return Tracer(P.select(*nodes), weak=all_weak(x, y))


@numpy_function
def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, else ``default`` (numpy.select)."""
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    for c in condlist:
        if lift(c).dtype != dtypes.bool_:
            raise TypeError(
                f"invalid entry in condlist: should be boolean ndarray (got {lift(c).dtype})"
            )
    dt = result_type(*choicelist, default)
    out = cast(lift(default), dt)
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = where(c, cast(lift(v), dt), out)
    return out


@numpy_function
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN to ``nan``, +-inf to the largest finite values (or the given ones)."""
    x = lift(x)
    if x.dtype.kind != "f":
        return x
    info = np.finfo(x.dtype)
    big = info.max if posinf is None else posinf
    small = info.min if neginf is None else neginf
    out = where(isnan(x), np.asarray(nan, x.dtype), x)
    out = where(equal(x, np.inf), np.asarray(big, x.dtype), out)
    return where(equal(x, -np.inf), np.asarray(small, x.dtype), out)


@numpy_function
def heaviside(x1, x2, /, out=None, **kwargs):
    """0 for x1 < 0, x2 for x1 == 0, 1 for x1 > 0, NaN for NaN."""
    _check_kwargs("heaviside", out, **kwargs)
    dt = ufunc_dtype(np.heaviside, x1, x2)
    a, h0 = cast(lift(x1), dt), cast(lift(x2), dt)
    step = where(less(a, 0), np.asarray(0, dt), np.asarray(1, dt))
    return where(isnan(a), a, where(equal(a, 0), h0, step))


@numpy_function
def copysign(x1, x2, /, out=None, **kwargs):
    _check_kwargs("copysign", out, **kwargs)
    dt = ufunc_dtype(np.copysign, x1, x2)
    a, b = cast(lift(x1), dt), cast(lift(x2), dt)
    return where(signbit(b), negative(absolute(a)), absolute(a))


__all__ = [
    "abs",
    "absolute",
    "add",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "around",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "cbrt",
    "ceil",
    "clip",
    "copysign",
    "cos",
    "cosh",
    "deg2rad",
    "degrees",
    "divide",
    "equal",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "fix",
    "float_power",
    "floor",
    "floor_divide",
    "fmax",
    "fmin",
    "greater",
    "greater_equal",
    "heaviside",
    "hypot",
    "invert",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "log",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logaddexp2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "nan_to_num",
    "negative",
    "not_equal",
    "positive",
    "power",
    "rad2deg",
    "radians",
    "reciprocal",
    "remainder",
    "rint",
    "round",
    "select",
    "sign",
    "signbit",
    "sin",
    "sinc",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "true_divide",
    "trunc",
    "where",
]
