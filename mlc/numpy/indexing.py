"""Indexing: NumPy's ``x[index]`` on traced arrays, the functional update ``x.at[index]``, and
``take`` / ``take_along_axis``.

``getitem`` follows NumPy's rules for every index form: integers, slices (any step), ``...``,
``None``, integer arrays and lists, concrete boolean masks, and mixed basic + advanced indices.
Basic indices become one ``slice`` (plus ``rev`` for negative steps) and a ``reshape``; all the
advanced indices together become one ``gather``. Where the advanced dimensions land follows
NumPy: next to each other in the index, they replace the indexed dimensions in place; separated
by a slice, ``None`` or ``...``, they go first.

Concrete indices are checked (``IndexError`` as NumPy raises it). Traced integer indices cannot
be checked: negative ones wrap once (as NumPy's do) and out-of-range ones are clamped to the
nearest valid index. A traced boolean mask would give a result whose shape depends on the data,
so it is refused (use ``mlc.numpy.where`` instead).

``x.at[index]`` updates functionally (``.set``, ``.add``, ``.multiply``, ``.min``, ``.max``,
``.get``) for every index ``getitem`` accepts. Duplicate indices: ``add``, ``multiply``, ``min``
and ``max`` accumulate every update (as ``np.add.at`` and friends do); ``set`` keeps the last
one, as ``x[index] = v`` does in NumPy.
"""

from __future__ import annotations

import operator

import numpy as np

from mlc.errors import TracingError, where
from mlc.ir import dtypes
from mlc.ir import primitives as P

from ._core import (
    Tracer,
    broadcast_to,
    cast,
    contains_tracer,
    is_tracer,
    lift,
    normalize_axis,
    numpy_function,
    splat,
)

_ONLY = (
    "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
    "boolean arrays are valid indices"
)
_INT_ARRAYS = "arrays used as indices must be of integer (or boolean) type"


def _at():
    return f" (at {where()})"


# -- parsing the index ----------------------------------------------------------------------
# Each item of the index becomes one entry (kind, value):
#   ("slice", slice)   consumes one dimension
#   ("int", int)       consumes one dimension (a concrete integer)
#   ("array", [a..])   advanced: one integer array (NumPy or Tracer) per consumed dimension
#   ("bool", b)        a scalar boolean: a new axis of length 1 (True) or 0 (False), advanced
#   ("none", None)     a new axis of length 1
#   ("ellipsis", None)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _parse_item(item):
    if item is None:
        return ("none", None)
    if item is Ellipsis:
        return ("ellipsis", None)
    if isinstance(item, slice):
        return ("slice", item)
    if isinstance(item, (bool, np.bool_)):
        return ("bool", bool(item))
    if _is_int(item):
        return ("int", operator.index(item))
    if isinstance(item, (list, tuple)) and contains_tracer(item):
        from ._creation import array

        item = array(item)
    if is_tracer(item):
        return _parse_traced(item)
    if isinstance(item, (list, tuple)):
        a = np.asarray(item)
        if a.size == 0 and a.dtype.kind == "f":  # [] is an empty integer index
            a = a.astype(np.int64)
        if a.dtype.kind not in "biu":
            raise IndexError(_ONLY + _at())
        item = a
    if isinstance(item, np.ndarray):
        if item.dtype.kind == "b":
            if item.ndim == 0:
                return ("bool", bool(item))
            return ("mask", item)
        if item.dtype.kind not in "iu":
            raise IndexError(_INT_ARRAYS + _at())
        if item.ndim == 0:
            return ("int", int(item))
        return ("array", [item.astype(np.int64)])
    raise IndexError(_ONLY + _at())


def _parse_traced(t):
    if t.dtype.kind == "b":
        raise TracingError(
            f"{where()}: indexing with a traced boolean mask gives a result whose shape depends "
            "on the data, which cannot be traced. Use mlc.numpy.where(mask, x, other) to keep "
            "the shape, or pass the mask as a concrete (static) NumPy array."
        )
    if t.dtype.kind not in "iu":
        raise IndexError(_INT_ARRAYS + _at())
    return ("array", [t])


