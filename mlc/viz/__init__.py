"""Drawing graphs: Graphviz DOT at each stage, the system ``dot`` for SVG/PNG, and one
self-contained HTML page with every stage (``mlc graph --format dot|svg|png|html``).

    >>> import numpy as np, mlc
    >>> lowered = mlc.jit(lambda x: np.tanh(x) * 2).lower(np.ones(3, np.float32))
    >>> drawing = stage_drawing(lowered, "fused")
    >>> drawing.dot.count("subgraph"), sorted(m["op"] for m in drawing.nodes.values())
    (1, ['broadcast_in_dim', 'constant', 'mul', 'param', 'tanh'])

See ``docs/cli.md`` for the pictures and the page.
"""

from .dot import (
    STAGES,
    Drawing,
    GraphvizError,
    Keys,
    graph_dot,
    kernels_dot,
    quote,
    render,
    stage_drawing,
)
from .html import CODE_VIEWS, html_page, kernel_code, pipeline_stages

__all__ = [
    "CODE_VIEWS",
    "STAGES",
    "Drawing",
    "GraphvizError",
    "Keys",
    "graph_dot",
    "html_page",
    "kernel_code",
    "kernels_dot",
    "pipeline_stages",
    "quote",
    "render",
    "stage_drawing",
]
