"""The IR front end: printer/parser round trip, parse errors, the verifier, networkx, docs.

Run ``python -m tests.test_ir`` (or set MLC_REGEN_DOCS=1 for pytest) to rewrite the primitive
table in docs/ir.md after adding or changing a primitive.
"""

import gc
import inspect
import os
import pathlib
import re
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlc.ir import (
    PRIMITIVES,
    Graph,
    Node,
    ParseError,
    Primitive,
    TensorType,
    VerifyError,
    evaluate,
    from_networkx,
    parse,
    print_graph,
    to_networkx,
    verify,
)
from mlc.ir import primitives as P
from mlc.ir.verifier import check_round_trip

import mlc
import mlc.numpy as mnp
from tests.conformance import arrays, broadcast_shapes, shapes


def round_trip(g: Graph) -> Graph:
    """Check g, and that print -> parse -> print is exact; returns the parsed graph."""
    verify(g)
    text = print_graph(g)
    back = parse(text)
    verify(back)
    assert print_graph(back) == text
    return back


def fresh_text(f, *args) -> str:
    """The printed trace of f, with the traced graph gone (so parsing must rebuild every node)."""
    text = print_graph(mlc.trace(f, *args))
    gc.collect()
    return text


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# -- round trip of traced graphs ------------------------------------------------------------
x34 = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
v4 = np.linspace(0.5, 3, 4, dtype=np.float32)

TRACED = {
    "unary": (lambda x: mnp.tanh(mnp.exp(x)) + mnp.sin(x), x34),
    "broadcast": (lambda x, y: x * y - y / 3, x34, v4),
    "where": (lambda x, y: mnp.where(x > 0, x, y), x34, v4),
    "float32_0.1": (lambda x: x * np.float32(0.1) + 0.1, x34),
    "nan_inf_negzero": (
        lambda x: x + np.array([np.nan, np.inf, -np.inf, -0.0], np.float32),
        v4,
    ),
    "float64_consts": (
        lambda x: mnp.minimum(x, np.array([1e-300, 5e-324, 1.7976931348623157e308, 0.1])),
        v4,
    ),
    "int_bool_consts": (
        lambda x: (x + np.array([1, -2, 3, 2**40]), np.array([True, False]) | True),
        np.arange(4),
    ),
    "empty": (lambda x: x + np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)),
    "empty_const_other_shapes": (
        lambda x: (np.zeros((3, 0), np.float32), np.ones((2, 0, 3)), x),
        np.zeros(2),
    ),
    "multiple_outputs": (lambda x, y: (x + 1, mnp.maximum(x, y), x, x), x34, v4),
    "scalar_and_bool": (lambda x: (mnp.isnan(x), mnp.logical_not(mnp.isinf(x)), 2.5), x34),
    "int_math": (lambda a, b: (a // b, a % b, a < b, mnp.abs(a)), np.arange(4), np.arange(1, 5)),
    "no_inputs": (lambda: (np.float32(3.0), np.array([[1.5, -0.0]])),),
    "0d": (lambda x: mnp.sqrt(x) * 2, np.float64(4.0)),
    "mixed_dtypes": (lambda x, i: x * i + mnp.float32(1), x34, np.arange(4, dtype=np.int32)),
}


@pytest.mark.parametrize("name", list(TRACED))
def test_traced_graph_round_trips_exactly(name):
    f, *args = TRACED[name]
    g = mlc.trace(f, *args)
    back = round_trip(g)
    # The original is alive, so hash-consing hands back the very same nodes.
    assert all(a is b for a, b in zip(g.nodes(), back.nodes()))
    for got, want in zip(evaluate(back, *args), evaluate(g, *args)):
        same_bits(got, want)


@pytest.mark.parametrize("name", list(TRACED))
def test_parse_rebuilds_graph_from_text_alone(name):
    f, *args = TRACED[name]
    text = fresh_text(f, *args)
    g = parse(text)
    assert print_graph(g) == text
    verify(g)
    f_out = f(*args)
    f_out = f_out if isinstance(f_out, tuple) else (f_out,)
    for got, want in zip(evaluate(g, *args), f_out):
        same_bits(got, np.asarray(want))


def test_constants_keep_their_bits():
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.1, 1e-45, 3.4028235e38], np.float32)
    text = fresh_text(lambda: special)
    assert "value=[nan, inf, -inf, -0.0, 0.10000000149011612," in text
    (c,) = parse(text).outputs
    assert c.op == "constant" and c.dtype == np.float32
    same_bits(c.attr("value").array, special)


