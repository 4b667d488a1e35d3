"""Nodes, graphs and primitives: the core of the IR.

A ``Node`` is one primitive applied to input nodes, with static attributes and a result type.
Nodes are immutable and hash-consed: building a node structurally equal to a live one returns
that same object, so common subexpressions are shared as they are built and rewrites memoize.
The user's source location rides on the node outside its structural key.

A ``Graph`` names its parameters (``param`` nodes) and its outputs; everything else is reachable
from the outputs. Printing orders nodes topologically (see ``printer.py``).
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import dtypes


@dataclass(frozen=True)
class TensorType:
    """Shape and element type of a value."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        return f"{dtypes.short(self.dtype)}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class SourceLoc:
    """Where in the user's code a node was made."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Literal:
    """A constant array as a hashable attribute value (compared by dtype, shape and bytes)."""

    __slots__ = ("array", "_key")

    def __init__(self, array):
        a = np.array(array, copy=True, order="C")
        a.setflags(write=False)
        self.array = a
        self._key = (a.dtype.str, a.shape, a.tobytes())

    def __eq__(self, other):
        return isinstance(other, Literal) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"Literal({self.array!r})"


class Primitive:
    """A named operation with its rules. One block per primitive registers one of these.

    ``infer(*input_types, **attrs) -> TensorType`` checks inputs and gives the result type.
    ``impl(*arrays, **attrs) -> ndarray`` is the NumPy evaluation (the reference semantics).
    Transform rules (``jvp``, ``vjp``, ``batch``) are attached by the blocks that define them;
    ``differentiable=False`` marks primitives whose derivative is zero by definition.
    """

    def __init__(self, name, infer, impl, doc="", differentiable=True):
        self.name = name
        self.infer = infer
        self.impl = impl
        self.doc = doc
        self.differentiable = differentiable
        self.rules: dict[str, Callable] = {}

    def __call__(self, *inputs: Node, **attrs) -> Node:
        return Node.make(self, inputs, attrs)

    def __repr__(self):
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    if prim.name in PRIMITIVES:
        raise ValueError(f"primitive {prim.name!r} registered twice")
    PRIMITIVES[prim.name] = prim
    return prim


def _freeze(v):
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, np.ndarray):
        return Literal(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


# Hash-consing table: structural key -> live node.
_NODES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

# Set by the tracer: a callable returning the user's SourceLoc for a node being made (or None).
location_hook: Callable[[], SourceLoc | None] = lambda: None  # noqa: E731
_OVERRIDE = threading.local()  # per thread: a hook that replaces location_hook for a while


@contextmanager
def location_override(fn: Callable[[], SourceLoc | None]):
    """Nodes this thread builds inside the block get ``fn()`` as their location (passes give
    rewritten nodes the location of the node they replace; the parser gives none). Per thread:
    two threads tracing or rewriting at once never see each other's hook."""
    saved = getattr(_OVERRIDE, "fn", None)
    _OVERRIDE.fn = fn
    try:
        yield
    finally:
        _OVERRIDE.fn = saved


def _location():
    fn = getattr(_OVERRIDE, "fn", None)
    return (fn or location_hook)()


class Node:
    """One primitive applied to inputs. Build with ``prim(*inputs, **attrs)``, never directly."""

    __slots__ = ("prim", "inputs", "attrs", "type", "loc", "__weakref__")

    prim: Primitive
    inputs: tuple[Node, ...]
    attrs: tuple[tuple[str, Any], ...]
    type: TensorType
    loc: SourceLoc | None

    @staticmethod
    def make(prim: Primitive, inputs, attrs: dict, loc: SourceLoc | None = None) -> Node:
        """The node ``prim(*inputs, **attrs)`` made at ``loc`` (None: wherever the location hook
        says). Hash-consed on the structure *and* the location: the same expression made on the
        same line is one node, so a node always names the line that made it (the same
        expression on two lines is two nodes until ``cse`` merges them)."""
        inputs = tuple(inputs)
        for x in inputs:
            if not isinstance(x, Node):
                raise TypeError(f"{prim.name}: inputs must be nodes, got {type(x).__name__}")
        if loc is None and prim.name != "param":  # params are shared by every graph: no line
            loc = _location()
        frozen = tuple(sorted((k, _freeze(v)) for k, v in attrs.items()))
        key = (prim.name, inputs, frozen, loc)
        try:
            hit = _NODES.get(key)
        except TypeError:  # an unhashable attribute: never shared
            hit, key = None, None
        if hit is not None:
            return hit
        typ = prim.infer(*(x.type for x in inputs), **dict(frozen))
        n = object.__new__(Node)
        object.__setattr__(n, "prim", prim)
        object.__setattr__(n, "inputs", inputs)
        object.__setattr__(n, "attrs", frozen)
        object.__setattr__(n, "type", typ)
        object.__setattr__(n, "loc", loc)
        if key is not None:
            _NODES[key] = n
        return n

    def __setattr__(self, k, v):
        raise AttributeError("nodes are immutable")

    @property
    def op(self) -> str:
        return self.prim.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    def attr(self, name, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default

    @property
    def kwargs(self) -> dict:
        return dict(self.attrs)

    def replace(self, inputs=None, **attrs) -> Node:
        """The node with other inputs and/or attributes (same primitive, same source location)."""
        new = dict(self.attrs)
        new.update(attrs)
        return Node.make(self.prim, self.inputs if inputs is None else inputs, new, self.loc)

    def __repr__(self):
        return f"<{self.prim.name} {self.type}>"


def toposort(outputs) -> list[Node]:
    """All nodes reachable from ``outputs``, each after its inputs (iterative DFS, stable order)."""
    order, seen = [], set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, 0)]
        while stack:
            n, i = stack.pop()
            if i == 0 and id(n) in seen:
                continue
            if i < len(n.inputs):
                stack.append((n, i + 1))
                child = n.inputs[i]
                if id(child) not in seen:
                    stack.append((child, 0))
            else:
                seen.add(id(n))
                order.append(n)
    return order


class Graph:
    """A function in the IR: parameters in, outputs out.

    ``inputs`` are ``param`` nodes (in order), ``outputs`` any nodes. ``name`` is for printing.
    """

    def __init__(self, inputs, outputs, name="main"):
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.name = name

    def nodes(self) -> list[Node]:
        """Parameters first (in order), then every node reachable from the outputs, topologically."""
        order = list(self.inputs)
        seen = {id(n) for n in order}
        for n in toposort(self.outputs):
            if id(n) not in seen:
                order.append(n)
        return order

    def __iter__(self):
        return iter(self.nodes())

    def __len__(self):
        return len(self.nodes())

    def count(self, op: str) -> int:
        return sum(1 for n in self.nodes() if n.op == op)

    def with_outputs(self, outputs) -> Graph:
        return Graph(self.inputs, outputs, self.name)

    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)

    def __repr__(self):
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes())} nodes>"

    def to_networkx(self):
        from .nx import to_networkx

        return to_networkx(self)
