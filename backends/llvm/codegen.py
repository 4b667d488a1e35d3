"""LLVM IR for a kernel ``Program`` (``mlc.backends.kernel``), built with llvmlite's IR builder.

``emit_program(module, program, name)`` adds two functions to ``module``:

- ``void NAME(i64* slots, i8** buffers, i64 begin, i64 end, i8* partials)`` runs the loop nest
  with its first outer axis (``program.outer[0]``) restricted to ``[begin, end)`` and every other
  axis in full (a program with no outer axis runs its one iteration when ``begin < end``).
  ``slots`` holds the run-time sizes (``Program.slots``), ``buffers`` one data pointer per
  ``Program.buffers`` entry (inputs, then outputs; C-contiguous; bool is one byte, 0 or 1).
  Per outer index: one pass over the inner axes per reduction phase, then the ``row`` stores and
  the totals of per-row values, then a last pass with the ``full`` stores and the other totals
  (merged into the last phase's pass when nothing there reads that phase's results). Totals
  accumulate over this call's range and are written to ``partials`` at the end. The innermost
  loop runs over the last axis: a reduction that keeps the last axis (a column sum) runs it in
  strips of ``STRIP`` lanes, each lane with its own accumulator, the lane loop innermost.
- ``void NAME_final(i64* slots, i8** buffers, i8* partials, i64 nparts)`` combines ``nparts``
  consecutive partial blocks (in order: sums add in order, max/min propagate NaN, argmax/argmin
  keep the first occurrence), then evaluates and performs the ``total`` stores. It exists for
  every program, so a runtime calls it uniformly (it does nothing when there is nothing to do).

**Partials layout** (``partials_size(program)`` bytes per call): one 16-byte record per total
reduction, in ``Program.reductions`` order: the accumulated value in its own dtype at byte 0
(float32/int32 take bytes 0-3, bool byte 0, float64/int64 bytes 0-7), then an i64 at byte 8: the
position for argmax/argmin (-1 while nothing was seen), unused otherwise. ``NAME_final`` reads
``nparts`` such blocks back to back.

**Semantics** are NumPy's (each primitive's ``impl``), bit for bit outside reductions: float
arithmetic carries no fast-math flags (an expression recomputed in two phases gives the same
bits); only float sum/prod accumulators carry ``reassoc nsz`` (so they vectorize; never
nnan/ninf). Reductions of floats use ``llvm.maximum``/``llvm.minimum``; elementwise max/min
follow ``np.maximum``/``np.minimum`` exactly (NaN propagates, equal values give the second
operand, so ``maximum(-0.0, 0.0)`` is ``0.0``). Integer arithmetic wraps; integer floor_div/rem
by zero give 0 and ``MIN // -1`` wraps, as NumPy; float floor_div/rem follow NumPy's
``npy_divmod``; float -> int conversion of NaN or out-of-range values gives INT_MIN (x86 NumPy);
integer pow with a negative exponent (NumPy raises) gives ``trunc(1 / x**-y)``. Transcendentals
come from ``mathlib`` (branch-free, vectorizable). Empty reductions give 0 for sum, 1 for prod and
0 for max/min/argmax/argmin (``kernel.evaluate``'s convention; NumPy raises for the last four).

>>> import numpy as np, mlc
>>> from mlc.ir.passes.fusion import fuse
>>> from mlc.backends.kernel import describe
>>> g = mlc.trace(lambda x: np.exp(x) + 1, np.ones(4, np.float32))
>>> m = module_for([describe(k) for k in fuse(g).fused_kernels])
>>> sorted(f.name for f in m.functions if not f.is_declaration and f.linkage != "internal")
['add_0', 'add_0_final']
"""

from __future__ import annotations

from collections.abc import Mapping

from llvmlite import ir
from mlc.backends.kernel import RECORD, partials_size, total_reductions  # noqa: F401

from . import mathlib

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
VOID = ir.VoidType()

# register types (bool is i1 in registers, one byte in memory; "i64" is index arithmetic)
REG = {"bool": I1, "int32": I32, "int64": I64, "float32": F32, "float64": F64, "i64": I64}
MEM = {**REG, "bool": I8}
SIZE = {"bool": 1, "int32": 4, "int64": 8, "float32": 4, "float64": 8}
STRIP = 64  # lanes per strip of the last axis when a reduction keeps it (column reductions)

_FLOATS = ("float32", "float64")
_INTS = ("int32", "int64", "i64")
_ACC_FLAGS = ("reassoc", "nsz")  # float sum accumulators only

_MATH_UNARY = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "sin", "cos", "tan",
    "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "floor", "ceil",
    "trunc",
}  # fmt: skip
_MATH_BINARY = {"pow", "atan2", "hypot"}
_FCMP = {"eq": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}  # ordered; ne is unordered
_ICMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _c(ty, v):
    return ir.Constant(ty, v)


def _is_float(dtype) -> bool:
    return dtype in _FLOATS


def emit_program(module: ir.Module, program, name: str | None = None):
    """Add ``NAME`` and ``NAME_final`` for ``program`` to ``module`` (see the module docstring);
    returns the two ``ir.Function``s."""
    name = name or program.name
    kernel = _KernelEmitter(module, program, name).emit()
    final = _FinalEmitter(module, program, name).emit()
    return kernel, final


def module_for(programs, name: str = "mlc_kernels") -> ir.Module:
    """One module holding every program: a list (named by ``Program.name``, which must be
    unique) or a mapping ``{name: program}``."""
    module = ir.Module(name=name)
    items = programs.items() if isinstance(programs, Mapping) else [(p.name, p) for p in programs]
    seen = set()
    for n, p in items:
        if n in seen:
            raise ValueError(f"two programs named {n!r} in one module")
        seen.add(n)
        emit_program(module, p, n)
    return module


