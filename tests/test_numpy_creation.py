"""Array creation against NumPy: values, dtypes and shapes, inside and outside mlc.jit, and the
errors NumPy raises."""

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from mlc.errors import ConcretizationError
from tests.conformance import arrays, assert_same, check, check_raises, shapes

DTYPES = [None, bool, int, float, np.int32, np.int64, np.float32, np.float64, "float32", "i8"]
SHAPES = [(), 0, 3, (2, 0), (2, 3), [1, 2, 1], np.int64(4)]


def exact(got, expected, what=""):
    """Bit-for-bit equal: same dtype, shape and values."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for g, e in zip(got, expected):
            exact(g, e, what)
        return
    assert_same(got, expected, what=what)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), err_msg=what)


# -- filled arrays --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
def test_zeros_ones_empty_full(shape, dtype):
    check(lambda m: m.zeros(shape, dtype=dtype))
    check(lambda m: m.ones(shape, dtype=dtype))
    assert_same(mnp.empty(shape, dtype), np.zeros(shape, dtype))
    assert_same(mlc.jit(lambda: mnp.empty(shape, dtype))(), np.zeros(shape, dtype))
    check(lambda m: m.full(shape, 7, dtype=dtype))
    check(lambda m: m.full(shape, -2.5, dtype))


def test_results_are_arrays():
    for out in (mnp.zeros(()), mnp.full((), 3), mnp.array(5), mnp.asarray(2.0), mnp.eye(1)[0, 0]):
        assert isinstance(out, (np.ndarray, np.generic))
    assert isinstance(mnp.zeros(()), np.ndarray) and mnp.array(5).dtype == np.int64


@given(st.data())
def test_full_fill_values(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32, np.bool_]))
    fill_shape = shape[data.draw(st.integers(0, len(shape))) :]
    fill = data.draw(arrays(dtype, fill_shape, special=True))
    out_dtype = data.draw(st.sampled_from([None, np.float64, np.int64]))
    # np.full(shape, tracer) cannot reach mlc (NumPy copies into its own array): mnp only.
    check(lambda m, v: m.full(shape, v, dtype=out_dtype), fill, jit=False)
    expected = np.full(shape, fill, dtype=out_dtype)
    assert_same(mlc.jit(lambda v: mnp.full(shape, v, dtype=out_dtype))(fill), expected)


@given(st.data())
def test_like_functions(data):
    shape = data.draw(shapes())
    x = data.draw(arrays(data.draw(st.sampled_from([np.float32, np.int32, np.bool_])), shape))
    dtype = data.draw(st.sampled_from([None, np.float64, np.int64, bool]))
    new_shape = data.draw(st.one_of(st.none(), shapes(max_dims=2), st.integers(0, 3)))
    check(lambda m, x: m.zeros_like(x, dtype=dtype, shape=new_shape), x)
    check(lambda m, x: m.ones_like(x, dtype=dtype, shape=new_shape), x)
    check(lambda m, x: m.full_like(x, 3, dtype=dtype, shape=new_shape), x)
    check(lambda m, x: m.full_like(x, -1.5), x)
    expected = np.zeros_like(x, dtype=dtype, shape=new_shape)
    assert_same(mnp.empty_like(x, dtype=dtype, shape=new_shape), expected)
    assert_same(mlc.jit(lambda x: np.empty_like(x, dtype=dtype, shape=new_shape))(x), expected)


def test_like_of_python_scalars_and_lists():
    check(lambda m: m.zeros_like(5))
    check(lambda m: m.ones_like([1.0, 2.0]))
    check(lambda m: m.full_like([[1, 2]], 2.7))
    check(lambda m, x: m.full_like(x, np.array([1.0, 2.0, 3.0])), np.zeros((2, 3), np.float32))


def test_fill_errors():
    check_raises(lambda m: m.zeros(-1))
    check_raises(lambda m: m.ones((2, -3)))
    check_raises(lambda m: m.zeros(2.0))
    check_raises(lambda m: m.full((2, 3), [1.0, 2.0]))
    with pytest.raises(ValueError, match="negative dimensions are not allowed"):
        mnp.zeros(-1)
    with pytest.raises(TypeError, match="uint8"):
        mnp.zeros(3, np.uint8)
    with pytest.raises(TypeError, match="complex128"):
        mnp.ones(3, complex)
    with pytest.raises(ConcretizationError, match="static"):
        mlc.jit(lambda n: mnp.zeros(n))(3)


# -- array, asarray, copy, astype ---------------------------------------------------------
@pytest.mark.parametrize(
    "obj",
    [
        5,
        2.5,
        True,
        [],
        [1, 2, 3],
        [1, 2.0],
        [True, 2],
        [[1, 2], [3, 4]],
        ((1.5,), (2.5,)),
        np.arange(6, dtype=np.int32).reshape(2, 3),
        np.float32(1.5),
        [np.float32(1), 1.0],
        [np.float32(1), np.float32(2)],
        [np.int32(1), 2],
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", [None, np.float32, np.int64, bool])
def test_array_from_concrete(obj, dtype):
    for name in ("array", "asarray", "asanyarray", "ascontiguousarray"):
        exact(getattr(mnp, name)(obj, dtype=dtype), getattr(np, name)(obj, dtype=dtype), name)
        exact(
            mlc.jit(functools.partial(getattr(mnp, name), obj, dtype=dtype))(),
            getattr(np, name)(obj, dtype=dtype),
        )
    exact(mnp.array(obj, ndmin=3), np.array(obj, ndmin=3))


def test_array_stacks_tracers_with_numpy_dtype_rules():
    a32 = np.asarray(1.5, np.float32)
    b32 = np.asarray([2.5, 3.5], np.float32)
    i32 = np.asarray(4, np.int32)
    cases = [
        (lambda m, a, b, i: m.array([a, a]), "float32 scalars stay float32"),
        (lambda m, a, b, i: m.array([a, 1.0]), "a Python float is float64"),
        (lambda m, a, b, i: m.array([a, 2]), "a Python int is int64"),
        (lambda m, a, b, i: m.array([i, 2]), "int32 with a Python int is int64"),
        (lambda m, a, b, i: m.array([[a, i], b]), "nested"),
        (lambda m, a, b, i: m.array([b, b, [0, 1]]), "arrays and a list"),
        (lambda m, a, b, i: m.array([i, True]), "bool and int"),
        (lambda m, a, b, i: m.array([a, i], dtype=np.int32), "dtype="),
        (lambda m, a, b, i: m.array((b,), ndmin=3), "ndmin"),
        (lambda m, a, b, i: m.asarray([[a]], dtype=float), "asarray"),
        (lambda m, a, b, i: m.array(b, dtype=np.int64), "a tracer itself"),
    ]
    for f, what in cases:
        expected = f(np, a32, b32, i32)
        assert_same(f(mnp, a32, b32, i32), expected, what=what)
        got = mlc.jit(functools.partial(f, mnp))(a32, b32, i32)
        assert_same(got, expected, what=what)
    # Python scalars passed to jit are traced as int64/float64, as np.array would make them.
    assert_same(mlc.jit(lambda x, y: mnp.array([x, y]))(1, 2.5), np.array([1, 2.5]))


def test_ragged_lists():
    with pytest.raises(ValueError, match=r"inhomogeneous shape after 1 dimensions") as e:
        mlc.jit(lambda x: mnp.array([x, np.zeros(3)]))(np.zeros(2))
    assert "The detected shape was (2,) + inhomogeneous part." in str(e.value)
    with pytest.raises(ValueError, match=r"after 2 dimensions. The detected shape was \(2, 2\)"):
        mlc.jit(lambda x: mnp.array([[x, x], [x, [x, x]]]))(np.float64(1.0))
    check_raises(lambda m: m.array([[1, 2], [3]]))


def test_array_rejects_unsupported():
    with pytest.raises(TypeError, match="uint8"):
        mnp.array([1, 2], dtype=np.uint8)
    with pytest.raises(TypeError, match="float16"):
        mnp.asarray(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="complex"):
        mnp.array([1 + 2j])


@given(st.data())
def test_astype_and_copy(data):
    shape = data.draw(shapes())
    src = data.draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_]))
    x = data.draw(arrays(src, shape, lo=-100, hi=100))
    dst = data.draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_]))
    check(lambda m, x: m.astype(x, dst), x)
    check(lambda m, x: x.astype(dst) if m is np else m.astype(x, dst), x)
    assert_same(mlc.jit(lambda x: x.astype(dst))(x), x.astype(dst))
    check(lambda m, x: m.copy(x), x)
    assert_same(mlc.jit(lambda x: x.copy())(x), x)


def _astype_method(x, dtype):
    return x.astype(dtype)


def test_astype_unsupported_dtypes():
    x = np.ones(3)
    for dtype, name in [(np.uint8, "uint8"), (np.complex64, "complex64"), (np.float16, "float16")]:
        with pytest.raises(TypeError, match=name):
            mnp.astype(x, dtype)
        with pytest.raises(TypeError, match=name):
            mlc.jit(functools.partial(_astype_method, dtype=dtype))(x)


# -- eye, identity, tri ---------------------------------------------------------------------
@pytest.mark.parametrize("N, M", [(0, None), (1, None), (3, None), (3, 5), (4, 2), (2, 0)])
@pytest.mark.parametrize("k", [0, 1, -1, 3, -7])
@pytest.mark.parametrize("dtype", [float, np.float32, np.int32, bool])
def test_eye_and_tri(N, M, k, dtype):
    check(lambda m: m.eye(N, M, k=k, dtype=dtype))
    check(lambda m: m.tri(N, M, k, dtype=dtype))
    check(lambda m: m.identity(N, dtype=dtype))


def test_eye_defaults_and_errors():
    check(lambda m: m.eye(3))
    check(lambda m: m.identity(2))
    check(lambda m: m.tri(3))
    check_raises(lambda m: m.eye(-1))
    check_raises(lambda m: m.eye(2, -2))
    check(lambda m: m.tri(2, -2))
    check(lambda m: m.tri(-1))


# -- arange ---------------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-30, 30),
    st.floats(-20, 20).map(lambda v: round(v, 2)),
    st.floats(-20, 20, width=32).map(np.float32),
)


@given(
    NUMBERS, NUMBERS, NUMBERS, st.sampled_from([None, np.float32, np.float64, np.int32, np.int64])
)
def test_arange(start, stop, step, dtype):
    """Values, length and dtype are NumPy's, bit for bit."""
    if step == 0 or abs((stop - start) / step) > 1000:
        return
    exact(mnp.arange(start, stop, step, dtype=dtype), np.arange(start, stop, step, dtype=dtype))
    exact(
        mlc.jit(lambda: mnp.arange(start, stop, step, dtype))(), np.arange(start, stop, step, dtype)
    )
    exact(mnp.arange(stop), np.arange(stop))
    exact(mnp.arange(start, stop), np.arange(start, stop))


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((5,), {}),
        ((0, 1, 0.1), {}),
        ((0, 1, 0.1), {"dtype": np.float32}),
        ((0.5, 5), {"dtype": int}),
        ((10, 0, -3), {}),
        ((2,), {"dtype": bool}),
        ((1, 3), {"dtype": bool}),
        ((np.float32(0), np.float32(1), np.float32(0.1)), {}),
        ((np.int32(2),), {}),
        ((True, 3), {}),
        ((1e9, 1e9 + 5), {}),
        ((0, 5), {"step": 2}),
        ((3, None, 2), {}),
        ((), {"start": 1, "stop": 4}),
        ((-5,), {}),
    ],
    ids=repr,
)
def test_arange_cases(args, kwargs):
    exact(mnp.arange(*args, **kwargs), np.arange(*args, **kwargs))
    check(lambda m: m.arange(*args, **kwargs))


