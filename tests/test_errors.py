"""Errors are part of the interface: NumPy's exception types, messages that name the user's line."""

import numpy as np
import pytest

import mlc
import mlc.numpy as mnp

X = np.ones((2, 3), np.float32)


def _line_of(fn, text):
    import inspect

    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(text)


def branchy(x):
    if x.sum() > 0:  # the offending line
        return x
    return -x


def looping(x):
    while x.max() > 1:  # loops on a traced value
        x = x / 2
    return x


@pytest.mark.parametrize("fn,text", [(branchy, "the offending line"), (looping, "loops on")])
def test_concretization_error_names_file_and_line(fn, text):
    with pytest.raises(mlc.ConcretizationError) as e:
        mlc.jit(fn)(X)
    msg = str(e.value)
    assert f"test_errors.py:{_line_of(fn, text)}" in msg
    assert "static_argnums" in msg and "where" in msg


@pytest.mark.parametrize("convert", [bool, int, float, lambda t: np.asarray(t), lambda t: t.item()])
def test_conversions_raise_concretization_error(convert):
    with pytest.raises(mlc.ConcretizationError, match="test_errors.py"):
        mlc.jit(lambda x: convert(x[0, 0] if False else x.sum()))(X)


def test_concretization_error_is_a_type_error():
    assert issubclass(mlc.ConcretizationError, TypeError)


def test_unsupported_function_is_named():
    with pytest.raises(NotImplementedError, match="mlc.numpy.unwrap"):
        mnp.unwrap(X)
    with pytest.raises(AttributeError, match="frobnicate"):
        mnp.frobnicate(X)
    with pytest.raises(NotImplementedError, match=r"numpy\.fft\.fft"):
        mlc.jit(lambda x: np.fft.fft(x))(X)
    with pytest.raises(NotImplementedError, match=r"numpy\.linalg\.inv"):
        mlc.jit(lambda x: np.linalg.inv(x))(np.eye(2))
    with pytest.raises(NotImplementedError, match=r"numpy\.gcd"):
        mlc.jit(lambda x: np.gcd(x, x))(np.arange(3))
    with pytest.raises(NotImplementedError, match=r"numpy\.add\.accumulate"):
        mlc.jit(lambda x: np.add.accumulate(x))(X)


def test_setitem_names_the_functional_alternative():
    def f(x):
        x[0] = 1.0
        return x

    with pytest.raises(mlc.TracingError, match=r"\.at\[") as e:
        mlc.jit(f)(X)
    assert "test_errors.py" in str(e.value)


def test_broadcast_mismatch_is_value_error_like_numpy():
    a, b = np.ones((2, 3)), np.ones((4,))
    with pytest.raises(ValueError):
        np.add(a, b)
    with pytest.raises(
        ValueError, match=r"could not be broadcast together with shapes \(2,3\) \(4,\)"
    ):
        mnp.add(a, b)
    with pytest.raises(ValueError, match="test_errors.py"):
        mlc.jit(lambda x, y: x + y)(a, b)


def test_unsupported_dtype_is_type_error():
    with pytest.raises(TypeError, match="complex"):
        mlc.jit(lambda x: x + 1)(np.ones(2, np.complex64))
    with pytest.raises(TypeError, match="uint8"):
        mlc.jit(lambda x: x + 1)(np.ones(2, np.uint8))


def test_overflowing_python_int_is_overflow_error():
    with pytest.raises(OverflowError):
        np.add(np.ones(2, np.int32), 2**40)
    with pytest.raises(OverflowError):
        mnp.add(np.ones(2, np.int32), 2**40)


def test_bool_negative_is_type_error():
    with pytest.raises(TypeError):
        np.negative(np.ones(2, bool))
    with pytest.raises(TypeError):
        mnp.negative(np.ones(2, bool))
