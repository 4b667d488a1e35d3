"""Read the textual IR back into a graph: the inverse of ``printer.print_graph``.

    >>> from mlc.ir import parse
    >>> g = parse('''
    ... func @f(%0: f32[3]) -> (f32[3]) {
    ...   %1: f32[3] = exp(%0) loc("f.py":2)
    ...   return %1
    ... }
    ... ''')
    >>> [n.op for n in g]
    ['param', 'exp']

Every node is rebuilt through its primitive (``Node.make``), so the primitive's type rule checks
the text, and the declared result type must equal the inferred one. Attribute values are Python
literals read with ``ast`` (never ``eval``), plus the bare names ``nan`` and ``inf``. A constant's
shape and dtype come from its declared type. Lines starting with ``#`` and blank lines are
skipped. The grammar is in docs/ir.md.
"""

from __future__ import annotations

import ast
import json
import math
import re

import numpy as np

from . import dtypes
from . import graph as ir_graph
from .graph import PRIMITIVES, Graph, Literal, Node, SourceLoc, TensorType


class ParseError(ValueError):
    """A syntax or type error in IR text, with ``file:line:col`` (1-based) and the bad text."""

    def __init__(self, msg, file="<input>", line=0, col=0, text=""):
        self.msg, self.file, self.line, self.col, self.text = msg, file, line, col, text
        where = f"{file}:{line}:{col}: {msg}"
        if text:
            where += f"\n    {text}\n    {' ' * (col - 1)}^"
        super().__init__(where)


