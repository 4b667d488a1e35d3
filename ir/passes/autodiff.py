"""Automatic differentiation as graph-to-graph transforms.

``jvp_graph`` (forward mode) and ``vjp_graph`` (reverse mode) are generic interpreters: they walk
the graph and look up each primitive's ``jvp`` or ``vjp`` rule (``ir/primitives/_rules.py``).
Reverse mode uses direct VJP rules rather than linearize-and-transpose: see docs/autodiff.md.

Tangents and cotangents flow through float values only; ``None`` stands for a symbolic zero, so
inactive parts of the graph cost nothing. Every rule is written with primitives that have rules,
so the output graphs can be differentiated again, to any order and in any mode combination.

    >>> import numpy as np, mlc
    >>> from mlc.ir.passes.autodiff import vjp_graph
    >>> g = mlc.trace(lambda x: np.sin(x), np.zeros(3))
    >>> [n.op for n in vjp_graph(g).nodes()][-2:]
    ['cos', 'mul']
"""

from __future__ import annotations

import itertools

from ..graph import Graph, Node, toposort
from ..primitives import _rules
from ..primitives import structure as S
from .rewrite import keep, located, map_nodes

_UID = itertools.count(1)


def fresh_param(index: int, like) -> Node:
    """A new ``param`` of ``like``'s type that no other graph shares (a unique ``uid``)."""
    return S.param(index=index, shape=like.shape, dtype=like.dtype.name, uid=next(_UID))


def _missing(n: Node, kind: str):
    return NotImplementedError(
        f"primitive {n.op} has no {kind} rule, so it cannot be differentiated "
        f"(made at {n.loc or 'an unknown line'})"
    )


def jvp_nodes(outputs, tangents: dict) -> list:
    """Tangents of ``outputs`` given ``tangents`` (``id(node) -> node``) for some inputs.

    Returns one node or ``None`` (zero) per output. Nodes not reached by a tangent get ``None``.
    """
    tan = dict(tangents)
    for n in toposort(outputs):
        if id(n) in tan:
            continue
        ts = [tan.get(id(i)) for i in n.inputs]
        if not n.prim.differentiable or not _rules.is_float(n) or all(t is None for t in ts):
            tan[id(n)] = None
            continue
        rule = n.prim.rules.get("jvp")
        if rule is None:
            raise _missing(n, "jvp")
        with located(n.loc):
            t = rule(n.inputs, ts, n, **dict(n.attrs))
        _check(n, t, "jvp")
        tan[id(n)] = t
    return [tan.get(id(o)) for o in outputs]


def active_nodes(outputs, wrt) -> set:
    """Ids of the nodes between ``wrt`` and ``outputs`` that carry a derivative."""
    active = {id(w) for w in wrt}
    for n in toposort(outputs):
        if id(n) in active:
            continue
        if n.prim.differentiable and _rules.is_float(n) and any(id(i) in active for i in n.inputs):
            active.add(id(n))
    return active


def vjp_nodes(outputs, cts, wrt) -> list:
    """Cotangents of ``wrt`` given cotangents ``cts`` (node or ``None``) of ``outputs``."""
    active = active_nodes(outputs, wrt)
    acc: dict[int, Node | None] = {}
    for o, c in zip(outputs, cts):
        if c is not None and id(o) in active:
            acc[id(o)] = _rules.add_any(acc.get(id(o)), c)
    wrt_ids = {id(w) for w in wrt}
    for n in reversed(toposort(outputs)):
        if id(n) in wrt_ids:
            continue
        c = acc.pop(id(n), None)
        if c is None:
            continue
        rule = n.prim.rules.get("vjp")
        if rule is None:
            raise _missing(n, "vjp")
        with located(n.loc):
            in_cts = rule(c, n.inputs, n, **dict(n.attrs))
        if len(in_cts) != len(n.inputs):
            raise AssertionError(f"vjp rule of {n.op} gave {len(in_cts)} cotangents")
        for i, ci in zip(n.inputs, in_cts):
            if ci is not None and id(i) in active:
                _check(i, ci, "vjp")
                acc[id(i)] = _rules.add_any(acc.get(id(i)), ci)
    return [acc.get(id(w)) for w in wrt]


def _check(like: Node, t, kind):
    if t is not None and t.type != like.type:
        raise AssertionError(f"{kind} rule of {like.op} gave {t.type}, expected {like.type}")


def _wrt(graph: Graph, wrt):
    idx = range(len(graph.inputs)) if wrt is None else wrt
    return [i for i in idx if _rules.is_float(graph.inputs[i])]


