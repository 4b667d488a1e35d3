"""The pass registry and the pass manager.

A pass is a ``Graph -> Graph`` function registered under a name:

    @register_pass("cse", "merge structurally equal nodes")
    def cse(graph): ...

``PassManager(["cse", "fold"])`` runs passes in order; it can verify the graph after each one
(``verify=True``, or the ``MLC_VERIFY`` environment variable), print it (``print_after_all``)
and dump it to files (``dump_dir``, or ``MLC_DUMP=DIR``): ``DIR/<graph>.00.traced.mlc`` first,
then ``DIR/<graph>.<NN>.<pass>.mlc`` after the NN-th pass run.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterable

from ..graph import Graph
from ..printer import print_graph
from .rewrite import same_graph


@dataclass(frozen=True)
class Pass:
    name: str
    description: str
    fn: Callable[[Graph], Graph]

    def __call__(self, graph: Graph) -> Graph:
        return self.fn(graph)


PASSES: dict[str, Pass] = {}


def register_pass(name: str, description: str):
    """Decorator registering a ``Graph -> Graph`` function as the pass ``name``."""

    def deco(fn):
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = Pass(name, description, fn)
        return fn

    return deco


def list_passes() -> list[tuple[str, str]]:
    """``[(name, description)]`` of every registered pass, in registration order."""
    return [(p.name, p.description) for p in PASSES.values()]


def get_pass(name: str) -> Pass:
    """The pass called ``name``; ValueError naming the known passes otherwise."""
    if name not in PASSES:
        known = ", ".join(PASSES)
        raise ValueError(f"unknown pass {name!r}; known passes: {known}")
    return PASSES[name]


def pipeline_names(names: str | Iterable[str]) -> list[str]:
    """``"cse, fold"`` or ``["cse", "fold"]`` as a list of names."""
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n.strip()]


def dump_path(dump_dir: str, graph: Graph, index: int, stage: str) -> str:
    """``dump_dir/<graph name>.<NN>.<stage>.mlc`` (the name made safe for a file name)."""
    safe = re.sub(r"[^\w.$-]", "_", graph.name) or "graph"
    return os.path.join(dump_dir, f"{safe}.{index:02d}.{stage}.mlc")


def dump_graph(graph: Graph, dump_dir: str, index: int, stage: str) -> str:
    """Write ``graph`` as text under ``dump_dir`` (created if needed); returns the path."""
    os.makedirs(dump_dir, exist_ok=True)
    path = dump_path(dump_dir, graph, index, stage)
    with open(path, "w") as f:
        f.write(print_graph(graph))
    return path


def _verify(graph: Graph, when: str) -> None:
    try:
        from ..verifier import verify
    except ImportError:  # the verifier is optional for the pass manager
        return
    try:
        verify(graph)
    except Exception as e:
        raise type(e)(f"invalid IR {when}: {e}") from e


class PassManager:
    """Runs named passes in order.

    ``verify``: run ``mlc.ir.verifier.verify`` on the input and after every pass (default: the
    ``MLC_VERIFY`` environment variable). ``print_after_all``: print the IR after every pass to
    ``stream`` (default stderr). ``dump_dir``: write the IR after every pass there (default: the
    ``MLC_DUMP`` environment variable). ``max_rounds > 1`` repeats the whole pipeline until a
    round leaves the graph unchanged. ``after_each(name, graph)`` is called after every pass.

    >>> from mlc.ir import Graph, primitives as P
    >>> x = P.param(index=0, shape=(3,), dtype="float32")
    >>> g = PassManager("simplify").run(Graph([x], [P.neg(P.neg(x))]))
    >>> [n.op for n in g]
    ['param']
    """

    def __init__(
        self,
        names,
        verify: bool | None = None,
        print_after_all: bool = False,
        dump_dir: str | None = None,
        max_rounds: int = 1,
        stream=None,
        input_stage: str = "traced",
        after_each: Callable[[str, Graph], None] | None = None,
    ):
        self.passes = [get_pass(n) for n in pipeline_names(names)]
        self.verify = bool(os.environ.get("MLC_VERIFY")) if verify is None else verify
        self.print_after_all = print_after_all
        self.dump_dir = dump_dir
        self.max_rounds = max_rounds
        self.stream = stream
        self.input_stage = input_stage
        self.after_each = after_each

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def run(self, graph: Graph) -> Graph:
        dump_dir = self.dump_dir or os.environ.get("MLC_DUMP") or None
        if self.verify:
            _verify(graph, f"in the input ({self.input_stage})")
        if dump_dir:
            dump_graph(graph, dump_dir, 0, self.input_stage)
        index = 0
        for _ in range(self.max_rounds):
            before = graph
            for p in self.passes:
                graph = p(graph)
                index += 1
                self._after(p.name, graph, index, dump_dir)
            if same_graph(before, graph):
                break
        return graph

    __call__ = run

    def _after(self, name: str, graph: Graph, index: int, dump_dir: str | None) -> None:
        if self.verify:
            _verify(graph, f"after pass {name!r}")
        if self.print_after_all:
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(f"# -- IR after {name} --\n{print_graph(graph)}")
        if dump_dir:
            dump_graph(graph, dump_dir, index, name)
        if self.after_each is not None:
            self.after_each(name, graph)


def run_passes(graph: Graph, names, **options) -> Graph:
    """Run the passes ``names`` (a list or ``"a,b,c"``) on ``graph``; options as ``PassManager``."""
    return PassManager(names, **options).run(graph)