# -- expression emission shared by the kernel and its final function -----------------------------
class _Emitter:
    def __init__(self, module, program, name):
        self.m, self.p, self.name = module, program, name
        self.scopes: list[dict] = []  # memo per loop scope, innermost last
        self.idx: dict[int, ir.Value] = {}  # loop axis -> its index in the current loop nest
        self.acc_value: dict[int, ir.Value] = {}  # reduction -> its value where it is known
        self.sizes: dict[int, ir.Value] = {}
        self.bufs: list = []
        self._nonneg: dict[int, bool] = {}
        self.strip = None  # (start, elements left) of the current strip of the last axis
        self.lane = None  # the current lane of that strip
        self.streaming = False  # stores are non-temporal (a streaming final pass)
        self.streamed = False  # some pass streamed: fence before returning

    # -- scopes ---------------------------------------------------------------------------
    def value(self, e: int):
        for scope in reversed(self.scopes):
            got = scope.get(e)
            if got is not None:
                return got
        v = self.compute(e)
        self.scopes[-1][e] = v
        return v

    def loop(self, lo, hi, body, step=1):
        """``for i in [lo, hi) by step: body(i)``: a guarded, rotated loop, phi induction."""
        b = self.b
        fn = b.function
        pre = b.block
        loop_bb, exit_bb = fn.append_basic_block("loop"), fn.append_basic_block("after")
        b.cbranch(b.icmp_signed("<", lo, hi), loop_bb, exit_bb)
        b.position_at_end(loop_bb)
        i = b.phi(I64, "i")
        i.add_incoming(lo, pre)
        self.scopes.append({})
        body(i)
        self.scopes.pop()
        nxt = b.add(i, _c(I64, step), flags=("nuw", "nsw"))
        i.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, hi), loop_bb, exit_bb)
        b.position_at_end(exit_bb)

    def nest(self, axes, body, first_range=None):
        """Nested loops over ``axes`` (the first over ``first_range`` when given)."""
        if not axes:
            body()
            return

        def level(k):
            if k == len(axes):
                body()
                return
            a = axes[k]
            lo, hi = (
                first_range if k == 0 and first_range else (_c(I64, 0), self.extent(a))
            )  # fmt: skip

            def inner(i):
                self.idx[a] = i
                level(k + 1)
                del self.idx[a]

            self.loop(lo, hi, inner)

        level(0)

    def extent(self, axis):
        return self.value(self.p.extents[axis])

    def count(self, axes):
        """The number of elements of the loop axes ``axes`` (an i64 value)."""
        n = _c(I64, 1)
        for a in axes:
            n = self.b.mul(n, self.extent(a))
        return n

    # -- memory ---------------------------------------------------------------------------
    def load_sizes(self, slots_ptr):
        for e in self.p.exprs:
            if e.op == "size" and e.attr not in self.sizes:
                ptr = self.b.gep(slots_ptr, [_c(I64, e.attr)], inbounds=True)
                self.sizes[e.attr] = self.b.load(ptr, f"slot{e.attr}", align=8)

    def load(self, buf, offset):
        dtype = self.p.buffers[buf].dtype
        ptr = self.b.gep(self.bufs[buf], [offset], inbounds=True)
        v = self.b.load(ptr, align=SIZE[dtype])
        return self.b.icmp_unsigned("!=", v, _c(I8, 0)) if dtype == "bool" else v

    def store(self, buf, offset, v):
        dtype = self.p.buffers[buf].dtype
        if dtype == "bool":
            v = self.b.zext(v, I8)
        ptr = self.b.gep(self.bufs[buf], [offset], inbounds=True)
        inst = self.b.store(v, ptr, align=SIZE[dtype])
        if self.streaming:
            inst.set_metadata("nontemporal", self.m.add_metadata([ir.Constant(I32, 1)]))

    # -- expressions ----------------------------------------------------------------------
    def compute(self, i: int):
        e = self.p.exprs[i]
        b, op = self.b, e.op
        if op == "idx":
            return self.idx[e.attr]
        if op == "size":
            return self.sizes[e.attr]
        if op == "int":
            return _c(I64, e.attr)
        if op == "const":
            return self.const(e.attr, e.dtype)
        if op == "acc":
            return self.acc(e.attr, e.dtype)
        args = [self.value(a) for a in e.args]
        if op == "load":
            return self.load(e.attr, args[0])
        if op in ("iadd", "isub", "imul", "imin", "imax", "idiv", "imod"):
            return self.index_op(op, e.args, *args)
        if op in ("ilt", "ile", "ieq"):
            return b.icmp_signed({"ilt": "<", "ile": "<=", "ieq": "=="}[op], *args)
        if op == "iand":
            return b.and_(*args)
        if op == "ibool":
            return args[0]
        if op == "iselect":
            return b.select(*args)
        if op == "index":
            return self.convert(args[0], self.p.exprs[e.args[0]].dtype, "int64")
        src = self.p.exprs[e.args[0]].dtype if e.args else e.dtype
        return self.elementwise(op, e, src, args)

    def const(self, v, dtype):
        ty = REG[dtype]
        if dtype == "bool":
            return _c(I1, int(bool(v)))
        if _is_float(dtype):
            return _c(ty, float(v))
        bits = ty.width
        v = int(v) & ((1 << bits) - 1)
        return _c(ty, v - (1 << bits) if v >> (bits - 1) else v)

    def nonneg(self, i: int) -> bool:
        """Whether index expr ``i`` is provably >= 0 (then idiv/imod need no floor fix-up)."""
        got = self._nonneg.get(i)
        if got is None:
            e = self.p.exprs[i]
            if e.op in ("idx", "size"):
                got = True
            elif e.op == "int":
                got = e.attr >= 0
            elif e.op in ("iadd", "imul", "idiv", "imod", "imin", "iselect"):
                args = e.args[1:] if e.op == "iselect" else e.args
                got = all(self.nonneg(a) for a in args)
            elif e.op == "imax":
                got = any(self.nonneg(a) for a in e.args)
            else:
                got = False
            self._nonneg[i] = got
        return got

    def index_op(self, op, ids, x, y):
        b = self.b
        if op in ("iadd", "isub", "imul", "imin", "imax"):  # the integer elementwise ops
            return self.int_op(op[1:], I64, [x, y])
        # floor division / modulo; a zero divisor (only for empty arrays) is made 1
        zero, one = _c(I64, 0), _c(I64, 1)
        y = b.select(b.icmp_signed("==", y, zero), one, y)
        if self.nonneg(ids[0]) and self.nonneg(ids[1]):
            return b.udiv(x, y) if op == "idiv" else b.urem(x, y)
        q, r = b.sdiv(x, y), b.srem(x, y)
        fix = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, y), zero))
        if op == "idiv":
            return b.sub(q, b.zext(fix, I64))
        return b.add(r, b.select(fix, y, zero))

    def acc(self, r: int, dtype):
        v = self.acc_value.get(r)
        if v is None:
            raise RuntimeError(f"{self.name}: reduction {r} is read before it is computed")
        red = self.p.reductions[r]
        if red.combiner in ("argmax", "argmin"):
            return self.convert(v, "i64", dtype)
        return v

    def math(self, name, dtype, *args):
        return self.b.call(mathlib.emit(self.m, name, dtype), list(args))

    # -- elementwise primitives -----------------------------------------------------------
    def elementwise(self, op, e, src, args):
        """``op`` of NumPy on operands of dtype ``src``; result dtype ``e.dtype``."""
        b = self.b
        fl, ty = _is_float(src), REG[src]
        if op == "convert":
            return self.convert(args[0], src, e.dtype)
        if op == "barrier":
            return args[0]
        if op == "select":
            return b.select(*args)
        if fl and (op in _MATH_UNARY or op in _MATH_BINARY):
            return self.math(op, src, *args)
        if op == "round":
            return self.math("rint", src, *args)
        if op in ("is_nan", "is_inf", "is_finite"):
            if not fl:
                return _c(I1, int(op == "is_finite"))
            x = args[0]
            if op == "is_nan":
                return b.fcmp_unordered("uno", x, x)
            ax = self.math("fabs", src, x)
            cmp = "==" if op == "is_inf" else "!="
            return b.fcmp_ordered(cmp, ax, _c(ty, float("inf")))
        if op == "not":
            return b.xor(args[0], _c(I1, 1))
        if op in ("and", "or", "xor"):
            return {"and": b.and_, "or": b.or_, "xor": b.xor}[op](*args)
        if op in _ICMP:
            x, y = args
            if fl:
                if op == "ne":
                    return b.fcmp_unordered("!=", x, y)
                return b.fcmp_ordered(_FCMP[op], x, y)
            if src == "bool":
                return b.icmp_unsigned(_ICMP[op], x, y)
            return b.icmp_signed(_ICMP[op], x, y)
        if src == "bool":
            return self.bool_arith(op, args)
        if fl:
            return self.float_op(op, src, args)
        return self.int_op(op, ty, args)

    def bool_arith(self, op, args):
        b = self.b
        if op in ("add", "max"):
            return b.or_(*args)
        if op in ("mul", "min"):
            return b.and_(*args)
        raise NotImplementedError(f"llvm codegen: {op} on bool")

    def float_op(self, op, dtype, args):
        b, ty = self.b, REG[dtype]
        x = args[0]
        if op == "neg":
            return b.fneg(x)
        if op == "abs":
            return self.math("fabs", dtype, x)
        if op == "sign":  # NaN stays NaN, -0.0 gives +0.0 (np.sign)
            zero = _c(ty, 0.0)
            out = b.select(b.fcmp_ordered("==", x, zero), zero, x)
            out = b.select(b.fcmp_ordered("<", x, zero), _c(ty, -1.0), out)
            return b.select(b.fcmp_ordered(">", x, zero), _c(ty, 1.0), out)
        y = args[1]
        if op == "add":
            return b.fadd(x, y)
        if op == "sub":
            return b.fsub(x, y)
        if op == "mul":
            return b.fmul(x, y)
        if op == "div":
            return b.fdiv(x, y)
        if op in ("max", "min"):  # np.maximum: x if x > y or x is NaN, else y
            wins = b.fcmp_ordered(">" if op == "max" else "<", x, y)
            wins = b.or_(wins, b.fcmp_unordered("uno", x, x))
            return b.select(wins, x, y)
        if op in ("floor_div", "rem"):
            return self.float_divmod(op, dtype, x, y)
        raise NotImplementedError(f"llvm codegen: {op} on {dtype}")

    def float_divmod(self, op, dtype, a, b_):
        """NumPy's npy_floor_divide / npy_remainder (npy_divmod), select by select."""
        b, ty = self.b, REG[dtype]
        zero, one, half = _c(ty, 0.0), _c(ty, 1.0), _c(ty, 0.5)
        fmod = b.frem(a, b_)
        if op == "rem":
            mod_nz = b.fcmp_unordered("!=", fmod, zero)  # C's `if (mod)`: true for NaN
            flip = b.xor(b.fcmp_ordered("<", b_, zero), b.fcmp_ordered("<", fmod, zero))
            mod = b.select(b.and_(mod_nz, flip), b.fadd(fmod, b_), fmod)
            mod = b.select(mod_nz, mod, self.math("copysign", dtype, zero, b_))
            return b.select(b.fcmp_ordered("==", b_, zero), fmod, mod)
        quot = b.fdiv(a, b_)
        div = b.fdiv(b.fsub(a, fmod), b_)
        mod_nz = b.fcmp_unordered("!=", fmod, zero)
        flip = b.xor(b.fcmp_ordered("<", b_, zero), b.fcmp_ordered("<", fmod, zero))
        div = b.select(b.and_(mod_nz, flip), b.fsub(div, one), div)
        fl = self.math("floor", dtype, div)
        snap = b.select(b.fcmp_ordered(">", b.fsub(div, fl), half), b.fadd(fl, one), fl)
        out = b.select(
            b.fcmp_unordered("!=", div, zero), snap, self.math("copysign", dtype, zero, quot)
        )
        return b.select(b.fcmp_ordered("==", b_, zero), quot, out)

    def int_op(self, op, ty, args):
        b = self.b
        zero = _c(ty, 0)
        x = args[0]
        if op == "neg":
            return b.sub(zero, x)
        if op == "abs":
            return b.select(b.icmp_signed("<", x, zero), b.sub(zero, x), x)
        if op == "sign":
            pos = b.zext(b.icmp_signed(">", x, zero), ty)
            return b.sub(pos, b.zext(b.icmp_signed("<", x, zero), ty))
        y = args[1]
        if op == "add":
            return b.add(x, y)
        if op == "sub":
            return b.sub(x, y)
        if op == "mul":
            return b.mul(x, y)
        if op == "max":
            return b.select(b.icmp_signed(">", x, y), x, y)
        if op == "min":
            return b.select(b.icmp_signed("<", x, y), x, y)
        if op in ("floor_div", "rem"):
            return self.int_divmod(op, ty, x, y)
        if op == "pow":
            return self.int_pow(ty, x, y)
        raise NotImplementedError(f"llvm codegen: {op} on integers")

    def int_divmod(self, op, ty, x, y):
        """Python/NumPy floor semantics; y == 0 gives 0 and MIN // -1 wraps, without trapping."""
        b = self.b
        zero, one, m1 = _c(ty, 0), _c(ty, 1), _c(ty, -1)
        y_zero, y_m1 = b.icmp_signed("==", y, zero), b.icmp_signed("==", y, m1)
        safe = b.select(b.or_(y_zero, y_m1), one, y)
        q, r = b.sdiv(x, safe), b.srem(x, safe)
        fix = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, safe), zero))
        if op == "floor_div":
            out = b.select(y_m1, b.sub(zero, x), b.sub(q, b.zext(fix, ty)))
        else:
            out = b.select(y_m1, zero, b.add(r, b.select(fix, safe, zero)))
        return b.select(y_zero, zero, out)

    def int_pow(self, ty, x, y):
        """x ** y by squaring over every bit of y (straight-line, so it vectorizes; products
        wrap). y < 0 (NumPy raises): trunc(1 / x**-y), i.e. 1, -1 or 0."""
        b = self.b
        zero, one = _c(ty, 0), _c(ty, 1)
        out, base = one, x
        for k in range(ty.width - 1):
            bit = b.trunc(b.lshr(y, _c(ty, k)), I1)
            out = b.select(bit, b.mul(out, base), out)
            if k < ty.width - 2:
                base = b.mul(base, base)
        odd = b.trunc(y, I1)
        neg_one = b.select(odd, _c(ty, -1), one)
        negative = b.select(
            b.icmp_signed("==", x, one),
            one,
            b.select(b.icmp_signed("==", x, _c(ty, -1)), neg_one, zero),
        )
        return b.select(b.icmp_signed("<", y, zero), negative, out)

    def convert(self, x, src, dst):
        """``astype``: float -> int of NaN/out-of-range values gives INT_MIN, -> bool is != 0."""
        b = self.b
        src = "int64" if src == "i64" else src
        dst = "int64" if dst == "i64" else dst
        if src == dst:
            return x
        sty, dty = REG[src], REG[dst]
        if dst == "bool":
            if _is_float(src):
                return b.fcmp_unordered("!=", x, _c(sty, 0.0))
            return b.icmp_signed("!=", x, _c(sty, 0))
        if src == "bool":
            return b.uitofp(x, dty) if _is_float(dst) else b.zext(x, dty)
        if _is_float(src) and _is_float(dst):
            return b.fpext(x, dty) if dst == "float64" else b.fptrunc(x, dty)
        if _is_float(dst):
            return b.sitofp(x, dty)
        if _is_float(src):
            bits = dty.width
            lo, hi = _c(sty, -(2.0 ** (bits - 1))), _c(sty, 2.0 ** (bits - 1))
            ok = b.and_(b.fcmp_ordered(">=", x, lo), b.fcmp_ordered("<", x, hi))
            out = b.fptosi(b.select(ok, x, _c(sty, 0.0)), dty)  # never poison
            return b.select(ok, out, _c(dty, -(1 << (bits - 1))))
        if dty.width > sty.width:
            return b.sext(x, dty)
        return b.trunc(x, dty)

    # -- reductions -----------------------------------------------------------------------
    def identity(self, r):
        red = self.p.reductions[r]
        dtype, comb = red.dtype, red.combiner
        ty = REG[dtype]
        if comb == "sum":
            return _c(ty, -0.0) if _is_float(dtype) else _c(ty, 0)
        if comb == "prod":
            return _c(ty, 1.0) if _is_float(dtype) else _c(ty, 1)
        high = comb in ("min", "argmin")
        if _is_float(dtype):
            return _c(ty, float("inf") if high else float("-inf"))
        if dtype == "bool":
            return _c(I1, int(high))
        bits = ty.width
        return _c(ty, (1 << (bits - 1)) - 1 if high else -(1 << (bits - 1)))

    def combine(self, r, acc, v, flags=_ACC_FLAGS):
        """``acc (+) v`` for sum/prod/max/min reduction ``r``."""
        b = self.b
        red = self.p.reductions[r]
        dtype, comb = red.dtype, red.combiner
        if dtype == "bool":
            return (b.or_ if comb in ("sum", "max") else b.and_)(acc, v)
        if _is_float(dtype):
            if comb == "sum":
                return b.fadd(acc, v, flags=flags)
            if comb == "prod":  # in order: a product reassociated can underflow to 0 before
                return b.fmul(acc, v)  # meeting an inf (inf * tiny**3 = nan, not inf)
            return self.math("maximum" if comb == "max" else "minimum", dtype, acc, v)
        if comb == "sum":
            return b.add(acc, v)
        if comb == "prod":
            return b.mul(acc, v)
        return b.select(b.icmp_signed(">" if comb == "max" else "<", acc, v), acc, v)

    def beats(self, r, v, best):
        """Whether value ``v`` replaces ``best`` in argmax/argmin ``r`` (strictly better, or the
        first NaN)."""
        b = self.b
        red = self.p.reductions[r]
        dtype, cmp = red.dtype, (">" if red.combiner == "argmax" else "<")
        if _is_float(dtype):
            first_nan = b.and_(
                b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", best, best)
            )  # fmt: skip
            return b.or_(b.fcmp_ordered(cmp, v, best), first_nan)
        if dtype == "bool":
            return b.icmp_unsigned(cmp, v, best)
        return b.icmp_signed(cmp, v, best)

    def ties(self, r, v, best):
        """Equal values (both NaN counts as equal)."""
        b = self.b
        if _is_float(self.p.reductions[r].dtype):
            both_nan = b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_unordered("uno", best, best))
            return b.or_(b.fcmp_ordered("==", v, best), both_nan)
        return b.icmp_unsigned("==", v, best)

    def finish(self, r, acc, pos, count):
        """The reduction's result: ``count`` elements were reduced (0 -> the empty value)."""
        b = self.b
        red = self.p.reductions[r]
        if red.combiner in ("argmax", "argmin"):
            return b.select(b.icmp_signed("<", pos, _c(I64, 0)), _c(I64, 0), pos)
        if red.combiner == "prod":
            return acc
        ty = REG[red.dtype]
        zero = _c(ty, 0.0) if _is_float(red.dtype) else _c(ty, 0)
        return b.select(b.icmp_signed("==", count, _c(I64, 0)), zero, acc)