def jvp_graph(graph: Graph, wrt=None) -> Graph:
    """Forward mode: inputs are the graph's inputs then one tangent per float input in ``wrt``
    (default all); outputs are the graph's outputs then one tangent per output (zeros where
    nothing flows, including non-float outputs)."""
    wrt = _wrt(graph, wrt)
    n = len(graph.inputs)
    tparams = [fresh_param(n + k, graph.inputs[i]) for k, i in enumerate(wrt)]
    tans = jvp_nodes(graph.outputs, {id(graph.inputs[i]): t for i, t in zip(wrt, tparams)})
    with located(None):
        touts = [_rules.instantiate(t, o) for t, o in zip(tans, graph.outputs)]
    return Graph(list(graph.inputs) + tparams, list(graph.outputs) + touts, graph.name + "_jvp")


def vjp_graph(graph: Graph, wrt=None) -> Graph:
    """Reverse mode: inputs are the graph's inputs then one cotangent per output; outputs are the
    graph's outputs then one cotangent per float input in ``wrt`` (default all)."""
    wrt = _wrt(graph, wrt)
    n = len(graph.inputs)
    cparams = [fresh_param(n + k, o) for k, o in enumerate(graph.outputs)]
    cts = vjp_nodes(graph.outputs, cparams, [graph.inputs[i] for i in wrt])
    with located(None):
        couts = [_rules.instantiate(c, graph.inputs[i]) for c, i in zip(cts, wrt)]
    return Graph(list(graph.inputs) + cparams, list(graph.outputs) + couts, graph.name + "_vjp")


def inline(graph: Graph, args) -> list:
    """``graph``'s outputs with its inputs replaced by the nodes ``args`` (the rest rebuilt on
    top, sharing everything that does not depend on the inputs)."""
    if len(args) != len(graph.inputs):
        raise TypeError(f"{graph.name} takes {len(graph.inputs)} inputs, got {len(args)}")
    env = {}
    for p, a in zip(graph.inputs, args):
        if a.type != p.type:
            raise TypeError(f"{graph.name}: argument of type {a.type} for a {p.type} input")
        env[id(p)] = a
    return map_nodes(graph.outputs, keep, env)


def split(graph: Graph, n_primal: int, n_out: int):
    """Partial evaluation by dependence. ``graph``'s inputs are ``n_primal`` primal inputs then
    linear ones (tangents or cotangents); its first ``n_out`` outputs are primal results, the rest
    linear results. Returns ``(fwd, lin, n_residuals)``:

    - ``fwd``: primal inputs -> the primal results, then the residuals;
    - ``lin``: residuals, then the linear inputs -> the linear results,

    where the residuals are the values computed from primal inputs alone that the linear part
    reads (after DCE: the minimum a backward pass must keep). Values that depend on no primal
    input (constants) are rebuilt in ``lin`` rather than passed, and so is everything computed
    from a ``barrier`` node: that is how ``mlc.checkpoint`` recomputes instead of saving.
    """
    linear = graph.inputs[n_primal:]
    order = toposort(graph.outputs[n_out:])
    dep = {id(p) for p in linear}
    for n in order:  # a barrier marks values to recompute in ``lin`` (mlc.checkpoint)
        if n.op == "barrier" or any(id(i) in dep for i in n.inputs):
            dep.add(id(n))
    primal = {id(p) for p in graph.inputs[:n_primal]}
    for n in order:
        if any(id(i) in primal for i in n.inputs):
            primal.add(id(n))
    residuals, seen = [], set()

    def keep_residual(r):  # values that need no primal input (constants) stay in ``lin``
        if id(r) in primal and id(r) not in dep and id(r) not in seen:
            seen.add(id(r))
            residuals.append(r)

    for n in order:
        if id(n) in dep:
            for i in n.inputs:
                keep_residual(i)
    for o in graph.outputs[n_out:]:  # a linear result that needs no linear input
        keep_residual(o)
    fwd = Graph(
        graph.inputs[:n_primal], list(graph.outputs[:n_out]) + residuals, graph.name + "_fwd"
    )
    rparams = [fresh_param(k, r) for k, r in enumerate(residuals)]
    lparams = [fresh_param(len(residuals) + k, p) for k, p in enumerate(linear)]
    env = {id(r): q for r, q in zip(residuals, rparams)}
    env.update({id(p): q for p, q in zip(linear, lparams)})
    outs = map_nodes(graph.outputs[n_out:], keep, env)
    return fwd, Graph(rparams + lparams, outs, graph.name + "_lin"), len(residuals)
