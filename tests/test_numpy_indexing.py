"""Indexing against NumPy: ``x[index]`` for every index form, ``x.at[index]`` updates against
NumPy's in-place equivalents, ``take`` and ``take_along_axis``, and the errors NumPy raises."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mlc
import mlc.numpy as mnp
from mlc.errors import TracingError
from tests.conformance import arrays, assert_same, check, check_raises, shapes

DTYPES = (np.float32, np.float64, np.int32, np.int64, np.bool_)


def get(m, x, index):
    """``x[index]``: NumPy's own indexing, or mlc.numpy.getitem (a Tracer's x[index] in jit)."""
    return mnp.getitem(x, index) if m is mnp else x[index]


# -- index strategies -----------------------------------------------------------------------
def _slices(n):
    bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    step = st.one_of(st.none(), st.integers(-3, 3).filter(lambda s: s != 0))
    return st.builds(slice, bound, bound, step)


def _sub_shape(rng, batch):
    """A shape that broadcasts to ``batch`` (leading dims dropped, some dims set to 1)."""
    drop = rng.integers(0, len(batch) + 1)
    return tuple(1 if rng.random() < 0.3 else d for d in batch[drop:])


@st.composite
def indices(draw, shape, modes=("basic", "arrays", "arrays", "mask")):
    """A random NumPy index for ``shape``: ints, slices, None, ..., integer arrays and lists
    (broadcast-compatible, often repeating an element), a boolean mask or a scalar bool."""
    ndim = len(shape)
    n_used = draw(st.integers(min(ndim, 1), ndim))
    ellipsis_at = draw(st.one_of(st.none(), st.integers(0, n_used)))
    mode = draw(st.sampled_from(modes))
    arrays_ok = mode != "basic" or len(modes) > 1
    # Index arrays come from a seeded generator: hypothesis' small examples rarely repeat an
    # index or broadcast two arrays, which is where the interesting cases are.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3)))
    mask_done = False
    items = []
    for j in range(n_used + 1):
        if j == ellipsis_at:
            items.append(Ellipsis)
        if draw(st.integers(0, 5)) == 0:  # False broadcasts only with size-0/1 index arrays
            extra = (
                [None]
                if not arrays_ok
                else [None, True, False]
                if mode == "basic"
                else [None, True]
            )
            items.append(draw(st.sampled_from(extra)))
        if j == n_used:
            break
        axis = j if ellipsis_at is None or j < ellipsis_at else ndim - n_used + j
        n = shape[axis]
        kinds = ["int", "slice"] if n else ["slice"]
        if n and mode == "arrays":
            kinds += ["array", "array", "array", "list"]
        if mode == "mask" and not mask_done:
            kinds += ["mask"]
        kind = draw(st.sampled_from(kinds))
        if mode == "arrays" and n and j == n_used - 1 and not any(map(_is_array, items)):
            kind = "array"  # at least one
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            items.append(draw(_slices(n)))
        elif kind == "mask":
            mask_done = True
            items.append(draw(hnp.arrays(np.bool_, (n,))))
        else:
            a = rng.integers(-n, n, size=_sub_shape(rng, batch))
            items.append(a.tolist() if kind == "list" and a.ndim else a)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


def _is_array(item):
    return isinstance(item, (np.ndarray, list))


@st.composite
def array_and_index(draw, modes=("basic", "arrays", "arrays", "mask"), dtypes=DTYPES):
    # Mostly non-empty shapes (an index array needs a non-empty axis); sometimes empty ones.
    min_side = draw(st.sampled_from([1, 1, 1, 0]))
    min_dims = 0 if "basic" in modes else 1
    shape = draw(shapes(min_dims=min_dims, max_dims=4, min_side=min_side, max_side=5))
    x = draw(arrays(draw(st.sampled_from(dtypes)), shape, special=True))
    return x, draw(indices(shape, modes))


# -- getitem --------------------------------------------------------------------------------
@given(array_and_index(modes=("basic",)))
def test_basic_indexing(case):
    x, index = case
    check(lambda m, x: get(m, x, index), x)


@given(array_and_index(modes=("arrays", "arrays", "mask")))
def test_advanced_and_mixed_indexing(case):
    x, index = case
    check(lambda m, x: get(m, x, index), x)


@given(st.data())
def test_slices_any_step(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    x = data.draw(arrays(np.float64, shape))
    index = tuple(data.draw(_slices(n)) for n in shape)
    check(lambda m, x: get(m, x, index), x)
    graph = mlc.trace(lambda x: x[index], x)
    assert graph.count("gather") == 0  # basic indexing is slice/rev/reshape only


@pytest.mark.parametrize(
    "index",
    [
        (slice(None), [0, 2], None, Ellipsis, 1),
        ([0, 2], slice(None), [1, 3]),  # separated: advanced dims first
        (slice(None), [0, 2], [1, 3]),  # adjacent: in place
        (0, slice(None), [1, 2]),  # an int counts as advanced: separated
        (slice(None), 0, [1, 2]),
        ([[0], [2]], slice(None), [1, 3]),
        ([0, 1], None, [0, 1]),  # None separates
        (slice(None), [0, 1], Ellipsis, [0, 1]),  # so does an empty ellipsis
        (slice(None), True, [0, 1]),
        (0, slice(None), True),
        (np.array([True, False, True]), slice(None), [1, 2]),
        np.arange(60).reshape(3, 4, 5) % 3 == 0,  # a full mask
        (np.ones((3, 4), bool), 1),
        (Ellipsis, np.array([[4, 0]])),
        ([], slice(1, 2)),
        ((0, 1),),  # a tuple inside the index is an array
        (np.array(1), slice(None), np.array(2)),  # 0-d arrays are integers
        [True, 1],  # a list of ints and bools is an integer array
        (np.int32(-1), slice(None, None, -2), None),
        (None, Ellipsis, None),
        (),
    ],
    ids=repr,
)
def test_index_forms(index):
    x = np.arange(60.0).reshape(3, 4, 5)
    check(lambda m, x: get(m, x, index), x)


def test_mixed_forms_with_traced_arrays():
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    i, j = np.array([[0, -1], [1, 0]]), np.array([2, -4])
    expected = x[:, [0, 2], None, ..., 1]
    assert_same(mlc.jit(lambda x: x[:, [0, 2], None, ..., 1])(x), expected)
    f = mlc.jit(lambda x, i, j: x[i, :, j])  # separated: advanced dims first
    assert_same(f(x, i, j), x[i, :, j])
    g = mlc.jit(lambda x, i, j: x[:, i, j])  # adjacent: in place
    assert_same(g(x, i, j), x[:, i, j])
    h = mlc.jit(lambda x, i, j: x[None, 1, i, ..., j[0]])
    assert_same(h(x, i, j), x[None, 1, i, ..., j[0]])
    graph = mlc.trace(lambda x, i, j: x[:, i, 1:, j], x, i, j)
    assert graph.count("gather") == 1


@given(array_and_index(modes=("arrays",), dtypes=(np.float32, np.int32)))
def test_traced_index_arrays(case):
    """Every index array passed as a traced argument gives NumPy's result."""
    x, index = case
    items = list(index) if isinstance(index, tuple) else [index]
    where_arrays = [k for k, v in enumerate(items) if isinstance(v, np.ndarray) and v.dtype != bool]

    def f(x, *arrs):
        it = list(items)
        for k, a in zip(where_arrays, arrs):
            it[k] = a
        return x[tuple(it) if isinstance(index, tuple) else it[0]]

    assert_same(mlc.jit(f)(x, *[items[k] for k in where_arrays]), x[index])


