"""Textual form of a graph: one SSA line per node, in topological order.

    func @f(%0: f32[3,4], %1: f32[4]) -> (f32[3,4]) {
      %2: f32[3,4] = broadcast_in_dim(%1, dims=(1,), shape=(3, 4)) loc("f.py":3)
      %3: f32[3,4] = add(%0, %2) loc("f.py":3)
      return %3
    }

Attributes print as Python literals (sorted by name); constants as nested lists, with ``nan``,
``inf`` and ``-inf`` as bare names. ``parser.parse`` reads exactly this back (docs/ir.md).
"""

import math

import numpy as np

from .graph import Graph, Literal, Node


def format_scalar(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return repr(v)


def format_attr(v) -> str:
    if isinstance(v, Literal):
        # Python's list repr writes floats by repr, and nan, inf, -inf bare: the format we
        # want, and ten times faster than formatting element by element.
        return repr(v.array.tolist())
    if isinstance(v, tuple):
        inner = ", ".join(format_attr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return format_scalar(v)


def format_loc(n: Node) -> str:
    if n.loc is None:
        return ""
    return f' loc("{n.loc.file}":{n.loc.line})'


def print_graph(g: Graph, locs: bool = True) -> str:
    names: dict[int, str] = {}
    for i, p in enumerate(g.inputs):
        names[id(p)] = f"%{i}"
    header = ", ".join(f"{names[id(p)]}: {p.type}" for p in g.inputs)
    results = ", ".join(str(o.type) for o in g.outputs)
    lines = [f"func @{g.name}({header}) -> ({results}) {{"]
    for n in g.nodes():
        if id(n) in names:
            continue
        name = names[id(n)] = f"%{len(names)}"
        args = [names[id(i)] for i in n.inputs]
        args += [f"{k}={format_attr(v)}" for k, v in n.attrs]
        loc = format_loc(n) if locs else ""
        lines.append(f"  {name}: {n.type} = {n.op}({', '.join(args)}){loc}")
    lines.append("  return " + ", ".join(names[id(o)] for o in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
