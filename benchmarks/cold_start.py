"""Cold start, run in a fresh process: import the library, compile GELU, call it once.

``python -m benchmarks.cold_start PEER N CACHE_DIR [BACKEND]`` prints one JSON line: ``seconds``
from just before the library's import to the first result in hand (NumPy's own import and the
input are outside it: every peer pays them alike), plus what the library says it compiled.
``CACHE_DIR`` is the peer's disk cache; the runner calls this twice with the same directory,
first empty (cold), then filled by the first run (warm disk cache).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import numpy as np


def main(argv):
    peer, n, cache_dir = argv[0], int(argv[1]), argv[2]
    backend = argv[3] if len(argv) > 3 else None
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    info = {}
    t0 = time.perf_counter()
    if peer == "mlc":
        os.environ["MLC_CACHE_DIR"] = cache_dir
        import mlc
        from benchmarks.workloads import gelu

        out = mlc.jit(functools.partial(gelu, np), backend=backend)(x)
        t1 = time.perf_counter()
        info = {k: v for k, v in mlc.stats().items() if v}
    elif peer == "jax.jit":
        import jax

        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        try:
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        except AttributeError:  # older jax: no size threshold
            pass
        import jax.numpy as jnp

        from benchmarks.workloads import gelu

        out = np.asarray(jax.jit(functools.partial(gelu, jnp))(x))
        t1 = time.perf_counter()
    elif peer == "numba":
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
        from benchmarks.numba_kernels import gelu

        out = gelu(x)
        t1 = time.perf_counter()
    elif peer == "numexpr":
        import numexpr

        out = numexpr.evaluate("0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x**3)))")
        t1 = time.perf_counter()
    elif peer == "numpy":
        from benchmarks.workloads import gelu

        out = gelu(np, x)
        t1 = time.perf_counter()
    else:
        raise SystemExit(f"cold start: unknown peer {peer!r}")
    from benchmarks.workloads import gelu

    ok = bool(np.allclose(out, gelu(np, x), rtol=1e-4, atol=1e-5))
    print(json.dumps({"seconds": t1 - t0, "ok": ok, "info": info}))


if __name__ == "__main__":
    main(sys.argv[1:])