def test_traced_scalar_and_negative_indices():
    x = np.arange(12.0).reshape(3, 4)
    f = mlc.jit(lambda x, i: x[i])
    for i in range(-3, 3):
        assert_same(f(x, np.int64(i)), x[i])
        assert_same(f(x, i), x[i])  # a Python int argument is traced too
    g = mlc.jit(lambda x, i, j: x[i, 1:, None][..., 0] + x[1, j])
    assert_same(g(x, np.int32(-1), np.int64(2)), x[-1, 1:, None][..., 0] + x[1, 2])
    assert_same(mlc.jit(lambda x, i: x[i])(x, np.array([-1, -3, 2], np.int32)), x[[-1, -3, 2]])


def test_traced_out_of_range_indices_clamp():
    """Traced indices cannot be checked: documented behaviour is to clamp."""
    x = np.arange(5.0)
    out = mlc.jit(lambda x, i: x[i])(x, np.array([7, -9, 4]))
    assert_same(out, np.array([4.0, 0.0, 4.0]))


def test_list_index_with_tracers():
    x = np.arange(10.0) * 3
    f = mlc.jit(lambda x, i: x[[i, 0, i + 1]])
    assert_same(f(x, np.int64(3)), x[[3, 0, 4]])


def test_tracer_methods_and_numpy_names():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert_same(mlc.jit(lambda x: x.take([0, 2], axis=1))(x), x.take([0, 2], axis=1))
    assert_same(mlc.jit(lambda x: np.take(x, 5))(x), np.take(x, 5))


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index, message",
    [
        (5, "index 5 is out of bounds for axis 0 with size 3"),
        (-4, "index -4 is out of bounds for axis 0 with size 3"),
        ((0, 9), "index 9 is out of bounds for axis 1 with size 4"),
        (([0, 5],), "index 5 is out of bounds for axis 0 with size 3"),
        ((slice(None), np.array([[4]])), "index 4 is out of bounds for axis 1 with size 4"),
        ((0, 0, 0, 0), "too many indices for array: array is 3-dimensional, but 4 were indexed"),
        ((Ellipsis, Ellipsis), "an index can only have a single ellipsis"),
        (1.0, "only integers, slices"),
        ([1.0], "only integers, slices"),
        ("a", "only integers, slices"),
        (np.array([1.0]), "arrays used as indices must be of integer (or boolean) type"),
        (np.array([True, False]), "boolean index did not match indexed array along axis 0"),
        (([0, 1], [0, 1, 2]), "shape mismatch: indexing arrays could not be broadcast"),
    ],
)
def test_index_errors(index, message):
    x = np.zeros((3, 4, 5))
    err = check_raises(lambda m, x: get(m, x, index), x)
    assert isinstance(err, IndexError) and message in str(err)
    assert "test_numpy_indexing.py" in str(err)  # the user's line


