"""Run mlc and its peers in one process on the same inputs and print one table.

    python -m benchmarks.run [--quick] [--only NAME[,NAME]] [--backend cpu|numpy]
                             [--peers NAME[,NAME]] [--json OUT]

Each row: median time of ``repeats`` calls after warm-up (warm-up includes compilation), the
ratio of that time to jax.jit's (below 1 is faster than jax), and effective GB/s: the bytes an
ideal fused kernel moves (inputs read once, outputs written once) divided by the time. Every
result is checked against NumPy before it is timed; a mismatch marks the row FAILED, untimed.
See benchmarks/README.md for what each row measures and the targets of issue 5.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before any jax import: no accelerator probing

import numpy as np  # noqa: E402

from benchmarks import workloads as W  # noqa: E402
from benchmarks.peers import NotApplicable, all_peers  # noqa: E402
from benchmarks.report import fmt_time, markdown_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMED = ("triad", "gelu", "softmax", "layernorm", "mlp", "overhead")
WORKLOADS = (*TIMED, "cold_start", "peak_memory")
TITLES = {
    "triad": "STREAM triad a+s*b",
    "gelu": "GELU-tanh",
    "softmax": "softmax (last axis)",
    "layernorm": "layernorm (last axis)",
    "mlp": "MLP SGD step",
    "overhead": "per-call x*2+1",
    "cold_start": "cold start GELU",
    "peak_memory": "peak memory GELU",
}
TOLERANCE = {"mlp": (1e-3, 1e-4)}  # (rtol, atol); matmul sums reorder across libraries
DEFAULT_TOLERANCE = (1e-4, 1e-5)


@dataclass
class Row:
    """One line of the table. ``status``: ok, FAILED, ERROR, n/a, skipped."""

    workload: str
    peer: str
    status: str = "ok"
    seconds: float | None = None  # time per call (cold start: import + compile + first call)
    best: float | None = None  # fastest sample: far below `seconds` means a noisy machine
    gbps: float | None = None
    vs_jax: float | None = None  # seconds / jax.jit's seconds
    peak_bytes: int | None = None  # peak_memory rows
    peak_ratio: float | None = None  # peak / (input + output bytes)
    note: str = ""


# ---- machine ---------------------------------------------------------------------------------


def machine_info(peers) -> dict:
    """Where and with what this ran: CPU, cores, memory, library versions."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    mem = None
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                mem = int(f.readline().split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    return {
        "cpu": model,
        "machine": platform.machine(),
        "os": platform.platform(),
        "cpu_count": os.cpu_count(),
        "sched_getaffinity": affinity,
        "memory_gib": round(mem / 2**30, 1) if mem else None,
        "python": platform.python_version(),
        "versions": {p.name: p.version() for p in peers},
        "load_average": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "env": {
            k: os.environ[k] for k in ("MLC_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ
        },
    }


def default_backend() -> str:
    """mlc's ``cpu`` backend when it exists, else the NumPy reference interpreter."""
    from mlc.api import BACKENDS

    return "cpu" if "cpu" in BACKENDS else "numpy"


# ---- measuring -------------------------------------------------------------------------------


def to_numpy(tree):
    if isinstance(tree, (tuple, list)):
        return tuple(to_numpy(t) for t in tree)
    return np.asarray(tree)


def matches(result, reference, rtol, atol) -> bool:
    """Same structure, shapes, dtypes and values (within tolerance) as the NumPy reference."""
    result, reference = to_numpy(result), to_numpy(reference)
    if isinstance(reference, tuple):
        return (
            isinstance(result, tuple)
            and len(result) == len(reference)
            and all(matches(a, b, rtol, atol) for a, b in zip(result, reference))
        )
    if isinstance(result, tuple) or result.shape != reference.shape:
        return False
    if result.dtype != reference.dtype:
        return False
    return bool(np.allclose(result, reference, rtol=rtol, atol=atol, equal_nan=True))


def median_time(call, repeats: int, min_sample: float) -> tuple:
    """(median, fastest) seconds per call; a sample loops until it lasts ``min_sample``."""
    t = time.perf_counter()
    call()
    once = time.perf_counter() - t
    inner = max(1, int(min_sample / max(once, 1e-9)))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            call()
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples), min(samples)


def run_timed(workload, sizes, peers, cfg) -> list:
    """Time one workload on every peer, after checking each result against NumPy's."""
    inputs = W.make_inputs(workload, sizes)
    reference = (
        W.sgd_step_numpy(*inputs) if workload == "mlp" else getattr(W, workload)(np, *inputs)
    )
    traffic = W.ideal_bytes(workload, inputs, reference)
    rtol, atol = TOLERANCE.get(workload, DEFAULT_TOLERANCE)
    rows = []
    for peer in peers:
        row = Row(workload, peer.name)
        rows.append(row)
        try:
            call = peer.prepare(workload, inputs)
            result = call()  # the first call: compiles, and is the one checked
            if not matches(result, reference, rtol, atol):
                row.status, row.note = "FAILED", "result differs from NumPy (value/shape/dtype)"
                continue
            for _ in range(cfg["warmup"]):
                call()
            min_sample = 0.05 if workload == "overhead" else 0.0
            row.seconds, row.best = median_time(call, cfg["repeats"], min_sample)
        except NotApplicable as e:
            row.status, row.note = "n/a", str(e)
            continue
        except Exception as e:  # noqa: BLE001  (one broken peer must not stop the table)
            row.status = "FAILED" if peer.name == "mlc" else "ERROR"
            row.note = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            continue
        if workload != "overhead":
            row.gbps = traffic / row.seconds / 1e9
        row.note = peer.note(workload)
    return rows


def run_cold_start(sizes, peers, cfg) -> list:
    """Two fresh processes per peer sharing one cache directory: empty, then warm."""
    rows = []
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    )
    # Python's own bytecode is not part of a cold start: the peers' installs ship it, and an
    # editable mlc writes it on first import -- unless PYTHONDONTWRITEBYTECODE is set (as in some
    # sandboxes), which would make every mlc child compile ~50 modules (~75 ms). Compile once.
    import compileall

    for folder in ("mlc", "ir", "backends", "benchmarks"):
        compileall.compile_dir(os.path.join(REPO, folder), quiet=1)
    for peer in peers:
        if peer.name not in ("numpy", "mlc", "jax.jit", "numba", "numexpr"):
            rows.append(Row("cold_start", peer.name, "n/a", note="not measured"))
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench-cold-{peer.name}-") as cache:
            for label in ("cold", "warm cache"):
                row = Row("cold_start", f"{peer.name} ({label})")
                rows.append(row)
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.cold_start",
                    peer.name,
                    str(sizes.n),
                    cache,
                ]
                if peer.name == "mlc":
                    cmd.append(cfg["backend"])
                proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    row.status = "FAILED" if peer.name == "mlc" else "ERROR"
                    row.note = last[:120]
                    continue
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                if not out["ok"]:
                    row.status, row.note = "FAILED", "result differs from NumPy"
                    continue
                row.seconds = out["seconds"]
                stats = ", ".join(f"{k}={v}" for k, v in out["info"].items())
                row.note = "import + compile + first call" + (
                    f"; mlc.stats: {stats}" if stats else ""
                )
    return rows