def test_empty_constant_keeps_its_shape():
    text = "func @f() -> (f32[0,3], i64[2,0], i1[0]) {\n"
    text += "  %0: f32[0,3] = constant(value=[])\n"
    text += "  %1: i64[2,0] = constant(value=[[], []])\n"
    text += "  %2: i1[0] = constant(value=[])\n"
    text += "  return %0, %1, %2\n}\n"
    g = parse(text)
    assert [o.shape for o in g.outputs] == [(0, 3), (2, 0), (0,)]
    assert print_graph(g) == text


@given(st.data())
def test_random_constants_round_trip(data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_]))
    shape = data.draw(shapes(max_dims=3))
    if np.dtype(dtype).kind == "f":
        width = 32 if dtype == np.float32 else 64
        elems = st.floats(width=width, allow_nan=True, allow_infinity=True)  # subnormals too
        size = int(np.prod(shape))
        a = np.asarray(data.draw(st.lists(elems, min_size=size, max_size=size)), dtype)
        a = a.reshape(shape)
    else:
        a = data.draw(arrays(dtype, shape, lo=-(2**31), hi=2**31 - 1))
    text = fresh_text(lambda: a)
    (c,) = parse(text).outputs
    got = c.attr("value").array
    assert got.dtype == a.dtype and got.shape == a.shape
    if a.dtype.kind == "f":  # NaN payloads are not kept: all NaNs print as nan
        assert np.array_equal(np.isnan(got), np.isnan(a))
        ok = ~np.isnan(a)
        assert got[ok].tobytes() == a[ok].tobytes()  # -0.0 and the last bit survive
    else:
        same_bits(got, a)


@given(broadcast_shapes(2), st.sampled_from([np.float32, np.float64]))
def test_broadcasting_graphs_round_trip(shps, dtype):
    xs = [np.ones(s, dtype) for s in shps]
    f = TRACED["where"][0]
    g = mlc.trace(lambda x, y: (f(x, y), mnp.hypot(x, y) * 0.5, x > y), *xs)
    round_trip(g)
    text = print_graph(g)
    del g
    gc.collect()
    assert print_graph(parse(text)) == text


# -- hand-written IR ------------------------------------------------------------------------
HAND = """
# command: mlc opt %s --passes none
# comments and blank lines are skipped

func @s(%x: f32[2,3], %w: f32[3,4], %i: i64[5,1]) -> (f32[2,4], f32[5,3], f32[4,5], i64[2,3]) {
  %d: f32[2,4] = dot_general(%x, %w, batch=((), ()), contracting=((1,), (0,)))  loc("model.py":7)
  %g: f32[5,3] = gather(%x, %i)
  %z: f32[] = constant(value=0.0)
  %p: f32[4,5] = pad(%x, %z, high=(1, 0), interior=(0, 1), low=(1, 0)) loc("model.py":9)
  %s: i64[2,3] = argsort(%x, axis=1, descending=True)
  return %d, %g, %p, %s
}
"""

HAND_CANONICAL = """\
func @s(%0: f32[2,3], %1: f32[3,4], %2: i64[5,1]) -> (f32[2,4], f32[5,3], f32[4,5], i64[2,3]) {
  %3: f32[2,4] = dot_general(%0, %1, batch=((), ()), contracting=((1,), (0,))) loc("model.py":7)
  %4: f32[5,3] = gather(%0, %2)
  %5: f32[] = constant(value=0.0)
  %6: f32[4,5] = pad(%0, %5, high=(1, 0), interior=(0, 1), low=(1, 0)) loc("model.py":9)
  %7: i64[2,3] = argsort(%0, axis=1, descending=True)
  return %3, %4, %6, %7
}
"""


