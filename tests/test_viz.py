"""mlc.viz and `mlc graph --format dot|svg|png|html`: the DOT structure against the IR, Graphviz
rendering through the console script, the error without Graphviz, the self-contained page."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlc.ir import Graph
from mlc.ir import primitives as P
from mlc.ir.graph import Node, SourceLoc

import mlc
from mlc import viz

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")

MODEL = textwrap.dedent(
    """
    import numpy as np


    def mlp(x, w1, b1, w2):
        h = np.tanh(x @ w1 + b1)
        z = h @ w2
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    """
)
ARGS = ["f32[4,6]", "f32[6,5]", "f32[5]", "f32[5,3]"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("viz") / "model.py"
    path.write_text(MODEL)
    return path


@pytest.fixture(scope="module")
def lowered(model):
    from mlc.cli import load_function, parse_arg_type

    fn = load_function(f"{model}:mlp")
    return mlc.jit(fn, backend="cpu").lower(*[parse_arg_type(t) for t in ARGS])


def cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlc.cli", *args], capture_output=True, env=env, cwd=cwd
    )


def graph_cmd(model, *extra):
    args = ["graph", f"{model}:mlp"]
    for a in ARGS:
        args += ["--arg", a]
    return [*args, *extra]


# -- reading DOT back ---------------------------------------------------------------------------
_STR = r'"((?:[^"\\]|\\.)*)"'
NODE = re.compile(r"^\s*(\w+) \[(.*)\];$", re.M)
EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\];$", re.M)
CLUSTER = re.compile(r'^\s*subgraph "cluster_([^"]+)" \{$', re.M)


def unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def attrs(text: str) -> dict:
    """A statement's attributes as the text Graphviz shows (tooltips are unescaped twice)."""
    out = {k: unquote(v) for k, v in re.findall(r"(\w+)=" + _STR, text)}
    if "tooltip" in out:
        out["tooltip"] = re.sub(r"\\(.)", r"\1", out["tooltip"])
    return out


def nodes_of(dot: str) -> dict:
    skip = ("graph", "node", "edge")
    return {m.group(1): attrs(m.group(2)) for m in NODE.finditer(dot) if m.group(1) not in skip}


def edges_of(dot: str) -> list:
    return [(m.group(1), m.group(2), attrs(m.group(3))) for m in EDGE.finditer(dot)]


# -- DOT structure ----------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["traced", "optimized"])
def test_dot_has_one_node_per_ir_node_and_one_edge_per_operand(lowered, stage):
    graph = lowered.graph if stage == "traced" else lowered.optimized
    d = viz.stage_drawing(lowered, stage)
    order = graph.nodes()
    nodes = nodes_of(d.dot)
    assert len(nodes) == len(order) == len(d.nodes)
    assert "subgraph" not in d.dot  # clusters only once fused
    for i, n in enumerate(order):
        a = nodes[f"n{i}"]
        assert a["label"].startswith(f"%{i} ")
        assert str(n.type) in a["label"]
        if n.op != "param":
            assert n.op in a["label"]
        assert {"param": "invhouse", "constant": "oval"}.get(n.op, "box") == a["shape"]
        assert ("peripheries" in a) == (n in graph.outputs)
    pairs = {(f"n{order.index(i)}", f"n{i_c}") for i_c, c in enumerate(order) for i in c.inputs}
    edges = edges_of(d.dot)
    assert {(u, v) for u, v, _ in edges} == pairs and len(edges) == len(pairs)
    for u, _, a in edges:  # labelled with the tensor's type; bytes in the tooltip
        src = order[int(u[1:])]
        assert a["label"].split("\n")[0].split(" x")[0] == str(src.type)
        assert f"{src.type.size * src.dtype.itemsize} bytes" in a["tooltip"]
        assert "style" not in a


