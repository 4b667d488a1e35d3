"""Run generated CUDA C on the CPU: g++ compiles the very source NVRTC compiles, plus a header.

``build(source, kernels)`` compiles ``source`` with ``emu/mlc_cuda_emu.h`` force-included and
``MLC_CUDA_EMU`` defined (the source's NVRTC prelude is guarded by ``#ifndef MLC_CUDA_EMU``),
adds one ``extern "C"`` launch wrapper per kernel, and loads the shared object with ctypes.
``Module.launch`` checks the arguments against the declared parameters (CuPy checks nothing; a
wrong dtype here is a TypeError, not garbage) and runs the kernel block by block. Kernels whose
source has a barrier or a warp operation run their threads as fibers; ``order="reverse"`` runs
threads and blocks backwards, which turns a missing ``__syncthreads()`` into a wrong answer.

>>> import numpy as np
>>> src = '''
... extern "C" __global__ void twice(const float* __restrict__ b0, float* __restrict__ b1,
...                                  long long s0) {
...     for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < s0;
...          i += (long long)gridDim.x * blockDim.x)
...         b1[i] = 2.0f * b0[i];
... }'''
>>> mod = build(src, {"twice": [("ptr", "float"), ("ptr", "float"), ("i64", "long long")]})
>>> x = np.arange(5, dtype=np.float32); y = np.empty_like(x)
>>> mod.launch("twice", (2, 1, 1), (2, 1, 1), 0, [x, y, x.size])
>>> y
array([0., 2., 4., 6., 8.], dtype=float32)

The .so is cached on disk under ``$MLC_CACHE_DIR/cuda-emu`` (default ``~/.cache/mlc``), keyed
by the SHA-256 of the header, the source, the wrappers and the compiler, and in memory for the
life of the process. ``STATS`` counts compiles and cache hits.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("emu") / "mlc_cuda_emu.h"
FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing")
FORMAT_VERSION = 1

# The C types a parameter may have, and the NumPy dtype an array passed for it must have.
CTYPES = {
    "bool": np.dtype(np.bool_),
    "unsigned char": np.dtype(np.uint8),
    "signed char": np.dtype(np.int8),
    "int": np.dtype(np.int32),
    "unsigned int": np.dtype(np.uint32),
    "long long": np.dtype(np.int64),
    "unsigned long long": np.dtype(np.uint64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}
# CUDA block and grid limits (sm_90), and the dynamic shared memory one block may have.
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_SHARED = 232448
# Calls that make a kernel run its threads as fibers (anything that waits for other threads).
SYNC = re.compile(
    r"\b__(?:syncthreads\w*|syncwarp|shfl\w*|ballot_sync|any_sync|all_sync|activemask"
    r"|match_\w+|reduce_\w+_sync)\b"
)

# compiled: g++ runs; disk_hits: a .so found in the cache folder; memory_hits: a repeated build.
# disk_rejected: a cached .so that would not load (then compiled again).
STATS: Counter = Counter(compiled=0, disk_hits=0, memory_hits=0, disk_rejected=0)
_LOCK = threading.Lock()
_MEMORY: dict = {}


def reset_stats():
    for name in STATS:
        STATS[name] = 0


@cache
def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def available() -> bool:
    """True when a C++ compiler (g++, or $CXX) is on the PATH."""
    return _compiler() is not None


@cache
def _compiler_version() -> str:
    run = subprocess.run([_compiler(), "--version"], capture_output=True, text=True)
    return run.stdout.splitlines()[0] if run.stdout else ""


def cache_dir() -> str | None:
    """``cuda-emu`` in the on-disk cache folder, or None when the cache is disabled
    (``backends/diskcache.py``)."""
    from mlc.backends.diskcache import cache_dir as root

    d = root()
    return None if d is None else os.path.join(d, "cuda-emu")


# --- build ------------------------------------------------------------------------------------


def build(source: str, kernels: dict) -> Module:
    """Compile ``source`` for the CPU; ``kernels`` maps each entry point to its parameters.

    Parameters are ``(kind, ctype)`` pairs: ``("ptr", "float")`` for a ``float*`` (``const``
    allowed), ``("i64", "long long")`` for a scalar. The wrappers check these against the
    source's signatures at compile time. Raises RuntimeError with the compiler's log and the
    offending source lines when g++ rejects the code.
    """
    if not available():
        raise RuntimeError("the CUDA emulator needs a C++ compiler: g++ was not found on the PATH")
    key, params, fibers, wrappers = _plan(source, kernels)
    with _LOCK:
        mod = _MEMORY.get(key)
        if mod is not None:
            STATS["memory_hits"] += 1
            return mod
        path = _shared_object(key, source, wrappers)
        try:
            mod = Module(path, params, fibers)
        except OSError:  # a damaged cache entry: compile it again
            STATS["disk_rejected"] += 1
            os.unlink(path)
            mod = Module(_shared_object(key, source, wrappers), params, fibers)
        _MEMORY[key] = mod
        return mod


def entry_key(source: str, kernels: dict) -> str:
    """The cache key of ``build(source, kernels)``: its .so is ``cache_dir()/KEY.so``."""
    return _plan(source, kernels)[0]


def _plan(source: str, kernels: dict) -> tuple:
    params = {name: [_param(name, i, p) for i, p in enumerate(ps)] for name, ps in kernels.items()}
    fibers = fiber_kernels(source, list(params))
    wrappers = "".join(_wrapper(name, ps, fibers[name]) for name, ps in params.items())
    text = [str(FORMAT_VERSION), HEADER.read_text(), source, wrappers, " ".join(FLAGS)]
    key = hashlib.sha256("\0".join([*text, _compiler_version()]).encode()).hexdigest()
    return key, params, fibers, wrappers


def _param(name, i, p) -> tuple:
    kind, ctype = p
    base = " ".join(ctype.replace("*", " ").replace("const", " ").split())
    if kind == "ptr" and base in CTYPES:
        return kind, base
    if kind == "i64" and base == "long long":
        return kind, base
    raise ValueError(
        f"kernel {name}: parameter {i} is {p!r}; expected ('ptr', C type) with a C type in "
        f"{sorted(CTYPES)}, or ('i64', 'long long')"
    )


def _wrapper(name: str, params: list, fibers: bool) -> str:
    """The extern "C" entry point ctypes calls for kernel ``name``, and its signature checks."""
    checks = [
        f"  static_assert(P::count == {len(params)}, "
        f'"kernel {name}: the source has a different number of parameters than the {len(params)} '
        f'declared");'
    ]
    for i, (kind, ctype) in enumerate(params):
        at = f"P::template at<{i}>"
        test = (
            f"::mlc_emu::is_ptr_to<{at}, {ctype}>"
            if kind == "ptr"
            else f"std::is_same_v<{at}, {ctype}>"
        )
        what = f"{ctype}*" if kind == "ptr" else ctype
        checks.append(
            f'  static_assert({test}, "kernel {name}: parameter {i} is declared {what}");'
        )
    return (
        f'\nextern "C" __attribute__((visibility("default"))) int mlc_emu_launch_{name}(\n'
        "    const long long* dims, unsigned long long smem, int reverse, void** args, "
        "char* err, unsigned long long errlen) {\n"
        f"  using P = ::mlc_emu::params<decltype({name})>;\n" + "\n".join(checks) + "\n"
        f"  auto body = [args] {{ ::mlc_emu::invoke({name}, args); }};\n"
        f"  return ::mlc_emu::launch(dims, smem, reverse, {'true' if fibers else 'false'},\n"
        "                           &::mlc_emu::call<decltype(body)>, &body, err, errlen);\n"
        "}\n"
    )


def _shared_object(key: str, source: str, wrappers: str) -> str:
    """The path of the compiled .so for ``key``: from the disk cache, or compiled now."""
    folder = cache_dir()
    if folder is None:
        folder = tempfile.mkdtemp(prefix="mlc-cuda-emu-")  # cache disabled: a private folder
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, key + ".so")
    if os.path.exists(path):
        STATS["disk_hits"] += 1
        return path
    with tempfile.TemporaryDirectory(prefix="mlc-cuda-emu-") as work:
        src = os.path.join(work, "kernel.cu")
        Path(src).write_text(source)
        main = os.path.join(work, "main.cpp")
        Path(main).write_text('#include "kernel.cu"\n' + wrappers)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        cmd = [_compiler(), *FLAGS, "-DMLC_CUDA_EMU", "-include", str(HEADER), main, "-o", tmp]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
        STATS["compiled"] += 1
        if run.returncode != 0:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise RuntimeError(
                f"g++ rejected the CUDA source:\n{run.stderr}{_excerpt(source, run.stderr)}"
            )
        os.replace(tmp, path)  # atomic: a racing process sees the old file or the whole new one
    return path


def _excerpt(source: str, log: str, context: int = 2) -> str:
    """The source lines g++'s first error names, marked with '>'."""
    m = re.search(r"kernel\.cu:(\d+):\d+: error", log)
    if m is None:
        return ""
    lines = source.splitlines()
    n = int(m.group(1))
    lo, hi = max(1, n - context), min(len(lines), n + context)
    body = "\n".join(f"{'>' if i == n else ' '}{i:5d}  {lines[i - 1]}" for i in range(lo, hi + 1))
    return f"\nsource lines {lo}-{hi}:\n{body}"


# --- which kernels need fibers ----------------------------------------------------------------


def fiber_kernels(source: str, names: list) -> dict:
    """For each kernel name: does it (or a function it calls) wait for other threads?

    Text-level and conservative: a kernel whose definition cannot be found, a macro or a
    struct/namespace body with a barrier, all give True. Running a barrier-free kernel as fibers
    is only slower; the reverse is an error the header reports.
    """
    text = _strip_comments(source)
    defs, opaque = _definitions(text)
    if opaque or any(SYNC.search(line) for line in text.splitlines() if line.lstrip()[:1] == "#"):
        return {name: True for name in names}
    waits = {f for f, body in defs.items() if SYNC.search(body)}
    changed = True
    while changed:  # close over calls: f waits if it calls a function that waits
        changed = False
        for f, body in defs.items():
            if f not in waits and any(re.search(rf"\b{re.escape(g)}\s*\(", body) for g in waits):
                waits.add(f)
                changed = True
    return {name: name not in defs or name in waits for name in names}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _definitions(text: str) -> tuple:
    """``({function name: body}, opaque)`` for top-level braces; opaque: a non-function body
    (struct, namespace, initializer) that contains a barrier or warp operation."""
    defs, opaque = {}, False
    depth, start, header_start = 0, 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                header, body = text[header_start:start], text[start : i + 1]
                name = _function_name(header)
                if name is None:
                    opaque = opaque or bool(SYNC.search(body))
                else:
                    defs[name] = defs.get(name, "") + body
                header_start = i + 1
        elif ch == ";" and depth == 0:
            header_start = i + 1
    return defs, opaque


