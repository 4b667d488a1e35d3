"""The GPU section of the benchmarks (issue 6): mlc's CUDA backend and its peers on one device.

    python -m benchmarks.gpu [--quick] [--only NAME[,NAME]] [--peers NAME[,NAME]] [--repeats N]
                             [--json OUT] [--emulate]

Every peer gets the same inputs, CuPy arrays made once per workload (torch and jax see the same
buffers through DLPack). Each result is first checked against a float64 NumPy reference (on a
sample of elements or rows for the big workloads); a mismatch marks the row FAILED, untimed.
Time: ``cupy.cuda.Device().synchronize()`` around a loop of calls, the median of ``repeats``
such samples after warm-up. GB/s counts the bytes an ideal fused kernel moves (inputs read once,
outputs written once); "% of copy" divides it by the best device-to-device copy of the run.

Without a GPU (no CuPy, or no device) it prints one line and exits 0. ``--emulate`` runs the mlc
rows and a NumPy reference at tiny sizes through the CPU emulator of the CUDA backend
(``MLC_CUDA_DEVICE=emu``): the harness and mlc's CUDA path end to end, with meaningless times.
The peers are in ``gpu_peers.py``; benchmarks/README.md ("GPU") says what each row measures and
lists the targets of issue 6.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

# jax takes 75% of the GPU's memory at its first use unless told otherwise; CuPy and torch share
# the device with it here. Set before any jax import.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

from benchmarks import workloads as W  # noqa: E402
from benchmarks.gpu_peers import SHARED, all_peers, cuda_version  # noqa: E402
from benchmarks.peers import NotApplicable  # noqa: E402
from benchmarks.report import fmt_time, markdown_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = ("copy", "gelu", "softmax", "layernorm", "mlp")
TITLES = {
    "copy": "device-to-device copy",
    "gelu": "GELU-tanh",
    "softmax": "softmax (last axis)",
    "layernorm": "layernorm (last axis)",
    "mlp": "MLP SGD step",
}
FULL = W.Sizes(n=256 * 2**20, rows=32768, cols=4096, batch=256)  # issue 6's sizes
QUICK = W.Sizes(n=16 * 2**20, rows=4096, cols=4096, batch=256)
EMULATED = W.Sizes(n=8192, rows=8, cols=2048, batch=8)  # a block per row: the long-row kernels
TOLERANCE = {"mlp": (1e-3, 1e-4)}  # (rtol, atol) against float64; matmul sums reorder
DEFAULT_TOLERANCE = (1e-4, 1e-5)
SAMPLE_ELEMENTS = 2**20  # elements of a big 1-D result checked (plus the first and last 4096)
SAMPLE_ROWS = 64  # rows of a big 2-D result checked (plus the first and the last)


@dataclass
class Row:
    """One line of the table. ``status``: ok, FAILED (mlc), ERROR (a peer), n/a, skipped."""

    workload: str
    peer: str
    status: str = "ok"
    seconds: float | None = None  # median time per call
    best: float | None = None  # fastest sample
    gbps: float | None = None  # ideal bytes / seconds
    pct_copy: float | None = None  # gbps / the best copy's gbps, in percent
    vs_torch_compile: float | None = None  # seconds / torch.compile's seconds
    note: str = ""


# ---- where it runs -----------------------------------------------------------------------------


class Gpu:
    """The current CUDA device through CuPy. Peers' work is waited for with a device-wide
    synchronize, which also covers torch's and jax's streams (one process, one context)."""

    emulated = False

    def __init__(self, cupy):
        self.cupy = cupy

    def put(self, tree):
        if isinstance(tree, (tuple, list)):
            return tuple(self.put(t) for t in tree)
        return self.cupy.asarray(tree)

    def sync(self):
        self.cupy.cuda.Device().synchronize()

    def free(self):
        """Give cached blocks back between workloads (256M-element workloads fill pools)."""
        gc.collect()
        self.cupy.get_default_memory_pool().free_all_blocks()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def describe(self) -> dict:
        cupy = self.cupy
        rt = cupy.cuda.runtime
        dev = cupy.cuda.Device()
        props = rt.getDeviceProperties(dev.id)
        info = {
            "device": props["name"].decode(),
            "compute_capability": dev.compute_capability,
            "sm_count": dev.attributes["MultiProcessorCount"],
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "driver_cuda": cuda_version(rt.driverGetVersion()),
            "runtime_cuda": cuda_version(rt.runtimeGetVersion()),
            "driver": None,
        }
        try:  # the driver's release (580.xx): only NVML knows it
            import pynvml

            pynvml.nvmlInit()
            info["driver"] = _text(pynvml.nvmlSystemGetDriverVersion())
        except Exception:  # noqa: BLE001  (optional)
            pass
        return info


class Emulator:
    """The CUDA backend's CPU emulator: NumPy arrays, nothing to wait for, times meaningless."""

    emulated = True

    def put(self, tree):
        return tree

    def sync(self):
        pass

    def free(self):
        gc.collect()

    def describe(self) -> dict:
        from mlc.backends.cuda.codegen import H100

        return {
            "device": "CPU emulator of the CUDA backend (MLC_CUDA_DEVICE=emu)",
            "launch_config_for": H100.name,
            "note": "times are meaningless: the harness and mlc's CUDA path are what ran",
        }


