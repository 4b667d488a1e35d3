"""Graphviz DOT for a graph at each stage of the pipeline, and the system ``dot`` to render it.

    >>> import numpy as np, mlc
    >>> from mlc.viz.dot import graph_dot
    >>> d = graph_dot(mlc.trace(lambda x: np.exp(x) + 1, np.ones(3, np.float32)))
    >>> d.dot.splitlines()[0], sorted(m["op"] for m in d.nodes.values())
    ('digraph "lambda" {', ['add', 'broadcast_in_dim', 'constant', 'exp', 'param'])

A ``Drawing`` is the DOT text plus one JSON-ready metadata record per drawn node (what the HTML
page shows when a node is clicked). Drawn as:

- a **node** per IR node: ``%N op`` (its SSA name in the printed IR), its type, and short
  attributes. Parameters are ``invhouse`` shapes, constants grey ovals, graph outputs have a
  double border; reductions, data movement and library calls are tinted. Every node has a
  ``tooltip`` (the full node, its source line) and, where it has one, a ``URL`` to its source
  line (``file:///abs/path.py#L12``), so a click in an SVG viewer opens the user's code;
- an **edge** per producer -> consumer, labelled with the tensor's type (bytes in the tooltip);
- at the ``fused`` stage, a ``subgraph cluster_<kernel>`` per kernel (library calls dashed and
  orange), and every unfused edge dashed red, labelled with the fusion explainer's reason;
- at the ``kernels`` stage, one node per kernel or library call, with the buffers between them
  as edges (the program the executable runs).

DOT is written as text: the format is small, and writing it directly keeps quoting in one place
(``quote``) and costs no dependency; the ``graphviz`` package would only wrap the same text.
"""

from __future__ import annotations

import linecache
import os
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass, field

from mlc.ir.graph import Graph, Literal, Node
from mlc.ir.passes.fusion import LIBRARY, MOVEMENT, REDUCTIONS, FusionPlan, Kernel
from mlc.ir.printer import format_attr

STAGES = ("traced", "optimized", "fused", "kernels")

FONT = "Helvetica,Arial,sans-serif"
FILL = {"param": "#dbeafe", "constant": "#f3f4f6", "reduction": "#fef3c7", "movement": "#e0e7ff"}
FILL.update({"library": "#fce7f3", "node": "#ffffff"})
UNFUSED = "#dc2626"


def quote(text, tooltip: bool = False) -> str:
    """``text`` as a DOT double-quoted string showing exactly ``text``: quotes escaped,
    newlines as ``\\n``, backslashes doubled so Graphviz's escapes (``\\N``, ``\\G``, ...)
    never fire on user text. Graphviz unescapes a tooltip twice (2.43 and 16.1 alike), so
    ``tooltip=True`` doubles backslashes twice.

    >>> print(quote('a "b" \\\\ c\\nd'))
    "a \\"b\\" \\\\ c\\nd"
    """
    s = str(text).replace("\\", "\\\\\\\\" if tooltip else "\\\\").replace('"', '\\"')
    return '"' + s.replace("\r", "").replace("\n", "\\n") + '"'


def _attrs(**kv) -> str:
    return " ".join(f"{k}={quote(v, k == 'tooltip')}" for k, v in kv.items() if v is not None)


def _short(text: str, width: int = 36) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def source_line(loc) -> str | None:
    """The text of the user's source line ``loc`` points at (None when unreadable)."""
    if loc is None:
        return None
    line = linecache.getline(os.path.abspath(loc.file), loc.line).strip()
    return line or None


def source_url(loc) -> str | None:
    """``file:///abs/path.py#L12`` for a ``SourceLoc`` (None without one, or when its file is
    not a file here, e.g. ``<stdin>``)."""
    if loc is None or not os.path.isfile(loc.file):
        return None
    path = urllib.parse.quote(os.path.abspath(loc.file).replace(os.sep, "/"))
    return f"file://{'' if path.startswith('/') else '/'}{path}#L{loc.line}"


