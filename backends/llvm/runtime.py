"""Running a fused graph on the CPU: compiled LLVM kernels and library calls, in plan order.

``Executable(graph)`` fuses the graph (``mlc.ir.passes.fusion``), describes each kernel
(``backends.kernel``), generates and compiles one LLVM module per kernel description (cached in
memory and on disk by the description's key, which holds no sizes: a new batch size reuses the
compiled kernel) and keeps the steps. Calling it runs the steps on NumPy arrays:

- a kernel step allocates its outputs, passes the run-time sizes (slots) and buffer pointers, and
  runs the outermost loop in chunks on a thread pool when the work is large enough (ctypes
  releases the GIL); the chunks' partial totals are combined by the kernel's ``_final`` function;
- consecutive kernel steps small enough for one chunk run through the *driver*: one native call
  that reads the buffer pointers out of the value list itself (a jitted call on small arrays is
  one dispatch into compiled code, not a Python loop of ctypes calls);
- a library step (``dot_general`` through NumPy's BLAS, sorting, scans, scatters) runs the
  primitive's NumPy implementation.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import mmap
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mlc.backends.kernel import Program, describe, partials_size
from mlc.backends.schedule import release_plan
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate_node
from mlc.ir.passes.fusion import fuse

from . import compiler

# elements: below this a kernel runs on one thread. Splitting a mid-size kernel gains little
# (the MLP step's 400K-element weight update: 238 us on one thread, 198 us on two), and right
# after a BLAS call OpenBLAS's threads still spin on the same cores, so two threads there took
# 286 us against 194 us on one.
MIN_WORK_PER_THREAD = 1 << 18

_KERNEL = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p
)
_FINAL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def num_threads() -> int:
    """``MLC_NUM_THREADS``, else the cores this process may use."""
    env = os.environ.get("MLC_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="mlc")
    return _POOL


class CompiledKernel:
    """One kernel description compiled: the loop function and its ``_final`` function."""

    def __init__(self, program: Program):
        key = program.key()
        self.name = "mlc_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        name = self.name

        def ir():  # only on a cache miss, or when someone reads the IR
            from . import codegen

            return str(codegen.module_for({name: program}))

        self.module = compiler.compile_module(ir, key, generator=_generator_version())
        self.run_address = self.module.address(self.name)
        self.final_address = self.module.address(self.name + "_final")
        self.run = _KERNEL(self.run_address)
        self.final = _FINAL(self.final_address)

    @property
    def ir(self) -> str:
        return self.module.ir_text


@functools.cache
def _generator_version() -> str:
    """A hash of the code that turns a kernel program into IR: with the program's key, it names
    the compiled object in the caches (a changed code generator never loads a stale object)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for path in (
        os.path.join(os.path.dirname(here), "kernel.py"),
        os.path.join(here, "codegen.py"),
        os.path.join(here, "mathlib.py"),
    ):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


_KERNELS: dict[str, CompiledKernel] = {}


def compiled(program: Program) -> CompiledKernel:
    key = program.key()
    got = _KERNELS.get(key)
    if got is None:
        got = _KERNELS[key] = CompiledKernel(program)
    return got


