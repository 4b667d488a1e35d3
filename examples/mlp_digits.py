"""Train a small MLP on scikit-learn's digits with ``mlc.jit(mlc.value_and_grad(loss))``.

The model, the loss and the Adam update are plain NumPy code: mlc traces them (``np.tanh``,
``x @ w`` and friends on tracers route to ``mlc.numpy``), differentiates the loss as a graph
pass, and runs the whole training step as one jitted graph. The parameters and the optimizer
state are pytrees (a list of ``(w, b)`` tuples), so one step is one call.

Before training, the jitted gradient is checked against a central finite difference along a
random direction (in float64), so the example shows it is correct as well as that it learns.

Run: ``python examples/mlp_digits.py`` (about 97% test accuracy in a few seconds).
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import mlc


# -- data -------------------------------------------------------------------------------------
def load_data(seed=0, dtype=np.float32):
    """Digits (1797 images of 8x8 pixels, bundled with scikit-learn: no download), split 75/25
    with a fixed seed and standardized with the training set's mean and std."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-6  # a few border pixels are always 0
    x_train = ((x_train - mean) / std).astype(dtype)
    x_test = ((x_test - mean) / std).astype(dtype)
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def one_hot(y, classes=10, dtype=np.float32):
    return (y[:, None] == np.arange(classes)).astype(dtype)


# -- model ------------------------------------------------------------------------------------
def init_params(sizes, seed=0, dtype=np.float32):
    """A list of ``(w, b)`` per layer; Glorot-uniform weights, zero biases."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)
        params.append((w, np.zeros(fan_out, dtype)))
    return params


def forward(params, x):
    """Logits of the MLP: tanh hidden layers, a linear last layer."""
    h = x
    for w, b in params[:-1]:
        h = np.tanh(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def logsumexp(z):
    """``log(sum(exp(z), axis=1))`` without overflow: shift by the row maximum first."""
    zmax = np.max(z, axis=1, keepdims=True)
    return np.log(np.sum(np.exp(z - zmax), axis=1)) + zmax[:, 0]


def loss(params, x, y_onehot):
    """Mean softmax cross-entropy: ``logsumexp(z) - z[label]`` averaged over the batch."""
    z = forward(params, x)
    return np.mean(logsumexp(z) - np.sum(z * y_onehot, axis=1))


loss_and_grad = mlc.jit(mlc.value_and_grad(loss))


# -- optimizer --------------------------------------------------------------------------------
def adam_init(params):
    """Adam's first and second moment estimates, zeros shaped like the parameters."""
    return {
        "m": [(np.zeros_like(w), np.zeros_like(b)) for w, b in params],
        "v": [(np.zeros_like(w), np.zeros_like(b)) for w, b in params],
    }


@mlc.jit
def train_step(params, state, t, x, y_onehot, lr):
    """One Adam step (Kingma & Ba), all inside one jitted graph; ``t`` is the 1-based step
    count, passed as an array so that every step reuses the same trace."""
    value, grads = mlc.value_and_grad(loss)(params, x, y_onehot)
    b1, b2, eps = 0.9, 0.999, 1e-8
    new_params, new_m, new_v = [], [], []
    for p_layer, g_layer, m_layer, v_layer in zip(params, grads, state["m"], state["v"]):
        ps, ms, vs = [], [], []
        for p, g, m, v in zip(p_layer, g_layer, m_layer, v_layer):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            ps.append(p - lr * m_hat / (np.sqrt(v_hat) + eps))
            ms.append(m)
            vs.append(v)
        new_params.append(tuple(ps))
        new_m.append(tuple(ms))
        new_v.append(tuple(vs))
    return new_params, {"m": new_m, "v": new_v}, value


@mlc.jit
def accuracy(params, x, y):
    return np.mean(np.argmax(forward(params, x), axis=1) == y)


# -- gradient check ---------------------------------------------------------------------------
def _axpy(a, u, p):
    """``p + a * u`` over two pytrees of the same structure (lists of tuples)."""
    return [tuple(pi + a * ui for pi, ui in zip(pl, ul)) for pl, ul in zip(p, u)]


