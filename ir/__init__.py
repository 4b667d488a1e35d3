"""mlc.ir: the graph IR (types, nodes, primitives, printer and parser, interpreter, passes).

``mlc.ir`` imports neither ``mlc`` nor ``mlc.backends``.
"""

from . import dtypes, primitives
from .graph import PRIMITIVES, Graph, Literal, Node, Primitive, SourceLoc, TensorType, toposort
from .interpreter import evaluate
from .printer import print_graph

__all__ = [
    "PRIMITIVES",
    "Graph",
    "Literal",
    "Node",
    "Primitive",
    "SourceLoc",
    "TensorType",
    "dtypes",
    "evaluate",
    "primitives",
    "print_graph",
    "toposort",
]
