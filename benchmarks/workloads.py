"""The benchmark workloads, written once as plain NumPy-style code and shared by every runner.

Each function takes the array module first (``xp``: ``numpy`` for NumPy and for mlc, whose tracers
route ``np.tanh`` and friends to ``mlc.numpy``; ``jax.numpy`` for jax), so every peer runs the
same source. ``make_inputs`` builds the inputs of one workload from a seed, and ``ideal_bytes``
says how many bytes an ideal fused kernel reads and writes (the numerator of effective GB/s).

>>> import numpy as np
>>> x = np.array([-1.0, 0.0, 1.0], np.float32)
>>> np.round(gelu(np, x), 4)
array([-0.1588,  0.    ,  0.8412], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---- the functions, as users write them ------------------------------------------------------


def triad(xp, a, b):
    """STREAM triad ``a + s*b``: the memory-bandwidth floor."""
    return a + 3.0 * b


def gelu(xp, x):
    """GELU with the tanh approximation, written the way research code writes it (``x**3``)."""
    return 0.5 * x * (1 + xp.tanh(0.79788456 * (x + 0.044715 * x**3)))


def softmax(xp, x):
    """Softmax over the last axis, max-subtracted."""
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(xp, x, gamma, beta):
    """Layer normalization over the last axis with scale and shift."""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / xp.sqrt(var + 1e-5) * gamma + beta


def overhead(xp, x):
    """``x*2+1``: on 16 elements the time is all per-call overhead."""
    return x * 2 + 1


LEARNING_RATE = 0.1


def mlp_loss(xp, params, x, onehot):
    """Mean softmax cross-entropy of a 2-layer ReLU MLP (labels as one-hot rows)."""
    w1, b1, w2, b2 = params
    h = xp.maximum(x @ w1 + b1, 0.0)
    z = h @ w2 + b2
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
    return -(onehot * logp).sum() / x.shape[0]


def sgd_step(xp, value_and_grad, params, x, onehot):
    """One SGD step: ``value_and_grad`` is ``mlc.value_and_grad`` or ``jax.value_and_grad``."""
    loss, grads = value_and_grad(lambda p: mlp_loss(xp, p, x, onehot))(params)
    return loss, tuple(p - LEARNING_RATE * g for p, g in zip(params, grads))


def sgd_step_by_hand(xp, params, x, onehot):
    """The same step with the gradient written by hand, on the array module ``xp`` (NumPy, or
    CuPy, which has no autodiff)."""
    w1, b1, w2, b2 = params
    n = x.shape[0]
    hpre = x @ w1 + b1
    h = xp.maximum(hpre, 0.0)
    z = h @ w2 + b2
    z = z - z.max(axis=-1, keepdims=True)
    e = xp.exp(z)
    s = e.sum(axis=-1, keepdims=True)
    loss = -(onehot * (z - xp.log(s))).sum() / n
    dz = (e / s - onehot) / n  # d loss / d logits = (softmax - onehot) / n
    dw2 = h.T @ dz
    db2 = dz.sum(axis=0)
    dh = (dz @ w2.T) * (hpre > 0)
    dw1 = x.T @ dh
    db1 = dh.sum(axis=0)
    grads = (dw1, db1, dw2, db2)
    return loss, tuple(p - np.float32(LEARNING_RATE) * g for p, g in zip(params, grads))


def sgd_step_numpy(params, x, onehot):
    """``sgd_step_by_hand`` in plain NumPy, its loss as a float32 scalar."""
    loss, new = sgd_step_by_hand(np, params, x, onehot)
    return np.float32(loss), new


# ---- sizes, inputs and ideal traffic ---------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (``quick`` shrinks them for a smoke test)."""

    n: int = 16 * 2**20  # triad and GELU elements (16M float32)
    rows: int = 4096  # softmax / layernorm rows
    cols: int = 4096  # softmax / layernorm columns (the reduced axis)
    batch: int = 256  # MLP batch
    mlp: tuple = (784, 512, 10)  # MLP layer widths
    small: int = 16  # per-call overhead elements


FULL = Sizes()
QUICK = Sizes(n=2**18, rows=256, cols=512, batch=32)


def make_inputs(name: str, sizes: Sizes, seed: int = 0) -> tuple:
    """The positional inputs of workload ``name`` (float32, deterministic)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)

    if name == "triad":
        return normal(sizes.n), normal(sizes.n)
    if name in ("gelu", "cold_start", "peak_memory"):
        return (normal(sizes.n),)
    if name == "softmax":
        return (normal(sizes.rows, sizes.cols, scale=3.0),)
    if name == "layernorm":
        d = sizes.cols
        return normal(sizes.rows, d), 1 + normal(d, scale=0.1), normal(d, scale=0.1)
    if name == "mlp":
        d_in, d_hid, d_out = sizes.mlp
        params = (
            normal(d_in, d_hid, scale=(2 / d_in) ** 0.5),
            np.zeros(d_hid, np.float32),
            normal(d_hid, d_out, scale=(2 / d_hid) ** 0.5),
            np.zeros(d_out, np.float32),
        )
        x = normal(sizes.batch, d_in)
        labels = rng.integers(0, d_out, sizes.batch)
        onehot = np.eye(d_out, dtype=np.float32)[labels]
        return params, x, onehot
    if name == "overhead":
        return (normal(sizes.small),)
    raise KeyError(f"unknown workload {name!r}")


def nbytes(tree) -> int:
    """Total bytes of the arrays in a (nested tuple of) array(s)."""
    if isinstance(tree, (tuple, list)):
        return sum(nbytes(t) for t in tree)
    return np.asarray(tree).nbytes


def ideal_bytes(name: str, inputs: tuple, output) -> int:
    """Bytes an ideal fused kernel moves: every input read once, every output written once.

    >>> a = np.zeros(4, np.float32)
    >>> ideal_bytes("triad", (a, a), a)
    48
    """
    return nbytes(inputs) + nbytes(output)
