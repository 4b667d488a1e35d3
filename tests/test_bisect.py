"""`mlc bisect`: finds the pass that changed the numbers, and says nothing when none did.

In-process tests call ``mlc.bisect.bisect`` on traced graphs; the CLI tests run the command as a
subprocess on real files, through ``python -m mlc.bisect`` (the command on its own) and, once
``mlc/cli.py`` registers it, through ``python -m mlc.cli bisect`` too.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlc.ir import Graph
from mlc.ir.passes import PASSES, register_pass

import mlc
from mlc import plugins
from mlc.bisect import bisect, compare, random_inputs

ROOT = pathlib.Path(__file__).resolve().parents[1]
BROKEN = ROOT / "examples" / "passes" / "broken.py"

MODEL = """
import numpy as np

def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))

def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

def mlp(x, w1, b1, w2):
    h = np.maximum(x @ w1 + b1, 0.0)
    z = h @ w2
    return z - np.log(np.exp(z).sum(-1, keepdims=True))

def f(x, y):
    return np.exp(x) * y + 1.0

def scale(x, k):
    return x * k
"""
namespace: dict = {}
exec(compile(MODEL, "model.py", "exec"), namespace)  # the same functions, in this process


# -- passes that go wrong in different ways (registered once, by name) -------------------------
def _register(name, description):
    def deco(fn):
        if name not in PASSES:
            register_pass(name, description)(fn)
        return fn

    return deco


@_register("test-raises", "a pass that raises")
def _raises(graph):
    raise RuntimeError("something broke in the pass")


@_register("test-swaps-params", "a pass that leaves invalid IR (parameters out of order)")
def _swaps(graph):
    return Graph(graph.inputs[::-1], graph.outputs, graph.name)


@_register("test-not-a-graph", "a pass that forgets to return the graph")
def _forgets(graph):
    return None


def trials_for(graph, n=2):
    return [random_inputs(graph, seed) for seed in range(n)]


# -- the real pipeline does not diverge ----------------------------------------------------------
CASES = {
    "gelu": [np.zeros((16, 32), np.float32)],
    "softmax": [np.zeros((8, 50), np.float32)],
    "mlp": [
        np.zeros((8, 16), np.float32),
        np.zeros((16, 12), np.float32),
        np.zeros(12, np.float32),
        np.zeros((12, 5), np.float32),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_pipeline_does_not_diverge(name):
    g = mlc.trace(namespace[name], *CASES[name])
    r = bisect(g, trials_for(g))
    assert not r.diverged, r.text()
    names = [s.name for s in r.stages]
    assert names[:5] == ["traced", "cse", "fold", "simplify", "dce"]
    assert names[-3:] == ["expand-pow", "fuse", "cpu"]
    cpu = r.stages[-1].comparison
    assert cpu is not None and cpu.ok and cpu.max_abs < 1e-4
    assert "no stage diverged" in r.text()


def test_float64_and_numpy_backend_stop_after_the_passes():
    g = mlc.trace(namespace["gelu"], np.zeros(100))
    r = bisect(g, trials_for(g), backend="numpy")
    assert not r.diverged
    assert [s.kind for s in r.stages][-1] == "pass"
    assert "expand-pow" not in [s.name for s in r.stages]  # only compiled backends run it


def test_custom_calls_are_inlined_first():
    @mlc.custom_vjp
    def twice(x):
        return x * 2.0

    twice.defvjp(lambda x: (x * 2.0, None), lambda res, ct: (ct * 2.0,))
    g = mlc.trace(lambda x: twice(x) + 1.0, np.zeros(3, np.float32))
    r = bisect(g, trials_for(g), backend="numpy")
    assert r.stages[1].name == "inline-calls" and r.stages[1].changed
    assert not r.diverged


# -- a broken pass is found and named ------------------------------------------------------------
def test_finds_the_broken_pass_and_shows_what_it_did():
    plugins.load_plugin(str(BROKEN))
    g = mlc.trace(namespace["f"], np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))
    r = bisect(g, trials_for(g), passes="cse,bad-simplify,dce")
    assert r.diverged
    bad = r.stages[r.first]
    assert bad.name == "bad-simplify" and bad.kind == "pass"
    assert [s.ok for s in r.stages[: r.first]] == [True] * r.first
    # exp(x) went, x + 1 came (its splat 1.0 is the user's own, shared by hash-consing);
    # exp(x) * y and (...) + 1.0 are the same ops on new inputs.
    assert [ln.split(" = ")[1] for ln in bad.detail["removed"]] == ["exp(%0)  at model.py:17"]
    assert [ln.split(" = ")[1] for ln in bad.detail["added"]] == ["add(%0, %3)  at model.py:17"]
    assert bad.detail["rebuilt"] == 2
    assert any(ln.startswith("-") and "exp(" in ln for ln in bad.detail["diff"])
    assert "beyond tolerance" in bad.detail["problem"]
    text = r.text()
    assert "first divergence: after pass 'bad-simplify' (stage 2)" in text
    assert "DIVERGED  <-- first divergence" in text
    assert r.stages[-1].name == "cpu" and not r.stages[-1].ok  # later stages still measured
    data = r.to_json()
    assert data["status"] == "diverged" and data["first_divergence"]["stage"] == "bad-simplify"
    json.dumps(data)  # serializable


def test_same_pass_list_without_the_bug_is_clean():
    g = mlc.trace(namespace["f"], np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))
    r = bisect(g, trials_for(g), passes=["cse", "simplify", "dce"])
    assert not r.diverged
    assert [s.name for s in r.stages] == ["traced", "cse", "simplify", "dce", "fuse", "cpu"]


@pytest.mark.parametrize(
    "name,message",
    [
        ("test-raises", "pass 'test-raises' raised RuntimeError: something broke in the pass"),
        ("test-swaps-params", "pass 'test-swaps-params' left invalid IR"),
        ("test-not-a-graph", "returned NoneType, not a Graph"),
    ],
)
def test_a_pass_that_fails_is_the_divergence(name, message):
    g = mlc.trace(namespace["f"], np.zeros(3, np.float32), np.zeros(3, np.float32))
    r = bisect(g, trials_for(g), passes=f"cse,{name},dce")
    assert r.diverged and r.stages[r.first].name == name
    assert message in r.stages[r.first].error
    assert r.stages[-1].name == name  # nothing to run after it
    assert message in r.text()


def test_pass_error_names_the_pass_authors_line():
    g = mlc.trace(namespace["f"], np.zeros(3, np.float32), np.zeros(3, np.float32))
    r = bisect(g, trials_for(g), passes="test-raises")
    assert f"(at {__file__}:" in r.stages[1].error


def test_divergence_in_the_compiled_code_is_the_cpu_stage(monkeypatch):
    from mlc.backends.llvm import runtime

    real = runtime.Executable.__call__
    monkeypatch.setattr(
        runtime.Executable, "__call__", lambda self, *xs: [o + 1 for o in real(self, *xs)]
    )
    g = mlc.trace(namespace["softmax"], np.zeros((4, 8), np.float32))
    r = bisect(g, trials_for(g))
    assert r.stages[r.first].name == "cpu"
    assert "fusion of @softmax" in r.stages[r.first].detail["plan"]
    assert "first divergence: after the cpu stage" in r.text()


def test_tolerances_can_be_tightened():
    # expand-pow turns x**3 into x*x*x: within the default float32 tolerance, not bit-exact.
    g = mlc.trace(lambda x: x**3, np.zeros(1000, np.float32))
    assert not bisect(g, trials_for(g), backend="numpy").diverged
    r = bisect(g, trials_for(g), passes="expand-pow", backend="numpy", rtol=0, atol=0)
    assert r.stages[r.first].name == "expand-pow"


# -- comparing results --------------------------------------------------------------------------
def test_compare_rules():
    f = np.float32
    assert compare([f([1, np.nan, np.inf])], [f([1, np.nan, np.inf])]).ok
    assert not compare([f([1, 2])], [f([1, np.nan])]).ok  # NaN in different places
    assert not compare([f([np.inf])], [f([-np.inf])]).ok
    assert not compare([f([1, 2])], [np.float64([1, 2])]).ok  # dtype
    assert not compare([f([1, 2])], [f([[1, 2]])]).ok  # shape
    assert not compare([f([1])], [f([1]), f([2])]).ok  # number of outputs
    assert not compare([np.int32([1, 2])], [np.int32([1, 3])]).ok  # integers exactly
    assert compare([f([1.00001])], [f([1])]).ok  # default float32 tolerance
    assert not compare([f([1.00001])], [f([1])], rtol=0, atol=0).ok
    c = compare([np.float64([1.5, 4])], [np.float64([1, 4])])
    assert (c.ok, c.max_abs, c.max_rel) == (False, 0.5, 0.5)
    assert "1 of 2 elements beyond tolerance; worst at [0]: got 1.5, expected 1.0" in c.problem


def test_random_inputs_are_seeded_and_typed():
    g = mlc.trace(
        lambda x, i, b: x, np.zeros((3, 2), np.float32), np.zeros(5, np.int64), np.zeros(4, bool)
    )
    a, b = random_inputs(g, 7), random_inputs(g, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert [x.dtype for x in a] == [np.float32, np.int64, np.bool_]
    assert a[1].min() >= 0 and a[1].max() <= 4
    assert not np.array_equal(random_inputs(g, 8)[0], a[0])


# -- the command, as a user runs it ------------------------------------------------------------
def launcher(*args):
    """``python -m mlc.bisect``: the command on its own (same parser and exit statuses)."""
    return [sys.executable, "-m", "mlc.bisect", *args]


def wired(*args):
    return [sys.executable, "-m", "mlc.cli", "bisect", *args]


def _wired_available() -> bool:
    r = subprocess.run(wired("--help"), capture_output=True, text=True, cwd=ROOT)
    return r.returncode == 0


WIRED = pytest.mark.skipif(
    not _wired_available(), reason="mlc/cli.py does not register `bisect` yet"
)
RUNNERS = [launcher, pytest.param(wired, marks=WIRED)]


def run(cmd, *args):
    return subprocess.run(cmd(*map(str, args)), capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


@pytest.mark.parametrize("cmd", RUNNERS)
def test_cli_finds_the_broken_pass(cmd, model):
    args = [f"{model}:f", "--arg", "f32[8,4]", "--arg", "f32[8,4]", "--plugin", BROKEN]
    r = run(cmd, *args, "--passes", "cse,bad-simplify,dce")
    assert r.returncode == 1, r.stderr
    assert "first divergence: after pass 'bad-simplify'" in r.stdout
    assert "Traceback" not in r.stderr
    r = run(cmd, *args, "--passes", "cse,bad-simplify,dce", "--json", "--trials", "1")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert data["first_divergence"]["stage"] == "bad-simplify" and data["trials"] == 1
    assert [s["name"] for s in data["stages"]][:3] == ["traced", "cse", "bad-simplify"]


@pytest.mark.parametrize("cmd", RUNNERS)
def test_cli_real_pipeline_is_clean(cmd, model):
    args = ["--arg", "f32[16,12]", "--arg", "f32[12,8]", "--arg", "f32[8]", "--arg", "f32[8,3]"]
    r = run(cmd, f"{model}:mlp", *args, "--seed", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no stage diverged" in r.stdout and "cpu" in r.stdout


def test_cli_static_transform_and_backend(model):
    r = run(launcher, f"{model}:scale", "--arg", "f64[5]", "--static", "k=3", "--backend", "numpy")
    assert r.returncode == 0, r.stderr
    assert "cpu" not in r.stdout and "@scale(f64[5])" in r.stdout
    r = run(launcher, f"{model}:softmax", "--arg", "f64[3,4]", "--transform", "vmap", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_cli_a_pass_that_raises_exits_1_naming_it(model, tmp_path):
    plugin = tmp_path / "raising.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from mlc.ir.passes import register_pass

            @register_pass("explodes", "raises")
            def explodes(graph):
                raise KeyError("oops")
            """
        )
    )
    r = run(launcher, f"{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--plugin", plugin,
            "--passes", "cse,explodes")  # fmt: skip
    assert r.returncode == 1
    assert "pass 'explodes' raised KeyError: 'oops'" in r.stdout
    assert f"{plugin}:6" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("cmd", RUNNERS)
