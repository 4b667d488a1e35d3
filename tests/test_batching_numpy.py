"""The vmap sweep over every ``mlc.numpy`` function (tests/numpy_cases.py has the cases).

For every case, through ``mlc.numpy`` and through plain ``numpy`` on tracers, ``mlc.vmap(f,
in_axes, out_axes)`` equals NumPy's own ``f`` looped over the examples and stacked along the
out axis: random choices of which arguments are batched (``None`` for the others), random
in_axes and out_axes (negative ones included), batches of 3, 1 and 0 (for 0 the loop has
nothing to stack: the expected shape and dtype come from one example), nested vmap, and every
input dtype NumPy accepts for the function (float64, float32, int64, int32, bool). Values and
dtypes must match.
"""

import numpy as np
import pytest
from numpy_cases import all_cases, cast

import mlc
import mlc.numpy as mnp
from mlc import pytree

MODULES = {"mnp": mnp, "np": np}
TOL = {"float64": (1e-10, 1e-12), "float32": (2e-5, 2e-6)}


def params(cases):
    return [
        pytest.param(c, mod, id=f"{c.id}-{name}")
        for c in cases
        for name, mod in MODULES.items()
        if mod is mnp or c.numpy_dispatch is None
    ]


CASES = params(all_cases())


# -- helpers --------------------------------------------------------------------------------
def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in pytree.flatten(tree)[0]]


def like(tree, values):
    return pytree.unflatten(pytree.flatten(tree)[1], list(values))


def reference(case, args):
    """NumPy's own result for one example (raises what NumPy raises)."""
    with np.errstate(all="ignore"):
        return case.fn(np, *args)


def draws(case, seed, n, dtype, special=False):
    """``n`` independent examples (each a tuple of inputs) cast to ``dtype``; with ``special``,
    about a quarter of the entries are NaN, inf or -inf."""
    out = []
    for b in range(n):
        rng = np.random.RandomState(seed * 1000 + b)
        xs = case.gen(rng)
        if special:
            xs = tuple(with_specials(rng, x) for x in xs)
        out.append(tuple(cast(x, dtype) for x in xs))
    return out


def with_specials(rng, x):
    x = x.copy()
    flat = x.reshape(-1)
    pick = rng.uniform(size=flat.shape)
    flat[pick < 0.1] = np.nan
    flat[(pick >= 0.1) & (pick < 0.18)] = np.inf
    flat[(pick >= 0.18) & (pick < 0.25)] = -np.inf
    return x


def batch_arg(values, axis, size, one):
    """The values of one argument over the batch, stacked along ``axis`` (``one`` gives the
    shape and dtype when the batch is empty)."""
    if axis is None:
        return one
    if size == 0:
        shape = list(np.shape(one))
        shape.insert(axis, 0)
        return np.empty(shape, np.asarray(one).dtype)
    return np.stack(values, axis=axis)


def stack_outputs(outs, axes, one):
    """The examples' outputs (pytrees) stacked leaf by leaf along ``axes`` (one per leaf)."""
    ones = leaves(one)
    result = []
    for k, (e, ax) in enumerate(zip(ones, axes)):
        if ax is None:
            result.append(e)
            continue
        ax = ax % (e.ndim + 1)
        if not outs:
            shape = list(e.shape)
            shape.insert(ax, 0)
            result.append(np.empty(shape, e.dtype))
        else:
            result.append(np.stack([leaves(o)[k] for o in outs], axis=ax))
    return like(one, result)