def _nbytes(n: Node) -> int:
    return n.type.size * n.dtype.itemsize


def _role(n: Node) -> str:
    if n.op in ("param", "constant"):
        return n.op
    if n.op in REDUCTIONS:
        return "reduction"
    if n.op in LIBRARY:
        return "library"
    if n.op in MOVEMENT:
        return "movement"
    return "node"


@dataclass
class Drawing:
    """DOT text and, per drawn node id, the metadata the HTML page shows for it."""

    dot: str
    nodes: dict = field(default_factory=dict)  # DOT node id -> JSON-ready dict
    clusters: dict = field(default_factory=dict)  # cluster name -> JSON-ready dict (fused)
    title: str = ""

    def __str__(self) -> str:
        return self.dot


class Keys:
    """Stable integer keys for IR nodes across drawings: nodes are hash-consed, so a node a pass
    left alone is the same object before and after it (the before/after view diffs by key)."""

    def __init__(self):
        self.keys: dict[int, int] = {}
        self.alive: list = []  # keeps the keyed nodes alive, so ids are never reused

    def __call__(self, n) -> int:
        k = self.keys.get(id(n))
        if k is None:
            k = self.keys[id(n)] = len(self.keys)
            self.alive.append(n)
        return k


def _attr_text(n: Node) -> tuple[str, dict]:
    """A short attribute line for the label and every attribute in full for the metadata."""
    full = {}
    for k, v in n.attrs:
        if n.op == "constant" and k == "value":
            full[k] = _short(format_attr(v), 400)
        else:
            full[k] = format_attr(v)
    if n.op == "constant":
        value = n.attr("value")
        small = isinstance(value, Literal) and value.array.size <= 4
        return (format_attr(value) if small else ""), full
    if n.op == "param":
        return "", full
    shown = {k: v for k, v in full.items() if k != "shape"}  # the type shows the shape
    if n.op == "dot_general" and n.attr("batch") == ((), ()):
        shown.pop("batch", None)
    return _short(", ".join(f"{k}={v}" for k, v in shown.items())), full


def _node_meta(n: Node, name: str, names: dict, users: dict, keys: Keys, outputs: dict) -> dict:
    _, attrs = _attr_text(n)
    return {
        "name": name,
        "op": n.op,
        "type": str(n.type),
        "bytes": _nbytes(n),
        "attrs": attrs,
        "inputs": [names[id(i)] for i in n.inputs],
        "users": users.get(id(n), []),
        "output": outputs.get(id(n)),
        "loc": None if n.loc is None else str(n.loc),
        "url": source_url(n.loc),
        "source": source_line(n.loc),
        "key": keys(n),
        "role": _role(n),
    }


def _node_stmt(n: Node, nid: str, meta: dict, links: bool) -> str:
    short, _ = _attr_text(n)
    if n.op == "param":
        head = f"{meta['name']} param {n.attr('index')}"
    else:
        head = f"{meta['name']} {n.op}"
    label = "\n".join(x for x in (head, str(n.type), short) if x)
    if n.op == "param":
        tip = [f"{meta['name']}: {n.type} = parameter {n.attr('index')}"]
    else:
        tip = [f"{meta['name']}: {n.type} = {n.op}({', '.join(meta['inputs'])})"]
        tip += [f"{k}={_short(v, 80)}" for k, v in meta["attrs"].items()]
    if meta["output"] is not None:
        tip.append(f"output {meta['output']}")
    if n.loc is not None:
        tip.append(str(n.loc) + (f": {meta['source']}" if meta["source"] else ""))
    role = meta["role"]
    shape = {"param": "invhouse", "constant": "oval"}.get(role, "box")
    style = "filled" if role in ("param", "constant") else "rounded,filled"
    attrs = _attrs(
        label=label,
        shape=shape,
        style=style,
        fillcolor=FILL[role],
        peripheries="2" if meta["output"] is not None else None,
        tooltip="\n".join(tip),
        URL=meta["url"] if links else None,
    )
    return f"  {nid} [{attrs}];"