def _parse(index, ndim):
    """The index as a list of entries, with ``mask`` entries checked later against the shape."""
    items = index if isinstance(index, tuple) else (index,)
    entries = [_parse_item(item) for item in items]
    if sum(kind == "ellipsis" for kind, _ in entries) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')" + _at())
    used = sum(_consumes(e) for e in entries)
    if used > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {used} were indexed"
            + _at()
        )
    return entries


def _consumes(entry) -> int:
    kind, value = entry
    if kind in ("slice", "int"):
        return 1
    if kind == "array":
        return len(value)
    if kind == "mask":
        return value.ndim
    return 0


def _slice_bounds(s: slice, n: int):
    """``(start, limit, stride, reverse)`` for P.slice (stride >= 1) plus an optional P.rev."""
    start, stop, step = s.indices(n)
    count = len(range(start, stop, step))
    if count == 0:
        return 0, 0, 1, False
    if step > 0:
        return start, start + (count - 1) * step + 1, step, False
    last = start + (count - 1) * step  # the smallest index taken
    return last, start + 1, -step, True


def _check_concrete(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """A concrete index array checked against a dimension of size ``n``, negatives wrapped."""
    bad = (a < -n) | (a >= n)
    if bad.any():
        i = int(a[bad].flat[0])
        raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}" + _at())
    return np.where(a < 0, a + n, a)


# -- getitem --------------------------------------------------------------------------------
@numpy_function
def getitem(x, index):
    """``x[index]`` with NumPy's semantics (basic, advanced and mixed indexing).

    >>> import numpy as np
    >>> getitem(np.arange(12).reshape(3, 4), (slice(None, None, -1), [0, 3]))
    array([[ 8, 11],
           [ 4,  7],
           [ 0,  3]])
    """
    x = lift(x)
    entries = _parse(index, x.ndim)
    adjacent = _advanced_adjacent(entries)
    y, advanced = _basic(x, entries)
    if not advanced:
        return y
    return _advanced(y, advanced, adjacent)


def _is_advanced(entry, as_int_too) -> bool:
    kind, value = entry
    if kind in ("mask", "bool"):
        return True
    if kind == "array":
        return as_int_too or any(a.ndim > 0 for a in value)
    return kind == "int" and as_int_too


def _any_advanced(entries) -> bool:
    """NumPy's test: is there an array index (0-d arrays count as integers) or a scalar bool?"""
    return any(_is_advanced(e, as_int_too=False) for e in entries)


def _advanced_adjacent(entries) -> bool:
    """Are all advanced entries next to each other in the index (integers count when any)?"""
    if not _any_advanced(entries):
        return True  # only 0-d traced indices: their result has no dimensions to place
    pos = [i for i, e in enumerate(entries) if _is_advanced(e, as_int_too=True)]
    return pos[-1] - pos[0] == len(pos) - 1


def _basic(x: Tracer, entries):
    """Apply slices, integers and new axes; return the result and its advanced dimensions.

    The advanced indices are returned as ``[(dim in the result, index array), ...]``; their
    dimensions are kept whole until the gather.
    """
    window, rev, out_shape, advanced = _plan(x.shape, entries)
    node = x.node
    if window != [(0, n, 1) for n in x.shape]:
        start, limit, stride = zip(*window)
        node = P.slice(node, start=start, limit=limit, stride=stride)
    if rev:
        node = P.rev(node, axes=tuple(rev))
    if tuple(out_shape) != node.shape:
        node = P.reshape(node, shape=tuple(out_shape))
    return Tracer(node), advanced


