"""The benchmark harness runs, verifies results and reports: a smoke test with no timing asserts.

Sizes are the ``--quick`` ones or smaller; jax is used when installed and skipped cleanly when not.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # `benchmarks` is a top-level folder of the repo, not an installed package

from benchmarks import run, workloads  # noqa: E402
from benchmarks.peers import MlcPeer, NotApplicable, NumpyPeer  # noqa: E402

TINY = workloads.Sizes(n=1000, rows=8, cols=16, batch=4, mlp=(12, 8, 3), small=16)


def test_script_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--backend", "numpy"]
    cmd += ["--only", "gelu,softmax", "--only", "overhead", "--peers", "numpy,mlc,jax"]
    cmd += ["--repeats", "1", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert (
        "os.cpu_count()=" in text and "sched_getaffinity=" in text and "mlc backend: numpy" in text
    )
    assert "| workload" in text and "| GELU-tanh" in text and "| per-call x*2+1" in text
    assert "targets (issue 5)" in text
    data = json.loads(out.read_text())
    assert data["backend"] == "numpy" and data["quick"] is True
    rows = {(r["workload"], r["peer"]): r for r in data["rows"]}
    for w in ("gelu", "softmax", "overhead"):
        mine = rows[(w, "mlc")]
        assert mine["status"] == "ok" and mine["seconds"] > 0, mine
        assert rows[(w, "numpy")]["status"] == "ok"
        jax_row = rows[(w, "jax.jit")]
        if data["machine"]["versions"]["jax.jit"]:
            assert jax_row["status"] == "ok" and jax_row["vs_jax"] == 1.0
            assert mine["vs_jax"] > 0
        else:
            assert jax_row["status"] == "skipped" and jax_row["note"] == "not installed"
    assert rows[("gelu", "mlc")]["gbps"] > 0
    assert rows[("overhead", "mlc")]["gbps"] is None  # no meaningful traffic on 16 elements


@pytest.mark.parametrize("name", ["triad", "gelu", "softmax", "layernorm", "overhead", "mlp"])
def test_mlc_matches_numpy_on_every_workload(name):
    rows = run.run_timed(name, TINY, [NumpyPeer(), MlcPeer("numpy")], {"warmup": 0, "repeats": 1})
    assert [r.status for r in rows] == ["ok", "ok"], rows
    assert all(r.seconds > 0 for r in rows)


def test_hand_written_mlp_gradient_matches_autodiff():
    import mlc

    params, x, onehot = workloads.make_inputs("mlp", TINY)
    x64 = [p.astype(np.float64) for p in params]
    loss, new = workloads.sgd_step(
        np, mlc.value_and_grad, tuple(x64), x.astype(np.float64), onehot.astype(np.float64)
    )
    loss_h, new_h = workloads.sgd_step_numpy(tuple(x64), x.astype(np.float64), onehot)
    np.testing.assert_allclose(loss, loss_h, rtol=1e-6)
    for a, b in zip(new, new_h):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_wrong_mlc_result_marks_row_failed_and_untimed(monkeypatch):
    def wrong(self, workload, inputs):
        return lambda: workloads.gelu(np, inputs[0]) + 1

    monkeypatch.setattr(MlcPeer, "prepare", wrong)
    rows = run.run_timed("gelu", TINY, [NumpyPeer(), MlcPeer("numpy")], {"warmup": 0, "repeats": 1})
    assert rows[1].status == "FAILED" and rows[1].seconds is None and "differs" in rows[1].note
    assert "FAILED" in run.format_table(rows)


def test_missing_peer_is_skipped_with_a_note(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now raises ImportError
    code = run.main(["--quick", "--backend", "numpy", "--only", "overhead", "--repeats", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "jax.jit not installed" in text
    jax_line = next(ln for ln in text.splitlines() if "| jax.jit" in ln)
    assert "skipped" in jax_line and "not installed" in jax_line


def test_not_applicable_and_errors_do_not_stop_the_table():
    class Broken(NumpyPeer):
        name = "broken"

        def prepare(self, workload, inputs):
            if workload == "softmax":
                raise NotApplicable("no reductions")
            raise RuntimeError("boom")

    cfg = {"warmup": 0, "repeats": 1}
    rows = run.run_timed("softmax", TINY, [Broken(), MlcPeer("numpy")], cfg)
    rows += run.run_timed("gelu", TINY, [Broken(), MlcPeer("numpy")], cfg)
    assert [r.status for r in rows] == ["n/a", "ok", "ERROR", "ok"]
    assert "boom" in rows[2].note


def test_peak_memory_row_reports_ratio_to_input_plus_output():
    rows = run.run_peak_memory(TINY, [NumpyPeer(), MlcPeer("numpy")], {})
    for r in rows:
        assert r.status == "ok" and r.peak_bytes > 0
        assert r.peak_ratio == r.peak_bytes / (2 * TINY.n * 4)


def test_cold_start_runs_fresh_processes_for_mlc(tmp_path):
    rows = run.run_cold_start(TINY, [MlcPeer("numpy")], {"backend": "numpy"})
    assert [r.peer for r in rows] == ["mlc (cold)", "mlc (warm cache)"]
    assert all(r.status == "ok" and r.seconds > 0 for r in rows), rows


def test_ratios_and_targets_use_the_jax_row_of_the_same_workload():
    rows = [
        run.Row("gelu", "jax.jit", seconds=4.0),
        run.Row("gelu", "mlc", seconds=1.0, gbps=10.0),
        run.Row("triad", "numpy", seconds=1.0, gbps=20.0),
        run.Row("cold_start", "jax.jit (warm cache)", seconds=2.0),
        run.Row("cold_start", "mlc (warm cache)", seconds=1.0),
        run.Row("cold_start", "mlc (cold)", seconds=1.0),
    ]
    run.add_jax_ratios(rows)
    assert rows[1].vs_jax == 0.25 and rows[4].vs_jax == 0.5 and rows[5].vs_jax is None
    targets = run.format_targets(rows)
    assert "GELU >= 4x faster than jax.jit: met" in targets
    assert "cold start (warm cache) <= 0.4x jax.jit's: MISSED" in targets
    assert "GELU bandwidth >= 0.7x the best triad's: MISSED (0.50x)" in targets
    assert "softmax >= 3.5x faster than jax.jit: unknown" in targets


def test_ideal_bytes_counts_inputs_and_outputs():
    params, x, onehot = workloads.make_inputs("mlp", TINY)
    out = workloads.sgd_step_numpy(params, x, onehot)
    expected = sum(p.nbytes for p in params) * 2 + x.nbytes + onehot.nbytes + 4
    assert workloads.ideal_bytes("mlp", (params, x, onehot), out) == expected
