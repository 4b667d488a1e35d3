"""Compile LLVM IR text to native code for the host CPU, with an in-memory and an on-disk cache.

One call, `compile_module(ir_text, key)`, takes the IR of one jitted signature (kernels plus an
entry point) through parse + verify, the O3 pipeline with loop and SLP vectorization, object
emission, and loading into a process-wide LLJIT. The object file is cached on disk, so a fresh
process loads it back without running LLVM's optimizer or code generator (docs/llvm-backend.md).

>>> ir_text = '''
... define i64 @twice(i64 %x) {
...   %y = shl i64 %x, 1
...   ret i64 %y
... }
... '''
>>> cm = compile_module(ir_text, "doctest-twice", disk=False)
>>> import ctypes
>>> ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(cm.address("twice"))(21)
42
>>> compile_module(ir_text, "doctest-twice", disk=False) is cm
True

Ownership: a `CompiledModule` holds the ORC resource tracker that keeps its machine code mapped.
Addresses from `address()` are valid only while the CompiledModule is alive; the in-memory
cache keeps every module alive for the life of the process. The LLJIT itself is never disposed.
"""

import ctypes
import ctypes.util
import glob
import hashlib
import os
import re
import sys
import threading
from collections import Counter
from functools import cache
from typing import NamedTuple

import llvmlite
import llvmlite.binding as llvm

from .. import diskcache

FORMAT_VERSION = 2  # 2: the shared entry format of backends/diskcache.py
MAGIC = b"MLC-LLVM-OBJECT\n"  # file layout: MAGIC, sha256(rest) (32 bytes), rest
SUFFIX = ".mlcobj"

# LLVM compilations, objects loaded from disk, repeated compiles answered from memory, and disk
# entries found corrupt, truncated or belonging to another key (then recompiled and overwritten).
STATS: Counter = Counter(
    kernels_compiled=0, disk_cache_hits=0, memory_cache_hits=0, disk_cache_rejected=0
)

_LOCK = threading.RLock()  # llvmlite's global LLVM context is not thread-safe
_MEMORY: dict = {}  # entry hash -> CompiledModule, alive for the life of the process
_LIBRARY_COUNT = 0  # LLJIT library names cannot be reused, even after unloading


class CompileError(RuntimeError):
    """LLVM rejected IR that mlc generated: a bug in the code generator, not in user code."""


def reset_stats():
    for name in STATS:
        STATS[name] = 0


# --- target -----------------------------------------------------------------------------------


@cache
def _init_llvm():
    # llvm.initialize() raises in llvmlite >= 0.45: only the native target and its printer.
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@cache
def host() -> tuple:
    """``(cpu_name, features)`` of this machine as LLVM names them (part of every cache key)."""
    _init_llvm()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def target_machine():
    """A new TargetMachine for the host CPU and its features, at opt level 3.

    A new one per use: MCJIT takes ownership of the machine it is given and frees it with the
    engine, so a shared machine would be a use-after-free waiting to happen. LLJIT (used here)
    copies the machine's settings and owns nothing, but one machine per compile keeps the rule
    simple. Code model ``jitdefault`` (large on 64-bit): calls and data references work wherever
    the JIT maps the object. Mach-O needs position-independent code; ELF does not.
    """
    cpu, features = host()
    reloc = "pic" if sys.platform == "darwin" else "default"
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=cpu, features=features, opt=3, reloc=reloc, codemodel="jitdefault"
    )


# --- compile ----------------------------------------------------------------------------------


def parse(ir_text: str, tm=None):
    """Parse and verify IR text into a ModuleRef for `tm` (the host); CompileError on bad IR."""
    _init_llvm()
    tm = tm or target_machine()
    try:
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
    except RuntimeError as e:
        raise CompileError(f"LLVM rejected the generated IR: {e}\n{_excerpt(ir_text, e)}") from None
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    return mod


