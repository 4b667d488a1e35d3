"""The peers of the GPU benchmarks (``benchmarks/gpu.py``): each turns a workload and its inputs,
arrays already on the device, into candidate zero-argument calls.

A peer's ``version(env)`` is None when it cannot run here (``why`` says why); ``candidates`` gives
``[(note, call)]`` and the runner times the first whose result verifies (``cupy.fuse`` offers the
whole function first, then a split it can certainly fuse); ``NotApplicable`` says the peer has no
version of the workload. The call returns device arrays; the runner synchronizes the device.
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks import workloads as W
from benchmarks.peers import NotApplicable

SHARED = {"gelu": W.gelu, "softmax": W.softmax, "layernorm": W.layernorm}


class Peer:
    """One system. ``version(env)`` is None when it cannot run here (``why`` says why);
    ``candidates`` gives [(note, call)]: the runner times the first whose result verifies."""

    name = ""
    copies = False  # has a row in the copy workload
    why = "not installed"

    def version(self, env):
        raise NotImplementedError

    def candidates(self, workload, inputs, env) -> list:
        raise NotImplementedError


class MlcPeer(Peer):
    name = "mlc"

    def version(self, env):
        import mlc

        return mlc.__version__

    def candidates(self, workload, inputs, env):
        import mlc

        if workload == "copy":
            raise NotApplicable("no copy kernel")
        if workload == "mlp":
            fn = functools.partial(W.sgd_step, np, mlc.value_and_grad)
        else:
            fn = functools.partial(SHARED[workload], np)
        f = mlc.jit(fn, backend="cuda")
        what = "jit(value_and_grad) + update" if workload == "mlp" else ""
        if env.emulated:
            what = ", ".join(filter(None, [what, "emulated, NumPy in and out"]))
        return [(what, lambda: f(*inputs))]


class NumpyPeer(Peer):
    """The reference peer of ``--emulate`` (on the host)."""

    name = "numpy"
    copies = True

    def version(self, env):
        return np.__version__

    def candidates(self, workload, inputs, env):
        if workload == "copy":
            return [("a.copy()", lambda: inputs[0].copy())]
        if workload == "mlp":
            return [("hand-written gradient", lambda: W.sgd_step_numpy(*inputs))]
        fn = functools.partial(SHARED[workload], np)
        return [("", lambda: fn(*inputs))]


class CupyPeer(Peer):
    name = "cupy"
    copies = True

    def version(self, env):
        return None if env.emulated else env.cupy.__version__

    def candidates(self, workload, inputs, env):
        cupy = env.cupy
        if workload == "copy":
            return [("a.copy()", lambda: inputs[0].copy())]
        if workload == "mlp":
            return [("hand-written gradient", lambda: W.sgd_step_by_hand(cupy, *inputs))]
        fn = functools.partial(SHARED[workload], cupy)
        return [("one kernel per operation", lambda: fn(*inputs))]


class MemcpyPeer(Peer):
    """``cudaMemcpyAsync`` device to device: the copy engine's floor, not a kernel's."""

    name = "cudaMemcpy"
    copies = True

    def version(self, env):
        return (
            None
            if env.emulated
            else "runtime " + cuda_version(env.cupy.cuda.runtime.runtimeGetVersion())
        )

    def candidates(self, workload, inputs, env):
        if workload != "copy":
            raise NotApplicable("copy only")
        cupy = env.cupy
        rt = cupy.cuda.runtime
        (x,) = inputs
        out = cupy.empty_like(x)

        def call():
            stream = cupy.cuda.get_current_stream().ptr
            rt.memcpyAsync(out.data.ptr, x.data.ptr, x.nbytes, rt.memcpyDeviceToDevice, stream)
            return out

        return [("cudaMemcpyAsync D2D", call)]


class CupyFusePeer(Peer):
    """``cupy.fuse``: the whole function in one kernel where CuPy can fuse it, else a kernel per
    reduction (CuPy fuses elementwise work into at most one reduction at the end of a kernel)."""

    name = "cupy.fuse"

    def version(self, env):
        return None if env.emulated else env.cupy.__version__

    def candidates(self, workload, inputs, env):
        cupy = env.cupy
        if workload in ("copy", "mlp"):
            raise NotApplicable("matmul does not fuse" if workload == "mlp" else "no copy kernel")
        whole = cupy.fuse(_named(functools.partial(SHARED[workload], cupy), workload))
        out = [("the whole function fused", lambda: whole(*inputs))]
        if workload == "softmax":
            split = _fused_softmax(cupy)
            out.append(("max + 2 fused kernels (exp-sum, normalize)", lambda: split(*inputs)))
        elif workload == "layernorm":
            split = _fused_layernorm(cupy)
            out.append(
                ("3 fused kernels (sum, squared-deviation sum, scale)", lambda: split(*inputs))
            )
        return out


def _named(fn, name):
    """A plain function (``cupy.fuse`` names its kernel after ``__name__``; a partial has none)."""

    def f(*args):
        return fn(*args)

    f.__name__ = f"fused_{name}"
    return f


def _fused_softmax(cupy):
    @cupy.fuse()
    def exp_sum(x, m):
        return cupy.sum(cupy.exp(x - m), axis=-1)

    @cupy.fuse()
    def normalize(x, m, s):
        return cupy.exp(x - m) / s

    def softmax(x):
        m = x.max(axis=-1, keepdims=True)
        return normalize(x, m, exp_sum(x, m)[..., None])

    return softmax


def _fused_layernorm(cupy):
    @cupy.fuse()
    def row_sum(x):
        return cupy.sum(x, axis=-1)

    @cupy.fuse()
    def squared_deviation_sum(x, mu):
        return cupy.sum((x - mu) * (x - mu), axis=-1)

    @cupy.fuse()
    def scale_shift(x, mu, var, gamma, beta):
        return (x - mu) / cupy.sqrt(var + 1e-5) * gamma + beta

    def layernorm(x, gamma, beta):
        n = x.shape[-1]
        mu = (row_sum(x) / n)[..., None]
        var = (squared_deviation_sum(x, mu) / n)[..., None]
        return scale_shift(x, mu, var, gamma, beta)

    return layernorm


def _torch_sgd_step(torch):
    """The MLP step for torch: the same loss, the gradient from ``torch.func.grad_and_value``."""

    def loss(params, x, onehot):
        w1, b1, w2, b2 = params
        h = torch.relu(x @ w1 + b1)
        z = h @ w2 + b2
        z = z - z.amax(dim=-1, keepdim=True)
        logp = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))
        return -(onehot * logp).sum() / x.shape[0]

    grad_and_value = torch.func.grad_and_value(loss)

    def step(params, x, onehot):
        grads, value = grad_and_value(params, x, onehot)
        return value, tuple(p - W.LEARNING_RATE * g for p, g in zip(params, grads))

    return step


class TorchPeer(Peer):
    """torch eager; ``compiled`` makes it ``torch.compile`` (default mode) of the same function."""

    name = "torch"

    def __init__(self, compiled=False):
        self.compiled = compiled
        if compiled:
            self.name = "torch.compile"
        self.copies = not compiled

    def version(self, env):
        if env.emulated:
            return None
        try:
            import torch
        except Exception as e:  # noqa: BLE001
            self.why = f"not installed ({type(e).__name__})"
            return None
        if not torch.cuda.is_available():
            self.why = "torch sees no CUDA device"
            return None
        return f"{torch.__version__} (CUDA {torch.version.cuda})"

    def candidates(self, workload, inputs, env):
        import torch

        def dl(tree):  # the very CuPy buffers, no copy
            if isinstance(tree, tuple):
                return tuple(dl(t) for t in tree)
            return torch.from_dlpack(tree)

        args = dl(inputs)
        note = ""
        if workload == "copy":
            if self.compiled:
                raise NotApplicable("no copy kernel")
            return [("x.clone()", lambda: args[0].clone())]
        if workload == "softmax":
            fn, note = functools.partial(torch.softmax, dim=-1), "torch.softmax"
        elif workload == "layernorm":
            d = args[0].shape[-1]

            def fn(x, g, b):
                return torch.nn.functional.layer_norm(x, (d,), g, b, eps=1e-5)

            note = "F.layer_norm"
        elif workload == "mlp":
            fn, note = _torch_sgd_step(torch), "torch.func.grad_and_value + update"
        else:
            fn = functools.partial(SHARED[workload], torch)
        if self.compiled:
            fn = torch.compile(fn)
        return [(note, lambda: fn(*args))]


class JaxPeer(Peer):
    name = "jax.jit"

    def version(self, env):
        if env.emulated:
            return None
        try:
            import jax
        except Exception as e:  # noqa: BLE001
            self.why = f"not installed ({type(e).__name__})"
            return None
        try:
            jax.devices("gpu")
        except Exception as e:  # noqa: BLE001  (jax without its CUDA plugin)
            self.why = f"jax {jax.__version__} has no GPU backend ({str(e).splitlines()[0][:80]})"
            return None
        return jax.__version__

    def candidates(self, workload, inputs, env):
        import jax
        import jax.numpy as jnp

        if workload == "copy":
            raise NotApplicable("no copy kernel")
        # Full float32 matmuls, as CuPy's cuBLAS calls and torch's defaults do (no TF32).
        jax.config.update("jax_default_matmul_precision", "highest")
        how = "DLPack"

        def put(tree):
            nonlocal how
            if isinstance(tree, tuple):
                return tuple(put(t) for t in tree)
            try:
                return jax.dlpack.from_dlpack(tree)
            except Exception:  # noqa: BLE001  (older jax: copy once through the host)
                how = "device_put (DLPack refused)"
                return jax.device_put(env.cupy.asnumpy(tree))  # the default: the GPU

        args = jax.block_until_ready(put(inputs))
        if workload == "mlp":
            f = jax.jit(functools.partial(W.sgd_step, jnp, jax.value_and_grad))
        else:
            f = jax.jit(functools.partial(SHARED[workload], jnp))
        note = f"inputs by {how}" + (", matmul precision highest" if workload == "mlp" else "")
        return [(note, lambda: jax.block_until_ready(f(*args)))]


def all_peers(emulated: bool) -> list:
    """Every peer in table order (the emulator has mlc and the NumPy reference only)."""
    if emulated:
        return [MlcPeer(), NumpyPeer()]
    return [
        MlcPeer(),
        MemcpyPeer(),
        CupyPeer(),
        CupyFusePeer(),
        TorchPeer(),
        TorchPeer(compiled=True),
        JaxPeer(),
    ]


def cuda_version(v: int) -> str:
    return f"{v // 1000}.{v % 1000 // 10}"