def _plan(shape, entries):
    """What the basic part of the index does to an array of ``shape``.

    Returns ``window`` (start, limit, stride) per dimension of x, the dims to reverse after
    slicing, the shape after dropping integer dims and adding new axes, and the advanced
    indices as ``[(dim in that shape, index array), ...]``.
    """
    ndim = len(shape)
    ints_advanced = _any_advanced(entries)
    fill = ndim - sum(_consumes(e) for e in entries)
    expanded = []
    for kind, value in entries:
        if kind == "ellipsis":
            expanded += [("slice", slice(None))] * fill
            fill = 0
        else:
            expanded.append((kind, value))
    expanded += [("slice", slice(None))] * fill

    window, rev = [], []  # (start, limit, stride) per dimension of x; reversed dims
    out_shape, advanced = [], []
    axis = 0
    for kind, value in expanded:
        if kind in ("none", "bool"):
            if kind == "bool":
                advanced.append((len(out_shape), np.zeros(int(value), np.int64)))
            out_shape.append(1)
            continue
        if kind == "mask":
            arrays = _mask_indices(value, shape, axis)
            kind, value = "array", arrays
        if kind == "int" and ints_advanced:
            kind, value = "array", [np.asarray(value, np.int64)]
        if kind == "int":
            n = shape[axis]
            i = int(_check_concrete(np.asarray(value), n, axis))
            window.append((i, i + 1, 1))
            axis += 1
            continue
        if kind == "slice":
            lo, hi, st, reverse = _slice_bounds(value, shape[axis])
            window.append((lo, hi, st))
            if reverse:
                rev.append(axis)
            out_shape.append(len(range(lo, hi, st)))
            axis += 1
            continue
        for a in value:  # kind == "array": one index array per dimension
            n = shape[axis]
            if not is_tracer(a):
                a = _check_concrete(a, n, axis)
            advanced.append((len(out_shape), a))
            window.append((0, n, 1))
            out_shape.append(n)
            axis += 1
    return window, rev, out_shape, advanced


def _mask_indices(mask: np.ndarray, shape, axis):
    for j, m in enumerate(mask.shape):
        n = shape[axis + j]
        if m != n:
            raise IndexError(
                f"boolean index did not match indexed array along axis {axis + j}; size of axis "
                f"is {n} but size of corresponding boolean axis is {m}" + _at()
            )
    return [i.astype(np.int64) for i in np.nonzero(mask)]


