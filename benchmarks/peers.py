"""The systems compared: each peer turns a workload and its inputs into a zero-argument callable.

A peer whose package is not installed reports ``version() is None`` and is skipped by the runner;
a workload a peer has no version of raises ``NotApplicable`` with the reason.

The callable returns the result as NumPy arrays (or something ``np.asarray`` converts) after the
work is done: jax results are waited for with ``block_until_ready``; for the ``overhead`` row the
conversion back to NumPy is part of the call, since that is what a user passing NumPy arrays pays.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from benchmarks import workloads as W

# The workloads every array library runs from the same source (``xp`` first).
SHARED = {
    "triad": W.triad,
    "gelu": W.gelu,
    "softmax": W.softmax,
    "layernorm": W.layernorm,
    "overhead": W.overhead,
}


class NotApplicable(Exception):
    """This peer has no version of this workload; the message says why."""


class Peer:
    """One system under test. ``module`` is what must import for the peer to run."""

    name = ""
    module = ""

    def version(self):
        """The installed version, or None when the package does not import."""
        try:
            mod = importlib.import_module(self.module)
        except Exception:  # noqa: BLE001  (a broken install counts as not installed)
            return None
        return getattr(mod, "__version__", "?")

    def prepare(self, workload: str, inputs: tuple):
        raise NotImplementedError

    def note(self, workload: str) -> str:
        """What a reader of the table should know about how this peer ran this workload."""
        return ""


class NumpyPeer(Peer):
    name = "numpy"
    module = "numpy"

    def prepare(self, workload, inputs):
        if workload == "mlp":
            return lambda: W.sgd_step_numpy(*inputs)
        fn = functools.partial(SHARED[workload], np)
        return lambda: fn(*inputs)

    def note(self, workload):
        return "hand-written gradient" if workload == "mlp" else ""


class MlcPeer(Peer):
    name = "mlc"
    module = "mlc"

    def __init__(self, backend: str):
        self.backend = backend

    def prepare(self, workload, inputs):
        import mlc

        if workload == "mlp":
            fn = functools.partial(W.sgd_step, np, mlc.value_and_grad)
        else:
            fn = functools.partial(SHARED[workload], np)
        f = mlc.jit(fn, backend=self.backend)
        return lambda: f(*inputs)

    def note(self, workload):
        return "jit(value_and_grad) + update" if workload == "mlp" else ""


class JaxPeer(Peer):
    name = "jax.jit"
    module = "jax"

    def prepare(self, workload, inputs):
        import jax
        import jax.numpy as jnp

        if workload == "mlp":
            f = jax.jit(functools.partial(W.sgd_step, jnp, jax.value_and_grad))
        else:
            f = jax.jit(functools.partial(SHARED[workload], jnp))
        if workload == "overhead":  # NumPy in, NumPy out
            return lambda: np.asarray(f(*inputs))
        # Large inputs are placed once, as a jax user would keep them on the device.
        on_device = jax.block_until_ready(jax.device_put(inputs))
        return lambda: jax.block_until_ready(f(*on_device))


class NumexprPeer(Peer):
    name = "numexpr"
    module = "numexpr"
    EXPRESSIONS = {
        "triad": ("a + 3.0 * b", ("a", "b")),
        "gelu": ("0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x**3)))", ("x",)),
        "overhead": ("x * 2 + 1", ("x",)),
    }

    def prepare(self, workload, inputs):
        import numexpr

        if workload not in self.EXPRESSIONS:
            raise NotApplicable("numexpr reduces only over whole arrays")
        expr, names = self.EXPRESSIONS[workload]
        env = dict(zip(names, inputs))
        # numexpr's float literals are double: GELU computes in float64, stored back to float32.
        return lambda: numexpr.evaluate(
            expr, local_dict=env, out=np.empty_like(inputs[0]), casting="unsafe"
        )

    def note(self, workload):
        return "float64 math (numexpr's float literals)" if workload in ("triad", "gelu") else ""


class NumbaPeer(Peer):
    name = "numba"
    module = "numba"

    def prepare(self, workload, inputs):
        from benchmarks.numba_kernels import KERNELS

        if workload not in KERNELS:
            raise NotApplicable("no hand-written loop (BLAS-bound)")
        k = KERNELS[workload]
        return lambda: k(*inputs)


class TorchPeer(Peer):
    name = "torch.compile"
    module = "torch"

    def prepare(self, workload, inputs):
        import torch

        if workload == "mlp":
            raise NotApplicable("not written for torch")
        if workload == "softmax":
            fn = functools.partial(torch.softmax, dim=-1)
        elif workload == "layernorm":
            d = inputs[0].shape[-1]

            def fn(x, g, b):
                return torch.nn.functional.layer_norm(x, (d,), g, b, eps=1e-5)
        else:
            fn = functools.partial(SHARED[workload], torch)
        f = torch.compile(fn)
        if workload == "overhead":  # NumPy in, NumPy out
            return lambda: f(*[torch.from_numpy(a) for a in inputs]).numpy()
        tensors = [torch.from_numpy(a) for a in inputs]
        return lambda: f(*tensors)


def all_peers(backend: str) -> list:
    """Every peer in table order; the runner skips those not installed."""
    return [NumpyPeer(), MlcPeer(backend), NumexprPeer(), NumbaPeer(), JaxPeer(), TorchPeer()]
