"""Running a fused graph on a GPU (or on the CPU emulator): CUDA kernels and library calls.

``Executable(graph, device=None)`` mirrors the LLVM runtime: fuse the graph, describe each kernel
(``backends.kernel``), generate its CUDA C (``codegen``), load it on the device (NVRTC cubin for a
GPU, g++ for the emulator) and keep the steps. Calling it runs the steps on device arrays:

All kernels of a graph are one translation unit: one NVRTC (or g++) compile per graph, cached.

- a kernel step allocates its outputs (and a scratch buffer for totals) and performs the launches
  ``codegen`` planned for its sizes: the run-time sizes go as ``long long`` arguments; a pointwise
  kernel with a vector entry (``float4`` loads) runs it when the arrays it reads and writes as
  vectors are 16-byte aligned at this call (an offset view of a larger array may not be);
- a library step: ``dot_general`` through ``xp.matmul`` (cuBLAS on CuPy) on transposed, reshaped
  views, ``cumsum``/``cumprod`` through ``xp.cumsum``/``xp.cumprod``; ``argsort``, ``scatter_add``
  and ``custom_call`` run the primitive's NumPy implementation on a host copy (correct, not fast).

A ``Device`` is anything with ``info`` (``codegen.DeviceInfo``), ``xp`` (the array module),
``asarray``, ``empty``, ``to_host``, ``is_device_array`` and ``load(source, entries)`` returning a
module with ``launch(name, grid, block, shared_bytes, args)``. ``CupyDevice`` is the GPU (CuPy is
imported only when one is made); ``EmuDevice`` runs the same source on NumPy arrays through
``backends/cuda/emulator.py``. NumPy inputs give NumPy results (copied to and from the device);
if any input is already a device array, results stay on the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Protocol

import numpy as np
from mlc.backends.kernel import Program, describe
from mlc.backends.schedule import release_plan
from mlc.ir.graph import Graph
from mlc.ir.interpreter import evaluate_node
from mlc.ir.passes.fusion import fuse

from . import codegen, compiler
from .codegen import H100, DeviceInfo


class Device(Protocol):
    info: DeviceInfo
    xp: object

    def asarray(self, a): ...
    def empty(self, shape, dtype): ...
    def to_host(self, a) -> np.ndarray: ...
    def is_device_array(self, a) -> bool: ...
    def load(self, source: str, entries: dict): ...


# -- devices -------------------------------------------------------------------------------------
class _CupyModule:
    def __init__(self, module, entries):
        self.functions = {name: module.get_function(name) for name in entries}
        self.module = module  # keeps the code loaded

    def launch(self, name, grid, block, shared_bytes, args):
        self.functions[name](tuple(grid), tuple(block), tuple(args), shared_mem=shared_bytes)


class CupyDevice:
    """The current CUDA device through CuPy: cubins from NVRTC (``compiler``), loaded with
    ``cupy.cuda.function.Module``; ``long long`` arguments passed as ``np.int64`` (CuPy checks
    nothing and would pass a Python int as whatever it likes)."""

    def __init__(self):
        import cupy  # lazily: only this backend needs CuPy

        self.xp = cupy
        dev = cupy.cuda.Device()
        attrs = dev.attributes
        self.info = DeviceInfo(
            arch=int(dev.compute_capability),
            sm_count=attrs["MultiProcessorCount"],
            max_threads_per_block=attrs["MaxThreadsPerBlock"],
            max_shared_per_block=attrs["MaxSharedMemoryPerBlock"],
            warp_size=attrs["WarpSize"],
            name=cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode(),
        )
        self._modules: dict = {}

    def asarray(self, a):
        return self.xp.ascontiguousarray(self.xp.asarray(a))

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype)

    def to_host(self, a):
        return self.xp.asnumpy(a)

    def is_device_array(self, a) -> bool:
        return isinstance(a, self.xp.ndarray)

    def load(self, source, entries):
        h = hashlib.sha256(source.encode()).hexdigest()
        got = self._modules.get(h)
        if got is None:
            module = self.xp.cuda.function.Module()
            module.load(compiler.compile(source, self.info.arch))
            got = self._modules[h] = _CupyModule(module, entries)
        return got


class EmuDevice:
    """The CPU emulator as a device: arrays are NumPy arrays, kernels run through
    ``emulator.build(...).launch(...)`` in ``order`` ("forward" or "reverse" thread order)."""

    xp = np

    def __init__(self, order: str = "forward", info: DeviceInfo = H100):
        self.order, self.info = order, info

    def asarray(self, a):
        return np.ascontiguousarray(a)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def to_host(self, a):
        return np.asarray(a)

    def is_device_array(self, a) -> bool:
        return False

    def load(self, source, entries):
        from . import emulator

        module = emulator.build(source, entries)
        order = self.order

        class _Module:
            def launch(self, name, grid, block, shared_bytes, args):
                module.launch(name, grid, block, shared_bytes, args, order=order)

        return _Module()


def default_device() -> Device:
    """``MLC_CUDA_DEVICE=emu`` (or ``emu-reverse``) gives the emulator, else the GPU."""
    choice = os.environ.get("MLC_CUDA_DEVICE", "")
    if choice.startswith("emu"):
        return EmuDevice("reverse" if choice.endswith("reverse") else "forward")
    return CupyDevice()


# -- steps ---------------------------------------------------------------------------------------
_KERNELS: dict = {}  # program key -> CudaKernel (the source holds no sizes)


def generated(program: Program) -> codegen.CudaKernel:
    key = program.key()
    got = _KERNELS.get(key)
    if got is None:
        name = "mlc_" + hashlib.sha256(key.encode()).hexdigest()[:20]
        # the process-wide cache keeps no graph nodes alive (they would stay hash-consed forever)
        bare = dataclasses.replace(program, inputs=[], outputs=[])
        got = _KERNELS[key] = codegen.generate(bare, name)
    return got


class _KernelStep:
    def __init__(self, program: Program, where: dict, device: Device):
        self.program, self.device = program, device
        self.kernel = generated(program)
        self.module = None  # set by the Executable: one module holds all its kernels
        self.launches = {  # by whether the vector buffers are aligned at the call
            a: self.kernel.launches(program.slots, device.info, aligned=a) for a in (False, True)
        }
        self.scratch = max((x.scratch_bytes for x in self.launches[False]), default=0)
        self.slots = [np.int64(s) for s in program.slots]
        self.inputs = [where[id(n)] for n in program.inputs]
        self.outputs = [(n.shape, n.dtype) for n in program.outputs]
        self.out_index = [where.setdefault(id(n), len(where)) for n in program.outputs]

    def __call__(self, values):
        dev = self.device
        outs = [dev.empty(shape, dtype) for shape, dtype in self.outputs]
        args = [*self.slots, *[values[i] for i in self.inputs], *outs]
        if self.kernel.has_final:
            args.append(dev.empty((max(self.scratch, codegen.HEADER),), np.uint8))
        first = len(self.slots)  # the buffers follow the slots
        vector = [args[first + b] for b in self.kernel.vector_buffers]
        aligned = all(address(a) % codegen.VECTOR_ALIGN == 0 for a in vector)
        for x in self.launches[aligned]:
            self.module.launch(x.kernel, x.grid, x.block, x.shared_bytes, args)
        for i, o in zip(self.out_index, outs):
            values[i] = o


def address(a) -> int:
    """The address of a device array's first element: ``.data.ptr`` on CuPy, the array
    interface's data pointer on NumPy (the emulator's arrays)."""
    ptr = getattr(a.data, "ptr", None)  # a CuPy MemoryPointer (offset views included)
    return int(ptr) if ptr is not None else a.__array_interface__["data"][0]


def _dot(xp, lhs, rhs, contracting, batch):
    """``dot_general`` as one batched ``xp.matmul`` (cuBLAS on CuPy), as its NumPy impl does."""
    from mlc.ir.primitives.reduce import _dot_dims

    lc, rc, lb, rb, lfree, rfree = _dot_dims(lhs, rhs, contracting, batch)

    def size(x, axes):
        return int(np.prod([x.shape[i] for i in axes], dtype=np.int64))

    B, M, N, K = size(lhs, lb), size(lhs, lfree), size(rhs, rfree), size(lhs, lc)
    a = xp.transpose(lhs, list(lb) + list(lfree) + list(lc)).reshape(B, M, K)
    b = xp.transpose(rhs, list(rb) + list(rc) + list(rfree)).reshape(B, K, N)
    out = xp.matmul(a, b)
    shape = [lhs.shape[i] for i in lb] + [lhs.shape[i] for i in lfree]
    shape += [rhs.shape[i] for i in rfree]
    return out.reshape(shape).astype(lhs.dtype, copy=False)


class _LibraryStep:
    def __init__(self, node, where: dict, device: Device):
        self.node, self.device = node, device
        self.inputs = [where[id(i)] for i in node.inputs]
        self.out = where.setdefault(id(node), len(where))

    def __call__(self, values):
        n, dev, xp = self.node, self.device, self.device.xp
        args = [values[i] for i in self.inputs]
        a = n.kwargs
        if n.op == "dot_general":
            out = _dot(xp, *args, a["contracting"], a["batch"])
        elif n.op in ("cumsum", "cumprod"):
            fn = xp.cumsum if n.op == "cumsum" else xp.cumprod
            x, axis = args[0], a["axis"]
            if a["reverse"]:
                out = xp.flip(fn(xp.flip(x, axis), axis=axis, dtype=x.dtype), axis)
            else:
                out = fn(x, axis=axis, dtype=x.dtype)
        else:  # argsort, scatter_add, custom_call: the NumPy implementation on the host
            with np.errstate(all="ignore"):
                out = dev.asarray(evaluate_node(n, [dev.to_host(x) for x in args]))
        values[self.out] = xp.ascontiguousarray(out)  # kernels read C-contiguous buffers


class Executable:
    """A graph compiled for a CUDA device; call it with arrays for the graph's inputs."""

    def __init__(self, graph: Graph, device: Device | None = None):
        self.graph = graph
        self.device = device = device or default_device()
        self.plan = fuse(graph)
        where: dict[int, int] = {}
        for p in graph.inputs:
            where[id(p)] = len(where)
        self.param_dtypes = [p.dtype for p in graph.inputs]
        constants = []
        for n in graph.nodes():
            if n.op == "constant":
                where[id(n)] = len(where)
                constants.append(
                    device.asarray(np.require(n.attr("value").array, requirements="C"))
                )
        self.steps, self.programs = [], []
        for k in self.plan.kernels:
            if k.kind == "library":
                self.steps.append(_LibraryStep(k.members[0], where, device))
            else:
                program = describe(k)
                self.programs.append(program)
                self.steps.append(_KernelStep(program, where, device))
        kernels = {s.kernel.name: s.kernel for s in self.steps if isinstance(s, _KernelStep)}
        self.source = codegen.module_source(list(kernels.values()))
        entries = {n: p for k in kernels.values() for n, p in k.entries.items()}
        module = device.load(self.source, entries) if kernels else None
        for s in self.steps:
            if isinstance(s, _KernelStep):
                s.module = module
        self.template = [None] * len(graph.inputs) + constants
        self.template += [None] * (len(where) - len(self.template))
        self.out_index = [where[id(o)] for o in graph.outputs]
        accesses = [
            (s.inputs, s.out_index if isinstance(s, _KernelStep) else [s.out]) for s in self.steps
        ]
        first = len(graph.inputs) + len(constants)
        # intermediates are dropped after their last reader: CuPy's pool reuses their memory
        dead = release_plan(accesses, set(self.out_index), first)
        self.schedule = list(zip(self.steps, dead))

    def cuda_source(self) -> str:
        """The CUDA C of every kernel, one translation unit (what NVRTC compiles)."""
        return self.source

    def __call__(self, *arrays):
        dev = self.device
        on_device = any(dev.is_device_array(a) for a in arrays)
        values = list(self.template)
        for i, (a, dtype) in enumerate(zip(arrays, self.param_dtypes)):
            if dev.is_device_array(a):
                values[i] = dev.xp.ascontiguousarray(a.astype(dtype, copy=False))
            else:
                values[i] = dev.asarray(np.asarray(a, dtype=dtype))
        for step, dead in self.schedule:
            step(values)
            for i in dead:
                values[i] = None
        outs = [values[i] for i in self.out_index]
        return outs if on_device else [dev.to_host(o) for o in outs]