def optimize(module_ref, tm=None) -> str:
    """Run the O3 pipeline with loop and SLP vectorization on `module_ref` in place.

    Returns the optimized IR text (what ``f.lower(...).llvm_ir()`` shows).
    """
    tm = tm or target_machine()
    module_ref.triple = tm.triple
    module_ref.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module_ref, pb)
    return str(module_ref)


def _excerpt(ir_text: str, err, context: int = 3) -> str:
    """The IR lines around the line LLVM's message names, or the first lines if it names none."""
    lines = ir_text.splitlines()
    m = re.search(r":(\d+):\d+: error", str(err))
    if m is None:
        head = "\n".join(f"{i + 1:5d}  {s}" for i, s in enumerate(lines[:30]))
        return f"IR (first {min(30, len(lines))} of {len(lines)} lines):\n{head}"
    n = int(m.group(1))
    lo, hi = max(1, n - context), min(len(lines), n + context)
    body = "\n".join(f"{'>' if i == n else ' '}{i:5d}  {lines[i - 1]}" for i in range(lo, hi + 1))
    return f"IR lines {lo}-{hi}:\n{body}"


def _exported(module_ref) -> tuple:
    """Functions the object defines with external linkage: the ones `address()` can return."""
    return tuple(
        sorted(
            f.name
            for f in module_ref.functions
            if not f.is_declaration and f.linkage == llvm.Linkage.external
        )
    )


def _compile(ir_text: str) -> tuple:
    """IR text -> (object bytes, exported names, optimized IR text). One LLVM compilation."""
    tm = target_machine()
    mod = parse(ir_text, tm)
    optimized = optimize(mod, tm)
    obj = tm.emit_object(mod)
    return obj, _exported(mod), optimized


# --- loading ----------------------------------------------------------------------------------


@cache
def _jit():
    """The process-wide LLJIT. Never disposed (`_owned`), so resource trackers of modules that
    outlive it at interpreter exit never touch a freed JIT."""
    _init_llvm()
    load_runtime()  # libmvec's vector functions, before any object is linked
    load_blas()
    jit = llvm.create_lljit_compiler(target_machine())
    jit._owned = True
    return jit


class CompiledModule:
    """Native code for one IR module, loaded into the process.

    Keeps the ORC resource tracker (which keeps the code mapped) and the object bytes; the code
    is unloaded when this object is garbage collected, so keep it alive while any address from
    `address()` may be called. ``from_disk`` says whether LLVM compiled it in this process.
    """

    def __init__(self, key, entry_hash, ir_text, obj, symbols, optimized_ir, from_disk):
        global _LIBRARY_COUNT
        self.key = key
        self.entry_hash = entry_hash
        self._ir = ir_text  # the text, or a function that makes it (generated when asked for)
        self.object = obj
        self.symbols = symbols
        self.from_disk = from_disk
        self._optimized_ir = optimized_ir
        _LIBRARY_COUNT += 1
        self.library = f"mlc{_LIBRARY_COUNT}_{entry_hash[:12]}"
        builder = llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
        for name in symbols:
            builder.export_symbol(name)
        try:
            self._tracker = builder.link(_jit(), self.library)
        except RuntimeError as e:  # e.g. a symbol no loaded library defines
            raise CompileError(f"the JIT could not link {key!r}: {e}") from None
        self._addresses = {name: self._tracker[name] for name in symbols}

    def address(self, name: str) -> int:
        """The address of the exported function `name`, callable through ctypes."""
        try:
            return self._addresses[name]
        except KeyError:
            raise KeyError(
                f"{name!r} is not an exported function of {self.library} "
                f"(exports: {', '.join(self.symbols) or 'none'})"
            ) from None

    def cfunc(self, name: str, restype, *argtypes):
        """A ctypes function for `name` that keeps this module alive as long as it lives."""
        fn = ctypes.CFUNCTYPE(restype, *argtypes)(self.address(name))
        fn._mlc_module = self
        return fn

    @property
    def ir_text(self) -> str:
        """The module's IR text (generated now if it was loaded by generator version)."""
        if callable(self._ir):
            self._ir = self._ir()
        return self._ir

    @property
    def optimized_ir(self) -> str:
        """Optimized IR text; recomputed from the source IR when the object came from disk."""
        if self._optimized_ir is None:
            with _LOCK:
                self._optimized_ir = optimize(parse(self.ir_text))
        return self._optimized_ir

    def __repr__(self):
        src = "disk" if self.from_disk else "compiled"
        return f"<CompiledModule {self.key!r} {src} exports={list(self.symbols)}>"


