"""``mlc bisect``: find the pass after which a function's results change.

    mlc bisect FILE.py:FUNC --arg 'f32[64,784]' ... [--static name=value] [--transform grad|vmap]
               [--passes a,b,c] [--plugin FILE.py] [--backend cpu|numpy]
               [--rtol R] [--atol A] [--seed S] [--trials N] [--json]

The function is traced (as ``mlc graph`` does) and run on random inputs (seeded: floats standard
normal, integers in 0..4, bools fair coins) with the reference interpreter: that is the
reference. Then the pipeline runs one pass at a time, and every stage's graph is evaluated on
the same inputs and compared with the reference: same number of outputs, shapes and dtypes,
integers and bools equal, floats within ``rtol``/``atol`` with NaN and inf in the same places.
The stages are those ``mlc.jit`` runs (``mlc.api._prepare``):

- ``inline-calls`` when the function has ``custom_vjp``/``custom_jvp`` calls;
- the default pipeline (``cse, fold, simplify, dce``) round after round until a round changes
  nothing, or the ``--passes`` given, once, in order;
- ``--backend cpu`` (the default): ``expand-pow`` after the default pipeline, then ``fuse`` (the
  fusion plan run kernel by kernel with the reference semantics) and ``cpu`` (the compiled
  LLVM kernels). ``--backend numpy`` stops after the passes: that backend is the interpreter.

The report lists every stage's largest absolute and relative error and names the first stage
that diverges beyond tolerance, with the nodes the pass removed and added (with their source
lines) and a unified diff of the IR before and after it. A pass that raises, or leaves IR the
verifier rejects, diverges too. Exit status: 0 when nothing diverged, 1 when a stage did, 2 for
user errors (bad ``FILE:FUNC``, malformed ``--arg``, unknown pass, a plugin that fails to load).

In Python, ``bisect(graph, inputs)`` returns a ``BisectResult``:

    >>> import numpy as np, mlc
    >>> g = mlc.trace(lambda x: np.exp(x) * 1.0, np.ones(3, np.float32))
    >>> r = bisect(g, [[np.zeros(3, np.float32)]], backend="numpy")
    >>> [s.name for s in r.stages if s.changed], r.diverged
    (['traced', 'simplify'], False)
"""

from __future__ import annotations

import difflib
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mlc import plugins
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate
from mlc.ir.printer import format_attr, print_graph

# Default (rtol, atol) per float dtype: room for the CPU backend's stated ulp bounds on
# transcendentals and for sums accumulated in another order than NumPy's pairwise summation.
TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-9, 1e-12)}
PROGRESS_AFTER = 0.5  # seconds before progress lines start (on stderr)
DIFF_LINES = 60  # lines of IR diff shown in the text report (the JSON has all of them)


# -- inputs and comparison ------------------------------------------------------------------------
def random_inputs(graph: Graph, seed: int = 0) -> list:
    """One random array per graph input: floats standard normal, ints in 0..4, bools coin flips.

    >>> import mlc
    >>> g = mlc.trace(lambda x, i: x, np.ones(2, np.float32), np.ones(3, np.int32))
    >>> [a.dtype.name for a in random_inputs(g)]
    ['float32', 'int32']
    """
    rng = np.random.default_rng(seed)
    out = []
    for p in graph.inputs:
        shape, dtype = p.shape, p.dtype
        if dtype.kind == "f":
            out.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            out.append(rng.random(shape) < 0.5)
        else:  # small, non-negative: safe as indices, shifts and exponents
            out.append(rng.integers(0, 5, size=shape).astype(dtype))
    return out


