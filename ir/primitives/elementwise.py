"""Elementwise primitives: unary and binary math, comparisons, logic, select, convert.

Elementwise primitives take operands of one shape and one dtype (``mlc.numpy`` inserts the
broadcasts and casts NumPy's rules call for, so every transform sees them explicitly). Each block
is a name, its NumPy evaluation and the dtypes it accepts, followed by its derivative.

Every elementwise primitive batches the same way (align the batch axes, apply once: the
``unary``/``binary`` factories attach that rule). Derivatives are given as partial derivatives
(``U.defderiv``: ``d(*primals, out)``, written with these same primitives so they differentiate
again) or, for the linear and piecewise primitives, as explicit JVP/VJP rules. Where a formula has
a branch that must not be evaluated (a division by zero, a log of zero), the *input* of that branch
is made safe with ``select`` as well as its result, so no NaN leaks into higher derivatives (the
"double where" rule).
"""

import numpy as np

from .. import dtypes
from ..graph import Primitive, TensorType, register
from . import _rules as U

FLOAT = "f"
NUMBER = "fi"  # float or integer
ANY = "fib"


def _check_kind(name, t, kinds):
    if t.dtype.kind not in kinds.replace("i", "iu"):
        raise TypeError(f"{name}: unsupported dtype {t.dtype.name}")


def _same(name, types):
    first = types[0]
    for t in types[1:]:
        if t.shape != first.shape:
            raise ValueError(f"{name}: operand shapes differ: {first.shape} vs {t.shape}")
        if t.dtype != first.dtype:
            raise TypeError(f"{name}: operand dtypes differ: {first.dtype} vs {t.dtype}")
    return first


def unary(name, fn, kinds=FLOAT, out=None, differentiable=True, doc=""):
    def infer(x):
        _check_kind(name, x, kinds)
        return TensorType(x.shape, out or x.dtype)

    def impl(x):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x), dtype=out or x.dtype)

    prim = register(Primitive(name, infer, impl, doc or fn.__name__, differentiable))
    return U.batch_elementwise(prim)


def binary(name, fn, kinds=NUMBER, out=None, differentiable=True, doc=""):
    def infer(x, y):
        t = _same(name, (x, y))
        _check_kind(name, t, kinds)
        return TensorType(t.shape, out or t.dtype)

    def impl(x, y):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, y), dtype=out or x.dtype)

    prim = register(Primitive(name, infer, impl, doc or fn.__name__, differentiable))
    return U.batch_elementwise(prim)


def _c(value, like):
    """The constant ``value`` in the shape and dtype of ``like``."""
    return U.full_like(value, like)


def _nonzero(x):
    """``x`` with its zeros replaced by ones: a safe divisor / log argument for a branch that a
    ``select`` discards where ``x == 0`` (its derivative then never sees the zero either)."""
    return select(eq(x, _c(0, x)), _c(1, x), x)


# -- unary math -----------------------------------------------------------------------------
neg = unary("neg", np.negative, NUMBER)


@U.defjvp(neg)
def _neg_jvp(primals, tangents, out):
    return neg(tangents[0])


@U.defvjp(neg)
def _neg_vjp(ct, primals, out):
    return (neg(ct),)


abs = unary("abs", np.absolute, NUMBER)  # d/dx |x| = sign(x), with abs'(0) = 0
U.defderiv(abs, lambda x, out: sign(x))
sign = unary("sign", np.sign, NUMBER, differentiable=False)

exp = unary("exp", np.exp)
U.defderiv(exp, lambda x, out: out)  # d/dx e^x = e^x
exp2 = unary("exp2", np.exp2)
U.defderiv(exp2, lambda x, out: mul(out, _c(np.log(2.0), out)))  # 2^x ln 2
expm1 = unary("expm1", np.expm1)
U.defderiv(expm1, lambda x, out: add(out, _c(1, out)))  # e^x = expm1(x) + 1
log = unary("log", np.log)
U.defderiv(log, lambda x, out: div(_c(1, x), x))  # 1 / x
log2 = unary("log2", np.log2)
U.defderiv(log2, lambda x, out: div(_c(1 / np.log(2.0), x), x))  # 1 / (x ln 2)
log10 = unary("log10", np.log10)
U.defderiv(log10, lambda x, out: div(_c(1 / np.log(10.0), x), x))  # 1 / (x ln 10)
log1p = unary("log1p", np.log1p)
U.defderiv(log1p, lambda x, out: div(_c(1, x), add(x, _c(1, x))))  # 1 / (1 + x)
sqrt = unary("sqrt", np.sqrt)
U.defderiv(sqrt, lambda x, out: div(_c(0.5, out), out))  # 1 / (2 sqrt(x))
cbrt = unary("cbrt", np.cbrt)
U.defderiv(cbrt, lambda x, out: div(_c(1 / 3, out), mul(out, out)))  # 1 / (3 cbrt(x)^2)

sin = unary("sin", np.sin)
U.defderiv(sin, lambda x, out: cos(x))
cos = unary("cos", np.cos)
U.defderiv(cos, lambda x, out: neg(sin(x)))
tan = unary("tan", np.tan)
U.defderiv(tan, lambda x, out: add(_c(1, out), mul(out, out)))  # 1 + tan^2
asin = unary("asin", np.arcsin)


