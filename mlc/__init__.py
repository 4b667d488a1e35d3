"""mlc: a trace-and-fuse tensor compiler for plain NumPy code.

>>> import numpy as np, mlc
>>> mlc.jit(lambda x: np.exp(x) + 1)(np.zeros(3))
array([2., 2., 2.])
"""

from mlc import (
    ir,
    numpy,  # noqa: E402  (after the tracer: it builds on it)
)
from mlc.api import Jitted, Lowered, jit, reset_stats, stats  # noqa: E402
from mlc.custom import checkpoint, custom_jvp, custom_vjp
from mlc.errors import ConcretizationError, TracingError
from mlc.tracing import Tracer, trace
from mlc.transforms import (
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    value_and_grad,
    vjp,
    vmap,
)

__version__ = "0.1.0"

__all__ = [
    "ConcretizationError",
    "Jitted",
    "Lowered",
    "Tracer",
    "TracingError",
    "checkpoint",
    "custom_jvp",
    "custom_vjp",
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "value_and_grad",
    "vjp",
    "vmap",
    "ir",
    "jit",
    "numpy",
    "reset_stats",
    "stats",
    "trace",
]