def tolerance(dtype, rtol=None, atol=None) -> tuple[float, float]:
    """``(rtol, atol)`` for results of ``dtype``: the given ones, else ``TOLERANCES``; 0 for
    integers and bools (compared exactly)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":
        return 0.0, 0.0
    r, a = TOLERANCES.get(dtype, (1e-3, 1e-5))
    return (r if rtol is None else rtol), (a if atol is None else atol)


@dataclass
class Comparison:
    """How one stage's outputs compare with the reference's, over all trials."""

    ok: bool = True
    max_abs: float = 0.0
    max_rel: float = 0.0
    problem: str = ""  # the first problem found, for the report

    def fail(self, problem: str) -> None:
        if self.ok:
            self.problem = problem
        self.ok = False


def compare(got: list, want: list, rtol=None, atol=None, into: Comparison | None = None):
    """Compare output lists; accumulates into ``into`` (a new ``Comparison`` by default).

    >>> c = compare([np.float32([1, 2])], [np.float32([1, 2.5])])
    >>> c.ok, c.max_abs, c.max_rel
    (False, 0.5, 0.2)
    """
    c = Comparison() if into is None else into
    if len(got) != len(want):
        c.fail(f"{len(got)} outputs, the reference has {len(want)}")
        return c
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        what = f"output {i}"
        if g.shape != w.shape or g.dtype != w.dtype:
            c.fail(f"{what} is {_type(g)}, the reference gives {_type(w)}")
            continue
        _compare_array(g, w, what, *tolerance(w.dtype, rtol, atol), c)
    return c


def _type(a: np.ndarray) -> str:
    from mlc.ir import dtypes

    try:
        short = dtypes.short(a.dtype)
    except Exception:
        short = a.dtype.name
    return f"{short}[{','.join(map(str, a.shape))}]"


def _compare_array(g, w, what, rtol, atol, c: Comparison) -> None:
    if w.size == 0:
        return
    if w.dtype.kind not in "fc":
        bad = g != w
        err = np.abs(g.astype(np.float64) - w.astype(np.float64))
        c.max_abs = max(c.max_abs, float(err.max()))
        c.max_rel = max(c.max_rel, float((err / np.maximum(np.abs(w), 1)).max()))
        if bad.any():
            c.fail(_worst(what, g, w, bad, err, f"{int(bad.sum())} of {w.size} elements differ"))
        return
    with np.errstate(all="ignore"):
        _compare_floats(g, w, what, rtol, atol, c)


def _compare_floats(g, w, what, rtol, atol, c: Comparison) -> None:
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    nan_g, nan_w = np.isnan(g64), np.isnan(w64)
    inf_g, inf_w = np.isinf(g64), np.isinf(w64)
    finite = ~(nan_g | nan_w | inf_g | inf_w)
    err = np.where(finite, np.abs(g64 - w64), 0.0)
    rel = err / np.maximum(np.abs(w64), np.finfo(w.dtype).tiny)
    c.max_abs = max(c.max_abs, float(err.max()))
    c.max_rel = max(c.max_rel, float(rel.max()))
    if (nan_g != nan_w).any():
        bad = nan_g != nan_w
        c.fail(_worst(what, g, w, bad, bad, f"NaN at {int(bad.sum())} positions that differ"))
        return
    bad_inf = (inf_g | inf_w) & ~((g64 == w64) | (nan_g & nan_w))
    if bad_inf.any():
        c.fail(_worst(what, g, w, bad_inf, bad_inf, f"{int(bad_inf.sum())} infinities differ"))
        return
    bad = finite & (err > atol + rtol * np.abs(w64))
    if bad.any():
        n = int(bad.sum())
        c.fail(_worst(what, g, w, bad, err, f"{n} of {w.size} elements beyond tolerance"))


def _worst(what, g, w, bad, score, summary) -> str:
    """``output i (type): summary; worst at [j, k]: got x, expected y``."""
    score = np.where(bad, np.asarray(score, dtype=np.float64), -1.0)
    at = np.unravel_index(int(np.argmax(score)), w.shape)
    where = f"[{', '.join(map(str, at))}]"
    return f"{what} ({_type(w)}): {summary}; worst at {where}: got {g[at]!s}, expected {w[at]!s}"


# -- stages ---------------------------------------------------------------------------------------
@dataclass
class Stage:
    """One step of the pipeline and how its results compare with the reference."""

    name: str  # "cse", "cse (round 2)", "fuse", "cpu"
    kind: str  # "traced", "pass", "fuse" or "backend"
    graph: Graph | None = None  # the graph after this stage (pass stages)
    size: str = ""  # "12 nodes", "2 kernels"
    changed: bool = True  # False: the pass gave back the same graph (not evaluated again)
    error: str = ""  # the pass raised, or left invalid IR
    comparison: Comparison | None = None
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)  # diverging stage: nodes removed/added, IR diff

    @property
    def ok(self) -> bool:
        return not self.error and (self.comparison is None or self.comparison.ok)

    def describe(self) -> dict:
        c = self.comparison
        return {
            "name": self.name,
            "kind": self.kind,
            "size": self.size,
            "changed": self.changed,
            "ok": self.ok,
            "error": self.error or None,
            "max_abs_err": None if c is None else c.max_abs,
            "max_rel_err": None if c is None else c.max_rel,
            "problem": None if c is None or c.ok else c.problem,
            "seconds": round(self.seconds, 4),
        }


def pipeline(names=None, backend: str = "cpu", custom_calls: bool = False):
    """``(passes first, passes per round, rounds, passes last, backend stages)``: the given pass
    names once, or ``mlc.jit``'s pipeline (``mlc.api._prepare``: the default passes repeated,
    then ``expand-pow`` for compiled backends)."""
    from mlc.ir.passes import DEFAULT_PIPELINE, MAX_ROUNDS
    from mlc.ir.passes.manager import get_pass, pipeline_names

    if names:
        names = pipeline_names(names)
        for n in names:
            get_pass(n)  # ValueError naming the known passes
        return [], names, 1, [], _backend_stages(backend)
    first = ["inline-calls"] if custom_calls else []
    last = ["expand-pow"] if backend != "numpy" else []
    return first, list(DEFAULT_PIPELINE), MAX_ROUNDS, last, _backend_stages(backend)


def _backend_stages(backend: str) -> list:
    return ["fuse", "cpu"] if backend == "cpu" else []


@dataclass
class BisectResult:
    """Every stage with its errors; ``first`` is the index of the first diverging stage."""

    name: str
    stages: list
    rtol: float | None = None
    atol: float | None = None
    trials: int = 1
    seed: int = 0
    inputs: list = field(default_factory=list)  # the input types, for the report

    @property
    def first(self) -> int | None:
        return next((i for i, s in enumerate(self.stages) if not s.ok), None)

    @property
    def diverged(self) -> bool:
        return self.first is not None

    def text(self) -> str:
        return format_text(self)

    def to_json(self) -> dict:
        first = self.first
        out = {
            "function": self.name,
            "inputs": self.inputs,
            "seed": self.seed,
            "trials": self.trials,
            "tolerances": _tolerance_table(self),
            "stages": [s.describe() for s in self.stages],
            "status": "diverged" if first is not None else "ok",
            "first_divergence": None,
        }
        if first is not None:
            s = self.stages[first]
            out["first_divergence"] = {"index": first, "stage": s.name, "kind": s.kind, **s.detail}
        return out


def bisect(
    graph: Graph,
    trials: list,
    passes=None,
    backend: str = "cpu",
    rtol: float | None = None,
    atol: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> BisectResult:
    """Run the pipeline on ``graph`` stage by stage; compare each stage's results on every list
    of input arrays in ``trials`` with the reference interpreter on ``graph``.

    ``passes``: pass names (a list or ``"a,b,c"``), run once in order; None runs ``mlc.jit``'s
    pipeline. ``backend``: "cpu" adds the fusion and compiled stages; "numpy" does not.
    """
    say = progress or (lambda msg: None)
    with np.errstate(all="ignore"):
        reference = [evaluate(graph, *xs) for xs in trials]
    custom = any(n.op == "custom_call" for n in graph.nodes())
    first, names, rounds, last, tail = pipeline(passes, backend, custom)
    stages = [Stage("traced", "traced", graph, _nodes(graph))]
    types = [str(p.type) for p in graph.inputs]
    result = BisectResult(graph.name, stages, rtol, atol, len(trials), inputs=types)
    check = functools.partial(_evaluate, trials=trials, reference=reference, rtol=rtol, atol=atol)

    def step(name: str, label: str) -> bool:
        """Run one pass as a stage; False when the pipeline cannot go on (the pass failed)."""
        say(f"pass {label}")
        stage = _run_pass(name, label, stages[-1].graph)
        stages.append(stage)
        if stage.changed and not stage.error:
            check(stage, lambda xs, g=stage.graph: evaluate(g, *xs))
        return not stage.error

    going = all(step(n, n) for n in first)
    for r in range(1, rounds + 1 if going else 1):
        start = len(stages)
        going = all(step(n, n if r == 1 else f"{n} (round {r})") for n in names)
        if not going or not any(s.changed for s in stages[start:]):
            break  # as PassManager(max_rounds=...): a round that changed nothing ends it
    going = going and all(step(n, n) for n in last)
    for name in tail if going else ():  # no graph to go on after a failed pass
        say(f"backend stage {name}")
        stage = _backend_stage(name, stages[-1].graph, check)
        stages.append(stage)
        if stage.error:
            break
    first_bad = result.first
    if first_bad is not None:
        stages[first_bad].detail = _explain(stages, first_bad)
    return result


def _run_pass(name: str, label: str, graph: Graph) -> Stage:
    from mlc.ir.passes.manager import get_pass
    from mlc.ir.passes.rewrite import same_graph
    from mlc.ir.verifier import verify

    start = time.perf_counter()
    try:
        new = get_pass(name)(graph)
    except Exception as e:
        where = _plugin_line(e)
        return Stage(label, "pass", graph, error=f"pass {name!r} raised {_exc(e)}{where}")
    if not isinstance(new, Graph):
        error = f"pass {name!r} returned {type(new).__name__}, not a Graph"
        return Stage(label, "pass", graph, error=error)
    stage = Stage(label, "pass", new, _nodes(new), changed=not same_graph(graph, new))
    try:
        verify(new)
    except Exception as e:
        stage.error = f"pass {name!r} left invalid IR: {e}"
    stage.seconds = time.perf_counter() - start
    return stage


def _backend_stage(name: str, graph: Graph, check) -> Stage:
    kind = "fuse" if name == "fuse" else "backend"
    start = time.perf_counter()
    try:
        if name == "fuse":
            from mlc.ir.passes.fusion import fuse

            plan = fuse(graph)
            plan.check()
            run = plan.evaluate
            size = _kernels(len(plan.fused_kernels), len(plan.library_calls))
        else:
            from mlc.backends.llvm.runtime import Executable

            run = Executable(graph)
            plan = run.plan
            size = _kernels(len(run.programs), len(run.plan.library_calls))
    except Exception as e:
        return Stage(name, kind, graph, error=f"the {name} stage raised {_exc(e)}")
    stage = Stage(name, kind, graph, size, detail={"plan": str(plan)})
    check(stage, lambda xs: run(*xs))
    stage.seconds += time.perf_counter() - start
    return stage


def _evaluate(stage: Stage, run, trials, reference, rtol, atol) -> None:
    """Run ``stage`` on every trial's inputs (fresh copies) and compare with the reference."""
    start = time.perf_counter()
    c = stage.comparison = Comparison()
    try:
        with np.errstate(all="ignore"):
            for xs, want in zip(trials, reference):
                got = run([np.array(x) for x in xs])
                compare([np.asarray(o) for o in got], want, rtol, atol, into=c)
    except Exception as e:
        stage.error = f"evaluating the {stage.name} stage raised {_exc(e)}"
    stage.seconds += time.perf_counter() - start


