"""``mlc.vmap`` at the API level: axis specs, sizes, errors, composition with grad/jit/jac*,
and the shape of the batched graph (one batched primitive per primitive, no unrolled loop).

Every value is checked against a Python loop over the examples (plain NumPy, or ``mlc.grad`` per
example for the derivatives). Graph tests count primitives with ``Graph.count``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from tests.conformance import assert_same

RNG = np.random.default_rng(0)


def normal(*shape, dtype=np.float64):
    return RNG.normal(size=shape).astype(dtype)


# -- the reference: a Python loop over the examples ------------------------------------------
def _take(tree, axes, i):
    """Example ``i`` of ``tree`` given an in_axes prefix ``axes``."""
    if axes is None:
        return tree
    if isinstance(axes, int):
        return mlc.pytree.tree_map(lambda x: np.take(x, i, axis=axes), tree)
    if isinstance(axes, dict):
        return {k: _take(tree[k], axes[k], i) for k in tree}
    return type(tree)(_take(t, a, i) for t, a in zip(tree, axes))


def _stack(results, axes):
    """Stack per-example results (pytrees) along an out_axes prefix."""
    first = results[0]
    if axes is None:
        return first
    if isinstance(axes, int):
        leaves = [mlc.pytree.flatten(r)[0] for r in results]
        tree = mlc.pytree.flatten(first)[1]
        stacked = [np.stack([ls[k] for ls in leaves], axis=axes) for k in range(len(leaves[0]))]
        return mlc.pytree.unflatten(tree, stacked)
    if isinstance(axes, dict):
        return {k: _stack([r[k] for r in results], axes[k]) for k in first}
    return type(first)(_stack([r[j] for r in results], a) for j, a in enumerate(axes))


def loop(f, args, in_axes=0, out_axes=0, size=None):
    """``vmap(f, in_axes, out_axes)(*args)`` computed example by example."""
    if not isinstance(in_axes, (tuple, list)):
        in_axes = (in_axes,) * len(args)
    if size is None:
        leaves = [
            (x, a)
            for arg, ax in zip(args, in_axes)
            for x, a in zip(mlc.pytree.flatten(arg)[0], _leaf_axes(arg, ax))
            if a is not None
        ]
        size = leaves[0][0].shape[leaves[0][1]]
    results = [f(*[_take(arg, ax, i) for arg, ax in zip(args, in_axes)]) for i in range(size)]
    return _stack(results, out_axes)


def _leaf_axes(tree, axes):
    if axes is None or isinstance(axes, int):
        return [axes] * len(mlc.pytree.flatten(tree)[0])
    if isinstance(axes, dict):
        keys = mlc.pytree.flatten(tree)[1].keys
        return [a for k in keys for a in _leaf_axes(tree[k], axes[k])]
    return [a for t, ax in zip(tree, axes) for a in _leaf_axes(t, ax)]


def assert_tree(got, expected, rtol=None, atol=None):
    g, gt = mlc.pytree.flatten(got)
    e, et = mlc.pytree.flatten(expected)
    assert gt == et, f"structure {gt} != {et}"
    for a, b in zip(g, e):
        assert_same(a, b, rtol, atol)


def example_fn(a, w):
    """Per example: elementwise with an unbatched operand, a reduction, a matmul."""
    h = np.tanh(a @ w + 1.0)
    return h * h.sum(axis=-1, keepdims=True) - np.exp(-a.mean())


# -- in_axes / out_axes ----------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_in_axes_int_and_negative(axis):
    x = normal(2, 3, 4)
    ex = np.moveaxis(x, axis, 0)[0]  # one example: x without the batch axis
    w = normal(ex.shape[-1], 5)
    got = mlc.vmap(example_fn, in_axes=(axis, None))(x, w)
    assert_same(got, loop(example_fn, (x, w), (axis, None)))


@pytest.mark.parametrize("out_axes", [0, 1, 2, -1, -2, -3])
def test_out_axes_int_and_negative(out_axes):
    x, w = normal(6, 2, 3), normal(3, 4)  # each result is (2, 4)
    got = mlc.vmap(example_fn, in_axes=(0, None), out_axes=out_axes)(x, w)
    assert_same(got, loop(example_fn, (x, w), (0, None), out_axes))
    assert got.shape[out_axes] == 6


def test_in_axes_none_leaves_argument_unbatched():
    x, w = normal(5, 3), normal(3, 2)
    got = mlc.vmap(lambda a, b: a @ b, in_axes=(0, None))(x, w)
    assert_same(got, x @ w)
    # both batched: w gets a batch axis too
    ws = normal(5, 3, 2)
    got = mlc.vmap(lambda a, b: a @ b, in_axes=[0, 0])(x, ws)
    assert_same(got, loop(lambda a, b: a @ b, (x, ws)))


def test_in_axes_pytree_prefixes():
    x, y, z = normal(4, 3), normal(3, 4), normal(2, 4)

    def f(pair, d, lst):
        a, b = pair
        return (a * b).sum() + d["u"].sum() * d["v"][0] - lst[0].max() * lst[1][1].min()

    pair = (x, y)
    d = {"u": z, "v": (normal(4, 2), normal(7))}
    lst = [normal(3), (normal(5), normal(2, 4))]
    in_axes = ((0, 1), {"u": 1, "v": (0, None)}, [None, (None, -1)])
    got = mlc.vmap(f, in_axes=in_axes)(pair, d, lst)
    assert_same(got, loop(f, (pair, d, lst), in_axes))


def test_in_axes_prefix_broadcasts_over_a_subtree():
    x, y = normal(4, 3), normal(4, 2)
    f = lambda p, s: p["a"].sum() * p["b"] + s  # noqa: E731
    got = mlc.vmap(f, in_axes=({"a": 0, "b": 0}, None))({"a": x, "b": y}, 1.5)
    assert_same(got, loop(f, ({"a": x, "b": y}, 1.5), (0, None)))
    got2 = mlc.vmap(f, in_axes=(0, None))({"a": x, "b": y}, 1.5)  # 0 covers the whole dict
    assert_same(got2, got)


def test_pytree_results_and_out_axes_prefixes():
    x, w = normal(5, 3), normal(3, 2)

    def f(a, b):
        h = a @ b
        return {"h": h, "parts": (np.sin(a), [h.sum(), b * 2.0])}

    out_axes = {"h": 1, "parts": (-1, [0, None])}
    got = mlc.vmap(f, in_axes=(0, None), out_axes=out_axes)(x, w)
    assert_tree(got, loop(f, (x, w), (0, None), out_axes))
    assert got["h"].shape == (2, 5) and got["parts"][0].shape == (3, 5)
    assert got["parts"][1][1].shape == (3, 2)  # out_axes=None: an unbatched result stays one copy


def test_unbatched_result_is_broadcast_with_int_out_axes():
    x, w = normal(5, 3), normal(2)
    got = mlc.vmap(lambda a, b: (a.sum(), b * 3.0), in_axes=(0, None), out_axes=(0, 1))(x, w)
    assert_same(got[0], x.sum(axis=1))
    assert_same(got[1], np.stack([w * 3.0] * 5, axis=1))


def test_out_axes_none_on_a_batched_result_raises():
    with pytest.raises(ValueError, match="out_axes=None"):
        mlc.vmap(lambda a: a * 2, out_axes=None)(normal(3, 2))


def test_in_axes_structure_mismatch_raises():
    with pytest.raises(ValueError, match="in_axes"):
        mlc.vmap(lambda a, b: a + b, in_axes=(0, None, 0))(normal(3), normal(3))
    with pytest.raises(ValueError, match="in_axes"):
        mlc.vmap(lambda p: p[0] + p[1], in_axes=((0, 0, 0),))((normal(3), normal(3)))
    with pytest.raises(ValueError, match="keys"):
        mlc.vmap(lambda d: d["a"], in_axes=({"b": 0},))({"a": normal(3)})


# -- axis_size -------------------------------------------------------------------------------
def test_axis_size_without_batched_arguments_broadcasts():
    w = normal(3)
    got = mlc.vmap(lambda v: np.sin(v) * 2.0, in_axes=None, axis_size=4)(w)
    assert_same(got, np.broadcast_to(np.sin(w) * 2.0, (4, 3)))
    got = mlc.vmap(lambda v: np.sin(v), in_axes=None, out_axes=1, axis_size=2)(w)
    assert_same(got, np.stack([np.sin(w)] * 2, axis=1))
    got = mlc.vmap(lambda: mnp.ones((2, 3)), axis_size=5)()
    assert_same(got, np.ones((5, 2, 3)))


def test_axis_size_agreeing_with_the_batch_is_accepted():
    x = normal(4, 3)
    assert_same(mlc.vmap(np.sum, axis_size=4)(x), x.sum(axis=1))


def test_axis_size_mismatch_and_missing_raise():
    with pytest.raises(ValueError, match="axis_size=3"):
        mlc.vmap(lambda a: a, axis_size=3)(normal(4, 2))
    with pytest.raises(ValueError, match="axis_size"):
        mlc.vmap(lambda a: a, in_axes=None)(normal(4, 2))


# -- errors ----------------------------------------------------------------------------------
def test_mismatched_batch_sizes_name_the_arguments_and_sizes():
    with pytest.raises(ValueError) as err:
        mlc.vmap(lambda a, b: a + b)(normal(4, 2), normal(3, 2))
    msg = str(err.value)
    assert "argument 0 has size 4" in msg and "argument 1 has size 3" in msg
    assert "test_vmap.py" in msg  # the user's line
    # inside a pytree argument, the message names the positional argument and the leaf
    with pytest.raises(ValueError) as err:
        mlc.vmap(lambda p, c: p[0] + p[1]["w"] + c)(
            (normal(4, 2), {"w": normal(4, 2)}), normal(3, 2)
        )
    msg = str(err.value)
    assert "argument 0[0] has size 4" in msg and "argument 0[1]['w'] has size 4" in msg
    assert "argument 1 has size 3" in msg


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_in_axes_out_of_range_raises(axis):
    with pytest.raises(ValueError, match="out of range"):
        mlc.vmap(lambda a: a, in_axes=axis)(normal(4, 2))


def test_in_axes_on_a_scalar_raises():
    with pytest.raises(ValueError, match="out of range"):
        mlc.vmap(lambda a, b: a * b, in_axes=(0, 0))(normal(4), np.float64(2.0))


@pytest.mark.parametrize("axis", [3, -4])
def test_out_axes_out_of_range_raises(axis):
    with pytest.raises(ValueError, match="out of range"):
        mlc.vmap(lambda a: a * 2, out_axes=axis)(normal(4, 2, 3))


def test_python_control_flow_on_a_batched_value_is_a_concretization_error():
    with pytest.raises(mlc.ConcretizationError, match="test_vmap.py"):
        mlc.vmap(lambda a: a if a.sum() > 0 else -a)(normal(4, 2))
    # control flow on unbatched (concrete) values is fine
    flip = True
    got = mlc.vmap(lambda a: -a if flip else a)(normal(4, 2))
    assert got.shape == (4, 2)


# -- keyword arguments -----------------------------------------------------------------------
def test_keyword_arguments_are_batched_along_axis_0():
    x, s = normal(5, 3), normal(5)

    def f(a, scale=1.0):
        return np.sin(a) * scale

    got = mlc.vmap(f)(x, scale=s)
    assert_same(got, loop(lambda a, c: f(a, scale=c), (x, s)))
    got = mlc.vmap(f, in_axes=(1,))(x.T, scale=s)
    assert_same(got, loop(lambda a, c: f(a, scale=c), (x, s)))
    # an int in_axes covers the positional arguments only: keywords stay on axis 0
    got = mlc.vmap(f, in_axes=1)(x.T, scale=s)
    assert_same(got, loop(lambda a, c: f(a, scale=c), (x, s)))
    got = mlc.vmap(f, in_axes=None)(x[0], scale=s)
    assert_same(got, loop(lambda c: f(x[0], scale=c), (s,)))


# -- batch sizes 0 and 1 ---------------------------------------------------------------------
CASES = {
    "elementwise+reduce": (lambda a, w: np.exp(a).sum(axis=0) * w, (3, 4), (4,)),
    "matmul": (lambda a, w: np.tanh(a @ w), (3, 4), (4, 2)),
    "gather": (lambda a, w: a[1:, ::2][[0, 1, 0]] + w[:2], (3, 4), (4,)),
    "reshape+transpose": (lambda a, w: (a.reshape(4, 3).T * w[:3, None]).cumsum(0), (3, 4), (4,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("size", [0, 1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_sizes_0_1_and_more(name, size, dtype):
    f, xs, ws = CASES[name]
    x, w = normal(size, *xs, dtype=dtype), normal(*ws, dtype=dtype)
    got = mlc.vmap(f, in_axes=(0, None))(x, w)
    one = f(np.zeros(xs, dtype), w)
    assert got.shape == (size,) + one.shape and got.dtype == one.dtype
    if size:
        assert_same(got, loop(f, (x, w), (0, None)), rtol=1e-5, atol=1e-6)
    # the same through jit, with the batch axis last
    got = mlc.jit(mlc.vmap(f, in_axes=(-1, None), out_axes=-1))(np.moveaxis(x, 0, -1), w)
    assert got.shape == one.shape + (size,)
    if size:
        assert_same(np.moveaxis(got, -1, 0), loop(f, (x, w), (0, None)), rtol=1e-5, atol=1e-6)


@given(
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=3),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_random_axes_against_a_loop(shape, data, dtype):
    size = data.draw(st.integers(1, 3), label="size")
    in_axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="in_axis")
    out_axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="out_axis")
    full = list(shape)
    full.insert(in_axis % (len(shape) + 1), size)
    x = normal(*full, dtype=dtype)
    w = normal(shape[-1], dtype=dtype)

    def f(a, b):
        # broadcasting against an unbatched operand, a reduction kept as a dim, a reversal
        return (np.cos(a) * b - a.max(axis=0, initial=-np.inf, keepdims=True))[..., ::-1]

    got = mlc.vmap(f, in_axes=(in_axis, None), out_axes=out_axis)(x, w)
    assert_same(got, loop(f, (x, w), (in_axis, None), out_axis), rtol=1e-5, atol=1e-6)


# -- composition -----------------------------------------------------------------------------
def loss(w, x, y):
    return (np.tanh(x @ w) - y) ** 2


def test_vmap_of_grad_gives_per_example_gradients():
    w, x, y = normal(3), normal(6, 3), normal(6)
    got = mlc.vmap(mlc.grad(loss), in_axes=(None, 0, 0))(w, x, y)
    expected = np.stack([mlc.grad(loss)(w, x[i], y[i]) for i in range(6)])
    assert_same(got, expected)
    # with respect to the batched argument, batch axis 1
    got = mlc.vmap(mlc.grad(loss, argnums=1), in_axes=(None, 1, 0))(w, x.T, y)
    expected = np.stack([mlc.grad(loss, argnums=1)(w, x[i], y[i]) for i in range(6)])
    assert_same(got, expected)


def test_grad_of_a_function_that_calls_vmap():
    w, x, y = normal(3), normal(6, 3), normal(6)
    got = mlc.grad(lambda w: mlc.vmap(loss, in_axes=(None, 0, 0))(w, x, y).mean())(w)
    expected = sum(mlc.grad(loss)(w, x[i], y[i]) for i in range(6)) / 6
    assert_same(got, expected)
    # and jit of it
    jg = mlc.jit(mlc.grad(lambda w, x, y: mlc.vmap(loss, in_axes=(None, 0, 0))(w, x, y).mean()))
    assert_same(jg(w, x, y), expected)


def test_vmap_of_vmap():
    x, w = normal(2, 3, 4), normal(4, 5)
    f = lambda a, b: np.tanh(a @ b).sum()  # noqa: E731
    got = mlc.vmap(mlc.vmap(f, in_axes=(0, None)), in_axes=(0, None))(x, w)
    assert_same(got, np.array([[f(x[i, j], w) for j in range(3)] for i in range(2)]))
    # different axes at the two levels: outer over x's axis 2, inner over axis 0 of what is left
    xx = np.moveaxis(x, 2, 1)  # (2, 4, 3): outer over axis 2 (3), inner over axis 0 (2)
    w2 = RNG.normal(size=(4, 5))
    got = mlc.vmap(mlc.vmap(f, in_axes=(0, None)), in_axes=(2, None), out_axes=1)(xx, w2)
    expected = np.array([[f(xx[i, :, k], w2) for k in range(3)] for i in range(2)])
    assert_same(got, expected)


def test_jit_of_vmap_and_vmap_of_jit():
    x, w = normal(5, 3), normal(3, 2)
    f = lambda a, b: np.tanh(a @ b) * a.sum()  # noqa: E731
    expected = loop(f, (x, w), (0, None))
    assert_same(mlc.jit(mlc.vmap(f, in_axes=(0, None)))(x, w), expected)
    assert_same(mlc.vmap(mlc.jit(f), in_axes=(0, None))(x, w), expected)
    assert_same(mlc.jit(mlc.vmap(mlc.jit(f), in_axes=(0, None)))(x, w), expected)


def test_jacrev_and_jacfwd_match_loops_of_grad():
    x = normal(4)

    def f(a):
        return np.sin(a) * a.sum() + a[::-1] ** 2

    rows = np.stack([mlc.grad(lambda a, i=i: f(a)[i])(x) for i in range(4)])
    assert_same(mlc.jacrev(f)(x), rows)
    assert_same(mlc.jacfwd(f)(x), rows)
    # matrix input: block shape out.shape + in.shape
    m = normal(2, 3)
    g = lambda a: np.tanh(a) @ a.T  # noqa: E731
    blocks = np.stack(
        [[mlc.grad(lambda a, i=i, j=j: g(a)[i, j])(m) for j in range(2)] for i in range(2)]
    )
    assert_same(mlc.jacrev(g)(m), blocks)
    assert_same(mlc.jacfwd(g)(m), blocks)


def test_vmap_of_hessian_per_example():
    x = normal(3, 2)
    f = lambda a: (np.sin(a) * a[::-1]).sum()  # noqa: E731
    got = mlc.vmap(mlc.hessian(f))(x)
    assert_same(got, np.stack([mlc.hessian(f)(x[i]) for i in range(3)]))


def test_vmap_closing_over_a_traced_outer_value():
    x = normal(5, 3)

    def outer(s):
        return mlc.vmap(lambda r: np.sin(r * s).sum())(x).sum()

    s = 0.7
    expected = sum(mlc.grad(lambda s, r=x[i]: np.sin(r * s).sum())(s) for i in range(5))
    assert_same(mlc.grad(outer)(s), np.float64(expected))
    # a closed-over array, batched computation with the outer tracer inside
    v = normal(3)
    got = mlc.grad(lambda v: mlc.vmap(lambda r: (r * v) @ v)(x).sum())(v)
    expected = sum(mlc.grad(lambda v, r=x[i]: (r * v) @ v)(v) for i in range(5))
    assert_same(got, expected)


def test_vmap_inside_jit_with_a_closure():
    x, s = normal(5, 3), normal(3)

    @mlc.jit
    def f(x, s):
        return mlc.vmap(lambda r: np.exp(r - s).sum() * s)(x)

    assert_same(f(x, s), np.stack([np.exp(x[i] - s).sum() * s for i in range(5)]))
    g = f.lower(x, s).graph
    assert g.count("exp") == 1 and g.count("reduce_sum") == 1


def test_custom_vjp_rule_survives_grad_inside_vmap_only():
    # Documented limitation: vmap inlines a custom_vjp function, so grad(vmap(f)) differentiates
    # the function itself; vmap(grad(f)) keeps the user's rule.
    @mlc.custom_vjp
    def f(x):
        return np.sin(x)

    f.defvjp(lambda x: (np.sin(x), x), lambda res, ct: (ct * 100.0,))
    x = normal(4)
    assert_same(mlc.vmap(mlc.grad(f))(x), np.full(4, 100.0))
    assert_same(mlc.grad(lambda x: mlc.vmap(f)(x).sum())(x), np.cos(x))
    assert_same(mlc.vmap(f)(x), np.sin(x))


# -- no unrolling: the batched graph has one batched primitive per primitive -----------------
def mlp_layer(x, W, b):
    return np.tanh(x @ W + b)


def ops(graph):
    """The multiset of non-parameter primitives in a graph."""
    out = {}
    for n in graph.nodes():
        if n.op != "param":
            out[n.op] = out.get(n.op, 0) + 1
    return out


@pytest.mark.parametrize("stage", ["graph", "optimized"])
def test_mlp_layer_batches_into_the_same_primitives(stage):
    W, b = normal(3, 4), normal(4)
    per_example = getattr(mlc.jit(mlp_layer).lower(normal(3), W, b), stage)
    by_hand = getattr(mlc.jit(mlp_layer).lower(normal(7, 3), W, b), stage)  # batched by hand
    vf = mlc.jit(mlc.vmap(mlp_layer, in_axes=(0, None, None)))
    batched = getattr(vf.lower(normal(7, 3), W, b), stage)
    assert ops(batched) == ops(by_hand)
    for op in ("dot_general", "add", "tanh"):
        assert batched.count(op) == per_example.count(op) == 1
    # the only extra node is the broadcast of the unbatched bias (a broadcast never materializes)
    extra = len(batched.nodes()) - len(per_example.nodes())
    assert extra <= 1 and batched.count("broadcast_in_dim") == extra
    # the graph does not grow with the batch size: no loop was unrolled
    big = getattr(vf.lower(normal(50, 3), W, b), stage)
    assert ops(big) == ops(batched)
    x = normal(7, 3)
    assert_same(vf(x, W, b), loop(mlp_layer, (x, W, b), (0, None, None)))


@pytest.mark.parametrize(
    "in_axes, shapes",
    [((0, 0), [(5, 3, 4), (5, 4, 2)]), ((0, None), [(5, 3, 4), (4, 2)]), ((None, 0), [(3, 4), (5, 4, 2)]),
     ((1, 2), [(3, 5, 4), (4, 2, 5)])],
)  # fmt: skip
def test_vmap_of_matmul_is_one_dot_general(in_axes, shapes):
    a, b = (normal(*s) for s in shapes)
    f = mlc.vmap(lambda x, y: x @ y, in_axes=in_axes)
    g = mlc.trace(f, a, b)
    # one dot_general; a transpose only where the result's batch axis is not 0 (out_axes=0)
    assert g.count("dot_general") == 1 and len(ops(g)) <= 2, ops(g)
    assert g.count("transpose") == 0 or g.outputs[0].op == "transpose"
    assert_same(f(a, b), loop(lambda x, y: x @ y, (a, b), in_axes))


def test_vmap_of_a_vector_dot_is_one_dot_general():
    a, b = normal(6, 3), normal(6, 3)
    g = mlc.trace(mlc.vmap(np.dot), a, b)
    assert g.count("dot_general") == 1 and g.count("transpose") == 0
    (n,) = [n for n in g.nodes() if n.op == "dot_general"]
    assert n.attr("batch") == ((0,), (0,)) and n.attr("contracting") == ((1,), (1,))
    assert_same(mlc.vmap(np.dot)(a, b), (a * b).sum(axis=1))


@pytest.mark.parametrize(
    "in_axis, axis, expected_axes",
    [(0, 0, (1,)), (0, 1, (2,)), (1, 0, (0,)), (1, 1, (2,)), (2, 0, (0,)), (2, (0, 1), (0, 1))],
)
def test_vmap_of_a_reduction_reduces_the_right_axis(in_axis, axis, expected_axes):
    x = normal(3, 4, 5)
    for prim, fn in (("reduce_sum", np.sum), ("reduce_max", np.max)):
        f = mlc.vmap(lambda a, fn=fn: fn(a, axis=axis), in_axes=in_axis)
        g = mlc.trace(f, x)
        (n,) = [n for n in g.nodes() if n.op == prim]
        assert n.attr("axes") == expected_axes
        # no transpose, except one final move of the result's batch axis to out_axes=0
        assert g.count("transpose") == 0 or (
            g.count("transpose") == 1 and g.outputs[0].op == "transpose"
        )
        assert_same(f(x), loop(lambda a, fn=fn: fn(a, axis=axis), (x,), in_axis))
    f = mlc.vmap(lambda a: np.argmax(a, axis=-1), in_axes=in_axis)
    assert_same(f(x), loop(lambda a: np.argmax(a, axis=-1), (x,), in_axis))
    assert mlc.trace(f, x).count("argmax") == 1


INDEXING = {
    "getitem": (lambda a, i: a[i], (5, 4, 3), lambda: RNG.integers(-4, 4, size=5)),
    "take": (lambda a, i: np.take(a, i, axis=1), (5, 4, 3), lambda: RNG.integers(0, 3, size=5)),
    "take_along_axis": (
        lambda a, i: np.take_along_axis(a, i, axis=0),
        (5, 4, 3),
        lambda: RNG.integers(0, 4, size=(5, 2, 3)),
    ),
    "fancy": (lambda a, i: a[i, 1:], (5, 4, 3), lambda: RNG.integers(0, 4, size=(5, 2, 2))),
    "fancy2": (lambda a, i: a[i, i], (5, 4, 4), lambda: RNG.integers(0, 4, size=(5, 3))),
}


@pytest.mark.parametrize("name", sorted(INDEXING))
@pytest.mark.parametrize("x_batched", [True, False])
def test_vmap_of_indexing_with_a_batched_index_is_one_gather(name, x_batched):
    f, shape, make = INDEXING[name]
    x, i = normal(*shape), make()
    if not x_batched:
        x = x[0]
    in_axes = (0 if x_batched else None, 0)
    vf = mlc.vmap(f, in_axes=in_axes)
    if x_batched:  # an unbatched NumPy array cannot be indexed by a tracer outside jit
        assert_same(vf(x, i), loop(f, (x, i), in_axes))
    assert_same(mlc.jit(vf)(x, i), loop(f, (x, i), in_axes))
    per_example = mlc.trace(f, x[0] if x_batched else x, i[0])
    batched = mlc.trace(vf, x, i)
    assert batched.count("gather") == per_example.count("gather") == 1
    # no loop: the same primitives for a larger batch (the index column is one iota)
    bigger = mlc.trace(vf, np.concatenate([x, x]) if x_batched else x, np.concatenate([i, i]))
    assert ops(bigger) == ops(batched)


@pytest.mark.parametrize("x_batched", [True, False])
def test_vmap_of_at_add_is_one_scatter_add(x_batched):
    x, i, u = normal(5, 4, 3), RNG.integers(0, 4, size=(5, 2)), normal(5, 2, 3)
    if not x_batched:
        x = x[0]

    def f(a, idx, upd):
        return a.at[idx].add(upd)  # a is a tracer: batched, or unbatched inside jit

    def ref(a, idx, upd):
        out = a.copy()
        np.add.at(out, idx, upd)
        return out

    in_axes = (0 if x_batched else None, 0, 0)
    vf = mlc.vmap(f, in_axes=in_axes)
    assert_same(mlc.jit(vf)(x, i, u), loop(ref, (x, i, u), in_axes))
    if x_batched:
        assert_same(vf(x, i, u), loop(ref, (x, i, u), in_axes))
    g = mlc.trace(vf, x, i, u)
    assert g.count("scatter_add") == 1
    per_example = mlc.trace(f, x[0] if x_batched else x, i[0], u[0])
    assert g.count("gather") == per_example.count("gather")
    # gradient of a gather per example is a scatter_add per batch, still one primitive
    gg = mlc.trace(mlc.vmap(mlc.grad(lambda a, j: a[j].sum()), in_axes=(0, 0)), normal(5, 4, 3), i)
    assert gg.count("scatter_add") == 1 and gg.count("gather") <= 1


def test_batch_axes_are_not_moved_needlessly():
    x = normal(3, 6)
    f = mlc.vmap(lambda a: np.sin(a) * 2, in_axes=1, out_axes=1)
    g = mlc.trace(f, x)
    assert g.count("transpose") == 0
    assert_same(f(x), np.sin(x) * 2)
    # two operands batched on the same non-leading axis: still no transpose
    f2 = mlc.vmap(lambda a, b: np.exp(a - b).sum(axis=0), in_axes=(1, 1), out_axes=0)
    g2 = mlc.trace(f2, x, x[::-1])
    assert g2.count("transpose") == 0
    assert_same(f2(x, x[::-1]), loop(lambda a, b: np.exp(a - b).sum(axis=0), (x, x[::-1]), 1))
    # the batch has to move when out_axes differs from where it lives: exactly one transpose
    g3 = mlc.trace(mlc.vmap(lambda a: np.sin(a) * 2, in_axes=1, out_axes=0), x)
    assert g3.count("transpose") == 1

    # a batched scalar broadcast against a batched array: the scalar's batch axis leads
    def layer_times_sum(a, b):
        return np.tanh(a @ b) * a.sum()

    f5 = mlc.vmap(layer_times_sum, in_axes=(0, None))
    a5, b5 = normal(5, 3), normal(3, 2)
    assert mlc.trace(f5, a5, b5).count("transpose") == 0
    assert_same(f5(a5, b5), loop(layer_times_sum, (a5, b5), (0, None)))
    # a matmul against a batch on axis 1 needs no transpose either (a free dim of dot_general)
    w = normal(6, 2)
    g4 = mlc.trace(mlc.vmap(lambda a: w.T @ a, in_axes=1, out_axes=1), normal(6, 4))
    assert g4.count("dot_general") == 1