def run_peak_memory(sizes, peers, cfg) -> list:
    """Peak bytes tracemalloc sees allocated during one (warm) call, over input + output bytes."""
    (x,) = W.make_inputs("peak_memory", sizes)
    reference = W.gelu(np, x)
    io_bytes = x.nbytes + reference.nbytes
    rows = []
    for peer in peers:
        row = Row("peak_memory", peer.name)
        rows.append(row)
        if peer.name in ("jax.jit", "torch.compile"):
            row.status, row.note = "n/a", "its allocator is invisible to tracemalloc"
            continue
        try:
            call = peer.prepare("gelu", (x,))
            if not matches(call(), reference, *DEFAULT_TOLERANCE):
                row.status, row.note = "FAILED", "result differs from NumPy"
                continue
            gc.collect()
            tracemalloc.start()
            try:
                out = call()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            del out
        except NotApplicable as e:
            row.status, row.note = "n/a", str(e)
            continue
        except Exception as e:  # noqa: BLE001
            row.status = "FAILED" if peer.name == "mlc" else "ERROR"
            row.note = f"{type(e).__name__}: {e}"[:120]
            continue
        row.peak_bytes = peak
        row.peak_ratio = peak / io_bytes
        row.note = "input allocated before; ideal = output only = 0.50"
    return rows