# --- cache ------------------------------------------------------------------------------------


def cache_dir():
    """The on-disk cache folder, or None when disabled (``backends/diskcache.py``)."""
    return diskcache.cache_dir()


def entry_hash(key: str, ir_text: str) -> str:
    """SHA-256 naming a cache entry: the key, the IR, LLVM and llvmlite, the host, mlc.

    The IR text is hashed too, so a changed code generator never loads a stale object.
    """
    import mlc  # lazily: mlc imports the backends

    cpu, features = host()
    parts = (
        f"format={FORMAT_VERSION}",
        f"key={key}",
        f"ir={hashlib.sha256(ir_text.encode()).hexdigest()}",
        f"llvmlite={llvmlite.__version__}",
        "llvm=" + ".".join(map(str, llvm.llvm_version_info)),
        f"triple={llvm.get_default_triple()}",
        f"cpu={cpu}",
        f"features={features}",
        f"mlc={mlc.__version__}",
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def entry_path(key: str, ir_text: str):
    """Where the entry for (key, ir_text) lives on disk, or None when the cache is disabled."""
    d = cache_dir()
    return None if d is None else os.path.join(d, "llvm", entry_hash(key, ir_text) + SUFFIX)


def _encode_entry(h: str, key: str, obj: bytes, symbols: tuple) -> bytes:
    # the key is for people reading the cache; key_hash is what is checked
    return diskcache.encode(MAGIC, FORMAT_VERSION, h, obj, key=key[:200], symbols=list(symbols))


def _decode_entry(data: bytes, h: str):
    """(object bytes, symbols) if `data` is an intact entry for hash `h`, else None."""
    got = diskcache.decode(MAGIC, FORMAT_VERSION, data, h)
    if got is None or not isinstance(got[0].get("symbols"), list):
        return None
    return got[1], tuple(got[0]["symbols"])


def _read_entry(path: str, h: str):
    """The cached (object, symbols), or None on a miss; a bad entry counts as rejected."""
    data = diskcache.read(path)
    if data is None:
        return None
    entry = _decode_entry(data, h)
    if entry is None:
        STATS["disk_cache_rejected"] += 1
    return entry


def _write_entry(path: str, data: bytes) -> bool:
    """Write atomically (temp file in the same folder, then rename). False if it failed."""
    return diskcache.write_atomic(path, data)


def compile_module(ir_text, key: str, disk: bool = True, generator: str | None = None):
    """Compile (or load from a cache) the IR module `ir_text`; `key` names it in the cache.

    In-memory cache first (the same CompiledModule again), then the disk cache (verified: a
    corrupt, truncated or foreign entry is recompiled and overwritten), then LLVM. Raises
    CompileError, never crashes, on IR that does not parse or verify. ``disk=False`` skips
    the disk cache for this call.

    ``generator``: ``ir_text`` is a function that makes the IR, and ``generator`` names the
    code that makes it (a hash of its source). The entry is then keyed on the key and the
    generator instead of the IR text, so a warm start loads the object without generating (or
    importing the code generator for) the IR.
    """
    with _LOCK:
        h = entry_hash(key, "generator:" + generator if generator else ir_text)
        cm = _MEMORY.get(h)
        if cm is not None:
            STATS["memory_cache_hits"] += 1
            return cm
        folder = cache_dir() if disk else None
        path = None if folder is None else os.path.join(folder, "llvm", h + SUFFIX)
        entry = None if path is None else _read_entry(path, h)
        cm = None
        if entry is not None:
            try:
                cm = CompiledModule(key, h, ir_text, entry[0], entry[1], None, from_disk=True)
                STATS["disk_cache_hits"] += 1
            except CompileError:  # intact but unloadable (e.g. a runtime library went away)
                STATS["disk_cache_rejected"] += 1
        if cm is None:
            if callable(ir_text):
                ir_text = ir_text()
            obj, symbols, optimized = _compile(ir_text)
            STATS["kernels_compiled"] += 1
            if path is not None:
                _write_entry(path, _encode_entry(h, key, obj, symbols))
            cm = CompiledModule(key, h, ir_text, obj, symbols, optimized, from_disk=False)
        _MEMORY[h] = cm
        return cm


def clear_memory_cache():
    """Forget the in-memory cache (for tests). Modules still referenced elsewhere stay loaded."""
    with _LOCK:
        _MEMORY.clear()


# --- runtime libraries ------------------------------------------------------------------------


@cache
def libmvec_path():
    """Path of glibc's libmvec on an x86-64 host with AVX2, or None (then: scalar libm calls)."""
    if os.uname().machine not in ("x86_64", "AMD64"):
        return None
    features = llvm.get_host_cpu_features()
    if not features.get("avx2", False):
        return None
    for path in ("/lib/x86_64-linux-gnu/libmvec.so.1", ctypes.util.find_library("mvec")):
        if path and (os.path.exists(path) or "/" not in path):
            return path
    return None


@cache
def load_runtime():
    """Make libmvec's symbols visible to the JIT (idempotent). Returns whether it is loaded."""
    path = libmvec_path()
    if path is None:
        return False
    llvm.load_library_permanently(path)
    return True


# --- BLAS -------------------------------------------------------------------------------------


class Blas(NamedTuple):
    """NumPy's bundled OpenBLAS: symbol names are ``prefix + "cblas_" + name + suffix``."""

    path: str
    prefix: str
    suffix: str
    int_bits: int  # width of the integer arguments (64 for scipy-openblas64)

    def symbol(self, name: str) -> str:
        """``Blas(...).symbol("sgemm")`` -> ``"scipy_cblas_sgemm64_"``."""
        return f"{self.prefix}cblas_{name}{self.suffix}"


_BLAS_PATTERNS = (
    "numpy.libs/libscipy_openblas*.so*",  # Linux wheels (auditwheel)
    "numpy.libs/libopenblas*.so*",
    "numpy/.dylibs/libscipy_openblas*.dylib",  # macOS wheels (delocate)
    "numpy/.dylibs/libopenblas*.dylib",
    "numpy.libs/libscipy_openblas*.dll",  # Windows wheels (delvewheel)
    "numpy.libs/libopenblas*.dll",
)
# (prefix, suffix, int bits), most specific first.
_BLAS_NAMING = (("scipy_", "64_", 64), ("", "64_", 64), ("scipy_", "", 32), ("", "", 32))


@cache
def load_blas():
    """Find NumPy's bundled OpenBLAS, make its symbols visible to the JIT, describe its naming.

    Returns a `Blas`, or None when NumPy has no bundled OpenBLAS (the backend then falls back to
    NumPy's matmul).
    """
    import numpy

    site = os.path.dirname(os.path.dirname(numpy.__file__))
    for pattern in _BLAS_PATTERNS:
        for path in sorted(glob.glob(os.path.join(site, pattern))):
            try:
                llvm.load_library_permanently(path)
            except RuntimeError:
                continue
            for prefix, suffix, bits in _BLAS_NAMING:
                if llvm.address_of_symbol(f"{prefix}cblas_sgemm{suffix}"):
                    return Blas(path, prefix, suffix, bits)
    return None