def test_hand_written_text_parses_to_canonical_form():
    g = parse(HAND, "hand.mlc")
    assert print_graph(g) == HAND_CANONICAL
    assert g.name == "s"
    assert g.outputs[0].loc.file == "model.py" and g.outputs[0].loc.line == 7
    assert g.outputs[1].loc is None  # no loc(...) given: none is made up
    assert g.outputs[0].attr("contracting") == ((1,), (0,))
    assert g.outputs[3].attr("descending") is True
    round_trip(g)


def test_hand_written_text_evaluates():
    text = """
func @f(%0: f32[3]) -> (f32[3], f32[], i64[3]) {
  %1: f32[3] = iota(axis=0, dtype='float32', shape=(3,))
  %2: f32[3] = mul(%0, %1)
  %3: f32[] = reduce_sum(%2, axes=(0,))
  %4: i64[3] = convert(%2, dtype='int64')
  return %2, %3, %4
}
"""
    g = parse(text)
    out = evaluate(g, np.array([1.0, 2.0, 3.0], np.float32))
    same_bits(out[0], np.array([0.0, 2.0, 6.0], np.float32))
    same_bits(out[1], np.float32(8.0))
    same_bits(out[2], np.array([0, 2, 6]))


def test_structurally_equal_lines_are_one_node():
    text = """func @f(%0: f32[3]) -> (f32[3]) {
  %1: f32[3] = exp(%0)
  %2: f32[3] = exp(%0)
  %3: f32[3] = add(%1, %2)
  return %3
}
"""
    g = parse(text)
    (out,) = g.outputs
    assert out.inputs[0] is out.inputs[1]
    assert g.count("exp") == 1


def test_empty_function_and_repeated_outputs():
    text = "func @f() -> () {\n  return \n}\n"
    assert print_graph(parse(text)) == text
    text = "func @g(%0: i1[2]) -> (i1[2], i1[2]) {\n  return %0, %0\n}\n"
    g = parse(text)
    assert g.outputs[0] is g.outputs[1] is g.inputs[0]
    assert print_graph(g) == text


def test_loc_file_names_with_odd_characters():
    text = 'func @f(%0: f64[]) -> (f64[]) {\n  %1: f64[] = neg(%0) loc("a b/\\"q\\".py":12)\n'
    text += "  return %1\n}\n"
    g = parse(text)
    assert g.outputs[0].loc.file == 'a b/\\"q\\".py' and g.outputs[0].loc.line == 12
    assert print_graph(g) == text


def test_parsing_twice_gives_identical_nodes():
    text = fresh_text(TRACED["broadcast"][0], x34, v4)
    a, b = parse(text), parse(text)
    assert len(a.nodes()) == len(b.nodes()) > 3
    assert all(m is n for m, n in zip(a.nodes(), b.nodes()))


def test_parse_does_not_stamp_callers_location():
    g = parse("func @f(%0: f32[2]) -> (f32[2]) {\n  %1: f32[2] = cos(%0)\n  return %1\n}\n")
    assert g.outputs[0].loc is None and g.inputs[0].loc is None
    # ...but tracing still records the user's line afterwards (an expression no other test
    # builds: hash-consing gives a live equal node, made elsewhere, its first maker's line)
    traced = mlc.trace(lambda x: mnp.cosh(x) * 3.25 - 0.0625, v4)
    assert traced.outputs[0].loc.file.endswith("test_ir.py")


# -- parse errors ---------------------------------------------------------------------------
GOOD = [
    "func @f(%0: f32[3], %1: f32[3]) -> (f32[3]) {",
    "  %2: f32[3] = add(%0, %1)",
    "  return %2",
    "}",
]


def bad(line_no, new_line):
    lines = list(GOOD)
    lines[line_no - 1] = new_line
    return "\n".join(lines) + "\n"


