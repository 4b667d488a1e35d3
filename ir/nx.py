"""A graph as a ``networkx.DiGraph``, for analysis and drawing, and back.

    >>> from mlc.ir import Graph, primitives as P, to_networkx
    >>> x = P.param(index=0, shape=(3,), dtype="float32")
    >>> dg = to_networkx(Graph([x], [P.mul(x, x)]))
    >>> sorted(dg.nodes), dg.edges["%0", "%1"]["positions"]
    (['%0', '%1'], (0, 1))

Node ids are the printer's SSA names (``%N``). Node attributes: ``op``, ``type`` (the printed
type, ``"f32[3,4]"``), ``shape``, ``dtype`` (its name), ``attrs`` (a dict; a constant's value is a
read-only NumPy array) and ``loc`` (a ``SourceLoc`` or None). An edge ``u -> v`` means v reads u;
its ``positions`` are the operand positions where it does (``mul(%0, %0)`` is one edge with
``(0, 1)``), ``position`` the first of them, and ``bytes`` the size of the tensor. The graph
attributes ``name``, ``inputs`` and ``outputs`` (lists of ids) complete the picture, so
``from_networkx`` rebuilds the same graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import graph as ir_graph
from .graph import PRIMITIVES, Graph, Literal, Node, TensorType

if TYPE_CHECKING:  # networkx is imported on first use: it doubles the time to import mlc
    import networkx as nx


def to_networkx(graph: Graph) -> nx.DiGraph:
    """The graph as a DiGraph keyed by SSA names (see the module doc for the attributes)."""
    import networkx as nx

    dg = nx.DiGraph(name=graph.name)
    names: dict[int, str] = {}
    for n in graph.nodes():
        name = names[id(n)] = f"%{len(names)}"
        attrs = {k: v.array if isinstance(v, Literal) else v for k, v in n.attrs}
        dg.add_node(
            name,
            op=n.op,
            type=str(n.type),
            shape=n.shape,
            dtype=n.dtype.name,
            attrs=attrs,
            loc=n.loc,
        )
        for pos, x in enumerate(n.inputs):
            src = names[id(x)]
            if dg.has_edge(src, name):
                dg.edges[src, name]["positions"] += (pos,)
                continue
            nbytes = x.type.size * x.dtype.itemsize
            dg.add_edge(src, name, position=pos, positions=(pos,), bytes=nbytes)
    dg.graph["inputs"] = [names[id(p)] for p in graph.inputs]
    dg.graph["outputs"] = [names[id(o)] for o in graph.outputs]
    return dg


def from_networkx(dg: nx.DiGraph) -> Graph:
    """Rebuild the graph ``to_networkx`` made; every node goes through its primitive's type rule.

    Raises ValueError on an unknown primitive, missing operands or a type that disagrees.
    """
    import networkx as nx

    built: dict = {}
    with ir_graph.location_override(lambda: None):
        for i, name in enumerate(dg.graph["inputs"]):
            d = dg.nodes[name]
            built[name] = PRIMITIVES["param"](index=i, shape=d["shape"], dtype=d["dtype"])
        for name in nx.topological_sort(dg):
            if name not in built:
                built[name] = _rebuild(dg, name, built)
    outputs = [built[name] for name in dg.graph["outputs"]]
    return Graph(
        [built[name] for name in dg.graph["inputs"]], outputs, dg.graph.get("name", "main")
    )


def _rebuild(dg, name, built) -> Node:
    d = dg.nodes[name]
    prim = PRIMITIVES.get(d["op"])
    if prim is None:
        raise ValueError(f"{name}: unknown primitive {d['op']!r}")
    if d["op"] == "param":
        raise ValueError(f"{name}: param is not among the graph's inputs")
    operands = {}
    for src, _, e in dg.in_edges(name, data=True):
        for pos in e["positions"]:
            operands[pos] = built[src]
    if sorted(operands) != list(range(len(operands))):
        raise ValueError(f"{name}: operand positions {sorted(operands)} have gaps")
    inputs = [operands[i] for i in range(len(operands))]
    attrs = {k: Literal(v) if isinstance(v, np.ndarray) else v for k, v in d["attrs"].items()}
    n = Node.make(prim, inputs, attrs, d.get("loc"))
    declared = TensorType(d["shape"], d["dtype"])
    if n.type != declared:
        raise ValueError(f"{name}: declared {declared}, {d['op']} gives {n.type}")
    return n