def _index_shape(advanced):
    shapes = [tuple(np.shape(a)) if not is_tracer(a) else a.shape for _, a in advanced]
    nd = max(len(s) for s in shapes)
    out = []
    for i in range(nd):
        dims = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0} - {1}
        if len(dims) > 1:
            shown = " ".join(str(s).replace(",)", ")") for s in shapes)
            raise IndexError(
                "shape mismatch: indexing arrays could not be broadcast together with shapes "
                f"{shown} " + _at()
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _advanced(y: Tracer, advanced, adjacent) -> Tracer:
    """One gather for all advanced indices; their dims go where NumPy puts them."""
    batch = _index_shape(advanced)
    dims = [d for d, _ in advanced]
    rest = [d for d in range(y.ndim) if d not in dims]
    node = y.node
    if dims + rest != list(range(y.ndim)):
        node = P.transpose(node, perm=tuple(dims + rest))
    out = Tracer(P.gather(node, _stack_indices([a for _, a in advanced], batch)))
    nb = len(batch)
    before = dims[0] if adjacent else 0  # how many of the rest come before the new dims
    if before == 0 or nb == 0:
        return out
    perm = list(range(nb, nb + before)) + list(range(nb)) + list(range(nb + before, out.ndim))
    return Tracer(P.transpose(out.node, perm=tuple(perm)))


def _stack_indices(arrays, batch):
    """Index arrays broadcast to ``batch`` and stacked on a last axis: ``batch + (k,)``."""
    if not any(is_tracer(a) for a in arrays):
        stacked = np.stack([np.broadcast_to(a, batch) for a in arrays], axis=-1)
        return P.const(stacked.astype(np.int64), dtypes.int64)
    cols = []
    for a in arrays:
        t = broadcast_to(cast(lift(a), dtypes.int64), batch)
        cols.append(P.reshape(t.node, shape=batch + (1,)))
    return cols[0] if len(cols) == 1 else P.concatenate(*cols, axis=len(batch))


# -- functional updates: x.at[index] ---------------------------------------------------------
class IndexUpdater:
    """What ``x.at`` returns: ``x.at[index].set(v)`` and friends give updated copies of ``x``.

    >>> import numpy as np
    >>> IndexUpdater(np.zeros(4))[[0, 2, 2]].add(1.0)
    array([1., 0., 2., 0.])
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexedRef(self.array, index)

    def __repr__(self):
        return f"IndexUpdater({self.array!r})"


class _IndexedRef:
    """``x.at[index]``: the functional update methods."""

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array = array
        self.index = index

    def get(self):
        """``x[index]``."""
        return getitem(self.array, self.index)

    def set(self, values):
        """``x`` with ``x[index] = values`` (for duplicate indices the last update wins)."""
        return _update("set", self.array, self.index, values)

    def add(self, values):
        """``x`` with ``values`` added at ``index`` (duplicates accumulate, as ``np.add.at``)."""
        return _update("add", self.array, self.index, values)

    def multiply(self, values):
        """``x`` with ``x[index]`` multiplied by ``values`` (duplicates accumulate)."""
        return _update("multiply", self.array, self.index, values)

    mul = multiply

    def min(self, values):
        """``x`` with ``x[index] = minimum(x[index], values)`` (duplicates accumulate)."""
        return _update("min", self.array, self.index, values)

    def max(self, values):
        """``x`` with ``x[index] = maximum(x[index], values)`` (duplicates accumulate)."""
        return _update("max", self.array, self.index, values)


def _combine(op, a: Tracer, b: Tracer) -> Tracer:
    from ._ufuncs import maximum, minimum, multiply

    fn = {"multiply": multiply, "min": minimum, "max": maximum}[op]
    return cast(fn(a, b), a.dtype)


@numpy_function(keep_0d=True)
def _update(op, x, index, values):
    x = lift(x)
    window, rev, out_shape, advanced = _plan(x.shape, _parse(index, x.ndim))
    if not advanced:
        return _update_window(op, x, window, rev, out_shape, values)
    positions = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    sel = getitem(positions, index)  # flat position in x of each indexed element
    static = not is_tracer(sel)
    sel = np.asarray(sel) if static else sel
    v = _values_for(cast(lift(values), x.dtype), sel.shape)
    n, m = x.size, int(np.prod(sel.shape, dtype=np.int64))
    flat_x = Tracer(P.reshape(x.node, shape=(n,)))
    flat_v = Tracer(P.reshape(v.node, shape=(m,)))
    flat_sel = sel.reshape(m) if static else Tracer(P.reshape(sel.node, shape=(m,)))
    if op == "add":
        idx = _column(flat_sel)
        out = Tracer(P.scatter_add(flat_x.node, idx, flat_v.node))
    else:
        out = _update_by_inverse(op, flat_x, flat_sel, flat_v, _unique(index, flat_sel))
    return Tracer(P.reshape(out.node, shape=x.shape))


def _update_window(op, x, window, rev, out_shape, values):
    """A basic index selects a strided window of x: the updates are padded out to x's shape
    (``pad`` with interior padding places them at the window's positions), then selected in.
    No gather, no scatter, nothing of x's size stored."""
    v = _values_for(cast(lift(values), x.dtype), out_shape)
    counts = tuple(len(range(lo, hi, st)) for lo, hi, st in window)
    if 0 in counts:
        return x
    if v.shape != counts:  # integer dims back in, new axes out
        v = Tracer(P.reshape(v.node, shape=counts))
    if rev:
        v = Tracer(P.rev(v.node, axes=tuple(rev)))
    low = tuple(lo for lo, _, _ in window)
    high = tuple(n - (lo + (c - 1) * st + 1) for n, (lo, _, st), c in zip(x.shape, window, counts))
    interior = tuple(st - 1 for _, _, st in window)

    def place(node, fill):
        return P.pad(node, fill, low=low, high=high, interior=interior)

    full = window == [(0, n, 1) for n in x.shape]
    padded = v if full else Tracer(place(v.node, P.const(np.zeros((), x.dtype), x.dtype)))
    if op == "set":
        new = padded
    elif op == "add":
        from ._ufuncs import add

        new = cast(add(x, padded), x.dtype)
    else:
        new = _combine(op, x, padded)
    if full:
        return new
    mask = place(splat(True, dtypes.bool_, counts).node, P.const(False, dtypes.bool_))
    return Tracer(P.select(mask, new.node, x.node))


def _values_for(v: Tracer, shape) -> Tracer:
    """Update values broadcast to the indexed shape (leading size-1 dims may be dropped)."""
    while v.ndim > len(shape) and v.shape[0] == 1:
        v = Tracer(P.reshape(v.node, shape=v.shape[1:]))
    try:
        return broadcast_to(v, shape)
    except ValueError:
        raise ValueError(
            f"shape mismatch: value array of shape {v.shape} could not be broadcast to "
            f"indexing result of shape {tuple(shape)}" + _at()
        ) from None


def _column(sel):
    """Flat positions as gather/scatter indices of shape (m, 1)."""
    if isinstance(sel, np.ndarray):
        return P.const(sel.reshape(-1, 1), dtypes.int64)
    return P.reshape(sel.node, shape=sel.shape + (1,))


def _unique(index, flat_sel) -> bool:
    """Can two indexed elements be the same element of x?"""
    if isinstance(flat_sel, np.ndarray):
        return np.unique(flat_sel).size == flat_sel.size
    items = index if isinstance(index, tuple) else (index,)
    # Traced positions repeat only through index arrays with more than one element.
    return all(_is_scalar_index(i) for i in items)


def _is_scalar_index(i) -> bool:
    if i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer, np.bool_)):
        return True
    if is_tracer(i):
        return i.ndim == 0
    return isinstance(i, np.ndarray) and i.ndim == 0


