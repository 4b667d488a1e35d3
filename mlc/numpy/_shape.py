"""Shape manipulation in mlc.numpy: reshape, transpose, joins and splits, padding, sorting.

Everything here is data movement written with the structural primitives (reshape, transpose,
slice, rev, pad, concatenate, broadcast_in_dim, gather, iota) plus ``argsort`` for sorting.
Index maps that depend only on shapes (repeat counts, pad modes) are computed with NumPy at
trace time and become constant gather indices, so ``pad(mode="reflect")`` follows NumPy's own
rules exactly.

Results are always strongly typed: ``reshape(3, ())`` is an int64 array, as in NumPy, never a
weak Python scalar.

Differences from NumPy: ``ndarray.sort()`` sorts in place in NumPy; ``Tracer.sort()`` returns
the sorted array (tracers are immutable). ``np.r_`` and ``np.c_`` cannot see tracers (they call
``np.array`` first): use ``mlc.numpy.r_`` and ``mlc.numpy.c_`` inside traced code.
"""

import builtins
import math

import numpy as np

from mlc.errors import where
from mlc.ir import dtypes
from mlc.ir import primitives as P

from ._core import (
    Tracer,
    cast,
    contains_tracer,
    is_tracer,
    lift,
    numpy_function,
    reshaped,
    splat,
    transposed,
)
from ._core import broadcast_shapes as _broadcast_shapes
from ._core import (
    broadcast_to as _broadcast_to,
)

_AxisError = np.exceptions.AxisError


# -- helpers --------------------------------------------------------------------------------
def _strong(x) -> Tracer:
    """``x`` as a tracer with a definite dtype (a Python scalar becomes a NumPy array would)."""
    t = lift(x)
    return Tracer(t.node) if t.weak else t


def _int(v, what="value") -> int:
    if is_tracer(v):
        raise TypeError(
            f"{what} must be a concrete integer, not a traced array (shapes cannot depend on "
            f"traced values); make it static (at {where()})"
        )
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
            return int(v)
        raise TypeError(f"'{type(v).__name__}' object cannot be interpreted as an integer")
    return int(v)


def _axis(axis, ndim, name=None) -> int:
    """A non-negative axis; AxisError (also for 0-d arrays) as NumPy's normalize_axis_index."""
    axis = _int(axis, "axis")
    if not -ndim <= axis < ndim:
        prefix = f"{name}: " if name else ""
        raise _AxisError(
            f"{prefix}axis {axis} is out of bounds for array of dimension {ndim} (at {where()})"
        )
    return axis % ndim


def _axes(axis, ndim, name=None, repeated="repeated axis") -> tuple[int, ...]:
    """An int or a sequence of ints as distinct non-negative axes, in the given order."""
    if isinstance(axis, np.ndarray):
        axis = axis.tolist()
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = tuple(_axis(a, ndim, name) for a in items)
    if len(set(out)) != len(out):
        raise ValueError(f"{repeated} (at {where()})")
    return out


def _slice(t: Tracer, axis, start, stop, stride=1) -> Tracer:
    start_, limit, strides = [0] * t.ndim, list(t.shape), [1] * t.ndim
    start_[axis], limit[axis], strides[axis] = start, stop, stride
    if start == 0 and stop == t.shape[axis] and stride == 1:
        return t
    return Tracer(P.slice(t.node, start=tuple(start_), limit=tuple(limit), stride=tuple(strides)))


def _concat(ts, axis) -> Tracer:
    return ts[0] if len(ts) == 1 else Tracer(P.concatenate(*(t.node for t in ts), axis=axis))


def _take(t: Tracer, idx, axis) -> Tracer:
    """``t`` indexed by the constant 1-d integer array ``idx`` along ``axis`` (in range)."""
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    if idx.size == 0 or np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        start = int(idx[0]) if idx.size else 0
        return _slice(t, axis, start, start + idx.size)
    others = [d for d in range(t.ndim) if d != axis]
    front = transposed(t, [axis] + others)
    g = Tracer(P.gather(front.node, P.const(idx.reshape(-1, 1), dtypes.int64)))
    return transposed(g, list(range(1, axis + 1)) + [0] + list(range(axis + 1, t.ndim)))


def _take_along(t: Tracer, idx: Tracer, axis) -> Tracer:
    """``t`` gathered with ``idx`` (same shape as ``t``) along ``axis``: take_along_axis."""
    parts = []
    for d in range(t.ndim):
        part = idx.node if d == axis else P.iota(shape=t.shape, dtype=dtypes.int64, axis=d)
        parts.append(P.reshape(part, shape=t.shape + (1,)))
    index = parts[0] if len(parts) == 1 else P.concatenate(*parts, axis=t.ndim)
    return Tracer(P.gather(t.node, index))


