"""Primitives that create values or move data: param, constant, iota, broadcast_in_dim, reshape,
transpose, slice, rev, pad, concatenate, gather, scatter_add.
"""

import builtins

import numpy as np

from .. import dtypes
from ..graph import Literal, Primitive, TensorType, register
from . import _rules as U
from . import elementwise as E
from . import reduce as R


def _prim(name, infer, impl, doc, differentiable=True):
    return register(Primitive(name, infer, impl, doc, differentiable))


# -- sources --------------------------------------------------------------------------------
def _no_impl(*args, **kw):
    raise RuntimeError("param nodes are bound to arguments by the interpreter")


param = _prim(
    "param",
    lambda index, shape, dtype, uid=None: TensorType(shape, dtypes.dtype(dtype)),
    _no_impl,
    "param(index=i, shape=..., dtype=...): the graph's i-th argument (``uid`` keeps the "
    "parameters of nested traces apart; it is not printed)",
)


def _constant_infer(value):
    a = value.array
    return TensorType(a.shape, dtypes.dtype(a.dtype))


constant = _prim(
    "constant",
    _constant_infer,
    lambda value: value.array,
    "constant(value=...): a literal array",
    differentiable=False,
)


def const(value, dtype=None):
    """A constant node holding ``value`` (cast to ``dtype`` when given)."""
    return constant(value=Literal(np.asarray(value, dtype=dtype)))


def _iota_infer(shape, dtype, axis):
    if not 0 <= axis < len(shape):
        raise ValueError(f"iota: axis {axis} out of range for shape {shape}")
    return TensorType(shape, dtypes.dtype(dtype))


def _iota_impl(shape, dtype, axis):
    r = np.arange(shape[axis], dtype=dtype).reshape(
        [-1 if i == axis else 1 for i in range(len(shape))]
    )
    return np.broadcast_to(r, shape).copy()


iota = _prim(
    "iota",
    _iota_infer,
    _iota_impl,
    "iota(shape=..., dtype=..., axis=a): index along axis a",
    differentiable=False,
)


# -- shape and layout -----------------------------------------------------------------------
def _broadcast_infer(x, shape, dims):
    if len(dims) != x.ndim or len(set(dims)) != len(dims):
        raise ValueError(f"broadcast_in_dim: dims {dims} do not map operand of rank {x.ndim}")
    for i, d in enumerate(dims):
        if not 0 <= d < len(shape) or x.shape[i] not in (1, shape[d]):
            raise ValueError(f"broadcast_in_dim: cannot map {x.shape} into {shape} with {dims}")
    if list(dims) != sorted(dims):
        raise ValueError(f"broadcast_in_dim: dims {dims} must be increasing")
    return TensorType(shape, x.dtype)


def _broadcast_impl(x, shape, dims):
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


broadcast_in_dim = _prim(
    "broadcast_in_dim",
    _broadcast_infer,
    _broadcast_impl,
    "broadcast_in_dim(x, shape=..., dims=...): operand dim i becomes result dim dims[i]",
)


# Linear: the tangent is broadcast the same way; the cotangent sums what the broadcast copied.
@U.defjvp(broadcast_in_dim)
def _broadcast_jvp(primals, tangents, out, shape, dims):
    return broadcast_in_dim(tangents[0], shape=shape, dims=dims)


@U.defvjp(broadcast_in_dim)
def _broadcast_vjp(ct, primals, out, shape, dims):
    return (U.sum_to_shape(ct, primals[0].shape, dims),)


@U.defbatch(broadcast_in_dim)
def _broadcast_batch(inputs, bdims, shape, dims):
    # The batch axis lands just before the result dim that the operand's next dim maps to
    # (just after the previous one's when the batch is the operand's last axis: a batched scalar
    # broadcasts with its batch leading, like the values it usually meets), so dims stay
    # increasing and the operand never moves. Result batch axis: b.
    (x,), (d,) = inputs, bdims
    b = dims[d] if d < len(dims) else (dims[d - 1] + 1 if d else 0)
    new_dims = dims[:d] + (b,) + tuple(k + 1 for k in dims[d:])
    new_shape = shape[:b] + (x.shape[d],) + shape[b:]
    return broadcast_in_dim(x, shape=new_shape, dims=new_dims), b


def _reshape_infer(x, shape):
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ValueError(f"cannot reshape array of size {x.size} into shape {tuple(shape)}")
    return TensorType(shape, x.dtype)


reshape = _prim(
    "reshape",
    _reshape_infer,
    lambda x, shape: np.reshape(x, shape),
    "reshape(x, shape=...): row-major reshape",
)


@U.defjvp(reshape)
def _reshape_jvp(primals, tangents, out, shape):
    return reshape(tangents[0], shape=shape)