def _function_name(header: str) -> str | None:
    """The name before the last top-level parenthesized group of a definition's header."""
    header = re.sub(r"^\s*#[^\n]*$", "", header, flags=re.M).strip()
    if not header.endswith(")") and not re.search(r"\)\s*(const)?\s*$", header):
        return None
    depth, end = 0, None
    for i in range(len(header) - 1, -1, -1):
        if header[i] == ")":
            if depth == 0:
                end = i
            depth += 1
        elif header[i] == "(":
            depth -= 1
            if depth == 0:
                m = re.search(r"(\w+)\s*$", header[:i])
                return m.group(1) if m and end is not None else None
    return None


# --- launch -----------------------------------------------------------------------------------


def _dims(value, what: str, limits: tuple) -> tuple:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise TypeError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    for d, lim, axis in zip(dims, limits, "xyz"):
        if not 1 <= d <= lim:
            raise ValueError(f"{what}.{axis} = {d} is outside CUDA's limit 1..{lim}")
    return dims


class Module:
    """A compiled source: ``launch`` runs one of its kernels on NumPy arrays."""

    def __init__(self, path: str, params: dict, fibers: dict):
        self.path = path
        self.params = params
        self.fibers = fibers  # kernel name -> runs its threads as fibers
        self._lib = ctypes.CDLL(path)
        self._fns = {}
        for name in params:
            fn = getattr(self._lib, f"mlc_emu_launch_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [
                ctypes.POINTER(ctypes.c_longlong),
                ctypes.c_ulonglong,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_void_p),
                ctypes.c_char_p,
                ctypes.c_ulonglong,
            ]
            self._fns[name] = fn

    def launch(self, name, grid, block, shared_bytes, args, order=None):
        """Run kernel ``name`` over ``grid`` blocks of ``block`` threads, like a CUDA launch.

        ``args`` follow the declared parameters: C-contiguous NumPy arrays of the declared
        dtype for pointers, ints for scalars (TypeError otherwise). ``order`` is ``"forward"``
        or ``"reverse"``; when None, ``$MLC_EMU_ORDER`` or ``"forward"``. Misuse detected while
        running (deadlock, divergent barrier, ``__trap``) raises RuntimeError naming the block.
        """
        if name not in self._fns:
            raise ValueError(f"no kernel {name!r} in this module; it has {sorted(self._fns)}")
        order = order or os.environ.get("MLC_EMU_ORDER") or "forward"
        if order not in ("forward", "reverse"):
            raise ValueError(f"order must be 'forward' or 'reverse', got {order!r}")
        g = _dims(grid, "grid", MAX_GRID)
        b = _dims(block, "block", MAX_BLOCK)
        if b[0] * b[1] * b[2] > MAX_THREADS:
            raise ValueError(f"block {b} has {b[0] * b[1] * b[2]} threads; CUDA allows 1024")
        if not isinstance(shared_bytes, (int, np.integer)) or not 0 <= shared_bytes <= MAX_SHARED:
            raise ValueError(
                f"shared_bytes = {shared_bytes!r}: dynamic shared memory must be an int from 0 "
                f"to {MAX_SHARED} bytes"
            )
        slots, keep = self._arguments(name, args)
        dims = (ctypes.c_longlong * 6)(*g, *b)
        err = ctypes.create_string_buffer(1024)
        rc = self._fns[name](dims, int(shared_bytes), order == "reverse", slots, err, len(err))
        del keep
        if rc != 0:
            raise RuntimeError(f"kernel {name}: {err.value.decode(errors='replace')}")

    def _arguments(self, name, args) -> tuple:
        params = self.params[name]
        args = list(args)
        if len(args) != len(params):
            raise TypeError(f"kernel {name} takes {len(params)} arguments, got {len(args)}")
        slots = (ctypes.c_void_p * max(1, len(args)))()
        keep = []  # ctypes scalars whose addresses are in slots
        for i, ((kind, ctype), a) in enumerate(zip(params, args)):
            if kind == "ptr":
                want = CTYPES[ctype]
                if not isinstance(a, np.ndarray):
                    raise TypeError(
                        f"kernel {name}: argument {i} must be a NumPy array of {want} "
                        f"({ctype}*), got {type(a).__name__}"
                    )
                if a.dtype != want:
                    raise TypeError(
                        f"kernel {name}: argument {i} has dtype {a.dtype}, the kernel takes "
                        f"{ctype}* ({want})"
                    )
                if not a.flags.c_contiguous or not a.flags.aligned:
                    raise TypeError(
                        f"kernel {name}: argument {i} must be C-contiguous and aligned "
                        "(np.ascontiguousarray)"
                    )
                slots[i] = a.ctypes.data
            else:
                if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
                    raise TypeError(
                        f"kernel {name}: argument {i} is a long long; got {type(a).__name__}"
                    )
                if not -(2**63) <= int(a) < 2**63:
                    raise ValueError(f"kernel {name}: argument {i} = {a} does not fit a long long")
                v = ctypes.c_longlong(int(a))
                keep.append(v)
                slots[i] = ctypes.addressof(v)
        return slots, keep