def _header(name: str, title: str) -> list[str]:
    return [
        f"digraph {quote(name)} {{",
        f"  graph [{_attrs(label=title, labelloc='t', fontname=FONT, rankdir='TB')}];",
        f"  node [{_attrs(fontname=FONT, fontsize='10', color='#4b5563', margin='0.12,0.05')}];",
        f"  edge [{_attrs(fontname=FONT, fontsize='8', color='#6b7280', fontcolor='#374151')}];",
    ]


def graph_dot(
    graph: Graph, plan: FusionPlan | None = None, links: bool = True, keys: Keys | None = None
) -> Drawing:
    """``graph`` as DOT; with ``plan`` (its fusion plan), kernels as clusters and unfused edges
    labelled with the explainer's reason. ``links=False`` leaves out the ``URL`` attributes
    (the HTML page handles clicks itself)."""
    keys = keys or Keys()
    order = graph.nodes()
    names = {id(n): f"%{i}" for i, n in enumerate(order)}
    ids = {id(n): f"n{i}" for i, n in enumerate(order)}
    users: dict[int, list] = {}
    for n in order:
        for i in dict.fromkeys(n.inputs):
            users.setdefault(id(i), []).append(names[id(n)])
    outputs = {}
    for i, o in enumerate(graph.outputs):
        outputs.setdefault(id(o), i)
    home, kernels_of = {}, {}  # id(node) -> the kernel it is drawn in / every kernel computing it
    for k in plan.kernels if plan is not None else ():
        for m in k.members:
            home.setdefault(id(m), k)
            kernels_of.setdefault(id(m), []).append(k.name)
    title = f"@{graph.name}" + (" fused" if plan is not None else "")
    if plan is not None:
        title += f": {len(plan.fused_kernels)} kernels, {len(plan.library_calls)} library calls"
    lines = _header(graph.name, title)
    drawing = Drawing("", title=title)
    stmts: dict[int, str] = {}
    for n in order:
        meta = _node_meta(n, names[id(n)], names, users, keys, outputs)
        if id(n) in kernels_of:
            meta["kernel"] = kernels_of[id(n)][0]
            if len(kernels_of[id(n)]) > 1:
                meta["recomputed_in"] = kernels_of[id(n)]
        drawing.nodes[ids[id(n)]] = meta
        stmts[id(n)] = _node_stmt(n, ids[id(n)], meta, links)
    for n in order:  # nodes outside every kernel: parameters, constants, unfused graphs
        if id(n) not in home:
            lines.append(stmts[id(n)])
    for k in plan.kernels if plan is not None else ():
        lines += _cluster(k, [stmts[id(m)] for m in k.members if home[id(m)] is k])
        drawing.clusters["cluster_" + k.name] = _kernel_meta(k, names)
    unfused = {}
    for u in plan.unfused if plan is not None else ():
        unfused.setdefault((id(u.producer), id(u.consumer)), u)
    for n in order:
        for pos, i in enumerate(n.inputs):
            if i in n.inputs[:pos]:
                continue  # one edge per producer, however many operands it fills
            times = n.inputs.count(i)
            label = str(i.type) + (f" x{times}" if times > 1 else "")
            tip = f"{names[id(i)]} -> {names[id(n)]}: {i.type}, {_nbytes(i)} bytes"
            u = unfused.get((id(i), id(n)))
            extra = {}
            if u is not None:
                why = u.reason + (f": {u.detail}" if u.detail else "")
                label += f"\n{u.reason}"
                tip += f"\nnot fused: {why}"
                extra = dict(style="dashed", color=UNFUSED, fontcolor=UNFUSED, penwidth="1.5")
            attrs = _attrs(label=label, tooltip=tip, **extra)
            lines.append(f"  {ids[id(i)]} -> {ids[id(n)]} [{attrs}];")
    lines.append("}")
    drawing.dot = "\n".join(lines) + "\n"
    return drawing


def _kernel_space(k: Kernel) -> str:
    space = "x".join(map(str, k.shape)) or "scalar"
    if k.reduce_axes:
        space += f", reducing axes {list(k.reduce_axes)}"
    return space


