"""docs/writing-a-pass.md runs: its files are the files, its commands give its output.

The tests read the markdown itself, so the page cannot go stale:

- a fenced block right after ``<!-- file: PATH -->`` must equal that file;
- in a ``console`` block, each ``$ `` line is a command run with bash from the repository root
  (``mlc`` is ``python -m mlc.cli``, or ``MLC_TUTORIAL_MLC``), and the lines after it are
  expected output: each must match a line of the output, in order (other lines may come in
  between). In an expected line, ``...`` matches anything, a float literal matches any number
  and a run of spaces any run of spaces. A trailing ``# exit status N`` gives the exit status
  (0 otherwise). A command that uses a subcommand or option the CLI does not have yet is
  skipped, naming it;
- the golden file ``examples/passes/expfuse.mlc`` is run like ``tests/golden/*.mlc``
  (``MLC_UPDATE_GOLDEN=1`` rewrites its ``# CHECK:`` lines), with a float32 tolerance instead
  of bit-exactness: the pass is not exact by design.
"""

import functools
import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from mlc.ir import evaluate, parse, print_graph
from mlc.ir.passes import run_passes

from mlc import plugins
from tests.test_golden import read_case, write_expectation

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "writing-a-pass.md"
EXAMPLES = ROOT / "examples" / "passes"
FILE_MARK = re.compile(r"<!-- file: (\S+) -->")
EXIT = re.compile(r"\s+# exit status (\d+)\s*$")
FLOAT = r"-?(?:\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+|nan|inf)"


def fenced_blocks(text):
    """``(info, body, file)`` for each fenced block; ``file`` from a preceding file marker."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        info = lines[i][3:].strip()
        mark = FILE_MARK.fullmatch(lines[i - 1].strip()) if i else None
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        out.append((info, "\n".join(lines[i + 1 : j]) + "\n", mark.group(1) if mark else None))
        i = j + 1
    return out


def console_commands(text):
    """``(command, expected lines)`` for every ``$`` line of the console blocks."""
    out = []
    for info, body, _ in fenced_blocks(text):
        if info != "console":
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out:
                out[-1][1].append(line)
    return out


BLOCKS = fenced_blocks(DOC.read_text())
COMMANDS = console_commands(DOC.read_text())


def line_pattern(expected: str) -> re.Pattern:
    parts = re.split(rf"(\.\.\.|{FLOAT}|\s+)", expected.strip())
    regex = []
    for p in parts:
        if p == "...":
            regex.append(".*")
        elif not p:
            continue
        elif p.isspace():
            regex.append(r"\s+")
        elif re.fullmatch(FLOAT, p):
            regex.append(FLOAT.replace("-?", "[-+]?", 1) + "|0")
            regex[-1] = f"(?:{regex[-1]})"
        else:
            regex.append(re.escape(p))
    return re.compile("".join(regex))


def assert_output_matches(expected: list, output: str, command: str):
    actual = [ln.strip() for ln in output.splitlines()]
    i = 0
    for want in expected:
        if not want.strip() or want.strip() == "...":
            continue
        pattern = line_pattern(want)
        while i < len(actual) and not pattern.fullmatch(actual[i]):
            i += 1
        assert i < len(actual), f"`{command}`: no line matching {want!r} (in order) in\n{output}"
        i += 1


# -- the files shown are the files ----------------------------------------------------------------
def test_every_example_file_is_shown_verbatim():
    shown = {f: body for _, body, f in BLOCKS if f}
    assert set(shown) == {
        "examples/passes/expfuse.py",
        "examples/passes/model.py",
        "examples/passes/expfuse.mlc",
    }
    for path, body in shown.items():
        assert (ROOT / path).read_text() == body, f"{path} differs from the block in {DOC.name}"


def test_the_pass_is_under_30_lines():
    source = (EXAMPLES / "expfuse.py").read_text()
    code = source.split('"""', 2)[2]  # after the module docstring
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) < 30, len(lines)


def test_the_tutorial_shows_every_subcommand():
    used = {shlex.split(c)[1] for c, _ in COMMANDS}
    assert {"passes", "opt", "graph", "bisect"} <= used


# -- every command runs and prints what the page says -------------------------------------------
@functools.cache
def mlc_prefix() -> str:
    return os.environ.get("MLC_TUTORIAL_MLC") or f"{shlex.quote(sys.executable)} -m mlc.cli"


@functools.cache
def help_text(sub: str) -> str | None:
    r = subprocess.run(
        f"{mlc_prefix()} {sub} --help", shell=True, capture_output=True, text=True, cwd=ROOT
    )
    return r.stdout if r.returncode == 0 else None


def missing_feature(command: str) -> str | None:
    """What the CLI lacks to run ``command`` (a subcommand or an option), or None."""
    words = shlex.split(command, comments=True)
    sub = words[1]
    text = help_text(sub)
    if text is None:
        return f"`mlc {sub}` is not a subcommand yet"
    for w in words[2:]:
        opt = w.split("=")[0]
        if opt.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(opt)}\b", text):
            return f"`mlc {sub}` has no {opt} option yet"
    return None


@pytest.mark.parametrize("command,expected", COMMANDS, ids=[c[:70] for c, _ in COMMANDS])
def test_command(command, expected):
    assert command.startswith("mlc "), command
    missing = missing_feature(command)
    if missing:
        pytest.skip(missing + " (wire it in mlc/cli.py)")
    m = EXIT.search(command)
    status = int(m.group(1)) if m else 0
    line = mlc_prefix() + command[len("mlc") :]
    r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == status, f"`{command}` exited {r.returncode}:\n{r.stdout}{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    assert_output_matches(expected, r.stdout, command)


def test_line_patterns():
    assert line_pattern("1  expfuse   6 nodes  2.38e-07  0.000256  ok").fullmatch(
        "1  expfuse  6 nodes  0  1.5e-07  ok"
    )
    assert not line_pattern("first divergence: after pass 'x' (stage 2)").fullmatch(
        "first divergence: after pass 'x' (stage 3)"
    )
    assert line_pattern("worst at ...: got 2.5, expected inf").fullmatch(
        "worst at [3]: got -1.25, expected inf"
    )


# -- the golden file -------------------------------------------------------------------------------
def test_golden_expfuse():
    path = EXAMPLES / "expfuse.mlc"
    plugins.load_plugin(str(EXAMPLES / "expfuse.py"))
    names, source, expected = read_case(path)
    graph = parse(source, file=str(path))
    out = run_passes(graph, names, verify=True)
    text = print_graph(out, locs=False)
    if os.environ.get("MLC_UPDATE_GOLDEN"):
        write_expectation(path, source, text)
    else:
        assert text == expected, f"passes {names} gave\n{text}\nexpected\n{expected}"
    rng = np.random.default_rng(0)
    for _ in range(3):
        args = [rng.standard_normal(p.shape).astype(p.dtype) for p in graph.inputs]
        for got, want in zip(evaluate(out, *args), evaluate(graph, *args)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
