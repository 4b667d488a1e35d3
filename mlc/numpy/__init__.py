"""mlc.numpy: the NumPy namespace, traceable.

Every function works on tracers (inside ``mlc.jit`` and the transforms) and on concrete arrays
(it then returns NumPy arrays, computed through the same graph and the reference interpreter).
Values, dtypes, broadcasting and keyword arguments follow NumPy 2. A NumPy function not listed
here raises ``NotImplementedError`` naming it. docs/numpy.md lists what is supported.
"""

import numpy as _np

from . import _core, _dispatch, _ufuncs, indexing  # noqa: F401
from ._creation import *  # noqa: F401,F403
from ._linalg import *  # noqa: F401,F403
from ._reductions import *  # noqa: F401,F403
from ._shape import *  # noqa: F401,F403
from ._ufuncs import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403

# dtype names and constants, NumPy's own objects.
bool_ = _np.bool_
int32 = _np.int32
int64 = _np.int64
float32 = _np.float32
float64 = _np.float64
float16 = _np.float16
dtype = _np.dtype
pi = _np.pi
e = _np.e
inf = _np.inf
nan = _np.nan
newaxis = None
euler_gamma = _np.euler_gamma
finfo = _np.finfo
iinfo = _np.iinfo
ndarray = _np.ndarray

from . import _creation, _linalg, _reductions, _shape  # noqa: E402

__all__ = sorted(
    set(_ufuncs.__all__ + _creation.__all__ + _linalg.__all__ + _reductions.__all__)
    | set(_shape.__all__ + indexing.__all__)
    | {"bool_", "int32", "int64", "float32", "float64", "float16", "dtype", "pi", "e", "inf"}
    | {"nan", "newaxis", "euler_gamma", "finfo", "iinfo", "ndarray"}
)


def __getattr__(name):
    # NumPy names mlc does not support are named as such; other names are plain typos.
    if name.startswith("_") or not hasattr(_np, name):
        raise AttributeError(f"module 'mlc.numpy' has no attribute '{name}'")
    raise NotImplementedError(
        f"mlc.numpy.{name} is not supported (see docs/numpy.md for the supported functions)"
    )
