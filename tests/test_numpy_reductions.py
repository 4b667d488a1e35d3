"""Reductions and scans of mlc.numpy against NumPy: values, dtypes, shapes, axes, errors.

Every case runs through ``check``: mlc.numpy on concrete arrays, plain NumPy on tracers inside
mlc.jit, and mlc.numpy inside mlc.jit.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlc
import mlc.numpy as mnp
from tests.conformance import arrays, assert_same, check, check_raises, shapes

ALL = (np.float32, np.float64, np.int32, np.int64, np.bool_)
NUMERIC = (np.float32, np.float64, np.int32, np.int64)
FLOATS = (np.float32, np.float64)


@st.composite
def array(draw, dtypes=ALL, min_dims=0, max_dims=4, min_side=0, special=True):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side))
    return draw(arrays(dtype, shape, special=special))


@st.composite
def axis_for(draw, ndim):
    """None, an int (negative too; 0 or -1 for a 0-d array) or a tuple in any order and sign."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1)) if ndim else draw(st.sampled_from([0, -1]))
    chosen = draw(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


@st.composite
def array_axis(draw, dtypes=ALL, min_side=0, special=True):
    x = draw(array(dtypes, min_side=min_side, special=special))
    return x, draw(axis_for(x.ndim)), draw(st.booleans())


def call(name, **kwargs):
    """``f(module, *arrays)`` calling the function ``name`` of that module with ``kwargs``."""
    return lambda m, *arrays: getattr(m, name)(*arrays, **kwargs)


def numpy_raises(f, *arrays):
    try:
        with np.errstate(all="ignore"):
            f(np, *arrays)
    except Exception:
        return True
    return False


def conform(f, *arrays):
    """Same values as NumPy, or the same exception where NumPy raises one (an empty
    reduction, mean over axis 0 of a 0-d array, ...)."""
    if numpy_raises(f, *arrays):
        return check_raises(f, *arrays)
    return check(f, *arrays)


# -- sum, prod, mean, all, any, max, min, ptp -----------------------------------------------
@pytest.mark.parametrize("name", ["sum", "prod", "all", "any"])
@given(case=array_axis())
def test_total_reductions(name, case):
    x, axis, keepdims = case
    conform(lambda m, x: getattr(m, name)(x, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("name", ["mean", "nansum", "nanmean"])
@given(case=array_axis(dtypes=NUMERIC))
def test_mean_and_nan_sums(name, case):
    x, axis, keepdims = case
    conform(lambda m, x: getattr(m, name)(x, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin", "ptp", "nanmax", "nanmin"])
@given(case=array_axis(dtypes=ALL))
def test_extremes(name, case):
    x, axis, keepdims = case
    if name == "ptp" and x.dtype == np.bool_:
        x = x.astype(np.int32)

    def f(m, x):
        return getattr(m, name)(x, axis=axis, keepdims=keepdims)

    if numpy_raises(f, x):  # a reduction over nothing: the same ValueError
        check_raises(f, x)
    else:
        check(f, x)


@pytest.mark.parametrize("name", ["sum", "prod", "mean"])
@given(
    case=array_axis(dtypes=ALL),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]),
)
def test_dtype_argument(name, case, dtype):
    x, axis, keepdims = case
    if name == "mean" and np.dtype(dtype).kind == "i":
        x = np.nan_to_num(x).astype(np.int64)  # NaN cast to int is platform-defined
    elif np.dtype(dtype).kind == "i":
        x = np.nan_to_num(x, posinf=0, neginf=0)
    conform(lambda m, x: getattr(m, name)(x, axis=axis, dtype=dtype, keepdims=keepdims), x)


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.int64, np.float32, np.float64])
def test_result_dtypes(dtype):
    x = np.ones((2, 3), dtype)
    for name in ["sum", "prod", "mean", "var", "std", "cumsum", "cumprod", "max", "trace"]:
        expected = getattr(np, name)(x)
        got = getattr(mnp, name)(x)
        assert got.dtype == expected.dtype, name
        assert_same(mlc.jit(getattr(np, name))(x), expected, what=name)
    assert mnp.argmax(x).dtype == np.int64
    assert mnp.all(x).dtype == np.bool_


def test_python_scalars_and_lists():
    check(lambda m: m.sum(3))
    check(lambda m: m.mean([1, 2, 4]))
    check(lambda m: m.max(2.5))
    check(lambda m: m.cumsum(7))
    check(lambda m: m.argmax([[1, 9], [9, 2]], axis=0))


@st.composite
def mask_for(draw, shape):
    """A bool mask that broadcasts to ``shape`` (leading dims dropped, some dims of size 1)."""
    lead = draw(st.integers(0, len(shape)))
    mshape = tuple(1 if draw(st.booleans()) else n for n in shape[lead:])
    return draw(arrays(np.bool_, mshape))


WHERE = ["sum", "prod", "mean", "all", "any", "var", "std", "nansum", "nanmean"]


@pytest.mark.parametrize("name", WHERE + ["max", "min", "nanmax", "nanmin"])
@given(case=array_axis(dtypes=NUMERIC), data=st.data())
def test_where_mask(name, case, data):
    x, axis, keepdims = case
    mask = data.draw(mask_for(x.shape))
    kw = {"initial": -1} if name in ("max", "min", "nanmax", "nanmin") else {}
    conform(
        lambda m, x, w: getattr(m, name)(x, axis=axis, keepdims=keepdims, where=w, **kw), x, mask
    )


# -- NaN and inf ----------------------------------------------------------------------------
def test_nan_and_inf_propagate():
    x = np.array([[1.0, np.nan, 3.0], [np.inf, -np.inf, 0.0], [2.0, 5.0, np.inf]])
    for axis in (None, 0, 1):
        for name in ("sum", "prod", "mean", "max", "min", "argmax", "argmin", "var", "std"):
            check(call(name, axis=axis), x)
        for name in ("all", "any", "nansum", "nanmean", "nanmax", "nanmin", "cumsum"):
            check(call(name, axis=axis), x)
    assert mnp.argmax(x) == 1 and mnp.argmin(x) == 1  # the first NaN wins
    assert np.isnan(mnp.max(x)) and mnp.all(np.array([np.nan]))


def test_nan_functions_on_all_nan_slices():
    x = np.array([[np.nan, np.nan], [1.0, np.nan]], np.float32)
    for name in ("nanmax", "nanmin", "nanmean", "nansum"):
        for axis in (None, 0, 1):
            check(call(name, axis=axis), x)
    assert np.isnan(mnp.nanmax(x, axis=1)[0]) and mnp.nanmax(x, axis=1)[1] == 1.0


# -- argmax / argmin ------------------------------------------------------------------------
@st.composite
def array_single_axis(draw, dtypes=ALL):
    x = draw(array(dtypes))
    if draw(st.booleans()):
        axis = None
    elif x.ndim:
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
    else:
        axis = draw(st.sampled_from([0, -1]))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(case=array_single_axis())
def test_arg_extremes(name, case):
    x, axis, keepdims = case

    def f(m, x):
        return getattr(m, name)(x, axis=axis, keepdims=keepdims)

    if numpy_raises(f, x):
        err = check_raises(f, x)
        assert f"attempt to get {name} of an empty sequence" in str(err)
    else:
        check(f, x)


# -- var / std ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["var", "std"])
@given(case=array_axis(dtypes=ALL), ddof=st.sampled_from([0, 1, 2, 0.5]))
def test_var_std(name, case, ddof):
    x, axis, keepdims = case
    conform(lambda m, x: getattr(m, name)(x, axis=axis, ddof=ddof, keepdims=keepdims), x)


@pytest.mark.parametrize("name", ["var", "std"])
@given(case=array_axis(dtypes=NUMERIC, special=False), dtype=st.sampled_from(FLOATS))
def test_var_std_dtype_and_correction(name, case, dtype):
    x, axis, keepdims = case
    conform(lambda m, x: getattr(m, name)(x, axis=axis, dtype=dtype, keepdims=keepdims), x)
    conform(lambda m, x: getattr(m, name)(x, axis=axis, correction=1), x)


def test_var_degrees_of_freedom_and_mean_argument():
    x = np.array([[1.0, 2.0], [3.0, 3.0]])
    check(lambda m, x: m.var(x, axis=1, ddof=2), x)  # 0/0 -> nan and 1/0... -> inf
    check(lambda m, x: m.std(x, ddof=5), x)
    check(lambda m, x: m.var(x, axis=0, mean=m.mean(x, axis=0, keepdims=True)), x)
    with pytest.raises(ValueError, match="ddof and correction"):
        mnp.var(x, ddof=1, correction=1)


# -- scans ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(case=array_single_axis(), dtype=st.sampled_from([None, np.float64, np.int64]))
def test_scans(name, case, dtype):
    x, axis, _ = case
    if dtype is not None and np.dtype(dtype).kind == "i":
        x = np.nan_to_num(x, posinf=0, neginf=0)
    check(lambda m, x: getattr(m, name)(x, axis=axis, dtype=dtype), x)


# -- diff -----------------------------------------------------------------------------------
@given(
    x=array(min_dims=1, max_dims=3),
    n=st.integers(0, 3),
    data=st.data(),
)
def test_diff(x, n, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check(lambda m, x: m.diff(x, n=n, axis=axis), x)


@given(x=array(dtypes=NUMERIC, min_dims=1, max_dims=3), data=st.data())
def test_diff_prepend_append(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    side = list(x.shape)
    side[axis] = data.draw(st.integers(0, 2))
    edge = data.draw(arrays(np.float32, tuple(side)))
    check(lambda m, x, e: m.diff(x, axis=axis, prepend=e, append=1), x, edge)
    check(lambda m, x: m.diff(x, n=2, axis=axis, prepend=0), x)


def test_diff_bool_and_errors():
    check(lambda m, x: m.diff(x), np.array([True, False, False, True]))
    check_raises(lambda m, x: m.diff(x), np.array(3.0))
    check_raises(lambda m, x: m.diff(x, n=-1), np.ones(3))
    check_raises(lambda m, x: m.diff(x, axis=2), np.ones((2, 3)))
    check_raises(lambda m, x: m.diff(x, prepend=np.ones((3, 1))), np.ones((2, 3)))


# -- trace ----------------------------------------------------------------------------------
@given(
    x=array(min_dims=2, max_dims=4, special=True),
    offset=st.integers(-5, 5),
    data=st.data(),
)
def test_trace(x, offset, data):
    axis1, axis2 = data.draw(
        st.lists(
            st.integers(-x.ndim, x.ndim - 1), min_size=2, max_size=2, unique_by=lambda a: a % x.ndim
        )
    )
    dtype = data.draw(st.sampled_from([None, np.float64]))
    check(lambda m, x: m.trace(x, offset=offset, axis1=axis1, axis2=axis2, dtype=dtype), x)


def test_trace_errors():
    check_raises(lambda m, x: m.trace(x), np.ones(3))
    check_raises(lambda m, x: m.trace(x, axis1=1, axis2=-1), np.ones((3, 3)))
    err = check_raises(lambda m, x: m.trace(x, axis1=3), np.ones((3, 3)))
    assert isinstance(err, np.exceptions.AxisError)


# -- average --------------------------------------------------------------------------------
@given(case=array_axis(dtypes=NUMERIC, special=False), returned=st.booleans())
def test_average_unweighted(case, returned):
    x, axis, keepdims = case
    if axis == () or (x.ndim == 0 and axis is not None):
        return  # NumPy's average normalizes axes strictly: covered in test_average_errors

    def f(m, x):
        return m.average(x, axis=axis, returned=returned, keepdims=keepdims)

    if numpy_raises(f, x):  # returned=True with an empty result divides by zero in NumPy
        check_raises(f, x)
    else:
        check(f, x)


@given(
    x=array(dtypes=NUMERIC, min_dims=1, min_side=1, special=False),
    wdtype=st.sampled_from([np.float32, np.float64, np.int32]),
    data=st.data(),
)
def test_average_weighted(x, wdtype, data):
    full = data.draw(st.booleans())
    if full:
        axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
        wshape = x.shape
    else:
        axis = tuple(data.draw(st.permutations(range(x.ndim))))[: data.draw(st.integers(1, x.ndim))]
        wshape = tuple(x.shape[a] for a in axis)
    w = data.draw(arrays(wdtype, wshape, lo=1, hi=5))
    keepdims = data.draw(st.booleans())
    returned = data.draw(st.booleans())
    check(
        lambda m, x, w: m.average(x, axis=axis, weights=w, returned=returned, keepdims=keepdims),
        x,
        w,
    )


def test_average_errors():
    x = np.ones((2, 3))
    check_raises(lambda m, x: m.average(x, weights=np.ones(3)), x)  # TypeError
    check_raises(lambda m, x: m.average(x, axis=1, weights=np.ones(2)), x)  # ValueError
    check_raises(lambda m, x: m.average(x, axis=(1, 1)), x)
    with pytest.raises(ZeroDivisionError):
        mnp.average(x, axis=1, weights=np.array([1.0, -1.0, 0.0]))


# -- methods on tracers ---------------------------------------------------------------------
def test_tracer_methods():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7

    def f(x):
        return (
            x.sum(axis=1),
            x.mean(),
            x.max(-1, keepdims=True),
            x.min(axis=(0, 2)),
            x.argmax(),
            x.argmin(axis=1),
            x.var(ddof=1),
            x.std(axis=0),
            x.prod(axis=0),
            x.all(axis=1),
            x.any(),
            x.cumsum(axis=2),
            x.cumprod(),
            x.trace(offset=1),
        )

    assert_same(mlc.jit(f)(x), f(x))
    # ndarray.ptp is gone in NumPy 2; the tracer keeps it, as numpy.ptp.
    assert_same(mlc.jit(lambda x: x.ptp(axis=1))(x), np.ptp(x, axis=1))


# -- error cases ----------------------------------------------------------------------------
EMPTY_AXIS = [((0,), None), ((3, 0), 1), ((0, 0), 1), ((2, 0, 3), (0, 1))]


@pytest.mark.parametrize("shape, axis", EMPTY_AXIS)
@pytest.mark.parametrize("name, op", [("max", "maximum"), ("min", "minimum"), ("amax", "maximum")])
def test_empty_reduction_errors(shape, axis, name, op):
    err = check_raises(lambda m, x: getattr(m, name)(x, axis=axis), np.zeros(shape))
    assert isinstance(err, ValueError)
    assert f"zero-size array to reduction operation {op} which has no identity" in str(err)


def test_empty_reductions_that_are_fine():
    check(lambda m, x: m.max(x, axis=1), np.zeros((0, 3)))
    check(lambda m, x: m.argmax(x, axis=1), np.zeros((0, 3)))
    check(lambda m, x: m.max(x, axis=()), np.zeros((0,)))
    check(lambda m, x: m.max(x, axis=0, initial=-2.0), np.zeros((0, 2)))
    check(lambda m, x: m.all(x, axis=0), np.zeros((0, 2)))
    check(lambda m, x: m.any(x), np.zeros((0, 2)))
    check(lambda m, x: m.sum(x, axis=1, keepdims=True), np.zeros((2, 0), np.int32))
    check(lambda m, x: m.prod(x), np.zeros((0,), np.float32))
    check(lambda m, x: m.mean(x, axis=0), np.zeros((0, 2)))


@pytest.mark.parametrize(
    "name", ["sum", "prod", "mean", "max", "min", "all", "any", "var", "std", "ptp", "nansum"]
)
def test_axis_errors(name):
    x = np.ones((2, 3), np.float32)
    err = check_raises(lambda m, x: getattr(m, name)(x, axis=2), x)
    assert isinstance(err, np.exceptions.AxisError)
    check_raises(lambda m, x: getattr(m, name)(x, axis=-3), x)
    err = check_raises(lambda m, x: getattr(m, name)(x, axis=(0, -2)), x)
    assert "duplicate" in str(err)
    check_raises(lambda m, x: getattr(m, name)(x, axis=(0,)), np.float32(1))  # 0-d, tuple
    check_raises(lambda m, x: getattr(m, name)(x, axis=1.0), x)  # TypeError


@pytest.mark.parametrize("name", ["argmax", "argmin", "cumsum", "cumprod"])
def test_single_axis_errors(name):
    x = np.ones((2, 3))
    err = check_raises(lambda m, x: getattr(m, name)(x, axis=2), x)
    assert isinstance(err, np.exceptions.AxisError)
    check_raises(lambda m, x: getattr(m, name)(x, axis=(0, 1)), x)  # TypeError
    check_raises(lambda m, x: getattr(m, name)(x, axis=1), np.float64(2))


def test_unsupported_arguments_are_clear():
    x = np.ones((2, 3))
    with pytest.raises(NotImplementedError, match="out="):
        mnp.sum(x, out=np.empty(()))
    check_raises(lambda m, x: m.sum(x, where=np.array([1, 0, 1])), x)  # TypeError: not bool
    check_raises(lambda m, x: m.sum(x, where=np.ones((3, 2, 3), bool)), x)  # ValueError
    err = check_raises(lambda m, x: m.max(x, where=x > 2), x)
    assert "to use a where mask one has to specify 'initial'" in str(err)
    check_raises(lambda m, x: m.nanmin(x, where=x > 2), x)
    check_raises(lambda m, x: m.ptp(x), np.array([True, False]))  # TypeError: bool subtract
    check_raises(lambda m, x: m.nanmean(x, dtype=np.int32), x)
    with pytest.raises(TypeError):
        mnp.sum(x, bogus=1)


def test_initial():
    x = np.array([[1.0, 5.0], [-3.0, np.nan]], np.float32)
    for name, initial in [("sum", 2.0), ("prod", 3.0), ("max", 4.0), ("min", -1.0)]:
        for axis in (None, 0, 1):
            check(call(name, axis=axis, initial=initial), x)
    check(lambda m, x: m.nanmax(x, axis=1, initial=0.0), x)
