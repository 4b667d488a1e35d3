"""The GPU benchmark harness (``benchmarks/gpu.py``) on a machine without a GPU: no timing asserts.

Without CuPy the script says so and exits 0; ``--emulate`` runs mlc's CUDA path through the CPU
emulator and verifies it; the CuPy, ``cupy.fuse`` and jax peers run here on NumPy standing in for
CuPy (and jax on the CPU), which checks their code and the verification, not the GPU.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # `benchmarks` is a top-level folder of the repo, not an installed package

from benchmarks import gpu, gpu_peers, workloads  # noqa: E402

TINY = workloads.Sizes(n=5000, rows=6, cols=40, batch=8, mlp=(12, 8, 3))
CFG = {"warmup": 0, "repeats": 1}


def fake_cupy(whole_fuse_fails=False):
    """NumPy dressed as CuPy: enough for the peers' code, ``fuse`` an identity (or, for the
    whole-function form, a function that raises as CuPy does on what it cannot fuse)."""

    def fuse(fn=None, **kwargs):
        if fn is None:  # @cupy.fuse(): the split kernels
            return lambda f: f
        if whole_fuse_fails:

            def refuse(*args):
                raise NotImplementedError("cannot fuse two reductions")

            return refuse
        return fn

    device = types.SimpleNamespace(synchronize=lambda: None)
    pool = types.SimpleNamespace(free_all_blocks=lambda: None)
    names = ["tanh", "exp", "log", "sqrt", "maximum", "sum", "max", "empty_like", "asarray"]
    return types.SimpleNamespace(
        __version__="fake",
        asnumpy=np.asarray,
        fuse=fuse,
        cuda=types.SimpleNamespace(Device=lambda: device),
        get_default_memory_pool=lambda: pool,
        **{k: getattr(np, k) for k in names},
    )


def by_workload(rows):
    return {(r.workload, r.peer): r for r in rows}


def test_without_cupy_main_says_so_and_returns_0(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    assert gpu.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("no CUDA device: CuPy does not import")
    assert "pip install -e '.[cuda,bench]'" in out[0] and "--emulate" in out[0]


def test_script_without_a_gpu_exits_0_with_one_line():
    if gpu.find_gpu()[0] is not None:
        pytest.skip("a GPU is present: the script would run the full benchmark")
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--quick"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA device: ")


def test_emulate_quick_verifies_the_mlc_rows_and_writes_json(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--emulate", "--quick", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "device: CPU emulator of the CUDA backend" in text and "EMULATED" in text
    assert "| GELU-tanh" in text and "| MLP SGD step" in text and "% of copy" in text
    assert "targets (issue 6)" in text and "- GELU >= 85% of copy bandwidth: " in text
    data = json.loads(out.read_text())
    assert data["emulated"] is True and data["sizes"]["name"] == "emulated (tiny)"
    rows = {(r["workload"], r["peer"]): r for r in data["rows"]}
    for w in ("gelu", "softmax", "layernorm", "mlp"):
        mine, ref = rows[(w, "mlc")], rows[(w, "numpy")]
        assert mine["status"] == "ok" and mine["seconds"] > 0 and mine["gbps"] > 0, mine
        assert "emulated" in mine["note"] and ref["status"] == "ok"
    copy = rows[("copy", "numpy")]
    assert copy["status"] == "ok" and copy["pct_copy"] == pytest.approx(100)
    assert ("copy", "mlc") not in rows  # mlc has no copy row: the floor is a library copy
    assert [t["verdict"] in ("met", "MISSED", "unknown") for t in data["targets"]] == [True] * 4


def test_isolated_workloads_run_in_child_processes_and_combine(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--emulate", "--isolate", "--repeats", "1"]
    cmd += ["--only", "gelu,copy", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gelu / mlc: ok" in proc.stderr  # the child's progress reaches the parent's stderr
    rows = {(r["workload"], r["peer"]): r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {("gelu", "mlc"), ("gelu", "numpy"), ("copy", "numpy")}
    # % of copy is the parent's: the copy ran in another child, after GELU
    assert rows[("gelu", "mlc")]["status"] == "ok" and rows[("gelu", "mlc")]["pct_copy"] > 0


def test_a_child_that_dies_leaves_a_failed_mlc_row():
    args = gpu.parse_args(["--emulate"])
    (row,) = gpu.run_isolated("no-such-workload", args)  # the child refuses it and exits 1
    assert row.peer == "mlc" and row.status == "FAILED" and "child process died" in row.note


def test_wrong_mlc_result_fails_the_row_and_the_exit_status(monkeypatch, capsys):
    def wrong(self, workload, inputs, env):
        return [("", lambda: workloads.gelu(np, inputs[0]) + 1)]

    monkeypatch.setattr(gpu_peers.MlcPeer, "candidates", wrong)
    monkeypatch.delenv("MLC_CUDA_DEVICE", raising=False)
    assert gpu.main(["--emulate", "--only", "gelu", "--repeats", "1"]) == 1
    mlc_line = next(ln for ln in capsys.readouterr().out.splitlines() if "| mlc" in ln)
    assert "FAILED" in mlc_line and "max |error|" in mlc_line
    assert "MLC_CUDA_DEVICE" not in os.environ  # --emulate puts the variable back as it was


def test_targets_on_synthetic_rows():
    R = gpu.Row
    rows = [
        R("copy", "cudaMemcpy", gbps=2000.0, seconds=1.0),
        R("copy", "cupy", gbps=3000.0, seconds=1.0),
        R("gelu", "mlc", gbps=2700.0, seconds=1.0),
        R("softmax", "mlc", gbps=2400.0, seconds=1.0),
        R("softmax", "torch.compile", seconds=2.0),
        R("softmax", "cupy.fuse", seconds=0.9),
        R("layernorm", "mlc", gbps=2400.0, seconds=1.0),
        R("layernorm", "cupy.fuse", seconds=3.0),
        R("mlp", "mlc", seconds=1.0),
        R("mlp", "torch.compile", seconds=1.0),
    ]
    gpu.add_ratios(rows)
    assert rows[2].pct_copy == pytest.approx(90) and rows[0].pct_copy == pytest.approx(200 / 3)
    assert rows[3].vs_torch_compile == 0.5 and rows[6].vs_torch_compile is None
    verdicts = {what.split()[0]: (v, detail) for what, v, detail in gpu.evaluate_targets(rows)}
    assert verdicts["GELU"] == ("met", "90% of copy")
    v, detail = verdicts["softmax"]  # 80% of copy, faster than torch.compile, not cupy.fuse
    assert v == "MISSED" and "0.50x torch.compile's time" in detail and "1.11x cupy.fuse" in detail
    v, detail = verdicts["layernorm"]  # met where known, but no torch.compile row
    assert v == "unknown" and "no time for torch.compile" in detail
    assert verdicts["MLP"][0] == "met"  # equal time is "no slower"
    assert "- GELU >= 85% of copy bandwidth: met (90% of copy)" in gpu.format_targets(rows)

    rows[2].status = "FAILED"  # a row that did not verify counts as not measured
    assert gpu.evaluate_targets(rows)[0][1:] == ("unknown", "no verified mlc row")
    alone = [R("gelu", "mlc", gbps=2700.0, seconds=1.0)]  # no copy row: no % of copy
    gpu.add_ratios(alone)
    assert alone[0].pct_copy is None
    assert gpu.evaluate_targets(alone)[0][1:] == ("unknown", "no copy row")
    assert all(v == "unknown" for _, v, _ in gpu.evaluate_targets([]))


def test_mismatch_names_count_shape_dtype_and_values():
    ref = [((3,), np.array([1.0, 2.0, 3.0]))]
    good = np.array([1, 2, 3], np.float32)
    assert gpu.mismatch(good, ref, None, 1e-4, 1e-5) == ""
    assert "2 outputs" in gpu.mismatch((good, good), ref, None, 1e-4, 1e-5)
    assert "shape (2,)" in gpu.mismatch(good[:2], ref, None, 1e-4, 1e-5)
    assert "dtype float64" in gpu.mismatch(good.astype(np.float64), ref, None, 1e-4, 1e-5)
    assert "max |error| 0.5" in gpu.mismatch(good + np.float32(0.5), ref, None, 1e-4, 1e-5)


def test_big_results_are_checked_on_a_sample_with_both_ends():
    n = gpu.SAMPLE_ELEMENTS + 10_000
    x = np.zeros(n, np.float32)
    idx = gpu.sample_of("gelu", (x,))
    assert idx[0] == 0 and idx[-1] == n - 1 and len(idx) < n and np.all(np.diff(idx) > 0)
    assert gpu.sample_of("gelu", (x[:100],)) is None  # small: everything is checked
    rows = gpu.sample_of("softmax", (np.zeros((1000, 2), np.float32),))
    assert rows[0] == 0 and rows[-1] == 999 and len(rows) <= gpu.SAMPLE_ROWS + 2
    x = workloads.make_inputs("softmax", workloads.Sizes(rows=1000, cols=8))[0]
    expected = gpu.reference("softmax", (x,), rows)
    assert expected[0][0] == (1000, 8) and expected[0][1].shape == (len(rows), 8)
    assert gpu.mismatch(workloads.softmax(np, x), expected, rows, 1e-4, 1e-5) == ""


@pytest.mark.parametrize("workload", gpu.WORKLOADS)
def test_cupy_peers_on_numpy_standing_in_for_cupy(workload):
    env = gpu.Gpu(fake_cupy())
    peers = [gpu_peers.CupyPeer(), gpu_peers.CupyFusePeer(), gpu_peers.NumpyPeer()]
    rows = by_workload(gpu.run_workload(workload, TINY, peers, env, CFG))
    assert rows[(workload, "cupy")].status == "ok"  # the MLP: the hand-written gradient
    assert rows[(workload, "numpy")].status == "ok" and rows[(workload, "numpy")].gbps > 0
    fused = rows.get((workload, "cupy.fuse"))
    if workload in ("copy", "mlp"):
        assert fused is None or fused.status == "n/a"
    else:
        assert fused.status == "ok" and fused.note == "the whole function fused"


def test_cupy_fuse_falls_back_to_split_kernels_when_the_whole_function_does_not_fuse():
    env = gpu.Gpu(fake_cupy(whole_fuse_fails=True))
    rows = []
    for workload in ("gelu", "softmax", "layernorm"):
        rows += gpu.run_workload(workload, TINY, [gpu_peers.CupyFusePeer()], env, CFG)
    gelu, softmax, layernorm = rows
    assert gelu.status == "ERROR" and "cannot fuse" in gelu.note and gelu.seconds is None
    assert softmax.status == "ok" and softmax.note.startswith("max + 2 fused kernels")
    assert "tried first: the whole function fused: NotImplementedError" in softmax.note
    assert layernorm.status == "ok" and layernorm.note.startswith("3 fused kernels")


def test_jax_peer_verifies_on_the_cpu():
    pytest.importorskip("jax")
    env = gpu.Gpu(fake_cupy())
    for workload in ("gelu", "softmax", "layernorm", "mlp"):
        (row,) = gpu.run_workload(workload, TINY, [gpu_peers.JaxPeer()], env, CFG)
        assert row.status == "ok" and row.seconds > 0, row
        assert "inputs by" in row.note


def test_torch_peers_are_skipped_cleanly_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    env = gpu.Gpu(fake_cupy())
    for peer in (gpu_peers.TorchPeer(), gpu_peers.TorchPeer(compiled=True)):
        assert peer.version(env) is None and peer.why.startswith("not installed")
    assert [p.name for p in gpu_peers.all_peers(emulated=True)] == ["mlc", "numpy"]
    names = [p.name for p in gpu_peers.all_peers(emulated=False)]
    assert names[0] == "mlc" and {"torch.compile", "cupy.fuse", "jax.jit"} <= set(names)


def test_unknown_workload_is_refused():
    with pytest.raises(SystemExit, match="unknown workload"):
        gpu.main(["--emulate", "--only", "triad"])
