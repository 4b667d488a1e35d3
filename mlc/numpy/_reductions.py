"""Reductions and scans of mlc.numpy: sum, mean, max, argmax, var, all, cumsum, diff, trace, ...

Each reduction is one reduce primitive over the normalized axes (``P.reduce_sum`` and friends),
reshaped back for ``keepdims``. Result dtypes are NumPy's: sums and products of bools and small
ints accumulate in int64, means and variances of integers are float64, and the floating-point
formulas are NumPy's own (mean = sum / n; var = sum((x - mean) * (x - mean)) / (n - ddof)), so
the numbers agree. A reduction over nothing raises NumPy's error, decided from shapes alone.
"""

import builtins
import math

import numpy as np

from mlc import errors
from mlc.ir import dtypes
from mlc.ir import primitives as P

from . import _ufuncs as U
from ._core import (
    Tracer,
    broadcast_to,
    cast,
    contains_tracer,
    lift,
    materialize,
    normalize_axis,
    numpy_function,
    reshaped,
    splat,
    transposed,
    ufunc_dtype,
)

_NoValue = np._NoValue


# -- helpers --------------------------------------------------------------------------------
def _at():
    return f"(at {errors.where()})"


def _no_out(name, out):
    if out is not None:
        raise NotImplementedError(
            f"mlc.numpy.{name}: out= is not supported (arrays are immutable); "
            f"use the returned value {_at()}"
        )


def _mask(x: Tracer, where):
    """``where=`` as a bool tracer of ``x``'s shape, or None when everything counts."""
    if where is True or where is _NoValue:
        return None
    w = lift(where)
    if w.dtype != dtypes.bool_:
        raise TypeError(
            f"Cannot cast array data from dtype('{w.dtype}') to dtype('bool') according to "
            f"the rule 'safe' (where= must be a bool mask) {_at()}"
        )
    lead = x.ndim - w.ndim
    if lead < 0 or builtins.any(m not in (1, n) for m, n in zip(w.shape, x.shape[lead:])):
        raise ValueError(
            f"where= mask of shape {w.shape} does not broadcast to the input's shape "
            f"{x.shape} {_at()}"
        )
    return broadcast_to(Tracer(w.node), x.shape)


def _masked(x: Tracer, mask, fill) -> Tracer:
    """``x`` with ``fill`` (a reduction's identity) where ``mask`` is False."""
    if mask is None:
        return x
    return U.where(mask, x, np.asarray(fill, x.dtype))


def _flag(keepdims):
    return False if keepdims is _NoValue else builtins.bool(keepdims)


def _axis_error(axis, ndim, prefix=""):
    return np.exceptions.AxisError(
        f"{prefix}axis {axis} is out of bounds for array of dimension {ndim} {_at()}"
    )


def _reduction_axes(axis, ndim, strict=False) -> tuple:
    """Sorted distinct axes to reduce. Like NumPy's ufunc reductions, a 0-d array accepts the
    int axis 0 or -1 (reducing nothing), but not a tuple of them; ``strict`` (mean, var, std)
    refuses both, as NumPy does."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, tuple) and not (strict and ndim == 0):
        a = normalize_axis(axis, ndim)
        return () if ndim == 0 else (a,)
    axes = []
    for a in axis if isinstance(axis, tuple) else (axis,):
        a = normalize_axis(a, ndim)
        if ndim == 0:
            raise _axis_error(a, ndim)
        axes.append(a)
    if len(set(axes)) != len(axes):
        raise ValueError(f"duplicate value in 'axis' {_at()}")
    return tuple(sorted(axes))


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _reduce(prim, x: Tracer, axes, keepdims) -> Tracer:
    """``prim`` over ``axes`` (none: ``x`` itself, no longer weak), reshaped for keepdims."""
    r = Tracer(prim(x.node, axes=axes)) if axes else Tracer(x.node)
    return reshaped(r, _reduced_shape(x.shape, axes, keepdims)) if keepdims else r


def _count(shape, axes) -> int:
    return math.prod(shape[a] for a in axes)


def _over_empty_axis(shape, axes) -> bool:
    return builtins.any(shape[a] == 0 for a in axes)


def _acc_dtype(np_fn, x, dtype):
    """The dtype NumPy's ``np_fn`` (sum, prod, cumsum, ...) accumulates ``x`` in."""
    return dtypes.dtype(dtype) if dtype is not None else ufunc_dtype(np_fn, x)