def _update_by_inverse(op, flat_x, flat_sel, flat_v, unique):
    """``set``/``multiply``/``min``/``max``: for each element of x, the (combined) update
    aimed at it is gathered through an inverse map, then combined with x where one exists.

    With repeated positions the updates are sorted by position (stably), combined within each
    run of equal positions by a segmented scan, and the last of each run is the one used.
    """
    m = flat_v.shape[0]
    sel, v = flat_sel, flat_v
    if not unique:
        sel, v = _sorted_by_position(sel, v)
        if op != "set":
            v = _segmented_scan(op, v, sel)
    inverse = _inverse_map(sel, flat_x.shape[0], m, unique)
    # inverse[p] = 1 + the update used for element p, or 0 where p is not indexed.
    has = P.gt(inverse.node, splat(0, dtypes.int64, inverse.shape).node)
    src = P.sub(inverse.node, splat(1, dtypes.int64, inverse.shape).node)
    picked = Tracer(P.gather(v.node, P.reshape(src, shape=src.shape + (1,))))
    new = picked if op == "set" else _combine(op, flat_x, picked)
    return Tracer(P.select(has, new.node, flat_x.node))


def _sorted_by_position(sel, v):
    if isinstance(sel, np.ndarray):
        order = np.argsort(sel, kind="stable")
        return sel[order], Tracer(P.gather(v.node, P.const(order.reshape(-1, 1), dtypes.int64)))
    order = P.argsort(sel.node, axis=0, descending=False)
    col = P.reshape(order, shape=order.shape + (1,))
    return Tracer(P.gather(sel.node, col)), Tracer(P.gather(v.node, col))


def _shift_equal(sel, d):
    """``sel[i] == sel[i - d]`` (False for i < d)."""
    if isinstance(sel, np.ndarray):
        same = np.zeros(sel.shape, bool)
        same[d:] = sel[d:] == sel[:-d]
        return Tracer(P.const(same, dtypes.bool_))
    m = sel.shape[0]
    eq = P.eq(
        P.slice(sel.node, start=(d,), limit=(m,), stride=(1,)),
        P.slice(sel.node, start=(0,), limit=(m - d,), stride=(1,)),
    )
    return Tracer(P.pad(eq, P.const(False, dtypes.bool_), low=(d,), high=(0,), interior=(0,)))


def _segmented_scan(op, v, sel):
    """Inclusive scan of ``op`` within runs of equal (sorted) positions: log2(m) doubling steps."""
    m, d = v.shape[0], 1
    zero = P.const(np.zeros((), v.dtype), v.dtype)
    while d < m:
        prev = P.pad(
            P.slice(v.node, start=(0,), limit=(m - d,), stride=(1,)),
            zero,
            low=(d,),
            high=(0,),
            interior=(0,),
        )
        combined = _combine(op, v, Tracer(prev))
        v = Tracer(P.select(_shift_equal(sel, d).node, combined.node, v.node))
        d *= 2
    return v


