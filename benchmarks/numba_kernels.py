"""Numba peer: hand-written loops, ``parallel=True, fastmath=True`` (imported only when installed).

``cache=True`` puts compiled code under ``NUMBA_CACHE_DIR``, which the cold-start row points at a
temporary directory, as it does ``MLC_CACHE_DIR`` for mlc.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_par = numba.njit(parallel=True, fastmath=True, cache=True)


@_par
def _triad(a, b, out):
    for i in numba.prange(a.shape[0]):
        out[i] = a[i] + np.float32(3.0) * b[i]


@_par
def _gelu(x, out):
    for i in numba.prange(x.shape[0]):
        v = x[i]
        inner = np.float32(0.79788456) * (v + np.float32(0.044715) * v * v * v)
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + math.tanh(inner))


@_par
def _softmax(x, out):
    for r in numba.prange(x.shape[0]):
        m = x[r, 0]
        for c in range(1, x.shape[1]):
            m = max(m, x[r, c])
        s = np.float32(0.0)
        for c in range(x.shape[1]):
            e = math.exp(x[r, c] - m)
            out[r, c] = e
            s += e
        inv = np.float32(1.0) / s
        for c in range(x.shape[1]):
            out[r, c] *= inv


@_par
def _layernorm(x, gamma, beta, out):
    d = x.shape[1]
    for r in numba.prange(x.shape[0]):
        s = np.float32(0.0)
        for c in range(d):
            s += x[r, c]
        mu = s / d
        v = np.float32(0.0)
        for c in range(d):
            v += (x[r, c] - mu) ** 2
        inv = np.float32(1.0) / math.sqrt(v / d + np.float32(1e-5))
        for c in range(d):
            out[r, c] = (x[r, c] - mu) * inv * gamma[c] + beta[c]


# 16 elements: a parallel region would only add thread start-up, so this one is serial.
@numba.njit(fastmath=True, cache=True)
def overhead(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = x[i] * np.float32(2.0) + np.float32(1.0)
    return out


def triad(a, b):
    out = np.empty_like(a)
    _triad(a, b, out)
    return out


def gelu(x):
    out = np.empty_like(x)
    _gelu(x, out)
    return out


def softmax(x):
    out = np.empty_like(x)
    _softmax(x, out)
    return out


def layernorm(x, gamma, beta):
    out = np.empty_like(x)
    _layernorm(x, gamma, beta, out)
    return out


KERNELS = {
    "triad": triad,
    "gelu": gelu,
    "softmax": softmax,
    "layernorm": layernorm,
    "overhead": overhead,
}