def _divide_by_count(s: Tracer, n) -> Tracer:
    """``s / n`` cast back to ``s``'s dtype, as NumPy's ``true_divide(..., casting='unsafe')``.

    ``n`` is a Python number or a tracer of counts (with ``where=``)."""
    dt = s.dtype if s.dtype.kind == "f" else dtypes.float64
    n = cast(n, dt) if isinstance(n, Tracer) else np.asarray(n, dt)
    return cast(U.true_divide(cast(s, dt), n), s.dtype)


def _masked_count(x: Tracer, mask, axes, keepdims):
    """How many elements each reduction sees: a Python int, or a tracer with ``where=``."""
    if mask is None:
        return _count(x.shape, axes)
    return _reduce(P.reduce_sum, cast(mask, dtypes.int64), axes, keepdims)


def _truth(x: Tracer) -> Tracer:
    """``x != 0`` as bool (NaN counts as True)."""
    return x if x.dtype == dtypes.bool_ else U.not_equal(x, np.asarray(0, x.dtype))


def _empty_error(op_name):
    return ValueError(
        f"zero-size array to reduction operation {op_name} which has no identity {_at()}"
    )


# -- sum and prod ---------------------------------------------------------------------------
def _sum_like(name, prim, identity, combine, np_fn, a, axis, dtype, out, keepdims, initial, where):
    _no_out(name, out)
    x = lift(a)
    axes = _reduction_axes(axis, x.ndim)
    dt = _acc_dtype(np_fn, x, dtype)
    r = _reduce(prim, _masked(cast(x, dt), _mask(x, where), identity), axes, _flag(keepdims))
    if initial is not _NoValue:
        r = cast(combine(r, cast(lift(initial), dt)), dt)
    return r


@numpy_function
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Sum over ``axis`` (bools and small ints accumulate in int64), as numpy.sum.

    >>> sum([[1, 2], [3, 4]], axis=0)
    array([4, 6])
    """
    return _sum_like(
        "sum", P.reduce_sum, 0, U.add, np.sum, a, axis, dtype, out, keepdims, initial, where
    )


@numpy_function
def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Product over ``axis``, as numpy.prod.

    >>> prod([[1, 2], [3, 4]], axis=1)
    array([ 2, 12])
    """
    return _sum_like(
        "prod", P.reduce_prod, 1, U.multiply, np.prod, a, axis, dtype, out, keepdims, initial, where
    )


# -- max and min ----------------------------------------------------------------------------
def _extreme(name, op_name, prim, combine, a, axis, out, keepdims, initial, where):
    _no_out(name, out)
    x = lift(a)
    axes = _reduction_axes(axis, x.ndim)
    keepdims = _flag(keepdims)
    mask = _mask(x, where)
    if initial is _NoValue:
        if mask is not None:
            raise ValueError(
                f"reduction operation '{op_name}' does not have an identity, so to use a where "
                f"mask one has to specify 'initial' {_at()}"
            )
        if _over_empty_axis(x.shape, axes):
            raise _empty_error(op_name)
        return _reduce(prim, x, axes, keepdims)
    init = cast(lift(initial), x.dtype)
    if _over_empty_axis(x.shape, axes):
        return broadcast_to(init, _reduced_shape(x.shape, axes, keepdims))
    if mask is not None:  # masked-out elements become ``initial``, which joins anyway
        x = U.where(mask, x, init)
    return combine(_reduce(prim, x, axes, keepdims), init)