def _plugin_line(e: BaseException) -> str:
    """`` (at file:line)``: the innermost frame of the traceback outside mlc itself (the pass
    author's line), or ``""``."""
    import traceback

    from mlc.errors import _package_dirs

    ours = _package_dirs()
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(ours)]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _exc(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _kernels(kernels: int, library: int) -> str:
    text = f"{kernels} kernel{'s' if kernels != 1 else ''}"
    return text + (f" + {library} lib" if library else "")


def _nodes(g: Graph) -> str:
    return f"{len(g.nodes())} nodes"


# -- explaining the first divergence --------------------------------------------------------------
def node_lines(g: Graph) -> dict:
    """``id(node) -> "%k: type = op(args)"`` with ``print_graph``'s numbering, plus its source
    line."""
    names: dict[int, str] = {}
    lines: dict[int, str] = {}
    for n in g.nodes():
        name = names[id(n)] = f"%{len(names)}"
        args = [names[id(i)] for i in n.inputs]
        args += [f"{k}={format_attr(v)}" for k, v in n.attrs]
        text = f"{name}: {n.type} = {n.op}({', '.join(args)})"
        if n.loc is not None:
            text += f"  at {n.loc}"
        lines[id(n)] = text
    return lines


def graph_diff(before: Graph, after: Graph, label: str) -> dict:
    """What a pass did. ``removed`` and ``added``: node lines by structural identity (so
    renumbering is no change), leaving out ``rebuilt`` nodes: the same op, attributes, type and
    source line on new inputs (every consumer of a rewritten node is one). ``diff``: a unified
    diff of the printed IR without source locations."""
    old, new = node_lines(before), node_lines(after)
    removed = [n for n in before.nodes() if id(n) not in new]
    added = [n for n in after.nodes() if id(n) not in old]
    fresh = {id(n) for n in added}

    def twin(n, m) -> bool:  # m is n on new inputs: each kept input kept, each other one new
        same = (n.op, n.attrs, n.type, n.loc, len(n.inputs))
        if same != (m.op, m.attrs, m.type, m.loc, len(m.inputs)):
            return False
        return all(a is b if id(a) in new else id(b) in fresh for a, b in zip(n.inputs, m.inputs))

    rebuilt: set[int] = set()
    for n in removed:
        m = next((m for m in added if id(m) not in rebuilt and twin(n, m)), None)
        if m is not None:
            rebuilt.update((id(n), id(m)))
    diff = difflib.unified_diff(
        print_graph(before, locs=False).splitlines(),
        print_graph(after, locs=False).splitlines(),
        f"before {label}",
        f"after {label}",
        lineterm="",
    )
    return {
        "removed": [old[id(n)] for n in removed if id(n) not in rebuilt],
        "added": [new[id(n)] for n in added if id(n) not in rebuilt],
        "rebuilt": len(rebuilt) // 2,
        "diff": list(diff),
    }


def _explain(stages: list, i: int) -> dict:
    s = stages[i]
    out = {"problem": s.error or (s.comparison.problem if s.comparison else "")}
    if s.kind == "pass" and s.graph is not None:
        out.update(graph_diff(stages[i - 1].graph, s.graph, s.name))
    elif "plan" in s.detail:
        out["plan"] = s.detail["plan"]
    return out


# -- the report -----------------------------------------------------------------------------------
def _tolerance_table(r: BisectResult) -> dict:
    graph = r.stages[0].graph
    dts = sorted({o.dtype.name for o in graph.outputs if o.dtype.kind == "f"})
    return {d: dict(zip(("rtol", "atol"), tolerance(d, r.rtol, r.atol))) for d in dts}


def _num(x) -> str:
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:.3g}"