def test_zero_dim_errors():
    x = np.float32(2.0) * np.ones((), np.float32)
    err = check_raises(lambda m, x: get(m, x, 0), x)
    assert "array is 0-dimensional, but 1 were indexed" in str(err)
    check(lambda m, x: get(m, x, (None, Ellipsis)), x)
    check(lambda m, x: get(m, x, True), x)
    check(lambda m, x: get(m, x, False), x)


def test_traced_bool_mask_is_refused():
    x, mask = np.arange(4.0), np.array([True, False, True, False])
    with pytest.raises((TracingError, NotImplementedError)) as e:
        mlc.jit(lambda x, m: x[m])(x, mask)
    assert "mlc.numpy.where" in str(e.value)
    assert_same(mlc.jit(lambda x: x[mask])(x), x[mask])  # a concrete mask is fine


def test_traced_index_must_be_integer():
    with pytest.raises(IndexError, match="integer"):
        mlc.jit(lambda x, i: x[i])(np.arange(4.0), np.array([1.0]))


def test_setitem_names_at():
    def f(x):
        x[0] = 1.0
        return x

    with pytest.raises(TracingError, match=r"\.at\[") as e:
        mlc.jit(f)(np.zeros(3))
    assert "test_numpy_indexing.py" in str(e.value)


# -- x.at[index] ----------------------------------------------------------------------------
UFUNC_AT = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def expected_update(op, x, index, v):
    """NumPy's in-place equivalent: x[index] = v for set, ufunc.at for the others."""
    y = x.copy()
    if op == "set":
        y[index] = v
        return y
    # ufunc.at over the flat positions the index selects (the same elements NumPy's x[index]
    # names), so every index form works, duplicates included.
    pos = np.arange(x.size).reshape(x.shape)[index]
    flat = y.reshape(-1)
    UFUNC_AT[op].at(flat, pos.reshape(-1), np.broadcast_to(v, pos.shape).reshape(-1))
    return flat.reshape(x.shape)


def run_update(op, x, index, v):
    return getattr(x.at[index], op)(v)


OPS = ("set", "add", "multiply", "min", "max")