_POLY_MATH = (_MATH_UNARY | _MATH_BINARY) - {"sqrt", "floor", "ceil", "trunc"}


def _compute_bound(program) -> bool:
    """Whether the per-element work is compute-bound: a polynomial math function (exp, tanh,
    ...) or a float max/min reduction with no per-element stores (``llvm.maximum`` lowers to a
    long dependent chain). Memory-bound loops stay at LLVM's default width: their zmm loads and
    stores split cache lines (NumPy's large arrays start 16 bytes into one) and run slower."""
    if any(e.op in _POLY_MATH for e in program.exprs):
        return True
    full_stores = any(st.level == "full" for st in program.stores)
    minmax = any(
        r.combiner in ("max", "min") and _is_float(r.dtype) for r in program.reductions
    )  # fmt: skip
    return minmax and not full_stores


def _prefer_wide_vectors(fn):
    """Let the vectorizers use the widest legal registers (zmm on AVX-512 hosts, where LLVM
    otherwise caps itself at 256 bits): compute-bound loops (exp, tanh, the max reduction) run
    up to ~1.8x faster. Only a preference: a host without AVX-512 keeps its own widest width.
    Results are unchanged bit for bit (no fast-math), except float sums, which already
    reassociate."""
    set.add(fn.attributes, '"prefer-vector-width"="512"')  # llvmlite knows no string attributes