def _kernel_meta(k: Kernel, names: dict) -> dict:
    lines = sorted({str(m.loc) for m in k.members if m.loc is not None})
    return {
        "name": k.name,
        "kind": k.kind,
        "space": _kernel_space(k),
        "members": [names[id(m)] for m in k.members if id(m) in names],
        "ops": [m.op for m in k.members],
        "reads": [f"{names.get(id(i), '?')}: {i.type}" for i in k.inputs],
        "writes": [f"{names.get(id(o), '?')}: {o.type}" for o in k.outputs],
        "lines": lines,
    }


def _cluster(k: Kernel, stmts: list) -> list[str]:
    if k.kind == "library":
        style = dict(label=f"library {k.name}", style="dashed,filled", fillcolor="#fff7ed")
        style["color"] = "#ea580c"
    else:
        label = f"{k.name}: {k.kind} over {_kernel_space(k)}"
        style = dict(label=label, style="rounded,filled", fillcolor="#ecfdf5", color="#059669")
    tip = f"{k.kind} {k.name}: {' '.join(m.op for m in k.members)}"
    return [
        f"  subgraph {quote('cluster_' + k.name)} {{",
        f"    graph [{_attrs(fontname=FONT, fontsize='10', tooltip=tip, **style)}];",
        *("  " + s for s in stmts),
        "  }",
    ]


def kernels_dot(
    plan: FusionPlan, links: bool = True, keys: Keys | None = None, code=None
) -> Drawing:
    """The plan as the program the executable runs: one node per kernel or library call, one
    per parameter or constant buffer read, one per graph output; edges are buffers. ``code``
    (``kernel -> {label: text}``) adds generated code to each kernel's metadata."""
    keys = keys or Keys()
    graph = plan.graph
    order = graph.nodes()
    names = {id(n): f"%{i}" for i, n in enumerate(order)}
    producer: dict[int, str] = {}  # id(value) -> DOT id of the node that holds it in memory
    title = (
        f"@{graph.name} kernels: {len(plan.fused_kernels)} kernels, "
        f"{len(plan.library_calls)} library calls"
    )
    lines = _header(graph.name, title)
    drawing = Drawing("", title=title)
    outputs = {}
    for i, o in enumerate(graph.outputs):
        outputs.setdefault(id(o), i)
    read = {id(i) for k in plan.kernels for i in k.inputs} | set(outputs)
    for i, n in enumerate(order):  # buffers that exist before the first kernel runs
        if n.op not in ("param", "constant") or id(n) not in read:
            continue
        nid = f"n{i}"
        producer[id(n)] = nid
        meta = _node_meta(n, names[id(n)], names, {}, keys, {})
        drawing.nodes[nid] = meta
        lines.append(_node_stmt(n, nid, meta, links))
    for j, k in enumerate(plan.kernels):
        kid = f"k{j}"
        for o in k.outputs if k.kind != "library" else k.members[:1]:
            producer[id(o)] = kid
        drawing.nodes[kid] = meta = _kernel_node_meta(k, names, keys, code)
        ops = [op.replace("reduce_", "") for op in meta["ops"] if op not in MOVEMENT]
        label = f"{k.name}\n{meta['space']}\n{_short(' '.join(ops or meta['ops']), 40)}"
        locs = [m.loc for m in k.members if m.loc is not None]
        library = k.kind == "library"
        attrs = _attrs(
            label=label,
            shape="box3d" if not library else "component",
            style="filled",
            fillcolor="#ecfdf5" if not library else "#fff7ed",
            color="#059669" if not library else "#ea580c",
            tooltip=f"{k.kind} {k.name}\n" + "\n".join(meta["lines"]),
            URL=source_url(locs[-1]) if links and locs else None,
        )
        lines.append(f"  {kid} [{attrs}];")
    reasons = {}  # (id(value), id(reading kernel)) -> why that read was not fused
    for u in plan.unfused:
        for k in plan.kernels:
            if k.has(u.consumer):
                reasons.setdefault((id(u.producer), id(k)), u)
    for j, k in enumerate(plan.kernels):
        for i in k.inputs:
            src = producer.get(id(i))
            if src is None:  # a scalar constant inlined into the kernel
                continue
            label, tip, extra = str(i.type), f"{names[id(i)]}: {i.type}, {_nbytes(i)} bytes", {}
            u = reasons.get((id(i), id(k)))
            if u is not None:
                label += f"\n{u.reason}"
                tip += f"\nnot fused: {u.reason}" + (f": {u.detail}" if u.detail else "")
                extra = dict(style="dashed", color=UNFUSED, fontcolor=UNFUSED)
            lines.append(f"  {src} -> k{j} [{_attrs(label=label, tooltip=tip, **extra)}];")
    for i, o in enumerate(graph.outputs):
        oid = f"out{i}"
        drawing.nodes[oid] = {
            "name": f"output {i}",
            "op": "output",
            "type": str(o.type),
            "role": "output",
            "inputs": [names[id(o)]],
            "key": -1 - i,
        }
        out_attrs = _attrs(
            label=f"output {i}\n{o.type}", shape="house", style="filled", fillcolor="#dbeafe"
        )
        lines.append(f"  {oid} [{out_attrs}];")
        src = producer.get(id(o))
        if src is not None:
            lines.append(f"  {src} -> {oid} [{_attrs(label=str(o.type))}];")
    lines.append("}")
    drawing.dot = "\n".join(lines) + "\n"
    return drawing


