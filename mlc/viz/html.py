"""One self-contained HTML page showing a function at every stage of the pipeline.

``html_page(lowered)`` (what ``mlc graph --format html`` writes) holds:

- the **stages**: traced; the graph after each pass of the default pipeline, round by round
  (``optimize``'s ``after_each`` hook; a pass that changed nothing says so), then ``expand-pow``
  for compiled backends; optimized; fused (kernels as clusters, unfused edges with the
  explainer's reason); kernels (one node per kernel, each with its kernel description and its
  generated code: LLVM IR and CUDA C, and whatever else ``CODE_VIEWS`` gains);
- per stage its DOT text, its IR text and one metadata record per node (``mlc.viz.dot``),
  as a JSON blob in a ``<script type="application/json">`` element;
- the vendored WebAssembly Graphviz (``assets/viz-global.js``, @viz-js/viz) and the page's own
  script, inlined: the file works from ``file://`` with no network and nothing installed.

In the page: a stage menu, a before/after toggle (a pass's input and output side by side, nodes
the pass added outlined green and those it removed red: hash-consing makes an untouched node
the same object in both), a search box (op, ``%name``, type or kernel), and a side panel showing
a clicked node's attributes, type, source line (with its text) and, for kernels, their code.

    >>> import numpy as np, mlc
    >>> from mlc.viz.html import html_page
    >>> page = html_page(mlc.jit(lambda x: np.exp(x).sum()).lower(np.ones(4, np.float32)))
    >>> page.startswith("<!doctype html>") and "http://" not in page.split("<script")[0]
    True
"""

from __future__ import annotations

import json
import os
from typing import Callable

from mlc.ir.graph import Graph
from mlc.ir.passes.fusion import Kernel

from .dot import Drawing, Keys, graph_dot, kernels_dot

ASSETS = os.path.join(os.path.dirname(__file__), "assets")


def _llvm_ir(kernel: Kernel, program) -> str:
    from mlc.backends.llvm import codegen

    return str(codegen.module_for({kernel.name: program}, name=kernel.name))


def _cuda_c(kernel: Kernel, program) -> str:
    from mlc.backends.cuda import codegen  # source generation needs no GPU

    return codegen.module_source([codegen.generate(program, kernel.name)])


# Generated code shown for each kernel: (label, fn(kernel, program) -> text). Another backend
# adds its own view here; an exception shows as its message.
CODE_VIEWS: list[tuple[str, Callable]] = [("LLVM IR", _llvm_ir), ("CUDA C", _cuda_c)]


def kernel_code(kernel: Kernel) -> dict:
    """``{label: generated code}`` for one kernel (empty for a library call)."""
    if kernel.kind == "library":
        return {}
    from mlc.backends.kernel import describe

    out = {}
    try:
        program = describe(kernel)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    for label, fn in CODE_VIEWS:
        try:
            out[label] = fn(kernel, program)
        except Exception as e:  # show what failed instead of losing the whole page
            out[label] = f"({label} unavailable: {type(e).__name__}: {e})"
    return out


def _summary(d: Drawing) -> str:
    return f"{len(d.nodes)} nodes"


def pipeline_stages(lowered, passes=None) -> list[dict]:
    """Every stage of ``lowered`` (``f.lower(...)``) as ``{id, title, group, dot, nodes,
    clusters, text, summary, before}``; ``before`` is the index of the stage a pass read.
    ``passes`` (a list or ``"a,b"``): the passes that made ``lowered.optimized``, run once in
    order, instead of the default pipeline (``mlc graph --passes``)."""
    from mlc.ir.passes import DEFAULT_PIPELINE, optimize, run_passes, same_graph

    keys = Keys()
    stages: list[dict] = []

    def add(sid, title, group, drawing: Drawing, text="", before=None, note=""):
        stages.append(
            {
                "id": sid,
                "title": title,
                "group": group,
                "dot": drawing.dot,
                "nodes": drawing.nodes,
                "clusters": drawing.clusters,
                "text": text,
                "summary": _summary(drawing),
                "before": before,
                "note": note,
            }
        )
        return len(stages) - 1

    traced = lowered.graph
    add("traced", "traced", "", graph_dot(traced, links=False, keys=keys), str(traced))
    runs: list[tuple[str, Graph]] = []
    record = lambda name, g: runs.append((name, g))  # noqa: E731
    if passes:
        run_passes(traced, passes, after_each=record)
    else:
        graph = optimize(traced, after_each=record)
        if lowered.backend != "numpy":  # as mlc.api._prepare
            run_passes(graph, ["expand-pow"], after_each=record)
    per_round = len(DEFAULT_PIPELINE)
    prev, prev_graph = 0, traced
    rounds = 0 if passes else sum(1 for name, _ in runs if name == DEFAULT_PIPELINE[0])
    for i, (name, g) in enumerate(runs):
        label = name
        if rounds > 1 and name in DEFAULT_PIPELINE:
            label = f"{name} (round {i // per_round + 1})"
        changed = not same_graph(prev_graph, g)
        note = "" if changed else "This pass changed nothing."
        title = f"after {label}" + ("" if changed else " (no change)")
        drawing = graph_dot(g, links=False, keys=keys)
        prev = add(f"pass{i}:{name}", title, "passes", drawing, str(g), prev, note)
        prev_graph = g
    optimized = lowered.optimized
    drawing = graph_dot(optimized, links=False, keys=keys)
    note = "Before/after compares with the traced graph."
    add("optimized", "optimized", "", drawing, str(optimized), before=0, note=note)
    plan = lowered.plan
    fused = graph_dot(optimized, plan, links=False, keys=keys)
    add("fused", "fused", "", fused, str(plan))
    stages[-1]["summary"] = (
        f"{len(fused.nodes)} nodes in {len(plan.fused_kernels)} kernels and "
        f"{len(plan.library_calls)} library calls, {len(plan.unfused)} unfused edges"
    )
    kernels = kernels_dot(plan, links=False, keys=keys, code=kernel_code)
    add("kernels", "kernels", "", kernels, note="Click a kernel for its description and code.")
    stages[-1]["summary"] = f"{len(plan.fused_kernels)} kernels, {len(plan.library_calls)} calls"
    return stages


def _json_for_script(data) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` literally."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    with open(os.path.join(ASSETS, name), encoding="utf-8") as f:
        return f.read()


def html_page(lowered, initial: str = "optimized", title: str | None = None, passes=None) -> str:
    """The page for ``lowered`` (``f.lower(...)``), opening at the stage ``initial``;
    ``passes`` as ``pipeline_stages``."""
    stages = pipeline_stages(lowered, passes)
    ids = [s["id"] for s in stages]
    if initial not in ids:
        known = "traced, optimized, fused, kernels"
        raise ValueError(f"unknown stage {initial!r}: expected one of {known}")
    title = title or f"@{lowered.graph.name}"
    data = {"title": title, "initial": ids.index(initial), "stages": stages}
    viz_js = _asset("viz-global.js")
    if "</script" in viz_js.lower():  # would end the inline script early
        raise ValueError("viz-global.js contains '</script': cannot inline it")
    html_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    page = _asset("page.html").replace("__MLC_TITLE__", html_title)
    # Split the template before inserting anything: user text may contain the markers.
    head, _, rest = page.partition("__MLC_DATA__")
    middle, _, tail = rest.partition("__MLC_VIZ_JS__")
    return head + _json_for_script(data) + middle + viz_js + tail