@pytest.mark.parametrize(
    "args,message",
    [
        (["nofile.py:f"], "no such file"),
        (["justafile"], "expected FILE.py:FUNC"),
        (["{model}:missing"], "has no function 'missing'"),
        (["{model}:f", "--arg", "f32(4)"], "malformed --arg"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--passes", "cse,nosuch"],
         "unknown pass 'nosuch'"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--plugin", "{bad_plugin}"],
         "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--plugin", "missing_plugin.py"],
         "cannot load plugin 'missing_plugin.py': no such file"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--plugin", "no.such.module"],
         "cannot load plugin 'no.such.module': no such module"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[4]"], "broadcast"),
        (["{model}:f", "--arg", "f32[3]", "--arg", "f32[3]", "--trials", "0"], "--trials"),
    ],
)  # fmt: skip
def test_cli_user_errors_exit_2_with_one_line(cmd, args, message, model, tmp_path):
    bad_plugin = tmp_path / "bad_plugin.py"
    bad_plugin.write_text("import os\nimport no_such_module_xyz\n")
    args = [a.format(model=model, bad_plugin=bad_plugin) for a in args]
    r = run(cmd, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    if "bad_plugin" in message or "no_such_module" in message:
        assert f"{bad_plugin}:2" in r.stderr  # the plugin's line that failed
