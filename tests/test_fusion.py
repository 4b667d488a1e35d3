"""The fusion contract (kernel counts), the explainer, and plan validity on many functions."""

import json

import numpy as np
import pytest
from mlc.ir.passes import optimize
from mlc.ir.passes.fusion import Budget, fuse
from models import gelu, layernorm, logsumexp, softmax

import mlc

F32 = np.float32
RNG = np.random.RandomState(0)


def plan_of(f, *args, budget=None):
    graph = optimize(mlc.trace(f, *args))
    plan = fuse(graph, budget)
    plan.check()
    from mlc.ir.interpreter import evaluate

    leaves = [np.asarray(a) for a in args]
    expected = evaluate(graph, *leaves)
    for got, want in zip(plan.evaluate(*leaves), expected):
        np.testing.assert_array_equal(got, want)
    return plan


X = RNG.randn(16, 32).astype(F32)
G = RNG.randn(32).astype(F32)
B = RNG.randn(32).astype(F32)
CASES = {
    "gelu": (gelu, (X,)),
    "softmax": (softmax, (X,)),
    "layernorm": (layernorm, (X, G, B)),
    "logsumexp": (logsumexp, (X,)),
}


@pytest.mark.parametrize("name", CASES)
def test_forward_is_one_kernel(name):
    f, args = CASES[name]
    plan = plan_of(f, *args)
    assert len(plan.kernels) == 1, str(plan)
    expected_kind = "pointwise" if name == "gelu" else "reduction"
    assert plan.kernels[0].kind == expected_kind


@pytest.mark.parametrize("name", CASES)
def test_forward_and_backward_at_most_two_kernels(name):
    f, args = CASES[name]
    w = RNG.randn(*np.shape(f(*args))).astype(F32)

    def loss(*a):
        return np.sum(f(*a) * w)

    plan = plan_of(mlc.value_and_grad(loss, argnums=tuple(range(len(args)))), *args)
    assert len(plan.kernels) <= 2, str(plan)

    def fwd_bwd(ct, *a):  # the output and the input cotangent for a given output cotangent
        out, f_vjp = mlc.vjp(f, *a)
        return out, f_vjp(ct)

    plan = plan_of(fwd_bwd, w, *args)
    assert len(plan.kernels) <= 2, str(plan)


