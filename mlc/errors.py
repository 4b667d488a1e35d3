"""Exceptions mlc raises, and the helper that points a message at the user's line."""

import os
import sys

_PKG_DIRS = None


def _package_dirs():
    global _PKG_DIRS
    if _PKG_DIRS is None:
        import numpy

        import mlc
        import mlc.backends
        import mlc.ir

        mods = (mlc, mlc.ir, mlc.backends, numpy)
        _PKG_DIRS = tuple(list(m.__path__)[0].rstrip(os.sep) + os.sep for m in mods)
    return _PKG_DIRS


def _is_script(filename) -> bool:
    """The ``mlc`` console script (``.../bin/mlc``): mlc's own code, not the user's."""
    return os.path.basename(filename) == "mlc"


def user_frame():
    """The innermost stack frame that is not inside mlc or NumPy: the user's line."""
    dirs = _package_dirs()
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(dirs) and not fn.startswith("<frozen") and not _is_script(fn):
            return f
        f = f.f_back
    return None


def user_location():
    """``(file, line)`` of the user's code being traced, or None."""
    f = user_frame()
    if f is None:
        return None
    return f.f_code.co_filename, f.f_lineno


def where() -> str:
    loc = user_location()
    return f"{loc[0]}:{loc[1]}" if loc else "<unknown>"


class ConcretizationError(TypeError):
    """A traced value was used where Python needs a concrete one (``if``, ``bool()``, ``int()``)."""


class TracingError(TypeError):
    """A traced function did something mlc cannot trace (for example, in-place assignment)."""