ERRORS = [
    # (line, its new text, message, where: the text the caret points at, or the column)
    (2, "  %2: f32[3] = add(%0, %9)", "unknown value %9", "%9"),
    (2, "  %2: f32[3] = foo(%0, %1)", "unknown primitive 'foo'", "foo"),
    (2, "  %2: f32[3] = add(%0, %1", "expected ',' or ')', got end of line", 26),
    (2, "  %2: f32[3] = add(%0 %1)", "expected ',' or ')', got '%1)'", "%1"),
    (2, "  %2: f32[4] = add(%0, %1)", "type mismatch: %2 declared f32[4], add gives f32[3]", "%2"),
    (2, "  %2: i1[3] = add(%0, %1)", "declared i1[3]", "%2"),
    (2, "  %2: f32[3] = exp(%0, %1)", "exp: ", "exp"),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=(1,))", "reduce_sum: axes (1,) invalid", "reduce"),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=(0,)", "expected ',' or ')'", 40),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=foo)", "not a literal: 'foo'", "foo"),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=(0,,))", "bad attribute value '(0,,)'", ",)"),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=)", "expected an attribute value", ")"),
    (2, "  %2: f32[3] = reduce_sum(axes=(0,), %0)", "operands must come before attrib", "%0"),
    (2, "  %2: f32[3] = reduce_sum(%0, axes=(0,), axes=(0,))", "'axes' given twice", "axes=(0,))"),
    (2, "  %2: q8[3] = add(%0, %1)", "unknown element type 'q8'", "q8"),
    (2, "  %2: f32(3) = add(%0, %1)", "expected a type like f32[3,4]", "f32"),
    (2, "  %0: f32[3] = add(%0, %1)", "%0 defined twice", "%0"),
    (2, "  %2: f32[3] = add(%0, %1) loc(f.py:3)", 'expected loc("file":line)', "loc"),
    (2, "  %2: f32[3] = add(%0, %1) extra", "unexpected text 'extra'", "extra"),
    (2, "  %2: f32[3] = param(dtype='float32', index=0, shape=(3,))", "in the func header", "p"),
    (2, "  %2: f32[2] = constant(value=[1.0, 2.0, 3.0])", "constant value has shape (3,)", "[1"),
    (2, "  %2: i32[3] = constant(value=[1, 2, 'x'])", "constant value does not fit i32[3]", "[1"),
    (2, "  2: f32[3] = add(%0, %1)", "expected a value name like %3 or 'return'", "2"),
    (1, "func @f(%0: f32[3], %0: f32[3]) -> (f32[3]) {", "%0 defined twice", "%0: f32[3]) "),
    (1, "func f(%0: f32[3], %1: f32[3]) -> (f32[3]) {", "expected '@'", "f("),
    (1, "func @f(%0: f32[3], %1: f32[3]) -> (f32[3])", "expected '{'", 44),
    (1, "func @f(%0: f32[3], %1: f16[3]) -> (f32[3]) {", "does not support dtype float16", "f16"),
    (1, "func @f(%0: f32[3], %1: f32[3]) -> (f64[3]) {", "return types (f32[3]) differ", 9),
    (3, "  return %2, %7", "unknown value %7", "%7"),
    (4, "} }", "expected '}' after return", 1),
]


@pytest.mark.parametrize("line_no, new_line, message, where", ERRORS)
def test_parse_error_names_line_and_column(line_no, new_line, message, where):
    text = bad(line_no, new_line)
    with pytest.raises(ParseError) as e:
        parse(text, "input.mlc")
    assert isinstance(e.value, ValueError)
    err = e.value
    col = where if isinstance(where, int) else new_line.index(where) + 1
    line = 3 if "return types" in message else line_no  # checked when the return is read
    first = str(err).splitlines()[0]
    assert first.startswith(f"input.mlc:{line}:{col}: "), first
    assert message in first
    # The message shows the offending line with a caret under the column.
    src, caret = str(err).splitlines()[1:3]
    assert src.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - 4 == col - 1