def mlp_step(w1, b1, w2, b2, x, y):
    def loss(params):
        (w1, b1), (w2, b2) = params
        h = np.maximum(x @ w1 + b1, 0.0)
        logits = h @ w2 + b2
        m = logits.max(-1, keepdims=True)
        lse = np.log(np.exp(logits - m).sum(-1, keepdims=True)) + m
        return -np.mean(np.sum((logits - lse) * y, axis=-1))

    params = [(w1, b1), (w2, b2)]
    value, grads = mlc.value_and_grad(loss)(params)
    new = [(w - 0.1 * gw, b - 0.1 * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return value, new


def test_mlp_step_kernels():
    """Two matmuls forward, three backward: five BLAS calls. Around them six kernels: the
    bias + relu; one row kernel (max, logsumexp, the loss total and the softmax pieces); the
    column kernel for the output bias gradient (with the logits gradient and the bias update);
    the relu-masked hidden gradient with its bias gradient and update; the two weight updates."""
    w1, b1 = RNG.randn(64, 32).astype(F32), np.zeros(32, F32)
    w2, b2 = RNG.randn(32, 10).astype(F32), np.zeros(10, F32)
    x = RNG.randn(16, 64).astype(F32)
    y = np.eye(10, dtype=F32)[RNG.randint(0, 10, 16)]
    plan = plan_of(mlp_step, w1, b1, w2, b2, x, y)
    assert len(plan.library_calls) == 5
    assert all(k.members[0].op == "dot_general" for k in plan.library_calls)
    assert len(plan.fused_kernels) == 6, str(plan)
    # the weight gradients come out of BLAS in the weights' layout: no transposed reads
    assert not any(m.op == "transpose" for k in plan.fused_kernels for m in k.members), str(plan)


# -- the explainer ----------------------------------------------------------------------------
def test_report_is_data_and_text():
    f = mlc.jit(lambda x, w: np.tanh(x @ w).sum(0) - np.exp(x).sum(1).mean())
    x, w = RNG.randn(8, 4).astype(F32), RNG.randn(4, 4).astype(F32)
    lowered = f.lower(x, w)
    report = lowered.fusion_report()
    data = json.loads(json.dumps(report))
    assert {"graph", "kernels", "unfused"} <= set(data)
    reasons = {u["reason"] for u in data["unfused"]}
    assert "library call" in reasons
    text = str(report)
    assert "test_fusion.py" in text and "library call" in text
    assert lowered.kernels == lowered.plan.kernels


def test_reduction_axes_differ_is_explained():
    def f(x):
        y = np.exp(x) - np.exp(x).sum(0)  # a column sum read per element
        return y.sum(1)  # then a row sum

    plan = plan_of(f, X)
    assert len(plan.kernels) == 2
    assert any(
        u.reason in ("reduction axes differ", "iteration space differs") for u in plan.unfused
    )


def test_budget_splits_kernels():
    def f(x):
        for _ in range(6):
            x = x - x.max(-1, keepdims=True) + x.sum(-1, keepdims=True) * 0.01
        return x

    plan = plan_of(f, X)
    assert len(plan.kernels) >= 2
    assert any(u.reason == "kernel budget" for u in plan.unfused)
    small = plan_of(f, X, budget=Budget(reductions=2))
    assert len(small.kernels) > len(plan.kernels)


def test_expensive_shared_producer_is_stored_not_recomputed():
    def f(x):
        e = np.exp(x)  # expensive, read by a row sum and a column sum
        return e.sum(1), e.sum(0)

    plan = plan_of(f, X)
    exps = [k for k in plan.kernels if any(m.op == "exp" for m in k.members)]
    assert len(exps) == 1


def test_cheap_shared_producer_is_recomputed():
    def f(x):
        d = x * 2.0 + 1.0  # cheap, read by a row sum and a column sum
        return d.sum(1), d.sum(0)

    plan = plan_of(f, X)
    assert len(plan.kernels) == 2
    assert not plan.unfused


def test_matmul_consumers_fuse_after_the_call():
    plan = plan_of(lambda x, w, b: np.tanh(x @ w + b), X, RNG.randn(32, 8).astype(F32), B[:8])
    assert [k.kind for k in plan.kernels] == ["library", "pointwise"]


FUNCTIONS = [
    (lambda x: np.sort(x, axis=1)[:, ::-1] * 2, (X,)),
    (lambda x: np.cumsum(np.exp(x), axis=0) - x, (X,)),
    (lambda x: x.T @ np.sin(x) + 1, (X,)),
    (lambda x: np.concatenate([x, np.cos(x)], 1).sum(0), (X,)),
    (lambda x: np.pad(x, 1)[1:, :-1] * x.mean(), (X,)),
    (lambda x: x.reshape(4, 4, 32).transpose(2, 0, 1).max(-1), (X,)),
    (lambda x: (x - x.mean()) / x.std(), (X,)),
    (lambda x: np.where(x > 0, x, np.exp(x) - 1).var(0), (X,)),
    (lambda x: x[np.argmax(x, 0), np.arange(32)] + x.argmin(1).sum(), (X,)),
    (lambda x: np.sqrt((x * x).sum(1)) + np.abs(x).max(1), (X,)),
]


@pytest.mark.parametrize("k", range(len(FUNCTIONS)))
def test_plans_are_valid_and_compute_the_graph(k):
    f, args = FUNCTIONS[k]
    plan_of(f, *args)
    plan_of(mlc.grad(lambda *a: np.sum(f(*a) ** 2)), *args)
    plan_of(mlc.vmap(f), np.stack([args[0]] * 3))