def find_gpu():
    """(Gpu, "") when CuPy imports and sees a device, else (None, why not)."""
    try:
        import cupy
    except Exception as e:  # noqa: BLE001
        return None, (
            f"CuPy does not import ({type(e).__name__}: {e}); on a GPU machine: "
            "pip install -e '.[cuda,bench]'"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001  (no driver: CUDARuntimeError)
        return None, f"CuPy finds no device ({type(e).__name__}: {e})"
    if count == 0:
        return None, "CuPy reports 0 devices"
    return Gpu(cupy), ""


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


# ---- inputs, references, verification ----------------------------------------------------------


def host_inputs(workload, sizes):
    """The float32 inputs on the host (the copy uses GELU's input)."""
    return W.make_inputs("gelu" if workload == "copy" else workload, sizes)


def sample_of(workload, inputs, seed=1):
    """Which part of a result is checked: flat indices (copy, GELU), rows (softmax, layernorm)
    or None (everything: the MLP, and any small result)."""
    rng = np.random.default_rng(seed)
    if workload in ("copy", "gelu"):
        n = inputs[0].size
        if n <= SAMPLE_ELEMENTS + 8192:
            return None
        edges = np.r_[np.arange(4096), np.arange(n - 4096, n)]
        return np.unique(np.r_[edges, rng.integers(0, n, SAMPLE_ELEMENTS)])
    if workload in ("softmax", "layernorm"):
        rows = inputs[0].shape[0]
        if rows <= 4 * SAMPLE_ROWS:
            return None
        return np.unique(np.r_[0, rows - 1, rng.integers(0, rows, SAMPLE_ROWS)])
    return None


def reference(workload, inputs, sample):
    """[(expected shape, float64 values of the sample)] for every output, in order."""
    if workload == "mlp":
        params, x, onehot = _tree(lambda a: a.astype(np.float64), inputs)
        loss = W.mlp_loss(np, params, x, onehot)  # sgd_step_numpy rounds its loss to float32
        _, new = W.sgd_step_numpy(params, x, onehot)
        return [((), np.float64(loss))] + [(p.shape, p) for p in new]
    shape = inputs[0].shape
    x = _pick(inputs[0], sample).astype(np.float64)  # the sample only: GELU's input is 1 GiB
    if workload == "copy":
        return [(shape, x)]
    rest = [a.astype(np.float64) for a in inputs[1:]]
    return [(shape, SHARED[workload](np, x, *rest))]


def _tree(fn, tree):
    if isinstance(tree, (tuple, list)):
        return tuple(_tree(fn, t) for t in tree)
    return fn(tree)


def _pick(a, sample):
    if sample is None:
        return a
    return a.reshape(-1)[sample] if a.ndim <= 1 else a[sample]


def _leaves(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in _leaves(t)]
    return [tree]


def to_host(x) -> np.ndarray:
    """A NumPy copy of a CuPy, torch, jax or NumPy array."""
    top = type(x).__module__.split(".")[0]
    if top == "cupy":
        return x.get()
    if top == "torch":
        return x.detach().cpu().numpy()
    return np.asarray(x)


def mismatch(result, expected, sample, rtol, atol) -> str:
    """What differs from the reference ("" when nothing): count, shape, dtype, values."""
    got = _leaves(result)
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (g, (shape, ref)) in enumerate(zip(got, expected)):
        g = to_host(g)
        if g.shape != tuple(shape):
            return f"output {i}: shape {g.shape}, expected {tuple(shape)}"
        if g.dtype != np.float32:
            return f"output {i}: dtype {g.dtype}, expected float32"
        g = _pick(g, sample).astype(np.float64)
        if not np.allclose(g, ref, rtol=rtol, atol=atol, equal_nan=True):
            err = np.max(np.abs(g - ref)) if g.size else 0.0
            return f"output {i}: max |error| {err:.3g} > rtol {rtol} / atol {atol}"
    return ""


# ---- measuring ---------------------------------------------------------------------------------


def median_time(call, sync, repeats: int, min_sample: float = 0.02) -> tuple:
    """(median, fastest) seconds per call: each sample is a loop of calls lasting about
    ``min_sample``, with the device synchronized before and after it."""
    sync()
    t = time.perf_counter()
    call()
    sync()
    once = time.perf_counter() - t
    inner = max(1, min(1000, int(min_sample / max(once, 1e-7))))
    samples = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        for _ in range(inner):
            call()
        sync()
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples), min(samples)


