"""The kernel description: one fusion kernel as a target-neutral loop program.

``describe(kernel)`` lowers a ``Kernel`` of a fusion plan (``mlc.ir.passes.fusion``) into a
``Program``; the LLVM and CUDA backends both generate code from that one description.

A ``Program`` is a loop nest over the kernel's iteration space ``F`` (the ``outer`` axes, then the
reduced ``inner`` axes) and a scalar expression DAG:

- **buffers**: the kernel's inputs, then its outputs; each is a C-contiguous array of its node's
  shape (the runtime makes inputs contiguous). Elements are addressed by linear offsets built from
  the loop indices.
- **exprs**: SSA scalar expressions (``Expr``), each with an op, argument expr ids, a static
  attribute and a dtype (``"i64"`` for index arithmetic). Ops:

  ``idx`` (a loop index: attr = axis), ``size`` (a run-time integer: attr = slot),
  ``int`` (an i64 literal), ``const`` (a literal of ``dtype``), ``load`` (attr = buffer, arg = the
  linear offset), ``acc`` (the value of reduction ``attr``), an mlc elementwise primitive name
  (``add``, ``exp``, ``select``, ``convert``, ...), or integer index arithmetic
  ``iadd isub imul idiv imod imin imax`` and ``ilt ile ieq iand`` (``idiv``/``imod`` floor, on
  non-negative operands).
- **reductions**: per outer index (``level="row"``), over the inner axes, in ``phase`` order: a
  reduction's input may read ``acc`` of reductions of earlier phases; or over the whole loop nest
  (``level="total"``), combined across the loop nest (per thread, then across threads).
- **stores**: ``(buffer, offset expr, value expr, level)``; ``full`` stores run in the last pass
  over the inner axes (or the only loop, in a pointwise kernel), ``row`` stores once per outer
  index after the row reductions, ``total`` stores once after the loop nest.

**Shape-generic.** Every integer that comes from a shape or a size-dependent attribute is a
run-time *slot*, so the program text, its ``key()``, does not contain sizes: a new batch size
produces the same key and reuses the compiled kernel. Only structure is in the key: ops, dtypes,
ranks, which dimensions are broadcast (size 1 against a larger size), and which slots are equal.
``slots`` holds this instance's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mlc.ir.graph import Node
from mlc.ir.passes.fusion import FINAL, FULL, OTHER, Kernel, _is_reduction, _sq

INDEX = "i64"
COMBINERS = {
    "reduce_sum": "sum",
    "reduce_prod": "prod",
    "reduce_max": "max",
    "reduce_min": "min",
    "argmax": "argmax",
    "argmin": "argmin",
}


@dataclass(frozen=True)
class Expr:
    op: str
    args: tuple = ()
    attr: object = None
    dtype: str = INDEX

    def text(self) -> str:
        a = "" if self.attr is None else f"[{self.attr!r}]"
        return f"{self.op}{a}({', '.join(f'%{i}' for i in self.args)}): {self.dtype}"


@dataclass(frozen=True)
class Buffer:
    dtype: str
    shape: tuple  # slot expr ids of its dimensions
    role: str  # "in" or "out"


@dataclass
class Reduction:
    combiner: str  # sum, prod, max, min, argmax, argmin
    value: int  # expr id of the element (evaluated inside the loops)
    dtype: str  # of the accumulated value (argmax/argmin: the compared value's dtype)
    level: str  # "row" or "total"
    phase: int = 0
    position: int | None = None  # argmax/argmin: expr id of the index along the reduced axis
    per_row: bool = False  # a total of per-row values: accumulated once per outer index


@dataclass
class Store:
    buffer: int
    offset: int
    value: int
    level: str  # "full", "row" or "total"


@dataclass
class Program:
    name: str
    rank: int
    extents: tuple  # slot expr id of each loop axis's extent
    outer: tuple  # loop axes looped outside
    inner: tuple  # loop axes reduced (empty: a pointwise kernel)
    buffers: list = field(default_factory=list)
    exprs: list = field(default_factory=list)
    reductions: list = field(default_factory=list)
    stores: list = field(default_factory=list)
    slots: list = field(default_factory=list)  # run-time integers of this instance
    inputs: list = field(default_factory=list)  # the nodes the input buffers hold
    outputs: list = field(default_factory=list)  # the nodes the output buffers receive

    @property
    def phases(self) -> int:
        return 1 + max((r.phase for r in self.reductions if r.level == "row"), default=-1)

    def text(self) -> str:
        """The program with sizes as slots: equal texts are the same compiled kernel."""
        lines = [f"kernel {self.name} rank={self.rank} outer={self.outer} inner={self.inner}"]
        lines.append(f"  extents {', '.join(f'%{e}' for e in self.extents)}")
        for i, b in enumerate(self.buffers):
            dims = ", ".join(f"%{d}" for d in b.shape)
            lines.append(f"  buffer {i} {b.role} {b.dtype}[{dims}]")
        for i, e in enumerate(self.exprs):
            lines.append(f"  %{i} = {e.text()}")
        for i, r in enumerate(self.reductions):
            pos = "" if r.position is None else f" at %{r.position}"
            pos += " per row" if r.per_row else ""
            lines.append(
                f"  reduction {i} {r.combiner} %{r.value}{pos}: {r.dtype} {r.level} phase {r.phase}"
            )
        for s in self.stores:
            lines.append(f"  store buffer {s.buffer}[%{s.offset}] = %{s.value} ({s.level})")
        return "\n".join(lines) + "\n"

    def key(self) -> str:
        return self.text()

    def walk(self, roots, stop=None) -> set:
        """The ids of the exprs ``roots`` (ids) are computed from, themselves included; the walk
        does not go past an expr for which ``stop(id)`` is true (it is in the result)."""
        seen, stack = set(), list(roots)
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                if stop is None or not stop(i):
                    stack.extend(self.exprs[i].args)
        return seen

    def reads(self, roots) -> set:
        """The reductions whose ``acc`` the exprs ``roots`` (ids) read, directly or not."""
        return {self.exprs[i].attr for i in self.walk(roots) if self.exprs[i].op == "acc"}

    def __str__(self) -> str:
        return self.text() + f"  slots = {self.slots}\n"


# -- lowering a fusion kernel -------------------------------------------------------------
def _dtype(n: Node) -> str:
    return n.dtype.name


class _Lowering:
    def __init__(self, kernel: Kernel):
        self.k = kernel
        self.memo: dict = {}
        self.expr_ids: dict = {}
        self.slot_of: dict = {}
        self.buffer_of: dict = {}
        self.red_of: dict = {}  # id(reduction node) -> reduction index
        shape = kernel.shape
        axes = kernel.reduce_axes or ()
        self.p = Program(
            name=kernel.name,
            rank=len(shape),
            extents=(),
            outer=tuple(a for a in range(len(shape)) if a not in axes),
            inner=tuple(axes),
        )
        self.p.extents = tuple(self.size(d) for d in shape)

    # -- expressions ----------------------------------------------------------------------
    def expr(self, op, args=(), attr=None, dtype=INDEX) -> int:
        e = Expr(op, tuple(args), attr, dtype)
        got = self.expr_ids.get(e)
        if got is None:
            got = self.expr_ids[e] = len(self.p.exprs)
            self.p.exprs.append(e)
        return got

    def size(self, value: int) -> int:
        """A run-time integer (an expr of op ``size``); equal values share one slot."""
        value = int(value)
        slot = self.slot_of.get(value)
        if slot is None:
            slot = self.slot_of[value] = len(self.p.slots)
            self.p.slots.append(value)
        return self.expr("size", (), slot)

    def int(self, v: int) -> int:
        return self.expr("int", (), int(v))

    def iop(self, op, a, b) -> int:
        return self.expr(op, (a, b))

    def add(self, a, b):
        return self.iop("iadd", a, b)

    def mul(self, a, b):
        return self.iop("imul", a, b)

    def offset(self, shape, idx) -> int:
        """Row-major linear offset of index ``idx`` (expr ids) in an array of ``shape``."""
        off = None
        for n, i in zip(shape, idx):
            if off is None:
                off = i
            else:
                off = self.add(self.mul(off, self.size(n)), i)
        return self.int(0) if off is None else off

    def delinearize(self, linear, shape) -> list:
        out = []
        rest = linear
        for d in reversed(range(len(shape))):
            n = self.size(shape[d])
            out.append(self.iop("imod", rest, n) if d else rest)
            rest = self.iop("idiv", rest, n)
        return out[::-1]

    # -- buffers --------------------------------------------------------------------------
    def buffer(self, n: Node, role: str) -> int:
        key = (id(n), role)
        got = self.buffer_of.get(key)
        if got is None:
            got = self.buffer_of[key] = len(self.p.buffers)
            self.p.buffers.append(Buffer(_dtype(n), tuple(self.size(d) for d in n.shape), role))
            (self.p.inputs if role == "in" else self.p.outputs).append(n)
        return got

    def load(self, n: Node, idx) -> int:
        if n.op == "constant" and n.type.size == 1:
            return self.expr("const", (), n.attr("value").array.reshape(()).item(), _dtype(n))
        b = self.buffer(n, "in")
        return self.expr("load", (self.offset(n.shape, idx),), b, _dtype(n))

    # -- index maps -----------------------------------------------------------------------
    def loop_index(self, shape, axes) -> tuple:
        """The index of a value of ``shape`` read at the loop indices of ``axes`` (the value's
        non-unit dimensions take the non-unit loop axes in order)."""
        live = [a for a in axes if self.k.shape[a] != 1]
        out, it = [], iter(live)
        for d in shape:
            out.append(self.int(0) if d == 1 else self.expr("idx", (), next(it)))
        return tuple(out)

    def full_index(self, n: Node):
        return self.loop_index(n.shape, range(len(self.k.shape)))

    def row_index(self, n: Node):
        return self.loop_index(n.shape, self.p.outer)

    # -- values ---------------------------------------------------------------------------
    def value(self, n: Node, idx) -> int:
        """The expr of node ``n`` at index ``idx`` (one expr id per dimension of ``n``)."""
        key = (id(n), idx)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = self._value(n, tuple(idx))
        return got

    def _value(self, n: Node, idx) -> int:
        if not self.k.has(n):
            return self.load(n, idx)
        op, a = n.op, n.kwargs
        if op in COMBINERS and _is_reduction(n):
            return self.expr("acc", (), self.reduction(n), _dtype(n))
        if op in COMBINERS:  # a reduction over unit axes only: a reshape (or index 0)
            if op in ("argmax", "argmin"):
                return self.expr("const", (), 0, _dtype(n))
            x = n.inputs[0]
            return self.value(x, self.unit_reshape(idx, n.shape, x.shape))
        if op == "iota":
            return self.expr("convert", (idx[a["axis"]],), a["dtype"], _dtype(n))
        if op == "broadcast_in_dim":
            x = n.inputs[0]
            xi = [
                idx[d] if x.shape[i] == n.shape[d] else self.int(0) for i, d in enumerate(a["dims"])
            ]
            return self.value(x, tuple(xi))
        if op == "reshape":
            x = n.inputs[0]
            if _sq(x.shape) == _sq(n.shape):
                return self.value(x, self.unit_reshape(idx, n.shape, x.shape))
            linear = self.offset(n.shape, idx)
            return self.value(x, tuple(self.delinearize(linear, x.shape)))
        if op == "transpose":
            xi = [None] * n.ndim
            for i, p in enumerate(a["perm"]):
                xi[p] = idx[i]
            return self.value(n.inputs[0], tuple(xi))
        if op == "slice":
            xi = [
                self.add(self.size(lo), self.mul(i, self.size(st)))
                for i, lo, st in zip(idx, a["start"], a["stride"])
            ]
            return self.value(n.inputs[0], tuple(xi))
        if op == "rev":
            x = n.inputs[0]
            xi = list(idx)
            for d in a["axes"]:
                xi[d] = self.iop("isub", self.size(x.shape[d] - 1), idx[d])
            return self.value(x, tuple(xi))
        if op == "pad":
            return self.pad(n, idx)
        if op == "concatenate":
            return self.concatenate(n, idx)
        if op == "gather":
            return self.gather(n, idx)
        args = [self.value(i, idx) for i in n.inputs]  # elementwise
        attr = a.get("dtype") if op == "convert" else None
        return self.expr(op, args, attr, _dtype(n))

    def unit_reshape(self, idx, shape, to):
        live = [i for i, d in zip(idx, shape) if d != 1]
        it = iter(live)
        return tuple(self.int(0) if d == 1 else next(it) for d in to)

    def clamp(self, i, n):
        return self.iop("imax", self.iop("imin", i, self.size(n - 1)), self.int(0))

    def pad(self, n: Node, idx) -> int:
        x, v = n.inputs
        a = n.kwargs
        ok, xi = None, []
        for i, lo, it, size in zip(idx, a["low"], a["interior"], x.shape):
            t = self.iop("isub", i, self.size(lo))
            step = self.size(it + 1)
            q = self.iop("idiv", t, step)
            conds = [
                self.iop("ile", self.int(0), t),
                self.iop("ieq", self.iop("imod", t, step), self.int(0)),
                self.iop("ilt", q, self.size(size)),
            ]
            for c in conds:
                ok = c if ok is None else self.iop("iand", ok, c)
            xi.append(self.clamp(q, max(size, 1)))
        inside = self.value(x, tuple(xi)) if x.type.size else self.value(v, ())
        fill = self.value(v, ())
        if ok is None:
            return inside
        return self.expr(
            "select", (self.expr("ibool", (ok,), None, "bool"), inside, fill), None, _dtype(n)
        )

    def concatenate(self, n: Node, idx) -> int:
        axis = n.attr("axis")
        out, start = None, 0
        pieces = []
        for x in n.inputs:
            size = x.shape[axis]
            if size:
                pieces.append((x, start, size))
            start += size
        for x, lo, size in reversed(pieces):
            xi = list(idx)
            # every piece is read (select is branch-free): clamp so reads stay in bounds
            xi[axis] = self.clamp(self.iop("isub", idx[axis], self.size(lo)), size)
            val = self.value(x, tuple(xi))
            if out is None:
                out = val
            else:
                cond = self.iop("ilt", idx[axis], self.size(lo + size))
                out = self.expr(
                    "select", (self.expr("ibool", (cond,), None, "bool"), val, out), None, _dtype(n)
                )
        return out

    def gather(self, n: Node, idx) -> int:
        x, indices = n.inputs
        k = indices.shape[-1]
        lead = idx[: indices.ndim - 1]
        rows = []
        for j in range(k):
            r = self.value(indices, tuple(lead) + (self.int(j),))
            r = self.expr("index", (r,), None, INDEX)  # integer value -> i64
            size = x.shape[j]
            wrapped = self.expr(
                "iselect", (self.iop("ilt", r, self.int(0)), self.add(r, self.size(size)), r)
            )
            rows.append(self.clamp(wrapped, max(size, 1)))
        rest = idx[indices.ndim - 1 :]
        return self.value(x, tuple(rows) + tuple(rest))

    # -- reductions -----------------------------------------------------------------------
    def reduction(self, n: Node) -> int:
        got = self.red_of.get(id(n))
        if got is not None:
            return got
        kind = self.k.index[id(n)]
        x = n.inputs[0]
        per_row = False
        if kind == FINAL:
            level = "total"
            xkind = self.k.index.get(id(x), FULL)
            if (
                self.k.has(x)
                and xkind not in (FULL, FINAL)
                or (not self.k.has(x) and _sq(x.shape) != _sq(self.k.shape))
            ):
                xi, per_row = self.row_index(x), True
            else:
                xi = self.full_index(x)
        else:
            level = "row"
            xi = self.full_index(x)
        value = self.value(x, xi)
        comb = COMBINERS[n.op]
        position = None
        if comb in ("argmax", "argmin"):
            axis = n.attr("axis")
            position = xi[axis]  # the index along the reduced axis
        phase = 0
        if level == "row":
            phase = 1 + max((self.p.reductions[r].phase for r in self.p.reads([value]) if
                             self.p.reductions[r].level == "row"), default=-1)  # fmt: skip
        r = Reduction(comb, value, _dtype(x), level, phase, position, per_row)
        got = self.red_of[id(n)] = len(self.p.reductions)
        self.p.reductions.append(r)
        return got

    # -- the program ----------------------------------------------------------------------
    def run(self) -> Program:
        k = self.k
        for o in k.outputs:
            kind = k.index[id(o)]
            if kind == OTHER:
                raise ValueError(f"{k.name}: output {o.op} is stored at a computed index")
            if kind == FINAL:
                level, idx = "total", tuple(self.int(0) for _ in o.shape)
            elif kind == FULL:
                level, idx = "full", self.full_index(o)
            else:
                level, idx = "row", self.row_index(o)
            value = self.value(o, idx)
            buf = self.buffer(o, "out")
            self.p.stores.append(Store(buf, self.offset(o.shape, idx), value, level))
        # inputs first, then outputs, in a stable order
        order = [i for i, b in enumerate(self.p.buffers) if b.role == "in"]
        order += [i for i, b in enumerate(self.p.buffers) if b.role == "out"]
        remap = {old: new for new, old in enumerate(order)}
        self.p.buffers = [self.p.buffers[i] for i in order]
        self.p.exprs = [
            Expr(e.op, e.args, remap[e.attr], e.dtype) if e.op == "load" else e
            for e in self.p.exprs
        ]
        for s in self.p.stores:
            s.buffer = remap[s.buffer]
        return self.p


RECORD = 16  # bytes per total reduction in a partials block: the value at 0, a position at 8


def total_reductions(program: Program) -> list:
    """Indices (into ``program.reductions``) of the total reductions, in record order."""
    return [i for i, r in enumerate(program.reductions) if r.level == "total"]


def partials_size(program: Program) -> int:
    """Bytes of one partials block: ``RECORD`` per total reduction."""
    return RECORD * len(total_reductions(program))


def describe(kernel: Kernel) -> Program:
    """The loop program of one fused kernel (not a library call)."""
    if kernel.kind == "library":
        raise ValueError(f"{kernel.name} is a library call, not a loop kernel")
    return _Lowering(kernel).run()


# -- a reference evaluator (for tests, and as the executable definition) --------------------
def evaluate(program: Program, inputs, slots=None) -> list:
    """Run ``program`` with NumPy, element by element semantics vectorized over the loop nest:
    the meaning every backend's code must have. Returns the output arrays."""
    from mlc.ir.graph import PRIMITIVES

    slots = program.slots if slots is None else slots
    shape = tuple(slots[program.exprs[e].attr] for e in program.extents)
    grids = np.indices(shape, dtype=np.int64) if shape else np.zeros((0,), np.int64)
    env: dict[int, np.ndarray] = {}
    bufs = [np.ascontiguousarray(a).reshape(-1) for a in inputs]
    out_shapes = [
        tuple(slots[program.exprs[d].attr] for d in b.shape)
        for b in program.buffers
        if b.role == "out"
    ]
    outs = [
        np.zeros(s, dtype=b.dtype)
        for s, b in zip(out_shapes, [b for b in program.buffers if b.role == "out"])
    ]
    flat_outs = [o.reshape(-1) for o in outs]
    n_in = len(bufs)
    accs = {}

    def ev(i):
        if i in env:
            return env[i]
        e = program.exprs[i]
        args = [ev(a) for a in e.args]
        if e.op == "idx":
            v = grids[e.attr]
        elif e.op == "size":
            v = np.int64(slots[e.attr])
        elif e.op == "int":
            v = np.int64(e.attr)
        elif e.op == "const":
            v = np.asarray(e.attr, dtype=e.dtype)
        elif e.op == "load":
            b = bufs[e.attr]
            v = b[np.asarray(args[0], np.int64)] if b.size else np.zeros(np.shape(args[0]), b.dtype)
        elif e.op == "acc":
            v = accs[e.attr]
        elif e.op in ("iadd", "isub", "imul", "idiv", "imod", "imin", "imax"):
            f = {"iadd": np.add, "isub": np.subtract, "imul": np.multiply,
                 "idiv": np.floor_divide, "imod": np.remainder, "imin": np.minimum,
                 "imax": np.maximum}[e.op]  # fmt: skip
            with np.errstate(all="ignore"):
                v = f(*args)
        elif e.op in ("ilt", "ile", "ieq", "iand"):
            f = {"ilt": np.less, "ile": np.less_equal, "ieq": np.equal, "iand": np.logical_and}
            v = f[e.op](*args)
        elif e.op == "ibool":
            v = np.asarray(args[0], bool)
        elif e.op == "iselect":
            v = np.where(*args)
        elif e.op == "index":
            v = np.asarray(args[0]).astype(np.int64)
        else:
            prim = PRIMITIVES[e.op]
            attrs = {"dtype": e.attr} if e.op == "convert" else {}
            v = prim.impl(*[np.asarray(x) for x in args], **attrs)
        env[i] = v
        return v

    full = shape
    for phase in range(program.phases):  # row reductions, phase by phase
        for r_id, r in enumerate(program.reductions):
            if r.level != "row" or r.phase != phase:
                continue
            val = np.broadcast_to(ev(r.value), full)
            accs[r_id] = _reduce(r, val, program.inner, full, ev)
            accs[r_id] = _expand(accs[r_id], program.inner, full)
        env.clear()
    for r_id, r in enumerate(program.reductions):
        if r.level == "total":
            val = np.broadcast_to(ev(r.value), full)
            sel = ()
            if r.per_row:  # once per outer index: the inner axes at index 0
                sel = tuple(
                    slice(0, 1) if a in program.inner else slice(None) for a in range(len(full))
                )
                val = val[sel]
            accs[r_id] = _reduce(r, val, tuple(range(len(full))), full, ev, sel).reshape(())
    env.clear()
    # row stores happen once per outer index and total stores once, even where the inner axes
    # (or the whole loop nest) are empty: each level is evaluated over its own index space
    row_shape = tuple(1 if a in program.inner else n for a, n in enumerate(full))
    for level, at in (("full", full), ("row", row_shape), ("total", ())):
        grids = np.indices(at, dtype=np.int64) if at else np.zeros((0,), np.int64)
        env.clear()
        for s in program.stores:
            if s.level != level:
                continue
            off = np.broadcast_to(ev(s.offset), at)
            val = np.broadcast_to(ev(s.value), at)
            tgt = flat_outs[s.buffer - n_in]
            if tgt.size:
                tgt[np.asarray(off).reshape(-1)] = np.asarray(val).reshape(-1)
    return outs


