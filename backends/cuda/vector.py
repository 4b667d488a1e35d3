"""Which pointwise programs the CUDA backend vectorizes, and how (``codegen``'s ``NAME_vec``).

``vector_plan(program)`` is a ``VectorPlan`` when every load and store of a pointwise program is
at the linear index of its loop nest (broadcast scalars aside), else None; docs/cuda-backend.md,
*Vectorized pointwise kernels*.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cexpr import SIZE

VECTOR_ALIGN = 16  # bytes: the widest vector access, and the alignment the vector entry needs
MAX_LANES = 4  # elements per vector access (16 bytes of float32/int32; bool as uchar4)


@dataclass(frozen=True)
class VectorPlan:
    """How a pointwise program runs ``lanes`` elements per thread and vector access."""

    lanes: int
    buffers: tuple  # accessed as vectors: loaded or stored at the linear index of the loop nest
    linear: frozenset  # exprs equal to that linear index
    broadcast: tuple  # loads at a fixed offset (one element for every lane)
    needs: str | None  # what the lanes read of their position: None, "lin" or "split" (see
    # ``_lane_needs``)


def vector_plan(p) -> VectorPlan | None:
    """The vector plan of ``p``, or None when some load or store is not at the linear index of
    the loop nest (a broadcast, a transpose, a gather...) or ``p`` is not purely pointwise.

    An offset is the linear index when, as a polynomial in the loop indices and the size slots,
    it is ``sum(idx[a] * prod(extent[b] for b > a))`` over the axes with an index (a unit axis
    has none: its loads read index 0); a broadcast scalar's offset has no loop index at all."""
    if p.inner or p.reductions or not p.stores or any(s.level != "full" for s in p.stores):
        return None
    slots = [p.exprs[e].attr for e in p.extents]
    live = sorted({e.attr for e in p.exprs if e.op == "idx"})
    want = {(a, tuple(sorted(slots[a + 1 :]))): 1 for a in live}
    memo: dict = {}
    linear = frozenset(e for e, x in enumerate(p.exprs) if _affine(p, e, memo) == want)
    buffers, broadcast = set(), []
    for e, x in enumerate(p.exprs):
        if x.op != "load":
            continue
        if x.args[0] in linear:
            buffers.add(x.attr)
            continue
        form = _affine(p, x.args[0], memo)
        if form is None or any(a >= 0 for a, _ in form):
            return None
        broadcast.append(e)
    for s in p.stores:
        if s.offset not in linear:
            return None
        buffers.add(s.buffer)
    widest = max(SIZE[p.buffers[b].dtype] for b in buffers)
    lanes = min(MAX_LANES, VECTOR_ALIGN // widest)
    loads = {e for e, x in enumerate(p.exprs) if x.op == "load" and e not in broadcast}
    needs = _lane_needs(p, linear, loads)
    return VectorPlan(lanes, tuple(sorted(buffers)), linear, tuple(broadcast), needs)


def _lane_needs(p, linear, vector_loads) -> str | None:
    """What the stored values read of their element's position: nothing, ``"lin"`` (the linear
    index as a value) or ``"split"`` (a loop index, e.g. an ``iota``)."""
    need, stack, seen = None, [s.value for s in p.stores], set()
    while stack:
        e = stack.pop()
        if e in seen or e in vector_loads:
            continue
        seen.add(e)
        if e in linear:
            need = "lin"
        elif p.exprs[e].op == "idx":
            return "split"
        else:
            stack.extend(p.exprs[e].args)
    return need


def _affine(p, e, memo):
    """Index expr ``e`` as ``{(axis or -1, sorted size slots): coefficient}`` (a polynomial
    linear in the loop indices), or None when it is not one (division, clamping, a load...)."""
    if e in memo:
        return memo[e]
    x, out = p.exprs[e], None
    if x.op == "idx":
        out = {(x.attr, ()): 1}
    elif x.op == "size":
        out = {(-1, (x.attr,)): 1}
    elif x.op == "int":
        out = {(-1, ()): x.attr} if x.attr else {}
    elif x.op in ("iadd", "isub", "imul"):
        a, b = (_affine(p, y, memo) for y in x.args)
        if a is not None and b is not None:
            out = (
                _poly_mul(a, b) if x.op == "imul" else _poly_add(a, b, -1 if x.op == "isub" else 1)
            )
    memo[e] = out
    return out


def _poly_add(a, b, sign):
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0) + sign * c
    return {k: c for k, c in out.items() if c}


def _poly_mul(a, b):
    out: dict = {}
    for (ax, sa), ca in a.items():
        for (bx, sb), cb in b.items():
            if ax >= 0 and bx >= 0:
                return None  # idx * idx: not linear
            k = (max(ax, bx), tuple(sorted(sa + sb)))
            out[k] = out.get(k, 0) + ca * cb
    return {k: c for k, c in out.items() if c}