def ideal_bytes(workload, inputs, expected) -> int:
    """Inputs read once and outputs written once (the copy: its input and its output)."""
    out = sum(4 * int(np.prod(shape, dtype=np.int64)) for shape, _ in expected)
    return W.nbytes(inputs) + out


def run_workload(workload, sizes, peers, env, cfg) -> list:
    """Every peer on one workload: verify the first call, then warm up and time."""
    host = host_inputs(workload, sizes)
    sample = sample_of(workload, host)
    expected = reference(workload, host, sample)
    traffic = ideal_bytes(workload, host, expected)
    rtol, atol = TOLERANCE.get(workload, DEFAULT_TOLERANCE)
    inputs = env.put(host)
    rows = []
    # mlc runs last: if its (never before run) kernels poison the CUDA context, the peers' rows
    # of this workload are already measured. The table keeps the peers' order.
    for peer in sorted(peers, key=lambda p: p.name == "mlc"):
        if workload == "copy" and not peer.copies:
            continue
        row = Row(workload, peer.name)
        rows.append(row)
        t0 = time.perf_counter()
        try:
            call, row.note = _first_verified(
                peer, workload, inputs, env, expected, sample, rtol, atol
            )
            if call is None:
                row.status = "FAILED" if peer.name == "mlc" else "ERROR"
                continue
            for _ in range(cfg["warmup"]):
                call()
            row.seconds, row.best = median_time(call, env.sync, cfg["repeats"])
            row.gbps = traffic / row.seconds / 1e9
        except NotApplicable as e:
            row.status, row.note = "n/a", str(e)
        except Exception as e:  # noqa: BLE001  (one broken peer must not stop the table)
            row.status = "FAILED" if peer.name == "mlc" else "ERROR"
            row.note = _short(e)
        finally:
            print(
                f"  {workload} / {peer.name}: {row.status} ({time.perf_counter() - t0:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
    del inputs
    env.free()
    order = [p.name for p in peers]
    return sorted(rows, key=lambda r: order.index(r.peer))


def run_isolated(workload, args) -> list:
    """One workload in a child process (``--only W --no-isolate``): a crash, or a CUDA error that
    poisons the context (an illegal address is sticky), costs that workload's rows only. The
    child's progress goes to stderr as it runs; its rows come back through its JSON."""
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--only", workload, "--no-isolate"]
    cmd += ["--quick"] * args.quick + ["--emulate"] * args.emulate
    cmd += ["--peers", args.peers] if args.peers else []
    cmd += ["--repeats", str(args.repeats)] if args.repeats else []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        out = os.path.join(tmp, "rows.json")
        proc = subprocess.run(cmd + ["--json", out], cwd=REPO, stdout=subprocess.PIPE, text=True)
        if os.path.exists(out):
            with open(out) as f:
                return [Row(**r) for r in json.load(f)["rows"]]
    last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    note = f"the child process died (exit {proc.returncode}; see stderr): {last[:80]}"
    return [Row(workload, "mlc", "FAILED", note=note)]


def _first_verified(peer, workload, inputs, env, expected, sample, rtol, atol):
    """(call, note) of the first candidate whose first call (which compiles) matches the
    reference; (None, what went wrong with each) when none does."""
    problems = []
    for note, call in peer.candidates(workload, inputs, env):
        result = None
        try:
            result = call()
            env.sync()
            wrong = mismatch(result, expected, sample, rtol, atol)
        except NotApplicable:
            raise
        except Exception as e:  # noqa: BLE001
            wrong = _short(e)
        del result
        if not wrong:
            skipped = f" (tried first: {'; '.join(problems)})" if problems else ""
            return call, note + skipped
        problems.append(f"{note or peer.name}: {wrong}")
    return None, "; ".join(problems)[:300]


def _short(e) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:120] if text else ''}"


