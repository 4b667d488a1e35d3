"""Common-subexpression elimination.

Building a node structurally equal to a live one made at the same source line returns that node
(hash-consing), so most common subexpressions are one object from the start. This pass catches
what the hash-consing table cannot: the same expression made on two lines (the table keys on the
location too; the merged node keeps the first one's), and, through a stricter key:

- attributes that never compare equal to themselves: a float ``nan`` attribute (``nan != nan``),
  or an attribute value that is not hashable at all.

Constant arrays are ``Literal``s, compared by dtype, shape and bytes, so equal constants (NaN
ones included) are already one node.

The key also keeps apart what Python equality would merge but NumPy would not: ``0.0`` and
``-0.0``, ``1``, ``1.0`` and ``True`` (each is keyed by its type and bits).
"""

import struct

from ..graph import Graph, Literal
from .manager import register_pass
from .rewrite import rebuild, with_inputs


def attr_key(v):
    """A hashable key for an attribute value, equal exactly when the values are interchangeable."""
    if isinstance(v, tuple):
        return ("tuple",) + tuple(attr_key(x) for x in v)
    if isinstance(v, Literal):
        a = v.array
        return ("literal", a.dtype.str, a.shape, a.tobytes())
    if isinstance(v, float):
        return ("float", struct.pack("<d", v))
    if isinstance(v, (bool, int, str)) or v is None:
        return (type(v).__name__, v)
    try:
        hash(v)
        return ("object", v)
    except TypeError:
        return ("unhashable", id(v))


@register_pass(
    "cse", "common-subexpression elimination: merge nodes equal in op, inputs, attributes"
)
def cse(graph: Graph) -> Graph:
    table = {}
    alive = []  # keys hold ids of nodes in ``alive``: they must not be recycled

    def visit(n, inputs):
        n = with_inputs(n, inputs)
        if n.op == "param":
            return n
        key = (n.op, tuple(id(i) for i in n.inputs), attr_key(n.attrs))
        hit = table.get(key)
        if hit is None:
            table[key] = hit = n
            alive.append(n)
        return hit

    return rebuild(graph, visit)
