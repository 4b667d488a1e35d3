"""Kernel descriptions: every fused kernel of every mlc.numpy function (and of its gradient and
its vmap), run through the description's reference evaluator, computes what the graph computes.

This checks fusion plus lowering to ``backends.kernel.Program`` independently of any code
generator: the backends are then checked against the same evaluator.
"""

import numpy as np
import pytest
from mlc.backends.kernel import describe, evaluate
from mlc.ir.interpreter import evaluate as interpret
from mlc.ir.interpreter import evaluate_node
from mlc.ir.passes import optimize
from mlc.ir.passes.fusion import fuse

import mlc
from tests.numpy_cases import all_cases, cast


def run_plan(plan, args):
    """The graph's outputs, each fused kernel run through its description."""
    g = plan.graph
    env = {id(p): np.asarray(a) for p, a in zip(g.inputs, args)}
    for n in g.nodes():
        if n.op == "constant":
            env[id(n)] = n.attr("value").array
    for k in plan.kernels:
        if k.kind == "library":
            n = k.members[0]
            env[id(n)] = evaluate_node(n, [env[id(i)] for i in n.inputs])
            continue
        program = describe(k)
        assert program.key() == describe(k).key()  # deterministic
        outs = evaluate(program, [env[id(i)] for i in program.inputs])
        for o, v in zip(program.outputs, outs):
            assert v.shape == o.shape and v.dtype == o.dtype, (k.name, o.op)
            env[id(o)] = v
    return [env[id(o)] for o in g.outputs]


def check_graph(graph, args):
    graph = optimize(graph)
    plan = fuse(graph)
    plan.check()
    with np.errstate(all="ignore"):
        expected = interpret(graph, *args)
        got = run_plan(plan, args)
    for e, g in zip(expected, got):
        e, g = np.asarray(e), np.asarray(g)
        assert g.dtype == e.dtype and g.shape == e.shape
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, e)


CASES = [c for c in all_cases() if c.values]
SUPPORTED = {"bool", "int32", "int64", "float32", "float64"}
DTYPED = [(c, np.dtype(d).name) for c in CASES for d in c.dtypes]


def _args(case, seed=0, dtype="float64"):
    return [cast(np.asarray(a), dtype) for a in case.gen(np.random.RandomState(seed))]


@pytest.mark.parametrize("case,dtype", DTYPED, ids=lambda v: v if isinstance(v, str) else v.id)
def test_every_function(case, dtype):
    args = _args(case, dtype=dtype)
    try:
        with np.errstate(all="ignore"):
            out = case.fn(np, *args)
    except Exception:
        pytest.skip(f"NumPy refuses {dtype}")
    leaves = out if isinstance(out, (tuple, list)) else [out]
    if any(np.asarray(x).dtype.name not in SUPPORTED for x in leaves):
        pytest.skip("NumPy's result dtype is one mlc does not support")
    check_graph(mlc.trace(lambda *a: case.fn(mlc.numpy, *a), *args), args)


DIFF = [c for c in CASES if c.differentiable and c.dtypes and "float64" in map(str, c.dtypes)]


@pytest.mark.parametrize("case", DIFF[::3], ids=lambda c: c.id)
def test_gradients_and_batches(case):
    args = _args(case, 1)

    def loss(*a):
        out = case.fn(mlc.numpy, *a)
        leaves = out if isinstance(out, (tuple, list)) else [out]
        return sum(mlc.numpy.sum(mlc.numpy.sin(x)) for x in leaves if x.dtype.kind == "f")

    try:
        graph = mlc.trace(mlc.value_and_grad(loss, argnums=tuple(range(len(args)))), *args)
    except TypeError:
        pytest.skip("no float output to differentiate")
    check_graph(graph, args)
    stacked = [np.stack([a, a * 0.5 + 0.1]) for a in args]
    check_graph(mlc.trace(mlc.vmap(lambda *a: case.fn(mlc.numpy, *a)), *stacked), stacked)


def test_new_sizes_give_the_same_program():
    def f(x, w):
        return np.tanh(x @ w).sum(-1) - np.exp(x).max(-1)

    keys = []
    for batch in (3, 7, 64):
        x, w = np.ones((batch, 5)), np.ones((5, 4))
        plan = fuse(optimize(mlc.trace(f, x, w)))
        keys.append([describe(k).key() for k in plan.kernels if k.kind != "library"])
    assert keys[0] == keys[1] == keys[2]