# -- the kernel function ---------------------------------------------------------------------
PREFETCH_STRIP = 16  # elements per strip of a prefetching final pass
STREAM_MIN_BYTES = 1 << 24  # outputs this large are written with non-temporal stores


class _KernelEmitter(_Emitter):
    def emit(self):
        p = self.p
        m = self.m
        ptrs = [MEM[buf.dtype].as_pointer() for buf in p.buffers]
        # the body takes each buffer as its own noalias argument (outputs never alias inputs;
        # inputs are only read), then inlines into the exported wrapper
        body_ty = ir.FunctionType(VOID, [I64.as_pointer(), *ptrs, I64, I64, I8.as_pointer()])
        body = ir.Function(m, body_ty, name=f"{self.name}.body")
        body.linkage = "internal"
        body.attributes.add("alwaysinline")
        body.attributes.add("nounwind")
        if _compute_bound(p):
            _prefer_wide_vectors(body)
        for a in body.args[: 1 + len(ptrs)]:
            a.add_attribute("noalias")
        body.args[-1].add_attribute("noalias")

        fnty = ir.FunctionType(VOID, [I64.as_pointer(), I8.as_pointer().as_pointer(), I64, I64,
                                      I8.as_pointer()])  # fmt: skip
        fn = ir.Function(m, fnty, name=self.name)
        fn.attributes.add("nounwind")
        if _compute_bound(p):
            _prefer_wide_vectors(fn)
        slots, buffers, begin, end, partials = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        bufs = []
        for i, ty in enumerate(ptrs):
            raw = b.load(b.gep(buffers, [_c(I64, i)], inbounds=True), align=8)
            bufs.append(b.bitcast(raw, ty))
        b.call(body, [slots, *bufs, begin, end, partials])
        b.ret_void()

        self.b = ir.IRBuilder(body.append_basic_block("entry"))
        self.bufs = list(body.args[1 : 1 + len(ptrs)])
        self.emit_body(body.args[0], body.args[-3], body.args[-2], body.args[-1])
        return fn

    def emit_body(self, slots, begin, end, partials):
        p, b = self.p, self.b
        self.scopes.append({})
        self.slots_ptr = slots
        # accumulators live in allocas (promoted to phis by SROA before vectorization)
        self.acc_ptr, self.pos_ptr = {}, {}
        for r, red in enumerate(p.reductions):
            self.acc_ptr[r] = b.alloca(REG[red.dtype], name=f"acc{r}")
            if red.combiner in ("argmax", "argmin"):
                self.pos_ptr[r] = b.alloca(I64, name=f"pos{r}")
        self.load_sizes(slots)
        totals = total_reductions(p)
        for r in totals:
            self.init_acc(r)
        self.lane = None
        last = p.rank - 1
        if p.inner and last not in p.inner:
            # a reduction that keeps the last axis (a column sum): the last axis goes in strips
            # of STRIP lanes, the innermost loop runs over a strip's lanes (contiguous in memory,
            # vectorizable without reassociation) with one accumulator per lane
            for r, red in enumerate(p.reductions):
                if red.level == "row":
                    self.acc_ptr[r] = b.alloca(ir.ArrayType(REG[red.dtype], STRIP))
                    if r in self.pos_ptr:
                        self.pos_ptr[r] = b.alloca(ir.ArrayType(I64, STRIP))

            def strips():
                lo, hi = (begin, end) if p.outer == (last,) else (_c(I64, 0), self.extent(last))

                def strip(i):
                    self.strip = (i, self.b.sub(hi, i))
                    self.iteration()

                self.loop(lo, hi, strip, step=STRIP)

            self.nest(list(p.outer[:-1]), strips, first_range=(begin, end))
        elif p.outer:
            self.nest(list(p.outer), self.iteration, first_range=(begin, end))
        else:
            done = b.function.append_basic_block("done")
            run = b.function.append_basic_block("run")
            b.cbranch(b.icmp_signed("<", begin, end), run, done)
            b.position_at_end(run)
            self.scopes.append({})
            self.iteration()
            self.scopes.pop()
            b.branch(done)
            b.position_at_end(done)
        for k, r in enumerate(totals):  # this call's partial record
            rec = b.gep(partials, [_c(I64, RECORD * k)], inbounds=True)
            ty = REG[p.reductions[r].dtype]
            acc = b.load(self.acc_ptr[r])
            if ty == I1:
                acc, ty = b.zext(acc, I8), I8
            b.store(acc, b.bitcast(rec, ty.as_pointer()), align=1)
            pos = b.load(self.pos_ptr[r]) if r in self.pos_ptr else _c(I64, -1)
            at = b.gep(partials, [_c(I64, RECORD * k + 8)], inbounds=True)
            b.store(pos, b.bitcast(at, I64.as_pointer()), align=1)
        if self.streamed:  # non-temporal stores are weakly ordered: make them visible first
            b.fence("seq_cst")
        b.ret_void()
        self.scopes.pop()

    def slot(self, ptrs, r):
        """Where reduction ``r`` accumulates: its alloca, or its lane's element in strip mode."""
        ptr = ptrs[r]
        if self.lane is not None and self.p.reductions[r].level == "row":
            return self.b.gep(ptr, [_c(I32, 0), self.lane], inbounds=True)
        return ptr

    def init_acc(self, r):
        self.b.store(self.identity(r), self.slot(self.acc_ptr, r))
        if r in self.pos_ptr:
            self.b.store(_c(I64, -1), self.slot(self.pos_ptr, r))

    def accumulate(self, r):
        b = self.b
        red = self.p.reductions[r]
        v = self.value(red.value)
        acc_ptr = self.slot(self.acc_ptr, r)
        acc = b.load(acc_ptr)
        if red.combiner not in ("argmax", "argmin"):
            b.store(self.combine(r, acc, v), acc_ptr)
            return
        pos_ptr = self.slot(self.pos_ptr, r)
        pos = b.load(pos_ptr)
        better = b.or_(self.beats(r, v, acc), b.icmp_signed("<", pos, _c(I64, 0)))
        b.store(b.select(better, v, acc), acc_ptr)
        b.store(b.select(better, self.value(red.position), pos), pos_ptr)

    def lanes(self, body):
        """``body`` once per outer index: directly, or for each lane of the current strip."""
        if self.strip is None:
            body()
            return
        start, left = self.strip
        last = self.p.rank - 1

        def lane(j):
            self.lane, self.idx[last] = j, self.b.add(start, j)
            body()
            self.lane = None
            del self.idx[last]

        # a full strip has a constant trip count (vectorized without a remainder loop)
        b = self.b
        with b.if_else(b.icmp_signed(">=", left, _c(I64, STRIP))) as (full, part):
            with full:
                self.scopes.append({})
                self.loop(_c(I64, 0), _c(I64, STRIP), lane)
                self.scopes.pop()
            with part:
                self.scopes.append({})
                self.loop(_c(I64, 0), left, lane)
                self.scopes.pop()

    def acc(self, r: int, dtype):
        if self.lane is None or self.p.reductions[r].level != "row":
            return super().acc(r, dtype)
        acc = self.b.load(self.slot(self.acc_ptr, r))
        pos = self.b.load(self.slot(self.pos_ptr, r)) if r in self.pos_ptr else None
        self.acc_value[r] = self.finish(r, acc, pos, self.inner_count)
        out = super().acc(r, dtype)
        del self.acc_value[r]
        return out

    # -- one outer index ------------------------------------------------------------------
    def iteration(self):
        p = self.p
        stores = {lvl: [s for s in p.stores if s.level == lvl] for lvl in ("full", "row")}
        rows = [r for r, red in enumerate(p.reductions) if red.level == "row"]
        per_row = [r for r, red in enumerate(p.reductions) if red.level == "total" and red.per_row]
        full_totals = [
            r for r, red in enumerate(p.reductions) if red.level == "total" and not red.per_row
        ]
        if not p.inner:  # pointwise: everything at this index
            for s in stores["full"] + stores["row"]:
                self.store(s.buffer, self.value(s.offset), self.value(s.value))
            for r in per_row + full_totals:
                self.accumulate(r)
            return
        inner = list(p.inner)
        last = self.final_pass_items(stores["full"], full_totals)
        merge = p.phases > 0 and not (self.p.reads(last) & self.phase(p.phases - 1))
        count = self.inner_count = self.count(inner)
        stash = []
        if last and not merge and self.strip is None:
            stash = self.stash_plan(stores["full"], self.phase(p.phases - 1))
        self.lanes(lambda: [self.init_acc(r) for r in rows])
        for ph in range(p.phases):
            reds = [r for r in rows if p.reductions[r].phase == ph]

            def body(reds=reds, extra=merge and ph == p.phases - 1, ph=ph):
                for r in reds:
                    self.accumulate(r)
                if extra:
                    self.final_pass(stores["full"], full_totals)
                if ph == p.phases - 1:
                    for c, st in stash:
                        self.store(st.buffer, self.value(st.offset), self.value(c))

            self.nest(inner, lambda body=body: self.lanes(body))
            if self.strip is not None:
                continue  # lanes read their results from the accumulator arrays
            for r in reds:  # the phase's results, for later phases and the row stores
                acc = self.b.load(self.acc_ptr[r])
                pos = self.b.load(self.pos_ptr[r]) if r in self.pos_ptr else None
                self.acc_value[r] = self.finish(r, acc, pos, count)

        def row_level():
            for s in stores["row"]:
                self.store(s.buffer, self.value(s.offset), self.value(s.value))
            for r in per_row:
                self.accumulate(r)

        self.lanes(row_level)
        done = {id(st) for c, st in stash if c == st.value}  # stored already, as it is
        finals = [st for st in stores["full"] if id(st) not in done]
        if last and not merge and (finals or full_totals):
            pf = self.prefetch_plan() if self.strip is None and len(inner) == 1 else []

            def final():
                for c, st in stash:  # read back what the last phase stored
                    if id(st) not in done:
                        self.scopes[-1][c] = self.load(st.buffer, self.value(st.offset))
                self.final_pass(finals, full_totals)

            if pf and self.can_stream(finals, stash):
                self.streaming_or_not(lambda: self.strips_with_prefetch(inner[0], final, pf, count))
            elif pf:
                self.strips_with_prefetch(inner[0], final, pf, count)
            else:
                self.nest(inner, lambda: self.lanes(final))
        for r in rows:
            self.acc_value.pop(r, None)

    def can_stream(self, stores, stash) -> bool:
        """Whether the final pass may write with non-temporal stores: it reads no stashed value
        back (that line is in cache: streaming it out would evict it first) and computes no
        polynomial math function (unaligned non-temporal vector stores become scalar ``movnti``,
        and the vectorizer then leaves a compute-bound loop scalar)."""
        if stash or not stores:
            return False
        p = self.p
        used = p.walk([e for st in stores for e in (st.offset, st.value)])
        return not any(p.exprs[i].op in _POLY_MATH for i in used)

    def streaming_or_not(self, emit):
        """``emit()`` twice, behind a run-time test of the loop nest's size: with non-temporal
        stores when the outputs are larger than ``STREAM_MIN_BYTES`` (they would not stay in
        cache anyway, and streaming saves reading each output line before writing it: a third
        of layernorm's traffic, 5.6 -> 3.3 ms on 4096x4096), with plain stores otherwise (a
        small output stays in cache for the kernel that reads it next)."""
        b, p = self.b, self.p
        widest = max(SIZE[p.buffers[st.buffer].dtype] for st in p.stores)
        size = b.mul(self.count(range(p.rank)), _c(I64, widest))
        big = b.icmp_signed(">=", size, _c(I64, STREAM_MIN_BYTES))
        with b.if_else(big) as (then, otherwise):
            with then:
                self.scopes.append({})
                self.streaming = self.streamed = True
                emit()
                self.streaming = False
                self.scopes.pop()
            with otherwise:
                self.scopes.append({})
                emit()
                self.scopes.pop()

    def prefetch_plan(self) -> list:
        """``[(buffer, offset expr)]``: the loads of the first phase of a row (the reads that go
        to memory; later passes over the row hit the cache) from buffers laid out like the loop
        nest, at offsets of pure index arithmetic. The final pass over row ``o`` prefetches them
        for row ``o + 1`` (``offset + row size``): a core then has its next row's reads in flight
        while it writes this row, instead of alternating between a read-only pass and a
        write-only pass (softmax: 25% faster). A prefetch never faults, even past the end."""
        p = self.p

        def load(i):
            return p.exprs[i].op == "load"

        def pure(i):  # no loads: the address is computable for any index
            return not any(p.exprs[j].op in ("load", "acc") for j in p.walk([i]))

        first = p.walk([p.reductions[r].value for r in self.phase(0)], stop=load)
        out = {
            (p.exprs[i].attr, p.exprs[i].args[0])
            for i in first
            if load(i)
            and p.buffers[p.exprs[i].attr].shape == p.extents
            and pure(p.exprs[i].args[0])
        }
        return sorted(out)

    def strips_with_prefetch(self, axis, body, plan, count):
        """The final pass over the one inner ``axis`` in strips of ``PREFETCH_STRIP`` elements
        (a constant trip count: unrolled and vectorized), each strip first prefetching the
        cache lines of the next row that the first phase will read; then the remainder."""
        b = self.b
        n = self.extent(axis)
        full = b.and_(n, _c(I64, -PREFETCH_STRIP))

        def strip(j):
            self.idx[axis] = j
            self.scopes.append({})  # offsets at the strip's start: not for the elements' scope
            for buf, off in plan:
                at = b.add(self.value(off), count)
                size = SIZE[self.p.buffers[buf].dtype]
                for line in range(0, PREFETCH_STRIP * size, 64):
                    self.prefetch(buf, b.add(at, _c(I64, line // size)))
            self.scopes.pop()

            def element(i):
                self.idx[axis] = b.add(j, i)
                body()

            self.loop(_c(I64, 0), _c(I64, PREFETCH_STRIP), element)
            del self.idx[axis]

        self.loop(_c(I64, 0), full, strip, step=PREFETCH_STRIP)

        def rest(i):
            self.idx[axis] = i
            body()
            del self.idx[axis]

        self.loop(full, n, rest)

    def prefetch(self, buf, offset):
        """``llvm.prefetch`` (read, high locality, data cache) of element ``offset``."""
        m = self.b.module
        fn = m.globals.get("llvm.prefetch.p0i8")
        if fn is None:
            ty = ir.FunctionType(VOID, [I8.as_pointer(), I32, I32, I32])
            fn = ir.Function(m, ty, "llvm.prefetch.p0i8")
        ptr = self.b.gep(self.bufs[buf], [offset])  # not inbounds: past the end is fine
        self.b.call(fn, [self.b.bitcast(ptr, I8.as_pointer()), _c(I32, 0), _c(I32, 3), _c(I32, 1)])

    def stash_plan(self, stores, last_phase) -> list:
        """``[(expr, store)]``: expensive values (a polynomial math function) that the last
        phase's loop computes per element and a full store's value needs again in the final
        pass. The last phase stores each into its store's output buffer, where the final pass
        reads it back from cache instead of computing it twice (softmax: one ``exp`` per element,
        not two). One value per store: its buffer holds one element per index."""
        p = self.p
        in_phase = p.walk([p.reductions[r].value for r in last_phase])  # accs have no args
        expensive = {i for i in in_phase if p.exprs[i].op in _POLY_MATH}
        plan = []
        for st in stores:
            dtype = p.buffers[st.buffer].dtype

            def top(i, dtype=dtype):  # computed by the last phase, and worth keeping
                return i in in_phase and p.exprs[i].dtype == dtype and bool(p.walk([i]) & expensive)

            tops = [i for i in p.walk([st.value], stop=top) if top(i)]
            if len(tops) == 1:
                plan.append((tops[0], st))
        return plan

    def final_pass_items(self, stores, totals) -> list:
        items = [e for s in stores for e in (s.offset, s.value)]
        for r in totals:
            red = self.p.reductions[r]
            items += [red.value] + ([red.position] if red.position is not None else [])
        return items

    def final_pass(self, stores, totals):
        for s in stores:
            self.store(s.buffer, self.value(s.offset), self.value(s.value))
        for r in totals:
            self.accumulate(r)

    def phase(self, ph) -> set:
        return {
            r for r, red in enumerate(self.p.reductions) if red.level == "row" and red.phase == ph
        }


# -- the final function ----------------------------------------------------------------------
class _FinalEmitter(_Emitter):
    def emit(self):
        p, m = self.p, self.m
        fnty = ir.FunctionType(
            VOID, [I64.as_pointer(), I8.as_pointer().as_pointer(), I8.as_pointer(), I64]
        )
        fn = ir.Function(m, fnty, name=f"{self.name}_final")
        fn.attributes.add("nounwind")
        slots, buffers, partials, nparts = fn.args
        b = self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.scopes.append({})
        for i, buf in enumerate(p.buffers):
            raw = b.load(b.gep(buffers, [_c(I64, i)], inbounds=True), align=8)
            self.bufs.append(b.bitcast(raw, MEM[buf.dtype].as_pointer()))
        self.load_sizes(slots)
        totals = total_reductions(p)
        accs, poss = {}, {}
        for r in totals:
            accs[r] = b.alloca(REG[p.reductions[r].dtype])
            poss[r] = b.alloca(I64)
            b.store(self.identity(r), accs[r])
            b.store(_c(I64, -1), poss[r])
        block = _c(I64, RECORD * len(totals))

        def combine_part(i):
            base = b.mul(i, block)
            for k, r in enumerate(totals):
                self.combine_record(r, partials, b.add(base, _c(I64, RECORD * k)), accs, poss)

        if totals:
            self.loop(_c(I64, 0), nparts, combine_part)
        everything = list(range(p.rank))
        for r in totals:
            red = p.reductions[r]
            axes = [a for a in p.outer] if red.per_row else everything
            pos = b.load(poss[r])
            self.acc_value[r] = self.finish(r, b.load(accs[r]), pos, self.count(axes))
        for s in p.stores:
            if s.level == "total":
                self.store(s.buffer, self.value(s.offset), self.value(s.value))
        b.ret_void()
        self.scopes.pop()
        return fn

    def combine_record(self, r, partials, offset, accs, poss):
        b = self.b
        red = self.p.reductions[r]
        ty = REG[red.dtype]
        rec = b.gep(partials, [offset], inbounds=True)
        if ty == I1:
            v = b.icmp_unsigned("!=", b.load(rec), _c(I8, 0))
        else:
            v = b.load(b.bitcast(rec, ty.as_pointer()), align=1)
        at = b.gep(partials, [b.add(offset, _c(I64, 8))], inbounds=True)
        pos = b.load(b.bitcast(at, I64.as_pointer()), align=1)
        acc = b.load(accs[r])
        if red.combiner not in ("argmax", "argmin"):
            b.store(self.combine(r, acc, v, flags=()), accs[r])  # in order, no reassociation
            return
        cur = b.load(poss[r])
        zero = _c(I64, 0)
        seen, empty = b.icmp_signed(">=", pos, zero), b.icmp_signed("<", cur, zero)
        tie_first = b.and_(self.ties(r, v, acc), b.icmp_signed("<", pos, cur))
        better = b.and_(seen, b.or_(empty, b.or_(self.beats(r, v, acc), tie_first)))
        b.store(b.select(better, v, acc), accs[r])
        b.store(b.select(better, pos, cur), poss[r])
