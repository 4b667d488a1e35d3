"""The machinery every mlc.numpy function stands on: lifting values to tracers, NumPy 2
promotion (NEP 50), broadcasting, casting, and running on concrete inputs.

Each public function is written once, against tracers. ``@numpy_function`` makes it also work on
concrete inputs: they are lifted to constants, the same code builds a small graph, and the result
is evaluated by the reference interpreter and returned as a NumPy array.
"""

from __future__ import annotations

import functools

import numpy as np

from mlc.errors import where
from mlc.ir import dtypes
from mlc.ir import primitives as P
from mlc.ir.interpreter import evaluate_nodes
from mlc.tracing import Tracer


def is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def is_weak_scalar(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def lift(x, dtype=None) -> Tracer:
    """Any array-like as a Tracer (Python scalars become weakly typed constants)."""
    if isinstance(x, Tracer):
        return x if dtype is None else cast(x, dtype)
    if is_weak_scalar(x) and dtype is None:
        a = np.asarray(x)
        return Tracer(P.const(a, dtypes.dtype(a.dtype)), weak=True, pyval=x)
    if isinstance(x, (list, tuple)) and contains_tracer(x):
        from . import _creation

        return _creation.array(x, dtype=dtype)
    if isinstance(x, complex) or np.iscomplexobj(x):
        raise TypeError("mlc does not support complex numbers yet")
    a = np.asarray(x, dtype=dtype)
    return Tracer(P.const(a, dtypes.dtype(a.dtype)))


def contains_tracer(x) -> bool:
    if isinstance(x, Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return any(contains_tracer(v) for v in x)
    if isinstance(x, dict):
        return any(contains_tracer(v) for v in x.values())
    return False


def cast(x: Tracer, dtype) -> Tracer:
    """``x`` converted to ``dtype`` (a weak Python scalar becomes a constant of that dtype)."""
    dtype = dtypes.dtype(dtype)
    if x.dtype == dtype:
        return Tracer(x.node) if x.weak else x
    if x.pyval is not None:
        return Tracer(P.const(_scalar_as(x.pyval, dtype), dtype))
    return Tracer(P.convert(x.node, dtype=dtype))


def _scalar_as(v, dtype):
    if dtype.kind in "iu" and isinstance(v, int) and not isinstance(v, bool):
        info = np.iinfo(dtype)
        if not info.min <= v <= info.max:
            raise OverflowError(f"Python integer {v} out of bounds for {dtype.name}")
    with np.errstate(all="ignore"):
        return np.asarray(v).astype(dtype)


# -- promotion ------------------------------------------------------------------------------
def _stand_in(x):
    """What NumPy should see for ``x`` when computing a result dtype (a value is irrelevant)."""
    if isinstance(x, Tracer):
        if x.weak:
            return {"b": True, "i": 1, "u": 1, "f": 1.0}[x.dtype.kind]
        return np.zeros((), x.dtype)
    if is_weak_scalar(x):
        return x
    return np.zeros((), np.asarray(x).dtype)


@functools.lru_cache(maxsize=4096)
def _probe(fn, key):
    with np.errstate(all="ignore"):
        args = [k[1] if k[0] == "weak" else np.zeros((), k[1]) for k in key]
        return np.asarray(fn(*args)).dtype


def _key(x):
    s = _stand_in(x)
    # The type is part of the key: 1 == 1.0 == True would share one cache entry otherwise.
    return ("weak", s, type(s)) if not isinstance(s, np.ndarray) else ("arr", s.dtype)


def ufunc_dtype(fn, *operands) -> np.dtype:
    """The dtype NumPy's ``fn`` gives for these operands (asked of NumPy itself)."""
    return dtypes.dtype(_probe(fn, tuple(_key(x) for x in operands)))


def result_type(*operands) -> np.dtype:
    """``np.result_type`` with NEP 50 weak scalars (for tracers too)."""
    return dtypes.dtype(np.result_type(*[_stand_in(x) for x in operands]))


def all_weak(*operands) -> bool:
    return all((isinstance(x, Tracer) and x.weak) or is_weak_scalar(x) for x in operands)


# -- broadcasting ---------------------------------------------------------------------------
def broadcast_shapes(*shapes) -> tuple[int, ...]:
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        dims = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0} - {1}
        if len(dims) > 1:
            shown = " ".join(shape_str(s) for s in shapes)
            raise ValueError(
                f"operands could not be broadcast together with shapes {shown} (at {where()})"
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def shape_str(shape) -> str:
    """A shape as NumPy's error messages print it: ``(2,3)``, ``(4,)``, ``()``."""
    inner = ",".join(str(n) for n in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def reshaped(t: Tracer, shape) -> Tracer:
    """``t`` with another shape of the same size (no node when the shape is unchanged)."""
    shape = tuple(int(n) for n in shape)
    return t if t.shape == shape else Tracer(P.reshape(t.node, shape=shape))


def transposed(t: Tracer, perm) -> Tracer:
    """``t`` with its axes permuted (no node for the identity permutation)."""
    perm = tuple(perm)
    return t if perm == tuple(range(t.ndim)) else Tracer(P.transpose(t.node, perm=perm))


def splat(value, dtype, shape) -> Tracer:
    """A scalar constant broadcast to ``shape``: never an array of that size."""
    with np.errstate(all="ignore"):
        c = P.const(np.asarray(value).astype(dtype), dtype)
    return Tracer(P.broadcast_in_dim(c, shape=tuple(shape), dims=()))


def broadcast_to(x: Tracer, shape) -> Tracer:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = len(shape) - x.ndim
    if lead < 0 or any(a not in (1, b) for a, b in zip(x.shape, shape[lead:])):
        raise ValueError(
            f"operands could not be broadcast together with remapped shapes "
            f"[original->remapped]: {x.shape} and requested shape {shape} (at {where()})"
        )
    # Size-1 dims that must stretch are dropped first, so broadcast_in_dim maps dims 1:1.
    keep = [i for i, n in enumerate(x.shape) if n == shape[lead + i]]
    node = x.node
    if len(keep) != x.ndim:
        node = P.reshape(node, shape=tuple(x.shape[i] for i in keep))
    dims = tuple(lead + i for i in keep)
    return Tracer(P.broadcast_in_dim(node, shape=shape, dims=dims), weak=x.weak)


def elementwise(prim, *operands, dtype=None, out_weak=None) -> Tracer:
    """Apply an elementwise primitive: lift, cast to ``dtype``, broadcast, build the node."""
    ts = [lift(x) for x in operands]
    dtype = result_type(*ts) if dtype is None else dtypes.dtype(dtype)
    weak = all_weak(*ts) if out_weak is None else out_weak
    ts = [cast(t, dtype) for t in ts]
    shape = broadcast_shapes(*(t.shape for t in ts))
    node = prim(*(broadcast_to(t, shape).node for t in ts))
    return Tracer(node, weak=weak and node.dtype == dtype)


def normalize_axis(axis: int, ndim: int, name="axis") -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise np.exceptions.AxisError(
            f"{name} {axis} is out of bounds for array of dimension {ndim} (at {where()})"
        )
    return int(axis) % max(ndim, 1)


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple; negatives allowed) as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = [normalize_axis(a, ndim) for a in axis]
        if len(set(axes)) != len(axes):
            raise ValueError(f"duplicate value in 'axis' (at {where()})")
        return tuple(sorted(axes))
    return (normalize_axis(axis, ndim),)


# -- concrete inputs ------------------------------------------------------------------------
def numpy_function(fn=None, *, keep_0d=False):
    """Make ``fn`` (written for tracers) also accept concrete inputs and return NumPy arrays.

    With no tracer among the arguments, ``fn`` runs on constants and its result is evaluated by
    the reference interpreter. 0-d results come back as NumPy scalars, as NumPy returns them,
    unless ``keep_0d`` (creation functions return 0-d arrays).
    """
    if fn is None:
        return functools.partial(numpy_function, keep_0d=keep_0d)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if contains_tracer(args) or contains_tracer(kwargs):
            return out
        return materialize(out, keep_0d)

    wrapper.__wrapped_for_tracers__ = fn
    return wrapper


def materialize(out, keep_0d=False):
    """Evaluate every Tracer in ``out`` (a pytree) to a NumPy array."""
    from mlc import pytree

    leaves, tree = pytree.flatten(out)
    idx = [i for i, x in enumerate(leaves) if isinstance(x, Tracer)]
    values = evaluate_nodes([leaves[i].node for i in idx])
    for i, v in zip(idx, values):
        leaves[i] = v if keep_0d or v.ndim else v[()]
    return pytree.unflatten(tree, leaves)