def _unstack(t: Tracer) -> list:
    if t.ndim == 0:
        raise TypeError("iteration over a 0-d array")
    return [reshaped(_slice(t, 0, i, i + 1), t.shape[1:]) for i in range(t.shape[0])]


def _sequence(arrays) -> list:
    if is_tracer(arrays):
        return _unstack(arrays)
    return list(arrays)


def _shape_tuple(shape, what="shape") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) or (is_tracer(shape) and shape.ndim == 0):
        return (_int(shape, what),)
    return tuple(_int(n, what) for n in shape)


def _fmt(shape) -> str:
    inner = ",".join("newaxis" if n < 0 else str(n) for n in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _infer_shape(shape, size) -> tuple[int, ...]:
    """``shape`` with its one unknown (negative) dimension filled in, checked against ``size``."""
    unknown = [i for i, n in enumerate(shape) if n < 0]
    if len(unknown) > 1:
        raise ValueError(f"can only specify one unknown dimension (at {where()})")
    known = math.prod(n for n in shape if n >= 0)
    out = list(shape)
    if unknown and known and size % known == 0:
        out[unknown[0]] = size // known
    if any(n < 0 for n in out) or math.prod(out) != size:
        raise ValueError(
            f"cannot reshape array of size {size} into shape {_fmt(shape)} (at {where()})"
        )
    return tuple(out)


# -- reshaping ------------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    """``a`` with a new shape (one dimension may be -1); ``order`` "C" or "F".

    >>> reshape(np.arange(6), (2, -1)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    if shape is None:
        shape = newshape
    if shape is None:
        raise TypeError("reshape() missing required argument 'shape' (pos 2)")
    t = _strong(a)
    shape = _infer_shape(_shape_tuple(shape), t.size)
    if order in ("C", "A", "K", None):
        return reshaped(t, shape)
    if order != "F":
        raise ValueError(f"order must be one of 'C', 'F', 'A', got {order!r}")
    # Column-major reshape: reverse the axes, reshape row-major to the reversed shape, reverse.
    rev = reshaped(transposed(t, range(t.ndim)[::-1]), shape[::-1])
    return transposed(rev, range(len(shape))[::-1])


@numpy_function(keep_0d=True)
def ravel(a, order="C"):
    """``a`` flattened to 1-d (``Tracer.flatten`` is the same)."""
    t = _strong(a)
    return reshape(t, (t.size,), order="F" if order == "F" else "C")


@numpy_function(keep_0d=True)
def transpose(a, axes=None):
    """``a`` with its axes permuted (reversed when ``axes`` is None)."""
    t = _strong(a)
    if axes is None:
        return transposed(t, range(t.ndim)[::-1])
    if isinstance(axes, np.ndarray):
        axes = axes.tolist()
    axes = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
    if len(axes) != t.ndim:
        raise ValueError(f"axes don't match array (at {where()})")
    return transposed(t, _axes(axes, t.ndim, repeated="repeated axis in transpose"))


def _permute(t, moves) -> Tracer:
    order = list(range(t.ndim))
    for i, j in moves:
        order[i], order[j] = order[j], order[i]
    return transposed(t, order)


@numpy_function(keep_0d=True)
def swapaxes(a, axis1, axis2):
    t = _strong(a)
    i, j = _axis(axis1, t.ndim, "axis1"), _axis(axis2, t.ndim, "axis2")
    return _permute(t, [(i, j)])


@numpy_function(keep_0d=True)
def moveaxis(a, source, destination):
    """Move axes ``source`` to positions ``destination``, the others keep their order."""
    t = _strong(a)
    src = _axes(source, t.ndim, "source", "repeated axis in `source` argument")
    dst = _axes(destination, t.ndim, "destination", "repeated axis in `destination` argument")
    if len(src) != len(dst):
        raise ValueError(
            "`source` and `destination` arguments must have the same number of elements "
            f"(at {where()})"
        )
    order = [n for n in range(t.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transposed(t, order)


@numpy_function(keep_0d=True)
def rollaxis(a, axis, start=0):
    t = _strong(a)
    n = t.ndim
    axis = _axis(axis, n)
    start = _int(start, "start")
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise _AxisError(
            f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in "
            f"(at {where()})"
        )
    if axis < start:
        start -= 1
    order = [d for d in range(n) if d != axis]
    order.insert(start, axis)
    return transposed(t, order)


@numpy_function(keep_0d=True)
def squeeze(a, axis=None):
    """``a`` without size-1 axes (all of them, or those in ``axis``, which must be size 1)."""
    t = _strong(a)
    if axis is None:
        return reshaped(t, [n for n in t.shape if n != 1])
    if t.ndim == 0:
        _axes(axis, 1, repeated="duplicate value in 'axis'")  # NumPy accepts 0 and -1 here
        return t
    axes = _axes(axis, t.ndim, repeated="duplicate value in 'axis'")
    if any(t.shape[i] != 1 for i in axes):
        raise ValueError(
            f"cannot select an axis to squeeze out which has size not equal to one (at {where()})"
        )
    return reshaped(t, [n for i, n in enumerate(t.shape) if i not in axes])


@numpy_function(keep_0d=True)
def expand_dims(a, axis):
    """``a`` with new size-1 axes at positions ``axis`` (int or tuple) of the result."""
    t = _strong(a)
    n = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = _axes(axis, t.ndim + n)
    dims = iter(t.shape)
    return reshaped(t, [1 if i in axes else next(dims) for i in range(t.ndim + n)])


# -- broadcasting ---------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def broadcast_to(array, shape, subok=False):
    t = _strong(array)
    shape = _shape_tuple(shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"all elements of broadcast shape must be non-negative (at {where()})")
    return _broadcast_to(t, shape)


@numpy_function(keep_0d=True)
def broadcast_arrays(*args, subok=False):
    """All arguments broadcast to their common shape (a tuple, as NumPy 2 returns)."""
    ts = [_strong(a) for a in args]
    shape = _broadcast_shapes(*(t.shape for t in ts))
    return tuple(_broadcast_to(t, shape) for t in ts)


def broadcast_shapes(*args) -> tuple[int, ...]:
    """The shape that arrays of the given shapes broadcast to (Python ints).

    >>> broadcast_shapes((2, 1), (3,))
    (2, 3)
    """
    return tuple(int(n) for n in _broadcast_shapes(*(_shape_tuple(s) for s in args)))


def _atleast(arys, ndim):
    out = []
    for a in arys:
        t = _strong(a)
        if t.ndim < ndim:
            # 0-d -> (1,1,1); (N,) -> (1,N) or (1,N,1); (M,N) -> (M,N,1), as NumPy.
            shape = {0: (1,) * ndim, 1: (1, *t.shape, 1)[:ndim], 2: t.shape + (1,)}[t.ndim]
            t = reshaped(t, shape if ndim > 1 else (1,))
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


@numpy_function(keep_0d=True)
def atleast_1d(*arys):
    return _atleast(arys, 1)


@numpy_function(keep_0d=True)
def atleast_2d(*arys):
    return _atleast(arys, 2)


@numpy_function(keep_0d=True)
def atleast_3d(*arys):
    return _atleast(arys, 3)


# -- reversing and rotating -----------------------------------------------------------------
@numpy_function(keep_0d=True)
def flip(m, axis=None):
    t = _strong(m)
    axes = tuple(range(t.ndim)) if axis is None else _axes(axis, t.ndim)
    if not axes:
        return t
    return Tracer(P.rev(t.node, axes=tuple(sorted(axes))))


@numpy_function(keep_0d=True)
def flipud(m):
    t = _strong(m)
    if t.ndim < 1:
        raise ValueError(f"Input must be >= 1-d. (at {where()})")
    return flip(t, 0)


@numpy_function(keep_0d=True)
def fliplr(m):
    t = _strong(m)
    if t.ndim < 2:
        raise ValueError(f"Input must be >= 2-d. (at {where()})")
    return flip(t, 1)


@numpy_function(keep_0d=True)
def rot90(m, k=1, axes=(0, 1)):
    """``m`` rotated by 90 degrees ``k`` times in the plane of ``axes`` (first towards second)."""
    t = _strong(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError(f"len(axes) must be 2. (at {where()})")
    a0, a1 = _int(axes[0], "axes"), _int(axes[1], "axes")
    if a0 == a1 or abs(a0 - a1) == t.ndim:
        raise ValueError(f"Axes must be different. (at {where()})")
    if not (-t.ndim <= a0 < t.ndim and -t.ndim <= a1 < t.ndim):
        raise ValueError(f"Axes={axes} out of range for array of ndim={t.ndim}. (at {where()})")
    a0, a1 = a0 % t.ndim, a1 % t.ndim
    k = _int(k, "k") % 4
    if k == 0:
        return t
    if k == 2:
        return flip(t, (a0, a1))
    if k == 1:
        return _permute(flip(t, a1), [(a0, a1)])
    return flip(_permute(t, [(a0, a1)]), a1)


@numpy_function(keep_0d=True)
def roll(a, shift, axis=None):
    """Elements shifted by ``shift`` along ``axis`` (flattened when None), wrapping around."""
    t = _strong(a)
    if is_tracer(shift):
        raise TypeError(f"roll: shift must be concrete integers, not a traced array (at {where()})")
    if axis is None:
        return reshaped(roll(ravel(t), shift, 0), t.shape)
    totals = {}
    for s, ax in np.broadcast(shift, axis):
        ax = _axis(ax, t.ndim)
        totals[ax] = totals.get(ax, 0) + _int(s, "shift")
    for ax, s in sorted(totals.items()):
        n = t.shape[ax]
        s = s % n if n else 0
        if s:
            t = _concat([_slice(t, ax, n - s, n), _slice(t, ax, 0, n - s)], ax)
    return t


# -- repetition -----------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def repeat(a, repeats, axis=None):
    """Each element repeated ``repeats`` times (an int, or one count per element) along ``axis``."""
    t = _strong(a)
    if is_tracer(repeats):
        raise TypeError(
            f"repeat: repeats must be concrete (the result's shape depends on it) (at {where()})"
        )
    reps = np.asarray(repeats)
    if reps.dtype.kind not in "iufb":
        raise TypeError(f"Cannot cast array data from {reps.dtype!r} to dtype('int64')")
    reps = reps.astype(np.int64)
    if reps.ndim > 1:
        raise ValueError("repeat: repeats must be an int or a 1-d sequence of ints")
    if axis is None or t.ndim == 0:
        t = ravel(t)
    axis = 0 if axis is None else _axis(axis, t.ndim)
    if (reps < 0).any():
        raise ValueError(f"negative dimensions are not allowed (at {where()})")
    n = t.shape[axis]
    if reps.size == 1:
        r = int(reps.reshape(-1)[0])
        wide = t.shape[: axis + 1] + (r,) + t.shape[axis + 1 :]
        dims = tuple(d if d <= axis else d + 1 for d in range(t.ndim))
        b = Tracer(P.broadcast_in_dim(t.node, shape=wide, dims=dims))
        return reshaped(b, t.shape[:axis] + (n * r,) + t.shape[axis + 1 :])
    if reps.size != n:
        raise ValueError(
            f"operands could not be broadcast together with shape ({n},) ({reps.size},) "
            f"(at {where()})"
        )
    return _take(t, np.repeat(np.arange(n), reps), axis)


@numpy_function(keep_0d=True)
def tile(A, reps):
    """``A`` repeated ``reps`` times along each axis (reps an int or a tuple)."""
    t = _strong(A)
    tup = _shape_tuple(reps, "reps")
    if any(r < 0 for r in tup):
        raise ValueError(f"negative dimensions are not allowed (at {where()})")
    if t.ndim < len(tup):
        t = reshaped(t, (1,) * (len(tup) - t.ndim) + t.shape)
    tup = (1,) * (t.ndim - len(tup)) + tup
    if all(r == 1 for r in tup):
        return t
    # Broadcast to (r0, n0, r1, n1, ...) and merge each pair: no data is read twice per copy.
    wide = tuple(v for r, n in zip(tup, t.shape) for v in (r, n))
    b = Tracer(P.broadcast_in_dim(t.node, shape=wide, dims=tuple(range(1, 2 * t.ndim, 2))))
    return reshaped(b, [r * n for r, n in zip(tup, t.shape)])


# -- joining --------------------------------------------------------------------------------
def _join_dtype(ts, dtype, casting):
    target = np.result_type(*(t.dtype for t in ts)) if dtype is None else np.dtype(dtype)
    for t in ts:
        if not np.can_cast(t.dtype, target, casting):
            raise TypeError(
                f"Cannot cast array data from {t.dtype!r} to {target!r} according to the rule "
                f"{casting!r} (at {where()})"
            )
    return dtypes.dtype(target)


@numpy_function(keep_0d=True)
def concatenate(arrays, /, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Arrays joined along an existing ``axis`` (flattened first when None), dtypes promoted.

    >>> concatenate([np.zeros(2, np.int32), np.ones(1, np.float32)]).dtype
    dtype('float64')
    """
    if out is not None:
        raise NotImplementedError("mlc.numpy.concatenate: out= is not supported")
    ts = [_strong(a) for a in _sequence(arrays)]
    if not ts:
        raise ValueError(f"need at least one array to concatenate (at {where()})")
    if axis is None:
        ts = [ravel(t) for t in ts]
        axis = 0
    if any(t.ndim == 0 for t in ts):
        raise ValueError(f"zero-dimensional arrays cannot be concatenated (at {where()})")
    nd = ts[0].ndim
    axis = _axis(axis, nd)
    for i, t in enumerate(ts[1:], 1):
        if t.ndim != nd:
            raise ValueError(
                "all the input arrays must have same number of dimensions, but the array at "
                f"index 0 has {nd} dimension(s) and the array at index {i} has {t.ndim} "
                f"dimension(s) (at {where()})"
            )
        for d in range(nd):
            if d != axis and t.shape[d] != ts[0].shape[d]:
                raise ValueError(
                    "all the input array dimensions except for the concatenation axis must "
                    f"match exactly, but along dimension {d}, the array at index 0 has size "
                    f"{ts[0].shape[d]} and the array at index {i} has size {t.shape[d]} "
                    f"(at {where()})"
                )
    dt = _join_dtype(ts, dtype, casting)
    return _concat([cast(t, dt) for t in ts], axis)


@numpy_function(keep_0d=True)
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Arrays of one shape joined along a new ``axis``."""
    if out is not None:
        raise NotImplementedError("mlc.numpy.stack: out= is not supported")
    ts = [_strong(a) for a in _sequence(arrays)]
    if not ts:
        raise ValueError(f"need at least one array to stack (at {where()})")
    if any(t.shape != ts[0].shape for t in ts):
        raise ValueError(f"all input arrays must have the same shape (at {where()})")
    axis = _axis(axis, ts[0].ndim + 1)
    return concatenate([expand_dims(t, axis) for t in ts], axis, dtype=dtype, casting=casting)


@numpy_function(keep_0d=True)
def vstack(tup, *, dtype=None, casting="same_kind"):
    ts = _atleast([_strong(a) for a in _sequence(tup)], 2)
    ts = [ts] if is_tracer(ts) else list(ts)
    return concatenate(ts, 0, dtype=dtype, casting=casting)


@numpy_function(keep_0d=True)
def hstack(tup, *, dtype=None, casting="same_kind"):
    ts = _atleast([_strong(a) for a in _sequence(tup)], 1)
    ts = [ts] if is_tracer(ts) else list(ts)
    axis = 0 if ts and ts[0].ndim == 1 else 1
    return concatenate(ts, axis, dtype=dtype, casting=casting)


@numpy_function(keep_0d=True)
def dstack(tup):
    ts = _atleast([_strong(a) for a in _sequence(tup)], 3)
    ts = [ts] if is_tracer(ts) else list(ts)
    return concatenate(ts, 2)


@numpy_function(keep_0d=True)
def column_stack(tup):
    """1-d (and 0-d) arrays as columns, 2-d arrays as they are, joined along axis 1."""
    cols = []
    for a in _sequence(tup):
        t = _strong(a)
        if t.ndim < 2:
            t = reshaped(t, (t.size, 1))
        cols.append(t)
    return concatenate(cols, 1)


@numpy_function(keep_0d=True)
def append(arr, values, axis=None):
    """``values`` appended to ``arr`` (both flattened when ``axis`` is None)."""
    a, v = _strong(arr), _strong(values)
    if axis is None:
        return concatenate([ravel(a), ravel(v)], 0)
    return concatenate([a, v], axis)


# -- padding --------------------------------------------------------------------------------
def _as_pairs(x, ndim, as_index=False):
    """``x`` broadcast to ``ndim`` (before, after) pairs, as NumPy's pad reads its arguments."""
    x = np.asarray(x)
    if as_index:
        x = np.round(x).astype(np.int64)
    if x.ndim < 3 and x.size == 1:
        x = x.ravel()
        pairs = ((x[0], x[0]),) * ndim
    elif x.ndim < 3 and x.size == 2 and x.shape != (2, 1):
        x = x.ravel()
        pairs = ((x[0], x[1]),) * ndim
    else:
        pairs = np.broadcast_to(x, (ndim, 2))
    if as_index and any(v < 0 for p in pairs for v in p):
        raise ValueError(f"index can't contain negative values (at {where()})")
    return [tuple(p) for p in pairs]


_PAD_KWARGS = {
    "constant": {"constant_values"},
    "empty": set(),
    "edge": set(),
    "wrap": set(),
    "reflect": {"reflect_type"},
    "symmetric": {"reflect_type"},
}


@numpy_function(keep_0d=True)
def pad(array, pad_width, mode="constant", **kwargs):
    """``array`` padded; modes constant (``constant_values``), edge, reflect, symmetric, wrap.

    ``pad_width`` takes every NumPy form: ``n``, ``(n,)``, ``(before, after)``, one pair per
    axis, or a dict ``{axis: n or (before, after)}``. Corners take the later axis' value, as in
    NumPy. ``mode="empty"`` pads with zeros (NumPy leaves them undefined).

    >>> pad(np.array([1, 2]), (1, 2), mode="wrap").tolist()
    [2, 1, 2, 1, 2]
    """
    t = _strong(array)
    if callable(mode):
        raise NotImplementedError("mlc.numpy.pad: a callable mode is not supported")
    if mode not in _PAD_KWARGS:
        if mode in ("linear_ramp", "maximum", "mean", "median", "minimum"):
            raise NotImplementedError(f"mlc.numpy.pad: mode '{mode}' is not supported yet")
        raise ValueError(f"mode '{mode}' is not supported (at {where()})")
    bad = set(kwargs) - _PAD_KWARGS[mode]
    if bad:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': {bad}")
    if isinstance(pad_width, dict):
        seq = [(0, 0)] * t.ndim
        for ax, w in pad_width.items():
            seq[ax] = (w, w) if isinstance(w, (int, np.integer)) else tuple(w)
        pad_width = seq
    if contains_tracer(pad_width):
        raise TypeError(f"pad: pad_width must be concrete integers (at {where()})")
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    widths = [(int(lo), int(hi)) for lo, hi in _as_pairs(widths, t.ndim, as_index=True)]

    if mode in ("constant", "empty"):
        return _pad_constant(t, widths, kwargs.get("constant_values", 0))
    if t.size == 0:
        for ax, (n, w) in enumerate(zip(t.shape, widths)):
            if n == 0 and any(w):
                raise ValueError(
                    f"can't extend empty axis {ax} using modes other than 'constant' or "
                    f"'empty' (at {where()})"
                )
        return _pad_constant(t, widths, 0)
    if kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError("mlc.numpy.pad: reflect_type='odd' is not supported yet")
    # These modes move elements only, one axis at a time: NumPy itself, padding the index
    # vector arange(n), says which source element lands at each position.
    for ax, (lo, hi) in enumerate(widths):
        if lo or hi:
            src = np.pad(np.arange(t.shape[ax]), (lo, hi), mode=mode)
            t = _take(t, src, ax)
    return t


def _pad_constant(t: Tracer, widths, values) -> Tracer:
    ndim = t.ndim
    if is_tracer(values):
        if values.ndim != 0:
            raise NotImplementedError("pad: traced constant_values must be a scalar")
        pairs = [(values, values)] * ndim
    else:
        pairs = _as_pairs(values, ndim)
    scalars = [
        cast(lift(v), t.dtype) if is_tracer(v) else _pad_value(v, t.dtype) for p in pairs for v in p
    ]
    if ndim == 0:
        return t
    same = all(s.node is scalars[0].node for s in scalars)
    if same:
        lo, hi = zip(*widths)
        return Tracer(P.pad(t.node, scalars[0].node, low=lo, high=hi, interior=(0,) * ndim))
    # Different values per axis: pad axis by axis, so later axes own the corners (as NumPy).
    for ax, (lo, hi) in enumerate(widths):
        for side, width, value in ((0, lo, scalars[2 * ax]), (1, hi, scalars[2 * ax + 1])):
            if width:
                low = [0] * ndim
                high = [0] * ndim
                (high if side else low)[ax] = width
                t = Tracer(P.pad(t.node, value.node, low=low, high=high, interior=(0,) * ndim))
    return t


def _pad_value(v, dtype) -> Tracer:
    # NumPy assigns the fill value into the result (an unsafe cast: 2.7 -> 2 for ints).
    with np.errstate(all="ignore"):
        return Tracer(P.const(np.asarray(v).astype(dtype), dtype))


# -- splitting ------------------------------------------------------------------------------
def _split(t: Tracer, indices_or_sections, axis, equal: bool) -> list:
    axis = _axis(axis, t.ndim)
    n = t.shape[axis]
    if contains_tracer(indices_or_sections):
        raise TypeError(f"split: sections must be concrete integers (at {where()})")
    ios = indices_or_sections
    if np.ndim(ios) == 0:
        sections = _int(ios, "sections")
        if equal and sections == 0:
            raise ZeroDivisionError("integer modulo by zero")
        if equal and n % sections:
            raise ValueError(f"array split does not result in an equal division (at {where()})")
        if sections <= 0:
            raise ValueError(f"number sections must be larger than 0. (at {where()})")
        each, extras = divmod(n, sections)
        sizes = [each + 1] * extras + [each] * (sections - extras)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    else:
        bounds = [0] + [_int(i, "index") for i in np.asarray(ios).tolist()] + [n]
    out = []
    for st, end in zip(bounds[:-1], bounds[1:]):
        lo, hi, _ = builtins.slice(st, end).indices(n)  # Python slicing, as NumPy's ary[st:end]
        out.append(_slice(t, axis, lo, max(lo, hi)))
    return out


@numpy_function(keep_0d=True)
def split(ary, indices_or_sections, axis=0):
    """``ary`` cut into equal sections (an int) or at the given indices, along ``axis``."""
    return _split(_strong(ary), indices_or_sections, axis, equal=True)


@numpy_function(keep_0d=True)
def array_split(ary, indices_or_sections, axis=0):
    """As ``split``, but sections may differ in size by one (the first ones are longer)."""
    return _split(_strong(ary), indices_or_sections, axis, equal=False)


@numpy_function(keep_0d=True)
def vsplit(ary, indices_or_sections):
    t = _strong(ary)
    if t.ndim < 2:
        raise ValueError(f"vsplit only works on arrays of 2 or more dimensions (at {where()})")
    return _split(t, indices_or_sections, 0, equal=True)


@numpy_function(keep_0d=True)
def hsplit(ary, indices_or_sections):
    t = _strong(ary)
    if t.ndim < 1:
        raise ValueError(f"hsplit only works on arrays of 1 or more dimensions (at {where()})")
    return _split(t, indices_or_sections, 1 if t.ndim > 1 else 0, equal=True)


@numpy_function(keep_0d=True)
def dsplit(ary, indices_or_sections):
    t = _strong(ary)
    if t.ndim < 3:
        raise ValueError(f"dsplit only works on arrays of 3 or more dimensions (at {where()})")
    return _split(t, indices_or_sections, 2, equal=True)


# -- diagonals and triangles ----------------------------------------------------------------
@numpy_function(keep_0d=True)
def diag(v, k=0):
    """A 1-d ``v`` as the ``k``-th diagonal of a square matrix; a 2-d ``v``'s ``k``-th diagonal."""
    t = _strong(v)
    k = _int(k, "k")
    if t.ndim == 2:
        return diagonal(t, k)
    if t.ndim != 1:
        raise ValueError(f"Input must be 1- or 2-d. (at {where()})")
    n = t.shape[0]
    size = n + abs(k)
    # Interior padding of `size` puts element i at flat position i*(size+1): the main diagonal
    # of a size x size matrix; low padding shifts it to diagonal k.
    low = k if k >= 0 else -k * size
    used = n + max(n - 1, 0) * size
    zero = _pad_value(0, t.dtype)
    flat = P.pad(t.node, zero.node, low=(low,), high=(size * size - low - used,), interior=(size,))
    return reshaped(Tracer(flat), (size, size))


@numpy_function(keep_0d=True)
def diagonal(a, offset=0, axis1=0, axis2=1):
    """The ``offset`` diagonal of the ``axis1``/``axis2`` planes, as the result's last axis."""
    t = _strong(a)
    if t.ndim < 2:
        raise ValueError(f"diag requires an array of at least two dimensions (at {where()})")
    i, j = _axis(axis1, t.ndim, "axis1"), _axis(axis2, t.ndim, "axis2")
    if i == j:
        raise ValueError(f"axis1 and axis2 cannot be the same (at {where()})")
    offset = _int(offset, "offset")
    t = transposed(t, [d for d in range(t.ndim) if d not in (i, j)] + [i, j])
    rows, cols = t.shape[-2:]
    if offset >= 0:
        t = _slice(t, t.ndim - 1, min(offset, cols), cols)
    else:
        t = _slice(t, t.ndim - 2, min(-offset, rows), rows)
    n = min(t.shape[-2:])
    t = _slice(_slice(t, t.ndim - 2, 0, n), t.ndim - 1, 0, n)
    # In the flattened n x n block the diagonal is every (n+1)-th element.
    flat = reshaped(t, t.shape[:-2] + (n * n,))
    return _slice(flat, flat.ndim - 1, 0, n * n, n + 1)


def _triangle(m, k, keep_lower: bool) -> Tracer:
    t = _strong(m)
    if t.ndim == 0:
        raise TypeError(f"tril/triu need an array of at least one dimension (at {where()})")
    if t.ndim == 1:
        t = _broadcast_to(t, t.shape * 2)
    rows, cols = t.shape[-2:]
    diff = P.sub(
        P.iota(shape=(rows, cols), dtype=dtypes.int64, axis=1),
        P.iota(shape=(rows, cols), dtype=dtypes.int64, axis=0),
    )
    k_node = splat(_int(k, "k"), dtypes.int64, (rows, cols)).node
    keep = P.le(diff, k_node) if keep_lower else P.ge(diff, k_node)
    keep = P.broadcast_in_dim(keep, shape=t.shape, dims=(t.ndim - 2, t.ndim - 1))
    return Tracer(P.select(keep, t.node, splat(0, t.dtype, t.shape).node))


@numpy_function(keep_0d=True)
def tril(m, k=0):
    """``m`` with the elements above the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, k, keep_lower=True)


@numpy_function(keep_0d=True)
def triu(m, k=0):
    """``m`` with the elements below the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, k, keep_lower=False)


# -- sorting --------------------------------------------------------------------------------
def _sort_args(kind, order, stable):
    if order is not None:
        raise NotImplementedError("mlc.numpy.sort/argsort: order= (structured arrays)")


@numpy_function(keep_0d=True)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Indices that sort ``a`` along ``axis`` (stable whatever ``kind``; NaN sorts last)."""
    _sort_args(kind, order, stable)
    t = _strong(a)
    if axis is None or t.ndim == 0:  # NumPy sorts a 0-d array as a 1-element 1-d one
        t = ravel(t)
        axis = 0 if axis is None else axis
    axis = _axis(axis, t.ndim)
    return Tracer(P.argsort(t.node, axis=axis, descending=False))


@numpy_function(keep_0d=True)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``a`` sorted along ``axis`` (flattened when None), stable, NaN last.

    Unlike NumPy's in-place ``ndarray.sort()``, ``Tracer.sort()`` returns the sorted array.

    >>> sort(np.array([3.0, np.nan, 1.0])).tolist()
    [1.0, 3.0, nan]
    """
    _sort_args(kind, order, stable)
    t = _strong(a)
    if axis is None:
        t, axis = ravel(t), 0
    axis = _axis(axis, t.ndim)
    return _take_along(t, Tracer(P.argsort(t.node, axis=axis, descending=False)), axis)


# -- shape queries --------------------------------------------------------------------------
def shape(a) -> tuple[int, ...]:
    """The shape of ``a`` as a tuple of Python ints (also for tracers)."""
    if contains_tracer(a):
        return tuple(lift(a).shape)
    return np.shape(a)


def ndim(a) -> int:
    if contains_tracer(a):
        return lift(a).ndim
    return np.ndim(a)


def size(a, axis=None) -> int:
    if not (contains_tracer(a)):
        return np.size(a, axis)
    s = lift(a).shape
    if axis is None:
        return math.prod(s)
    return math.prod(s[i] for i in _axes(axis, len(s)))


# -- r_ and c_ ------------------------------------------------------------------------------
@numpy_function(keep_0d=True)
def _index_concatenate(key, axis, ndmin, trans1d):
    """NumPy's AxisConcatenator.__getitem__, on tracers."""
    objs, type_objs = [], []
    for k, item in enumerate(key):
        scalar = False
        if isinstance(item, builtins.slice):
            start = 0 if item.start is None else item.start
            step = 1 if item.step is None else item.step
            if contains_tracer((start, item.stop, step)):
                raise TypeError(f"r_/c_: slice bounds must be concrete (at {where()})")
            if isinstance(step, (complex, np.complexfloating)):
                new = _strong(np.linspace(start, item.stop, num=int(abs(step))))
            else:
                new = _strong(np.arange(start, item.stop, step))
            if ndmin > 1:
                new = reshaped(new, (1,) * (ndmin - 1) + new.shape)
                if trans1d != -1:
                    new = swapaxes(new, -1, trans1d)
        elif isinstance(item, str):
            if k != 0:
                raise ValueError("special directives must be the first entry.")
            if item in ("r", "c"):
                raise NotImplementedError("mlc.numpy.r_: matrix directives 'r'/'c'")
            try:
                vec = [int(x) for x in item.split(",")]
            except ValueError as e:
                raise ValueError(f"unknown special directive {item!r}") from e
            if len(vec) == 1:
                axis = vec[0]
            else:
                axis, ndmin = vec[:2]
                trans1d = vec[2] if len(vec) == 3 else trans1d
            continue
        elif type(item) in np.ScalarType:
            scalar = True
            new = item
        else:
            new = _strong(item)
            nd = new.ndim
            if nd < ndmin:
                new = reshaped(new, (1,) * (ndmin - nd) + new.shape)
                if trans1d != -1:
                    k2, k1 = ndmin - nd, trans1d
                    k1 = k1 + k2 + 1 if k1 < 0 else k1
                    base = list(range(ndmin))
                    new = transposed(new, base[:k1] + base[k2:] + base[k1:k2])
        objs.append(new)
        type_objs.append(new if scalar else new.dtype)
    if type_objs:
        final = dtypes.dtype(np.result_type(*type_objs))
        objs = [_strong(cast(lift(o), final)) for o in objs]
        objs = [
            reshaped(o, (1,) * (ndmin - o.ndim) + o.shape) if o.ndim < ndmin else o for o in objs
        ]
    return concatenate(objs, axis=axis)


class AxisConcatenator:
    """Index-expression concatenation: ``r_[a, 1:4, 0]``, ``c_[a, b]`` (as NumPy's ``r_``)."""

    def __init__(self, axis=0, ndmin=1, trans1d=-1):
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key):
        if isinstance(key, str):
            raise NotImplementedError("mlc.numpy.r_: matrix strings are not supported")
        key = key if isinstance(key, tuple) else (key,)
        return _index_concatenate(key, self.axis, self.ndmin, self.trans1d)

    def __len__(self):
        return 0


r_ = AxisConcatenator(0)
c_ = AxisConcatenator(-1, ndmin=2, trans1d=0)


__all__ = (
    "reshape ravel transpose swapaxes moveaxis rollaxis squeeze expand_dims broadcast_to "
    "broadcast_arrays broadcast_shapes atleast_1d atleast_2d atleast_3d flip flipud fliplr "
    "rot90 roll repeat tile concatenate stack vstack hstack dstack column_stack append pad "
    "split array_split vsplit hsplit dsplit diag diagonal tril triu sort argsort r_ c_ shape "
    "ndim size"
).split()
