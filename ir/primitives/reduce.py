"""Reductions, scans, sorting and dot_general."""

import numpy as np

from .. import dtypes
from ..graph import Primitive, TensorType, register
from . import _rules as U
from . import elementwise as E
from . import structure as S


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


def _kept(x, axes):
    """The axes of ``x`` a reduction over ``axes`` keeps (the result's dims, in order)."""
    return tuple(i for i in range(x.ndim) if i not in axes)


def _unreduce(y, x, axes):
    """A reduction's result ``y`` broadcast back over the reduced ``axes`` to ``x``'s shape."""
    return S.broadcast_in_dim(y, shape=x.shape, dims=_kept(x, axes))


def _batch_axis(a, bdim):
    """Axis ``a`` of the unbatched operand as an axis of the operand with a batch axis at bdim."""
    return a + 1 if a >= bdim else a


def _batch_reduction(prim):
    # The batch axis is kept: it lands at its position among the kept axes.
    def rule(inputs, bdims, axes):
        (x,), (d,) = inputs, bdims
        axes = tuple(_batch_axis(a, d) for a in axes)
        return prim(x, axes=axes), d - sum(a < d for a in axes)

    return U.defbatch(prim)(rule)


# d sum(x) = sum(dx); the transpose of a sum broadcasts the cotangent back over the reduced axes.
@U.defjvp(reduce_sum)
def _reduce_sum_jvp(primals, tangents, out, axes):
    return reduce_sum(tangents[0], axes=axes)


@U.defvjp(reduce_sum)
def _reduce_sum_vjp(ct, primals, out, axes):
    return (_unreduce(ct, primals[0], axes),)


def _extreme_mask(x, out, axes):
    """Where ``x`` equals its reduced extreme ``out``; where the extreme is NaN, the NaNs (max
    and min propagate NaN, so a NaN element always marks a NaN extreme)."""
    return E.logical_or(E.eq(x, _unreduce(out, x, axes)), E.is_nan(x))


def _extreme_rules(prim):
    # The derivative of max/min is split evenly among the tied extremes: with ``mask`` the tied
    # positions and ``count`` their number, d out = sum(mask * dx) / count. When the extreme is
    # NaN, it is split among the NaN elements (they "are" the result), so nothing crashes and
    # the gradient stays where the value came from. ``select`` keeps inf/NaN of the other
    # elements' tangents out of the sum.
    def mask_count(x, out, axes):
        mask = _extreme_mask(x, out, axes)
        return mask, reduce_sum(E.convert(mask, dtype=x.dtype.name), axes=axes)

    def jvp(primals, tangents, out, axes):
        (x,), (t,) = primals, tangents
        mask, count = mask_count(x, out, axes)
        return E.div(reduce_sum(U.select_zero(mask, t), axes=axes), count)

    def vjp(ct, primals, out, axes):
        (x,) = primals
        mask, count = mask_count(x, out, axes)
        return (U.select_zero(mask, _unreduce(E.div(ct, count), x, axes)),)

    U.defjvp(prim)(jvp)
    U.defvjp(prim)(vjp)
    return prim


_extreme_rules(reduce_max)
_extreme_rules(reduce_min)


def _prod_of_others(x, axes):
    """For each element of ``x``, the product of the other elements of its reduction group:
    the derivative of ``reduce_prod(x, axes)``, exact when some elements are zero (no division).

    The reduced axes are moved last and flattened to one axis of n; the product of the others is
    then (exclusive product from the left) * (exclusive product from the right)."""
    kept = _kept(x, axes)
    perm = kept + tuple(axes)
    xt = S.transpose(x, perm=perm) if perm != tuple(range(x.ndim)) else x
    lead = tuple(x.shape[i] for i in kept)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = S.reshape(xt, shape=lead + (n,)) if len(axes) != 1 else xt
    axis = len(lead)
    left = _shift(cumprod(flat, axis=axis, reverse=False), axis, 1, 1)
    right = _shift(cumprod(flat, axis=axis, reverse=True), axis, -1, 1)
    others = E.mul(left, right)
    if others.shape != xt.shape:
        others = S.reshape(others, shape=xt.shape)
    inv = tuple(int(i) for i in np.argsort(perm))
    return S.transpose(others, perm=inv) if perm != tuple(range(x.ndim)) else others


# d prod(x) = sum_j dx_j * prod_{k != j} x_k.
@U.defjvp(reduce_prod)
def _reduce_prod_jvp(primals, tangents, out, axes):
    (x,), (t,) = primals, tangents
    return reduce_sum(E.mul(t, _prod_of_others(x, axes)), axes=axes)


@U.defvjp(reduce_prod)
def _reduce_prod_vjp(ct, primals, out, axes):
    (x,) = primals
    return (E.mul(_unreduce(ct, x, axes), _prod_of_others(x, axes)),)


