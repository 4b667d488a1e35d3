"""Automatic batching (vmap) as a graph-to-graph transform.

``batch_graph`` is a generic interpreter: each value carries the position of its batch axis (or
``None`` when it does not depend on a batched input), and each primitive's ``batch`` rule
(``ir/primitives/_rules.py``) turns one application into one batched application. Batch axes move
only when a rule needs them somewhere else; unbatched values stay unbatched (and shared).

    >>> import numpy as np, mlc
    >>> from mlc.ir.passes.batching import batch_graph
    >>> g = mlc.trace(lambda x, w: x @ w, np.zeros(3), np.zeros((3, 2)))
    >>> b = batch_graph(g, in_dims=(0, None), size=5)
    >>> b.inputs[0].type, b.outputs[0].type, b.count("dot_general")
    (TensorType(shape=(5, 3), dtype=dtype('float64')), TensorType(shape=(5, 2), dtype=dtype('float64')), 1)
"""

from __future__ import annotations

from ..graph import Graph, Node
from ..primitives import _rules
from .autodiff import fresh_param
from .rewrite import located, map_nodes, with_inputs


def batch_nodes(outputs, env: dict) -> list:
    """``(node, bdim)`` for each output, given ``env`` (``id(node) -> (node, bdim)``) for the
    batched inputs. Nodes that do not depend on them are kept as they are, with bdim ``None``."""

    def fn(n: Node, ins):
        bdims = tuple(d for _, d in ins)
        nodes = tuple(x for x, _ in ins)
        if all(d is None for d in bdims):
            return with_inputs(n, nodes), None
        rule = n.prim.rules.get("batch")
        if rule is None:
            raise NotImplementedError(
                f"primitive {n.op} has no batching rule (made at {n.loc or 'an unknown line'})"
            )
        out, d = rule(nodes, bdims, **dict(n.attrs))
        if d is not None:
            expect = list(n.shape)
            expect.insert(d, _rules.batch_size(nodes, bdims))
            if out.shape != tuple(expect) or out.dtype != n.dtype:
                raise AssertionError(
                    f"batch rule of {n.op} gave {out.type} with batch axis {d}, "
                    f"expected {n.dtype}{expect}"
                )
        return out, d

    return map_nodes(outputs, fn, env)


def move_batch(x: Node, d: int | None, size: int, to: int | None) -> Node:
    """A batched value with its batch axis at ``to`` (broadcast when it had none)."""
    if to is None:
        if d is not None:
            raise ValueError("an output that depends on the batch cannot have out_axes=None")
        return x
    if to < 0:
        to += x.ndim + (1 if d is None else 0)
    if d is None:
        return _rules.broadcast_batched(x, size, to)
    return _rules.moveaxis(x, d, to)


def batch_graph(graph: Graph, in_dims, size: int, out_dims=0) -> Graph:
    """The batched graph: input ``i`` gets a batch axis of ``size`` at ``in_dims[i]`` (``None``:
    not batched); output ``j`` has it at ``out_dims[j]`` (an int applies to all outputs)."""
    in_dims = tuple(in_dims)
    if isinstance(out_dims, int) or out_dims is None:
        out_dims = (out_dims,) * len(graph.outputs)
    params, env = [], {}
    for i, (p, d) in enumerate(zip(graph.inputs, in_dims)):
        shape = list(p.shape)
        if d is not None:
            d = d + len(shape) + 1 if d < 0 else d
            shape.insert(d, size)
        q = fresh_param(i, _Type(tuple(shape), p.dtype))
        params.append(q)
        env[id(p)] = (q, d)
    outs = batch_nodes(graph.outputs, env)
    with located(None):
        nodes = [move_batch(x, d, size, to) for (x, d), to in zip(outs, out_dims)]
    return Graph(params, nodes, graph.name + "_vmap")


class _Type:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype
