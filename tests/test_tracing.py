"""The tracer: metadata, pytrees, the required mlc.numpy surface, NumPy protocol routing."""

import numpy as np
import pytest

import mlc
import mlc.numpy as mnp
from mlc import pytree

# The mlc.numpy functions the foundation issue requires (all must exist and be routed from numpy).
REQUIRED = """
add subtract multiply divide true_divide floor_divide mod remainder power float_power negative
positive abs absolute fabs sign reciprocal square sqrt cbrt exp exp2 expm1 log log2 log10 log1p
sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh arcsinh arccosh arctanh deg2rad
rad2deg degrees radians sinc floor ceil trunc rint round maximum minimum fmax fmin clip logaddexp
logaddexp2 where select nan_to_num isnan isinf isfinite heaviside equal not_equal less less_equal
greater greater_equal logical_and logical_or logical_not logical_xor
sum mean prod max min amax amin argmax argmin var std all any cumsum cumprod diff trace
dot matmul vdot inner outer tensordot einsum kron cross
reshape ravel transpose swapaxes moveaxis rollaxis squeeze expand_dims broadcast_to atleast_1d
atleast_2d atleast_3d flip flipud fliplr rot90 roll repeat tile concatenate stack vstack hstack
dstack column_stack append pad split array_split vsplit hsplit dsplit diag diagonal tril triu sort
argsort r_ c_
array asarray zeros ones full empty zeros_like ones_like full_like empty_like eye identity arange
linspace
float32 float64 int32 int64 bool_ pi e inf nan newaxis
""".split()


@pytest.mark.parametrize("name", REQUIRED)
def test_required_name_exists(name):
    assert name in mnp.__all__, f"mlc.numpy.{name} is missing"
    assert getattr(mnp, name) is not None or name == "newaxis"


def test_docs_list_every_function():
    import pathlib

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "numpy.md").read_text()
    missing = [n for n in mnp.__all__ if f"`{n}`" not in doc]
    assert not missing, f"docs/numpy.md does not list {missing}"


def test_tracer_metadata():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, size=x.size, dtype=x.dtype, n=len(x))
        seen["T"] = x.T.shape
        return x

    mlc.jit(f)(np.ones((2, 3, 4), np.float32))
    assert seen == dict(shape=(2, 3, 4), ndim=3, size=24, dtype=np.float32, n=2, T=(4, 3, 2))


def test_len_of_0d_and_iteration():
    with pytest.raises(TypeError, match="unsized"):
        mlc.jit(lambda x: len(x))(np.float64(1.0))
    rows = mlc.jit(lambda x: [r * 2 for r in x])(np.arange(6.0).reshape(3, 2))
    assert len(rows) == 3 and np.array_equal(rows[2], [8.0, 10.0])


def test_pytree_roundtrip():
    tree = {"a": (1, [2, None, {"z": 3, "y": 4}]), "b": []}
    leaves, td = pytree.flatten(tree)
    assert leaves == [1, 2, 4, 3]
    assert pytree.unflatten(td, leaves) == tree
    assert pytree.tree_map(lambda v: v * 10, tree)["a"][1][2] == {"z": 30, "y": 40}
    assert td.num_leaves == 4


def test_numpy_scalars_and_weak_scalars_follow_nep50():
    x32 = np.ones(3, np.float32)
    i32 = np.ones(3, np.int32)
    cases = [
        (lambda m, x: x * 2.0, x32),
        (lambda m, x: x * np.float64(2.0), x32),
        (lambda m, x: x + 1, i32),
        (lambda m, x: x + 1.5, i32),
        (lambda m, x: x / 2, i32),
        (lambda m, x: 2**x, x32),
        (lambda m, x: x > 1.5, i32),
        (lambda m, x: m.sqrt(x), i32),
    ]
    for f, x in cases:
        expected = f(np, x)
        assert mlc.jit(lambda v, f=f: f(np, v))(x).dtype == expected.dtype
        assert np.asarray(f(mnp, x)).dtype == expected.dtype


def test_location_overrides_are_per_thread():
    """Two threads rewriting at once: each node gets its own thread's location, and the hook
    is back to the tracer's afterwards (a shared global would be left set to one of them)."""
    import threading

    from mlc.ir import graph as G
    from mlc.ir import primitives as P
    from mlc.ir.passes.rewrite import located

    barrier = threading.Barrier(2)
    got = {}

    def work(name):
        loc = G.SourceLoc(f"{name}.py", 1)
        size = {"a": 5, "b": 6}[name]  # different nodes: hash-consing would share equal ones
        x = P.param(index=0, shape=(size,), dtype="float32")
        with located(loc):
            barrier.wait()  # both inside their block
            n = P.neg(P.exp(P.sin(x)))
            barrier.wait()
        got[name] = n.loc

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": G.SourceLoc("a.py", 1), "b": G.SourceLoc("b.py", 1)}
    assert G._location() == G.location_hook()  # no override left behind
    x = P.param(index=0, shape=(3,), dtype="float32")
    assert P.cos(x).loc is not None and P.cos(x).loc.file.endswith("test_tracing.py")
