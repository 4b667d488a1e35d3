"""``mlc.jit``: trace once per abstract signature, optimize, run on a backend.

Pipeline, top to bottom (the same stage names appear in MLC_DUMP and ``mlc graph --stage``):
trace -> inline-calls -> optimize (cse, fold, simplify, dce) -> [expand-pow on compiled
backends] -> backend ("cpu": fuse -> kernel programs -> LLVM; "cuda": fuse -> kernel programs ->
CUDA C -> NVRTC, or the CPU emulator with ``MLC_CUDA_DEVICE=emu``; "numpy": the interpreter).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections import Counter

import numpy as np

from mlc import pytree
from mlc.ir import Graph
from mlc.ir.interpreter import evaluate
from mlc.tracing import Tracer, abstract, on_device, trace_flat

_STATS: Counter = Counter()


def stats() -> dict:
    """Counters: ``traces`` (functions traced), ``cache_hits`` (calls that reused a trace), ...

    >>> isinstance(stats()["traces"], int)
    True
    """
    out = {"traces": 0, "cache_hits": 0, "kernels_compiled": 0, "disk_cache_hits": 0}
    out.update(_STATS)
    compiler = sys.modules.get("mlc.backends.llvm.compiler")
    if compiler is not None:  # the CPU backend's compile and cache counters
        for k in ("kernels_compiled", "disk_cache_hits", "memory_cache_hits"):
            out[k] = out.get(k, 0) + compiler.STATS[k]
        out["disk_cache_rejected"] = compiler.STATS["disk_cache_rejected"]
    return out


def reset_stats():
    _STATS.clear()


BACKENDS = ("numpy", "cpu", "cuda")


def _default_backend():
    """``MLC_BACKEND``, else "cpu" (the LLVM backend); "numpy" is the reference interpreter,
    "cuda" the CUDA backend (a GPU through CuPy, or its CPU emulator: ``MLC_CUDA_DEVICE=emu``)."""
    backend = os.environ.get("MLC_BACKEND") or "cpu"
    if backend not in BACKENDS:
        raise ValueError(f"MLC_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
    return backend


def execute(graph: Graph, arrays, backend=None) -> list:
    """Run a graph once on concrete arrays with ``backend`` (default: ``MLC_BACKEND`` or
    "cpu"): what the transforms do when they are called on NumPy arrays."""
    backend = backend or _default_backend()
    if backend == "numpy":
        return list(evaluate(graph, *arrays))
    return _executable(_prepare(graph, backend)[1], backend)(*arrays)


def _executable(graph: Graph, backend: str):
    """The compiled form of an optimized graph for a compiled backend."""
    if backend == "cuda":
        from mlc.backends.cuda.runtime import Executable

        return Executable(graph)
    from mlc.backends.llvm.runtime import Executable

    return Executable(graph)


def _prepare(graph: Graph, backend: str):
    """``(graph, optimized)``: custom calls inlined (the rules were for transforms, all applied by
    now), then the default pipeline, and for compiled backends ``expand-pow`` (their results
    are within a stated ulp bound, so ``x**3 -> x*x*x`` is too)."""
    from mlc.ir.passes import optimize, run_passes

    if any(n.op == "custom_call" for n in graph.nodes()):
        from mlc.custom import inline_calls

        graph = inline_calls(graph)
    optimized = optimize(graph)
    if backend != "numpy":
        optimized = run_passes(optimized, ["expand-pow"])
    return graph, optimized


class Lowered:
    """What ``f.lower(*args)`` returns: the traced and optimized graphs of one signature."""

    def __init__(self, graph: Graph, optimized: Graph, in_tree, out_tree, backend):
        self.graph = graph
        self.optimized = optimized
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.backend = backend
        self._plan = None
        self._executable = None

    @property
    def plan(self):
        """The fusion plan of the optimized graph (``mlc.ir.passes.fusion``)."""
        if self._plan is None:
            from mlc.ir.passes.fusion import fuse

            self._plan = fuse(self.optimized)
        return self._plan

    @property
    def kernels(self) -> list:
        """The kernels (and library calls) the optimized graph runs as, in order."""
        return self.plan.kernels

    def fusion_report(self):
        """What was fused and why each unfused edge was not: a JSON-serializable dict whose
        ``str()`` is readable text with source lines."""
        return self.plan.report()

    def as_text(self, optimized=True) -> str:
        return str(self.optimized if optimized else self.graph)

    @property
    def executable(self):
        """The compiled form for this backend (None for the reference backend)."""
        if self.backend == "numpy":
            return None
        if self._executable is None:
            self._executable = _executable(self.optimized, self.backend)
            self._plan = self._executable.plan
        return self._executable

    def llvm_ir(self) -> str:
        """The LLVM IR of every kernel (``backend="cpu"``)."""
        if self.backend != "cpu":
            raise ValueError(f"llvm_ir() needs backend='cpu', this is backend={self.backend!r}")
        return self.executable.llvm_ir()

    def cuda_source(self) -> str:
        """The CUDA C of every kernel, one translation unit (``backend="cuda"``)."""
        if self.backend != "cuda":
            raise ValueError(
                f"cuda_source() needs backend='cuda', this is backend={self.backend!r}"
            )
        return self.executable.cuda_source()

    def __call__(self, *leaves):
        if self.backend == "numpy":
            return evaluate(self.optimized, *leaves)
        return self.executable(*leaves)

    @property
    def fast_call(self):
        """A function of the tuple of positional NumPy arrays (known to match this signature)
        giving the jitted function's result: no flattening, no key building, no dispatch."""
        run = self if self.backend == "numpy" else self.executable
        tree = self.out_tree
        if tree.kind == "leaf":
            return lambda args: run(*args)[0]
        return lambda args: pytree.unflatten(tree, run(*args))

    def __repr__(self):
        return f"<Lowered {self.graph.name}: {len(self.optimized.nodes())} nodes>"


class Jitted:
    """A function compiled per abstract signature (shapes, dtypes, pytree structure, statics)."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), backend=None):
        self.fun = fun
        # updated=(): copying fun's __dict__ (another Jitted's, or a transform's wrapper of one)
        # would overwrite self.fun with the inner function and skip the transform in between.
        functools.update_wrapper(self, fun, updated=())
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = tuple(static_argnames)
        self.backend = backend or _default_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; available: {', '.join(BACKENDS)}")
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None
        self._cache: dict = {}
        self._fast: dict = {}  # (shape, dtype) of each positional ndarray -> Lowered.fast_call
        self._plain = not self.static_argnums and not self.static_argnames

    def _split(self, args, kwargs):
        """Separate static arguments (part of the cache key) from traced ones."""
        static = {}
        dyn_args = list(args)
        for i in self.static_argnums:
            i = i % len(args) if -len(args) <= i < len(args) else i
            if i < len(args):
                static[i] = args[i]
                dyn_args[i] = None
        if self.static_argnames and self._sig is not None:
            bound = self._sig.bind_partial(*args, **kwargs)
            for name in self.static_argnames:
                if name in kwargs:
                    static[name] = kwargs[name]
                elif name in bound.arguments:
                    idx = list(self._sig.parameters).index(name)
                    static[idx] = args[idx]
                    dyn_args[idx] = None
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in static}
        return static, dyn_args, dyn_kwargs

    def _rebuild(self, static, dyn_args, dyn_kwargs):
        args = list(dyn_args)
        for k, v in static.items():
            if isinstance(k, int):
                args[k] = v
        kwargs = dict(dyn_kwargs)
        kwargs.update({k: v for k, v in static.items() if isinstance(k, str)})
        return args, kwargs

    def _key(self, static, leaves, treedef):
        try:
            skey = tuple(sorted((str(k), v) for k, v in static.items()))
            hash(skey)
        except TypeError as e:
            raise TypeError(f"static arguments must be hashable: {e}") from None
        return (skey, treedef, tuple(abstract(x) for x in leaves))

    def lower(self, *args, **kwargs) -> Lowered:
        """Trace and optimize for these arguments (cached)."""
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, treedef = pytree.flatten((dyn_args, dyn_kwargs))
        return self._lower(static, leaves, treedef)[0]

    def _lower(self, static, leaves, treedef):
        key = self._key(static, leaves, treedef)
        hit = self._cache.get(key)
        if hit is not None:
            _STATS["cache_hits"] += 1
            return hit, key
        _STATS["traces"] += 1

        def flat_fun(*tracers):
            dyn_args, dyn_kwargs = pytree.unflatten(treedef, tracers)
            args, kwargs = self._rebuild(static, dyn_args, dyn_kwargs)
            return self.fun(*args, **kwargs)

        graph, out_tree = trace_flat(flat_fun, key[2], getattr(self.fun, "__name__", "f"))
        graph, optimized = _prepare(graph, self.backend)
        if os.environ.get("MLC_VERIFY"):  # verify both graphs and their textual round trip
            from mlc.ir.verifier import check_round_trip

            check_round_trip(graph)
            check_round_trip(optimized)
        lowered = Lowered(graph, optimized, treedef, out_tree, self.backend)
        self._cache[key] = lowered
        return lowered, key

    def __call__(self, *args, **kwargs):
        plain = not kwargs and self._plain and all(type(a) is np.ndarray for a in args)
        if plain:  # the fast path: NumPy arrays in, a dict lookup, one call into the executable
            key = tuple([(a.shape, a.dtype) for a in args])
            hit = self._fast.get(key)
            if hit is not None:
                _STATS["cache_hits"] += 1
                return hit(args)
        static, dyn_args, dyn_kwargs = self._split(args, kwargs)
        leaves, treedef = pytree.flatten((dyn_args, dyn_kwargs))
        if any(isinstance(x, Tracer) for x in leaves):
            # Called inside another trace: inline by tracing straight through.
            args, kwargs = self._rebuild(static, dyn_args, dyn_kwargs)
            return self.fun(*args, **kwargs)
        lowered, _ = self._lower(static, leaves, treedef)
        if plain:
            self._fast[key] = lowered.fast_call
        arrays = [x if on_device(x) else np.asarray(x) for x in leaves]
        outs = lowered(*arrays)
        return pytree.unflatten(lowered.out_tree, outs)


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend=None):
    """Compile ``fun`` per abstract signature; use as ``@mlc.jit`` or ``mlc.jit(f, ...)``.

    >>> import numpy as np, mlc
    >>> @mlc.jit
    ... def f(x):
    ...     return np.tanh(x) * 2
    >>> f(np.zeros(2, np.float32))
    array([0., 0.], dtype=float32)
    """
    if fun is None:
        return functools.partial(
            jit, static_argnums=static_argnums, static_argnames=static_argnames, backend=backend
        )
    return Jitted(fun, static_argnums, static_argnames, backend)