def add_ratios(rows):
    """Fill ``pct_copy`` (against the best copy's GB/s) and ``vs_torch_compile`` (same workload)."""
    copies = [r.gbps for r in rows if r.workload == "copy" and r.status == "ok" and r.gbps]
    best_copy = max(copies, default=None)
    compiled = {r.workload: r.seconds for r in rows if r.peer == "torch.compile" and r.seconds}
    for r in rows:
        if best_copy and r.gbps:
            r.pct_copy = 100 * r.gbps / best_copy
        if r.seconds and compiled.get(r.workload):
            r.vs_torch_compile = r.seconds / compiled[r.workload]


# ---- reporting ---------------------------------------------------------------------------------


def format_table(rows) -> str:
    head = ["workload", "peer", "time", "min", "vs torch.compile", "GB/s", "% of copy", "status"]
    head.append("note")
    body = []
    for r in rows:
        ratio = f"{r.vs_torch_compile:.2f}" if r.vs_torch_compile is not None else "-"
        gbps = f"{r.gbps:.1f}" if r.gbps is not None else "-"
        pct = f"{r.pct_copy:.0f}%" if r.pct_copy is not None else "-"
        line = [TITLES[r.workload], r.peer, fmt_time(r.seconds), fmt_time(r.best), ratio, gbps]
        body.append(line + [pct, r.status, r.note])
    return markdown_table(head, body)


# (workload, what, checks): ("copy", p) = mlc at >= p% of the copy bandwidth; ("faster", peer) =
# mlc's time below the peer's; ("no slower", peer) = mlc's time at most the peer's.
TARGETS = [
    ("gelu", "GELU >= 85% of copy bandwidth", [("copy", 85)]),
    (
        "softmax",
        "softmax >= 75% of copy bandwidth, faster than torch.compile and cupy.fuse",
        [("copy", 75), ("faster", "torch.compile"), ("faster", "cupy.fuse")],
    ),
    (
        "layernorm",
        "layernorm >= 75% of copy bandwidth, faster than torch.compile and cupy.fuse",
        [("copy", 75), ("faster", "torch.compile"), ("faster", "cupy.fuse")],
    ),
    ("mlp", "MLP step no slower than torch.compile", [("no slower", "torch.compile")]),
]


def evaluate_targets(rows) -> list:
    """[(what, verdict, detail)] for issue 6's targets: verdict met, MISSED or unknown (a row
    did not run or did not verify). A target with any part missed is MISSED."""
    by = {(r.workload, r.peer): r for r in rows if r.status == "ok"}
    out = []
    for workload, what, checks in TARGETS:
        mine = by.get((workload, "mlc"))
        if mine is None or mine.seconds is None:
            out.append((what, "unknown", "no verified mlc row"))
            continue
        results = [_check(mine, kind, arg, by.get((workload, arg))) for kind, arg in checks]
        oks = [ok for ok, _ in results]
        verdict = "MISSED" if False in oks else ("unknown" if None in oks else "met")
        out.append((what, verdict, "; ".join(text for _, text in results)))
    return out


def _check(mine, kind, arg, other):
    if kind == "copy":
        if mine.pct_copy is None:
            return None, "no copy row"
        return mine.pct_copy >= arg, f"{mine.pct_copy:.0f}% of copy"
    if other is None or other.seconds is None:
        return None, f"no time for {arg}"
    ratio = mine.seconds / other.seconds
    ok = ratio < 1 if kind == "faster" else ratio <= 1
    return ok, f"{ratio:.2f}x {arg}'s time"


def format_targets(rows) -> str:
    return "\n".join(f"- {what}: {v} ({detail})" for what, v, detail in evaluate_targets(rows))


def describe_run(env, peers) -> dict:
    versions = {}
    for p in peers:
        try:
            versions[p.name] = p.version(env)
        except Exception as e:  # noqa: BLE001  (a broken install counts as not installed)
            p.why, versions[p.name] = f"does not import ({type(e).__name__})", None
    try:
        from mlc.backends.cuda import compiler

        nvrtc = ".".join(map(str, compiler.version()))
    except Exception as e:  # noqa: BLE001
        nvrtc = f"unavailable ({type(e).__name__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        **env.describe(),
        "nvrtc": nvrtc,
        "host_cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "versions": versions,
    }