# -- the driver: one call into native code for a run of small kernels ----------------------------
# Building a ctypes pointer array from ``ndarray.ctypes.data`` costs about 2 us per kernel call,
# more than a small kernel's work. The driver is one native function, compiled once for every
# graph, that receives the Python list of values itself (``PYFUNCTYPE`` passes the object
# pointer as it is, holding the GIL), reads each array's data pointer from its ``PyArrayObject``
# and runs a run of kernels described by a small int64 table:
#
#   [n_steps, then per step: run, final (0: none), slots, begin, end, n_buffers, value index...]
#
# It relies on two layouts: a list's item array (``PyListObject.ob_item``) right after the
# variable-size object header, and an array's data pointer (``PyArrayObject.data``) right after
# the object header. Both are checked against ctypes at first use (``_abi_ok``); where they do
# not hold (another Python build), every kernel runs through its ctypes call as before.
_MAX_DRIVEN_BUFFERS = 256
_MAX_DRIVEN_WORK = 2 * MIN_WORK_PER_THREAD  # elements: the driver holds the GIL while it runs
_DRIVER_IR = r"""
define void @mlc_drive(i8* %list, i64* %prog, i8* %scratch) nounwind {
entry:
  %ptrs = alloca i8*, i64 LIMIT, align 16
  %itemsp = getelementptr i8, i8* %list, i64 ITEMS
  %itemspp = bitcast i8* %itemsp to i8***
  %items = load i8**, i8*** %itemspp
  %n = load i64, i64* %prog
  br label %head
head:
  %s = phi i64 [0, %entry], [%s1, %next]
  %pc = phi i64 [1, %entry], [%pc1, %next]
  %done = icmp sge i64 %s, %n
  br i1 %done, label %exit, label %body
body:
  %a0 = getelementptr i64, i64* %prog, i64 %pc
  %run_i = load i64, i64* %a0
  %a1 = getelementptr i64, i64* %a0, i64 1
  %final_i = load i64, i64* %a1
  %a2 = getelementptr i64, i64* %a0, i64 2
  %slots_i = load i64, i64* %a2
  %a3 = getelementptr i64, i64* %a0, i64 3
  %lo = load i64, i64* %a3
  %a4 = getelementptr i64, i64* %a0, i64 4
  %hi = load i64, i64* %a4
  %a5 = getelementptr i64, i64* %a0, i64 5
  %nb = load i64, i64* %a5
  %idx0 = getelementptr i64, i64* %a0, i64 6
  br label %fill_head
fill_head:
  %j = phi i64 [0, %body], [%j1, %fill]
  %fdone = icmp sge i64 %j, %nb
  br i1 %fdone, label %call, label %fill
fill:
  %ixp = getelementptr i64, i64* %idx0, i64 %j
  %ix = load i64, i64* %ixp
  %objp = getelementptr i8*, i8** %items, i64 %ix
  %obj = load i8*, i8** %objp
  %datap = getelementptr i8, i8* %obj, i64 DATA
  %datapp = bitcast i8* %datap to i8**
  %data = load i8*, i8** %datapp
  %dst = getelementptr i8*, i8** %ptrs, i64 %j
  store i8* %data, i8** %dst
  %j1 = add i64 %j, 1
  br label %fill_head
call:
  %slots = inttoptr i64 %slots_i to i64*
  %run = inttoptr i64 %run_i to void (i64*, i8**, i64, i64, i8*)*
  call void %run(i64* %slots, i8** %ptrs, i64 %lo, i64 %hi, i8* %scratch)
  %hasfinal = icmp ne i64 %final_i, 0
  br i1 %hasfinal, label %dofinal, label %next
dofinal:
  %final = inttoptr i64 %final_i to void (i64*, i8**, i8*, i64)*
  call void %final(i64* %slots, i8** %ptrs, i8* %scratch, i64 1)
  br label %next
next:
  %s1 = add i64 %s, 1
  %step = add i64 %nb, 6
  %pc1 = add i64 %pc, %step
  br label %head
exit:
  ret void
}
"""
_LIST_ITEMS_OFFSET = 3 * ctypes.sizeof(ctypes.c_void_p)  # ob_refcnt, ob_type, ob_size
_ARRAY_DATA_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)  # ob_refcnt, ob_type
_DRIVE = ctypes.PYFUNCTYPE(None, ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p)


def _abi_ok() -> bool:
    """Whether this Python's list and NumPy's array objects have the layouts the driver reads."""
    a, b = np.zeros(3), np.zeros((2, 2))[:, 1]
    values = [a, b]
    items = ctypes.c_void_p.from_address(id(values) + _LIST_ITEMS_OFFSET).value
    if not items:
        return False
    got = [ctypes.c_void_p.from_address(items + i * ctypes.sizeof(ctypes.c_void_p)).value
           for i in range(2)]  # fmt: skip
    if got != [id(a), id(b)]:
        return False
    return all(
        ctypes.c_void_p.from_address(id(x) + _ARRAY_DATA_OFFSET).value == x.ctypes.data
        for x in values
    )