def format_text(r: BisectResult) -> str:
    tol = ", ".join(
        f"{d} rtol={t['rtol']:g} atol={t['atol']:g}" for d, t in _tolerance_table(r).items()
    )
    trials = f"{r.trials} trial{'s' if r.trials != 1 else ''}, seed {r.seed}"
    lines = [f"bisect @{r.name}({', '.join(r.inputs)}): {trials}" + (f"; {tol}" if tol else "")]
    width = max(len(s.name) for s in r.stages)
    size = max(len(s.size) for s in r.stages)
    lines.append(f"  {'#':>2}  {'stage':<{width}}  {'size':>{size}}  {'max abs err':>11}  "
                 f"{'max rel err':>11}  result")  # fmt: skip
    first = r.first
    for i, s in enumerate(r.stages):
        c = s.comparison
        if s.kind == "traced":
            verdict = "reference"
        elif s.error:
            verdict = "ERROR"
        elif not s.changed:
            verdict = "unchanged"
        else:
            verdict = "ok" if c.ok else "DIVERGED"
        if i == first:
            verdict += "  <-- first divergence"
        abs_, rel = (c.max_abs, c.max_rel) if c is not None else (None, None)
        lines.append(f"  {i:>2}  {s.name:<{width}}  {s.size:>{size}}  {_num(abs_):>11}  "
                     f"{_num(rel):>11}  {verdict}")  # fmt: skip
    if first is None:
        lines.append("no stage diverged: every stage matches the reference within tolerance")
        return "\n".join(lines) + "\n"
    s = r.stages[first]
    d = s.detail
    what = f"pass {s.name!r}" if s.kind == "pass" else f"the {s.name} stage"
    lines.append(f"first divergence: after {what} (stage {first})")
    lines.append(f"  {d['problem']}")
    for key, title in (("removed", "nodes removed"), ("added", "nodes added")):
        if d.get(key):
            lines.append(f"  {title} by {s.name}:")
            lines += [f"    {ln}" for ln in d[key]]
    if d.get("rebuilt"):
        k = d["rebuilt"]
        lines.append(f"  and {k} node{'s' if k != 1 else ''} rebuilt on new inputs (consumers)")
    if d.get("diff"):
        diff = d["diff"]
        lines.append("  IR diff:")
        lines += [f"    {ln}" for ln in diff[:DIFF_LINES]]
        if len(diff) > DIFF_LINES:
            lines.append(f"    ... {len(diff) - DIFF_LINES} more lines (--json has them all)")
    if d.get("plan"):
        lines.append("  the fusion plan it ran:")
        lines += [f"    {ln}" for ln in d["plan"].splitlines()]
    return "\n".join(lines) + "\n"