@given(
    array_and_index(modes=("arrays", "arrays", "mask"), dtypes=(np.float32, np.float64, np.int32)),
    st.sampled_from(OPS),
    st.data(),
)
def test_at_updates_static_index(case, op, data):
    x, index = case
    shape = np.shape(x[index])
    v = data.draw(arrays(x.dtype, shape, lo=-3, hi=3, special=True))
    expected = expected_update(op, x, index, v)
    assert_same(getattr(mnp.indexing.IndexUpdater(x)[index], op)(v), expected, what="concrete")
    assert_same(mlc.jit(lambda x, v: run_update(op, x, index, v))(x, v), expected, what="jit")


@given(
    array_and_index(modes=("arrays",), dtypes=(np.float64, np.int64)),
    st.sampled_from(OPS),
    st.data(),
)
def test_at_updates_traced_index(case, op, data):
    """Index arrays passed as traced arguments: duplicates are handled at run time."""
    x, index = case
    items = list(index) if isinstance(index, tuple) else [index]
    spots = [k for k, v in enumerate(items) if isinstance(v, np.ndarray) and v.dtype != bool]
    shape = np.shape(x[index])
    v = data.draw(arrays(x.dtype, shape, lo=-3, hi=3, special=True))

    def f(x, v, *arrs):
        it = list(items)
        for k, a in zip(spots, arrs):
            it[k] = a
        return run_update(op, x, tuple(it) if isinstance(index, tuple) else it[0], v)

    got = mlc.jit(f)(x, v, *[items[k] for k in spots])
    assert_same(got, expected_update(op, x, index, v))


@pytest.mark.parametrize("op", OPS)
def test_at_duplicates(op):
    x = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    idx = np.array([0, 2, 2, -1, 2, 4, 0])
    v = np.array([5.0, -1.0, 7.0, 0.5, 3.0, 2.0, np.nan])
    expected = expected_update(op, x, idx, v)
    if op == "add":  # the same as NumPy's own ufunc.at on the index
        direct = x.copy()
        np.add.at(direct, idx, v)
        assert_same(expected, direct)
    if op == "set":
        assert expected[2] == 3.0  # NumPy: the last assignment wins; so does mlc
    assert_same(mlc.jit(lambda x, i, v: run_update(op, x, i, v))(x, idx, v), expected)
    assert_same(mlc.jit(lambda x, v: run_update(op, x, idx, v))(x, v), expected)


@given(array_and_index(modes=("basic",), dtypes=(np.float32, np.int64)), st.sampled_from(OPS))
def test_at_updates_basic_index(case, op):
    x, index = case
    v = np.asarray(np.arange(np.size(x[index])).reshape(np.shape(x[index])), x.dtype)
    expected = expected_update(op, x, index, v)
    assert_same(mlc.jit(lambda x, v: run_update(op, x, index, v))(x, v), expected)
    assert_same(mlc.jit(lambda x: run_update(op, x, index, 2))(x), expected_update(op, x, index, 2))
    graph = mlc.trace(lambda x, v: run_update(op, x, index, v), x, v)
    assert graph.count("gather") == graph.count("scatter_add") == 0  # pad + select only


def test_at_forms_and_broadcast_values():
    x = np.arange(24.0).reshape(2, 3, 4)
    f = mlc.jit(lambda x: x.at[:, 1:, ::-2].set(-1.0))
    y = x.copy()
    y[:, 1:, ::-2] = -1.0
    assert_same(f(x), y)
    g = mlc.jit(lambda x, i: x.at[i, ..., 0].add(np.ones((1, 3))))
    y = x.copy()
    np.add.at(y, (1, Ellipsis, 0), np.ones(3))
    assert_same(g(x, np.int64(1)), y)
    h = mlc.jit(lambda x: x.at[0, [0, 0, 2]].multiply(np.array([2.0, 3.0, 4.0])[:, None]))
    y = x.copy()
    np.multiply.at(y, (0, [0, 0, 2]), np.array([2.0, 3.0, 4.0])[:, None])
    assert_same(h(x), y)
    assert_same(mlc.jit(lambda x: x.at[1, 2].get())(x), x[1, 2])
    mask = x > 10
    assert_same(mlc.jit(lambda x: x.at[mask].set(0.0))(x), np.where(mask, 0.0, x))