def _one_minus_sq(x):
    """1 - x^2 as (1 - x)(1 + x): exact near |x| = 1, where asin, acos and atanh blow up."""
    one = _c(1, x)
    return mul(sub(one, x), add(one, x))


U.defderiv(asin, lambda x, out: div(_c(1, x), sqrt(_one_minus_sq(x))))  # 1 / sqrt(1 - x^2)
acos = unary("acos", np.arccos)
U.defderiv(acos, lambda x, out: div(_c(-1, x), sqrt(_one_minus_sq(x))))  # -1 / sqrt(1 - x^2)
atan = unary("atan", np.arctan)
U.defderiv(atan, lambda x, out: div(_c(1, x), add(_c(1, x), mul(x, x))))  # 1 / (1 + x^2)

sinh = unary("sinh", np.sinh)
U.defderiv(sinh, lambda x, out: cosh(x))
cosh = unary("cosh", np.cosh)
U.defderiv(cosh, lambda x, out: sinh(x))
tanh = unary("tanh", np.tanh)
U.defderiv(tanh, lambda x, out: sub(_c(1, out), mul(out, out)))  # 1 - tanh^2
asinh = unary("asinh", np.arcsinh)
U.defderiv(asinh, lambda x, out: div(_c(1, x), hypot(x, _c(1, x))))  # 1 / sqrt(x^2 + 1)
acosh = unary("acosh", np.arccosh)
# 1 / sqrt(x^2 - 1), factored so that x^2 cannot overflow
U.defderiv(acosh, lambda x, out: div(_c(1, x), mul(sqrt(sub(x, _c(1, x))), sqrt(add(x, _c(1, x))))))
atanh = unary("atanh", np.arctanh)
U.defderiv(atanh, lambda x, out: div(_c(1, x), _one_minus_sq(x)))  # 1 / (1 - x^2)

# Piecewise constant or boolean-valued: no derivative (a zero tangent), batching only.
floor = unary("floor", np.floor, differentiable=False)
ceil = unary("ceil", np.ceil, differentiable=False)
trunc = unary("trunc", np.trunc, differentiable=False)
round = unary("round", np.rint, differentiable=False, doc="round half to even (np.rint)")
is_finite = unary("is_finite", np.isfinite, ANY, out=dtypes.bool_, differentiable=False)
is_nan = unary("is_nan", np.isnan, ANY, out=dtypes.bool_, differentiable=False)
is_inf = unary("is_inf", np.isinf, ANY, out=dtypes.bool_, differentiable=False)
logical_not = unary("not", np.logical_not, "b", differentiable=False)

# -- binary math ----------------------------------------------------------------------------
add = binary("add", np.add, ANY)


@U.defjvp(add)
def _add_jvp(primals, tangents, out):
    return U.add_any(*tangents)


@U.defvjp(add)
def _add_vjp(ct, primals, out):
    return (ct, ct)


sub = binary("sub", np.subtract)


@U.defjvp(sub)
def _sub_jvp(primals, tangents, out):
    tx, ty = tangents
    if ty is None:
        return tx
    return neg(ty) if tx is None else sub(tx, ty)


@U.defvjp(sub)
def _sub_vjp(ct, primals, out):
    return (ct, neg(ct))


mul = binary("mul", np.multiply, ANY)
U.defderiv(mul, lambda x, y, out: y, lambda x, y, out: x)
div = binary("div", np.true_divide, FLOAT)


@U.defjvp(div)
def _div_jvp(primals, tangents, out):
    # d(x / y) = (dx - out dy) / y
    y, (tx, ty) = primals[1], tangents
    num = U.add_any(tx, U.neg_any(None if ty is None else mul(ty, out)))
    return div(num, y)


@U.defvjp(div)
def _div_vjp(ct, primals, out):
    cx = div(ct, primals[1])
    return (cx, neg(mul(cx, out)))  # d/dy (x / y) = -x / y^2 = -(1 / y) out


floor_div = binary("floor_div", np.floor_divide, differentiable=False)
rem = binary("rem", np.remainder, doc="remainder with the sign of the divisor (np.remainder)")


# np.remainder(x, y) = x - floor(x / y) y, with NumPy's floor_divide as its exact quotient:
# d/dx = 1, d/dy = -floor_divide(x, y) (away from the jumps where x / y is an integer).
@U.defjvp(rem)
def _rem_jvp(primals, tangents, out):
    tx, ty = tangents
    return U.add_any(tx, None if ty is None else neg(mul(ty, floor_div(*primals))))


@U.defvjp(rem)
def _rem_vjp(ct, primals, out):
    return (ct, neg(mul(ct, floor_div(*primals))))


pow = binary("pow", np.power)


def _pow_dx(x, y, out):
    # d/dx x^y = y x^(y-1), and exactly 0 where y == 0 (x^0 = 1 is constant, even at x = 0)
    y1 = _nonzero(y)
    return U.select_zero(ne(y, _c(0, y)), mul(y1, pow(x, sub(y1, _c(1, y)))))