# -- the command ----------------------------------------------------------------------------------
def _trace(a) -> Graph:
    """Trace ``FILE.py:FUNC`` on the ``--arg`` types after ``--transform``, as ``mlc graph``
    does, but without optimizing: the traced graph is the reference."""
    import mlc
    from mlc.cli import CLIError, _static, load_function, parse_arg_type

    fn = load_function(a.target)
    types = [parse_arg_type(t) for t in a.arg or ()]
    static = _static(a.static)
    name = getattr(fn, "__name__", "f")
    if static:
        fn = functools.partial(fn, **static)
    if a.transform == "grad":
        fn = mlc.grad(fn)
    elif a.transform == "vmap":
        fn = mlc.vmap(fn)
    try:
        return mlc.trace(fn, *types, name=name)
    except (TypeError, ValueError, NotImplementedError):
        raise  # mlc's own errors name the problem and the line: the CLI prints them
    except Exception as e:
        raise CLIError(f"tracing {a.target} failed: {_exc(e)}") from None


def cmd_bisect(a) -> str:
    """The ``bisect`` subcommand: returns the report; sets ``a.exit_status`` (1: diverged)."""
    from mlc.cli import CLIError

    plugins.load_plugins(a.plugin)
    if a.trials < 1:
        raise CLIError(f"--trials must be at least 1, got {a.trials}")
    if a.passes:
        try:
            pipeline(a.passes, a.backend)
        except ValueError as e:
            raise CLIError(str(e)) from None
    progress = _progress(a)
    progress(f"tracing {a.target}")
    graph = _trace(a)
    trials = [random_inputs(graph, a.seed + t) for t in range(a.trials)]
    result = bisect(graph, trials, a.passes or None, a.backend, a.rtol, a.atol, progress)
    result.seed = a.seed
    result.inputs = [str(p.type) for p in graph.inputs]
    a.exit_status = 1 if result.diverged else 0
    if a.json:
        return json.dumps(result.to_json(), indent=2) + "\n"
    return result.text()