for _prim in (reduce_sum, reduce_prod, reduce_max, reduce_min):
    _batch_reduction(_prim)


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


def _batch_arg_reduction(prim):
    # Not differentiable (integer result): only a batch rule. The reduced axis is removed, so a
    # batch axis after it moves down one.
    def rule(inputs, bdims, axis):
        (x,), (d,) = inputs, bdims
        return prim(x, axis=_batch_axis(axis, d)), d - 1 if axis < d else d

    return U.defbatch(prim)(rule)


_batch_arg_reduction(argmax)
_batch_arg_reduction(argmin)


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


def _batch_scan(prim):
    # Scans and argsort keep every axis: the batch axis stays where it is.
    def rule(inputs, bdims, axis, **attrs):
        (x,), (d,) = inputs, bdims
        return prim(x, axis=_batch_axis(axis, d), **attrs), d

    return U.defbatch(prim)(rule)


_batch_scan(cumsum)
_batch_scan(cumprod)


# cumsum is linear; its transpose sums from the other end.
@U.defjvp(cumsum)
def _cumsum_jvp(primals, tangents, out, axis, reverse):
    return cumsum(tangents[0], axis=axis, reverse=reverse)


@U.defvjp(cumsum)
def _cumsum_vjp(ct, primals, out, axis, reverse):
    return (cumsum(ct, axis=axis, reverse=not reverse),)


def _take(x, axis, lo, hi):
    """``x[lo:hi]`` along ``axis``."""
    start = [0] * x.ndim
    limit = list(x.shape)
    start[axis], limit[axis] = lo, hi
    return S.slice(x, start=tuple(start), limit=tuple(limit), stride=(1,) * x.ndim)


def _shift(x, axis, k, fill):
    """``x`` moved ``k`` places along ``axis`` (k > 0: towards higher indices), the vacated
    places holding ``fill``: ``_shift(x, 0, 1, 1)[i] == x[i - 1]`` with 1 at i = 0."""
    n = x.shape[axis]
    if abs(k) >= n:
        return U.full(fill, x.shape, x.dtype)
    low, high = [0] * x.ndim, [0] * x.ndim
    if k > 0:
        part, low[axis] = _take(x, axis, 0, n - k), k
    else:
        part, high[axis] = _take(x, axis, -k, n), -k
    value = S.const(np.asarray(fill, dtype=x.dtype))
    return S.pad(part, value, low=tuple(low), high=tuple(high), interior=(0,) * x.ndim)


def _linear_scan(a, b, axis, reverse):
    """``h`` with ``h[i] = a[i] * h[i - 1] + b[i]`` along ``axis`` (``h[i + 1]`` when
    ``reverse``), starting from zero: a first-order linear recurrence, the tangent of a cumprod.

    Hillis-Steele doubling on the affine maps ``h -> a h + b``: after the step with offset s,
    ``(a[i], b[i])`` maps ``h[i - 2s]`` to ``h[i]``. log2(n) steps of slices, products and sums,
    O(n log n) work and O(n) memory, no division (so exact where the x's are zero). Elements
    with nothing s places before them keep their value: no multiplication by a padding value,
    which would turn an inf into a NaN that the true recurrence does not have.
    """
    n = a.shape[axis]
    s = 1
    while s < n:
        # forward: element i >= s takes in element i - s, the first s are final; reverse: mirrored
        near, far = ((0, n - s), (s, n)) if reverse else ((s, n), (0, n - s))
        rest = (n - s, n) if reverse else (0, s)
        a_near = _take(a, axis, *near)
        b_near = E.add(_take(b, axis, *near), E.mul(a_near, _take(b, axis, *far)))
        b = _join(b_near, _take(b, axis, *rest), axis, reverse)
        if 2 * s < n:  # the last step's products of a's would never be read
            a_near = E.mul(a_near, _take(a, axis, *far))
            a = _join(a_near, _take(a, axis, *rest), axis, reverse)
        s *= 2
    return b


def _join(combined, kept, axis, reverse):
    # Forward: the first s elements are kept, the rest combined; reverse: the last s are kept.
    parts = (combined, kept) if reverse else (kept, combined)
    return S.concatenate(*parts, axis=axis)


# y[i] = prod_{k <= i} x[k] (forward; k >= i when reverse). With e[i] = prod_{k < i} x[k] (the
# exclusive product, y shifted by one with 1 first):
#   tangent: dy[i] = x[i] dy[i-1] + e[i] dx[i]           (a linear recurrence, forward)
#   cotangent: g[j] = ct[j] + x[j+1] g[j+1], dx[j] = e[j] g[j]   (the same, backwards)
# Both are exact at zeros (no division by x) and built from primitives with rules.
@U.defjvp(cumprod)
def _cumprod_jvp(primals, tangents, out, axis, reverse):
    (x,), (t,) = primals, tangents
    d = -1 if reverse else 1
    excl = _shift(out, axis, d, 1)
    return _linear_scan(x, E.mul(excl, t), axis, reverse)


