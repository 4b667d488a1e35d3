"""Random valid inputs for every primitive in the registry: the cases of the registry-wide sweeps.

``CASES[name](rng, dtype) -> (arrays, attrs)`` gives input arrays and attributes that are valid
for primitive ``name`` with ``dtype`` as its main element type (the type of its data operands;
index arrays are int32/int64 and predicates bool whatever ``dtype`` is). Values are chosen so
derivatives exist and finite differences are accurate: positive inputs for log/sqrt, |x| < 1 for
asin/atanh, x > 1 for acosh, divisors away from 0, inputs away from the kinks of abs, max, min
and rem, distinct values for max/min reductions. Shapes are small and random (0-d included).

A generator accepts every dtype in ``mlc.ir.dtypes.SUPPORTED``; ``accepted_dtypes(name)`` asks
the primitive's own type rule which of them it takes. ``SOURCES`` are the primitives with no
inputs (``param``, ``constant``, ``iota``): they need no case and no transform rule.
``missing_cases()`` names every registry primitive that has neither (tests fail on it, so adding
a primitive forces adding its case here).

    >>> args, attrs = CASES["log"](np.random.RandomState(0), np.dtype("float64"))
    >>> bool((args[0] > 0).all()), attrs
    (True, {})
"""

from __future__ import annotations

import functools

import numpy as np
from mlc.ir import dtypes
from mlc.ir import primitives as P
from mlc.ir.graph import PRIMITIVES, Graph

import mlc  # noqa: F401  (registers every primitive, custom_call included)

SOURCES = ("param", "constant", "iota")
CASES: dict = {}


def case(*names):
    """Register the decorated generator for each primitive in ``names``."""

    def deco(fn):
        for name in names:
            CASES[name] = fn
        return fn

    return deco


def missing_cases() -> list[str]:
    return sorted(n for n in PRIMITIVES if n not in CASES and n not in SOURCES)


def build(name, args, attrs) -> Graph:
    """``Graph([params], [prim(*params, **attrs)])`` for the arrays ``args``."""
    params = [
        P.param(index=i, shape=np.shape(a), dtype=np.asarray(a).dtype.name)
        for i, a in enumerate(args)
    ]
    return Graph(params, [PRIMITIVES[name](*params, **attrs)], name)


@functools.cache
def accepted_dtypes(name) -> tuple[np.dtype, ...]:
    """The supported dtypes the primitive's type rule takes for its case (TypeError = refused)."""
    out = []
    for d in dtypes.SUPPORTED.values():
        try:
            args, attrs = CASES[name](np.random.RandomState(0), d)
            build(name, args, attrs)
        except TypeError:
            continue
        out.append(d)
    return tuple(out)


# -- random values ---------------------------------------------------------------------------
def shape(rng, min_rank=0, max_rank=3, min_dim=1, max_dim=4) -> tuple[int, ...]:
    rank = rng.randint(min_rank, max_rank + 1)
    return tuple(int(n) for n in rng.randint(min_dim, max_dim + 1, size=rank))


def uniform(rng, shp, dtype, lo, hi):
    """Floats uniform in [lo, hi]; integers in [floor(lo), ceil(hi)]; random bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.asarray(rng.random_sample(size=shp) < 0.5)
    if dtype.kind in "iu":
        return rng.randint(int(np.floor(lo)), int(np.ceil(hi)) + 1, size=shp).astype(dtype)
    return rng.uniform(lo, hi, size=shp).astype(dtype)


def signed(rng, shp, dtype, lo, hi):
    """Magnitudes in [lo, hi] (0 < lo) with random signs: away from zero (bools are True)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.ones(shp, bool)
    mag = uniform(rng, shp, dtype, max(lo, 1) if dtype.kind in "iu" else lo, hi)
    sign = np.where(rng.random_sample(size=shp) < 0.5, -1, 1)
    return (mag * sign).astype(dtype)


