"""The per-example gradients example runs (small) and its checks pass."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "per_example_grads.py"


def load():
    spec = importlib.util.spec_from_file_location("per_example_grads", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_example_grads_main_small():
    report = load().main(batch=8, steps=3, repeat=1, verbose=False)
    assert report["check_passed"] is True
    assert report["max_abs_err"] < 1e-12
    assert 0.0 <= report["clipped_fraction"] <= 1.0
    assert np.isfinite(report["loss_before"]) and np.isfinite(report["loss_after"])
    # timings are reported, never asserted on beyond being measured
    assert all(report[k] > 0 for k in ("time_vmap_s", "time_loop_s", "time_jit_vmap_s"))


def test_per_example_grads_match_a_loop_of_grad():
    ex = load()
    rng = np.random.default_rng(1)
    params = ex.init_params(rng, 5, 7)
    x, y = ex.make_data(rng, 6, 5)
    batched = ex.per_example_grads(params, x, y)
    looped = ex.loop_grads(params, x, y)
    assert set(batched) == set(params)
    for k in params:
        assert batched[k].shape == (6,) + np.shape(params[k])
        np.testing.assert_allclose(batched[k], looped[k], rtol=1e-10, atol=1e-12)
    # the clipped gradients have norm min(norm, C)
    norms = ex.per_example_norms(batched)
    clipped = ex.clip_grads(batched, norms, 0.1)
    np.testing.assert_allclose(ex.per_example_norms(clipped), np.minimum(norms, 0.1), rtol=1e-10)


def test_per_example_grads_runs_as_a_script():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--batch", "8", "--steps", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "check passed" in out and "DP-SGD" in out
