"""The autodiff examples (``examples/mlp_digits.py``, ``examples/logistic.py``) train to their
stated accuracy in a small configuration, their gradient checks pass, and their jitted steps
are traced once per shape signature however many epochs run."""

import contextlib
import importlib.util
import io
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import mlc

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"mlc_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(module, **kwargs):
    """``module.main(**kwargs)`` with its printout captured; returns (result, new traces, traces before, text)."""
    before = mlc.stats()["traces"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = module.main(verbose=True, **kwargs)
    return result, mlc.stats()["traces"] - before, before, out.getvalue()


# -- mlp_digits -------------------------------------------------------------------------------
MLP_EPOCHS = 20


@pytest.fixture(scope="module")
def mlp():
    return load_example("mlp_digits")


@pytest.fixture(scope="module")
def mlp_run(mlp):
    return run_main(mlp, epochs=MLP_EPOCHS, batch_size=128, seed=0)


def test_mlp_reaches_95_percent(mlp_run):
    result, _, _, text = mlp_run
    assert result["test_accuracy"] >= 0.95
    assert result["train_accuracy"] >= 0.95
    losses = [h[0] for h in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert f"final test accuracy: {result['test_accuracy']:.4f}" in text


def test_mlp_prints_one_line_per_epoch(mlp_run):
    _, _, _, text = mlp_run
    lines = [ln for ln in text.splitlines() if ln.startswith("epoch")]
    assert len(lines) == MLP_EPOCHS
    for word in ("loss", "train acc", "test acc", "time"):
        assert word in lines[0]
    assert "gradient check" in text.splitlines()[0]


def test_mlp_gradient_matches_finite_difference(mlp_run):
    result, _, _, _ = mlp_run
    analytic, numeric = result["grad_check"]
    assert analytic != 0.0
    assert result["grad_rel_err"] < 1e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_mlp_traces_once_per_signature(mlp_run):
    result, traces, before, _ = mlp_run
    # loss_and_grad (float64, gradient check), train_step, accuracy on train and on test shapes
    assert traces == 4
    assert result["traces_per_epoch"] == [before + 4] * MLP_EPOCHS


def test_mlp_gradient_matches_plain_numpy_loss(mlp):
    """The jitted value equals the loss run eagerly on NumPy arrays, and the gradient of each
    leaf matches central differences on a few coordinates."""
    x, y, _, _ = mlp.load_data(0, dtype=np.float64)
    x, y1h = x[:64], mlp.one_hot(y[:64], dtype=np.float64)
    params = mlp.init_params([64, 16, 10], seed=1, dtype=np.float64)
    value, grads = mlp.loss_and_grad(params, x, y1h)
    np.testing.assert_allclose(value, mlp.loss(params, x, y1h), rtol=1e-12)
    assert [tuple(g.shape for g in layer) for layer in grads] == [
        tuple(p.shape for p in layer) for layer in params
    ]
    rng = np.random.default_rng(0)
    eps = 1e-6
    for li, layer in enumerate(params):
        for pi, p in enumerate(layer):
            for _ in range(3):
                idx = tuple(rng.integers(0, s) for s in p.shape)
                plus = [list(lay) for lay in params]
                minus = [list(lay) for lay in params]
                plus[li][pi] = p.copy()
                plus[li][pi][idx] += eps
                minus[li][pi] = p.copy()
                minus[li][pi][idx] -= eps
                fd = (mlp.loss(plus, x, y1h) - mlp.loss(minus, x, y1h)) / (2 * eps)
                np.testing.assert_allclose(grads[li][pi][idx], fd, rtol=1e-5, atol=1e-9)


def test_mlp_logsumexp_is_stable(mlp):
    z = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1001.0, -1002.0]])
    expected = np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1)) + z.max(1)
    got = mlc.jit(mlp.logsumexp)(z)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# -- logistic ---------------------------------------------------------------------------------
LOGISTIC_EPOCHS = 60


@pytest.fixture(scope="module")
def logistic():
    return load_example("logistic")


@pytest.fixture(scope="module")
def logistic_run(logistic):
    return run_main(logistic, epochs=LOGISTIC_EPOCHS, seed=0)


def test_logistic_reaches_stated_accuracy(logistic, logistic_run):
    result, _, _, text = logistic_run
    assert logistic.TARGET_ACCURACY >= 0.95
    assert result["test_accuracy"] >= logistic.TARGET_ACCURACY
    losses = [h[0] for h in result["history"]]
    assert losses[-1] < 0.2 * losses[0]
    assert "final test accuracy" in text
    assert sum(ln.startswith("epoch") for ln in text.splitlines()) >= 20


def test_logistic_gradient_matches_closed_form(logistic, logistic_run):
    result, _, _, _ = logistic_run
    assert result["grad_max_diff"] < 1e-12
    # again at other weights, on a float32 copy too
    x, y, _, _ = logistic.load_data(1)
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(x.shape[1]), "b": np.float64(0.3)}
    lam = np.float64(0.1)
    _, g = logistic.loss_and_grad(params, x, y, lam)
    expected = logistic.closed_form_grad(params, x, y, lam)
    np.testing.assert_allclose(g["w"], expected["w"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g["b"], expected["b"], rtol=1e-10, atol=1e-12)
    assert g["w"].dtype == np.float64 and g["b"].shape == ()
    p32 = {k: np.asarray(v, np.float32) for k, v in params.items()}
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    _, g32 = logistic.loss_and_grad(p32, x32, y32, np.float32(0.1))
    assert g32["w"].dtype == np.float32
    np.testing.assert_allclose(g32["w"], expected["w"], rtol=1e-4, atol=1e-5)


def test_logistic_traces_once_per_signature(logistic_run):
    result, traces, before, _ = logistic_run
    # loss_and_grad (gradient check), gd_step, accuracy on train and on test shapes
    assert traces == 4
    assert result["traces_per_epoch"] == [before + 4] * LOGISTIC_EPOCHS


# -- the scripts as users run them --------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp_digits", "logistic"])
def test_script_runs_with_defaults(name):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    text = out.getvalue()
    assert text.splitlines()[0].startswith("gradient check")
    final = re.search(r"final test accuracy: ([0-9.]+)", text)
    assert final is not None and float(final.group(1)) >= 0.95