@numpy_function
def max(a, axis=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Maximum over ``axis`` (NaN propagates), as numpy.max.

    >>> max([[1.0, 5.0], [3.0, 4.0]], axis=1)
    array([5., 4.])
    """
    return _extreme(
        "max", "maximum", P.reduce_max, U.maximum, a, axis, out, keepdims, initial, where
    )


@numpy_function
def min(a, axis=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Minimum over ``axis`` (NaN propagates), as numpy.min.

    >>> min([[1.0, 5.0], [3.0, 4.0]], axis=0)
    array([1., 4.])
    """
    return _extreme(
        "min", "minimum", P.reduce_min, U.minimum, a, axis, out, keepdims, initial, where
    )


amax = max
amin = min


@numpy_function
def ptp(a, axis=None, out=None, keepdims=False):
    """Peak to peak, max - min over ``axis``, as numpy.ptp.

    >>> ptp([[1, 5], [3, 4]], axis=1)
    array([4, 1])
    """
    _no_out("ptp", out)
    return U.subtract(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


# -- argmax and argmin ----------------------------------------------------------------------
def _arg_extreme(name, prim, a, axis, out, keepdims):
    _no_out(name, out)
    x = lift(a)
    keepdims = _flag(keepdims)
    if axis is None:
        if x.size == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence {_at()}")
        flat = Tracer(P.reshape(x.node, shape=(x.size,)))
        r = Tracer(prim(flat.node, axis=0))
        return reshaped(r, (1,) * x.ndim) if keepdims else r
    ax = normalize_axis(axis, x.ndim)
    if x.ndim == 0:  # NumPy lets a 0-d array use axis 0 or -1
        return splat(0, np.int64, ())
    if x.shape[ax] == 0:
        raise ValueError(f"attempt to get {name} of an empty sequence {_at()}")
    r = Tracer(prim(x.node, axis=ax))
    return reshaped(r, _reduced_shape(x.shape, (ax,), True)) if keepdims else r


@numpy_function
def argmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the first maximum (a NaN counts as the maximum); flat index for axis=None.

    >>> argmax([[1.0, 5.0], [3.0, 4.0]])
    np.int64(1)
    """
    return _arg_extreme("argmax", P.argmax, a, axis, out, keepdims)


@numpy_function
def argmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the first minimum (a NaN counts as the minimum); flat index for axis=None.

    >>> argmin([[1.0, 5.0], [3.0, 4.0]], axis=1)
    array([0, 0])
    """
    return _arg_extreme("argmin", P.argmin, a, axis, out, keepdims)


# -- all and any ----------------------------------------------------------------------------
def _logical_reduction(name, prim, identity, a, axis, out, keepdims, where):
    _no_out(name, out)
    x = _truth(lift(a))
    axes = _reduction_axes(axis, x.ndim)
    keepdims = _flag(keepdims)
    if _over_empty_axis(x.shape, axes):
        _mask(x, where)  # still check it
        return splat(identity, np.bool_, _reduced_shape(x.shape, axes, keepdims))
    return _reduce(prim, _masked(x, _mask(x, where), identity), axes, keepdims)


@numpy_function
def all(a, axis=None, out=None, keepdims=False, *, where=_NoValue):
    """True where every element along ``axis`` is nonzero (NaN counts as True).

    >>> all([[True, False], [True, True]], axis=1)
    array([False,  True])
    """
    return _logical_reduction("all", P.reduce_min, True, a, axis, out, keepdims, where)


@numpy_function
def any(a, axis=None, out=None, keepdims=False, *, where=_NoValue):
    """True where some element along ``axis`` is nonzero (NaN counts as True).

    >>> any([[0, 0], [0, 3]], axis=1)
    array([False,  True])
    """
    return _logical_reduction("any", P.reduce_max, False, a, axis, out, keepdims, where)


# -- mean, var, std, average ----------------------------------------------------------------
def _mean_dtype(x, dtype):
    """The accumulation dtype of mean/var: float64 for bools and integers unless given."""
    if dtype is not None:
        return dtypes.dtype(dtype)
    return dtypes.float64 if x.dtype.kind in "biu" else x.dtype


@numpy_function
def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NoValue):
    """Arithmetic mean, sum / n, as numpy.mean (integers give float64).

    >>> mean([[1, 2], [3, 5]], axis=0)
    array([2. , 3.5])
    """
    _no_out("mean", out)
    x = lift(a)
    axes = _reduction_axes(axis, x.ndim, strict=True)
    keepdims = _flag(keepdims)
    mask = _mask(x, where)
    s = _reduce(P.reduce_sum, _masked(cast(x, _mean_dtype(x, dtype)), mask, 0), axes, keepdims)
    return _divide_by_count(s, _masked_count(x, mask, axes, keepdims))


def _var(name, a, axis, dtype, out, ddof, keepdims, where, mean, correction):
    _no_out(name, out)
    if correction is not _NoValue:
        if ddof != 0:
            raise ValueError(f"ddof and correction can't be provided simultaneously. {_at()}")
        ddof = correction
    x = lift(a)
    axes = _reduction_axes(axis, x.ndim, strict=True)
    keepdims = _flag(keepdims)
    dt = _mean_dtype(x, dtype)
    mask = _mask(x, where)
    n = _masked_count(x, mask, axes, True)
    if mean is _NoValue:
        m = _divide_by_count(_reduce(P.reduce_sum, _masked(cast(x, dt), mask, 0), axes, True), n)
    else:
        m = lift(mean)
    d = U.subtract(x, m)  # NumPy's promotion: int32 - float32 is float64
    s = _reduce(P.reduce_sum, _masked(cast(U.multiply(d, d), dt), mask, 0), axes, keepdims)
    if mask is None:
        return _divide_by_count(s, builtins.max(n - ddof, 0))
    dof = U.maximum(U.subtract(reshaped(n, s.shape), ddof), 0)
    return _divide_by_count(s, dof)


@numpy_function
def var(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims=False,
    *,
    where=_NoValue,
    mean=_NoValue,
    correction=_NoValue,
):
    """Variance, sum((x - mean)**2) / (n - ddof), as numpy.var (n - ddof <= 0 gives inf/nan).

    >>> var([1.0, 2.0, 3.0, 4.0])
    np.float64(1.25)
    """
    return _var("var", a, axis, dtype, out, ddof, keepdims, where, mean, correction)


@numpy_function
def std(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims=False,
    *,
    where=_NoValue,
    mean=_NoValue,
    correction=_NoValue,
):
    """Standard deviation, sqrt(var), as numpy.std.

    >>> std([1.0, 3.0])
    np.float64(1.0)
    """
    v = _var("std", a, axis, dtype, out, ddof, keepdims, where, mean, correction)
    return cast(U.sqrt(v), v.dtype)


def _average_axes(axis, ndim):
    """numpy.average's axes: an int, tuple or list, in the order given (no sorting)."""
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    out = []
    for a in axes:
        a = normalize_axis(a, ndim)
        if ndim == 0:
            raise _axis_error(a, ndim)
        out.append(a)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in `axis` argument {_at()}")
    return tuple(out)


@numpy_function
def average(a, axis=None, weights=None, returned=False, *, keepdims=_NoValue):
    """Weighted mean sum(a * w) / sum(w) (plain mean without weights), as numpy.average.

    With ``returned=True`` also gives the sum of the weights (or the count), broadcast to the
    result's shape. A zero weight sum raises ZeroDivisionError when the weights are concrete.

    >>> average([1.0, 2.0, 4.0], weights=[1.0, 1.0, 2.0])
    np.float64(2.75)
    """
    x = lift(a)
    axes = None if axis is None else _average_axes(axis, x.ndim)
    keepdims = _flag(keepdims)
    if weights is None:
        avg = mean(x, axes, keepdims=keepdims)
        if not returned:
            return avg
        if avg.size == 0:
            raise ZeroDivisionError(f"division by zero {_at()}")
        return avg, splat(x.size / avg.size, avg.dtype, avg.shape)
    w = lift(weights)
    w = Tracer(w.node) if w.weak else w  # NumPy takes asanyarray(weights): never weak
    if x.dtype.kind in "biu":
        dt = dtypes.dtype(np.result_type(x.dtype, w.dtype, np.float64))
    else:
        dt = dtypes.dtype(np.result_type(x.dtype, w.dtype))
    if x.shape != w.shape:
        if axes is None:
            raise TypeError(f"Axis must be specified when shapes of a and weights differ. {_at()}")
        if w.shape != tuple(x.shape[ax] for ax in axes):
            raise ValueError(
                f"Shape of weights must be consistent with shape of a along specified axis. {_at()}"
            )
        if list(axes) != sorted(axes):
            w = Tracer(P.transpose(w.node, perm=tuple(int(i) for i in np.argsort(axes))))
        w = reshaped(w, tuple(n if ax in axes else 1 for ax, n in enumerate(x.shape)))
    scl = sum(w, axes, dtype=dt, keepdims=keepdims)
    if not contains_tracer(weights) and np.any(materialize(scl) == 0):
        raise ZeroDivisionError(f"Weights sum to zero, can't be normalized {_at()}")
    avg = U.true_divide(sum(U.multiply(x, w, dtype=dt), axes, keepdims=keepdims), scl)
    if not returned:
        return avg
    return avg, broadcast_to(scl, avg.shape)


# -- scans ----------------------------------------------------------------------------------
def _scan(name, prim, np_fn, a, axis, dtype, out):
    _no_out(name, out)
    x = lift(a)
    if axis is None or x.ndim == 0:  # NumPy flattens (a 0-d array becomes shape (1,))
        x = reshaped(x, (x.size,))
    ax = 0 if axis is None else normalize_axis(axis, x.ndim)
    x = cast(x, _acc_dtype(np_fn, x, dtype))
    return Tracer(prim(x.node, axis=ax, reverse=False))


@numpy_function
def cumsum(a, axis=None, dtype=None, out=None):
    """Inclusive running sum along ``axis`` (flattened for axis=None), as numpy.cumsum.

    >>> cumsum([[1, 2], [3, 4]])
    array([ 1,  3,  6, 10])
    """
    return _scan("cumsum", P.cumsum, np.cumsum, a, axis, dtype, out)


@numpy_function
def cumprod(a, axis=None, dtype=None, out=None):
    """Inclusive running product along ``axis`` (flattened for axis=None), as numpy.cumprod.

    >>> cumprod([[1, 2], [3, 4]], axis=1)
    array([[ 1,  2],
           [ 3, 12]])
    """
    return _scan("cumprod", P.cumprod, np.cumprod, a, axis, dtype, out)


def _diff_operand(v, x: Tracer, axis) -> Tracer:
    """A prepend/append value as NumPy uses it: an array (never weak), scalars broadcast."""
    t = lift(v)
    t = Tracer(t.node) if t.weak else t
    if t.ndim == 0:
        shape = list(x.shape)
        shape[axis] = 1
        t = broadcast_to(t, tuple(shape))
    return t


def _concatenate(parts, axis) -> Tracer:
    """np.concatenate's checks and result dtype, on the parts of a diff."""
    for t in parts:
        if not axis < t.ndim:
            raise _axis_error(axis, t.ndim)
    first = parts[0]
    for t in parts[1:]:
        if t.ndim != first.ndim:
            raise ValueError(
                "all the input array dimensions except for the concatenation axis must match "
                f"exactly, but the arrays have {first.ndim} and {t.ndim} dimensions {_at()}"
            )
        for i, (m, n) in enumerate(zip(first.shape, t.shape)):
            if i != axis and m != n:
                raise ValueError(
                    "all the input array dimensions except for the concatenation axis must "
                    f"match exactly, but along dimension {i}, the arrays have sizes {m} and "
                    f"{n} {_at()}"
                )
    dt = dtypes.dtype(np.result_type(*(t.dtype for t in parts)))
    return Tracer(P.concatenate(*(cast(t, dt).node for t in parts), axis=axis))


def _slice_axis(x: Tracer, axis, start, stop) -> Tracer:
    start_idx = [0] * x.ndim
    limit = list(x.shape)
    start_idx[axis], limit[axis] = start, stop
    node = P.slice(x.node, start=tuple(start_idx), limit=tuple(limit), stride=(1,) * x.ndim)
    return Tracer(node)


@numpy_function
def diff(a, n=1, axis=-1, prepend=_NoValue, append=_NoValue):
    """``n``-th discrete difference along ``axis`` (not_equal for bools), as numpy.diff.

    >>> diff([1, 4, 9, 16])
    array([3, 5, 7])
    """
    if n == 0:
        return lift(a)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r} {_at()}")
    x = lift(a)
    if x.ndim == 0:
        raise ValueError(f"diff requires input that is at least one dimensional {_at()}")
    ax = normalize_axis(axis, x.ndim)
    parts = [x]
    if prepend is not _NoValue:
        parts.insert(0, _diff_operand(prepend, x, ax))
    if append is not _NoValue:
        parts.append(_diff_operand(append, x, ax))
    x = _concatenate(parts, ax) if len(parts) > 1 else Tracer(x.node)
    op = U.not_equal if x.dtype == dtypes.bool_ else U.subtract
    for _ in range(n):
        length = x.shape[ax]
        hi = _slice_axis(x, ax, builtins.min(1, length), length)
        lo = _slice_axis(x, ax, 0, builtins.max(length - 1, 0))
        x = op(hi, lo)
    return x


