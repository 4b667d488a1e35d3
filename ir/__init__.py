"""mlc.ir: the graph IR (types, nodes, primitives, printer and parser, interpreter, passes).

``mlc.ir`` imports neither ``mlc`` nor ``mlc.backends``.
"""

from . import dtypes, primitives
from .graph import PRIMITIVES, Graph, Literal, Node, Primitive, SourceLoc, TensorType, toposort
from .interpreter import evaluate
from .nx import from_networkx, to_networkx
from .parser import ParseError, parse
from .printer import print_graph
from .verifier import VerifyError, verify

__all__ = [
    "PRIMITIVES",
    "Graph",
    "ParseError",
    "VerifyError",
    "Literal",
    "Node",
    "Primitive",
    "SourceLoc",
    "TensorType",
    "dtypes",
    "evaluate",
    "from_networkx",
    "parse",
    "primitives",
    "print_graph",
    "to_networkx",
    "toposort",
    "verify",
]
