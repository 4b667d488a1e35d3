"""CUDA C to a cubin with NVRTC (no GPU needed), a disk cache, and ptxas resource usage.

``compile(source, arch=90) -> bytes`` compiles for the real architecture ``sm_XX`` (a cubin: the
driver loads it without a PTX JIT) with ``-std=c++17 --fmad=false`` and never fast math: every
float operation rounds as NumPy's does. ``resource_usage(source, arch)`` gives, per kernel, the
registers, spill stores/loads, static shared memory and stack frame that ptxas reports
(``-Xptxas=-v`` in the same NVRTC compile, so the numbers describe the very cubin).

NVRTC is reached through ``ctypes`` (libnvrtc.so.13 from the ``nvidia-cuda-nvrtc`` wheel, else the
system's): no CuPy, no ``cuda-bindings``, and nothing that needs a GPU or a driver. CuPy's own
compile path asks for a device and fails without one (docs/cuda-backend.md).

Cache entries live in ``$MLC_CACHE_DIR/cuda`` (the LLVM backend's folder rules), named by
sha256(source, arch, options, NVRTC version), stored as MAGIC + sha256(rest) + a JSON header + the
cubin, written atomically (temp file + rename) and checked on every read: a corrupt, truncated or
foreign entry is recompiled and overwritten.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import re
import sys
import threading
from collections import Counter
from functools import cache

from .. import diskcache

FORMAT_VERSION = 2  # 2: the shared entry format of backends/diskcache.py
MAGIC = b"MLC-CUDA-CUBIN\n"
SUFFIX = ".mlccubin"
OPTIONS = ("-std=c++17", "--fmad=false")

# NVRTC compilations, cubins read from disk, repeats answered from memory, bad disk entries
STATS: Counter = Counter(
    kernels_compiled=0, disk_cache_hits=0, memory_cache_hits=0, disk_cache_rejected=0
)
_LOCK = threading.Lock()
_MEMORY: dict = {}  # entry hash -> (cubin, log)


class CudaCompileError(RuntimeError):
    """NVRTC rejected generated CUDA C: a bug in the code generator, not in user code. The
    message holds NVRTC's log and the source with line numbers."""

    def __init__(self, log: str, source: str):
        self.log, self.source = log, source
        numbered = "\n".join(f"{i + 1:5d}  {s}" for i, s in enumerate(source.splitlines()))
        super().__init__(f"NVRTC could not compile the generated CUDA C:\n{log}\n{numbered}")


class NvrtcUnavailable(RuntimeError):
    """libnvrtc could not be loaded (``pip install nvidia-cuda-nvrtc``)."""


def reset_stats():
    for name in STATS:
        STATS[name] = 0


