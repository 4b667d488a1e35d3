"""The `mlc` console script, run as a user would: a subprocess on real files."""

import subprocess
import sys
import textwrap

import pytest


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlc.cli", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(
        textwrap.dedent(
            """
            import numpy as np

            def layer(x, w):
                return np.tanh(x @ w) * 1.0
            """
        )
    )
    return path


def test_graph_traced_and_optimized(model, tmp_path):
    r = run(
        "graph", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[3,2]", "--stage", "traced"
    )
    assert r.returncode == 0, r.stderr
    assert "dot_general" in r.stdout and "mul" in r.stdout and "model.py" in r.stdout
    out = tmp_path / "g.mlc"
    r = run("graph", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[3,2]", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "mul" not in out.read_text()  # x * 1.0 simplified away


def test_opt_reads_ir_and_runs_passes(model, tmp_path):
    traced = tmp_path / "in.mlc"
    r = run(
        "graph", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[3,2]", "--stage", "traced"
    )
    traced.write_text(r.stdout)
    r = run("opt", str(traced), "--passes", "simplify,dce", "--print-after-all", "--verify-each")
    assert r.returncode == 0, r.stderr
    assert "// after simplify" in r.stdout and "tanh" in r.stdout
    assert r.stdout.rstrip().endswith("}")


def test_graph_fused_and_kernels_stages_and_transforms(model):
    base = ["graph", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[3,2]"]
    r = run(*base, "--stage", "fused")
    assert r.returncode == 0, r.stderr
    assert "1 kernels, 1 library calls" in r.stdout and "dot_general" in r.stdout
    r = run(*base, "--stage", "kernels")
    assert r.returncode == 0, r.stderr
    assert "library dot_general_0" in r.stdout and "kernel tanh_0" in r.stdout
    vm = ["graph", f"{model}:layer", "--arg", "f32[5,4,3]", "--arg", "f32[5,3,2]"]
    r = run(*vm, "--transform", "vmap", "--stage", "optimized")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("dot_general") == 1 and "batch=((0,), (0,))" in r.stdout
    r = run(*base, "--transform", "grad")
    assert r.returncode == 2 and "jacrev" in r.stderr  # grad of a non-scalar: says what to use


def test_explain_text_and_json(model):
    import json

    base = ["explain", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[3,2]"]
    r = run(*base)
    assert r.returncode == 0, r.stderr
    assert "library call" in r.stdout and "model.py" in r.stdout
    r = run(*base, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [k["kind"] for k in data["kernels"]] == ["library", "pointwise"]
    assert {u["reason"] for u in data["unfused"]} == {"library call"}
    r = run("explain", f"{model}:layer", "--arg", "f32[4,3]", "--arg", "f32[4,2]")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_passes_lists_registered_passes():
    r = run("passes")
    assert r.returncode == 0
    for name in ("cse", "dce", "fold", "simplify"):
        assert name in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["graph", "nofile.py:f"], "no such file"),
        (["graph", "justafile"], "expected FILE.py:FUNC"),
        (["graph", "{model}:missing"], "has no function 'missing'"),
        (["graph", "{model}:layer", "--arg", "f32(4)"], "malformed --arg"),
        (["graph", "{model}:layer", "--arg", "c64[2]"], "malformed --arg"),
        (["opt", "{bad}", "--passes", "simplify"], ":2:"),
        (["opt", "{good}", "--passes", "nosuchpass"], "nosuchpass"),
    ],
)
def test_errors_exit_nonzero_without_traceback(args, message, model, tmp_path):
    bad = tmp_path / "bad.mlc"
    bad.write_text("func @f(%0: f32[2]) -> (f32[2]) {\n  %1: f32[2] = frob(%0)\n  return %1\n}\n")
    good = tmp_path / "good.mlc"
    good.write_text("func @f(%0: f32[2]) -> (f32[2]) {\n  return %0\n}\n")
    args = [a.format(model=model, bad=bad, good=good) for a in args]
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