def _reduce(r: Reduction, val, axes, full, ev, sel=()):
    axes = tuple(axes)
    with np.errstate(all="ignore"):
        if r.combiner == "sum":
            return np.sum(val, axis=axes, dtype=val.dtype)
        if r.combiner == "prod":
            return np.prod(val, axis=axes, dtype=val.dtype)
        if r.combiner == "max":
            return np.max(val, axis=axes) if val.size else val.sum(axis=axes)
        if r.combiner == "min":
            return np.min(val, axis=axes) if val.size else val.sum(axis=axes)
        # argmax/argmin over the reduced axes in row-major order (first occurrence wins); the
        # result is the position expr at the winner; an empty reduction gives 0
        pos = np.broadcast_to(ev(r.position), full)[sel]
        lead = val.ndim - len(axes)
        n = int(np.prod([val.shape[a] for a in axes]))
        if n == 0:
            return np.zeros(val.shape[:lead] if lead else (), np.int64)

        def flat(a):
            return np.moveaxis(a, axes, range(lead, val.ndim)).reshape(-1, n)

        f = np.argmax if r.combiner == "argmax" else np.argmin
        which = f(flat(val), axis=-1)
        got = np.take_along_axis(flat(pos), which[:, None], -1)[:, 0]
        return got.reshape([val.shape[a] for a in range(val.ndim) if a not in axes])


def _expand(acc, inner, full):
    """A row reduction's value broadcast back over the inner axes (for exprs that read it)."""
    shape = [1 if a in inner else n for a, n in enumerate(full)]
    return np.asarray(acc).reshape(shape)