def test_parse_errors_at_the_edges():
    with pytest.raises(ParseError, match=r"^<input>:1:1: expected 'func'"):
        parse("# only a comment\n\n")
    with pytest.raises(ParseError, match=r"^x.mlc:3:1: expected 'return' before end of input"):
        parse("func @f() -> () {\n\n  %0: f32[] = constant(value=1.0)\n", "x.mlc")
    with pytest.raises(ParseError, match=r"^x.mlc:2:1: expected '}' after return"):
        parse("func @f() -> () {\n  return\n", "x.mlc")
    with pytest.raises(ParseError, match=r"^<input>:5:1: unexpected text after '}'"):
        parse("func @f() -> () {\n  return\n}\n\nfunc @g() -> () {\n")


def test_parse_error_fields():
    with pytest.raises(ParseError) as e:
        parse(bad(2, "  %2: f32[3] = add(%0, %9)"), "in.mlc")
    err = e.value
    assert (err.file, err.line, err.col, err.msg) == ("in.mlc", 2, 24, "unknown value %9")
    assert err.text == "  %2: f32[3] = add(%0, %9)"


# -- verifier -------------------------------------------------------------------------------
def fake_node(prim, inputs, attrs, typ):
    """A node that skipped its type rule (kept out of the hash-consing table)."""
    n = object.__new__(Node)
    for k, v in dict(prim=prim, inputs=tuple(inputs), attrs=tuple(sorted(attrs.items())),
                     type=typ, loc=None).items():  # fmt: skip
        object.__setattr__(n, k, v)
    return n


def p(i, shape=(3,), dtype="float32"):
    return P.param(index=i, shape=shape, dtype=dtype)


def test_verify_accepts_traced_graphs():
    for f, *args in TRACED.values():
        verify(mlc.trace(f, *args))


def test_verify_rejects_wrong_param_index():
    with pytest.raises(VerifyError, match="input 0 of @main is param index=1"):
        verify(Graph([p(1)], [P.exp(p(1))]))


def test_verify_rejects_non_param_input():
    x = p(0)
    with pytest.raises(VerifyError, match="input 0 of @main is not a param node"):
        verify(Graph([P.exp(x)], [P.exp(x)]))


def test_verify_rejects_foreign_param():
    x, y = p(0), p(1)
    with pytest.raises(VerifyError, match=r"%1 = param: param is not an input of @main"):
        verify(Graph([x], [P.add(x, y)]))


def test_verify_rejects_wrong_type():
    x = p(0)
    n = fake_node(P.exp, [x], {}, TensorType((4,), np.float32))
    with pytest.raises(
        VerifyError, match=r"%1 = exp: type is f32\[4\], the type rule gives f32\[3\]"
    ):
        verify(Graph([x], [n]))


def test_verify_rejects_failing_type_rule():
    x, i = p(0), p(1, dtype="int64")
    n = fake_node(P.add, [x, i], {}, TensorType((3,), np.float32))
    with pytest.raises(VerifyError, match="%2 = add: type rule fails: add: operand dtypes differ"):
        verify(Graph([x, i], [n]))


def test_verify_rejects_unknown_primitive():
    foo = Primitive("foo", lambda x: x, lambda x: x)  # not registered
    x = p(0)
    with pytest.raises(VerifyError, match="%1 = foo.*: primitive 'foo' is not the registered one"):
        verify(Graph([x], [foo(x)]))


def test_verify_rejects_non_node_output_and_bad_attribute():
    x = p(0)
    with pytest.raises(VerifyError, match="output 1 of @main is not a node: ndarray"):
        verify(Graph([x], [x, np.zeros(3)]))
    n = fake_node(P.convert, [x], {"dtype": np.float64}, TensorType((3,), np.float64))
    with pytest.raises(VerifyError, match=r"%1 = convert: attribute dtype=.* is not a literal"):
        verify(Graph([x], [n]))
    with pytest.raises(VerifyError, match="graph name 'a b' is not one word"):
        verify(Graph([x], [x], name="a b"))