_DRIVER = None  # (compiled module, function), or False where the layouts differ


def driver():
    """The compiled driver, or None where it cannot be used (``MLC_DRIVER=0`` turns it off)."""
    global _DRIVER
    if _DRIVER is None:
        if os.environ.get("MLC_DRIVER", "1") == "0" or not _abi_ok():
            _DRIVER = False
        else:
            text = (
                _DRIVER_IR.replace("LIMIT", str(_MAX_DRIVEN_BUFFERS))
                .replace("ITEMS", str(_LIST_ITEMS_OFFSET))
                .replace("DATA", str(_ARRAY_DATA_OFFSET))
            )
            module = compiler.compile_module(text, "mlc-driver")
            _DRIVER = (module, _DRIVE(module.address("mlc_drive")))
    return _DRIVER[1] if _DRIVER else None


class _BufferPool:
    """Large output buffers are recycled: a fresh 64 MB array costs a page fault per 4 KB page on
    its first write (more than the kernel's own work for GELU on 16M floats), so memory whose
    arrays the caller has dropped goes back to a free list and the next call of the same size
    writes into pages that are already mapped.

    Each block of memory is an anonymous ``mmap``: its pages are mapped on first write, not
    zero-filled up front as a ``bytearray``'s are (that cost a 64 MB first call 80 ms). It is
    handed out through a fresh array ``owner`` made by ``np.frombuffer``; every array given to
    the caller, and every view the caller makes of it, has ``owner`` as its base (NumPy collapses
    base chains to the array that holds the memory, and the mmap is not an array).
    ``weakref.finalize(owner, ...)`` returns the block only when ``owner`` is collected, that is
    when no array on the block is left: a block is never shared."""

    MIN_BYTES = 1 << 20  # below this, np.empty is as fast
    MAX_FREE_BYTES = 1 << 29  # at most this much memory is kept idle

    def __init__(self):
        self.free: dict[int, list] = {}
        self.free_bytes = 0
        self.lock = threading.Lock()

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < self.MIN_BYTES:
            return np.empty(shape, dtype)
        with self.lock:
            blocks = self.free.get(nbytes)
            block = blocks.pop() if blocks else None
            if block is not None:
                self.free_bytes -= nbytes
        if block is None:
            block = mmap.mmap(-1, nbytes)
        owner = np.frombuffer(block, dtype=np.uint8)
        weakref.finalize(owner, self._release, block)
        return owner.view(dtype).reshape(shape)

    def _release(self, block):
        with self.lock:
            if self.free_bytes + len(block) <= self.MAX_FREE_BYTES:
                self.free.setdefault(len(block), []).append(block)
                self.free_bytes += len(block)


_POOL_BUFFERS = _BufferPool()

_NO_PARTIALS = np.zeros(16, dtype=np.uint8)
_NO_PARTIALS_PTR = _NO_PARTIALS.ctypes.data


