"""Constant folding: a node whose inputs are all known values is evaluated and replaced.

Evaluation uses the reference interpreter (each primitive's NumPy ``impl``), so a folded
constant is bit-for-bit what the unfolded graph would compute. Limits keep the IR small:

- a result whose elements are all the same (bitwise) becomes a *splat*,
  ``broadcast_in_dim(constant(v), dims=())``: never a materialized array;
- otherwise the result is folded only when it has at most ``FOLD_LIMIT`` elements, or no more
  than the largest constant array it was computed from (a reduction of a big constant);
- ``broadcast_in_dim`` is never materialized (a broadcast is free in every backend);
- ``iota`` folds into a constant only when it has at most ``IOTA_FOLD_LIMIT`` elements, but it
  counts as a known value for its consumers; ``param`` never folds;
- evaluation is skipped when the inputs hold more than ``EVAL_LIMIT`` elements (an elementwise
  op on splats is evaluated on the scalars instead, so it is never too big);
- a constant array whose elements are all equal becomes a splat too;
- a node feeding the exponent of ``pow`` (directly or through data movement) is left alone:
  NumPy's power loop takes a fast path (square, sqrt, reciprocal) when the exponent is a
  stride-0 scalar and calls ``pow`` otherwise, and the two differ in the last bit; folding could
  change which one the graph takes (``rewrite.pow_exponent_views``).
"""

import numpy as np

from ..graph import PRIMITIVES, Graph, Literal, Node
from ..interpreter import evaluate_node
from ..primitives import elementwise
from .manager import register_pass
from .rewrite import MOVEMENT, is_splat, pow_exponent_views, rebuild, splat_value, with_inputs

FOLD_LIMIT = 4096
IOTA_FOLD_LIMIT = 16
EVAL_LIMIT = 1 << 20

ELEMENTWISE = {v.name for v in vars(elementwise).values() if isinstance(v, type(PRIMITIVES["add"]))}
SOURCES = {"constant", "iota"}  # known values with no inputs


def _constant(a, loc) -> Node:
    return Node.make(PRIMITIVES["constant"], (), {"value": Literal(a)}, loc)


def _splat(scalar, n: Node) -> Node:
    c = _constant(np.asarray(scalar, dtype=n.dtype), n.loc)
    if n.shape == ():
        return c
    return Node.make(PRIMITIVES["broadcast_in_dim"], (c,), {"shape": n.shape, "dims": ()}, n.loc)


def _uniform(a: np.ndarray) -> bool:
    """All elements bitwise equal (so NaN payloads and the sign of zero agree too)."""
    bits = np.ascontiguousarray(a).reshape(a.size, 1).view(np.uint8)  # one row per element
    return bool(np.all(bits == bits[0]))


class _Folder:
    def __init__(self, graph: Graph):
        self.exponents = pow_exponent_views(graph)
        self.values: dict[int, tuple[Node, np.ndarray]] = {}  # id(known node) -> (node, value)
        self.known: dict[int, Node] = {}  # id -> node whose value is computable from constants

    def is_known(self, n: Node) -> bool:
        return id(n) in self.known

    def value(self, n: Node) -> np.ndarray:
        hit = self.values.get(id(n))
        if hit is None:
            if n.op == "constant":
                v = n.attr("value").array
            else:
                with np.errstate(all="ignore"):
                    v = evaluate_node(n, [self.value(i) for i in n.inputs])
            hit = self.values[id(n)] = (n, v)
        return hit[1]

    def visit(self, old: Node, inputs) -> Node:
        n = with_inputs(old, inputs)
        if n.op == "param":
            return n
        if not (n.op in SOURCES or (n.inputs and all(self.is_known(i) for i in n.inputs))):
            return n
        self.known[id(n)] = n
        if id(old) in self.exponents:
            return n
        new = self.fold(n)
        if new is not n:
            self.known[id(new)] = new
        return new

    def fold(self, n: Node) -> Node:
        size = n.type.size
        if n.op == "constant":
            return self.fold_constant(n)
        if n.op == "iota" and size > IOTA_FOLD_LIMIT:
            return n
        if all(is_splat(i) for i in n.inputs) and (n.op in ELEMENTWISE or n.op in MOVEMENT):
            return self.fold_splats(n)
        if n.op == "broadcast_in_dim":
            return n
        if size > EVAL_LIMIT or sum(i.type.size for i in n.inputs) > EVAL_LIMIT:
            return n
        try:
            a = self.value(n)
        except Exception:  # e.g. an integer to a negative power: leave it to run time
            return n
        if size > 1 and _uniform(a):
            return _splat(a.reshape(-1)[0], n)
        biggest = max((i.type.size for i in n.inputs if i.op == "constant"), default=0)
        if size <= FOLD_LIMIT or size <= biggest:
            return _constant(a, n.loc)
        return n

    def fold_constant(self, n: Node) -> Node:
        """A constant array whose elements are all equal becomes a splat."""
        a = n.attr("value").array
        if a.size > 1 and _uniform(a):
            return _splat(a.reshape(-1)[0], n)
        return n

    def fold_splats(self, n: Node) -> Node:
        """Elementwise op or data movement on splats: a splat, computed on the scalars."""
        if n.op == "broadcast_in_dim" and n.inputs[0].op == "constant" and n.inputs[0].ndim == 0:
            return n  # already the canonical splat
        if n.op in MOVEMENT:
            return _splat(splat_value(n.inputs[0]), n)
        if n.type.size == 1 and n.ndim > 0:
            # NumPy's loops may take another path for a one-element array than for a 0-d one
            # (see pow above): evaluate the node exactly as the interpreter would.
            return _constant(self.value(n), n.loc)
        scalars = [np.asarray(splat_value(i)) for i in n.inputs]
        with np.errstate(all="ignore"):
            v = n.prim.impl(*scalars, **dict(n.attrs))
        return _splat(np.asarray(v, dtype=n.dtype).reshape(()), n)


@register_pass("fold", "constant folding: evaluate nodes whose inputs are all constants")
def fold(graph: Graph) -> Graph:
    return rebuild(graph, _Folder(graph).visit)