def test_nodes_link_to_their_source_line(lowered, model):
    d = viz.stage_drawing(lowered, "traced")
    nodes = nodes_of(d.dot)
    src = model.read_text().splitlines()
    linked = 0
    for i, n in enumerate(lowered.graph.nodes()):
        a = nodes[f"n{i}"]
        if n.loc is None:
            assert "URL" not in a
            continue
        linked += 1
        assert a["URL"] == f"file://{os.path.abspath(n.loc.file)}#L{n.loc.line}"
        text = src[n.loc.line - 1].strip()
        assert f"{n.loc}: {text}" in a["tooltip"]
        assert d.nodes[f"n{i}"]["source"] == text
    assert linked >= 8
    tanh = next(m for m in d.nodes.values() if m["op"] == "tanh")
    assert tanh["source"] == "h = np.tanh(x @ w1 + b1)"
    # links=False (the HTML page) keeps the tooltips, drops the URLs
    d = viz.graph_dot(lowered.graph, links=False)
    assert "URL=" not in d.dot and "tooltip=" in d.dot


def test_fused_clusters_are_the_kernels_and_unfused_edges_carry_reasons(lowered):
    plan = lowered.plan
    d = viz.stage_drawing(lowered, "fused")
    names = CLUSTER.findall(d.dot)
    assert names == [k.name for k in plan.kernels]
    assert len(plan.library_calls) == 2 and len(plan.fused_kernels) >= 2
    for k in plan.kernels:
        block = d.dot.split(f'subgraph "cluster_{k.name}" {{')[1].split("\n  }")[0]
        inside = set(re.findall(r"^\s+(n\d+) \[", block, re.M))
        order = plan.graph.nodes()
        assert inside == {f"n{order.index(m)}" for m in k.members}
        assert ("library" in block) == (k.kind == "library")
        assert d.clusters[f"cluster_{k.name}"]["kind"] == k.kind
    order = plan.graph.nodes()
    want = {(f"n{order.index(u.producer)}", f"n{order.index(u.consumer)}"): u for u in plan.unfused}
    dashed = {(u, v): a for u, v, a in edges_of(d.dot) if a.get("style") == "dashed"}
    assert set(dashed) == set(want) and want
    for key, a in dashed.items():
        u = want[key]
        assert u.reason in a["label"] and a["color"] == viz.dot.UNFUSED
        assert f"not fused: {u.reason}" in a["tooltip"]
        if u.detail:
            assert u.detail in a["tooltip"]
    for m in d.nodes.values():
        if m["op"] not in ("param", "constant"):
            assert m["kernel"] in {k.name for k in plan.kernels}


def test_kernels_stage_draws_the_kernel_program(lowered):
    plan = lowered.plan
    d = viz.stage_drawing(lowered, "kernels")
    nodes = nodes_of(d.dot)
    kernels = [k for k in nodes if k.startswith("k")]
    outputs = [k for k in nodes if k.startswith("out")]
    buffers = [k for k in nodes if k.startswith("n")]
    assert len(kernels) == len(plan.kernels) and len(outputs) == len(plan.graph.outputs)
    assert len(buffers) == len(plan.graph.inputs)  # every parameter is read, no big constants
    for j, k in enumerate(plan.kernels):
        assert nodes[f"k{j}"]["label"].startswith(k.name + "\n")
        assert nodes[f"k{j}"]["shape"] == ("component" if k.kind == "library" else "box3d")
    edges = edges_of(d.dot)
    into = {v for _, v, _ in edges}
    assert set(kernels) <= into  # every kernel reads something
    assert all(any(u == o or v == o for u, v, _ in edges) for o in outputs)
    assert any(a.get("style") == "dashed" and "library call" in a["label"] for *_, a in edges)
    meta = d.nodes[f"k{[k.kind for k in plan.kernels].index('reduction')}"]
    assert meta["description"].startswith("kernel ") and "reduction" in meta["description"]


def test_stage_drawing_rejects_unknown_stage(lowered):
    with pytest.raises(ValueError, match="unknown stage 'lowered'.*traced"):
        viz.stage_drawing(lowered, "lowered")