def distinct(rng, shp, dtype):
    """Pairwise distinct values, at least 0.3 apart (no ties for max/min), centred on 0."""
    n = int(np.prod(shp, dtype=np.int64))
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return uniform(rng, shp, dtype, 0, 1)
    perm = rng.permutation(n).reshape(shp)
    if dtype.kind in "iu":
        return (perm - n // 2).astype(dtype)
    return (0.5 * perm + rng.uniform(0, 0.2, size=shp) - 0.25 * n).astype(dtype)


def with_specials(rng, x):
    """``x`` with some NaN, inf and -inf entries (floats only)."""
    if x.dtype.kind != "f" or x.size == 0:
        return x
    x = x.copy()
    flat = x.reshape(-1)
    pick = rng.random_sample(size=flat.shape)
    flat[pick < 0.15] = np.nan
    flat[(pick >= 0.15) & (pick < 0.25)] = np.inf
    flat[(pick >= 0.25) & (pick < 0.3)] = -np.inf
    return x


def index_dtype(rng):
    return np.dtype(rng.choice(["int32", "int64"]))


def subset(rng, n) -> tuple[int, ...]:
    """A random subset of range(n) in random order."""
    k = rng.randint(0, n + 1)
    return tuple(int(a) for a in rng.permutation(n)[:k])


# -- elementwise: unary ----------------------------------------------------------------------
def unary(lo, hi, away_from_zero=False, specials=False):
    def gen(rng, dtype):
        shp = shape(rng)
        fill = signed if away_from_zero else uniform
        x = fill(rng, shp, dtype, lo, hi)
        return [with_specials(rng, x) if specials else x], {}

    return gen


for _names, _gen in [
    (("neg", "sign", "exp", "exp2", "expm1"), unary(-2, 2)),
    (("sin", "cos", "atan", "sinh", "cosh", "tanh", "asinh"), unary(-2, 2)),
    (("abs", "cbrt"), unary(0.2, 2, away_from_zero=True)),  # kinks / infinite slope at 0
    (("log", "log2", "log10", "sqrt"), unary(0.2, 3)),
    (("log1p",), unary(-0.5, 2)),
    (("tan",), unary(-1.2, 1.2)),
    (("asin", "acos", "atanh"), unary(-0.8, 0.8)),
    (("acosh",), unary(1.2, 3)),
    (("floor", "ceil", "trunc", "round"), unary(-3, 3)),
    (("is_finite", "is_nan", "is_inf"), unary(-3, 3, specials=True)),
    (("not",), unary(0, 1)),
]:
    case(*_names)(_gen)


# -- elementwise: binary ---------------------------------------------------------------------
@case("add", "sub", "mul")
def _arith(rng, dtype):
    shp = shape(rng)
    return [uniform(rng, shp, dtype, -2, 2), uniform(rng, shp, dtype, -2, 2)], {}


@case("div")
def _div(rng, dtype):
    shp = shape(rng)
    return [uniform(rng, shp, dtype, -2, 2), signed(rng, shp, dtype, 0.5, 2)], {}


@case("floor_div")
def _floor_div(rng, dtype):
    shp = shape(rng)
    return [uniform(rng, shp, dtype, -5, 5), signed(rng, shp, dtype, 0.5, 3)], {}


@case("rem")
def _rem(rng, dtype):
    shp = shape(rng)
    y = signed(rng, shp, dtype, 0.5, 2)
    if np.dtype(dtype).kind != "f":
        return [uniform(rng, shp, dtype, -7, 7), y], {}
    # x / y away from integers: x = y * (k + f) with f in [0.1, 0.9] (rem jumps at multiples)
    k = rng.randint(-3, 3, size=shp)
    x = y * (k + rng.uniform(0.1, 0.9, size=shp))
    return [x.astype(dtype), y], {}


@case("pow")
def _pow(rng, dtype):
    shp = shape(rng)
    if np.dtype(dtype).kind != "f":  # integers to negative powers raise in NumPy
        return [uniform(rng, shp, dtype, -3, 3), uniform(rng, shp, dtype, 0, 3)], {}
    return [uniform(rng, shp, dtype, 0.3, 2), uniform(rng, shp, dtype, -2, 2)], {}


@case("max", "min")
def _max_min(rng, dtype):
    shp = shape(rng)
    x = uniform(rng, shp, dtype, -2, 2)
    if np.dtype(dtype).kind != "f":
        return [x, uniform(rng, shp, dtype, -2, 2)], {}
    return [x, (x + signed(rng, shp, dtype, 0.1, 1)).astype(dtype)], {}  # no ties


@case("atan2")
def _atan2(rng, dtype):
    shp = shape(rng)  # away from the origin and from the branch cut (y = 0, x < 0)
    return [signed(rng, shp, dtype, 0.3, 2), signed(rng, shp, dtype, 0.3, 2)], {}


@case("hypot")
def _hypot(rng, dtype):
    shp = shape(rng)
    return [signed(rng, shp, dtype, 0.2, 2), signed(rng, shp, dtype, 0.2, 2)], {}


@case("eq", "ne", "lt", "le", "gt", "ge")
def _compare(rng, dtype):
    shp = shape(rng)
    x = with_specials(rng, uniform(rng, shp, dtype, -3, 3))
    y = uniform(rng, shp, dtype, -3, 3)
    return [x, np.where(rng.random_sample(size=shp) < 0.3, x, y)], {}  # some equal pairs


@case("and", "or", "xor")
def _logic(rng, dtype):
    shp = shape(rng)
    return [uniform(rng, shp, dtype, 0, 1), uniform(rng, shp, dtype, 0, 1)], {}


@case("select")
def _select(rng, dtype):
    shp = shape(rng)
    pred = uniform(rng, shp, bool, 0, 1)
    return [pred, uniform(rng, shp, dtype, -2, 2), uniform(rng, shp, dtype, -2, 2)], {}


@case("convert")
def _convert(rng, dtype):
    to = str(rng.choice(list(dtypes.SUPPORTED)))
    return [uniform(rng, shape(rng), dtype, -5, 5)], {"dtype": to}


# -- reductions, scans, sorting, dot_general ---------------------------------------------------
@case("reduce_sum")
def _reduce_sum(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    return [x], {"axes": subset(rng, x.ndim)}


@case("reduce_prod")
def _reduce_prod(rng, dtype):
    x = signed(rng, shape(rng), dtype, 0.5, 1.5)
    return [x], {"axes": subset(rng, x.ndim)}


@case("reduce_max", "reduce_min")
def _reduce_extreme(rng, dtype):
    x = distinct(rng, shape(rng), dtype)
    return [x], {"axes": subset(rng, x.ndim)}


@case("argmax", "argmin")
def _arg_extreme(rng, dtype):
    x = uniform(rng, shape(rng, min_rank=1), dtype, -3, 3)
    return [x], {"axis": int(rng.randint(x.ndim))}


@case("cumsum")
def _cumsum(rng, dtype):
    x = uniform(rng, shape(rng, min_rank=1), dtype, -2, 2)
    return [x], {"axis": int(rng.randint(x.ndim)), "reverse": bool(rng.randint(2))}


@case("cumprod")
def _cumprod(rng, dtype):
    x = signed(rng, shape(rng, min_rank=1), dtype, 0.5, 1.5)
    return [x], {"axis": int(rng.randint(x.ndim)), "reverse": bool(rng.randint(2))}


@case("argsort")
def _argsort(rng, dtype):
    x = uniform(rng, shape(rng, min_rank=1), dtype, -3, 3)
    return [x], {"axis": int(rng.randint(x.ndim)), "descending": bool(rng.randint(2))}


@case("dot_general")
def _dot_general(rng, dtype):
    # Sizes of batch, contracting and free dimensions, then a random layout of each operand.
    nb, nc, nl, nr = rng.randint(0, 2), rng.randint(0, 3), rng.randint(0, 3), rng.randint(0, 3)
    b, c = list(rng.randint(1, 4, size=nb)), list(rng.randint(1, 4, size=nc))
    lf, rf = list(rng.randint(1, 4, size=nl)), list(rng.randint(1, 4, size=nr))
    lperm, rperm = rng.permutation(nb + nc + nl), rng.permutation(nb + nc + nr)
    # logical axis j of the lhs (batch, contracting, free) sits at position where(lperm == j)
    lpos = [int(np.flatnonzero(lperm == j)[0]) for j in range(nb + nc + nl)]
    rpos = [int(np.flatnonzero(rperm == j)[0]) for j in range(nb + nc + nr)]
    lshape, rshape = np.array(b + c + lf, int)[lperm], np.array(b + c + rf, int)[rperm]
    attrs = {
        "contracting": (tuple(lpos[nb : nb + nc]), tuple(rpos[nb : nb + nc])),
        "batch": (tuple(lpos[:nb]), tuple(rpos[:nb])),
    }
    lhs = uniform(rng, tuple(int(n) for n in lshape), dtype, -2, 2)
    rhs = uniform(rng, tuple(int(n) for n in rshape), dtype, -2, 2)
    return [lhs, rhs], attrs


# -- structure ---------------------------------------------------------------------------------
@case("broadcast_in_dim")
def _broadcast_in_dim(rng, dtype):
    out = shape(rng)
    dims = tuple(sorted(subset(rng, len(out))))
    xshape = tuple(1 if rng.randint(3) == 0 else out[d] for d in dims)
    return [uniform(rng, xshape, dtype, -2, 2)], {"shape": out, "dims": dims}


@case("reshape")
def _reshape(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    dims = [int(n) for n in rng.permutation(list(x.shape) or [1])]
    while len(dims) > 1 and rng.randint(2):  # merge a random neighbouring pair
        i = rng.randint(len(dims) - 1)
        dims[i : i + 2] = [dims[i] * dims[i + 1]]
    for _ in range(rng.randint(0, 2)):
        dims.insert(rng.randint(len(dims) + 1), 1)
    return [x], {"shape": tuple(dims)}


@case("transpose")
def _transpose(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    return [x], {"perm": tuple(int(p) for p in rng.permutation(x.ndim))}


@case("slice")
def _slice(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    start, limit, stride = [], [], []
    for n in x.shape:
        lo = rng.randint(0, n + 1)
        start.append(int(lo))
        limit.append(int(rng.randint(lo, n + 1)))
        stride.append(int(rng.randint(1, 4)))
    return [x], {"start": tuple(start), "limit": tuple(limit), "stride": tuple(stride)}


@case("rev")
def _rev(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    return [x], {"axes": subset(rng, x.ndim)}


@case("pad")
def _pad(rng, dtype):
    x = uniform(rng, shape(rng), dtype, -2, 2)
    value = uniform(rng, (), dtype, -2, 2)

    def widths(hi):
        return tuple(int(n) for n in rng.randint(0, hi + 1, size=x.ndim))

    return [x, value], {"low": widths(2), "high": widths(2), "interior": widths(2)}


@case("concatenate")
def _concatenate(rng, dtype):
    base = list(shape(rng, min_rank=1))
    axis = int(rng.randint(len(base)))
    xs = []
    for _ in range(rng.randint(1, 4)):
        base[axis] = int(rng.randint(0, 4))
        xs.append(uniform(rng, tuple(base), dtype, -2, 2))
    return xs, {"axis": axis}


def _indices(rng, xshape):
    """Gather/scatter indices of shape I + (k,): in range, some negative (they wrap), some
    one past the end (they clamp), repeats allowed."""
    k = rng.randint(1, len(xshape) + 1)
    ishape = shape(rng, max_rank=2)
    cols = [rng.randint(-n, n + 1, size=ishape) for n in xshape[:k]]
    return np.stack(cols, axis=-1).astype(index_dtype(rng)), k


@case("gather")
def _gather(rng, dtype):
    x = uniform(rng, shape(rng, min_rank=1), dtype, -2, 2)
    idx, _ = _indices(rng, x.shape)
    return [x, idx], {}


@case("scatter_add")
def _scatter_add(rng, dtype):
    x = uniform(rng, shape(rng, min_rank=1), dtype, -2, 2)
    idx, k = _indices(rng, x.shape)
    updates = uniform(rng, idx.shape[:-1] + x.shape[k:], dtype, -2, 2)
    return [x, idx, updates], {}


# -- primitives outside the core set -----------------------------------------------------------
@case("barrier")
def _barrier(rng, dtype):
    return [uniform(rng, shape(rng), dtype, -2, 2)], {"uid": int(rng.randint(1, 1000))}


def _custom_fn(x, y):
    import mlc.numpy as mnp

    return mnp.sin(x) * y, x * y


def _custom_fwd(x, y):
    return _custom_fn(x, y), (x, y)


def _custom_bwd(res, ct):
    import mlc.numpy as mnp

    (x, y), (c0, c1) = res, ct
    return mnp.cos(x) * y * c0 + y * c1, mnp.sin(x) * c0 + x * c1


def _custom_jvp(primals, tangents):
    import mlc.numpy as mnp

    (x, y), (tx, ty) = primals, tangents
    tangent = (mnp.cos(x) * y * tx + mnp.sin(x) * ty, tx * y + x * ty)
    return _custom_fn(x, y), tangent


@case("custom_call")
def _custom_call(rng, dtype):
    """A call of ``(sin(x) * y, x * y)`` with a correct custom_vjp or custom_jvp rule."""
    if np.dtype(dtype).kind != "f":
        raise TypeError("custom_call case: float functions only")
    shp = shape(rng)
    x, y = uniform(rng, shp, dtype, -2, 2), uniform(rng, shp, dtype, -2, 2)
    if rng.randint(2):
        fn = mlc.custom_vjp(_custom_fn)
        fn.defvjp(_custom_fwd, _custom_bwd)
    else:
        fn = mlc.custom_jvp(_custom_fn)
        fn.defjvp(_custom_jvp)
    index = int(rng.randint(2))
    g = mlc.trace(fn, x, y)
    node = next(n for n in g.nodes() if n.op == "custom_call" and n.attr("index") == index)
    return [x, y], {"call": node.attr("call"), "index": index}
