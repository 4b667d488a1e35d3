"""Array creation: ``array``/``asarray``, filled arrays, ``eye``/``tri``, ``arange``,
``linspace`` and ``astype``.

Every function returns an array (0-d results stay arrays, as NumPy's creation functions do).
Filled arrays are a broadcast scalar constant; ``eye`` and ``tri`` compare two ``iota``s;
``arange`` and ``linspace`` are ``iota`` times a step plus a start, in the same order of
operations NumPy uses, so the values agree bit for bit.

Lists that hold traced values are stacked (NumPy's dtype rules: Python numbers count as
int64/float64/bool, as in ``np.array``). Plain ``np.array([tracer, ...])`` inside ``mlc.jit``
cannot reach mlc (NumPy converts the elements itself), so write ``mlc.numpy.array`` there.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from mlc.errors import ConcretizationError, where
from mlc.ir import dtypes
from mlc.ir import primitives as P

from ._core import (
    Tracer,
    broadcast_shapes,
    broadcast_to,
    cast,
    contains_tracer,
    is_tracer,
    lift,
    normalize_axis,
    numpy_function,
    result_type,
)


def _at():
    return f" (at {where()})"


def _dtype(d) -> np.dtype:
    """A supported dtype, or TypeError naming the one asked for."""
    try:
        return dtypes.dtype(d)
    except TypeError as e:
        raise TypeError(f"{e}{_at()}") from None


def _shape(shape) -> tuple[int, ...]:
    """A shape argument (an int or a sequence of ints) as a tuple, checked as NumPy does."""
    if is_tracer(shape) or (isinstance(shape, (list, tuple)) and any(map(is_tracer, shape))):
        raise ConcretizationError(
            f"{where()}: an array's shape must be concrete, but it was given a traced value. "
            "Make the argument static (mlc.jit(f, static_argnums=...))."
        )
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(
            f"expected a sequence of integers or a single integer, got '{shape}'" + _at()
        ) from None
    if any(d < 0 for d in shape):
        raise ValueError("negative dimensions are not allowed" + _at())
    return shape


def _filled(shape, value: Tracer, dtype) -> Tracer:
    """``value`` cast to ``dtype`` and broadcast to ``shape`` (NumPy's copyto rules)."""
    t = cast(value, dtype)
    try:
        return broadcast_to(t, shape)
    except ValueError:
        raise ValueError(
            f"could not broadcast input array from shape {t.shape} into shape {shape}" + _at()
        ) from None


def _scalar(value, dtype, shape=()) -> Tracer:
    """A constant ``value`` of ``dtype`` broadcast to ``shape`` (one scalar in the graph)."""
    c = P.const(np.asarray(value).astype(dtype), dtype)
    return Tracer(P.broadcast_in_dim(c, shape=tuple(shape), dims=()) if shape else c)


# -- array, asarray ---------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """An array from an array-like: lists may mix traced arrays and Python numbers.

    >>> array([[1, 2], [3, 4.5]])
    array([[1. , 2. ],
           [3. , 4.5]])
    """
    dt = None if dtype is None else _dtype(dtype)
    if is_tracer(object):
        t = Tracer(object.node) if dt is None else cast(object, dt)
    elif isinstance(object, (list, tuple)) and contains_tracer(object):
        t = _stack_nested(object, dt)
    else:
        if isinstance(object, complex) or np.iscomplexobj(object):
            raise TypeError("mlc does not support complex numbers yet" + _at())
        a = np.array(object, dtype=dt)
        t = Tracer(P.const(a, _dtype(a.dtype)))
    if t.ndim < ndmin:
        t = Tracer(P.reshape(t.node, shape=(1,) * (ndmin - t.ndim) + t.shape))
    return t


def _leaves(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


def _leaf_dtype(x) -> np.dtype:
    if is_tracer(x):
        return x.dtype  # a weak (Python scalar) tracer already holds the default dtype
    if isinstance(x, complex) or np.iscomplexobj(x):
        raise TypeError("mlc does not support complex numbers yet" + _at())
    return np.asarray(x).dtype


def _stack_nested(obj, dt) -> Tracer:
    """Nested lists of tracers, arrays and numbers stacked into one array (NumPy's dtype)."""
    if dt is None:
        dt = _dtype(np.result_type(*[_leaf_dtype(v) for v in _leaves(obj)]))
    return _build(obj, dt, ())


def _build(obj, dt, outer) -> Tracer:
    if not isinstance(obj, (list, tuple)):
        return cast(lift(obj), dt) if is_tracer(obj) else Tracer(P.const(np.asarray(obj), dt))
    parts = [_build(v, dt, outer + (len(obj),)) for v in obj]
    if not parts:
        return Tracer(P.const(np.zeros((0,), dt), dt))
    shapes = [p.shape for p in parts]
    if any(s != shapes[0] for s in shapes):
        common = []
        for dims in zip(*shapes):
            if len(set(dims)) > 1:
                break
            common.append(dims[0])
        detected = outer + (len(obj),) + tuple(common)
        raise ValueError(
            "setting an array element with a sequence. The requested array has an "
            f"inhomogeneous shape after {len(detected)} dimensions. The detected shape was "
            f"{detected} + inhomogeneous part." + _at()
        )
    rows = [P.reshape(p.node, shape=(1,) + p.shape) for p in parts]
    return Tracer(rows[0] if len(rows) == 1 else P.concatenate(*rows, axis=0))


@numpy_function(keep_0d=True)
def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    """``array(a, dtype)``: arrays are immutable here, so there is nothing to copy or share."""
    return array(a, dtype=dtype)


@numpy_function(keep_0d=True)
def asanyarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    return array(a, dtype=dtype)


@numpy_function(keep_0d=True)
def ascontiguousarray(a, dtype=None, *, like=None):
    """``array(a, dtype)`` with at least one dimension, as NumPy's."""
    return array(a, dtype=dtype, ndmin=1)


@numpy_function(keep_0d=True)
def copy(a, order="K", subok=False):
    return array(a)


@numpy_function(keep_0d=True)
def astype(x, dtype, /, *, copy=True, device=None):
    """``x`` converted to ``dtype`` (what ``x.astype(dtype)`` calls).

    >>> astype(np.array([1.7, -1.7]), np.int32)
    array([ 1, -1], dtype=int32)
    """
    x = lift(x)
    return cast(Tracer(x.node), _dtype(dtype))


# -- filled arrays ----------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def zeros(shape, dtype=float, order="C", *, device=None, like=None):
    """An array of zeros.

    >>> zeros((2, 1), np.int32)
    array([[0],
           [0]], dtype=int32)
    """
    return _scalar(0, _dtype(dtype), _shape(shape))


@numpy_function(keep_0d=True)
def ones(shape, dtype=float, order="C", *, device=None, like=None):
    return _scalar(1, _dtype(dtype), _shape(shape))


@numpy_function(keep_0d=True)
def empty(shape, dtype=float, order="C", *, device=None, like=None):
    """Arrays have no uninitialized memory here: ``empty`` is ``zeros``."""
    return _scalar(0, _dtype(dtype), _shape(shape))


@numpy_function(keep_0d=True)
def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    """``fill_value`` (a scalar or an array that broadcasts) repeated to ``shape``."""
    value = lift(fill_value)
    dt = value.dtype if dtype is None else _dtype(dtype)
    return _filled(_shape(shape), value, dt)


def _like(a, dtype, shape):
    a = lift(a)
    dt = a.dtype if dtype is None else _dtype(dtype)
    return dt, (a.shape if shape is None else _shape(shape))


@numpy_function(keep_0d=True)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Zeros with the shape and dtype of ``a`` (each overridable)."""
    dt, shape = _like(a, dtype, shape)
    return _scalar(0, dt, shape)


@numpy_function(keep_0d=True)
def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    dt, shape = _like(a, dtype, shape)
    return _scalar(1, dt, shape)


@numpy_function(keep_0d=True)
def empty_like(prototype, dtype=None, order="K", subok=True, shape=None, *, device=None):
    dt, shape = _like(prototype, dtype, shape)
    return _scalar(0, dt, shape)


@numpy_function(keep_0d=True)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    dt, shape = _like(a, dtype, shape)
    return _filled(shape, lift(fill_value), dt)


# -- eye, identity, tri -------------------------------------------------------------------------
def _diagonal_compare(prim, N, M, k, dtype) -> Tracer:
    """``prim(col, row + k)`` over an N x M grid, converted to ``dtype``."""
    n, m = _shape((N, N if M is None else M))
    k = operator.index(k)
    rows = P.iota(shape=(n, m), dtype=dtypes.int64, axis=0)
    cols = P.iota(shape=(n, m), dtype=dtypes.int64, axis=1)
    shifted = P.add(rows, _scalar(k, dtypes.int64, (n, m)).node)
    mask = prim(cols, shifted)
    dt = _dtype(dtype)
    return Tracer(mask if dt == dtypes.bool_ else P.convert(mask, dtype=dt))


@numpy_function(keep_0d=True)
def eye(N, M=None, k=0, dtype=float, order="C", *, device=None, like=None):
    """Ones on the ``k``-th diagonal of an N x M array.

    >>> eye(2, 3, k=1, dtype=int)
    array([[0, 1, 0],
           [0, 0, 1]])
    """
    return _diagonal_compare(P.eq, N, M, k, dtype)


@numpy_function(keep_0d=True)
def identity(n, dtype=None, *, like=None):
    return _diagonal_compare(P.eq, n, None, 0, float if dtype is None else dtype)


@numpy_function(keep_0d=True)
def tri(N, M=None, k=0, dtype=float, *, like=None):
    """Ones at and below the ``k``-th diagonal (negative sizes count as 0, as in NumPy)."""
    N, M = operator.index(N), None if M is None else operator.index(M)
    return _diagonal_compare(P.le, max(N, 0), None if M is None else max(M, 0), k, dtype)


# -- arange, linspace ---------------------------------------------------------------------------
def _concrete_number(v, what):
    if is_tracer(v):
        raise ConcretizationError(
            f"{where()}: {what} needs concrete start/stop/step (the length of the result "
            "depends on them), but it was given a traced value. Make the argument static "
            "(mlc.jit(f, static_argnums=...))."
        )
    if isinstance(v, complex) or np.iscomplexobj(v):
        raise TypeError("mlc does not support complex numbers yet" + _at())
    return v


@numpy_function(keep_0d=True)
def arange(start=None, stop=None, step=None, dtype=None, *, device=None, like=None):
    """Evenly spaced values in ``[start, stop)``: value i is ``start + i*delta`` in the result
    dtype, where ``delta = dtype(start + step) - dtype(start)``, exactly as NumPy fills it.

    >>> arange(3), arange(1, 2, 0.25)
    (array([0, 1, 2]), array([1.  , 1.25, 1.5 , 1.75]))
    """
    if stop is None:
        if start is None:
            raise TypeError("arange() requires stop to be specified." + _at())
        start, stop = 0, start
    start = 0 if start is None else start
    step = 1 if step is None else step
    for v in (start, stop, step):
        _concrete_number(v, "arange")
    if dtype is None:
        dt = _dtype(np.result_type(np.int64, *(np.asarray(v).dtype for v in (start, stop, step))))
    else:
        dt = _dtype(dtype)
    n = _arange_length(start, stop, step)
    with np.errstate(all="ignore"):
        first = np.asarray(start).astype(dt)
        second = np.asarray(start + step).astype(dt)
    if dt == dtypes.bool_:
        if n > 2:
            raise TypeError(
                "arange() is only supported for booleans when the result has at most length 2."
                + _at()
            )
        return Tracer(P.const(np.array([first, second], bool)[:n], dt))
    if n <= 2:
        return Tracer(P.const(np.array([first, second], dt)[:n], dt))
    with np.errstate(all="ignore"):
        delta = second - first
    i = P.iota(shape=(n,), dtype=dt, axis=0)
    values = P.add(_scalar(first, dt, (n,)).node, P.mul(i, _scalar(delta, dt, (n,)).node))
    # The second value is stored as computed, not recomputed as start + 1*delta.
    is_second = P.eq(i, _scalar(1, dt, (n,)).node)
    return Tracer(P.select(is_second, _scalar(second, dt, (n,)).node, values))


def _arange_length(start, stop, step) -> int:
    """NumPy's length: ceil((stop - start) / step), computed on the given Python/NumPy values."""
    if step == 0:
        raise ZeroDivisionError("division by zero" + _at())
    with np.errstate(all="ignore"):
        ratio = float((stop - start) / step)
    if math.isnan(ratio):
        raise ValueError("arange: cannot compute length" + _at())
    if math.isinf(ratio):
        raise ValueError("Maximum allowed size exceeded" + _at())
    return max(0, math.ceil(ratio))


@numpy_function(keep_0d=True)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """``num`` evenly spaced values from ``start`` to ``stop`` (arrays broadcast), computed with
    NumPy's formula: ``step = (stop - start) / div``, value i is ``i * step + start``, the last
    value is ``stop`` exactly when ``endpoint``.

    >>> linspace(0, 1, 5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative." + _at())
    div = num - 1 if endpoint else num
    s, e = lift(start), lift(stop)
    dt = result_type(s, e, 1.0)  # NumPy: ensure_inexact, with NEP 50 weak Python scalars
    s, e = cast(s, dt), cast(e, dt)
    shape = broadcast_shapes(s.shape, e.shape)
    s, e = broadcast_to(s, shape), broadcast_to(e, shape)
    delta = Tracer(P.sub(e.node, s.node))
    full = (num,) + shape

    def spread(t):  # (shape) -> (num,) + shape
        return P.broadcast_in_dim(t.node, shape=full, dims=tuple(range(1, len(full))))

    i = P.iota(shape=full, dtype=dt, axis=0)
    if div > 0:
        step = Tracer(P.div(delta.node, _scalar(div, dt, shape).node))
        y = _scaled(i, step, delta, div, dt, full, spread)
    else:
        step = np.nan
        y = P.mul(i, spread(delta))
    y = P.add(y, spread(s))
    if endpoint and num > 1:
        head = P.slice(y, start=(0,) * len(full), limit=(num - 1,) + shape, stride=(1,) * len(full))
        y = P.concatenate(head, P.reshape(e.node, shape=(1,) + shape), axis=0)
    if axis != 0:
        axis = normalize_axis(axis, len(full))
        perm = list(range(1, len(full)))
        perm.insert(axis, 0)
        y = P.transpose(y, perm=tuple(perm))
    y = Tracer(y)
    if dtype is not None:
        out = _dtype(dtype)
        if out.kind in "iu":
            y = Tracer(P.floor(y.node))
        y = cast(y, out)
    return (y, step) if retstep else y


def _scaled(i, step, delta, div, dt, full, spread):
    """``i * step``; NumPy uses ``i / div * delta`` instead when any step is 0 (underflow)."""
    by_step = P.mul(i, spread(step))
    by_delta = P.mul(P.div(i, _scalar(div, dt, full).node), spread(delta))
    zero = P.eq(step.node, _scalar(0, dt, step.shape).node)
    if step.size == 0:
        zero = P.const(False, dtypes.bool_)
    elif step.ndim:
        zero = P.reduce_max(P.convert(zero, dtype=dtypes.int32), axes=tuple(range(step.ndim)))
        zero = P.eq(zero, P.const(np.int32(1), dtypes.int32))
    any_zero = P.broadcast_in_dim(zero, shape=full, dims=())
    return P.select(any_zero, by_delta, by_step)


__all__ = [
    "arange",
    "array",
    "asanyarray",
    "asarray",
    "ascontiguousarray",
    "astype",
    "copy",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "identity",
    "linspace",
    "ones",
    "ones_like",
    "tri",
    "zeros",
    "zeros_like",
]
