"""Per-example gradients with ``mlc.vmap(mlc.grad(loss))``, and one DP-SGD training loop.

Differentially private SGD (Abadi et al., 2016) needs the gradient of every example separately:
each is clipped to a maximum norm C, then the clipped gradients are averaged and Gaussian noise
of scale ``sigma * C / batch`` is added. ``mlc.grad`` gives the gradient of one example;
``mlc.vmap`` turns it into one batched graph for the whole batch (no Python loop, no per-example
trace). The script checks the batched gradients against a Python loop of ``mlc.grad`` and times
both (printed only: timing is never a test).

    python examples/per_example_grads.py [--batch 256] [--steps 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mlc


# -- the model: a 2-layer MLP for binary classification --------------------------------------
def init_params(rng, n_in, n_hidden):
    return {
        "W1": rng.normal(scale=1 / np.sqrt(n_in), size=(n_in, n_hidden)),
        "b1": np.zeros(n_hidden),
        "w2": rng.normal(scale=1 / np.sqrt(n_hidden), size=n_hidden),
        "b2": np.zeros(()),
    }


def predict(params, x):
    """The logit for one example ``x`` (plain NumPy code: mlc traces it unchanged)."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss(params, x, y):
    """Binary cross-entropy of one example, from the logit: log(1 + e^z) - y z."""
    z = predict(params, x)
    return np.logaddexp(0.0, z) - y * z


def make_data(rng, n, n_in):
    """Two Gaussian blobs, labels 0 and 1."""
    y = rng.integers(0, 2, size=n).astype(np.float64)
    centers = np.where(y[:, None] == 1, 1.0, -1.0) * np.linspace(0.5, 1.0, n_in)
    x = centers + rng.normal(size=(n, n_in))
    return x, y


# -- per-example gradients -------------------------------------------------------------------
# in_axes=(None, 0, 0): the parameters are shared, x and y are mapped over their first axis.
per_example_grads = mlc.vmap(mlc.grad(loss), in_axes=(None, 0, 0))


def loop_grads(params, x, y):
    """The reference: one ``mlc.grad`` call per example, stacked."""
    grads = [mlc.grad(loss)(params, x[i], y[i]) for i in range(len(x))]
    return {k: np.stack([g[k] for g in grads]) for k in params}


def per_example_norms(grads):
    """The norm of each example's whole gradient (all parameters together)."""
    batch = next(iter(grads.values())).shape[0]
    return np.sqrt(sum((g.reshape(batch, -1) ** 2).sum(axis=1) for g in grads.values()))


def clip_grads(grads, norms, clip):
    """Each example's gradient scaled down to norm at most ``clip``."""
    scale = np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    return {k: g * scale.reshape(scale.shape + (1,) * (g.ndim - 1)) for k, g in grads.items()}


def noisy_mean(clipped, noise, clip, sigma):
    """The average of the clipped gradients plus N(0, (sigma * C / batch)^2) noise."""
    return {k: g.mean(axis=0) + noise[k] * (sigma * clip / g.shape[0]) for k, g in clipped.items()}


def dp_sgd_update(params, x, y, noise, lr, clip, sigma):
    """One DP-SGD step: per-example gradients, clipped to norm ``clip``, averaged, noised.

    ``noise`` holds standard normal draws shaped like the parameters (NumPy draws them outside).
    Returns the new parameters and the per-example gradient norms before clipping.
    """
    grads = mlc.vmap(mlc.grad(loss), in_axes=(None, 0, 0))(params, x, y)
    norms = per_example_norms(grads)
    step = noisy_mean(clip_grads(grads, norms, clip), noise, clip, sigma)
    return {k: params[k] - lr * step[k] for k in params}, norms


def accuracy(params, x, y):
    logits = mlc.vmap(predict, in_axes=(None, 0))(params, x)
    return float(np.mean((logits > 0) == (y == 1)))