# -- trace ----------------------------------------------------------------------------------
def _named_axis(axis, ndim, name):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, builtins.bool):
        raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer")
    if not -ndim <= axis < ndim:
        raise _axis_error(axis, ndim, prefix=f"{name}: ")
    return int(axis) % ndim


@numpy_function
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """Sum of the diagonal (at ``offset``) of the ``axis1``/``axis2`` planes, as numpy.trace.

    The diagonal is gathered (exact), then summed with numpy.sum's dtype rules.

    >>> trace([[1, 2], [3, 4]])
    np.int64(5)
    """
    _no_out("trace", out)
    x = lift(a)
    if x.ndim < 2:
        raise ValueError(f"diag requires an array of at least two dimensions {_at()}")
    ax1 = _named_axis(axis1, x.ndim, "axis1")
    ax2 = _named_axis(axis2, x.ndim, "axis2")
    if ax1 == ax2:
        raise ValueError(f"axis1 and axis2 cannot be the same {_at()}")
    rest = tuple(i for i in range(x.ndim) if i not in (ax1, ax2))
    dt = _acc_dtype(np.sum, x, dtype)
    n1, n2 = x.shape[ax1], x.shape[ax2]
    offset = int(offset)
    rows = range(builtins.max(0, -offset), builtins.max(0, builtins.min(n1, n2 - offset)))
    if len(rows) == 0:
        return splat(0, dt, tuple(x.shape[i] for i in rest))
    perm = (ax1, ax2, *rest)
    planes = transposed(x, perm)
    index = np.asarray([(i, i + offset) for i in rows], dtype=np.int64)
    diagonal = Tracer(P.gather(planes.node, lift(index).node))
    return _reduce(P.reduce_sum, cast(diagonal, dt), (0,), False)