_NAME = re.compile(r"%[A-Za-z0-9_]+")
_FUNC_NAME = re.compile(r"[\w.$-]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"([a-z]+[0-9]*)\[([0-9, ]*)\]")
_LOC = re.compile(r'loc\("(.*)":([0-9]+)\)')


class _Line:
    """A cursor over one source line; every error it raises points at its column."""

    def __init__(self, text, lineno, file):
        self.text, self.lineno, self.file, self.pos = text, lineno, file, 0

    def error(self, msg, pos=None) -> ParseError:
        col = (self.pos if pos is None else pos) + 1
        return ParseError(msg, self.file, self.lineno, col, self.text)

    def skip_ws(self):
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def at(self, s) -> bool:
        self.skip_ws()
        return self.text.startswith(s, self.pos)

    def accept(self, s) -> bool:
        if self.at(s):
            self.pos += len(s)
            return True
        return False

    def expect(self, s):
        if not self.accept(s):
            raise self.error(f"expected {s!r}, got {self.next_text()}")

    def match(self, regex, what):
        self.skip_ws()
        m = regex.match(self.text, self.pos)
        if not m:
            raise self.error(f"expected {what}, got {self.next_text()}")
        self.pos = m.end()
        return m

    def next_text(self) -> str:
        rest = self.text[self.pos : self.pos + 12]
        return repr(rest) if rest else "end of line"

    def end(self):
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error(f"unexpected text {self.text[self.pos :]!r}")

    def type(self) -> TensorType:
        start = self.pos_after_ws()
        m = self.match(_TYPE, "a type like f32[3,4]")
        short, dims = m.group(1), m.group(2).replace(" ", "")
        if short not in dtypes.FROM_SHORT:
            raise self.error(f"unknown element type {short!r}", start)
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        return TensorType(shape, dtypes.FROM_SHORT[short])

    def value_name(self, env) -> Node:
        start = self.pos_after_ws()
        name = self.match(_NAME, "a value name like %3")[0]
        if name not in env:
            raise self.error(f"unknown value {name}", start)
        return env[name]

    def pos_after_ws(self) -> int:
        self.skip_ws()
        return self.pos

    def literal(self):
        """An attribute value: a Python literal up to the next top-level ',' or ')'."""
        start = self.pos_after_ws()
        end = _literal_end(self.text, start)
        src = self.text[start:end].strip()
        if not src:
            raise self.error("expected an attribute value", start)
        fast = _fast_list(src)
        if fast is not None:
            self.pos = end
            return fast
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError as e:
            col = start + (e.offset or 1) - 1
            raise self.error(f"bad attribute value {src!r}", col) from None
        try:
            value = _literal(tree.body)
        except ValueError as e:
            raise self.error(str(e), start) from None
        self.pos = end
        return value


_STOP_TOP = re.compile(r"[()\[\]{},'\"]")  # what ends or nests a literal at depth 0
_STOP_NESTED = re.compile(r"[()\[\]{}'\"]")  # inside brackets commas do not matter
_STRING_END = {q: re.compile(rf"(?:[^{q}\\]|\\.)*{q}") for q in "'\""}


def _literal_end(text, i) -> int:
    """Index of the ',' or ')' ending the literal starting at ``i`` (brackets and strings nest).

    Jumps between brackets with regexes: a constant's value may be megabytes long.
    """
    depth = 0
    while True:
        m = (_STOP_NESTED if depth else _STOP_TOP).search(text, i)
        if m is None:
            return len(text)
        c, i = m[0], m.end()
        if c in "'\"":
            end = _STRING_END[c].match(text, i)
            if end is None:
                return len(text)
            i = end.end()
        elif c in "([{":
            depth += 1
        elif depth == 0:  # ')' or ',' at the top
            return m.start()
        elif c in ")]}":
            depth -= 1


# A list of numbers (a constant's value) reads much faster as JSON than through ``ast``.
_WORDS = re.compile(r"nan|inf|True|False")
_NUMBER_CHARS = re.compile(r"[\[\]\s,0-9eE.+\-]*")
_TO_JSON = {"nan": "NaN", "inf": "Infinity", "True": "true", "False": "false"}


def _fast_list(src):
    """``src`` read as JSON when it is a list of numbers, nan, inf and bools; else None."""
    if not src.startswith("[") or not _NUMBER_CHARS.fullmatch(_WORDS.sub("", src)):
        return None
    try:
        return json.loads(_WORDS.sub(lambda m: _TO_JSON[m[0]], src))
    except ValueError:
        return None


_NAMES = {"nan": math.nan, "inf": math.inf, "True": True, "False": False, "None": None}


def _literal(node):
    """The value of a literal AST: numbers, strings, bools, None, nan, inf, tuples, lists."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Tuple):
        return tuple(_literal(x) for x in node.elts)
    if isinstance(node, ast.List):
        return [_literal(x) for x in node.elts]
    raise ValueError(f"not a literal: {ast.unparse(node)!r}")


def _constant_value(value, typ: TensorType) -> Literal:
    """The constant's array: ``value`` (nested lists) read in the declared dtype and shape."""
    try:
        a = np.array(value, dtype=typ.dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"constant value does not fit {typ}: {e}") from None
    if a.shape != typ.shape:
        if a.size != 0 or typ.size != 0:  # empty arrays print as [] whatever their shape
            raise ValueError(f"constant value has shape {a.shape}, declared type is {typ}")
        a = a.reshape(typ.shape)
    return Literal(a)


def _NoLocations():
    """Parsing must not stamp the caller's line on nodes: switch the tracer's hook off."""
    return ir_graph.location_override(lambda: None)


def parse(text: str, file: str = "<input>") -> Graph:
    """Parse one ``func`` block (as ``print_graph`` writes it) into a ``Graph``.

    Raises ``ParseError`` (a ValueError) with ``file:line:col`` on bad text.
    """
    lines = [
        _Line(s.rstrip("\n").rstrip(), i + 1, file)
        for i, s in enumerate(text.split("\n"))
        if s.strip() and not s.lstrip().startswith("#")
    ]
    if not lines:
        raise ParseError("expected 'func', got end of input", file, 1, 1)
    with _NoLocations():
        return _parse_func(lines, file)


def _parse_func(lines, file) -> Graph:
    env: dict[str, Node] = {}
    name, params, result_types = _parse_header(lines[0], env)
    for i, ln in enumerate(lines[1:], start=1):  # noqa: B007 (i is used after the loop)
        if ln.at("return"):
            ln.expect("return")
            outputs = _parse_return(ln, env)
            break
        _parse_node(ln, env)
    else:
        last = lines[-1]
        raise ParseError("expected 'return' before end of input", file, last.lineno, 1, last.text)
    rest = lines[i + 1 :]
    if not rest or rest[0].text.strip() != "}":
        where = rest[0] if rest else ln
        raise ParseError("expected '}' after return", file, where.lineno, 1, where.text)
    if len(rest) > 1:
        extra = rest[1]
        raise ParseError("unexpected text after '}'", file, extra.lineno, 1, extra.text)
    got = [str(o.type) for o in outputs]
    want = [str(t) for t in result_types]
    if got != want:
        msg = f"return types ({', '.join(got)}) differ from declared ({', '.join(want)})"
        raise ln.error(msg, len("  return"))
    return Graph(params, outputs, name=name)


def _parse_header(ln: _Line, env):
    ln.expect("func")
    ln.expect("@")
    func_name = ln.match(_FUNC_NAME, "a function name")[0]
    ln.expect("(")
    params = []
    while not ln.accept(")"):
        if params:
            ln.expect(",")
        start = ln.pos_after_ws()
        name = ln.match(_NAME, "a parameter like %0")[0]
        if name in env:
            raise ln.error(f"{name} defined twice", start)
        ln.expect(":")
        type_pos = ln.pos_after_ws()
        t = ln.type()
        try:
            p = PRIMITIVES["param"](index=len(params), shape=t.shape, dtype=t.dtype.name)
        except TypeError as e:
            raise ln.error(str(e), type_pos) from None
        env[name] = p
        params.append(p)
    ln.expect("->")
    ln.expect("(")
    results = []
    while not ln.accept(")"):
        if results:
            ln.expect(",")
        results.append(ln.type())
    ln.expect("{")
    ln.end()
    return func_name, params, results


def _parse_node(ln: _Line, env):
    start = ln.pos_after_ws()
    name = ln.match(_NAME, "a value name like %3 or 'return'")[0]
    if name in env:
        raise ln.error(f"{name} defined twice", start)
    ln.expect(":")
    declared = ln.type()
    ln.expect("=")
    op_pos = ln.pos_after_ws()
    op = ln.match(_IDENT, "a primitive name")[0]
    prim = PRIMITIVES.get(op)
    if prim is None:
        raise ln.error(f"unknown primitive {op!r}", op_pos)
    if op == "param":
        raise ln.error("param values are declared in the func header", op_pos)
    ln.expect("(")
    inputs, attrs = [], {}
    while not ln.accept(")"):
        if (inputs or attrs) and not ln.accept(","):
            raise ln.error(f"expected ',' or ')', got {ln.next_text()}")
        if ln.at("%"):
            if attrs:
                raise ln.error("operands must come before attributes")
            inputs.append(ln.value_name(env))
            continue
        key_pos = ln.pos_after_ws()
        key = ln.match(_IDENT, "an operand or key=value")[0]
        if key in attrs:
            raise ln.error(f"attribute {key!r} given twice", key_pos)
        ln.expect("=")
        value_pos = ln.pos_after_ws()
        value = ln.literal()
        if op == "constant" and key == "value":
            try:
                value = _constant_value(value, declared)
            except ValueError as e:
                raise ln.error(str(e), value_pos) from None
        elif isinstance(value, list):
            value = np.asarray(value)
        attrs[key] = value
    loc = None
    if ln.at("loc"):
        m = ln.match(_LOC, 'loc("file":line) at the end of the line')
        loc = SourceLoc(m.group(1), int(m.group(2)))
    ln.end()
    try:
        n = Node.make(prim, inputs, attrs, loc)
    except (TypeError, ValueError) as e:
        raise ln.error(f"{op}: {e}", op_pos) from None
    if n.type != declared:
        raise ln.error(f"type mismatch: {name} declared {declared}, {op} gives {n.type}", start)
    env[name] = n


def _parse_return(ln: _Line, env):
    outputs = []
    while ln.pos_after_ws() < len(ln.text):
        if outputs:
            ln.expect(",")
        outputs.append(ln.value_name(env))
    return outputs