def format_machine(m, sizes_name) -> str:
    if "sm_count" in m:
        cc = m["compute_capability"]
        lines = [
            f"device: {m['device']} (sm_{cc}, {m['sm_count']} SMs, {m['memory_gib']} GiB)",
            f"driver {m['driver'] or '?'} (CUDA {m['driver_cuda']}), "
            f"CUDA runtime {m['runtime_cuda']}, NVRTC {m['nvrtc']}",
        ]
    else:
        lines = [
            f"device: {m['device']}; launch configuration for {m['launch_config_for']}; "
            f"NVRTC {m['nvrtc']}",
            f"EMULATED: {m['note']}",
        ]
    versions = ", ".join(f"{k} {v or 'skipped'}" for k, v in m["versions"].items())
    lines += [
        f"host: {m['host_cpu']}, python {m['python']}, numpy {m['numpy']}",
        f"peers: {versions}",
        f"sizes: {sizes_name}",
    ]
    return "\n".join(lines)


# ---- entry point -------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="16M elements, 4096x4096, few repeats")
    p.add_argument(
        "--only", action="append", default=[], help=f"workload(s): {', '.join(WORKLOADS)}"
    )
    p.add_argument("--peers", help="comma-separated peers (mlc always runs; default: all)")
    p.add_argument("--repeats", type=int, help="timed samples per row (median is reported)")
    p.add_argument("--json", metavar="OUT", help="also write the device and every row as JSON")
    p.add_argument(
        "--emulate", action="store_true", help="no GPU: mlc's CUDA path on the CPU emulator"
    )
    p.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        help="each workload in a child process (default: on a GPU with several workloads)",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    only = [w for item in args.only for w in item.split(",") if w] or list(WORKLOADS)
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    if not args.emulate:
        env, why = find_gpu()
        if env is None:
            print(f"no CUDA device: {why}; nothing measured (--emulate runs the CPU emulator)")
            return 0
        return _run(args, only, env)
    previous = os.environ.get("MLC_CUDA_DEVICE")
    os.environ["MLC_CUDA_DEVICE"] = "emu"
    try:
        return _run(args, only, Emulator())
    finally:
        if previous is None:
            del os.environ["MLC_CUDA_DEVICE"]
        else:
            os.environ["MLC_CUDA_DEVICE"] = previous


def _run(args, only, env) -> int:
    peers = all_peers(env.emulated)
    if args.peers:
        wanted = args.peers.split(",")
        peers = [
            p
            for p in peers
            if p.name == "mlc" or p.name in wanted or p.name.split(".")[0] in wanted
        ]
    machine = describe_run(env, peers)
    installed = [p for p in peers if machine["versions"][p.name]]
    missing = [p for p in peers if not machine["versions"][p.name]]
    if env.emulated:
        sizes, sizes_name = EMULATED, "emulated (tiny)"
    else:
        sizes, sizes_name = (QUICK, "quick") if args.quick else (FULL, "full (issue 6)")
    cfg = {
        "warmup": 1 if args.quick or env.emulated else 3,
        "repeats": args.repeats or (3 if args.quick or env.emulated else 10),
    }
    print(format_machine(machine, sizes_name), flush=True)

    isolate = args.isolate if args.isolate is not None else not env.emulated and len(only) > 1
    if isolate:  # `timeout` sends SIGTERM: exit through Python so subprocess.run kills the child
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rows = []
    for workload in only:
        if isolate:
            rows += run_isolated(workload, args)
        else:
            rows += run_workload(workload, sizes, installed, env, cfg)
            rows += [
                Row(workload, p.name, "skipped", note=p.why)
                for p in missing
                if workload != "copy" or p.copies
            ]
        add_ratios(rows)
        if args.json:  # after every workload: a run cut short still leaves its rows
            _write_json(args.json, machine, sizes, sizes_name, env, rows)

    print()
    print(format_table(rows))
    print()
    if env.emulated:
        print("EMULATED: the times above are the CPU emulator's and mean nothing about a GPU.")
    print("targets (issue 6), mlc on this device:")
    print(format_targets(rows))
    failed = [r for r in rows if r.peer == "mlc" and r.status == "FAILED"]
    return 1 if failed else 0


def _write_json(path, machine, sizes, sizes_name, env, rows):
    data = {
        "machine": machine,
        "emulated": env.emulated,
        "sizes": {"name": sizes_name, **asdict(sizes)},
        "rows": [asdict(r) for r in rows],
        "targets": [dict(zip(("what", "verdict", "detail"), t)) for t in evaluate_targets(rows)],
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
