"""The tracer: a stand-in for an array that records every operation as an IR node.

A ``Tracer`` wraps one ``Node``. Operators, array methods, NumPy ufuncs (``__array_ufunc__``)
and NumPy functions (``__array_function__``) all route to ``mlc.numpy``, which builds nodes, so
plain NumPy code traces unchanged. There is no global trace state: building a node is all that
tracing is, and a graph is whatever the outputs reach.
"""

from __future__ import annotations

import os

import numpy as np

from mlc import pytree
from mlc.errors import ConcretizationError, TracingError, user_location, where
from mlc.ir import Graph, SourceLoc
from mlc.ir import graph as ir_graph
from mlc.ir import primitives as P


def _loc():
    loc = user_location()
    if loc is None:
        return None
    file, line = loc
    if os.path.isabs(file) and file.startswith(os.getcwd() + os.sep):
        file = os.path.relpath(file)  # shorter, and stable across checkouts
    return SourceLoc(file, line)


ir_graph.location_hook = _loc


def _mnp():
    import mlc.numpy as mnp

    return mnp


class Tracer:
    """An abstract array: shape and dtype known, values not.

    ``weak`` marks values that came from Python scalars: under NumPy 2 promotion (NEP 50) they
    take the dtype of the array they meet. ``pyval`` keeps such a scalar's value.
    """

    __slots__ = ("node", "weak", "pyval")
    __array_priority__ = 1000

    def __init__(self, node, weak=False, pyval=None):
        self.node = node
        self.weak = weak
        self.pyval = pyval

    # -- metadata ---------------------------------------------------------------------------
    shape = property(lambda self: self.node.type.shape)
    dtype = property(lambda self: self.node.type.dtype)
    ndim = property(lambda self: len(self.node.type.shape))
    size = property(lambda self: self.node.type.size)
    itemsize = property(lambda self: self.node.type.dtype.itemsize)
    nbytes = property(lambda self: self.node.type.size * self.node.type.dtype.itemsize)
    T = property(lambda self: _mnp().transpose(self))
    mT = property(lambda self: _mnp().swapaxes(self, -1, -2))
    flat = property(lambda self: _mnp().ravel(self))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return f"Tracer({self.node.type})"

    # -- concretization: Python needs a value here ------------------------------------------
    def _concrete(self, what):
        raise ConcretizationError(
            f"{where()}: {what} needs a concrete value, but this is a traced array "
            f"{self.node.type}. Python control flow and conversions cannot depend on traced "
            "values. Make the argument static (mlc.jit(f, static_argnums=...) or "
            "static_argnames=...), or express the choice with mlc.numpy.where."
        )

    def __bool__(self):
        self._concrete("bool() (an `if`, `while`, `and`/`or` or `not`)")

    def __int__(self):
        self._concrete("int()")

    def __float__(self):
        self._concrete("float()")

    def __complex__(self):
        self._concrete("complex()")

    def __index__(self):
        self._concrete("using an array as a Python index (operator.index)")

    def __array__(self, dtype=None, copy=None):
        self._concrete("conversion to a NumPy array (np.asarray / np.array)")

    def tolist(self):
        self._concrete("tolist()")

    def item(self, *args):
        self._concrete("item()")

    def __hash__(self):
        raise TypeError("unhashable type: 'Tracer'")

    # -- mutation: not traceable ------------------------------------------------------------
    def __setitem__(self, index, value):
        raise TracingError(
            f"{where()}: in-place assignment x[...] = v is not traceable. Use the functional "
            "form: x = x.at[...].set(v) (also .add, .multiply, .min, .max), which returns "
            "a new array."
        )

    @property
    def at(self):
        return _mnp().indexing.IndexUpdater(self)

    # -- NumPy protocols --------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _mnp()._dispatch.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _mnp()._dispatch.array_function(func, args, kwargs)

    # -- indexing ---------------------------------------------------------------------------
    def __getitem__(self, index):
        return _mnp().indexing.getitem(self, index)

    # -- methods NumPy users call -----------------------------------------------------------
    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _mnp().reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return _mnp().transpose(self, axes or None)

    def astype(self, dtype, copy=True):
        return _mnp().astype(self, dtype)

    def copy(self):
        return _mnp().copy(self)

    def view(self, *a, **k):
        raise NotImplementedError("mlc.numpy does not support ndarray.view")

    def fill(self, value):
        self.__setitem__(..., value)


def _method(name, numpy_name=None):
    def m(self, *args, **kwargs):
        return getattr(_mnp(), numpy_name or name)(self, *args, **kwargs)

    m.__name__ = name
    return m


for _name in (
    "sum mean prod max min var std argmax argmin all any cumsum cumprod ravel flatten squeeze "
    "dot clip swapaxes round repeat diagonal trace nonzero argsort sort conj take ptp"
).split():
    setattr(Tracer, _name, _method(_name))
