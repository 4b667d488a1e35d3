"""Dead-code elimination.

With hash-consed nodes a graph holds exactly the nodes its outputs reach, so there is never an
unreachable node to delete: rebuilding from the outputs is the classic DCE, and it is what this
pass does first. What can still be dead is *work whose result is known without doing it*:

- a value with no elements (a size-0 dimension) is ``constant(value=[])`` of its type, whatever
  computed it, so its whole producer chain is dead and goes away.

Parameters always stay: they are the graph's signature, used or not. Later, when primitives
with several results or regions (``while``, ``scan``) exist, dropping their unused results is
this pass's job too.
"""

import numpy as np

from ..graph import PRIMITIVES, Graph, Literal, Node
from .manager import register_pass
from .rewrite import rebuild, with_inputs


def _empty(n: Node) -> Node:
    value = Literal(np.zeros(n.shape, n.dtype))
    return Node.make(PRIMITIVES["constant"], (), {"value": value}, n.loc)


@register_pass(
    "dce", "dead-code elimination: rebuild from the outputs; size-0 values become constants"
)
def dce(graph: Graph) -> Graph:
    def visit(n, inputs):
        if n.op not in ("param", "constant") and n.type.size == 0:
            return _empty(n)
        return with_inputs(n, inputs)

    return rebuild(graph, visit)
