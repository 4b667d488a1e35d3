"""Golden IR tests for the passes (the FileCheck habit of MLIR and xDSL).

Each ``tests/golden/*.mlc`` file holds the command, the input and the expected output:

    # RUN: passes=cse,simplify
    # free comment lines saying what the case shows
    func @f(%0: f32[3]) -> (f32[3]) {
      ...
    }
    # CHECK: func @f(%0: f32[3]) -> (f32[3]) {
    # CHECK:   ...
    # CHECK: }

Every line starting with ``#`` is a comment to the IR parser, so a golden file is also valid
input for ``mlc opt``. The runner parses the input, runs the passes (verifying the IR after each
one), and compares the printed result, without source locations, with the ``# CHECK:`` lines
exactly. It also checks that the graph before and after computes the same numbers, bit for bit,
on random inputs with NaN, inf and -0.0. ``MLC_UPDATE_GOLDEN=1`` rewrites the expectations (then
read the diff before committing it).
"""

import os
import pathlib

import numpy as np
import pytest
from mlc.ir import evaluate, parse, print_graph
from mlc.ir.passes import run_passes

from tests.test_passes import assert_bitwise_same, special_array

GOLDEN = pathlib.Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.mlc"))
RUN = "# RUN: passes="
CHECK = "# CHECK:"


def read_case(path):
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith(RUN):
        raise ValueError(f"{path.name}: the first line must be '{RUN}a,b,c'")
    names = lines[0][len(RUN) :].strip()
    source = [ln for ln in lines if not ln.startswith(CHECK)]
    expected = [ln[len(CHECK) :].removeprefix(" ") for ln in lines if ln.startswith(CHECK)]
    return names, "\n".join(source) + "\n", "\n".join(expected) + "\n" if expected else ""


def write_expectation(path, source, text):
    checks = "".join(f"{CHECK} {ln}".rstrip() + "\n" for ln in text.splitlines())
    path.write_text(source.rstrip("\n") + "\n" + checks)


def test_there_are_golden_files():
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden(path):
    names, source, expected = read_case(path)
    graph = parse(source, file=str(path))
    out = run_passes(graph, names, verify=True)
    text = print_graph(out, locs=False)
    if os.environ.get("MLC_UPDATE_GOLDEN"):
        write_expectation(path, source, text)
    else:
        assert expected, f"{path.name} has no '{CHECK}' lines (run with MLC_UPDATE_GOLDEN=1)"
        assert text == expected, f"{path.name}: passes {names} gave\n{text}\nexpected\n{expected}"
    rng = np.random.default_rng(len(source))
    for _ in range(3):
        args = [special_array(rng, p.shape, p.dtype) for p in graph.inputs]
        for got, want in zip(evaluate(out, *args), evaluate(graph, *args)):
            assert_bitwise_same(got, want)


def test_expectations_parse_back():
    """The expected IR is itself valid IR that prints back to the same text."""
    for path in FILES:
        _, _, expected = read_case(path)
        assert print_graph(parse(expected), locs=False) == expected, path.name