def _timed(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main(batch=32, steps=10, n_in=8, n_hidden=16, lr=0.5, clip=1.0, sigma=0.5, seed=0,
         repeat=3, verbose=True):  # fmt: skip
    """Check per-example gradients against a loop, time both, then train with DP-SGD.

    Returns a report dict (``check_passed``, ``max_abs_err``, times, losses, accuracy).
    """
    rng = np.random.default_rng(seed)
    params = init_params(rng, n_in, n_hidden)
    x, y = make_data(rng, batch * max(steps, 1), n_in)
    xb, yb = x[:batch], y[:batch]

    # 1. the check: vmap(grad) equals a Python loop of grad, per example and per parameter
    batched, t_vmap = _timed(lambda: per_example_grads(params, xb, yb), repeat)
    looped, t_loop = _timed(lambda: loop_grads(params, xb, yb), repeat)
    max_err = max(float(np.max(np.abs(batched[k] - looped[k]))) for k in params)
    shapes_ok = all(batched[k].shape == (batch,) + np.shape(params[k]) for k in params)
    check = shapes_ok and all(np.allclose(batched[k], looped[k], rtol=1e-10, atol=1e-12)
                              for k in params)  # fmt: skip
    assert check, f"per-example gradients differ from the loop (max abs error {max_err:.3g})"

    # the same under jit: one compiled graph for the whole batch; and a loop of jitted grads
    jitted = mlc.jit(per_example_grads)
    jitted(params, xb, yb)
    _, t_jit = _timed(lambda: jitted(params, xb, yb), repeat)
    grad_one = mlc.jit(mlc.grad(loss))
    grad_one(params, xb[0], yb[0])
    _, t_loop_jit = _timed(lambda: [grad_one(params, xb[i], yb[i]) for i in range(batch)], repeat)

    # 2. one DP-SGD step (clip, average, noise) against the same step on the looped gradients
    step = mlc.jit(dp_sgd_update, static_argnames=("lr", "clip", "sigma"))
    noise = {k: rng.normal(size=np.shape(v)) for k, v in params.items()}
    new, norms = step(params, xb, yb, noise, lr=lr, clip=clip, sigma=sigma)
    ref_norms = per_example_norms(looped)
    ref_clipped = clip_grads(looped, ref_norms, clip)
    clipped_norms = per_example_norms(ref_clipped)
    ref_step = noisy_mean(ref_clipped, noise, clip, sigma)
    ref_new = {k: params[k] - lr * ref_step[k] for k in params}
    step_ok = np.allclose(norms, ref_norms, rtol=1e-10) and all(
        np.allclose(new[k], ref_new[k], rtol=1e-10, atol=1e-12) for k in params
    )
    step_ok &= bool(np.all(clipped_norms <= clip * (1 + 1e-12)))
    step_ok &= bool(np.allclose(clipped_norms, np.minimum(ref_norms, clip), rtol=1e-10))
    assert step_ok, "the DP-SGD step differs from the same step on looped gradients"
    check = check and step_ok

    # 3. DP-SGD training
    mean_loss = mlc.jit(lambda p, x, y: mlc.vmap(loss, in_axes=(None, 0, 0))(p, x, y).mean())
    losses = [float(mean_loss(params, x, y))]
    for s in range(steps):
        xs, ys = x[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch]
        noise = {k: rng.normal(size=np.shape(v)) for k, v in params.items()}
        params, norms = step(params, xs, ys, noise, lr=lr, clip=clip, sigma=sigma)
    losses.append(float(mean_loss(params, x, y)))

    report = {
        "check_passed": bool(check),
        "max_abs_err": max_err,
        "time_vmap_s": t_vmap,
        "time_loop_s": t_loop,
        "time_jit_vmap_s": t_jit,
        "time_jit_loop_s": t_loop_jit,
        "clipped_fraction": float(np.mean(ref_norms > clip)),
        "speedup": t_loop / t_vmap,
        "loss_before": losses[0],
        "loss_after": losses[-1],
        "accuracy": accuracy(params, x, y),
    }
    if verbose:
        print(f"per-example gradients for a batch of {batch} ({n_in}-{n_hidden}-1 MLP)")
        print(f"  vmap(grad) vs loop of grad: max abs difference {max_err:.2e}  (check passed)")
        print(f"  loop of mlc.grad:   {t_loop * 1e3:9.2f} ms")
        print(f"  mlc.vmap(mlc.grad): {t_vmap * 1e3:9.2f} ms   ({t_loop / t_vmap:.1f}x faster)")
        print(f"  loop of jit(grad):  {t_loop_jit * 1e3:9.2f} ms   (compiled, warm)")
        print(f"  jit(vmap(grad)):    {t_jit * 1e3:9.2f} ms   ({t_loop_jit / t_jit:.1f}x faster)")
        print(
            f"  DP-SGD step (clip, mean, noise) matches the loop; "
            f"{report['clipped_fraction']:.0%} of examples clipped"
        )
        print(f"DP-SGD, {steps} steps, clip C={clip}, noise sigma={sigma}:")
        print(f"  mean loss {losses[0]:.4f} -> {losses[-1]:.4f}, accuracy {report['accuracy']:.2%}")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    main(batch=args.batch, steps=args.steps)
