"""Reductions, scans, sorting and dot_general."""

import numpy as np

from .. import dtypes
from ..graph import Primitive, TensorType, register


def _axes_ok(name, x, axes):
    if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"{name}: axes {axes} invalid for rank {x.ndim}")


def reduction(name, fn, doc):
    def infer(x, axes):
        _axes_ok(name, x, axes)
        return TensorType(tuple(n for i, n in enumerate(x.shape) if i not in axes), x.dtype)

    def impl(x, axes):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axis=tuple(axes)), dtype=x.dtype)

    return register(Primitive(name, infer, impl, doc))


reduce_sum = reduction("reduce_sum", np.sum, "reduce_sum(x, axes=...): sum over axes")
reduce_prod = reduction("reduce_prod", np.prod, "reduce_prod(x, axes=...): product over axes")
reduce_max = reduction("reduce_max", np.max, "reduce_max(x, axes=...): NaN-propagating max")
reduce_min = reduction("reduce_min", np.min, "reduce_min(x, axes=...): NaN-propagating min")


def arg_reduction(name, fn):
    def infer(x, axis):
        _axes_ok(name, x, (axis,))
        return TensorType(x.shape[:axis] + x.shape[axis + 1 :], dtypes.int64)

    def impl(x, axis):
        return np.asarray(fn(x, axis=axis), dtype=np.int64)

    doc = f"{name}(x, axis=a): first index of the extreme along a (NaN counts as extreme)"
    return register(Primitive(name, infer, impl, doc, differentiable=False))


argmax = arg_reduction("argmax", np.argmax)
argmin = arg_reduction("argmin", np.argmin)


def scan(name, fn):
    def infer(x, axis, reverse):
        _axes_ok(name, x, (axis,))
        return x

    def impl(x, axis, reverse):
        with np.errstate(all="ignore"):
            if reverse:
                return np.flip(fn(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
            return fn(x, axis=axis, dtype=x.dtype)

    doc = f"{name}(x, axis=a, reverse=False): inclusive scan along a"
    return register(Primitive(name, infer, impl, doc))


cumsum = scan("cumsum", np.cumsum)
cumprod = scan("cumprod", np.cumprod)


def _argsort_infer(x, axis, descending):
    _axes_ok("argsort", x, (axis,))
    return TensorType(x.shape, dtypes.int64)


def _argsort_impl(x, axis, descending):
    if descending:
        n = x.shape[axis]
        flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        return np.flip(n - 1 - flipped, axis).astype(np.int64)
    return np.argsort(x, axis=axis, kind="stable").astype(np.int64)


argsort = register(
    Primitive(
        "argsort",
        _argsort_infer,
        _argsort_impl,
        "argsort(x, axis=a, descending=False): stable sorting permutation (NaN last)",
        differentiable=False,
    )
)


# -- dot_general ----------------------------------------------------------------------------
def _dot_dims(lhs, rhs, contracting, batch):
    (lc, rc), (lb, rb) = contracting, batch
    lfree = [i for i in range(lhs.ndim) if i not in lc and i not in lb]
    rfree = [i for i in range(rhs.ndim) if i not in rc and i not in rb]
    return lc, rc, lb, rb, lfree, rfree


def _dot_infer(lhs, rhs, contracting, batch):
    lc, rc, lb, rb, lfree, rfree = _dot_dims(lhs, rhs, contracting, batch)
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"dot_general: operand dtypes differ: {lhs.dtype} vs {rhs.dtype}")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise ValueError("dot_general: contracting/batch dimension lists differ in length")
    _axes_ok("dot_general", lhs, tuple(lc) + tuple(lb))
    _axes_ok("dot_general", rhs, tuple(rc) + tuple(rb))
    for a, b in list(zip(lc, rc)) + list(zip(lb, rb)):
        if lhs.shape[a] != rhs.shape[b]:
            raise ValueError(
                f"dot_general: size mismatch, lhs dim {a} is {lhs.shape[a]}, "
                f"rhs dim {b} is {rhs.shape[b]}"
            )
    shape = [lhs.shape[i] for i in lb] + [lhs.shape[i] for i in lfree]
    shape += [rhs.shape[i] for i in rfree]
    return TensorType(shape, lhs.dtype)


def _dot_impl(lhs, rhs, contracting, batch):
    lc, rc, lb, rb, lfree, rfree = _dot_dims(lhs, rhs, contracting, batch)

    def size(x, axes):
        return int(np.prod([x.shape[i] for i in axes], dtype=np.int64))

    B, M, N, K = size(lhs, lb), size(lhs, lfree), size(rhs, rfree), size(lhs, lc)
    a = np.transpose(lhs, list(lb) + lfree + list(lc)).reshape(B, M, K)
    b = np.transpose(rhs, list(rb) + list(rc) + rfree).reshape(B, K, N)
    with np.errstate(all="ignore"):
        out = np.matmul(a, b)
    shape = (
        [lhs.shape[i] for i in lb] + [lhs.shape[i] for i in lfree] + [rhs.shape[i] for i in rfree]
    )
    return out.reshape(shape).astype(lhs.dtype, copy=False)


dot_general = register(
    Primitive(
        "dot_general",
        _dot_infer,
        _dot_impl,
        "dot_general(lhs, rhs, contracting=((l..),(r..)), batch=((l..),(r..))): "
        "result dims are batch, lhs free, rhs free",
    )
)