def _pow_dy(x, y, out):
    # d/dy x^y = ln(x) x^y, and 0 where x == 0 (0^y = 0 for every y > 0; JAX's convention)
    return U.select_zero(ne(x, _c(0, x)), mul(log(_nonzero(x)), out))


U.defderiv(pow, _pow_dx, _pow_dy)


def _minmax_dx(x_wins):
    # The gradient follows the value the primitive returns: all of it to x where x wins (NaN in
    # x included, since NaN propagates from the first operand), half each on a tie, else to y.
    def dx(x, y, out):
        won = logical_or(x_wins(x, y), is_nan(x))
        return select(eq(x, y), _c(0.5, x), select(won, _c(1, x), _c(0, x)))

    def dy(x, y, out):
        return sub(_c(1, x), dx(x, y, out))  # exact: the two shares are 1/0, 0.5/0.5 or 0/1

    return dx, dy


max = binary("max", np.maximum, ANY, doc="NaN-propagating maximum (np.maximum)")
U.defderiv(max, *_minmax_dx(lambda x, y: gt(x, y)))
min = binary("min", np.minimum, ANY, doc="NaN-propagating minimum (np.minimum)")
U.defderiv(min, *_minmax_dx(lambda x, y: lt(x, y)))

atan2 = binary("atan2", np.arctan2, FLOAT)
# d atan(x / y) = (y dx - x dy) / (x^2 + y^2); the norm through hypot so squares cannot overflow
U.defderiv(
    atan2,
    lambda x, y, out: div(div(y, hypot(x, y)), hypot(x, y)),
    lambda x, y, out: neg(div(div(x, hypot(x, y)), hypot(x, y))),
)
hypot = binary("hypot", np.hypot, FLOAT)
# d/dx hypot(x, y) = x / hypot; at the origin (a corner, like abs) the derivative is 0
U.defderiv(
    hypot,
    lambda x, y, out: div(x, _nonzero(out)),
    lambda x, y, out: div(y, _nonzero(out)),
)

# -- comparisons and logic ------------------------------------------------------------------
eq = binary("eq", np.equal, ANY, out=dtypes.bool_, differentiable=False)
ne = binary("ne", np.not_equal, ANY, out=dtypes.bool_, differentiable=False)
lt = binary("lt", np.less, ANY, out=dtypes.bool_, differentiable=False)
le = binary("le", np.less_equal, ANY, out=dtypes.bool_, differentiable=False)
gt = binary("gt", np.greater, ANY, out=dtypes.bool_, differentiable=False)
ge = binary("ge", np.greater_equal, ANY, out=dtypes.bool_, differentiable=False)
logical_and = binary("and", np.logical_and, "b", differentiable=False)
logical_or = binary("or", np.logical_or, "b", differentiable=False)
logical_xor = binary("xor", np.logical_xor, "b", differentiable=False)


# -- select ---------------------------------------------------------------------------------
def _select_infer(pred, on_true, on_false):
    if pred.dtype != dtypes.bool_:
        raise TypeError(f"select: predicate must be bool, got {pred.dtype}")
    t = _same("select", (on_true, on_false))
    if pred.shape != t.shape:
        raise ValueError(f"select: predicate shape {pred.shape} differs from {t.shape}")
    return t


select = register(
    Primitive(
        "select",
        _select_infer,
        lambda p, a, b: np.where(p, a, b),
        "select(pred, on_true, on_false): elementwise choice",
    )
)
U.batch_elementwise(select)


@U.defjvp(select)
def _select_jvp(primals, tangents, out):
    # the predicate is boolean: no tangent; the tangent is that of the chosen branch
    p, a, b = primals
    _, ta, tb = tangents
    if ta is None and tb is None:
        return None
    return select(p, U.instantiate(ta, a), U.instantiate(tb, b))


@U.defvjp(select)
def _select_vjp(ct, primals, out):
    p = primals[0]
    zero = U.zeros_like(ct)
    return (None, select(p, ct, zero), select(p, zero, ct))


# -- convert --------------------------------------------------------------------------------
def _convert_infer(x, dtype):
    return TensorType(x.shape, dtypes.dtype(dtype))


def _convert_impl(x, dtype):
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(dtype)


convert = register(
    Primitive("convert", _convert_infer, _convert_impl, "convert(x, dtype=...): cast like astype")
)
U.batch_elementwise(convert)


# float -> float is the identity up to rounding: (co)tangents are cast along; a cast from or to
# a non-float type (int, bool) is piecewise constant: no derivative.
@U.defjvp(convert)
def _convert_jvp(primals, tangents, out, dtype):
    t = tangents[0]
    if t is None or not (U.is_float(primals[0]) and U.is_float(out)):
        return None
    return convert(t, dtype=out.dtype.name)


@U.defvjp(convert)
def _convert_vjp(ct, primals, out, dtype):
    x = primals[0]
    if not (U.is_float(x) and U.is_float(out)):
        return (None,)
    return (convert(ct, dtype=x.dtype.name),)
