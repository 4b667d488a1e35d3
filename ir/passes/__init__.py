"""Graph-to-graph passes, the pass manager and the pattern-rewrite helper.

    >>> import numpy as np, mlc
    >>> from mlc.ir.passes import optimize
    >>> g = mlc.trace(lambda x: (x * 1.0) ** 2, np.ones(3, np.float32))
    >>> [n.op for n in optimize(g)]
    ['param', 'mul']

``optimize`` is the default pipeline ``mlc.jit`` runs; ``run_passes(graph, "cse,fold")`` runs
any list of registered passes; ``list_passes()`` names them (docs/passes.md).
"""

from ..graph import Graph
from . import autodiff, batching, cse, dce, fold, simplify  # noqa: F401  (registers the passes)
from .manager import (
    PASSES,
    PassManager,
    dump_graph,
    get_pass,
    list_passes,
    register_pass,
    run_passes,
)
from .rewrite import (
    Rewriter,
    const,
    const_value,
    is_const,
    is_splat,
    map_nodes,
    rebuild,
    same_graph,
    splat_value,
    with_inputs,
)

DEFAULT_PIPELINE = ("cse", "fold", "simplify", "dce")
MAX_ROUNDS = 4


def optimize(graph: Graph, **options) -> Graph:
    """The default pipeline (``DEFAULT_PIPELINE``), repeated until a round changes nothing (at
    most ``MAX_ROUNDS``). Options as ``PassManager`` (``verify``, ``dump_dir``, ...)."""
    options.setdefault("max_rounds", MAX_ROUNDS)
    return PassManager(DEFAULT_PIPELINE, **options).run(graph)


__all__ = [
    "DEFAULT_PIPELINE",
    "PASSES",
    "PassManager",
    "Rewriter",
    "const",
    "const_value",
    "dump_graph",
    "get_pass",
    "is_const",
    "is_splat",
    "list_passes",
    "map_nodes",
    "optimize",
    "rebuild",
    "register_pass",
    "run_passes",
    "same_graph",
    "splat_value",
    "with_inputs",
]