# -- escaping ---------------------------------------------------------------------------------
@given(st.text(max_size=40))
def test_quote_round_trips_any_text(text):
    q = viz.quote(text)
    assert q.startswith('"') and q.endswith('"')
    body = q[1:-1]
    assert "\n" not in body and re.fullmatch(r'(?:[^"\\]|\\.)*', body)
    assert unquote(body) == text.replace("\r", "")
    tip = viz.quote(text, tooltip=True)[1:-1]
    assert attrs(f'tooltip="{tip}"')["tooltip"] == text.replace("\r", "")


def _weird_graph(name='q"uote'):
    """A graph whose source file name and attributes need quoting in DOT."""
    loc = SourceLoc('we"ird \\N dir\\file\n<b>&.py', 7)
    x = P.param(index=0, shape=(2, 3), dtype="float32")
    y = Node.make(P.reduce_sum, [x], {"axes": (1,)}, loc)
    return Graph([x], [Node.make(P.neg, [y], {}, loc)], name=name)


def test_labels_and_tooltips_are_escaped():
    d = viz.graph_dot(_weird_graph())
    assert d.dot.splitlines()[0] == 'digraph "q\\"uote" {'
    tips = [a["tooltip"] for a in nodes_of(d.dot).values()]
    assert any('we"ird \\N dir\\file\n<b>&.py:7' in t for t in tips)
    assert "URL" not in d.dot  # not a real file


@needs_dot
def test_escaped_dot_is_shown_verbatim_by_graphviz():
    import xml.etree.ElementTree as ET

    d = viz.graph_dot(_weird_graph())
    svg = ET.fromstring(viz.render(d.dot, "svg"))
    ns = {"s": "http://www.w3.org/2000/svg", "x": "http://www.w3.org/1999/xlink"}
    assert svg.find("s:g/s:title", ns).text == 'q"uote'
    nodes = svg.findall(".//s:g[@class='node']", ns)
    assert len(nodes) == 3
    texts = [[t.text for t in g.iter("{%s}text" % ns["s"])] for g in nodes]
    assert texts[1] == ["%1 reduce_sum", "f32[2]", "axes=(1,)"]
    tips = [g.find(".//s:a", ns).get("{%s}title" % ns["x"]) for g in nodes]
    assert tips[2] == '%2: f32[2] = neg(%1)\noutput 0\nwe"ird \\N dir\\file\n<b>&.py:7'


@needs_dot
def test_render_reports_graphviz_errors():
    with pytest.raises(viz.GraphvizError, match=r"dot -Tsvg failed"):
        viz.render("digraph { a -> }", "svg")


def test_render_without_dot_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(viz.GraphvizError, match="apt install graphviz.*brew install graphviz"):
        viz.render("digraph { a }", "svg")


