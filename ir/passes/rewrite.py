"""Graph mapping and pattern rewriting: the two tools passes are written with.

``rebuild(graph, fn)`` maps every node to a new one, inputs first, memoized: ``fn(node, inputs)``
gets the node and its already-mapped inputs and returns the replacement. It is the torch.fx
``Transformer`` idea; CSE, folding, autodiff and batching are all such maps.

``Rewriter`` holds small rules keyed by primitive name, each ``rule(node) -> Node | None``
(``None``: no match). It applies them bottom-up until nothing fires (tinygrad's PatternMatcher,
MLIR's RewritePattern): a rewrite is a few lines.

    >>> import numpy as np
    >>> from mlc.ir import Graph, primitives as P
    >>> rw = Rewriter("demo")
    >>> @rw.rule("neg")
    ... def double_negation(n):
    ...     (x,) = n.inputs
    ...     return x.inputs[0] if x.op == "neg" else None
    >>> x = P.param(index=0, shape=(3,), dtype="float32")
    >>> [n.op for n in rw(Graph([x], [P.neg(P.neg(x))]))]
    ['param']

Nodes a rule builds with the primitive functions carry the source location of the node being
rewritten (``located``), so errors and pictures still point at the user's line.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from .. import graph as ir_graph
from ..graph import PRIMITIVES, Graph, Literal, Node, toposort

MOVEMENT = {"broadcast_in_dim", "reshape", "transpose", "slice", "rev"}  # views in NumPy
MAX_SWEEPS = 8  # bottom-up sweeps per Rewriter call before giving up on a fixpoint
MAX_STEPS = 32  # rule applications at one node within one sweep


@contextmanager
def located(loc):
    """Nodes built inside this block get source location ``loc`` (unless given one)."""
    with ir_graph.location_override(lambda: loc):
        yield


def with_inputs(n: Node, inputs) -> Node:
    """``n`` with ``inputs`` in place of its own (``n`` itself when they are the same objects)."""
    inputs = tuple(inputs)
    if len(inputs) == len(n.inputs) and all(a is b for a, b in zip(inputs, n.inputs)):
        return n
    return n.replace(inputs=inputs)


def keep(n: Node, inputs) -> Node:
    """The identity map for ``rebuild``: the node rebuilt on its mapped inputs."""
    return with_inputs(n, inputs)


def map_nodes(outputs, fn: Callable[[Node, list], Any], env: dict | None = None) -> list:
    """Map every node reachable from ``outputs``, inputs first; returns the mapped outputs.

    ``fn(node, mapped_inputs)`` may return anything (a node, a pair of nodes for a JVP, ...).
    ``env`` (``id(node) -> value``) pre-binds nodes, e.g. the parameters; it is filled in.
    Nodes holding subgraphs in attributes are passed to ``fn`` like any other: descending
    into a region is ``fn``'s business.
    """
    env = {} if env is None else env
    order = toposort(outputs)  # keeps the old nodes alive, so ids stay unique
    current = [None]  # the location new nodes get: that of the node being mapped
    with ir_graph.location_override(lambda: current[0]):
        for n in order:
            if id(n) in env:
                continue
            current[0] = n.loc
            env[id(n)] = fn(n, [env[id(i)] for i in n.inputs])
    return [env[id(o)] for o in outputs]


def rebuild(graph: Graph, fn: Callable[[Node, list], Node] = keep) -> Graph:
    """A new graph with every node mapped by ``fn(node, mapped_inputs) -> Node``.

    Parameters are mapped too (with no inputs); they must stay ``param`` nodes. The name is kept.

    >>> from mlc.ir import primitives as P
    >>> x = P.param(index=0, shape=(2,), dtype="float32")
    >>> g = Graph([x], [P.exp(P.sin(x))])
    >>> swap = lambda n, ins: P.cos(*ins) if n.op == "sin" else with_inputs(n, ins)
    >>> [n.op for n in rebuild(g, swap)]
    ['param', 'cos', 'exp']
    """
    env: dict[int, Any] = {}
    inputs = []
    for p in graph.inputs:
        with located(p.loc):
            q = fn(p, [])
        env[id(p)] = q
        inputs.append(q)
    outputs = map_nodes(graph.outputs, fn, env)
    return Graph(inputs, outputs, graph.name)


def same_graph(a: Graph, b: Graph) -> bool:
    """True when ``a`` and ``b`` have the very same input and output nodes (hash-consing makes
    that structural equality)."""
    same = lambda xs, ys: len(xs) == len(ys) and all(x is y for x, y in zip(xs, ys))  # noqa: E731
    return same(a.inputs, b.inputs) and same(a.outputs, b.outputs)


class Rewriter:
    """Rules keyed by primitive name, applied bottom-up until none fires.

    A rule is ``fn(node) -> Node | None``; it sees a node whose inputs are already rewritten.
    The replacement must have the node's type (checked). A rule returning new nodes may build
    them with the primitive functions (``P.mul(x, x)``); those are visited in the next sweep.
    """

    def __init__(self, name: str):
        self.name = name
        self.rules: dict[str, list[Callable[[Node], Node | None]]] = {}

    def rule(self, *ops: str):
        """Decorator: register ``fn`` as a rule for each primitive name in ``ops``."""
        for op in ops:
            if op not in PRIMITIVES:
                raise ValueError(f"{self.name}: no primitive named {op!r}")

        def deco(fn):
            for op in ops:
                self.rules.setdefault(op, []).append(fn)
            return fn

        return deco

    def rewrite_node(self, n: Node) -> Node:
        """Apply the rules at ``n`` until none fires (at most ``MAX_STEPS`` times)."""
        for _ in range(MAX_STEPS):
            new = self._first_match(n)
            if new is None:
                return n
            n = new
        return n

    def _first_match(self, n: Node) -> Node | None:
        for fn in self.rules.get(n.op, ()):
            with located(n.loc):
                new = fn(n)
            if new is None or new is n:
                continue
            if new.type != n.type:
                raise AssertionError(
                    f"rewrite rule {self.name}.{fn.__name__} changed the type of {n.op} "
                    f"from {n.type} to {new.type}"
                )
            return new
        return None

    def __call__(self, graph: Graph, max_sweeps: int = MAX_SWEEPS, frozen=None) -> Graph:
        """Rewrite ``graph`` to a fixpoint (at most ``max_sweeps`` bottom-up sweeps).

        ``frozen(graph) -> set of node ids``: nodes no rule may replace in this sweep (their
        inputs are still rewritten), e.g. ``pow_exponent_views``.
        """
        memo: dict[Node, Node] = {}  # node -> rewritten node; shared by the sweeps
        skip: set[int] = set()

        def visit(old, inputs):
            if old.op == "param":
                return old
            n = with_inputs(old, inputs)
            if id(old) in skip:
                return n
            hit = memo.get(n)
            if hit is None:
                hit = memo[n] = self.rewrite_node(n)
            return hit

        for _ in range(max_sweeps):
            skip = frozen(graph) if frozen else set()
            new = rebuild(graph, visit)
            if same_graph(new, graph):
                return new
            graph = new
        return graph


def pow_exponent_views(graph: Graph) -> set[int]:
    """ids of the nodes whose array reaches a ``pow`` exponent as a view: the exponent and what
    it is a broadcast/reshape/transpose/slice/rev of, down to the first node that makes a fresh
    array. NumPy's power loop takes a fast path (square, sqrt, reciprocal) when the exponent has
    stride 0 and calls ``pow`` otherwise; the two differ in the last bit, so a pass must not
    turn one kind of exponent into the other (docs/passes.md, "pow")."""
    ids: set[int] = set()
    stack = [n.inputs[1] for n in graph.nodes() if n.op == "pow"]
    while stack:
        n = stack.pop()
        if id(n) in ids:
            continue
        ids.add(id(n))
        if n.op in MOVEMENT:
            stack.extend(n.inputs)
    return ids


# -- matching helpers ---------------------------------------------------------------------------
def splat_value(n: Node):
    """The single value of a *splat*: a one-element constant, or ``broadcast_in_dim`` chains of
    one. Returns a NumPy scalar of the node's dtype, or ``None`` for anything else.

    >>> from mlc.ir import primitives as P
    >>> splat_value(P.broadcast_in_dim(P.const(2.0, "float32"), shape=(3,), dims=()))
    np.float32(2.0)
    """
    while n.op == "broadcast_in_dim":
        n = n.inputs[0]
    if n.op == "constant" and n.type.size == 1:
        return n.attr("value").array.reshape(())[()]
    return None


def is_splat(n: Node) -> bool:
    return splat_value(n) is not None


def same_number(a, b) -> bool:
    """``a == b`` for numbers, except that NaN equals NaN and, for floats, -0.0 differs from 0.0.

    >>> same_number(0.0, -0.0), same_number(float("nan"), np.float32("nan")), same_number(True, 1)
    (False, True, True)
    """
    fa = isinstance(a, (float, np.floating))
    fb = isinstance(b, (float, np.floating))
    if fa or fb:
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def is_const(n: Node, value=None) -> bool:
    """Is ``n`` a constant? With ``value``: a splat of exactly that value (see ``same_number``:
    ``is_const(n, 0)`` on floats matches +0.0 only, ``is_const(n, -0.0)`` matches -0.0 only).

    >>> from mlc.ir import primitives as P
    >>> z = P.broadcast_in_dim(P.const(-0.0, "float32"), shape=(2,), dims=())
    >>> is_const(z), is_const(z, 0.0), is_const(z, -0.0)
    (True, False, True)
    """
    if value is None:
        return n.op == "constant" or is_splat(n)
    v = splat_value(n)
    return v is not None and same_number(v, value)


def const_value(n: Node):
    """The array of a constant or splat node (a read-only broadcast view for a splat), or None."""
    if n.op == "constant":
        return n.attr("value").array
    v = splat_value(n)
    if v is None:
        return None
    return np.broadcast_to(np.asarray(v), n.shape)


def const(value, like: Node) -> Node:
    """A constant of ``like``'s dtype filled with ``value``, as a splat of ``like``'s shape
    (``broadcast_in_dim`` of a 0-d constant; the 0-d constant itself for a 0-d ``like``)."""
    c = Node.make(
        PRIMITIVES["constant"], (), {"value": Literal(np.asarray(value, dtype=like.dtype))}
    )
    if like.shape == ():
        return c
    return PRIMITIVES["broadcast_in_dim"](c, shape=like.shape, dims=())
