"""NumPy's protocols on tracers: ``np.sin(tracer)`` and ``np.concatenate([tracer, ...])`` route
here and on to the mlc.numpy function of the same name; anything else is named in the error."""


def _mnp():
    import mlc.numpy as mnp

    return mnp


# NumPy names whose mlc.numpy function has another name.
_ALIASES = {"amax": "max", "amin": "min", "round_": "round", "product": "prod"}


def _lookup(name):
    mnp = _mnp()
    fn = getattr(mnp, _ALIASES.get(name, name), None)
    if fn is None or name not in mnp.__all__ and _ALIASES.get(name) is None:
        return None
    return fn


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
    module = getattr(func, "__module__", "") or ""
    sub = module.split(".")[1] if module.count(".") and module.startswith("numpy.") else ""
    if sub in ("linalg", "fft", "random", "ma", "polynomial") and sub:
        fn = getattr(vars(_mnp()).get(sub), name, None) if sub == "linalg" else None
        full = f"numpy.{sub}.{name}"
    else:
        fn = _lookup(name)
        full = f"numpy.{name}"
    if fn is None:
        raise NotImplementedError(
            f"{full} is not supported on traced arrays by mlc "
            "(see docs/numpy.md for the supported functions)"
        )
    return fn(*args, **kwargs)