def add_jax_ratios(rows):
    """Fill ``vs_jax`` from the jax.jit row of the same workload (cold start: same cache state)."""
    jax_time = {}
    for r in rows:
        if r.peer.startswith("jax.jit") and r.seconds:
            jax_time[(r.workload, r.peer.removeprefix("jax.jit"))] = r.seconds
    for r in rows:
        suffix = r.peer[r.peer.find(" (") :] if " (" in r.peer else ""
        ref = jax_time.get((r.workload, suffix))
        if ref and r.seconds:
            r.vs_jax = r.seconds / ref


# ---- reporting -------------------------------------------------------------------------------


def format_table(rows) -> str:
    head = ["workload", "peer", "time", "min", "vs jax.jit", "GB/s", "status", "note"]
    body = []
    for r in rows:
        if r.workload == "peak_memory" and r.peak_bytes is not None:
            value = f"{r.peak_bytes / 2**20:.1f} MiB"
            ratio = f"{r.peak_ratio:.2f}x in+out"
        else:
            value = fmt_time(r.seconds)
            ratio = f"{r.vs_jax:.2f}" if r.vs_jax is not None else "-"
        gbps = f"{r.gbps:.1f}" if r.gbps is not None else "-"
        best = fmt_time(r.best)
        body.append([TITLES[r.workload], r.peer, value, best, ratio, gbps, r.status, r.note])
    return markdown_table(head, body)


TARGETS = [  # (workload, what, limit on mlc's time / jax.jit's time)
    ("gelu", "GELU >= 4x faster than jax.jit", 0.25),
    ("softmax", "softmax >= 3.5x faster than jax.jit", 1 / 3.5),
    ("layernorm", "layernorm >= 3.5x faster than jax.jit", 1 / 3.5),
    ("mlp", "MLP step <= 0.9x jax.jit's time", 0.9),
    ("overhead", "per-call overhead <= 0.6x jax.jit's", 0.6),
]


def format_targets(rows) -> str:
    """The issue's targets, each with what this run measured for mlc (met / MISSED / unknown)."""
    by = {(r.workload, r.peer): r for r in rows}
    lines = []

    def verdict(ok):
        return "unknown" if ok is None else ("met" if ok else "MISSED")

    for workload, what, limit in TARGETS:
        r = by.get((workload, "mlc"))
        got = r.vs_jax if r else None
        lines.append(f"- {what}: {verdict(None if got is None else got <= limit)} ({_ratio(got)})")
    for label, limit in (("cold", 0.6), ("warm cache", 0.4)):
        r = by.get(("cold_start", f"mlc ({label})"))
        got = r.vs_jax if r else None
        ok = None if got is None else got <= limit
        lines.append(f"- cold start ({label}) <= {limit}x jax.jit's: {verdict(ok)} ({_ratio(got)})")
    gelu, triads = (
        by.get(("gelu", "mlc")),
        [r.gbps for r in rows if r.workload == "triad" and r.gbps],
    )
    if gelu and gelu.gbps and triads:
        share = gelu.gbps / max(triads)
        lines.append(
            f"- GELU bandwidth >= 0.7x the best triad's: {verdict(share >= 0.7)} ({share:.2f}x)"
        )
    else:
        lines.append("- GELU bandwidth >= 0.7x the best triad's: unknown")
    mem = by.get(("peak_memory", "mlc"))
    ok = None if not mem or mem.peak_ratio is None else mem.peak_ratio <= 1.0
    got = f"{mem.peak_ratio:.2f}x" if ok is not None else "-"
    lines.append(f"- peak memory of jitted GELU <= input + output: {verdict(ok)} ({got})")
    return "\n".join(lines)