def test_at_casts_values_and_checks_shapes():
    x = np.arange(4, dtype=np.int32)
    out = mlc.jit(lambda x: x.at[1].set(2.7))(x)
    assert_same(out, np.array([0, 2, 2, 3], np.int32))
    with pytest.raises(ValueError, match="could not be broadcast"):
        mlc.jit(lambda x: x.at[:2].set(np.ones(3, np.int32)))(x)
    with pytest.raises(IndexError, match="out of bounds"):
        mlc.jit(lambda x: x.at[4].add(1))(x)


def test_at_on_zero_dim_and_empty():
    x = np.asarray(3.0)
    assert_same(mlc.jit(lambda x: x.at[()].set(1.0))(x), np.asarray(1.0))
    assert_same(mlc.jit(lambda x: x.at[...].add(1.0))(x), np.asarray(4.0))
    e = np.zeros((0, 3))
    assert_same(mlc.jit(lambda x: x.at[:, 1].set(1.0))(e), e)
    assert_same(
        mlc.jit(lambda x, i: x.at[i].max(9.0))(np.zeros(3), np.zeros(0, np.int64)), np.zeros(3)
    )


# -- take, take_along_axis ------------------------------------------------------------------
@given(st.data())
def test_take(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(arrays(data.draw(st.sampled_from(DTYPES)), shape))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = x.size if axis is None else shape[axis]
    mode = data.draw(st.sampled_from([None, "raise", "wrap", "clip"]))
    lo, hi = (-n, n - 1) if mode in (None, "raise") else (-2 * n - 1, 2 * n + 1)
    idx_shape = data.draw(shapes(min_dims=0, max_dims=2, max_side=3))
    idx = data.draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(lo, hi)))
    check(lambda m, x: m.take(x, idx, axis=axis, mode=mode), x)
    check(lambda m, x, i: m.take(x, i, axis=axis, mode=mode), x, idx)  # traced indices


def test_take_errors():
    x = np.arange(6.0).reshape(2, 3)
    assert "out of bounds" in str(check_raises(lambda m, x: m.take(x, [6]), x))
    check_raises(lambda m, x: m.take(x, [0], axis=2), x)
    check_raises(lambda m, x: m.take(x, np.array([0.5])), x)
    check(lambda m, x: m.take(x, [0.5, -1.5]), x)  # Python numbers are truncated
    check(lambda m, x: m.take(x, [True, False], axis=1), x)


@given(st.data())
def test_take_along_axis(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(arrays(np.float32, shape, special=True))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    idx_shape = list(shape)
    idx_shape[axis] = data.draw(st.integers(0, 5))
    for d in range(len(shape)):  # other dims may be 1 on either side (broadcast)
        if d != axis % len(shape) and data.draw(st.booleans()):
            idx_shape[d] = 1
    idx = data.draw(hnp.arrays(np.int64, tuple(idx_shape), elements=st.integers(-n, n - 1)))
    check(lambda m, x, i: m.take_along_axis(x, i, axis=axis), x, idx)
    check(lambda m, x: m.take_along_axis(x, np.argsort(x, axis=axis), axis=axis), x, jit=False)


def test_take_along_axis_none_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    check(lambda m, x: m.take_along_axis(x, np.array([5, 0, -1]), axis=None), x)
    check_raises(lambda m, x: m.take_along_axis(x, np.array([0, 1]), axis=1), x)
    check_raises(lambda m, x: m.take_along_axis(x, np.zeros((2, 1)), axis=1), x)
    check_raises(lambda m, x: m.take_along_axis(x, np.zeros((2, 1), int), axis=None), x)


@given(st.data())
def test_separated_advanced_indices(data):
    """Advanced indices split by a slice, None or ... put their dims first (NumPy's rule)."""
    shape = data.draw(shapes(min_dims=3, max_dims=4, min_side=1, max_side=4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    batch = tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3)))
    first = rng.integers(-shape[0], shape[0], size=_sub_shape(rng, batch))
    last = rng.integers(-shape[-1], shape[-1], size=_sub_shape(rng, batch))
    between = data.draw(
        st.sampled_from([(slice(None),), (Ellipsis,), (None, Ellipsis), (0, Ellipsis)])
    )
    index = (first,) + between + (last,)
    check(lambda m, x: get(m, x, index), x)
    assert_same(mlc.jit(lambda x, a, b: x[(a,) + between + (b,)])(x, first, last), x[index])