Tracer.flatten = _method("flatten", "ravel")
Tracer.conj = _method("conj", "conjugate")


def _binary(name, reflected=False):
    def op(self, other):
        fn = getattr(_mnp(), name)
        return fn(other, self) if reflected else fn(self, other)

    return op


for _dunder, _fn in {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "matmul": "matmul",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
}.items():
    setattr(Tracer, f"__{_dunder}__", _binary(_fn))
    setattr(Tracer, f"__r{_dunder}__", _binary(_fn, reflected=True))
for _dunder, _fn in {
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
}.items():
    setattr(Tracer, f"__{_dunder}__", _binary(_fn))
for _dunder, _fn in {
    "neg": "negative",
    "pos": "positive",
    "abs": "absolute",
    "invert": "invert",
}.items():
    setattr(Tracer, f"__{_dunder}__", _method(_dunder, _fn))
Tracer.__divmod__ = lambda self, other: (self // other, self % other)


def _pow(self, other):
    """``x ** y`` as ndarray.__pow__: NumPy 2 turns float ``x ** 2``, ``x ** -1`` and ``x ** 0.5``
    (exact Python int / float exponents) into square, reciprocal and sqrt, which differ from
    power at -0.0 and -inf (``-0.0 ** 0.5`` is -0.0) and by an ulp elsewhere."""
    mnp = _mnp()
    if self.dtype.kind == "f" and not self.weak:
        if type(other) is int and other in (2, -1):
            return mnp.square(self) if other == 2 else mnp.reciprocal(self)
        if type(other) is float and other == 0.5:
            return mnp.sqrt(self)
    return mnp.power(self, other)


Tracer.__pow__ = _pow
Tracer.__rpow__ = _binary("power", reflected=True)


# -- tracing a function ---------------------------------------------------------------------
def on_device(x) -> bool:
    """A GPU array (CuPy's, or any with ``__cuda_array_interface__``): never copied to the host
    by tracing or by ``jit``; the CUDA backend takes it as it is."""
    return hasattr(type(x), "__cuda_array_interface__")


def abstract(x):
    """``(shape, dtype, weak)`` of an argument: an array, a NumPy or Python scalar, or a list."""
    from mlc.ir import dtypes

    if isinstance(x, Tracer):
        return x.shape, x.dtype, x.weak
    weak = isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)
    if isinstance(x, complex):
        raise TypeError("mlc does not support complex numbers yet")
    if on_device(x):  # its metadata, no copy
        return tuple(x.shape), dtypes.dtype(x.dtype), False
    a = np.asarray(x)
    if weak and type(x) is int and not -(2**31) <= x < 2**31:
        # NumPy raises OverflowError when such an int meets an int32 array: keep the value (in
        # the cache key too) so the trace can do the same. Rare, so retracing per value is fine.
        weak = ("int", x)
    return a.shape, dtypes.dtype(a.dtype), weak


def trace(f, *args, name=None, **kwargs) -> Graph:
    """Trace ``f`` on example arguments (arrays or pytrees of them) into a graph.

    >>> import numpy as np, mlc
    >>> g = mlc.trace(lambda x: np.sin(x) * 2, np.ones(3, np.float32))
    >>> [n.op for n in g]
    ['param', 'sin', 'constant', 'broadcast_in_dim', 'mul']
    """
    leaves, treedef = pytree.flatten((args, kwargs))

    def flat(*xs):
        a, k = pytree.unflatten(treedef, xs)
        return f(*a, **k)

    return trace_flat(flat, [abstract(x) for x in leaves], name or getattr(f, "__name__", "f"))[0]


def trace_flat(f, avals, name="f", unique=False):
    """Trace ``f`` called with one tracer per ``(shape, dtype, weak)``; returns (graph, out treedef).

    ``f`` may return any pytree of arrays; non-traced leaves become constants. ``unique`` gives
    the parameters identities no other trace shares (a transform tracing inside another trace,
    whose own parameters may have the same types, needs that to tell them apart).
    """
    if unique:
        from mlc.ir.graph import TensorType
        from mlc.ir.passes.autodiff import fresh_param

        params = [fresh_param(i, TensorType(s, d)) for i, (s, d, _) in enumerate(avals)]
    else:
        params = [P.param(index=i, shape=s, dtype=d) for i, (s, d, _) in enumerate(avals)]
    tracers = [
        Tracer(p, weak=bool(w), pyval=w[1] if isinstance(w, tuple) else None)
        for p, (_, _, w) in zip(params, avals)
    ]
    out = f(*tracers)
    out_leaves, out_tree = pytree.flatten(out)
    nodes = []
    for leaf in out_leaves:
        t = _mnp()._core.lift(leaf)
        nodes.append(t.node)
    name = "".join(c for c in name if c.isalnum() or c == "_") or "f"
    return Graph(params, nodes, name), out_tree
