"""The reference interpreter: evaluates a graph node by node with each primitive's NumPy ``impl``.

It is the ground truth every backend and every pass is checked against.
"""

import numpy as np

from .graph import Graph, Node, toposort


def evaluate(graph: Graph, *args):
    """Run ``graph`` on NumPy arrays; returns the list of outputs.

    >>> from mlc.ir import primitives as P
    >>> x = P.param(index=0, shape=(2,), dtype="float32")
    >>> evaluate(Graph([x], [P.add(x, x)]), np.ones(2, np.float32))[0]
    array([2., 2.], dtype=float32)
    """
    if len(args) != len(graph.inputs):
        raise TypeError(f"graph {graph.name} takes {len(graph.inputs)} arguments, got {len(args)}")
    env = {}
    for p, a in zip(graph.inputs, args):
        env[id(p)] = np.asarray(a)
    return evaluate_nodes(graph.outputs, env)


def evaluate_nodes(outputs, env=None):
    """Values of ``outputs`` given ``env`` (id(node) -> array) for params; fills ``env``."""
    env = {} if env is None else env
    for n in toposort(outputs):
        if id(n) in env:
            continue
        env[id(n)] = evaluate_node(n, [env[id(i)] for i in n.inputs])
    return [env[id(n)] for n in outputs]


def evaluate_node(n: Node, inputs):
    if n.op == "param":
        raise ValueError(f"unbound parameter {n.attr('index')} of type {n.type}")
    out = np.asarray(n.prim.impl(*inputs, **dict(n.attrs)))
    if out.shape != n.type.shape or out.dtype != n.type.dtype:
        raise AssertionError(
            f"{n.op}: evaluation gave {out.dtype}{list(out.shape)}, its rule says {n.type}"
        )
    return out
