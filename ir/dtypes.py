"""Element types of the IR.

mlc keeps NumPy's dtypes as its element types (so promotion, printing and evaluation all agree
with NumPy) and restricts them to the set every backend supports. Short names are used in the
textual IR: ``f32[3,4]``.
"""

import numpy as np

# The supported element types, in the order short names are documented.
SUPPORTED = {
    "bool": np.dtype(np.bool_),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
# Reserved: known to the printer and parser, not yet to the primitives' rules and backends.
RESERVED = {
    "float16": np.dtype(np.float16),
    "complex64": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128),
}

SHORT = {
    "bool": "i1",
    "int32": "i32",
    "int64": "i64",
    "float16": "f16",
    "float32": "f32",
    "float64": "f64",
    "complex64": "c64",
    "complex128": "c128",
}
FROM_SHORT = {v: k for k, v in SHORT.items()}

bool_ = SUPPORTED["bool"]
int32 = SUPPORTED["int32"]
int64 = SUPPORTED["int64"]
float32 = SUPPORTED["float32"]
float64 = SUPPORTED["float64"]


def dtype(d) -> np.dtype:
    """Canonical dtype for ``d`` (a name, short name, NumPy dtype or type); TypeError if unsupported.

    >>> dtype("f32")
    dtype('float32')
    """
    if isinstance(d, str) and d in FROM_SHORT:
        d = FROM_SHORT[d]
    try:
        d = np.dtype(d)
    except TypeError as e:
        raise TypeError(f"data type {d!r} not understood") from e
    if d.name not in SUPPORTED:
        names = ", ".join(SUPPORTED)
        raise TypeError(f"mlc does not support dtype {d.name}; supported: {names}")
    return d


def short(d: np.dtype) -> str:
    """Short name used in the textual IR: ``f32``."""
    return SHORT[np.dtype(d).name]


def is_float(d) -> bool:
    return np.dtype(d).kind == "f"


def is_int(d) -> bool:
    return np.dtype(d).kind in "iu"


def is_bool(d) -> bool:
    return np.dtype(d).kind == "b"