# -- the console script -----------------------------------------------------------------------
def test_cli_dot_to_stdout_and_by_suffix(model, tmp_path, lowered):
    r = cli(*graph_cmd(model, "--format", "dot", "--stage", "fused"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith('digraph "mlp" {') and CLUSTER.findall(out) == [
        k.name for k in lowered.plan.kernels
    ]
    r = cli(*graph_cmd(model, "-o", str(tmp_path / "g.gv")))  # the format from the suffix
    assert r.returncode == 0, r.stderr
    assert len(nodes_of((tmp_path / "g.gv").read_text())) == len(lowered.optimized.nodes())
    r = cli(*graph_cmd(model, "-o", str(tmp_path / "g.mlc")))
    assert (tmp_path / "g.mlc").read_text().startswith("func @mlp(")


@needs_dot
def test_cli_svg_and_png(model, tmp_path, lowered):
    svg = tmp_path / "g.svg"
    r = cli(*graph_cmd(model, "--stage", "fused", "--format", "svg", "-o", str(svg)))
    assert r.returncode == 0, r.stderr
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert text.count('class="node"') == len(lowered.optimized.nodes())
    assert text.count('class="cluster"') == len(lowered.plan.kernels)
    assert "model.py#L" in text  # the source links survive into the SVG
    png = tmp_path / "g.png"
    r = cli(*graph_cmd(model, "--stage", "kernels", "-o", str(png)))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    r = cli(*graph_cmd(model, "--format", "png"))  # to standard output, as bytes
    assert r.returncode == 0 and r.stdout[:4] == b"\x89PNG"


def test_cli_without_graphviz_says_what_to_do(model, tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    assert shutil.which("dot", path=env["PATH"]) is None
    for fmt in ("svg", "png"):
        r = cli(*graph_cmd(model, "--format", fmt, "-o", str(tmp_path / f"g.{fmt}")), env=env)
        err = r.stderr.decode()
        assert r.returncode == 2, err
        assert err.startswith("mlc graph: error: Graphviz's `dot` is not on PATH")
        for hint in ("apt install graphviz", "brew install graphviz", "--format html", "--format dot"):  # fmt: skip
            assert hint in err
        assert "Traceback" not in err and not (tmp_path / f"g.{fmt}").exists()
    r = cli(*graph_cmd(model, "--format", "dot"), env=env)  # dot and html need no Graphviz
    assert r.returncode == 0


# -- the HTML page ----------------------------------------------------------------------------
def _page_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="mlc-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_html_page_is_one_offline_file_with_every_stage(model, tmp_path, lowered):
    out = tmp_path / "g.html"
    r = cli(*graph_cmd(model, "--format", "html", "--stage", "fused", "-o", str(out)))
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    # nothing is loaded from anywhere: no external scripts, styles, images or frames
    assert not re.search(r"<(script|link|img|iframe|embed|object)\b[^>]*\b(src|href)=", page, re.I)
    assert "@import" not in page and "url(" not in page.split("<script")[1].split("</style>")[0]
    vendored = viz.html.ASSETS + "/viz-global.js"
    own = page.replace(open(vendored, encoding="utf-8").read(), "")
    assert len(own) < len(page) - 1_000_000  # the WebAssembly Graphviz is inlined
    assert not re.search(r"https?://", own), re.findall(r"https?://\S{0,30}", own)
    assert "fetch(" not in own and "XMLHttpRequest" not in own
    data = _page_data(page)
    ids = [s["id"] for s in data["stages"]]
    assert ids[0] == "traced" and ids[-3:] == ["optimized", "fused", "kernels"]
    assert data["stages"][data["initial"]]["id"] == "fused"
    passes = [s for s in data["stages"] if s["group"] == "passes"]
    assert [s["id"].split(":")[1] for s in passes[:4]] == ["cse", "fold", "simplify", "dce"]
    assert passes[-1]["id"].endswith("expand-pow")
    for i, s in enumerate(data["stages"]):
        assert s["dot"].startswith('digraph "mlp"') and len(nodes_of(s["dot"])) == len(s["nodes"])
        if s["group"] == "passes":
            assert s["before"] == i - 1 and s["text"].startswith("func @mlp(")
    by = {s["id"]: s for s in data["stages"]}
    assert len(by["traced"]["nodes"]) == len(lowered.graph.nodes())
    assert len(by["fused"]["nodes"]) == len(lowered.optimized.nodes())
    assert len(by["fused"]["clusters"]) == len(lowered.plan.kernels)
    kernels = [m for m in by["kernels"]["nodes"].values() if m["role"] == "kernel"]
    assert len(kernels) == len(lowered.plan.kernels)
    for m in kernels:
        if m["op"] == "kernel":
            assert m["code"]["LLVM IR"].count("define ") >= 2 and m["description"]
        else:
            assert m["code"] == {}


def test_html_escapes_user_text_in_the_data_blob():
    g = _weird_graph("weird")
    lowered = mlc.api.Lowered(g, g, None, None, "cpu")
    page = viz.html_page(lowered, initial="traced", title="<script>alert(1)</script>")
    blob = page.split('id="mlc-data">')[1].split("</script>")[0]
    assert "<" not in blob and ">" not in blob and "&" not in blob
    assert _page_data(page)["title"] == "<script>alert(1)</script>"
    assert "<title>mlc graph: &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert page.count("<script") == 3  # the data, Graphviz, the page's own script
    with pytest.raises(ValueError, match="unknown stage 'lowered'"):
        viz.html_page(lowered, initial="lowered")


def test_pass_stages_follow_the_pipeline_and_end_at_the_optimized_graph(lowered):
    stages = viz.pipeline_stages(lowered)
    passes = [s for s in stages if s["group"] == "passes"]
    last = passes[-1]
    assert len(last["nodes"]) == len(lowered.optimized.nodes())
    assert last["text"] == str(lowered.optimized)
    keys = [{m["key"] for m in s["nodes"].values()} for s in stages]
    assert keys[stages.index(last)] == keys[-3]  # the same node objects: hash-consing
    unchanged = [s for s in passes if s["note"]]
    assert all(s["title"].endswith("(no change)") for s in unchanged)
    assert any(not s["note"] for s in passes)


def test_code_views_hook_adds_a_backend(lowered):
    k = lowered.plan.fused_kernels[0]
    viz.CODE_VIEWS.append(("CUDA C", lambda kernel, program: f"// {kernel.name}"))
    viz.CODE_VIEWS.append(("broken", lambda kernel, program: 1 / 0))
    try:
        code = viz.kernel_code(k)
    finally:
        del viz.CODE_VIEWS[-2:]
    assert code["CUDA C"] == f"// {k.name}" and "define " in code["LLVM IR"]
    assert code["broken"].startswith("(broken unavailable: ZeroDivisionError")
    assert viz.kernel_code(lowered.plan.library_calls[0]) == {}


def test_default_format_is_text(model):
    r = cli(*graph_cmd(model))
    assert r.returncode == 0 and r.stdout.decode().startswith("func @mlp(")
    r = cli(*graph_cmd(model, "--format", "jpeg"))
    assert r.returncode == 2 and b"invalid choice: 'jpeg'" in r.stderr


def test_drawing_handles_arrays_in_attributes():
    x = P.param(index=0, shape=(3,), dtype="float64")
    c = P.const(np.arange(3.0), "float64")
    d = viz.graph_dot(Graph([x], [P.add(x, c)]))
    label = nodes_of(d.dot)["n1"]["label"]
    assert label == "%1 constant\nf64[3]\n[0.0, 1.0, 2.0]"
    assert d.nodes["n1"]["attrs"]["value"] == "[0.0, 1.0, 2.0]"


def test_cli_passes_and_plugin_replace_the_default_pipeline(model, tmp_path):
    plugin = tmp_path / "noop_pass.py"
    plugin.write_text(
        "from mlc.ir.passes import register_pass\n\n\n"
        '@register_pass("viz-noop", "returns its input")\n'
        "def noop(graph):\n"
        "    return graph\n"
    )
    out = tmp_path / "p.html"
    extra = ["--plugin", str(plugin), "--passes", "dce,viz-noop"]
    r = cli(*graph_cmd(model, *extra, "-o", str(out)))
    assert r.returncode == 0, r.stderr
    data = _page_data(out.read_text(encoding="utf-8"))
    passes = [s for s in data["stages"] if s["group"] == "passes"]
    assert [s["id"] for s in passes] == ["pass0:dce", "pass1:viz-noop"]
    assert passes[1]["title"] == "after viz-noop (no change)"
    assert data["stages"][data["initial"]]["id"] == "optimized"
    r = cli(*graph_cmd(model, *extra, "--stage", "optimized"))
    traced = cli(*graph_cmd(model, "--stage", "traced")).stdout
    default = cli(*graph_cmd(model, "--stage", "optimized")).stdout
    assert r.returncode == 0 and r.stdout == traced != default  # dce alone removes nothing here
    r = cli(*graph_cmd(model, "--passes", "cse,no-such-pass", "--format", "dot"))
    assert r.returncode == 2 and b"unknown pass 'no-such-pass'" in r.stderr
    r = cli(*graph_cmd(model, "--plugin", str(tmp_path / "missing.py"), "--format", "dot"))
    assert r.returncode == 2 and b"missing.py" in r.stderr and b"Traceback" not in r.stderr