def _progress(a):
    if a.quiet:
        return lambda msg: None
    start = time.perf_counter()

    def say(msg):  # silent for the first PROGRESS_AFTER seconds: fast runs print nothing
        elapsed = time.perf_counter() - start
        if elapsed >= PROGRESS_AFTER:
            print(f"mlc bisect: [{elapsed:5.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def add_parser(subparsers):
    """Add the ``bisect`` subcommand to the ``mlc`` CLI's subparsers."""
    from mlc.cli import TRANSFORMS

    b = subparsers.add_parser(
        "bisect", help="run the pipeline pass by pass on random inputs; name the pass that "
        "changed the results"
    )  # fmt: skip
    b.add_argument("target", metavar="FILE.py:FUNC")
    b.add_argument("--arg", action="append", help="an argument type, e.g. 'f32[64,784]'")
    b.add_argument("--static", action="append", help="a static argument, name=value")
    b.add_argument("--transform", choices=TRANSFORMS, default="none")
    b.add_argument(
        "--passes",
        default="",
        help="comma-separated passes to bisect, run once in order (default: the pipeline "
        "mlc.jit runs)",
    )
    plugins.add_argument(b)
    b.add_argument("--backend", choices=("cpu", "numpy"), default="cpu")
    b.add_argument("--rtol", type=float, help="relative tolerance (default: per dtype)")
    b.add_argument("--atol", type=float, help="absolute tolerance (default: per dtype)")
    b.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    b.add_argument("--trials", type=int, default=3, help="random input sets (default 3)")
    b.add_argument("--json", action="store_true", help="the report as JSON")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    b.set_defaults(run=cmd_bisect, output=None)
    return b


def main(argv=None) -> int:
    """``python -m mlc.bisect FILE.py:FUNC ...``: the command on its own, for before ``mlc``
    registers it (same parser, same errors, same exit statuses)."""
    import argparse

    from mlc.cli import CLIError

    parser = argparse.ArgumentParser(prog="mlc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bisect", *(sys.argv[1:] if argv is None else argv)])
    try:
        text = args.run(args)
    except (CLIError, ValueError, TypeError, NotImplementedError) as e:
        print(f"mlc bisect: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return args.exit_status


if __name__ == "__main__":
    sys.exit(main())