def _vdot(a, b):
    return sum(float(np.vdot(ai, bi)) for al, bl in zip(a, b) for ai, bi in zip(al, bl))


def gradient_check(params, x, y_onehot, seed=0, eps=1e-4):
    """Directional derivative: ``<grad L(p), u>`` from the jitted gradient against the central
    difference ``(L(p + eps u) - L(p - eps u)) / (2 eps)`` along a random unit direction ``u``,
    in float64. Returns both numbers (they agree to about 1e-9 relative)."""
    p64 = [tuple(a.astype(np.float64) for a in layer) for layer in params]
    x64, y64 = x.astype(np.float64), y_onehot.astype(np.float64)
    rng = np.random.default_rng(seed)
    u = [tuple(rng.standard_normal(a.shape) for a in layer) for layer in p64]
    norm = np.sqrt(_vdot(u, u))
    u = [tuple(a / norm for a in layer) for layer in u]
    _, g = loss_and_grad(p64, x64, y64)
    analytic = _vdot(g, u)
    plus, _ = loss_and_grad(_axpy(eps, u, p64), x64, y64)
    minus, _ = loss_and_grad(_axpy(-eps, u, p64), x64, y64)
    numeric = (float(plus) - float(minus)) / (2 * eps)
    return analytic, numeric


# -- training ---------------------------------------------------------------------------------
# The matrices here are small (at most 1347 x 128): BLAS threads cost more than they save, and
# with scikit-learn loaded two OpenBLAS thread pools (NumPy's and SciPy's) spin on the same cores
# (measured: 20x slower steps on a busy 2-core machine). One BLAS thread while training.
@threadpool_limits.wrap(limits=1, user_api="blas")
def main(epochs=30, batch_size=128, hidden=128, lr=3e-3, seed=0, verbose=True) -> dict:
    """Train, print one line per epoch, return the final numbers.

    Batches are drawn from a fresh permutation each epoch; the last partial batch is dropped so
    every step has the same shapes and ``train_step`` is traced exactly once.
    """
    x_train, y_train, x_test, y_test = load_data(seed)
    y_train_1h = one_hot(y_train)
    params = init_params([x_train.shape[1], hidden, 10], seed)

    analytic, numeric = gradient_check(params, x_train[:256], y_train_1h[:256], seed)
    rel_err = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-30)
    if verbose:
        print(
            f"gradient check (float64, random direction): jitted {analytic:.12e}, "
            f"finite difference {numeric:.12e}, relative error {rel_err:.2e}"
        )

    state = adam_init(params)
    rng = np.random.default_rng(seed)
    n = x_train.shape[0]
    steps_per_epoch = n // batch_size
    lr = np.float32(lr)
    t = 0
    traces_per_epoch = []
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            t += 1
            params, state, value = train_step(
                params, state, np.float32(t), x_train[idx], y_train_1h[idx], lr
            )
            total += float(value)
        train_acc = float(accuracy(params, x_train, y_train))
        test_acc = float(accuracy(params, x_test, y_test))
        mean_loss = total / steps_per_epoch
        history.append((mean_loss, train_acc, test_acc))
        traces_per_epoch.append(mlc.stats()["traces"])
        if verbose:
            print(
                f"epoch {epoch:3d}  loss {mean_loss:.4f}  train acc {train_acc:.4f}  "
                f"test acc {test_acc:.4f}  time {time.perf_counter() - t0:.2f}s"
            )
    test_acc = history[-1][2]
    if verbose:
        print(
            f"final test accuracy: {test_acc:.4f} "
            f"({epochs} epochs in {time.perf_counter() - start:.1f}s)"
        )
    return dict(
        test_accuracy=test_acc,
        train_accuracy=history[-1][1],
        loss=history[-1][0],
        history=history,
        grad_check=(analytic, numeric),
        grad_rel_err=rel_err,
        traces_per_epoch=traces_per_epoch,
        params=params,
    )


if __name__ == "__main__":
    main()
