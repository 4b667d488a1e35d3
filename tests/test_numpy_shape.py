"""Shape manipulation of mlc.numpy against NumPy: values, dtypes, shapes, axes and errors.

Most cases run through ``check``: mlc.numpy on concrete arrays, plain NumPy on tracers inside
mlc.jit, and mlc.numpy inside mlc.jit. Tracer methods, ``r_`` and ``c_`` (which NumPy cannot
route to mlc) are checked against NumPy directly.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from tests.conformance import arrays, assert_same, broadcast_shapes, check, check_raises, shapes

ALL = (np.float32, np.float64, np.int32, np.int64, np.bool_)
FLOATS = (np.float32, np.float64)
AxisError = np.exceptions.AxisError


@st.composite
def array(draw, dtypes=ALL, min_dims=0, max_dims=4, min_side=0, max_side=4, special=True):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))
    return draw(arrays(dtype, shape, special=special))


def axis_of(draw, ndim):
    """A valid axis of an ``ndim``-d array, negative half the time."""
    a = draw(st.integers(0, ndim - 1))
    return a - ndim if draw(st.booleans()) else a


def jitted(f, *arrays):
    """``f`` inside mlc.jit, as a function of arrays only."""
    return mlc.jit(f)(*arrays)


# -- reshape, ravel, transpose --------------------------------------------------------------
@st.composite
def reshape_case(draw):
    x = draw(array())
    dims = list(x.shape)
    draw(st.randoms()).shuffle(dims)
    # Merge a random run of neighbours and maybe insert size-1 dims: same size, new shape.
    if len(dims) >= 2 and draw(st.booleans()):
        i = draw(st.integers(0, len(dims) - 2))
        dims[i : i + 2] = [dims[i] * dims[i + 1]]
    for _ in range(draw(st.integers(0, 2))):
        dims.insert(draw(st.integers(0, len(dims))), 1)
    if dims and draw(st.booleans()):
        i = draw(st.integers(0, len(dims) - 1))
        if math.prod(d for j, d in enumerate(dims) if j != i):
            dims[i] = -1
    return x, tuple(dims)


@given(case=reshape_case(), order=st.sampled_from(["C", "F"]))
def test_reshape(case, order):
    x, shape = case
    check(lambda m, x: m.reshape(x, shape, order=order), x)
    check(lambda m, x: x.reshape(shape), x, jit=False)
    assert_same(jitted(lambda a: a.reshape(shape), x), x.reshape(shape))
    if shape:
        assert_same(jitted(lambda a: a.reshape(*shape), x), x.reshape(*shape))


@given(x=array())
def test_ravel_flatten(x):
    check(lambda m, x: m.ravel(x), x)
    check(lambda m, x: m.ravel(x, order="F"), x)
    assert_same(jitted(lambda a: a.ravel(), x), x.ravel())
    assert_same(jitted(lambda a: a.flatten(), x), x.flatten())


@st.composite
def permutation_case(draw):
    x = draw(array())
    perm = draw(st.permutations(range(x.ndim)))
    return x, tuple(p - x.ndim if draw(st.booleans()) else p for p in perm)


@given(case=permutation_case())
def test_transpose(case):
    x, axes = case
    check(lambda m, x: m.transpose(x), x)
    check(lambda m, x: m.transpose(x, axes), x)
    assert_same(jitted(lambda a: a.transpose(), x), x.transpose())
    assert_same(jitted(lambda a: a.transpose(axes), x), x.transpose(axes))
    assert_same(jitted(lambda a: a.transpose(*axes), x), x.transpose(*axes))
    assert_same(jitted(lambda a: a.T, x), x.T)


@st.composite
def two_axes_case(draw):
    x = draw(array(min_dims=1))
    return x, axis_of(draw, x.ndim), axis_of(draw, x.ndim)


@given(case=two_axes_case())
def test_swapaxes_moveaxis_rollaxis(case):
    x, i, j = case
    check(lambda m, x: m.swapaxes(x, i, j), x)
    check(lambda m, x: m.moveaxis(x, i, j), x)
    check(lambda m, x: m.rollaxis(x, i, j), x)
    check(lambda m, x: m.rollaxis(x, i, x.ndim), x)
    assert_same(jitted(lambda a: a.swapaxes(i, j), x), x.swapaxes(i, j))


@given(case=permutation_case(), data=st.data())
def test_moveaxis_tuples(case, data):
    x, perm = case
    k = data.draw(st.integers(0, x.ndim))
    check(lambda m, x: m.moveaxis(x, perm[:k], tuple(range(k))[::-1]), x)


@st.composite
def squeeze_case(draw):
    x = draw(array(min_side=1, max_side=3).filter(lambda a: True))
    shape = list(x.shape)
    for _ in range(draw(st.integers(0, 3))):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    x = x.reshape(shape)
    ones = [i for i, n in enumerate(shape) if n == 1]
    chosen = draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
    axis = tuple(a - x.ndim if draw(st.booleans()) else a for a in chosen)
    if len(axis) == 1 and draw(st.booleans()):
        axis = axis[0]
    return x, axis


@given(case=squeeze_case())
def test_squeeze(case):
    x, axis = case
    check(lambda m, x: m.squeeze(x), x)
    check(lambda m, x: m.squeeze(x, axis), x)
    assert_same(jitted(lambda a: a.squeeze(), x), x.squeeze())
    assert_same(jitted(lambda a: a.squeeze(axis), x), x.squeeze(axis))


@st.composite
def expand_case(draw):
    x = draw(array(max_dims=3))
    n = draw(st.integers(1, 3))
    out = x.ndim + n
    chosen = draw(st.lists(st.integers(0, out - 1), min_size=n, max_size=n, unique=True))
    axis = tuple(a - out if draw(st.booleans()) else a for a in chosen)
    return x, axis if n > 1 or draw(st.booleans()) else axis[0]


@given(case=expand_case())
def test_expand_dims(case):
    x, axis = case
    check(lambda m, x: m.expand_dims(x, axis), x)


# -- broadcasting ---------------------------------------------------------------------------
@given(shapes_=broadcast_shapes(3), dtype=st.sampled_from(ALL), data=st.data())
def test_broadcast(shapes_, dtype, data):
    xs = [data.draw(arrays(dtype, s)) for s in shapes_]
    target = np.broadcast_shapes(*shapes_)
    check(lambda m, *xs: m.broadcast_arrays(*xs), *xs)
    check(lambda m, x: m.broadcast_to(x, target), xs[0])
    assert mnp.broadcast_shapes(*shapes_) == target
    assert all(type(n) is int for n in mnp.broadcast_shapes(*shapes_))


@given(x=array(max_dims=4), y=array(max_dims=2))
def test_atleast(x, y):
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        check(lambda m, x, name=name: getattr(m, name)(x), x)
        check(lambda m, x, y, name=name: getattr(m, name)(x, y), x, y)
    assert mnp.atleast_2d(3.0).shape == (1, 1)


# -- flip, rot90, roll ----------------------------------------------------------------------
@st.composite
def axes_case(draw, min_dims=0):
    x = draw(array(min_dims=min_dims))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or x.ndim == 0:
        return x, None
    if kind == "int":
        return x, axis_of(draw, x.ndim)
    chosen = draw(st.lists(st.integers(0, x.ndim - 1), unique=True, max_size=x.ndim))
    return x, tuple(a - x.ndim if draw(st.booleans()) else a for a in chosen)


@given(case=axes_case())
def test_flip(case):
    x, axis = case
    check(lambda m, x: m.flip(x, axis), x)
    if x.ndim >= 1:
        check(lambda m, x: m.flipud(x), x)
    if x.ndim >= 2:
        check(lambda m, x: m.fliplr(x), x)


@given(x=array(min_dims=2), k=st.integers(-5, 5), data=st.data())
def test_rot90(x, k, data):
    a0 = axis_of(data.draw, x.ndim)
    a1 = axis_of(data.draw, x.ndim)
    if a0 % x.ndim == a1 % x.ndim:
        return
    check(lambda m, x: m.rot90(x), x)
    check(lambda m, x: m.rot90(x, k, (a0, a1)), x)


@given(case=axes_case(), data=st.data())
def test_roll(case, data):
    x, axis = case
    if axis is None or isinstance(axis, int):
        shift = data.draw(st.integers(-7, 7))
    else:
        shift = tuple(data.draw(st.integers(-7, 7)) for _ in axis)
    check(lambda m, x: m.roll(x, shift, axis), x)
    if x.ndim:
        check(lambda m, x: m.roll(x, (2, -3), (0, -1)), x)  # shifts on one axis add up


# -- repeat, tile ---------------------------------------------------------------------------
@given(x=array(max_dims=3), r=st.integers(0, 3), data=st.data())
def test_repeat(x, r, data):
    check(lambda m, x: m.repeat(x, r), x)
    assert_same(jitted(lambda a: a.repeat(r), x), x.repeat(r))
    if x.ndim:
        axis = axis_of(data.draw, x.ndim)
        counts = data.draw(
            st.lists(st.integers(0, 3), min_size=x.shape[axis], max_size=x.shape[axis])
        )
        check(lambda m, x: m.repeat(x, r, axis=axis), x)
        check(lambda m, x: m.repeat(x, counts, axis=axis), x)
        check(lambda m, x: m.repeat(x, [r], axis=axis), x)
        assert_same(jitted(lambda a: a.repeat(counts, axis), x), x.repeat(counts, axis))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=x.size, max_size=x.size))
    check(lambda m, x: m.repeat(x, counts), x)


@given(
    x=array(max_dims=3),
    reps=st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), max_size=4).map(tuple)),
)
def test_tile(x, reps):
    check(lambda m, x: m.tile(x, reps), x)


# -- joining --------------------------------------------------------------------------------
@st.composite
def join_case(draw, n_max=3, same_shape=False, min_dims=1):
    base = list(draw(shapes(min_dims=min_dims, max_dims=3)))
    axis = axis_of(draw, len(base)) if base else 0
    xs = []
    for _ in range(draw(st.integers(1, n_max))):
        shape = list(base)
        if shape and not same_shape:
            shape[axis] = draw(st.integers(0, 3))
        xs.append(draw(arrays(draw(st.sampled_from(ALL)), tuple(shape))))
    return xs, axis


@given(case=join_case())
def test_concatenate(case):
    xs, axis = case
    check(lambda m, *xs: m.concatenate(xs, axis=axis), *xs)
    check(lambda m, *xs: m.concatenate(xs, axis=None), *xs)
    check(lambda m, *xs: m.concatenate(list(xs), axis, dtype=np.float64, casting="unsafe"), *xs)


@given(case=join_case(same_shape=True, min_dims=0), data=st.data())
def test_stack(case, data):
    xs, _ = case
    axis = axis_of(data.draw, xs[0].ndim + 1)
    check(lambda m, *xs: m.stack(xs, axis), *xs)
    check(lambda m, *xs: m.stack(xs, axis=axis, dtype=np.float32, casting="unsafe"), *xs)
    check(lambda m, *xs: m.vstack(xs), *xs)
    check(lambda m, *xs: m.hstack(xs), *xs)
    check(lambda m, *xs: m.dstack(xs), *xs)
    if xs[0].ndim <= 2:
        check(lambda m, *xs: m.column_stack(xs), *xs)


@given(x=array(max_dims=3), y=array(max_dims=3))
def test_append(x, y):
    check(lambda m, x, y: m.append(x, y), x, y)
    check(lambda m, x: m.append(x, 2), x)
    check(lambda m, x: m.append(x, 2.5), x)
    if x.ndim:
        check(lambda m, x: m.append(x, x, axis=-1), x)


def test_join_promotion():
    f32 = np.arange(3, dtype=np.float32)
    i32 = np.arange(2, dtype=np.int32)
    b = np.array([True, False])
    check(lambda m, x, y: m.concatenate([x, y]), f32, i32)  # float64, as NumPy
    check(lambda m, x, y: m.concatenate([x, y]), b, i32)
    check(lambda m, x: m.hstack([x, [1, 2]]), f32)  # a list is an int64 array
    check(lambda m, x: m.concatenate([x, [7]], axis=None), i32)
    check(lambda m, x: m.vstack([x, x]), f32)
    check(lambda m, x, y: m.column_stack([x, y]), f32, i32[:1].reshape(1, 1).repeat(3, 0))


# -- pad ------------------------------------------------------------------------------------
@st.composite
def pad_width(draw, ndim):
    w = st.integers(0, 4)
    kind = draw(st.sampled_from(["int", "one", "pair", "per_axis", "dict"]))
    if kind == "int" or ndim == 0:
        return draw(w)
    if kind == "one":
        return (draw(w),)
    if kind == "pair":
        return (draw(w), draw(w))
    if kind == "dict":
        return {a: draw(st.one_of(w, st.tuples(w, w))) for a in range(ndim) if draw(st.booleans())}
    return tuple((draw(w), draw(w)) for _ in range(ndim))


@given(x=array(max_dims=3), data=st.data())
def test_pad_constant(x, data):
    width = data.draw(pad_width(x.ndim))
    check(lambda m, x: m.pad(x, width), x)
    check(lambda m, x: m.pad(x, width, constant_values=3), x)
    values = tuple((i + 1, -(i + 2)) for i in range(x.ndim)) or 5
    check(lambda m, x: m.pad(x, width, "constant", constant_values=values), x)
    if x.dtype.kind == "i":
        check(lambda m, x: m.pad(x, width, constant_values=2.7), x)  # cast unsafely, as NumPy


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric", "wrap"])
@given(x=array(max_dims=3, min_side=1), data=st.data())
def test_pad_modes(mode, x, data):
    width = data.draw(pad_width(x.ndim))
    check(lambda m, x: m.pad(x, width, mode=mode), x)


# -- split ----------------------------------------------------------------------------------
@st.composite
def split_case(draw):
    x = draw(array(min_dims=1, max_dims=3, max_side=6))
    axis = axis_of(draw, x.ndim)
    n = x.shape[axis]
    divisors = [d for d in range(1, max(n, 1) + 1) if n % d == 0]
    sections = draw(st.sampled_from(divisors))
    indices = draw(st.lists(st.integers(-n - 2, n + 2), max_size=4))
    return x, axis, sections, indices


@given(case=split_case(), k=st.integers(1, 7))
def test_split(case, k):
    x, axis, sections, indices = case
    check(lambda m, x: m.split(x, sections, axis), x)
    check(lambda m, x: m.split(x, indices, axis=axis), x)
    check(lambda m, x: m.array_split(x, k, axis), x)
    check(lambda m, x: m.array_split(x, indices, axis), x)
    check(lambda m, x: m.hsplit(x, indices), x)
    if x.ndim >= 2:
        check(lambda m, x: m.vsplit(x, indices), x)
    if x.ndim >= 3:
        check(lambda m, x: m.dsplit(x, indices), x)


def test_pad_traced_value_and_concatenate_of_array():
    x = np.arange(6.0).reshape(2, 3)
    check(lambda m, x, v: m.pad(x, (1, 2), constant_values=v), x, np.float32(7.5))
    check(lambda m, x: m.concatenate(x), x)  # iterates over the first axis, as NumPy
    check(lambda m, x: m.stack(x, axis=1), x)


def test_split_returns_list():
    parts = mnp.split(np.arange(6.0), 3)
    assert isinstance(parts, list) and len(parts) == 3
    assert_same(parts[1], np.array([2.0, 3.0]))


# -- diagonals and triangles ----------------------------------------------------------------
@given(x=array(min_dims=1, max_dims=2), k=st.integers(-5, 5))
def test_diag(x, k):
    check(lambda m, x: m.diag(x, k), x)
    check(lambda m, x: m.diag(x), x)


@given(x=array(min_dims=2, max_dims=4), offset=st.integers(-5, 5), data=st.data())
def test_diagonal(x, offset, data):
    i = axis_of(data.draw, x.ndim)
    j = axis_of(data.draw, x.ndim)
    check(lambda m, x: m.diagonal(x), x)
    if i % x.ndim != j % x.ndim:
        check(lambda m, x: m.diagonal(x, offset, i, j), x)
        assert_same(jitted(lambda a: a.diagonal(offset, i, j), x), x.diagonal(offset, i, j))


@given(x=array(min_dims=1, max_dims=4), k=st.integers(-5, 5))
def test_tril_triu(x, k):
    check(lambda m, x: m.tril(x, k), x)
    check(lambda m, x: m.triu(x, k), x)
    check(lambda m, x: m.triu(x), x)


# -- sort -----------------------------------------------------------------------------------
@given(x=array(special=True), data=st.data())
def test_sort_argsort(x, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1))) if x.ndim else None
    check(lambda m, x: m.sort(x, axis=axis), x)
    check(lambda m, x: m.argsort(x, axis=axis, kind="stable"), x)
    check(lambda m, x: m.argsort(x, axis, stable=True), x)
    if x.ndim:
        assert_same(jitted(lambda a: a.sort(), x), np.sort(x))
        assert_same(jitted(lambda a: a.argsort(kind="stable"), x), x.argsort(kind="stable"))


def test_sort_nan_last_and_ties():
    x = np.array([3.0, np.nan, -np.inf, 1.0, np.nan, -0.0, 0.0, 1.0], np.float32)
    check(lambda m, x: m.sort(x), x)
    check(lambda m, x: m.argsort(x, kind="stable"), x)
    check(lambda m, x: m.argsort(x), np.array(5.0))  # NumPy: a 0-d array sorts as 1-d
    check(lambda m, x: m.sort(x, axis=0), np.array([[2, 1], [1, 2], [0, 3]], np.int32))


def test_sort_method_returns_value():
    x = np.array([3, 1, 2])
    out = mlc.jit(lambda a: a.sort())(x)
    assert_same(out, np.array([1, 2, 3]))
    assert x.tolist() == [3, 1, 2]


# -- r_, c_, shape queries ------------------------------------------------------------------
R_CASES = [
    lambda m, a, b: m.r_[a, b],
    lambda m, a, b: m.r_[1:4, 0, a],
    lambda m, a, b: m.r_[a, 2.5, b],
    lambda m, a, b: m.r_[0:1:5j, b],
    lambda m, a, b: m.r_["0,2", a, b],
    lambda m, a, b: m.r_["1,2,0", a, b],
    lambda m, a, b: m.r_["-1", a, b],
    lambda m, a, b: m.c_[a, b],
    lambda m, a, b: m.c_[a, 1:4, b],
    lambda m, a, b: m.c_[m.stack([a, b]), m.stack([b, a])],
]


@pytest.mark.parametrize("case", range(len(R_CASES)))
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
def test_r_c(case, dtype):
    f = R_CASES[case]
    a = np.arange(3).astype(dtype)
    b = np.array([5, 6, 7]).astype(dtype)
    expected = f(np, a, b)
    assert_same(f(mnp, a, b), expected)
    assert_same(mlc.jit(lambda a, b: f(mnp, a, b))(a, b), expected)


@given(x=array())
def test_shape_ndim_size(x):
    seen = {}

    def f(a):
        seen["shape"], seen["ndim"], seen["size"] = np.shape(a), np.ndim(a), np.size(a)
        seen["m"] = (mnp.shape(a), mnp.ndim(a), mnp.size(a))
        if a.ndim:
            seen["axis"] = (np.size(a, -1), mnp.size(a, 0))
        return a

    mlc.jit(f)(x)
    assert seen["shape"] == x.shape and type(seen["shape"]) is tuple
    assert seen["ndim"] == x.ndim and type(seen["ndim"]) is int
    assert seen["size"] == x.size and type(seen["size"]) is int
    assert seen["m"] == (x.shape, x.ndim, x.size)
    if x.ndim:
        assert seen["axis"] == (x.shape[-1], x.shape[0])
    assert mnp.shape(x) == x.shape and mnp.ndim(x) == x.ndim and mnp.size(x) == x.size


def test_weak_scalars_become_arrays():
    check(lambda m: m.reshape(3, (1,)))
    check(lambda m: m.atleast_1d(2.5))
    check(lambda m, x: m.stack([x, x]), np.float32(1.5))


# -- errors ---------------------------------------------------------------------------------
X = np.arange(6.0).reshape(2, 3)
V = np.arange(3.0)
S = np.array(1.0)
E = np.zeros((0, 3))
INPUTS = (X, V, S, E)

ERRORS = [
    (
        lambda m, x, v, s, e: m.reshape(x, (4, 2)),
        ValueError,
        "cannot reshape array of size 6 into shape",
    ),
    (lambda m, x, v, s, e: m.reshape(x, (4, -1)), ValueError, "cannot reshape array of size 6"),
    (lambda m, x, v, s, e: m.reshape(x, (-1, -1)), ValueError, "one unknown dimension"),
    (lambda m, x, v, s, e: m.transpose(x, (0, 2)), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.transpose(x, (0,)), ValueError, "axes don't match array"),
    (lambda m, x, v, s, e: m.transpose(x, (1, -1)), ValueError, "repeated axis"),
    (lambda m, x, v, s, e: m.swapaxes(x, 0, 2), AxisError, "axis2"),
    (lambda m, x, v, s, e: m.moveaxis(x, (0, 1), 0), ValueError, "same number of elements"),
    (lambda m, x, v, s, e: m.rollaxis(x, 0, 4), AxisError, "'start' arg"),
    (lambda m, x, v, s, e: m.squeeze(x, 0), ValueError, "size not equal to one"),
    (lambda m, x, v, s, e: m.squeeze(x, 5), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.expand_dims(x, 3), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.expand_dims(x, (0, 0)), ValueError, "repeated axis"),
    (lambda m, x, v, s, e: m.broadcast_to(x, (3, 3)), ValueError, "broadcast"),
    (lambda m, x, v, s, e: m.flip(x, 2), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.flip(x, (0, -2)), ValueError, "repeated axis"),
    (lambda m, x, v, s, e: m.fliplr(v), ValueError, "Input must be >= 2-d"),
    (lambda m, x, v, s, e: m.rot90(x, 1, (0, 0)), ValueError, "Axes must be different"),
    (lambda m, x, v, s, e: m.rot90(x, 1, (0, 2)), ValueError, "Axes must be different"),
    (lambda m, x, v, s, e: m.roll(x, (1, 2, 3), (0, 1)), ValueError, "mismatch"),
    (lambda m, x, v, s, e: m.repeat(x, [1, 2], axis=1), ValueError, "could not be broadcast"),
    (lambda m, x, v, s, e: m.repeat(x, -1), ValueError, "negative dimensions"),
    (lambda m, x, v, s, e: m.repeat(x, 2, axis=2), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.tile(x, -1), ValueError, "negative dimensions"),
    (lambda m, x, v, s, e: m.concatenate([x, e.T]), ValueError, "along dimension 1"),
    (lambda m, x, v, s, e: m.concatenate([x, v]), ValueError, "same number of dimensions"),
    (lambda m, x, v, s, e: m.concatenate([s, s]), ValueError, "zero-dimensional"),
    (lambda m, x, v, s, e: m.concatenate([x, x], axis=2), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.concatenate([x, x], dtype=np.int32), TypeError, "same_kind"),
    (lambda m, x, v, s, e: m.stack([x, v]), ValueError, "same shape"),
    (lambda m, x, v, s, e: m.stack([]), ValueError, "at least one array"),
    (lambda m, x, v, s, e: m.vstack([x, e.T]), ValueError, "must match exactly"),
    (lambda m, x, v, s, e: m.split(x, 4, axis=1), ValueError, "equal division"),
    (lambda m, x, v, s, e: m.array_split(x, 0), ValueError, "larger than 0"),
    (lambda m, x, v, s, e: m.split(x, 2, axis=2), IndexError, ""),
    (lambda m, x, v, s, e: m.vsplit(v, 2), ValueError, "vsplit only works"),
    (lambda m, x, v, s, e: m.dsplit(x, 2), ValueError, "dsplit only works"),
    (lambda m, x, v, s, e: m.pad(x, -1), ValueError, "negative"),
    (lambda m, x, v, s, e: m.pad(e, 1, mode="edge"), ValueError, "can't extend empty axis"),
    (lambda m, x, v, s, e: m.pad(x, 1, mode="bogus"), ValueError, "not supported"),
    (lambda m, x, v, s, e: m.pad(x, 1, mode="edge", constant_values=1), ValueError, "unsupported"),
    (lambda m, x, v, s, e: m.diag(m.stack([x, x])), ValueError, "1- or 2-d"),
    (lambda m, x, v, s, e: m.diagonal(v), ValueError, "at least two dimensions"),
    (lambda m, x, v, s, e: m.diagonal(x, 0, 1, -1), ValueError, "cannot be the same"),
    (lambda m, x, v, s, e: m.sort(x, axis=2), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.sort(s), AxisError, "out of bounds"),
    (lambda m, x, v, s, e: m.argsort(x, axis=-3), AxisError, "out of bounds"),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors(case):
    f, etype, text = ERRORS[case]
    err = check_raises(f, *INPUTS)
    assert isinstance(err, etype), (type(err), etype)
    assert text in str(err)
    with pytest.raises(etype):
        mlc.jit(lambda *a: f(mnp, *a))(*INPUTS)


def test_error_names_user_line():
    with pytest.raises(ValueError) as e:
        mnp.reshape(X, (5,))
    assert "test_numpy_shape.py" in str(e.value)
    assert "cannot reshape array of size 6 into shape (5,)" in str(e.value)


def test_traced_repeats_rejected():
    with pytest.raises(TypeError, match="concrete"):
        mlc.jit(lambda a, r: mnp.repeat(a, r))(X, np.array(2))
