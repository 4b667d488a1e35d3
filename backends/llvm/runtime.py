"""Running a fused graph on the CPU: compiled LLVM kernels and library calls, in plan order.

``Executable(graph)`` fuses the graph (``mlc.ir.passes.fusion``), describes each kernel
(``backends.kernel``), generates and compiles one LLVM module per kernel description (cached in
memory and on disk by the description's key, which holds no sizes: a new batch size reuses the
compiled kernel) and keeps the steps. Calling it runs the steps on NumPy arrays:

- a kernel step allocates its outputs, passes the run-time sizes (slots) and buffer pointers, and
  runs the outermost loop in chunks on a thread pool when the work is large enough (ctypes
  releases the GIL); the chunks' partial totals are combined by the kernel's ``_final`` function;
- a library step (``dot_general`` through NumPy's BLAS, sorting, scans, scatters) runs the
  primitive's NumPy implementation.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mlc.backends.kernel import Program, describe
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate_node
from mlc.ir.passes.fusion import fuse

from . import codegen, compiler

MIN_WORK_PER_THREAD = 1 << 17  # elements: below this a kernel runs on one thread

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
        module = codegen.module_for({self.name: program})
        self.ir = str(module)
        self.module = compiler.compile_module(self.ir, key)
        self.run = _KERNEL(self.module.address(self.name))
        self.final = _FINAL(self.module.address(self.name + "_final"))


_KERNELS: dict[str, CompiledKernel] = {}


def compiled(program: Program) -> CompiledKernel:
    key = program.key()
    got = _KERNELS.get(key)
    if got is None:
        got = _KERNELS[key] = CompiledKernel(program)
    return got


class _KernelStep:
    def __init__(self, kernel, program: Program):
        self.kernel = kernel
        self.program = program
        self.code = compiled(program)
        self.slots = np.asarray(program.slots, dtype=np.int64)
        self.inputs = list(program.inputs)
        self.outputs = list(program.outputs)
        self.partial_bytes = max(codegen.partials_size(program), 1)
        extents = [program.slots[program.exprs[e].attr] for e in program.extents]
        self.outer0 = extents[program.outer[0]] if program.outer else 1
        self.work = int(np.prod(extents, dtype=np.int64)) if extents else 1

    def __call__(self, env):
        ins = [env[id(n)] for n in self.inputs]
        outs = [np.empty(n.shape, dtype=n.dtype) for n in self.outputs]
        arrays = ins + outs
        ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        slots = self.slots.ctypes.data
        chunks = self._chunks()
        stride = self.partial_bytes
        partials = np.zeros(len(chunks) * stride, dtype=np.uint8)
        base = partials.ctypes.data
        if len(chunks) == 1:
            lo, hi = chunks[0]
            self.code.run(slots, ptrs, lo, hi, base)
        else:
            futures = [
                _pool().submit(self.code.run, slots, ptrs, lo, hi, base + i * stride)
                for i, (lo, hi) in enumerate(chunks)
            ]
            for f in futures:
                f.result()
        self.code.final(slots, ptrs, base, len(chunks))
        for n, a in zip(self.outputs, outs):
            env[id(n)] = a

    def _chunks(self):
        if not self.program.outer:  # one iteration: the whole loop nest is reduced
            return [(0, 1)]
        n = self.outer0
        threads = min(num_threads(), max(1, self.work // MIN_WORK_PER_THREAD), max(n, 1))
        if threads <= 1 or n <= 1:
            return [(0, n)]
        step = -(-n // threads)
        return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


class _LibraryStep:
    def __init__(self, node):
        self.node = node

    def __call__(self, env):
        n = self.node
        env[id(n)] = evaluate_node(n, [env[id(i)] for i in n.inputs])


class Executable:
    """A graph compiled for the CPU; call it with NumPy arrays for the graph's inputs."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.plan = fuse(graph)
        self.steps = []
        self.programs = []
        for k in self.plan.kernels:
            if k.kind == "library":
                self.steps.append(_LibraryStep(k.members[0]))
            else:
                program = describe(k)
                self.programs.append(program)
                self.steps.append(_KernelStep(k, program))
        self.constants = [
            (id(n), n.attr("value").array) for n in graph.nodes() if n.op == "constant"
        ]

    def llvm_ir(self) -> str:
        return "\n".join(s.code.ir for s in self.steps if isinstance(s, _KernelStep))

    def __call__(self, *arrays):
        env = dict(self.constants)
        for p, a in zip(self.graph.inputs, arrays):
            a = np.asarray(a, dtype=p.dtype)
            env[id(p)] = a if a.flags.c_contiguous else a.copy(order="C")
        with np.errstate(all="ignore"):
            for step in self.steps:
                step(env)
        return [env[id(o)] for o in self.graph.outputs]