# -- NaN-ignoring reductions ----------------------------------------------------------------
def _zero_nans(x: Tracer) -> Tracer:
    if x.dtype.kind != "f":
        return x
    return U.where(U.isnan(x), np.asarray(0, x.dtype), x)


@numpy_function
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Sum treating NaN as zero, as numpy.nansum.

    >>> nansum([1.0, float("nan"), 2.0])
    np.float64(3.0)
    """
    x = _zero_nans(lift(a))
    return _sum_like(
        "nansum", P.reduce_sum, 0, U.add, np.sum, x, axis, dtype, out, keepdims, initial, where
    )


@numpy_function
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=_NoValue):
    """Mean of the non-NaN elements (NaN where all are NaN), as numpy.nanmean.

    >>> nanmean([1.0, float("nan"), 2.0])
    np.float64(1.5)
    """
    x = lift(a)
    if x.dtype.kind != "f":
        return mean(x, axis, dtype, out, keepdims, where=where)
    _no_out("nanmean", out)
    if dtype is not None and dtypes.dtype(dtype).kind != "f":
        raise TypeError(f"If a is inexact, then dtype must be inexact {_at()}")
    axes = _reduction_axes(axis, x.ndim)
    keepdims = _flag(keepdims)
    mask = _mask(x, where)
    keep = U.logical_not(U.isnan(x))
    keep = keep if mask is None else U.logical_and(keep, mask)
    count = _reduce(P.reduce_sum, cast(keep, dtypes.int64), axes, keepdims)
    total = _masked(cast(x, _acc_dtype(np.sum, x, dtype)), keep, 0)
    return _divide_by_count(_reduce(P.reduce_sum, total, axes, keepdims), count)


def _nan_extreme(name, op_name, prim, combine, fill, a, axis, out, keepdims, initial, where):
    x = lift(a)
    if x.dtype.kind != "f":  # no NaN to ignore
        return _extreme(name, op_name, prim, combine, x, axis, out, keepdims, initial, where)
    _no_out(name, out)
    axes = _reduction_axes(axis, x.ndim)
    keepdims = _flag(keepdims)
    mask = _mask(x, where)
    if mask is not None and initial is _NoValue:
        raise ValueError(
            f"reduction operation '{op_name}' does not have an identity, so to use a where "
            f"mask one has to specify 'initial' {_at()}"
        )
    if _over_empty_axis(x.shape, axes):
        if initial is _NoValue:
            raise _empty_error(op_name)
        return broadcast_to(cast(lift(initial), x.dtype), _reduced_shape(x.shape, axes, keepdims))
    x = _masked(x, mask, np.nan)  # masked out: ignored like a NaN
    nan = U.isnan(x)
    r = _reduce(prim, U.where(nan, np.asarray(fill, x.dtype), x), axes, keepdims)
    all_nan = _reduce(P.reduce_min, nan, axes, keepdims)
    r = U.where(all_nan, np.asarray(np.nan, x.dtype), r)
    if initial is not _NoValue:
        r = cast(combine(r, cast(lift(initial), x.dtype)), x.dtype)
    return r


@numpy_function
def nanmax(a, axis=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Maximum ignoring NaN (NaN where all are NaN), as numpy.nanmax.

    >>> nanmax([1.0, float("nan"), 2.0])
    np.float64(2.0)
    """
    return _nan_extreme(
        "nanmax", "fmax", P.reduce_max, U.fmax, -np.inf, a, axis, out, keepdims, initial, where
    )


@numpy_function
def nanmin(a, axis=None, out=None, keepdims=False, initial=_NoValue, where=_NoValue):
    """Minimum ignoring NaN (NaN where all are NaN), as numpy.nanmin.

    >>> nanmin([1.0, float("nan"), 2.0])
    np.float64(1.0)
    """
    return _nan_extreme(
        "nanmin", "fmin", P.reduce_min, U.fmin, np.inf, a, axis, out, keepdims, initial, where
    )


__all__ = [
    "all",
    "amax",
    "amin",
    "any",
    "argmax",
    "argmin",
    "average",
    "cumprod",
    "cumsum",
    "diff",
    "max",
    "mean",
    "min",
    "nanmax",
    "nanmean",
    "nanmin",
    "nansum",
    "prod",
    "ptp",
    "std",
    "sum",
    "trace",
    "var",
]