def test_verify_error_names_the_source_line():
    x = P.param(index=0, shape=(2,), dtype="float32")
    n = fake_node(P.exp, [x], {}, TensorType((2,), np.float64))
    object.__setattr__(n, "loc", mlc.ir.SourceLoc("model.py", 42))
    with pytest.raises(VerifyError, match=r"%1 = exp \(at model.py:42\)"):
        verify(Graph([x], [n]))


def test_jit_checks_every_graph_when_mlc_verify_is_set(monkeypatch):
    import mlc.ir.verifier as verifier

    seen = []
    monkeypatch.setenv("MLC_VERIFY", "1")
    monkeypatch.setattr(verifier, "check_round_trip", lambda g: seen.append(print_graph(g)))
    out = mlc.jit(lambda x: mnp.exp(x) + 1)(np.zeros(2, np.float32))
    same_bits(out, np.full(2, 2.0, np.float32))
    assert len(seen) == 2 and "exp(%0)" in seen[0]  # the traced and the optimized graph
    monkeypatch.setenv("MLC_VERIFY", "")
    seen.clear()
    mlc.jit(lambda x: mnp.exp(x) + 2)(np.zeros(2, np.float32))
    assert seen == []


def test_check_round_trip_reports_both_texts(monkeypatch):
    import mlc.ir.printer as printer

    g = mlc.trace(lambda x: mnp.exp(x), v4)
    check_round_trip(g)
    real = printer.print_graph
    calls = []

    def flaky(graph, locs=True):  # the second print differs: the check must see it
        calls.append(1)
        return real(graph, locs) + ("# changed\n" if len(calls) > 1 else "")

    monkeypatch.setattr(printer, "print_graph", flaky)
    with pytest.raises(AssertionError, match="(?s)printed:.*exp.*reparsed:.*# changed"):
        check_round_trip(g)


# -- networkx -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TRACED))
def test_networkx_round_trip(name):
    f, *args = TRACED[name]
    g = mlc.trace(f, *args)
    dg = to_networkx(g)
    assert sorted(dg.nodes, key=lambda s: int(s[1:])) == [f"%{i}" for i in range(len(g.nodes()))]
    back = from_networkx(dg)
    assert print_graph(back) == print_graph(g)
    text = print_graph(g)
    del g, back
    gc.collect()
    rebuilt = from_networkx(dg)  # from attributes alone
    assert print_graph(rebuilt) == text


def test_networkx_attributes():
    x = p(0, shape=(2, 3))
    c = P.const(np.array([1.0, -0.0, np.nan], np.float32))
    y = P.mul(x, x)
    g = Graph([x], [P.add(y, P.broadcast_in_dim(c, shape=(2, 3), dims=(1,))), y])
    dg = g.to_networkx()
    assert dg.graph["inputs"] == ["%0"] and dg.graph["outputs"] == ["%4", "%1"]
    assert dg.graph["name"] == "main"
    d = dg.nodes["%1"]
    assert (d["op"], d["type"], d["shape"], d["dtype"]) == ("mul", "f32[2,3]", (2, 3), "float32")
    assert dg.edges["%0", "%1"]["positions"] == (0, 1)  # mul(x, x): one edge, two operands
    assert dg.edges["%0", "%1"]["position"] == 0
    assert dg.edges["%0", "%1"]["bytes"] == 24
    assert dg.edges["%3", "%4"]["position"] == 1
    value = dg.nodes["%2"]["attrs"]["value"]
    same_bits(value, np.array([1.0, -0.0, np.nan], np.float32))
    assert dg.nodes["%3"]["attrs"] == {"dims": (1,), "shape": (2, 3)}


def test_from_networkx_checks_types():
    g = mlc.trace(lambda x: mnp.exp(x), v4)
    dg = to_networkx(g)
    dg.nodes["%1"]["op"] = "is_nan"
    with pytest.raises(ValueError, match=r"%1: declared f32\[4\], is_nan gives i1\[4\]"):
        from_networkx(dg)
    dg.nodes["%1"]["op"] = "frobnicate"
    with pytest.raises(ValueError, match="%1: unknown primitive 'frobnicate'"):
        from_networkx(dg)