def _ratio(x):
    return "-" if x is None else f"{x:.2f}x jax.jit's time"


def format_machine(m, backend, quick) -> str:
    versions = ", ".join(f"{k} {v if v else 'not installed'}" for k, v in m["versions"].items())
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none"
    busy = m["load_average"] and m["load_average"][0] > 0.5 * m["sched_getaffinity"]
    return "\n".join(
        [
            f"machine: {m['cpu']} ({m['machine']}), os.cpu_count()={m['cpu_count']}, "
            f"sched_getaffinity={m['sched_getaffinity']}, memory {m['memory_gib']} GiB",
            f"os: {m['os']}, python {m['python']}; thread env: {env}",
            f"load average (1, 5, 15 min): {m['load_average']}"
            + (" -- other work is running: expect noisy times" if busy else ""),
            f"versions: {versions}",
            f"mlc backend: {backend}; sizes: {'quick (smoke run)' if quick else 'full'}",
        ]
    )


# ---- entry point -----------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke run)")
    p.add_argument(
        "--only", action="append", default=[], help=f"workload(s): {', '.join(WORKLOADS)}"
    )
    p.add_argument("--backend", help="mlc backend (default: cpu when available, else numpy)")
    p.add_argument("--peers", help="comma-separated peers to run (default: all installed)")
    p.add_argument("--repeats", type=int, help="timed calls per row (median is reported)")
    p.add_argument("--json", metavar="OUT", help="also write machine and rows as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    only = [w for item in args.only for w in item.split(",") if w] or list(WORKLOADS)
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    from mlc.api import BACKENDS

    backend = args.backend or default_backend()
    if backend not in BACKENDS:
        raise SystemExit(f"mlc backend {backend!r} not available; mlc has {', '.join(BACKENDS)}")
    peers = all_peers(backend)
    if args.peers:
        wanted = args.peers.split(",")
        peers = [p for p in peers if p.name in wanted or p.name.split(".")[0] in wanted]
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as numba_cache:
        ours = "NUMBA_CACHE_DIR" not in os.environ and any(p.name == "numba" for p in peers)
        if ours:  # set before numba's import reads it; numba caches beside the sources otherwise
            os.environ["NUMBA_CACHE_DIR"] = numba_cache
        try:
            return _run(args, only, backend, peers)
        finally:
            if ours:
                del os.environ["NUMBA_CACHE_DIR"]


def _run(args, only, backend, peers) -> int:
    machine = machine_info(peers)
    installed = [p for p in peers if machine["versions"][p.name]]
    missing = [p.name for p in peers if not machine["versions"][p.name]]
    sizes = W.QUICK if args.quick else W.FULL
    cfg = {
        "backend": backend,
        "warmup": 1 if args.quick else 2,
        "repeats": args.repeats or (3 if args.quick else 10),
    }
    print(format_machine(machine, backend, args.quick), flush=True)

    rows = []
    for workload in only:
        t = time.perf_counter()
        if workload == "cold_start":
            rows += run_cold_start(sizes, installed, cfg)
        elif workload == "peak_memory":
            rows += run_peak_memory(sizes, installed, cfg)
        else:
            rows += run_timed(workload, sizes, installed, cfg)
        rows += [Row(workload, name, "skipped", note="not installed") for name in missing]
        print(f"  {workload}: {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)
    add_jax_ratios(rows)

    print()
    print(format_table(rows))
    print()
    if hasattr(os, "getloadavg"):
        print(f"load average at the end: {[round(v, 2) for v in os.getloadavg()]}")
    print("targets (issue 5), mlc vs jax.jit:")
    print(format_targets(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": machine,
                    "backend": backend,
                    "quick": args.quick,
                    "rows": [asdict(r) for r in rows],
                },
                f,
                indent=1,
            )
    failed = [r for r in rows if r.peer.startswith("mlc") and r.status == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
