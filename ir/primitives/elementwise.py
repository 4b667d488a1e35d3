"""Elementwise primitives: unary and binary math, comparisons, logic, select, convert.

Elementwise primitives take operands of one shape and one dtype (``mlc.numpy`` inserts the
broadcasts and casts NumPy's rules call for, so every transform sees them explicitly). Each block
is a name, its NumPy evaluation and the dtypes it accepts.
"""

import numpy as np

from .. import dtypes
from ..graph import Primitive, TensorType, register

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

    return register(Primitive(name, infer, impl, doc or fn.__name__, differentiable))


def binary(name, fn, kinds=NUMBER, out=None, differentiable=True, doc=""):
    def infer(x, y):
        t = _same(name, (x, y))
        _check_kind(name, t, kinds)
        return TensorType(t.shape, out or t.dtype)

    def impl(x, y):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, y), dtype=out or x.dtype)

    return register(Primitive(name, infer, impl, doc or fn.__name__, differentiable))


# -- unary math -----------------------------------------------------------------------------
neg = unary("neg", np.negative, NUMBER)
abs = unary("abs", np.absolute, NUMBER)  # d/dx |x| = sign(x), with abs'(0) = 0
sign = unary("sign", np.sign, NUMBER, differentiable=False)
exp = unary("exp", np.exp)
exp2 = unary("exp2", np.exp2)
expm1 = unary("expm1", np.expm1)
log = unary("log", np.log)
log2 = unary("log2", np.log2)
log10 = unary("log10", np.log10)
log1p = unary("log1p", np.log1p)
sqrt = unary("sqrt", np.sqrt)
cbrt = unary("cbrt", np.cbrt)
sin = unary("sin", np.sin)
cos = unary("cos", np.cos)
tan = unary("tan", np.tan)
asin = unary("asin", np.arcsin)
acos = unary("acos", np.arccos)
atan = unary("atan", np.arctan)
sinh = unary("sinh", np.sinh)
cosh = unary("cosh", np.cosh)
tanh = unary("tanh", np.tanh)
asinh = unary("asinh", np.arcsinh)
acosh = unary("acosh", np.arccosh)
atanh = unary("atanh", np.arctanh)
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
sub = binary("sub", np.subtract)
mul = binary("mul", np.multiply, ANY)
div = binary("div", np.true_divide, FLOAT)
floor_div = binary("floor_div", np.floor_divide, differentiable=False)
rem = binary("rem", np.remainder, doc="remainder with the sign of the divisor (np.remainder)")
pow = binary("pow", np.power)
max = binary("max", np.maximum, ANY, doc="NaN-propagating maximum (np.maximum)")
min = binary("min", np.minimum, ANY, doc="NaN-propagating minimum (np.minimum)")
atan2 = binary("atan2", np.arctan2, FLOAT)
hypot = binary("hypot", np.hypot, FLOAT)

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


# -- convert --------------------------------------------------------------------------------
def _convert_infer(x, dtype):
    return TensorType(x.shape, dtypes.dtype(dtype))


def _convert_impl(x, dtype):
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(dtype)


convert = register(
    Primitive("convert", _convert_infer, _convert_impl, "convert(x, dtype=...): cast like astype")
)