@U.defvjp(cumprod)
def _cumprod_vjp(ct, primals, out, axis, reverse):
    (x,) = primals
    d = -1 if reverse else 1
    excl = _shift(out, axis, d, 1)
    g = _linear_scan(_shift(x, axis, -d, 1), ct, axis, not reverse)
    return (E.mul(excl, g),)


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
_batch_scan(argsort)


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


def _argsort_perm(order):
    """The permutation taking a result whose dims hold operand dims ``order`` to operand order."""
    return tuple(int(i) for i in np.argsort(order))


# d (a . b) = da . b + a . db (bilinear).
@U.defjvp(dot_general)
def _dot_jvp(primals, tangents, out, contracting, batch):
    (a, b), (ta, tb) = primals, tangents
    da = None if ta is None else dot_general(ta, b, contracting=contracting, batch=batch)
    db = None if tb is None else dot_general(a, tb, contracting=contracting, batch=batch)
    return U.add_any(da, db)


@U.defvjp(dot_general)
def _dot_vjp(ct, primals, out, contracting, batch):
    # ct has dims (batch, lhs free, rhs free). The cotangent of one operand contracts ct's dims
    # of the other operand's free dims with those dims, batch against batch. The result holds
    # (batch, own free, own contracting dims in the other operand's dim order): transpose back.
    lhs, rhs = primals
    lc, rc, lb, rb, lfree, rfree = _dot_dims(lhs, rhs, contracting, batch)
    nb, nlf = len(lb), len(lfree)
    ct_batch = tuple(range(nb))
    ct_lfree = tuple(range(nb, nb + nlf))
    ct_rfree = tuple(range(nb + nlf, ct.ndim))

    def cotangent(own_batch, own_free, own_c, other, other_free, other_batch, other_c, ct_free):
        # the other operand's remaining dims are its contracting dims in increasing order
        by_other = [own_c[i] for i in np.argsort(other_c)] if other_c else []
        # ct first gives (batch, own free, own contracting), the other operand first gives
        # (batch, own contracting, own free): take the one already in the operand's layout, so
        # BLAS writes the gradient in place of a transpose kernel (x @ w: dw = x.T @ ct)
        first = _argsort_perm(list(own_batch) + list(own_free) + by_other)
        second = _argsort_perm(list(own_batch) + by_other + list(own_free))
        identity = tuple(range(len(first)))
        if second == identity and first != identity:
            return dot_general(
                other,
                ct,
                contracting=(tuple(other_free), ct_free),
                batch=(tuple(other_batch), ct_batch),
            )
        d = dot_general(
            ct,
            other,
            contracting=(ct_free, tuple(other_free)),
            batch=(ct_batch, tuple(other_batch)),
        )
        return S.transpose(d, perm=first) if first != identity else d

    d_lhs = d_rhs = None
    if U.is_float(lhs):
        d_lhs = cotangent(lb, lfree, lc, rhs, rfree, rb, rc, ct_rfree)
    if U.is_float(rhs):
        d_rhs = cotangent(rb, rfree, rc, lhs, lfree, lb, lc, ct_lfree)
    return d_lhs, d_rhs


@U.defbatch(dot_general)
def _dot_batch(inputs, bdims, contracting, batch):
    # Both batched: the batch axes become a new leading batch pair (result batch axis 0). One
    # batched: its batch axis is one more free dim of that operand; the result's batch axis is
    # its place among the result dims (batch dims, then lhs free, then rhs free).
    (lhs, rhs), (ld, rd) = inputs, bdims
    (lc, rc), (lb, rb) = contracting, batch

    def shift(dims, d):
        return tuple(dims) if d is None else tuple(_batch_axis(i, d) for i in dims)

    lc, lb, rc, rb = shift(lc, ld), shift(lb, ld), shift(rc, rd), shift(rb, rd)
    if ld is not None and rd is not None:
        out = dot_general(lhs, rhs, contracting=(lc, rc), batch=((ld,) + lb, (rd,) + rb))
        return out, 0
    out = dot_general(lhs, rhs, contracting=(lc, rc), batch=(lb, rb))
    if ld is not None:
        lfree = [i for i in range(lhs.ndim) if i not in lc and i not in lb]
        return out, len(lb) + lfree.index(ld)
    lfree_n = lhs.ndim - len(lc) - len(lb)
    rfree = [i for i in range(rhs.ndim) if i not in rc and i not in rb]
    return out, len(lb) + lfree_n + rfree.index(rd)