class _KernelStep:
    """One compiled kernel: inputs and outputs are positions in the executable's value list."""

    def __init__(self, program: Program, where: dict):
        self.program = program
        self.code = compiled(program)
        self.slots = np.asarray(program.slots, dtype=np.int64)
        self.slots_ptr = self.slots.ctypes.data
        self.inputs = [where[id(n)] for n in program.inputs]
        self.outputs = [  # small outputs straight from np.empty; large ones recycled
            (
                _POOL_BUFFERS.empty
                if n.type.size * n.dtype.itemsize >= _BufferPool.MIN_BYTES
                else np.empty,
                n.shape,
                n.dtype,
            )
            for n in program.outputs
        ]
        self.out_index = [where.setdefault(id(n), len(where)) for n in program.outputs]
        self.ptr_type = ctypes.c_void_p * max(len(self.inputs) + len(self.outputs), 1)
        partial_bytes = partials_size(program)
        self.totals = partial_bytes > 0
        self.partial_bytes = max(partial_bytes, 1)
        self.has_final = any(st.level == "total" for st in program.stores)
        extents = [program.slots[program.exprs[e].attr] for e in program.extents]
        self.outer0 = extents[program.outer[0]] if program.outer else 1
        work = int(np.prod(extents, dtype=np.int64)) if extents else 1
        self.work = work
        self.chunks = self._chunks(work)

    def __call__(self, values):
        outs = [alloc(shape, dtype) for alloc, shape, dtype in self.outputs]
        ptrs = self.ptr_type(
            *[values[i].ctypes.data for i in self.inputs], *[o.ctypes.data for o in outs]
        )
        chunks = self.chunks
        stride = self.partial_bytes
        if self.totals:
            partials = np.empty(len(chunks) * stride, dtype=np.uint8)
            base = partials.ctypes.data
        else:  # nothing is written there
            base = _NO_PARTIALS_PTR
        if len(chunks) == 1:
            lo, hi = chunks[0]
            self.code.run(self.slots_ptr, ptrs, lo, hi, base)
        else:
            futures = [
                _pool().submit(self.code.run, self.slots_ptr, ptrs, lo, hi, base + i * stride)
                for i, (lo, hi) in enumerate(chunks)
            ]
            for f in futures:
                f.result()
        if self.has_final:
            self.code.final(self.slots_ptr, ptrs, base, len(chunks))
        for i, o in zip(self.out_index, outs):
            values[i] = o

    def _chunks(self, work):
        if not self.program.outer:  # one iteration: the whole loop nest is reduced
            return [(0, 1)]
        n = self.outer0
        threads = min(num_threads(), max(1, work // MIN_WORK_PER_THREAD), max(n, 1))
        if threads <= 1 or n <= 1:
            return [(0, n)]
        step = -(-n // threads)
        return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


class _DrivenRun:
    """Consecutive kernel steps that each run in one chunk, run by one call into the driver:
    Python allocates their outputs, the driver reads every buffer pointer itself."""

    def __init__(self, steps, drive):
        self.steps = steps
        self.drive = drive
        self.allocs = [
            (i, alloc, shape, dtype)
            for st in steps
            for i, (alloc, shape, dtype) in zip(st.out_index, st.outputs)
        ]
        table = [len(steps)]
        for st in steps:
            lo, hi = st.chunks[0]
            final = st.code.final_address if st.has_final else 0
            buffers = st.inputs + st.out_index
            table += [st.code.run_address, final, st.slots_ptr, lo, hi, len(buffers), *buffers]
        self.table = np.asarray(table, dtype=np.int64)
        self.table_ptr = self.table.ctypes.data
        # the steps keep the compiled code and the slot arrays the table points at alive
        self.scratch = np.empty(max(st.partial_bytes for st in steps) + 64, dtype=np.uint8)
        self.scratch_ptr = (self.scratch.ctypes.data + 63) & ~63

    def __call__(self, values):
        for i, alloc, shape, dtype in self.allocs:
            values[i] = alloc(shape, dtype)
        self.drive(values, self.table_ptr, self.scratch_ptr)


def _drive_small_kernels(steps) -> list:
    """``steps`` with each run of one-chunk kernel steps replaced by a ``_DrivenRun``."""

    def small(st):
        return (
            isinstance(st, _KernelStep)
            and len(st.chunks) == 1
            and st.work <= _MAX_DRIVEN_WORK
            and len(st.inputs) + len(st.out_index) <= _MAX_DRIVEN_BUFFERS
        )

    if not any(small(st) for st in steps):  # the driver is compiled only where it is used
        return steps
    drive = driver()
    if drive is None:
        return steps
    out, run = [], []

    def flush():
        if run:
            out.append(_DrivenRun(list(run), drive))
            run.clear()

    for st in steps:
        if small(st):
            run.append(st)
        else:
            flush()
            out.append(st)
    flush()
    return out


def _matmul_2d(node):
    """For a 2-D ``dot_general`` without batch dimensions, ``(a, b) -> a @ b`` on transposed
    views as needed: BLAS takes the transposes as flags, nothing is copied."""
    if node.op != "dot_general" or any(len(i.shape) != 2 for i in node.inputs):
        return None
    (lc, rc), (lb, rb) = node.attr("contracting"), node.attr("batch")
    if lb or rb or len(lc) != 1 or len(rc) != 1:
        return None
    ta, tb = lc[0] == 0, rc[0] == 1

    def run(a, b):
        return np.matmul(a.T if ta else a, b.T if tb else b)

    return run


class _LibraryStep:
    def __init__(self, node, where: dict):
        self.node = node
        self.inputs = [where[id(i)] for i in node.inputs]
        self.out = where.setdefault(id(node), len(where))
        self.matmul = _matmul_2d(node)

    def __call__(self, values):
        if self.matmul is not None:
            values[self.out] = self.matmul(*[values[i] for i in self.inputs])
            return
        with np.errstate(all="ignore"):
            out = evaluate_node(self.node, [values[i] for i in self.inputs])
        values[self.out] = np.require(out, requirements="C")  # kernels read C-contiguous buffers


class Executable:
    """A graph compiled for the CPU; call it with NumPy arrays for the graph's inputs."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.plan = fuse(graph)
        where: dict[int, int] = {}  # id(node) -> position in the value list
        for p in graph.inputs:
            where[id(p)] = len(where)
        self.param_dtypes = [p.dtype for p in graph.inputs]
        constants = []
        for n in graph.nodes():
            if n.op == "constant":  # kernels address buffers as C-contiguous arrays
                where[id(n)] = len(where)
                constants.append(np.require(n.attr("value").array, requirements="C"))
        self.steps = []
        self.programs = []
        for k in self.plan.kernels:
            if k.kind == "library":
                self.steps.append(_LibraryStep(k.members[0], where))
            else:
                program = describe(k)
                self.programs.append(program)
                self.steps.append(_KernelStep(program, where))
        self.steps = _drive_small_kernels(self.steps)
        self.template = [None] * len(graph.inputs) + constants
        self.template += [None] * (len(where) - len(self.template))
        self.out_index = [where[id(o)] for o in graph.outputs]
        self.schedule = self._plan_buffers(len(graph.inputs) + len(constants))

    def _plan_buffers(self, first_intermediate: int) -> list:
        """``[(step, positions)]``: after each step, the intermediates no later step reads are
        dropped from the value list (``backends/schedule.py``). A large block goes back to the
        buffer pool, where the next output of the same size picks it up, and a small one to
        malloc: a chain of kernels holds two of its intermediates at a time, not all of them."""
        accesses = []
        for step in self.steps:
            inner = step.steps if isinstance(step, _DrivenRun) else [step]
            reads = [i for st in inner for i in st.inputs]
            writes = [
                i
                for st in inner
                for i in (st.out_index if isinstance(st, _KernelStep) else [st.out])
            ]
            accesses.append((reads, writes))
        dead = release_plan(accesses, set(self.out_index), first_intermediate)
        return list(zip(self.steps, dead))

    def llvm_ir(self) -> str:
        return "\n".join(s.code.ir for s in self.kernel_steps())

    def kernel_steps(self) -> list:
        """The kernel steps in order, whether the driver or ctypes runs them."""
        out = []
        for s in self.steps:
            out.extend(
                s.steps if isinstance(s, _DrivenRun) else [s] if isinstance(s, _KernelStep) else []
            )
        return out

    def __call__(self, *arrays):
        values = list(self.template)
        for i, (a, dtype) in enumerate(zip(arrays, self.param_dtypes)):
            if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
                a = np.require(np.asarray(a, dtype=dtype), requirements="C")
            values[i] = a
        for step, dead in self.schedule:
            step(values)
            for i in dead:
                values[i] = None
        return [values[i] for i in self.out_index]
