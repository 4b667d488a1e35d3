"""Primitives that create values or move data: param, constant, iota, broadcast_in_dim, reshape,
transpose, slice, rev, pad, concatenate, gather, scatter_add.
"""

import builtins

import numpy as np

from .. import dtypes
from ..graph import Literal, Primitive, TensorType, register


def _prim(name, infer, impl, doc, differentiable=True):
    return register(Primitive(name, infer, impl, doc, differentiable))


# -- sources --------------------------------------------------------------------------------
def _no_impl(*args, **kw):
    raise RuntimeError("param nodes are bound to arguments by the interpreter")


param = _prim(
    "param",
    lambda index, shape, dtype: TensorType(shape, dtypes.dtype(dtype)),
    _no_impl,
    "param(index=i, shape=..., dtype=...): the graph's i-th argument",
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


def _rev_infer(x, axes):
    if any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"rev: axes {axes} out of range for rank {x.ndim}")
    return x


rev = _prim("rev", _rev_infer, lambda x, axes: np.flip(x, axes), "rev(x, axes=...): reverse")


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
    if x.size == 0 or indices.size == 0:
        t = _gather_infer(TensorType(x.shape, x.dtype), TensorType(indices.shape, indices.dtype))
        return np.zeros(t.shape, x.dtype)
    return x[_index_tuple(x.shape, indices)]


gather = _prim(
    "gather",
    _gather_infer,
    _gather_impl,
    "gather(x, indices): x[i0, ..., ik-1] for each row of indices (I + (k,)); result I + x.shape[k:]",
)


def _scatter_infer(x, indices, updates):
    expect = _gather_infer(x, indices)
    if updates.shape != expect.shape or updates.dtype != x.dtype:
        raise ValueError(f"scatter_add: updates {updates} do not match {expect}")
    return x


def _scatter_impl(x, indices, updates):
    out = np.array(x, copy=True)
    if x.size and indices.size:
        np.add.at(out, _index_tuple(x.shape, indices), updates)
    return out


scatter_add = _prim(
    "scatter_add",
    _scatter_infer,
    _scatter_impl,
    "scatter_add(x, indices, updates): x with updates added at gather's positions",
)