def _kernel_node_meta(k: Kernel, names: dict, keys: Keys, code) -> dict:
    meta = _kernel_meta(k, names)
    meta.update(op="kernel" if k.kind != "library" else "library call", role="kernel")
    meta["type"] = ", ".join(str(o.type) for o in (k.outputs or k.members[-1:]))
    meta["key"] = -1000 - keys(k.members[-1])
    locs = [m.loc for m in k.members if m.loc is not None]
    meta["loc"] = str(locs[-1]) if locs else None
    meta["url"] = source_url(locs[-1]) if locs else None
    meta["source"] = source_line(locs[-1]) if locs else None
    if k.kind != "library":
        from mlc.backends.kernel import describe

        try:
            meta["description"] = describe(k).text()
        except Exception as e:  # a kernel the description cannot express: say so, draw on
            meta["description"] = f"(no kernel description: {type(e).__name__}: {e})"
    meta["code"] = code(k) if code is not None else {}
    return meta


def stage_drawing(lowered, stage: str, links: bool = True, keys: Keys | None = None) -> Drawing:
    """The drawing of ``lowered`` (``f.lower(...)``) at ``stage``: traced, optimized, fused or
    kernels."""
    if stage == "traced":
        return graph_dot(lowered.graph, links=links, keys=keys)
    if stage == "optimized":
        return graph_dot(lowered.optimized, links=links, keys=keys)
    if stage == "fused":
        return graph_dot(lowered.optimized, lowered.plan, links=links, keys=keys)
    if stage == "kernels":
        return kernels_dot(lowered.plan, links=links, keys=keys)
    raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")


class GraphvizError(RuntimeError):
    """The system ``dot`` is missing or failed."""


INSTALL = (
    "Graphviz's `dot` is not on PATH: install Graphviz (`apt install graphviz` on Debian/Ubuntu, "
    "`brew install graphviz` on macOS), or use `--format html` (renders in the browser, nothing "
    "to install) or `--format dot` (Graphviz source)"
)


def render(dot_text: str, fmt: str = "svg", timeout: float = 120) -> bytes:
    """Lay out and render DOT text with the system ``dot`` (``fmt``: svg, png, pdf, ...).

    Raises ``GraphvizError`` when ``dot`` is not installed (the message says how to install it)
    or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(INSTALL)
    try:
        r = subprocess.run(
            [exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"dot took longer than {timeout:g} s to lay out the graph") from None
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip()
        raise GraphvizError(f"dot -T{fmt} failed (exit {r.returncode}): {err}")
    return r.stdout