def test_arange_errors():
    check_raises(lambda m: m.arange(0, 5, 0))
    check_raises(lambda m: m.arange(0, np.inf))
    check_raises(lambda m: m.arange(0, np.nan))
    check_raises(lambda m: m.arange(3, dtype=bool))
    with pytest.raises(TypeError, match="requires stop"):
        mnp.arange()
    with pytest.raises(ConcretizationError, match="static"):
        mlc.jit(lambda n: mnp.arange(n))(3)


# -- linspace -------------------------------------------------------------------------------
@given(st.data())
def test_linspace(data):
    start_shape, stop_shape = data.draw(
        st.sampled_from([((), ()), ((3,), ()), ((), (2, 1)), ((2, 1), (3,)), ((0,), ())])
    )
    dt = data.draw(st.sampled_from([np.float32, np.float64, np.int32]))
    start = data.draw(arrays(dt, start_shape, special=True))
    stop = data.draw(st.one_of(arrays(dt, stop_shape, special=True), st.just(start)))
    num = data.draw(st.integers(0, 9))
    endpoint = data.draw(st.booleans())
    dtype = data.draw(st.sampled_from([None, np.float32, np.float64, np.int64]))
    ndim = 1 + np.broadcast(start, stop).ndim
    axis = data.draw(st.integers(-ndim, ndim - 1))

    def f(m, a, b):
        return m.linspace(a, b, num, endpoint=endpoint, retstep=True, dtype=dtype, axis=axis)

    if dtype == np.int64 and not (np.isfinite(start).all() and np.isfinite(stop).all()):
        return  # NaN to int is undefined in NumPy too
    check(f, start, stop)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0, 1), {}),
        ((0, 1, 5), {}),
        ((0, 1, 5), {"endpoint": False}),
        ((0, 1, 1), {"retstep": True}),
        ((0, 1, 0), {"retstep": True}),
        ((np.float32(0), 1, 7), {}),
        ((np.int32(0), 1, 7), {}),
        ((2, 10, 5), {"dtype": int}),
        ((-2.5, 10, 5), {"dtype": np.int32}),
        ((1.0, 1.0, 4), {"retstep": True}),
        ((0, 1e-320, 3), {}),  # a step that underflows to 0: NumPy's other formula
        (([0, 1e-320], [1, 1e-320], 3), {"retstep": True}),
        (([0.0, 1.0], 5, 4), {"axis": -1}),
    ],
    ids=repr,
)
def test_linspace_cases(args, kwargs):
    exact(mnp.linspace(*args, **kwargs), np.linspace(*args, **kwargs))
    check(lambda m: m.linspace(*args, **kwargs))


def test_linspace_errors():
    check_raises(lambda m: m.linspace(0, 1, -1))
    check_raises(lambda m: m.linspace(0, 1, 2.5))
    check_raises(lambda m, a: m.linspace(a, 1, 3, axis=2), np.zeros(2))


def test_numpy_names_in_jit():
    """The creation functions NumPy dispatches on arrays reach mlc.numpy inside jit."""
    x = np.arange(6.0).reshape(2, 3)
    for f in (np.zeros_like, np.ones_like, np.copy, lambda x: np.full_like(x, 2)):
        assert_same(mlc.jit(f)(x), f(x))
    assert_same(mlc.jit(lambda x: np.astype(x, np.int32))(x), np.astype(x, np.int32))
    assert_same(mlc.jit(lambda a: np.linspace(a, 2 * a, 4))(x), np.linspace(x, 2 * x, 4))
    assert_same(mlc.jit(lambda x: x + np.eye(2, 3))(x), x + np.eye(2, 3))