def _inverse_map(sel, n, m, unique) -> Tracer:
    """For each of the ``n`` elements, 1 + the (last) update aimed at it, or 0."""
    if isinstance(sel, np.ndarray):
        last = np.ones(m, bool)
        if not unique:  # sorted: the last of each run of equal positions
            last[:-1] = sel[:-1] != sel[1:]
        inverse = np.zeros(n, np.int64)
        inverse[sel[last]] = np.arange(1, m + 1)[last]
        return Tracer(P.const(inverse, dtypes.int64))
    ids = P.add(P.iota(shape=(m,), dtype=dtypes.int64, axis=0), splat(1, dtypes.int64, (m,)).node)
    if not unique and m:  # sorted: only the last update of each run of equal positions
        differs = P.ne(
            P.slice(sel.node, start=(0,), limit=(m - 1,), stride=(1,)),
            P.slice(sel.node, start=(1,), limit=(m,), stride=(1,)),
        )
        last = P.pad(differs, P.const(True, dtypes.bool_), low=(0,), high=(1,), interior=(0,))
        ids = P.select(last, ids, splat(0, dtypes.int64, (m,)).node)
    return Tracer(P.scatter_add(splat(0, dtypes.int64, (n,)).node, _column(sel), ids))


# -- take -----------------------------------------------------------------------------------
@numpy_function
def take(a, indices, axis=None, out=None, mode=None):
    """Elements of ``a`` at ``indices`` along ``axis`` (the flattened array for None).

    ``mode``: "raise" (default; concrete indices are checked, traced ones wrap negatives and
    clamp), "wrap" or "clip", as in NumPy.

    >>> take(np.array([4, 3, 5, 7]), [0, -1])
    array([4, 7])
    """
    if out is not None:
        raise NotImplementedError("mlc.numpy.take: out= is not supported (arrays are immutable)")
    if mode not in (None, "raise", "wrap", "clip"):
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    a = lift(a)
    if axis is None:
        a, axis = Tracer(P.reshape(a.node, shape=(a.size,))), 0
    else:
        axis = normalize_axis(axis, a.ndim)
    n = a.shape[axis]
    idx = _take_indices(indices)
    if mode in ("wrap", "clip"):
        if n == 0 and (idx.size if is_tracer(idx) else np.size(idx)):
            raise IndexError("cannot do a non-empty take from an empty axes." + _at())
        idx = _wrap_or_clip(idx, n, mode)
    return getitem(a, (slice(None),) * axis + (idx,))


def _take_indices(indices):
    """NumPy's rules: arrays must cast to int64 'same_kind' (bool and int); Python numbers and
    lists of them are converted with int() truncation."""
    if is_tracer(indices) or isinstance(indices, np.ndarray):
        kind = indices.dtype.kind
        if kind not in "biu":
            raise TypeError(
                f"Cannot cast array data from dtype('{indices.dtype}') to dtype('int64') "
                "according to the rule 'same_kind'" + _at()
            )
        return cast(indices, dtypes.int64) if is_tracer(indices) else indices.astype(np.int64)
    if contains_tracer(indices):
        return _take_indices(lift(indices))
    with np.errstate(all="ignore"):
        return np.asarray(indices).astype(np.int64)


def _wrap_or_clip(idx, n, mode):
    if n == 0:
        return idx
    if not is_tracer(idx):
        return np.mod(idx, n) if mode == "wrap" else np.clip(idx, 0, n - 1)
    from ._ufuncs import clip, remainder

    return remainder(idx, n) if mode == "wrap" else clip(idx, 0, n - 1)


@numpy_function
def take_along_axis(arr, indices, axis=-1):
    """Values of ``arr`` at ``indices`` along ``axis`` (the other dims broadcast), as NumPy.

    >>> take_along_axis(np.array([[10, 30, 20]]), np.array([[0, 2, 1]]), axis=1)
    array([[10, 20, 30]])
    """
    arr = lift(arr)
    idx = indices if is_tracer(indices) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise IndexError("`indices` must be an integer array" + _at())
    if axis is None:
        if idx.ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension." + _at())
        arr, axis = Tracer(P.reshape(arr.node, shape=(arr.size,))), 0
    else:
        axis = normalize_axis(axis, arr.ndim)
    if arr.ndim != idx.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions" + _at())
    fancy = []
    for d, n in enumerate(arr.shape):
        if d == axis:
            fancy.append(idx)
        else:
            shape = [1] * arr.ndim
            shape[d] = n
            fancy.append(np.arange(n, dtype=np.int64).reshape(shape))
    return getitem(arr, tuple(fancy))


__all__ = ["IndexUpdater", "getitem", "take", "take_along_axis"]
