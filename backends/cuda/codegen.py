"""CUDA C for a kernel ``Program`` (``mlc.backends.kernel``), and its launch configuration.

``generate(program, name)`` returns a ``CudaKernel``: ``.source`` (self-contained CUDA C++ that
NVRTC compiles without headers and the CPU emulator runs unchanged), ``.entries`` (each entry
point's parameters as data) and ``.launches(slots, device)`` (grid, block and scratch for given
sizes). The source depends only on ``program.key()`` and ``name``: sizes are run-time arguments.

**Entry points**, all ``extern "C" __global__`` with the same parameters: the slots
(``long long s0..sK``), one typed pointer per buffer (inputs ``const``), and ``unsigned char*
scratch`` when the program has ``total`` stores or reductions.

- ``NAME``: the loop nest with 64-bit index arithmetic; ``NAME_i32`` (programs without a gather
  that divide indices) the same body with 32-bit index arithmetic, chosen at launch when every
  size fits. (Where every offset is the linear index, nothing is divided: no ``NAME_i32``.)
- ``NAME_final`` (programs with totals): one block combines the per-block partial records that
  ``NAME`` left in ``scratch`` and performs the ``total`` stores.
- ``NAME_vec`` (pointwise programs whose every load and store is at the linear index of the
  loop nest, broadcast scalars aside): each thread loads and stores ``lanes`` elements per
  buffer in one vector access (``float4``, ``double2``, ``int4``, ``longlong2``, ``uchar4`` for
  bool, ...), the last ``total % lanes`` elements one by one. Chosen at launch when every vector
  buffer is 16-byte aligned (``aligned=True``). Its index arithmetic is 64-bit (a counter and a
  compare per group), or, where the lanes need their loop indices (an ``iota``: a division per
  axis), 32-bit, as ``NAME_vec_i32``, used only when every size fits.

**Strategies** (docs/cuda-backend.md):

- pointwise (no inner axes): a grid-stride loop over the linear index of the loop nest, split
  into the loop indices where an offset needs them (the vector entry: a grid-stride loop over
  groups of ``lanes``);
- everything with inner axes: a *team* of ``blockDim.x`` threads per outer index ("row"),
  ``blockDim.y`` rows per block, rows in a block-uniform grid-stride loop. Each phase is one pass
  of the team over the row's inner elements (lane ``j`` takes elements ``j, j + team, ...``),
  then a team reduction: ``__shfl_xor_sync`` within the warp, and, for a team of several warps,
  a 32-entry ``__shared__`` array per reduction; lane 0's result is broadcast so every lane uses
  the same bits. The launch picks the team: 1 thread for column reductions (the last axis is an
  outer axis: consecutive threads read consecutive columns), a warp (or less) for rows up to
  1024 elements, a 256-thread block for longer rows. One source serves all three.
- totals: per-thread accumulators, a block reduction, one 16-byte record per total reduction and
  block in ``scratch`` (after a 16-byte header holding the number of blocks), combined in order
  by ``NAME_final``.

**Semantics** are the LLVM backend's (``backends/llvm/codegen.py``): NaN-propagating max/min,
NumPy's float floor division and remainder, integer division by zero gives 0, wrapping integer
arithmetic (done in unsigned types: no undefined behaviour), float -> int of NaN or out-of-range
values gives INT_MIN, argmax/argmin keep the first occurrence and the first NaN. Floats are
compiled with ``--fmad=false`` and without fast math: every expression is rounded as NumPy rounds
it (an expression recomputed in two phases gives the same bits); only float sums and products of
reductions reassociate (across threads). Empty reductions give 0 for sum, max, min, argmax and
argmin, and 1 for prod (``kernel.evaluate``'s convention).

>>> import numpy as np, mlc
>>> from mlc.ir.passes.fusion import fuse
>>> from mlc.backends.kernel import describe
>>> g = mlc.trace(lambda x: np.exp(x) + 1, np.ones(4, np.float32))
>>> k = generate(describe(fuse(g).fused_kernels[0]), "gelu0")
>>> sorted(k.entries)
['gelu0', 'gelu0_vec']
>>> [(l.kernel, l.grid, l.block) for l in k.launches([1 << 20])]
[('gelu0', (4096, 1, 1), (256, 1, 1))]
>>> [(l.kernel, l.grid, l.block) for l in k.launches([1 << 20], aligned=True)]
[('gelu0_vec', (1024, 1, 1), (256, 1, 1))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .cexpr import CTYPE, FLOATS, HELPERS, SIZE, ScalarOps, literal, source
from .vector import VECTOR_ALIGN, VectorPlan, vector_plan  # noqa: F401 (re-exported)

RECORD = 16  # bytes per total reduction and block in scratch: value at 0, position (i64) at 8
HEADER = 16  # scratch starts with the number of blocks that wrote records (i64)
THREADS = 256  # threads per block: 256 x 255 registers fit any SM, so no launch can fail
LONG_ROW = 1024  # rows longer than this get a whole block as their team
I32_LIMIT = (1 << 31) - 1 - (1 << 24)  # 32-bit index math below this (grid-stride headroom)
VECTOR = {("float32", 4): "float4", ("float32", 2): "float2", ("float64", 2): "double2",
          ("int32", 4): "int4", ("int32", 2): "int2", ("int64", 2): "longlong2",
          ("bool", 4): "uchar4", ("bool", 2): "uchar2"}  # fmt: skip

_INDEX_OPS = {"iadd": "+", "isub": "-", "imul": "*", "ilt": "<", "ile": "<=", "ieq": "=="}


@dataclass(frozen=True)
class DeviceInfo:
    """What the launch configuration needs to know about a GPU."""

    arch: int = 90  # compute capability, 90 = sm_90
    sm_count: int = 132
    max_threads_per_block: int = 1024
    max_shared_per_block: int = 48 * 1024
    warp_size: int = 32
    name: str = "NVIDIA H100 (assumed)"


H100 = DeviceInfo()


@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: tuple
    block: tuple
    shared_bytes: int = 0  # dynamic shared memory (the generated kernels use static arrays)
    scratch_bytes: int = 0  # the scratch buffer this launch sequence needs


@dataclass
class CudaKernel:
    name: str
    source: str
    entries: dict  # entry name -> [(kind, ctype)] with kind "i64" or "ptr" (ctype: element type)
    program: object = field(repr=False, default=None)
    code: str = field(repr=False, default="")  # the source less its prelude and helpers
    helpers: tuple = ()  # names of the helpers (``HELPERS``) the code calls
    i32: bool = False  # whether NAME_i32 exists
    totals: int = 0  # total reductions (records per block)
    has_final: bool = False
    lanes: int = 0  # elements per thread and vector access of NAME_vec (0: no vector entry)
    vector_buffers: tuple = ()  # the buffers NAME_vec accesses as vectors (need alignment)
    vector_entry: str = ""  # NAME_vec or NAME_vec_i32

    def launches(self, slots=None, device: DeviceInfo = H100, aligned: bool = False) -> list:
        """The launches that run the program for run-time sizes ``slots`` (default: the
        program's own), in order; the first carries the scratch size the sequence needs.
        ``aligned``: every buffer of ``vector_buffers`` is ``VECTOR_ALIGN``-byte aligned, so the
        vector entry may run (it does when there is one and the sizes are those of the loop)."""
        p = self.program
        slots = [int(s) for s in (p.slots if slots is None else slots)]
        ext = [slots[p.exprs[e].attr] for e in p.extents]
        total = math.prod(ext)
        rows = math.prod(ext[a] for a in p.outer)
        inner = math.prod(ext[a] for a in p.inner)
        threads = min(THREADS, device.max_threads_per_block)
        cap = device.sm_count * max(1, 2048 // threads) * 4  # resident blocks, four waves
        sizes = [total, *slots]
        sizes += [math.prod(slots[p.exprs[d].attr] for d in b.shape) for b in p.buffers]
        narrow = self.i32 and max(sizes, default=0) <= I32_LIMIT
        vec = aligned and self.lanes and total >= self.lanes
        vec = vec and (narrow or not self.vector_entry.endswith("_i32"))
        vec = vec and all(sizes[1 + len(slots) + b] == total for b in self.vector_buffers)
        if not p.inner:
            block = (threads, 1, 1)
            work = total // self.lanes if vec else total
            grid = min(max(1, -(-work // threads)), cap)
        else:
            team = _team(p, rows, inner, threads, device)
            block = (team, threads // team, 1) if team <= device.warp_size else (team, 1, 1)
            grid = min(max(1, -(-rows // block[1])), cap)
        scratch = HEADER + grid * RECORD * self.totals if self.has_final else 0
        entry = self.vector_entry if vec else self.name + ("_i32" if narrow else "")
        out = [Launch(entry, (grid, 1, 1), block, 0, scratch)]
        if self.has_final:
            out.append(Launch(self.name + "_final", (1, 1, 1), (threads, 1, 1), 0, scratch))
        return out


def _team(p, rows, inner, threads, device) -> int:
    """Threads per row: 1 for column reductions (unless there are too few columns to fill the
    GPU), the next power of two up to a warp for rows up to ``LONG_ROW``, else a block."""
    warp = device.warp_size
    if p.rank - 1 not in p.inner:  # a column reduction: one thread per output element
        few = rows < device.sm_count * threads and inner >= 8 * warp
        return warp if few else 1
    if inner > LONG_ROW:
        return threads
    return min(warp, 1 << max(0, (inner - 1).bit_length()))


def generate(program, name: str) -> CudaKernel:
    """The CUDA C of ``program`` with entry points named after ``name`` (see the module doc)."""
    return _Generator(program, name).run()


def module_source(kernels) -> str:
    """One translation unit holding every kernel of ``kernels`` (unique names): the prelude and
    the helpers once. NVRTC compiles many kernels in one unit much faster than one by one."""
    names = [k.name for k in kernels]
    if len(set(names)) != len(names):
        raise ValueError("two kernels with one name in a module")
    helpers = {h for k in kernels for h in k.helpers}
    return source(tuple(h for h in HELPERS if h in helpers), [k.code for k in kernels])


class _Generator(ScalarOps):
    def __init__(self, program, name):
        self.p, self.name = program, name
        self.helpers: set = set()
        self.lines: list = []
        self.depth = 0
        self.scopes: list = []
        self.idx: dict = {}  # loop axis -> C variable
        self.acc: dict = {}  # reduction -> C variable of its finished value
        self.itype = "I"
        p = program
        self.totals = [r for r, red in enumerate(p.reductions) if red.level == "total"]
        self.rows = [r for r, red in enumerate(p.reductions) if red.level == "row"]
        self.has_final = bool(self.totals) or any(s.level == "total" for s in p.stores)
        self.vector = vector_plan(p)
        # 32-bit index math pays where indices are divided (split, clamped); a gather's indices
        # must be clamped in 64 bits; where every offset is the linear index, nothing is divided
        self.i32 = not any(e.op == "index" for e in p.exprs)
        self.i32 = self.i32 and not (self.vector and self.vector.needs != "split")
        self.invariant = self._invariants()

    # -- text ----------------------------------------------------------------------------
    def w(self, line: str):
        self.lines.append("  " * self.depth + line)

    def open(self, head: str):
        self.w(head + " {")
        self.depth += 1
        self.scopes.append({})

    def close(self):
        self.scopes.pop()
        self.depth -= 1
        self.w("}")

    # -- types ---------------------------------------------------------------------------
    def ctype(self, dtype) -> str:
        return self.itype if dtype == "i64" else CTYPE[dtype]

    def _invariants(self) -> list:
        """Exprs that depend on no loop index, load or reduction: computed once per thread."""
        out = []
        for e in self.p.exprs:
            out.append(e.op not in ("idx", "load", "acc") and all(out[a] for a in e.args))
        return out

    # -- parameters ----------------------------------------------------------------------
    def params(self) -> tuple:
        p = self.p
        decl = [f"long long s{i}" for i in range(len(p.slots))]
        kinds = [("i64", "long long")] * len(p.slots)
        for i, b in enumerate(p.buffers):
            const = "const " if b.role == "in" else ""
            decl.append(f"{const}{CTYPE[b.dtype]}* __restrict__ b{i}")
            kinds.append(("ptr", CTYPE[b.dtype]))
        if self.has_final:
            decl.append("unsigned char* __restrict__ scratch")
            kinds.append(("ptr", "unsigned char"))
        args = [f"s{i}" for i in range(len(p.slots))] + [f"b{i}" for i in range(len(p.buffers))]
        if self.has_final:
            args.append("scratch")
        return ", ".join(decl), kinds, ", ".join(args)

    # -- expressions ---------------------------------------------------------------------
    def value(self, e: int) -> str:
        for scope in reversed(self.scopes):
            got = scope.get(e)
            if got is not None:
                return got
        text = self.compute(e)
        ex = self.p.exprs[e]
        if ex.op in ("idx", "size", "acc"):  # already a variable
            self.scopes[-1][e] = text
            return text
        var = f"v{e}"
        self.w(f"const {self.ctype(ex.dtype)} {var} = {text};")
        self.scopes[-1][e] = var
        return var

    def compute(self, i: int) -> str:
        e = self.p.exprs[i]
        op, I = e.op, self.itype
        if op == "idx":
            return self.idx[e.attr]
        if op == "size":
            return f"z{e.attr}"
        if op == "int":
            return f"(({I}){literal(e.attr, 'int64')})"
        if op == "const":
            return literal(e.attr, e.dtype)
        if op == "acc":
            return self.acc[e.attr]
        a = [self.value(x) for x in e.args]
        if op == "load":
            return f"b{e.attr}[{a[0]}]"
        if op in _INDEX_OPS:
            return f"({a[0]} {_INDEX_OPS[op]} {a[1]})"
        if op in ("imin", "imax"):
            return f"({a[0]} {'<' if op == 'imin' else '>'} {a[1]} ? {a[0]} : {a[1]})"
        if op in ("idiv", "imod"):
            self.use("idiv")
            if self.nonneg(e.args[0]) and self.nonneg(e.args[1]):
                return f"({a[0]} {'/' if op == 'idiv' else '%'} mlc_nz({a[1]}))"
            return f"mlc_idx_{op[1:]}({a[0]}, {a[1]})"
        if op == "iand":
            return f"({a[0]} && {a[1]})"
        if op == "ibool":
            return a[0]
        if op == "iselect":
            return f"({a[0]} ? {a[1]} : {a[2]})"
        if op == "index":
            return f"(({I}){a[0]})"
        src = self.p.exprs[e.args[0]].dtype if e.args else e.dtype
        return self.elementwise(op, e, src, a)

    def nonneg(self, i: int) -> bool:
        e = self.p.exprs[i]
        if e.op in ("idx", "size"):
            return True
        if e.op == "int":
            return e.attr >= 0
        if e.op in ("iadd", "imul", "idiv", "imod", "imin"):
            return all(self.nonneg(a) for a in e.args)
        if e.op == "iselect":
            return all(self.nonneg(a) for a in e.args[1:])
        if e.op == "imax":
            return any(self.nonneg(a) for a in e.args)
        return False

    def identity(self, r) -> str:
        red = self.p.reductions[r]
        dtype, comb = red.dtype, red.combiner
        if comb == "sum":
            return literal(-0.0 if dtype in FLOATS else 0, dtype)
        if comb == "prod":
            return literal(1, dtype)
        high = comb in ("min", "argmin")
        if dtype in FLOATS:
            return literal(np.inf if high else -np.inf, dtype)
        if dtype == "bool":
            return literal(high, dtype)
        bits = 8 * SIZE[dtype]
        return literal((1 << (bits - 1)) - 1 if high else -(1 << (bits - 1)), dtype)

    def combined(self, r, acc, v) -> str:
        red = self.p.reductions[r]
        dtype, comb = red.dtype, red.combiner
        if dtype == "bool":
            return f"({acc} {'||' if comb in ('sum', 'max') else '&&'} {v})"
        if comb in ("max", "min"):
            self.use("minmax")
            return f"mlc_{comb}({acc}, {v})"
        sym = "+" if comb == "sum" else "*"
        if dtype in FLOATS:
            return f"({acc} {sym} {v})"
        self.use("wrap")
        return f"mlc_w{'add' if comb == 'sum' else 'mul'}({acc}, {v})"

    def beats(self, r, v, best) -> str:
        red = self.p.reductions[r]
        cmp = ">" if red.combiner == "argmax" else "<"
        if red.dtype in FLOATS:
            return f"(({v} {cmp} {best}) || ({v} != {v} && {best} == {best}))"
        return f"({v} {cmp} {best})"

    def ties(self, r, v, best) -> str:
        if self.p.reductions[r].dtype in FLOATS:
            return f"(({v} == {best}) || ({v} != {v} && {best} != {best}))"
        return f"({v} == {best})"

    def is_arg(self, r) -> bool:
        return self.p.reductions[r].combiner in ("argmax", "argmin")

    def declare_acc(self, r, prefix="a"):
        red = self.p.reductions[r]
        self.w(f"{CTYPE[red.dtype]} {prefix}{r} = {self.identity(r)};")
        if self.is_arg(r):
            self.w(f"{self.itype} {prefix}p{r} = -1;")

    def accumulate(self, r, prefix="a"):
        red = self.p.reductions[r]
        v = self.value(red.value)
        a = f"{prefix}{r}"
        if not self.is_arg(r):
            self.w(f"{a} = {self.combined(r, a, v)};")
            return
        pos = self.value(red.position)
        ap = f"{prefix}p{r}"
        self.w(f"if ({ap} < 0 || {self.beats(r, v, a)}) {{ {a} = {v}; {ap} = {pos}; }}")

    def merge(self, r, a, ap, o, op_):
        """``a (+) o`` across threads (argmax: ``o`` seen and better, or tied and earlier)."""
        if not self.is_arg(r):
            self.w(f"{a} = {self.combined(r, a, o)};")
            return
        cond = f"{op_} >= 0 && ({ap} < 0 || {self.beats(r, o, a)} || ({self.ties(r, o, a)} && {op_} < {ap}))"  # noqa: E501
        self.w(f"if ({cond}) {{ {a} = {o}; {ap} = {op_}; }}")

    def shfl(self, dtype, var, lane_expr, kind="xor") -> str:
        fn = "__shfl_xor_sync" if kind == "xor" else "__shfl_sync"
        if dtype == "bool":
            return f"({fn}(0xffffffffu, (int){var}, {lane_expr}) != 0)"
        return f"{fn}(0xffffffffu, {var}, {lane_expr})"

    def warp_reduce(self, reds, prefix, limit):
        """Butterfly over lanes ``^1 .. ^(limit/2)`` (``limit``: a C expression <= 32)."""
        if not reds:
            return
        self.open(f"for (int m = 1; m < {limit}; m <<= 1)")
        for r in reds:
            a, ap = f"{prefix}{r}", f"{prefix}p{r}"
            T = CTYPE[self.p.reductions[r].dtype]
            self.w(f"const {T} o{r} = {self.shfl(self.p.reductions[r].dtype, a, 'm')};")
            if self.is_arg(r):
                self.w(f"const {self.itype} op{r} = {self.shfl(None, ap, 'm')};")
            self.merge(r, a, ap, f"o{r}", f"op{r}")
        self.close()

    def shared_reduce(self, reds, prefix, tid, nwarps, everyone: bool):
        """Lane 0 of each warp publishes; then every thread (or thread 0) combines in order."""
        if not reds:
            return
        for r in reds:
            T = CTYPE[self.p.reductions[r].dtype]
            self.w(f"__shared__ {T} sh{prefix}{r}[32];")
            if self.is_arg(r):
                self.w(f"__shared__ long long shp{prefix}{r}[32];")
        self.open(f"if (({tid} & 31) == 0)")
        for r in reds:
            self.w(f"sh{prefix}{r}[{tid} >> 5] = {prefix}{r};")
            if self.is_arg(r):
                self.w(f"shp{prefix}{r}[{tid} >> 5] = {prefix}p{r};")
        self.close()
        self.w("__syncthreads();")
        self.open("if (true)" if everyone else f"if ({tid} == 0)")
        for r in reds:
            self.w(f"{prefix}{r} = sh{prefix}{r}[0];")
            if self.is_arg(r):
                self.w(f"{prefix}p{r} = shp{prefix}{r}[0];")
        self.open(f"for (int w = 1; w < {nwarps}; ++w)")
        for r in reds:
            ap = f"({self.itype})shp{prefix}{r}[w]" if self.is_arg(r) else ""
            self.merge(r, f"{prefix}{r}", f"{prefix}p{r}", f"sh{prefix}{r}[w]", ap)
        self.close()
        self.close()
        self.w("__syncthreads();")

    def finish(self, r, count, prefix="a"):
        """Define ``c{r}``, the value ``acc`` exprs read (0 for an empty reduction)."""
        red = self.p.reductions[r]
        a = f"{prefix}{r}"
        if self.is_arg(r):
            out_dtype = next(e.dtype for e in self.p.exprs if e.op == "acc" and e.attr == r)
            pos = f"({prefix}p{r} < 0 ? 0 : {prefix}p{r})"
            self.w(f"const {self.ctype(out_dtype)} c{r} = {self.convert(pos, 'int64', out_dtype)};")
        elif red.combiner == "prod":
            self.w(f"const {CTYPE[red.dtype]} c{r} = {a};")
        else:
            zero = literal(0, red.dtype)
            self.w(f"const {CTYPE[red.dtype]} c{r} = ({count} == 0) ? {zero} : {a};")
        self.acc[r] = f"c{r}"

    # -- loops ---------------------------------------------------------------------------
    def split(self, linear: str, axes):
        """Define ``i{a}`` for ``axes`` (row-major) from the linear index ``linear``."""
        I = self.itype
        axes = list(axes)
        if len(axes) == 1:
            self.w(f"const {I} i{axes[0]} = {linear};")
        elif axes:
            self.w(f"{I} rest = {linear};")
            for k, a in enumerate(reversed(axes)):
                if k == len(axes) - 1:
                    self.w(f"const {I} i{a} = rest;")
                else:
                    e = self.extent(a)
                    self.w(f"const {I} i{a} = rest % {e};")
                    self.w(f"rest /= {e};")
        for a in axes:
            self.idx[a] = f"i{a}"

    def extent(self, a) -> str:
        return self.value(self.p.extents[a])

    def count(self, axes) -> str:
        parts = [self.extent(a) for a in axes]
        return " * ".join(parts) if parts else f"(({self.itype})1)"

    def store(self, s):
        self.w(f"b{s.buffer}[{self.value(s.offset)}] = {self.value(s.value)};")

    # -- the kernel body -----------------------------------------------------------------
    def body(self, vector=False):
        p, I = self.p, self.itype
        self.scopes.append({})
        for slot in range(len(p.slots)):
            self.w(f"const {I} z{slot} = ({I})s{slot};")
        for e, inv in enumerate(self.invariant):
            if inv and p.exprs[e].op not in ("size",):
                self.value(e)
        for r in self.totals:
            self.declare_acc(r, "t")
        if vector:
            self.vector_loop()
        elif p.inner:
            self.team_loop()
        else:
            self.pointwise_loop()
        if self.totals:
            self.w("const int tid = threadIdx.x + threadIdx.y * blockDim.x;")
            self.warp_reduce(self.totals, "t", "32")
            self.shared_reduce(
                self.totals, "t", "tid", "(int)((blockDim.x * blockDim.y) >> 5)", False
            )
            self.open("if (tid == 0)")
            for k, r in enumerate(self.totals):
                at = f"scratch + {HEADER} + ((long long)blockIdx.x * {len(self.totals)} + {k}) * {RECORD}"
                T = CTYPE[p.reductions[r].dtype]
                self.w(f"*({T}*)({at}) = t{r};")
                pos = f"(long long)tp{r}" if self.is_arg(r) else "-1"
                self.w(f"*(long long*)({at} + 8) = {pos};")
            self.w("if (blockIdx.x == 0) *(long long*)scratch = (long long)gridDim.x;")
            self.close()
        self.scopes.pop()

    def pointwise_loop(self):
        p, I = self.p, self.itype
        per_row = [r for r in self.totals if p.reductions[r].per_row]
        full = [r for r in self.totals if not p.reductions[r].per_row]
        self.w(f"const {I} total = {self.count(range(p.rank))};")
        self.open(
            f"for ({I} lin = ({I})blockIdx.x * ({I})blockDim.x + ({I})threadIdx.x; lin < total; "
            f"lin += ({I})gridDim.x * ({I})blockDim.x)"
        )
        if self.vector:  # every offset is ``lin``: split only for what reads a loop index
            self.lane_index(self.vector.needs)
        else:
            self.split("lin", range(p.rank))
        for s in p.stores:
            if s.level in ("full", "row"):
                self.store(s)
        for r in per_row + full:
            self.accumulate(r, "t")
        self.close()

    def vector_loop(self):
        """Groups of ``lanes`` elements: one vector load per buffer, the lanes' scalar code, one
        vector store per output; then the last ``total % lanes`` elements one by one."""
        p, I, vp = self.p, self.itype, self.vector
        V = vp.lanes
        loads = {
            e: x.attr for e, x in enumerate(p.exprs) if x.op == "load" and e not in vp.broadcast
        }
        need = vp.needs
        self.w(f"const {I} total = {self.count(range(p.rank))};")
        self.w(f"const {I} nvec = total / {V};")
        self.w(f"const {I} first = ({I})blockIdx.x * ({I})blockDim.x + ({I})threadIdx.x;")
        self.w(f"const {I} step = ({I})gridDim.x * ({I})blockDim.x;")
        self.open(f"for ({I} q = first; q < nvec; q += step)")
        for b in sorted(set(loads.values())):
            T = VECTOR[(p.buffers[b].dtype, V)]
            self.w(f"const {T} l{b} = reinterpret_cast<const {T}*>(b{b})[q];")
        for e in self.group_invariant(set(loads)):  # the same for every lane: computed once
            self.value(e)
        for si, s in enumerate(p.stores):
            names = ", ".join(f"w{si}_{k}" for k in range(V))
            self.w(f"{CTYPE[p.buffers[s.buffer].dtype]} {names};")
        for k in range(V):
            self.open(f"/* lane {k} */")
            if need:
                self.w(f"const {I} lin = q * {V} + {k};")
            for e, b in loads.items():
                c = f"l{b}.{'xyzw'[k]}"
                self.scopes[-1][e] = f"({c} != 0)" if p.buffers[b].dtype == "bool" else c
            self.lane_index(need)
            for si, s in enumerate(p.stores):
                self.w(f"w{si}_{k} = {self.value(s.value)};")
            self.close()
        for si, s in enumerate(p.stores):
            dtype = p.buffers[s.buffer].dtype
            T = VECTOR[(dtype, V)]
            parts = [f"w{si}_{k}" for k in range(V)]
            parts = [f"(unsigned char){w}" for w in parts] if dtype == "bool" else parts
            self.w(f"reinterpret_cast<{T}*>(b{s.buffer})[q] = make_{T}({', '.join(parts)});")
        self.close()
        self.open(f"for ({I} lin = nvec * {V} + first; lin < total; lin += step)")
        self.lane_index(need)
        for s in p.stores:
            self.store(s)
        self.close()

    def group_invariant(self, vector_loads) -> list:
        """The exprs the stores read that are the same for every lane (broadcast loads and what
        depends only on them and the slots), less those already computed once per thread."""
        p, same = self.p, []
        for e, x in enumerate(p.exprs):
            lane = e in vector_loads or x.op in ("idx", "acc")
            same.append(not lane and all(same[a] for a in x.args))
        stack, seen = [s.value for s in p.stores], set()
        while stack:
            e = stack.pop()
            if e not in seen and e not in vector_loads:
                seen.add(e)
                stack.extend(p.exprs[e].args)
        return sorted(e for e in seen if same[e] and not self.invariant[e])

    def lane_index(self, need):
        """In the current scope, the linear-index exprs are ``lin``; split it if ``need``s."""
        for e in self.vector.linear:
            self.scopes[-1][e] = "lin"
        if need == "split":
            self.split("lin", range(self.p.rank))

    def team_loop(self):
        p, I = self.p, self.itype
        full_stores = [s for s in p.stores if s.level == "full"]
        row_stores = [s for s in p.stores if s.level == "row"]
        per_row = [r for r in self.totals if p.reductions[r].per_row]
        full_totals = [r for r in self.totals if not p.reductions[r].per_row]
        items = [e for s in full_stores for e in (s.offset, s.value)]
        for r in full_totals:
            red = p.reductions[r]
            items += [red.value] + ([red.position] if red.position is not None else [])
        last_phase = {r for r in self.rows if p.reductions[r].phase == p.phases - 1}
        merge = p.phases > 0 and not (p.reads(items) & last_phase)
        self.w(f"const {I} nrows = {self.count(p.outer)};")
        self.w(f"const {I} ninner = {self.count(p.inner)};")
        self.w(f"const {I} team = ({I})blockDim.x;")
        self.w(f"const {I} lane = ({I})threadIdx.x;")
        self.w("const int wlane = (int)((threadIdx.x + threadIdx.y * blockDim.x) & 31);")
        self.w("const int leader = wlane - (int)(threadIdx.x & 31);  // the team's lane 0")
        self.open(
            f"for ({I} base = ({I})blockIdx.x * ({I})blockDim.y; base < nrows; "
            f"base += ({I})gridDim.x * ({I})blockDim.y)"
        )
        self.w(f"const {I} row = base + ({I})threadIdx.y;")
        self.w("const bool active = row < nrows;")
        self.w(f"const {I} nin = active ? ninner : ({I})0;")
        self.split(f"(active ? row : ({I})0)", p.outer)

        def inner_pass(body):
            self.open(f"for ({I} j = lane; j < nin; j += team)")
            self.split("j", p.inner)
            body()
            self.close()
            for a in p.inner:
                del self.idx[a]

        def final_pass():
            for s in full_stores:
                self.store(s)
            for r in full_totals:
                self.accumulate(r, "t")

        for ph in range(p.phases):
            reds = [r for r in self.rows if p.reductions[r].phase == ph]
            for r in reds:
                self.declare_acc(r)
            extra = merge and ph == p.phases - 1

            def body(reds=reds, extra=extra):
                for r in reds:
                    self.accumulate(r)
                if extra:
                    final_pass()

            inner_pass(body)
            self.warp_reduce(reds, "a", "(blockDim.x < 32 ? (int)blockDim.x : 32)")
            self.open("if (blockDim.x > 32)")
            self.shared_reduce(reds, "a", "(int)threadIdx.x", "(int)(blockDim.x >> 5)", True)
            self.close()
            for r in reds:  # every lane takes lane 0's bits
                self.w(f"a{r} = {self.shfl(p.reductions[r].dtype, f'a{r}', 'leader', 'idx')};")
                if self.is_arg(r):
                    self.w(f"ap{r} = {self.shfl(None, f'ap{r}', 'leader', 'idx')};")
                self.finish(r, "ninner")
        if row_stores or per_row:
            self.open("if (active && lane == 0)")
            for s in row_stores:
                self.store(s)
            for r in per_row:
                self.accumulate(r, "t")
            self.close()
        if (full_stores or full_totals) and not merge:
            inner_pass(final_pass)
        self.close()
        for r in self.rows:
            self.acc.pop(r, None)

    # -- the final kernel ----------------------------------------------------------------
    def final_body(self):
        p = self.p
        self.scopes.append({})
        for slot in range(len(p.slots)):
            self.w(f"const long long z{slot} = s{slot};")
        for e, inv in enumerate(self.invariant):
            if inv and p.exprs[e].op not in ("size",):
                self.value(e)
        self.w("const int tid = threadIdx.x;")
        for r in self.totals:
            self.declare_acc(r, "t")
        if self.totals:
            n = len(self.totals)
            self.w("const long long nparts = *(const long long*)scratch;")
            self.open("for (long long q = tid; q < nparts; q += blockDim.x)")
            for k, r in enumerate(self.totals):
                T = CTYPE[p.reductions[r].dtype]
                at = f"scratch + {HEADER} + (q * {n} + {k}) * {RECORD}"
                self.w(f"const {T} o{r} = *(const {T}*)({at});")
                self.w(f"const long long op{r} = *(const long long*)({at} + 8);")
                self.merge(r, f"t{r}", f"tp{r}", f"o{r}", f"op{r}")
            self.close()
            self.warp_reduce(self.totals, "t", "32")
            self.shared_reduce(self.totals, "t", "tid", "(int)(blockDim.x >> 5)", False)
        self.open("if (tid == 0)")
        for r in self.totals:
            axes = p.outer if p.reductions[r].per_row else range(p.rank)
            self.finish(r, f"({self.count(axes)})", "t")
        for s in p.stores:
            if s.level == "total":
                self.store(s)
        self.close()
        self.scopes.pop()

    # -- the source ----------------------------------------------------------------------
    def run(self) -> CudaKernel:
        decl, kinds, args = self.params()
        name = self.name
        body_lines = []
        self.lines = body_lines
        self.w("template <typename I>")
        self.w(f"__device__ __forceinline__ void {name}_body(I, {decl}) {{")
        self.depth = 1
        self.body()
        self.depth = 0
        self.w("}")
        entries = {name: kinds}
        self.w(
            f'extern "C" __global__ void {name}({decl}) {{ {name}_body((long long)0, {args}); }}'
        )
        if self.i32:
            self.w(
                f'extern "C" __global__ void {name}_i32({decl}) {{ {name}_body((int)0, {args}); }}'
            )
            entries[name + "_i32"] = kinds
        if self.vector:
            self.w("template <typename I>")
            self.w(f"__device__ __forceinline__ void {name}_vbody(I, {decl}) {{")
            self.depth = 1
            self.body(vector=True)
            self.depth = 0
            self.w("}")
            narrow = self.vector.needs == "split" and self.i32  # a division per lane and axis
            vec = name + ("_vec_i32" if narrow else "_vec")
            I = "int" if narrow else "long long"
            self.w(f'extern "C" __global__ void {vec}({decl}) {{ {name}_vbody(({I})0, {args}); }}')
            entries[vec] = kinds
        if self.has_final:
            self.itype = "long long"
            self.acc = {}
            self.w(f'extern "C" __global__ void {name}_final({decl}) {{')
            self.depth = 1
            self.final_body()
            self.depth = 0
            self.w("}")
            entries[name + "_final"] = kinds
        code = "\n".join(body_lines) + "\n"
        helpers = tuple(h for h in HELPERS if h in self.helpers)
        vp = self.vector
        return CudaKernel(name, source(helpers, [code]), entries, self.p, code, helpers, self.i32,
                          len(self.totals), self.has_final, vp.lanes if vp else 0,
                          vp.buffers if vp else (), vec if vp else "")  # fmt: skip
