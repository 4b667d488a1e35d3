"""NumPy's protocols on tracers: ``np.sin(tracer)`` and ``np.concatenate([tracer, ...])`` route
here and on to the mlc.numpy function of the same name; anything else is named in the error."""


def _mnp():
    import mlc.numpy as mnp

    return mnp


# NumPy submodules mlc.numpy does not provide: their functions are named with the submodule.
_SUBMODULES = ("linalg", "fft", "random", "ma", "polynomial")


def _lookup(name):
    """The mlc.numpy function NumPy's ``name`` routes to, or None (names are NumPy's own)."""
    mnp = _mnp()
    return vars(mnp).get(name) if name in mnp.__all__ else None


def array_ufunc(ufunc, method, inputs, kwargs):
    if method != "__call__":
        raise NotImplementedError(
            f"numpy.{ufunc.__name__}.{method} is not supported on traced arrays by mlc"
        )
    fn = _lookup(ufunc.__name__)
    if fn is None:
        raise NotImplementedError(
            f"numpy.{ufunc.__name__} is not supported on traced arrays by mlc "
            "(see docs/numpy.md for the supported functions)"
        )
    return fn(*inputs, **kwargs)


def array_function(func, args, kwargs):
    name = func.__name__
    parts = (getattr(func, "__module__", None) or "").split(".")
    if len(parts) > 1 and parts[0] == "numpy" and parts[1] in _SUBMODULES:
        fn, full = None, f"numpy.{parts[1]}.{name}"
    else:
        fn, full = _lookup(name), f"numpy.{name}"
    if fn is None:
        raise NotImplementedError(
            f"{full} is not supported on traced arrays by mlc "
            "(see docs/numpy.md for the supported functions)"
        )
    return fn(*args, **kwargs)