@U.defvjp(reshape)
def _reshape_vjp(ct, primals, out, shape):
    return (reshape(ct, shape=primals[0].shape),)


@U.defbatch(reshape)
def _reshape_batch(inputs, bdims, shape):
    # Row-major reshape of each example is a reshape of the whole with the batch leading.
    x = U.moveaxis(inputs[0], bdims[0], 0)
    return reshape(x, shape=(x.shape[0],) + shape), 0


def _transpose_infer(x, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: {perm} is not a permutation of {x.ndim} axes")
    return TensorType(tuple(x.shape[p] for p in perm), x.dtype)


transpose = _prim(
    "transpose",
    _transpose_infer,
    lambda x, perm: np.transpose(x, perm),
    "transpose(x, perm=...): result dim i is operand dim perm[i]",
)


@U.defjvp(transpose)
def _transpose_jvp(primals, tangents, out, perm):
    return transpose(tangents[0], perm=perm)


@U.defvjp(transpose)
def _transpose_vjp(ct, primals, out, perm):
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return (transpose(ct, perm=tuple(inverse)),)


@U.defbatch(transpose)
def _transpose_batch(inputs, bdims, perm):
    # The batch axis stays where it is (result batch axis d); the other axes permute around it.
    (x,), (d,) = inputs, bdims
    new_perm = [p + (p >= d) for p in perm]
    new_perm.insert(d, d)
    return transpose(x, perm=tuple(new_perm)), d


def _slice_infer(x, start, limit, stride):
    if not len(start) == len(limit) == len(stride) == x.ndim:
        raise ValueError("slice: start, limit and stride need one entry per dimension")
    shape = []
    for lo, hi, st, n in zip(start, limit, stride, x.shape):
        if st < 1 or not 0 <= lo <= hi <= n:
            raise ValueError(f"slice: bad bounds {start}:{limit}:{stride} for shape {x.shape}")
        shape.append(max(0, -(-(hi - lo) // st)))
    return TensorType(shape, x.dtype)


slice = _prim(
    "slice",
    _slice_infer,
    lambda x, start, limit, stride: x[
        tuple(builtins.slice(a, b, c) for a, b, c in zip(start, limit, stride))
    ],
    "slice(x, start=..., limit=..., stride=...): strided window, strides >= 1",
)


@U.defjvp(slice)
def _slice_jvp(primals, tangents, out, start, limit, stride):
    return slice(tangents[0], start=start, limit=limit, stride=stride)


@U.defvjp(slice)
def _slice_vjp(ct, primals, out, start, limit, stride):
    # The transpose puts each element back where it came from: zeros around it (low = start,
    # high = whatever follows the last element taken) and stride - 1 zeros between elements.
    x = primals[0]
    high = tuple(
        n - lo - ((m - 1) * st + 1 if m else 0)
        for n, lo, st, m in zip(x.shape, start, stride, out.shape)
    )
    interior = tuple(st - 1 for st in stride)
    zero = U.full(0, (), x.dtype)
    return (pad(ct, zero, low=start, high=high, interior=interior),)


@U.defbatch(slice)
def _slice_batch(inputs, bdims, start, limit, stride):
    # The whole batch axis is kept (result batch axis d).
    (x,), (d,) = inputs, bdims
    out = slice(
        x,
        start=start[:d] + (0,) + start[d:],
        limit=limit[:d] + (x.shape[d],) + limit[d:],
        stride=stride[:d] + (1,) + stride[d:],
    )
    return out, d


def _rev_infer(x, axes):
    if any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"rev: axes {axes} out of range for rank {x.ndim}")
    return x


rev = _prim("rev", _rev_infer, lambda x, axes: np.flip(x, axes), "rev(x, axes=...): reverse")


@U.defjvp(rev)
def _rev_jvp(primals, tangents, out, axes):
    return rev(tangents[0], axes=axes)


@U.defvjp(rev)
def _rev_vjp(ct, primals, out, axes):
    return (rev(ct, axes=axes),)


@U.defbatch(rev)
def _rev_batch(inputs, bdims, axes):
    (x,), (d,) = inputs, bdims
    return rev(x, axes=tuple(a + (a >= d) for a in axes)), d


def _pad_infer(x, value, low, high, interior):
    if value.shape != () or value.dtype != x.dtype:
        raise TypeError("pad: padding value must be a scalar of the operand's dtype")
    shape = []
    for n, lo, hi, it in zip(x.shape, low, high, interior):
        if lo < 0 or hi < 0 or it < 0:
            raise ValueError("pad: negative padding")
        shape.append(lo + hi + n + max(0, n - 1) * it)
    return TensorType(shape, x.dtype)


def _pad_impl(x, value, low, high, interior):
    shape = _pad_infer(
        TensorType(x.shape, x.dtype), TensorType((), x.dtype), low, high, interior
    ).shape
    out = np.full(shape, value, dtype=x.dtype)
    index = tuple(
        builtins.slice(lo, lo + (n - 1) * (it + 1) + 1 if n else lo, it + 1)
        for n, lo, it in zip(x.shape, low, interior)
    )
    out[index] = x
    return out


pad = _prim(
    "pad",
    _pad_infer,
    _pad_impl,
    "pad(x, value, low=..., high=..., interior=...): edge and interior padding",
)


def _pad_mask(shape, low, high, interior):
    """True where ``pad`` of an operand of ``shape`` puts the padding value."""
    return pad(U.full(False, shape, np.bool_), const(True), low=low, high=high, interior=interior)


# Linear in (x, value): the result is x at its positions and value everywhere else.
@U.defjvp(pad)
def _pad_jvp(primals, tangents, out, low, high, interior):
    tx, tv = (U.instantiate(t, p) for t, p in zip(tangents, primals))
    return pad(tx, tv, low=low, high=high, interior=interior)


@U.defvjp(pad)
def _pad_vjp(ct, primals, out, low, high, interior):
    x = primals[0]
    # x's elements sit at low + i * (interior + 1): a strided slice picks them back out.
    limit = tuple(
        lo + ((n - 1) * (it + 1) + 1 if n else 0) for n, lo, it in zip(x.shape, low, interior)
    )
    ct_x = slice(ct, start=low, limit=limit, stride=tuple(it + 1 for it in interior))
    # The value's cotangent sums ct over the padding (a mask, not sum(ct) - sum(ct_x): an inf
    # in ct at an x position must not turn the value's cotangent into NaN).
    mask = _pad_mask(x.shape, low, high, interior)
    ct_v = R.reduce_sum(U.select_zero(mask, ct), axes=tuple(range(ct.ndim)))
    return ct_x, ct_v


@U.defbatch(pad)
def _pad_batch(inputs, bdims, low, high, interior):
    # Result batch axis: x's (0 when only the value is batched).
    (x, value), (dx, dv) = inputs, bdims
    d = 0 if dx is None else dx
    low, high, interior = (
        low[:d] + (0,) + low[d:],
        high[:d] + (0,) + high[d:],
        interior[:d] + (0,) + interior[d:],
    )
    if dv is None:
        return pad(x, value, low=low, high=high, interior=interior), d
    # A batched value: pad with zeros, then one select puts each example's value in the padding.
    size = value.shape[0]
    xb = U.broadcast_batched(x, size, d) if dx is None else x
    padded = pad(xb, U.full(0, (), x.dtype), low=low, high=high, interior=interior)
    mask = _pad_mask(xb.shape, low, high, interior)
    vb = broadcast_in_dim(value, shape=padded.shape, dims=(d,))
    return E.select(mask, vb, padded), d


def _concat_infer(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        same = all(a == b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis)
        if x.ndim != first.ndim or not same or x.dtype != first.dtype:
            raise ValueError(f"concatenate: operands {first} and {x} do not match off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return TensorType(shape, first.dtype)


concatenate = _prim(
    "concatenate",
    _concat_infer,
    lambda *xs, axis: np.concatenate(xs, axis=axis),
    "concatenate(*xs, axis=a)",
)


@U.defjvp(concatenate)
def _concat_jvp(primals, tangents, out, axis):
    return concatenate(*(U.instantiate(t, p) for t, p in zip(tangents, primals)), axis=axis)


@U.defvjp(concatenate)
def _concat_vjp(ct, primals, out, axis):
    cts, offset = [], 0
    for x in primals:
        n = x.shape[axis]
        start = tuple(offset if i == axis else 0 for i in range(ct.ndim))
        limit = tuple(offset + n if i == axis else s for i, s in enumerate(ct.shape))
        cts.append(slice(ct, start=start, limit=limit, stride=(1,) * ct.ndim))
        offset += n
    return tuple(cts)


@U.defbatch(concatenate)
def _concat_batch(inputs, bdims, axis):
    # All operands get the first batched operand's batch axis d (unbatched ones broadcast).
    xs, d = U.align_batched(inputs, bdims)
    return concatenate(*xs, axis=axis + (axis >= d)), d


# -- gather / scatter -----------------------------------------------------------------------
def _index_tuple(operand_shape, indices):
    """Indices of shape I + (k,) as a tuple of k arrays; negative indices wrap, then clamp."""
    k = indices.shape[-1]
    out = []
    for j in range(k):
        n = operand_shape[j]
        i = indices[..., j].astype(np.int64)
        i = np.where(i < 0, i + n, i)
        out.append(np.clip(i, 0, max(n - 1, 0)))
    return tuple(out)


def _gather_infer(x, indices):
    if indices.dtype.kind not in "iu" or indices.ndim < 1 or indices.shape[-1] > x.ndim:
        raise TypeError("gather: indices must be an integer array of shape I + (k,), k <= rank")
    k = indices.shape[-1]
    return TensorType(indices.shape[:-1] + x.shape[k:], x.dtype)


def _gather_impl(x, indices):
    t = _gather_infer(TensorType(x.shape, x.dtype), TensorType(indices.shape, indices.dtype))
    if indices.shape[-1] == 0:  # k = 0: every row of indices picks all of x
        return np.broadcast_to(x, t.shape).copy()
    if x.size == 0 or indices.size == 0:
        return np.zeros(t.shape, x.dtype)
    return x[_index_tuple(x.shape, indices)]


gather = _prim(
    "gather",
    _gather_infer,
    _gather_impl,
    "gather(x, indices): x[i0, ..., ik-1] for each row of indices (I + (k,)); result I + x.shape[k:]",
)


# Linear in x; the indices (integers) get no cotangent. Indices wrap and clamp the same way in
# gather and scatter_add, so scatter_add with the same indices is gather's exact transpose.
@U.defjvp(gather)
def _gather_jvp(primals, tangents, out):
    return gather(tangents[0], primals[1])


@U.defvjp(gather)
def _gather_vjp(ct, primals, out):
    x, indices = primals
    return scatter_add(U.zeros_like(x), indices, ct), None


def _indices_batch_first(indices, di):
    """Batched indices with the batch axis off the last (index-column) axis: ``(node, di)``."""
    if di == indices.ndim - 1:
        return U.moveaxis(indices, di, 0), 0
    return indices, di


def _with_batch_column(indices, di):
    """Batched indices (batch axis ``di``, not last) with a leading column holding each row's
    batch number, so they index an operand whose batch axis is 0."""
    column = iota(shape=indices.shape[:-1] + (1,), dtype=indices.dtype.name, axis=di)
    return concatenate(column, indices, axis=indices.ndim - 1)


@U.defbatch(gather)
def _gather_batch(inputs, bdims):
    (x, indices), (dx, di) = inputs, bdims
    if di is None:
        # Batch right after the indexed dims: it becomes the result axis after I.
        k = indices.shape[-1]
        return gather(U.moveaxis(x, dx, k), indices), indices.ndim - 1
    indices, di = _indices_batch_first(indices, di)
    if dx is None:
        return gather(x, indices), di  # the result's I carries the batch at di
    # Both batched: one gather over the batch-leading operand, the batch number as index 0.
    return gather(U.moveaxis(x, dx, 0), _with_batch_column(indices, di)), di


def _scatter_infer(x, indices, updates):
    expect = _gather_infer(x, indices)
    if updates.shape != expect.shape or updates.dtype != x.dtype:
        raise ValueError(f"scatter_add: updates {updates} do not match {expect}")
    return x


def _scatter_impl(x, indices, updates):
    out = np.array(x, copy=True)
    if indices.shape[-1] == 0:  # k = 0: every row of updates adds to all of x
        rows = int(np.prod(indices.shape[:-1], dtype=np.int64))
        for u in np.reshape(updates, (rows,) + x.shape):
            out += u
    elif x.size and indices.size:
        np.add.at(out, _index_tuple(x.shape, indices), updates)
    return out


scatter_add = _prim(
    "scatter_add",
    _scatter_infer,
    _scatter_impl,
    "scatter_add(x, indices, updates): x with updates added at gather's positions",
)


# Linear in (x, updates); the indices get no cotangent.
@U.defjvp(scatter_add)
def _scatter_jvp(primals, tangents, out):
    x, indices, updates = primals
    tx, _, tu = tangents
    if tu is None:
        return tx
    return scatter_add(U.instantiate(tx, x), indices, tu)


@U.defvjp(scatter_add)
def _scatter_vjp(ct, primals, out):
    return ct, None, gather(ct, primals[1])


@U.defbatch(scatter_add)
def _scatter_batch(inputs, bdims):
    (x, indices, updates), (dx, di, du) = inputs, bdims
    size = U.batch_size(inputs, bdims)

    def batched(v, dv, at):
        return U.broadcast_batched(v, size, at) if dv is None else U.moveaxis(v, dv, at)

    if di is None:
        # As in gather: the batch sits right after the indexed dims of x (result batch axis k)
        # and right after I in the updates.
        k = indices.shape[-1]
        xb = batched(x, dx, k)
        return scatter_add(xb, indices, batched(updates, du, indices.ndim - 1)), k
    indices, di = _indices_batch_first(indices, di)
    # Batched indices: x batch-leading, the batch number as index 0 (result batch axis 0).
    xb = batched(x, dx, 0)
    ub = batched(updates, du, di)
    return scatter_add(xb, _with_batch_column(indices, di), ub), 0