# -- docs/ir.md -----------------------------------------------------------------------------
DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "ir.md"
BEGIN, END = "<!-- primitives:begin -->", "<!-- primitives:end -->"


def _dtype_rule(prim) -> str:
    """Probe an elementwise rule (operands x, y) with each supported dtype: "f32 f64 → same"."""
    from mlc.ir import dtypes

    params = list(inspect.signature(prim.infer).parameters)
    if params not in (["x"], ["x", "y"]):
        return "see below"
    accepted, results = [], []
    for dt in dtypes.SUPPORTED.values():
        try:
            t = prim.infer(*[TensorType((2,), dt)] * len(params))
        except (TypeError, ValueError):
            continue
        accepted.append(dtypes.short(dt))
        results.append(dtypes.short(t.dtype))
    names = "any" if len(accepted) == len(dtypes.SUPPORTED) else " ".join(accepted)
    if results == accepted:
        out = "same"
    elif len(set(results)) == 1:
        out = results[0]
    else:
        out = " ".join(results)
    return f"{len(params)} operand{'s' * (len(params) > 1)}: {names} → {out}"


def primitive_table() -> str:
    """The generated part of docs/ir.md: every registered primitive, grouped by its module."""
    from mlc.ir import primitives

    owner = {}
    for mod_name, mod in sorted(sys.modules.items()):
        if mod is None or not mod_name.startswith(primitives.__name__ + "."):
            continue
        for v in vars(mod).values():
            if isinstance(v, Primitive) and PRIMITIVES.get(v.name) is v:
                owner.setdefault(v.name, mod)
    out = []
    modules = sorted({m.__name__: m for m in owner.values()}.items())
    groups = [(name, m) for name, m in modules] + [("other", None)]
    for mod_name, mod in groups:
        names = sorted(n for n in PRIMITIVES if owner.get(n) is mod)
        if not names:
            continue
        title = mod_name.rsplit(".", 1)[-1]
        out += [f"### {title}", "", "| primitive | meaning | type rule | differentiable |"]
        out += ["|---|---|---|---|"]
        for n in names:
            prim = PRIMITIVES[n]
            doc = prim.doc.replace("|", "\\|")
            if re.fullmatch(r"[a-z_0-9]+", doc):
                doc = f"like `np.{doc}`"
            rule = _dtype_rule(prim) if title == "elementwise" else "see below"
            diff = "yes" if prim.differentiable else "no (zero)"
            out.append(f"| `{n}` | {doc} | {rule} | {diff} |")
        out.append("")
    return "\n".join(out)


def write_docs():
    text = DOCS.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    DOCS.write_text(f"{head}{BEGIN}\n{primitive_table()}{END}{tail}")


def test_docs_list_every_primitive():
    if os.environ.get("MLC_REGEN_DOCS"):
        write_docs()
    text = DOCS.read_text()
    block = text.split(BEGIN)[1].split(END)[0]
    missing = [n for n in PRIMITIVES if f"| `{n}` |" not in block]
    assert not missing, f"docs/ir.md lacks {missing}: run `python -m tests.test_ir`"
    assert block == "\n" + primitive_table(), "docs/ir.md is stale: run `python -m tests.test_ir`"
    # Every primitive without a dtype-probe rule has its type rule written out by hand.
    for n in PRIMITIVES:
        if f"| `{n}` |" in block and "see below" in block.split(f"| `{n}` |")[1].split("\n")[0]:
            assert f"**`{n}`**" in text, f"docs/ir.md: write the type rule of {n}"


def test_docs_grammar_parses_its_own_example():
    text = DOCS.read_text()
    example = re.search(r"```mlc\n(.*?)```", text, re.S).group(1)
    g = parse(example, "docs/ir.md")
    assert print_graph(g) == example


if __name__ == "__main__":
    write_docs()
    print(f"wrote the primitive table in {DOCS}")
