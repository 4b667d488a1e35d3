"""The ``mlc`` command line.

    mlc graph FILE.py:FUNC --arg 'f32[64,784]' ... [--static name=value]
              [--transform grad|vmap] [--stage traced|optimized|fused|kernels]
              [--format text|dot|svg|png|html] [-o OUT]
    mlc explain FILE.py:FUNC --arg ... [--json]
    mlc opt IN.mlc --passes cse,simplify [-o OUT] [--print-after-all] [--verify-each]
    mlc passes
    mlc bisect FILE.py:FUNC --arg ... [--passes ...] [--backend cpu|numpy] [--json]

Errors name the problem and exit with status 2, without a Python traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import sys

import numpy as np


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


_ARG = re.compile(r"^\s*([a-z]+\d*)\[([\d,\s]*)\]\s*$")


def parse_arg_type(text: str):
    """``'f32[64,784]'`` -> a random array of that type (values are irrelevant to tracing)."""
    from mlc.ir import dtypes

    m = _ARG.match(text)
    if not m:
        raise CLIError(f"malformed --arg {text!r}: expected a type like 'f32[64,784]' or 'i64[]'")
    try:
        dt = dtypes.dtype(m.group(1))
    except TypeError as e:
        raise CLIError(f"malformed --arg {text!r}: {e}") from None
    shape = tuple(int(s) for s in m.group(2).replace(" ", "").split(",") if s)
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(dt) if dt.kind == "f" else np.ones(shape, dt)


def load_function(spec: str):
    """``path/to/file.py:func`` -> the function object."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise CLIError(f"expected FILE.py:FUNC, got {spec!r}")
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    mod_spec = importlib.util.spec_from_file_location("_mlc_user_module", path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:
        raise CLIError(f"{path}: importing failed: {type(e).__name__}: {e}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise CLIError(f"{path} has no function {name!r}")
    return getattr(fn, "fun", fn)  # a @mlc.jit function: use what it wraps


def _static(items):
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"malformed --static {item!r}: expected name=value")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


TRANSFORMS = ("none", "grad", "vmap")


def _lower(a):
    """Trace ``FILE.py:FUNC`` on the ``--arg`` types, after ``--transform``, for the CPU backend."""
    import mlc

    if getattr(a, "plugin", None):  # files or modules that register passes
        from mlc.plugins import load_plugins

        load_plugins(a.plugin)
    fn = load_function(a.target)
    args = [parse_arg_type(t) for t in a.arg or ()]
    static = _static(a.static)
    transform = getattr(a, "transform", "none")
    if transform == "grad":
        fn = mlc.grad(fn)
    elif transform == "vmap":
        fn = mlc.vmap(fn)
    jitted = mlc.jit(fn, static_argnames=tuple(static), backend="cpu")
    lowered = jitted.lower(*args, **static)
    passes = getattr(a, "passes", None)
    if passes:  # the named passes instead of the default pipeline, for the later stages
        from mlc.api import Lowered
        from mlc.ir.passes import run_passes

        optimized = run_passes(lowered.graph, passes)
        lowered = Lowered(
            lowered.graph, optimized, lowered.in_tree, lowered.out_tree, lowered.backend
        )
    return lowered


FORMATS = ("text", "dot", "svg", "png", "html")
_SUFFIX = {".mlc": "text", ".txt": "text", ".dot": "dot", ".gv": "dot", ".svg": "svg"}
_SUFFIX.update({".png": "png", ".html": "html", ".htm": "html"})


def cmd_graph(a) -> str:
    fmt = a.format or _SUFFIX.get(os.path.splitext(a.output or "")[1].lower(), "text")
    lowered = _lower(a)
    if fmt == "text":
        return _graph_text(lowered, a.stage)
    from mlc import viz

    if fmt == "html":
        return viz.html_page(lowered, initial=a.stage, passes=getattr(a, "passes", None))
    drawing = viz.stage_drawing(lowered, a.stage)
    if fmt == "dot":
        return drawing.dot
    try:
        data = viz.render(drawing.dot, fmt)
    except viz.GraphvizError as e:
        raise CLIError(str(e)) from None
    if fmt == "svg":
        return data.decode("utf-8")
    # PNG is binary: write it here and leave main() nothing to write.
    if a.output:
        with open(a.output, "wb") as f:
            f.write(data)
        a.output = None
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    return ""


def _graph_text(lowered, stage: str) -> str:
    if stage == "traced":
        return str(lowered.graph)
    if stage == "optimized":
        return str(lowered.optimized)
    if stage == "fused":
        return str(lowered.plan)
    out = []  # kernels: each kernel's loop program
    from mlc.backends.kernel import describe

    for k in lowered.plan.kernels:
        if k.kind == "library":
            n = k.members[0]
            out.append(f"library {k.name}: {n.op} -> {n.type}\n")
        else:
            out.append(describe(k).text())
    return "\n".join(out)


def cmd_explain(a) -> str:
    report = _lower(a).fusion_report()
    if a.json:
        import json

        return json.dumps(report, indent=2) + "\n"
    return str(report)


def cmd_opt(a) -> str:
    from mlc.ir.parser import parse
    from mlc.ir.passes.manager import run_passes

    try:
        with open(a.input) as f:
            text = f.read()
    except OSError as e:
        raise CLIError(f"cannot read {a.input}: {e.strerror}") from None
    graph = parse(text, file=a.input)
    names = [p for p in (a.passes or "").split(",") if p]
    out = []
    graph = run_passes(
        graph,
        names,
        verify=a.verify_each,
        after_each=(lambda name, g: out.append(f"// after {name}\n{g}"))
        if a.print_after_all
        else None,
    )
    out.append(str(graph))
    return "\n".join(out)


def cmd_passes(a) -> str:
    from mlc.ir.passes.manager import list_passes

    rows = list_passes()
    width = max(len(n) for n, _ in rows)
    return "\n".join(f"{n:<{width}}  {d}" for n, d in rows) + "\n"


def build_parser():
    import mlc
    from mlc import bisect, plugins

    p = argparse.ArgumentParser(prog="mlc", description="mlc: a trace-and-fuse tensor compiler")
    p.add_argument("--version", action="version", version=f"mlc {mlc.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("graph", help="trace a function and print or draw its graph")
    g.add_argument("target", metavar="FILE.py:FUNC")
    g.add_argument("--arg", action="append", help="an argument type, e.g. 'f32[64,784]'")
    g.add_argument("--static", action="append", help="a static argument, name=value")
    g.add_argument(
        "--stage", choices=("traced", "optimized", "fused", "kernels"), default="optimized"
    )
    g.add_argument("--transform", choices=TRANSFORMS, default="none")
    g.add_argument(
        "--passes",
        help="comma-separated passes to run instead of the default pipeline (see `mlc passes`)",
    )
    plugins.add_argument(g)
    g.add_argument(
        "--format",
        choices=FORMATS,
        help="text (IR, the default), dot (Graphviz source), svg/png (drawn by Graphviz's dot), "
        "html (one offline page with every stage); default: from -o's suffix, else text",
    )
    g.add_argument("-o", "--output", help="write here instead of standard output")
    g.set_defaults(run=cmd_graph)

    e = sub.add_parser("explain", help="the kernels, what each fused, why edges stayed unfused")
    e.add_argument("target", metavar="FILE.py:FUNC")
    e.add_argument("--arg", action="append", help="an argument type, e.g. 'f32[64,784]'")
    e.add_argument("--static", action="append", help="a static argument, name=value")
    e.add_argument("--transform", choices=TRANSFORMS, default="none")
    e.add_argument("--json", action="store_true", help="the report as JSON")
    e.add_argument("-o", "--output", help="write here instead of standard output")
    plugins.add_argument(e)
    e.set_defaults(run=cmd_explain)

    o = sub.add_parser("opt", help="run passes over textual IR")
    o.add_argument("input", metavar="IN.mlc")
    o.add_argument("--passes", default="", help="comma-separated pass names (see `mlc passes`)")
    o.add_argument("--print-after-all", action="store_true")
    o.add_argument("--verify-each", action="store_true")
    o.add_argument("-o", "--output")
    plugins.add_argument(o)
    o.set_defaults(run=cmd_opt)

    ls = sub.add_parser("passes", help="list the registered passes")
    plugins.add_argument(ls)
    ls.set_defaults(run=cmd_passes, output=None)
    bisect.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from mlc.plugins import load_plugins

        load_plugins(getattr(args, "plugin", None))
        text = args.run(args)
    except CLIError as e:
        print(f"mlc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, NotImplementedError) as e:  # parse errors, bad graphs, ...
        print(f"mlc {args.command}: error: {e}", file=sys.stderr)
        return 2
    if getattr(args, "output", None):
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return getattr(args, "exit_status", 0)


if __name__ == "__main__":
    # run the importable module's main, not this __main__ copy: commands that import mlc.cli
    # (mlc bisect) then raise the same CLIError class that main catches
    from mlc.cli import main as _main

    sys.exit(_main())