def assert_same(got, expected, dtype, values, what):
    g, e = leaves(got), leaves(expected)
    assert len(g) == len(e), f"{what}: {len(g)} results, NumPy has {len(e)}"
    rtol, atol = TOL.get(str(dtype), (1e-10, 1e-12))
    for a, b in zip(g, e):
        assert a.shape == b.shape, f"{what}: shape {a.shape} != NumPy's {b.shape}"
        assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != NumPy's {b.dtype}"
        if not values:
            continue
        if b.dtype.kind == "f":
            r, t = TOL.get(str(b.dtype), (rtol, atol))
            np.testing.assert_allclose(a, b, rtol=r, atol=t, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(a, b, err_msg=what)


def random_in_axes(rng, example, pattern=None, keep=()):
    """Per argument: ``None`` (not batched) or an axis of the batched array, positive or
    negative; at least one argument is batched. ``pattern`` 0 batches every argument, 1 only
    the last one (the others reach ``f`` as concrete arrays), anything else a random subset.
    Arguments in ``keep`` are always batched."""
    n = len(example)
    if pattern == 0:
        batched = np.ones(n, bool)
    elif pattern == 1:
        batched = np.arange(n) == n - 1
    else:
        batched = rng.uniform(size=n) < 0.6
        batched[rng.randint(n)] = True
    batched[list(keep)] = True
    axes = []
    for x, b in zip(example, batched):
        if not b:
            axes.append(None)
            continue
        nd = np.ndim(x) + 1
        axes.append(int(rng.randint(-nd, nd)))
    return axes


def keep(case, mod):
    """The arguments plain NumPy code needs traced (tests/numpy_cases.py, ``numpy_traced``)."""
    return case.numpy_traced if mod is np else ()


def positive(axis, nd):
    return None if axis is None else axis % nd


def random_out_axes(rng, one):
    """Per output leaf an axis of the batched result, and the spec vmap takes (an int for one
    array, else the structure of the output)."""
    axes = [int(rng.randint(-(e.ndim + 1), e.ndim + 1)) for e in leaves(one)]
    if pytree.flatten(one)[1].kind == "leaf":
        return axes, axes[0]
    return axes, like(one, axes)


SUPPORTED = {np.dtype(d) for d in ("bool", "int32", "int64", "float32", "float64")}


def accepts(case, dtype) -> bool:
    """NumPy decides which dtypes a function takes: those it raises on are skipped, and so are
    those whose NumPy result has a dtype mlc does not support (``sin(bool)`` is float16)."""
    try:
        out = reference(case, draws(case, 0, 1, dtype)[0])
    except (TypeError, ValueError):
        return False
    return all(x.dtype in SUPPORTED for x in leaves(out))


def check_vmap(case, mod, dtype, seed, size, special=False, pattern=None):
    rng = np.random.RandomState(seed)
    ex = draws(case, seed, max(size, 1), dtype, special)
    in_axes = random_in_axes(rng, ex[0], pattern, keep(case, mod))
    try:
        one = reference(case, ex[0])
    except (TypeError, ValueError):  # NumPy refuses the example (int ** negative int)
        return False
    out_axes, out_spec = random_out_axes(rng, one)
    args = []
    for j, a in enumerate(in_axes):
        ax = positive(a, np.ndim(ex[0][j]) + 1)
        args.append(batch_arg([e[j] for e in ex[:size]], ax, size, ex[0][j]))
    per_example = [
        tuple(ex[b][j] if a is not None else ex[0][j] for j, a in enumerate(in_axes))
        for b in range(size)
    ]
    try:
        outs = [reference(case, e) for e in per_example]
    except (TypeError, ValueError):
        return False
    expected = stack_outputs(outs, out_axes, one)
    with np.errstate(all="ignore"):
        got = mlc.vmap(lambda *a: case.fn(mod, *a), tuple(in_axes), out_spec)(*args)
    what = f"{case.id} {dtype} size={size} in_axes={in_axes} out_axes={out_spec}"
    assert_same(got, expected, dtype, case.values, what)
    return True


# -- the sweep ------------------------------------------------------------------------------
@pytest.mark.parametrize("case, mod", CASES)
def test_vmap_matches_loop(case, mod):
    dtype = case.dtypes[0]
    for seed in range(3):
        for size in (3, 1, 0):
            assert check_vmap(case, mod, dtype, seed * 10 + size, size, pattern=seed)


@pytest.mark.parametrize("case, mod", params([c for c in all_cases() if len(c.dtypes) > 1]))
def test_vmap_other_dtypes(case, mod):
    tried = 0
    for k, dtype in enumerate(case.dtypes[1:]):
        if not accepts(case, dtype):
            continue
        tried += check_vmap(case, mod, dtype, 100 + k, 3, pattern=k % 3)
    if not tried:
        pytest.skip(f"NumPy refuses the other dtypes of {case.id} (or returns float16)")


SPECIALS = [c for c in all_cases() if "float64" in c.dtypes and c.specials]


@pytest.mark.parametrize("case, mod", params(SPECIALS))
def test_vmap_special_values(case, mod):
    """NaN, inf and -inf inputs give what NumPy's loop gives."""
    for dtype in ("float64", "float32"):
        assert check_vmap(case, mod, dtype, 200, 3, special=True)


@pytest.mark.parametrize("case, mod", CASES)
def test_nested_vmap(case, mod):
    """``vmap(vmap(f, in1, out1), in2, out2)`` against a double loop (outer 3, inner 2)."""
    rng = np.random.RandomState(7)
    dtype = case.dtypes[0]
    n2, n1 = 3, 2
    grid = [draws(case, 50 + b2, n1, dtype) for b2 in range(n2)]
    base = grid[0][0]
    in1 = random_in_axes(rng, base, keep=keep(case, mod))
    # the outer level sees each argument with the inner batch axis (if any) added
    outer_example = [np.empty((1,) * (np.ndim(x) + (a is not None))) for x, a in zip(base, in1)]
    in2 = random_in_axes(rng, outer_example, keep=keep(case, mod))

    def example(b2, b1):
        return tuple(
            grid[b2 if a2 is not None else 0][b1 if a1 is not None else 0][j]
            for j, (a1, a2) in enumerate(zip(in1, in2))
        )

    one = reference(case, base)
    out1, spec1 = random_out_axes(rng, one)
    inner_one = stack_outputs([one] * n1, out1, one)
    out2, spec2 = random_out_axes(rng, inner_one)
    args = []
    for j, (a1, a2) in enumerate(zip(in1, in2)):
        nd = np.ndim(base[j])
        rows = []
        for b2 in range(n2 if a2 is not None else 1):
            vals = [example(b2, b1)[j] for b1 in range(n1)]
            rows.append(batch_arg(vals, positive(a1, nd + 1), n1, vals[0]))
        args.append(batch_arg(rows, positive(a2, np.ndim(rows[0]) + 1), n2, rows[0]))
    inner = [
        stack_outputs([reference(case, example(b2, b1)) for b1 in range(n1)], out1, one)
        for b2 in range(n2)
    ]
    expected = stack_outputs(inner, out2, inner[0])

    def f(*a):
        return case.fn(mod, *a)

    with np.errstate(all="ignore"):
        got = mlc.vmap(mlc.vmap(f, tuple(in1), spec1), tuple(in2), spec2)(*args)
    what = f"{case.id} in1={in1} out1={spec1} in2={in2} out2={spec2}"
    assert_same(got, expected, dtype, case.values, what)


DIFF = [c for c in all_cases() if c.differentiable and "float64" in c.dtypes]


@pytest.mark.parametrize("case, mod", params(DIFF))
def test_vmap_of_grad(case, mod):
    """``vmap(grad(s))`` for the scalar ``s = sum(f(x) * w)`` against a loop of ``grad``; and
    ``grad`` of a vmapped function against the sum of per-example gradients."""
    rng = np.random.RandomState(9)
    size = 3
    ex = draws(case, 9, size, "float64")
    ws = [rng.normal(size=e.shape) for e in leaves(reference(case, ex[0]))]
    argnums = tuple(range(case.arity))

    def s(*a):
        return sum(mnp.sum(y * w) for y, w in zip(pytree.flatten(case.fn(mod, *a))[0], ws))

    in_axes = [int(rng.randint(-(np.ndim(x) + 1), np.ndim(x) + 1)) for x in ex[0]]
    args = [np.stack([e[j] for e in ex], axis=a % (np.ndim(ex[0][j]) + 1))
            for j, a in enumerate(in_axes)]  # fmt: skip
    grad = mlc.grad(s, argnums=argnums)
    loop = [grad(*e) for e in ex]
    got = mlc.vmap(grad, tuple(in_axes), 0)(*args)
    for j in argnums:
        np.testing.assert_allclose(got[j], np.stack([g[j] for g in loop]), rtol=1e-10,
                                   atol=1e-12)  # fmt: skip

    def total(*a):  # sum over the batch of s
        return mnp.sum(mlc.vmap(s, tuple(in_axes))(*a))

    summed = mlc.grad(total, argnums=argnums)(*args)
    for j, a in enumerate(in_axes):
        expected = np.stack([g[j] for g in loop], axis=a % (np.ndim(ex[0][j]) + 1))
        np.testing.assert_allclose(summed[j], expected, rtol=1e-10, atol=1e-12)