# -- NVRTC through ctypes ------------------------------------------------------------------------
def _candidates() -> list:
    out = []
    for base in sys.path:
        out += sorted(glob.glob(os.path.join(base, "nvidia", "cu1*", "lib", "libnvrtc.so.1*")))
        out += sorted(glob.glob(os.path.join(base, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
    out += ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            out += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    return [c for c in out if ".alt." not in c]


@cache
def nvrtc():
    """The loaded libnvrtc (ctypes), its builtins library loaded first so NVRTC finds it."""
    errors = []
    for path in _candidates():
        folder = os.path.dirname(path)
        try:
            if folder:  # a wheel's folder is not on the loader's path: load the builtins by path
                for b in sorted(glob.glob(os.path.join(folder, "libnvrtc-builtins.so.*"))):
                    if ".alt." not in b:
                        ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        return lib
    raise NvrtcUnavailable(
        "libnvrtc is not installed (pip install 'nvidia-cuda-nvrtc==13.0.*'): "
        + "; ".join(errors[-3:])
    )


def available() -> bool:
    try:
        nvrtc()
        return True
    except NvrtcUnavailable:
        return False


@cache
def version() -> tuple:
    lib = nvrtc()
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _check(code, what):
    if code != 0:
        msg = nvrtc().nvrtcGetErrorString(code).decode()
        raise RuntimeError(f"{what} failed: {msg} ({code})")


def _get(lib, prog, size_fn, get_fn, text=False):
    n = ctypes.c_size_t()
    _check(getattr(lib, size_fn)(prog, ctypes.byref(n)), size_fn)
    buf = ctypes.create_string_buffer(n.value)
    _check(getattr(lib, get_fn)(prog, buf), get_fn)
    return buf.value.decode(errors="replace") if text else buf.raw[: n.value]


def _nvrtc_compile(source: str, arch: int, ptx: bool = False) -> tuple:
    """(cubin or PTX bytes, log) for ``source``; CudaCompileError when NVRTC rejects it."""
    lib = nvrtc()
    prog = ctypes.c_void_p()
    _check(
        lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"mlc.cu", 0, None, None),
        "nvrtcCreateProgram",
    )
    try:
        target = f"compute_{arch}" if ptx else f"sm_{arch}"
        opts = [f"--gpu-architecture={target}", *OPTIONS] + ([] if ptx else ["-Xptxas=-v"])
        arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        code = lib.nvrtcCompileProgram(prog, len(opts), arr)
        log = _get(lib, prog, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog", text=True)
        if code != 0:
            raise CudaCompileError(log, source)
        if ptx:
            return _get(lib, prog, "nvrtcGetPTXSize", "nvrtcGetPTX"), log
        return _get(lib, prog, "nvrtcGetCUBINSize", "nvrtcGetCUBIN"), log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def ptx(source: str, arch: int = 90) -> str:
    """The PTX NVRTC makes of ``source`` (for reading, or for the ``ptxas`` binary)."""
    return _nvrtc_compile(source, arch, ptx=True)[0].rstrip(b"\0").decode()


# -- cache ---------------------------------------------------------------------------------------
def cache_dir():
    """The on-disk cache folder, or None when disabled (``backends/diskcache.py``)."""
    return diskcache.cache_dir()


def entry_hash(source: str, arch: int) -> str:
    parts = (
        f"format={FORMAT_VERSION}",
        f"arch=sm_{arch}",
        f"options={' '.join(OPTIONS)}",
        "nvrtc=" + ".".join(map(str, version())),
        f"source={hashlib.sha256(source.encode()).hexdigest()}",
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _encode(h: str, cubin: bytes, log: str) -> bytes:
    return diskcache.encode(MAGIC, FORMAT_VERSION, h, cubin, log=log)


def _decode(data: bytes, h: str):
    """(cubin, log) if ``data`` is an intact entry for hash ``h``, else None."""
    got = diskcache.decode(MAGIC, FORMAT_VERSION, data, h)
    return None if got is None else (got[1], str(got[0].get("log", "")))


def entry_path(source: str, arch: int = 90):
    d = cache_dir()
    return None if d is None else os.path.join(d, "cuda", entry_hash(source, arch) + SUFFIX)


def compile_with_log(source: str, arch: int = 90, disk: bool = True) -> tuple:
    """``(cubin, ptxas log)``: from memory, the disk cache, or NVRTC."""
    with _LOCK:
        h = entry_hash(source, arch)
        got = _MEMORY.get(h)
        if got is not None:
            STATS["memory_cache_hits"] += 1
            return got
        path = entry_path(source, arch) if disk else None
        data = diskcache.read(path) if path is not None else None
        if data is not None:
            got = _decode(data, h)
            STATS["disk_cache_rejected" if got is None else "disk_cache_hits"] += 1
        if got is None:
            got = _nvrtc_compile(source, arch)
            STATS["kernels_compiled"] += 1
            if path is not None:
                diskcache.write_atomic(path, _encode(h, *got))
        _MEMORY[h] = got
        return got


def compile(source: str, arch: int = 90, disk: bool = True) -> bytes:
    """The sm_``arch`` cubin of ``source`` (cached in memory and on disk)."""
    return compile_with_log(source, arch, disk)[0]


def clear_memory_cache():
    with _LOCK:
        _MEMORY.clear()


# -- resource usage ------------------------------------------------------------------------------
_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_FRAME = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads"
)  # fmt: skip
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(log: str) -> dict:
    """``{kernel: {registers, spill_stores, spill_loads, shared, stack}}`` from ``ptxas -v``."""
    out, cur = {}, None
    for line in log.splitlines():
        m = _ENTRY.search(line)
        if m:
            cur = out.setdefault(m.group(1), dict(registers=0, spill_stores=0, spill_loads=0,
                                                  shared=0, stack=0))  # fmt: skip
            continue
        if cur is None:
            continue
        m = _FRAME.search(line)
        if m:
            cur["stack"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
        m = _USED.search(line)
        if m:
            cur["registers"] = int(m.group(1))
        m = _SMEM.search(line)
        if m:
            cur["shared"] = int(m.group(1))
    return out


def resource_usage(source: str, arch: int = 90) -> dict:
    """Per kernel of ``source``: registers, spill stores/loads (bytes), static shared memory and
    stack frame (bytes), as ptxas reports them for the sm_``arch`` cubin."""
    return parse_ptxas(compile_with_log(source, arch)[1])
