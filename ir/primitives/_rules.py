"""Helpers that transform rules are written with, and the functions that attach rules.

Every primitive block attaches its rules next to its definition (DESIGN.md section 3):

- ``jvp(primals, tangents, out, **attrs) -> tangent``: ``primals`` are the input nodes,
  ``tangents`` one node or ``None`` (a symbolic zero) per input, ``out`` the primitive's result
  node. Called only when the result is a float and some input tangent is not ``None``; may return
  ``None`` for a zero tangent.
- ``vjp(ct, primals, out, **attrs) -> tuple``: one cotangent (node or ``None``) per input, given
  the cotangent ``ct`` of the result. Inputs that are not floats (indices, predicates) get ``None``.
- ``batch(inputs, bdims, **attrs) -> (node, bdim)``: ``bdims`` gives, per input, the axis that
  holds the batch or ``None`` when that input is not batched (at least one is). The result may put
  its batch axis anywhere; say where. Rules build batched primitives, never loops.

All three are written with primitive functions on nodes, so the nodes they build have rules too
and every transform applies to its own output (any order of differentiation, vmap of grad, ...).
Primitives with ``differentiable=False`` need no derivative rules: their tangent is zero.
"""

from __future__ import annotations

import numpy as np

from ..graph import Node, Primitive

# The primitive modules import this one and attach rules at import time (``@defjvp(...)``), so
# they are imported at the END of this file, once every helper here is defined.


# -- attaching rules ------------------------------------------------------------------------
def defjvp(prim: Primitive):
    def deco(fn):
        prim.rules["jvp"] = fn
        return fn

    return deco


def defvjp(prim: Primitive):
    def deco(fn):
        prim.rules["vjp"] = fn
        return fn

    return deco


def defbatch(prim: Primitive):
    def deco(fn):
        prim.rules["batch"] = fn
        return fn

    return deco


def defderiv(prim: Primitive, *derivs):
    """Rules for an elementwise primitive from its partial derivatives.

    ``derivs[i](*primals, out)`` is the derivative of the result with respect to input ``i``
    (a node of the result's shape and dtype), or ``None`` when that input has no derivative.
    The JVP is ``sum_i t_i * d_i``, the VJP ``ct * d_i`` for each input.
    """

    def jvp(primals, tangents, out, **attrs):
        terms = [
            E.mul(t, d(*primals, out))
            for t, d in zip(tangents, derivs)
            if t is not None and d is not None
        ]
        return add_all(terms)

    def vjp(ct, primals, out, **attrs):
        return tuple(
            E.mul(ct, d(*primals, out)) if d is not None and is_float(p) else None
            for p, d in zip(primals, derivs)
        )

    prim.rules["jvp"] = jvp
    prim.rules["vjp"] = vjp
    return prim


# -- values ---------------------------------------------------------------------------------
def is_float(n: Node) -> bool:
    return n.dtype.kind == "f"


def full(value, shape, dtype) -> Node:
    """``value`` broadcast to ``shape`` (a constant node; a splat, never a big literal)."""
    c = S.const(np.asarray(value, dtype=dtype))
    shape = tuple(shape)
    return c if shape == () else S.broadcast_in_dim(c, shape=shape, dims=())


def full_like(value, like: Node) -> Node:
    return full(value, like.shape, like.dtype)


def zeros_like(like: Node) -> Node:
    return full(0, like.shape, like.dtype)


def instantiate(t: Node | None, like: Node) -> Node:
    """A tangent or cotangent as a node: ``None`` (symbolic zero) becomes zeros like ``like``."""
    return zeros_like(like) if t is None else t


def add_any(a: Node | None, b: Node | None) -> Node | None:
    """Sum of two (co)tangents, either of which may be the symbolic zero ``None``."""
    if a is None:
        return b
    if b is None:
        return a
    return E.add(a, b)


def add_all(terms) -> Node | None:
    out = None
    for t in terms:
        out = add_any(out, t)
    return out


def neg_any(t: Node | None) -> Node | None:
    return None if t is None else E.neg(t)


def select_zero(pred: Node, x: Node) -> Node:
    """``x`` where ``pred`` holds, else 0 (``select`` keeps NaN/inf out of the other branch)."""
    return E.select(pred, x, zeros_like(x))


# -- shape helpers --------------------------------------------------------------------------
def moveaxis(x: Node, src: int, dst: int) -> Node:
    """``x`` with axis ``src`` moved to position ``dst`` (the node itself when they are equal)."""
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return S.transpose(x, perm=tuple(perm))


def broadcast_batched(x: Node, size: int, bdim: int) -> Node:
    """An unbatched ``x`` given a batch axis of ``size`` at ``bdim`` (a broadcast, no copy)."""
    shape = list(x.shape)
    shape.insert(bdim, size)
    dims = tuple(i for i in range(len(shape)) if i != bdim)
    return S.broadcast_in_dim(x, shape=tuple(shape), dims=dims)


def batch_size(inputs, bdims) -> int:
    for x, d in zip(inputs, bdims):
        if d is not None:
            return x.shape[d]
    raise ValueError("batch rule called with no batched input")


def align_batched(inputs, bdims, bdim=None):
    """Every input with the batch axis at one position (moved or broadcast as needed).

    The position is that of the first batched input unless ``bdim`` is given, so the common case
    (all batched the same way) moves nothing. Returns ``(nodes, bdim)``.
    """
    if bdim is None:
        bdim = next(d for d in bdims if d is not None)
    size = batch_size(inputs, bdims)
    out = []
    for x, d in zip(inputs, bdims):
        out.append(broadcast_batched(x, size, bdim) if d is None else moveaxis(x, d, bdim))
    return out, bdim


def batch_elementwise(prim: Primitive):
    """The batching rule of an elementwise primitive: align batch axes, apply once."""

    def rule(inputs, bdims, **attrs):
        xs, d = align_batched(inputs, bdims)
        return prim(*xs, **attrs), d

    prim.rules["batch"] = rule
    return prim


def sum_to_shape(x: Node, shape, dims=None) -> Node:
    """The transpose of ``broadcast_in_dim(., shape=x.shape, dims=dims)``: sum away the axes
    the broadcast added or stretched, giving an array of ``shape``."""
    shape = tuple(shape)
    if dims is None:  # NumPy-style trailing alignment
        dims = tuple(range(x.ndim - len(shape), x.ndim))
    added = tuple(i for i in range(x.ndim) if i not in dims)
    stretched = tuple(d for i, d in enumerate(dims) if shape[i] == 1 and x.shape[d] != 1)
    axes = tuple(sorted(added + stretched))
    out = R.reduce_sum(x, axes=axes) if axes else x
    return out if out.shape == shape else S.reshape(out, shape=shape)


# Imported last: see the note at the top (the primitive modules use the helpers above on import).
from . import elementwise as E  # noqa: E402
from . import reduce as R  # noqa: E402
from . import structure as S  # noqa: E402
