"""Check a graph's invariants: the rules every pass may assume and must keep.

    >>> import numpy as np
    >>> from mlc.ir import Graph, primitives as P, verify
    >>> x = P.param(index=0, shape=(3,), dtype="float32")
    >>> verify(Graph([x], [P.exp(x)]))

A graph is well formed when

- its inputs are ``param`` nodes, the i-th with ``index=i``;
- every node's primitive is the one registered under its name in ``PRIMITIVES``;
- every node's type equals what the primitive's type rule infers from its inputs' types;
- every ``param`` reachable from the outputs is one of the graph's inputs (no foreign params);
- its outputs are nodes; attributes are printable literals; its name prints as one word.

``check_round_trip`` adds the textual round trip ``print(parse(print(g))) == print(g)``;
``mlc.jit`` runs both on every graph it traces when ``MLC_VERIFY`` is set (the tests set it).
"""

from __future__ import annotations

import re

from .graph import PRIMITIVES, Graph, Literal, Node


class VerifyError(ValueError):
    """A graph breaks an invariant; the message names the node (``%N = op``) and its location."""


_FUNC_NAME = re.compile(r"[\w.$-]+")


def _printable(v) -> bool:
    if isinstance(v, tuple):
        return all(_printable(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str, Literal))


def verify(graph: Graph) -> None:
    """Raise ``VerifyError`` naming the first node that breaks an invariant (see module doc)."""
    if not isinstance(graph.name, str) or not _FUNC_NAME.fullmatch(graph.name):
        raise VerifyError(f"graph name {graph.name!r} is not one word of [A-Za-z0-9_.$-]")
    for i, p in enumerate(graph.inputs):
        if not isinstance(p, Node) or p.op != "param":
            raise VerifyError(f"input {i} of @{graph.name} is not a param node: {p!r}")
        if p.attr("index") != i:
            raise VerifyError(f"input {i} of @{graph.name} is param index={p.attr('index')}")
    for i, o in enumerate(graph.outputs):
        if not isinstance(o, Node):
            raise VerifyError(f"output {i} of @{graph.name} is not a node: {type(o).__name__}")
    inputs = {id(p) for p in graph.inputs}
    names: dict[int, str] = {}
    for n in graph.nodes():
        names[id(n)] = name = f"%{len(names)}"
        where = f"{name} = {n.op}" + (f" (at {n.loc})" if n.loc else "")
        if PRIMITIVES.get(n.op) is not n.prim:
            raise VerifyError(f"{where}: primitive {n.op!r} is not the registered one")
        if n.op == "param" and id(n) not in inputs:
            raise VerifyError(f"{where}: param is not an input of @{graph.name} (foreign param)")
        for k, v in n.attrs:
            if not _printable(v):
                raise VerifyError(f"{where}: attribute {k}={v!r} is not a literal")
        try:
            expect = n.prim.infer(*(x.type for x in n.inputs), **dict(n.attrs))
        except (TypeError, ValueError) as e:
            raise VerifyError(f"{where}: type rule fails: {e}") from None
        if expect != n.type:
            raise VerifyError(f"{where}: type is {n.type}, the type rule gives {expect}")


def check_round_trip(graph: Graph) -> None:
    """``verify(graph)``, then assert printing, parsing and printing again gives the same text."""
    from .parser import parse
    from .printer import print_graph

    verify(graph)
    text = print_graph(graph)
    again = print_graph(parse(text))
    no_locs = lambda t: re.sub(r' loc\("[^"]*":\d+\)', "", t)  # noqa: E731
    if again != text and no_locs(again) == no_locs(text):
        # Hash-consing: a parsed node structurally equal to a live node from another graph *is*
        # that node, with the line that made it first (docs/architecture.md). Only locs differ.
        return
    if again != text:
        raise AssertionError(
            f"IR round trip changed the text.\nprinted:\n{text}\nreparsed:\n{again}"
        )
