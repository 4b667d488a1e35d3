"""Products of mlc.numpy: dot, matmul, vdot, inner, outer, tensordot, einsum, kron, cross.

Every contraction is ONE ``dot_general`` (result dims: batch, lhs free, rhs free) with reshapes
and transposes around it; nothing is unrolled. Operands are labelled (einsum's view of the
world): shared labels that are still needed become batch dims, shared labels needed nowhere else
are summed, and ``_contract`` turns that into the primitive's attributes.

Like NumPy, these functions convert their operands to arrays first, so Python scalars are not
weak here: ``np.dot(2.0, f32_array)`` is float64. Products of bools are logical (``dot_general``
on bool is an OR of ANDs, as in NumPy).
"""

import string
import warnings

import numpy as np

from mlc.errors import where
from mlc.ir import dtypes
from mlc.ir import primitives as P

from ._core import (
    Tracer,
    broadcast_shapes,
    broadcast_to,
    cast,
    lift,
    normalize_axis,
    numpy_function,
    reshaped,
    shape_str,
    transposed,
)
from ._ufuncs import multiply, negative, subtract

__all__ = [
    "cross",
    "dot",
    "einsum",
    "inner",
    "kron",
    "matmul",
    "matvec",
    "outer",
    "tensordot",
    "vdot",
    "vecdot",
    "vecmat",
]


# -- helpers --------------------------------------------------------------------------------
def _arrays(*operands, dtype=None):
    """Operands as tracers of one dtype, promoted as NumPy promotes arrays (no weak scalars)."""
    ts = [lift(x) for x in operands]
    if dtype is None:
        dtype = np.result_type(*(t.dtype for t in ts))
    dtype = dtypes.dtype(dtype)
    return [cast(t, dtype) for t in ts]


def _checked_dtype(name, ts, dtype, casting):
    """The ``dtype=`` a product is computed in, checked against ``casting`` as NumPy does."""
    if dtype is None:
        return dtypes.dtype(np.result_type(*(t.dtype for t in ts)))
    dtype = dtypes.dtype(dtype)
    for i, t in enumerate(ts):
        if not np.can_cast(t.dtype, dtype, casting):
            raise TypeError(
                f"{name}: cannot cast input {i} from dtype('{t.dtype}') to dtype('{dtype}') "
                f"with casting rule '{casting}' (at {where()})"
            )
    return dtype


def _no_out(name, out):
    if out is not None:
        raise NotImplementedError(f"mlc.numpy.{name}: out= is not supported (arrays are immutable)")


def _moveaxis(t: Tracer, src: int, dst: int) -> Tracer:
    perm = [i for i in range(t.ndim) if i != src]
    perm.insert(dst, src)
    return transposed(t, perm)


def _dot(a: Tracer, b: Tracer, contracting, batch=((), ())) -> Tracer:
    contracting = tuple(tuple(int(i) for i in c) for c in contracting)
    batch = tuple(tuple(int(i) for i in c) for c in batch)
    return Tracer(P.dot_general(a.node, b.node, contracting=contracting, batch=batch))


def _contract(x: Tracer, xl: list, y: Tracer, yl: list, keep) -> tuple[Tracer, list]:
    """One dot_general of two labelled operands (each label once per operand).

    Labels in both operands are batch dims if in ``keep`` (the output or a later operand) and
    are summed otherwise. Result labels: batch, then x's own labels, then y's own labels.
    """
    shared = [lab for lab in xl if lab in yl]
    batch = [lab for lab in shared if lab in keep]
    summed = [lab for lab in shared if lab not in keep]
    out = _dot(
        x,
        y,
        ([xl.index(lab) for lab in summed], [yl.index(lab) for lab in summed]),
        ([xl.index(lab) for lab in batch], [yl.index(lab) for lab in batch]),
    )
    labels = (
        batch + [lab for lab in xl if lab not in shared] + [lab for lab in yl if lab not in shared]
    )
    return out, labels


def _arrange(t: Tracer, labels: list, target: list) -> Tracer:
    """``t`` (dims named by ``labels``) transposed so its dims follow ``target``."""
    return transposed(t, [labels.index(lab) for lab in target])


def _broadcast_contract(name, a, a_core, b, b_core) -> Tracer:
    """A gufunc-style product: the core dims (labels) of ``a`` and ``b`` meet in one dot_general,
    ``"k"`` is summed, and the leading (batch) dims broadcast.

    Batch dims where one side is 1 are not materialized: they are dropped from that side and
    become a free dim of the other, so ``(B, n, k) @ (k, m)`` is a plain dot_general.
    """
    sa, sb = a.shape[: a.ndim - len(a_core)], b.shape[: b.ndim - len(b_core)]
    nb = max(len(sa), len(sb))
    pa, pb = (1,) * (nb - len(sa)) + sa, (1,) * (nb - len(sb)) + sb
    if any(x != y and 1 not in (x, y) for x, y in zip(pa, pb)):
        raise ValueError(
            f"{name}: operands could not be broadcast together: batch dims {shape_str(sa)} and "
            f"{shape_str(sb)} of shapes {shape_str(a.shape)} and {shape_str(b.shape)} (at {where()})"
        )
    a_keep = [i for i in range(nb) if pa[i] != 1]
    b_keep = [i for i in range(nb) if pb[i] != 1]
    a = reshaped(a, [pa[i] for i in a_keep] + list(a.shape[len(sa) :]))
    b = reshaped(b, [pb[i] for i in b_keep] + list(b.shape[len(sb) :]))
    al = [("batch", i) for i in a_keep] + list(a_core)
    bl = [("batch", i) for i in b_keep] + list(b_core)
    out, labels = _contract(a, al, b, bl, keep=set(al + bl) - {"k"})
    out_core = [lab for lab in a_core + b_core if lab != "k"]
    target = [("batch", i) for i in sorted(set(a_keep) | set(b_keep))] + out_core
    out = _arrange(out, labels, target)
    core_sizes = list(out.shape[out.ndim - len(out_core) :])
    batch = [y if x == 1 else x for x, y in zip(pa, pb)]
    return reshaped(out, batch + core_sizes)


# -- matmul and friends ---------------------------------------------------------------------
_MATMUL_SIG = "(n?,k),(k,m?)->(n?,m?)"


def _gufunc_kwargs(name, out, axes, axis, kwargs):
    _no_out(name, out)
    if axes is not None or axis is not None:
        raise NotImplementedError(f"mlc.numpy.{name}: axes=/axis= are not supported")
    bad = set(kwargs) - {"order", "subok", "signature"}
    if bad:
        raise TypeError(f"{name}() got an unexpected keyword argument '{sorted(bad)[0]}'")


@numpy_function
def matmul(x1, x2, /, out=None, *, casting="same_kind", dtype=None, axes=None, axis=None, **kw):
    """Matrix product with NumPy's broadcasting and 1-d rules (``a @ b``).

    >>> import numpy as np, mlc.numpy as mnp
    >>> mnp.matmul(np.ones((5, 2, 3)), np.ones(3)).shape
    (5, 2)
    """
    _gufunc_kwargs("matmul", out, axes, axis, kw)
    a, b = lift(x1), lift(x2)
    for i, t in enumerate((a, b)):
        if t.ndim == 0:
            raise ValueError(
                f"matmul: Input operand {i} does not have enough dimensions (has 0, gufunc core "
                f"with signature {_MATMUL_SIG} requires 1) (at {where()})"
            )
    dt = _checked_dtype("matmul", (a, b), dtype, casting)
    a, b = cast(a, dt), cast(b, dt)
    ka, kb = a.shape[-1], b.shape[0 if b.ndim == 1 else -2]
    if ka != kb:
        raise ValueError(
            f"matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
            f"signature {_MATMUL_SIG} (size {kb} is different from {ka}): shapes "
            f"{shape_str(a.shape)} and {shape_str(b.shape)} (at {where()})"
        )
    a_core = ["n", "k"] if a.ndim >= 2 else ["k"]
    b_core = ["k", "m"] if b.ndim >= 2 else ["k"]
    return _broadcast_contract("matmul", a, a_core, b, b_core)


def _gufunc_product(name, sig, x1, x2, a_core, b_core, out, dtype, casting, axes, axis, kw):
    """vecdot / matvec / vecmat: like matmul, with fixed core ranks and "k" summed."""
    _gufunc_kwargs(name, out, axes, axis, kw)
    a, b = lift(x1), lift(x2)
    for i, (t, core) in enumerate(((a, a_core), (b, b_core))):
        if t.ndim < len(core):
            raise ValueError(
                f"{name}: Input operand {i} does not have enough dimensions (has {t.ndim}, "
                f"gufunc core with signature {sig} requires {len(core)}) (at {where()})"
            )
    dt = _checked_dtype(name, (a, b), dtype, casting)
    a, b = cast(a, dt), cast(b, dt)
    ka = a.shape[a.ndim - len(a_core) + a_core.index("k")]
    kb = b.shape[b.ndim - len(b_core) + b_core.index("k")]
    if ka != kb:
        raise ValueError(
            f"{name}: Input operand 1 has a mismatch in its core dimension "
            f"{b_core.index('k')}, with gufunc signature {sig} (size {kb} is different from "
            f"{ka}): shapes {shape_str(a.shape)} and {shape_str(b.shape)} (at {where()})"
        )
    return _broadcast_contract(name, a, a_core, b, b_core)


@numpy_function
def vecdot(x1, x2, /, out=None, *, casting="same_kind", dtype=None, axes=None, axis=None, **kw):
    """Dot product of vectors along the last axis, batch dims broadcast (numpy.vecdot)."""
    args = (out, dtype, casting, axes, axis, kw)
    return _gufunc_product("vecdot", "(n),(n)->()", x1, x2, ["k"], ["k"], *args)


@numpy_function
def matvec(x1, x2, /, out=None, *, casting="same_kind", dtype=None, axes=None, axis=None, **kw):
    """Matrix-vector product, batch dims broadcast (numpy.matvec)."""
    args = (out, dtype, casting, axes, axis, kw)
    return _gufunc_product("matvec", "(m,n),(n)->(m)", x1, x2, ["m", "k"], ["k"], *args)


@numpy_function
def vecmat(x1, x2, /, out=None, *, casting="same_kind", dtype=None, axes=None, axis=None, **kw):
    """Vector-matrix product, batch dims broadcast (numpy.vecmat)."""
    args = (out, dtype, casting, axes, axis, kw)
    return _gufunc_product("vecmat", "(n),(n,m)->(m)", x1, x2, ["k"], ["k", "n"], *args)


# -- dot, vdot, inner, outer, tensordot, kron -----------------------------------------------
def _not_aligned(a, b, da, db):
    return ValueError(
        f"shapes {shape_str(a.shape)} and {shape_str(b.shape)} not aligned: {a.shape[da]} (dim {da}) != "
        f"{b.shape[db]} (dim {db}) (at {where()})"
    )


@numpy_function
def dot(a, b, out=None):
    """NumPy's dot: a scalar multiplies; else sum over a's last axis and b's second-to-last
    (its only axis when 1-d). Result dims: a's others, then b's others.

    >>> import numpy as np, mlc.numpy as mnp
    >>> mnp.dot(np.ones((2, 3)), np.ones((4, 3, 5))).shape
    (2, 4, 5)
    """
    _no_out("dot", out)
    a, b = _arrays(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    da, db = a.ndim - 1, max(b.ndim - 2, 0)
    if a.shape[da] != b.shape[db]:
        raise _not_aligned(a, b, da, db)
    return _dot(a, b, ((da,), (db,)))


@numpy_function
def vdot(a, b, /):
    """Dot product of the flattened arrays (numpy.vdot; no conjugation for real dtypes)."""
    a, b = _arrays(a, b)
    if a.size != b.size:
        raise ValueError(
            f"vdot: vectors have different lengths: {a.size} elements (shape {shape_str(a.shape)}) "
            f"and {b.size} (shape {shape_str(b.shape)}) (at {where()})"
        )
    a, b = reshaped(a, (a.size,)), reshaped(b, (b.size,))
    return _dot(a, b, ((0,), (0,)))


@numpy_function
def inner(a, b, /):
    """Sum over the last axes of a and b (a scalar multiplies)."""
    a, b = _arrays(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise _not_aligned(a, b, a.ndim - 1, b.ndim - 1)
    return _dot(a, b, ((a.ndim - 1,), (b.ndim - 1,)))


@numpy_function
def outer(a, b, out=None):
    """``a.ravel()[:, None] * b.ravel()[None, :]``."""
    _no_out("outer", out)
    a, b = _arrays(a, b)
    return multiply(reshaped(a, (a.size, 1)), reshaped(b, (1, b.size)))


def _axis_list(axes):
    try:
        return [int(i) for i in axes]
    except TypeError:
        return [int(axes)]


@numpy_function(keep_0d=True)
def tensordot(a, b, axes=2):
    """Sum over ``axes`` (an int N: a's last N with b's first N; or a pair of sequences).

    >>> import numpy as np, mlc.numpy as mnp
    >>> mnp.tensordot(np.ones((3, 4, 5)), np.ones((4, 3, 2)), axes=([1, 0], [0, 1])).shape
    (5, 2)
    """
    try:
        iter(axes)
    except TypeError:
        axes_a, axes_b = list(range(-axes, 0)), list(range(axes))
    else:
        if len(axes) != 2:
            raise ValueError(
                f"tensordot: axes must be an int or a pair of sequences, got {axes!r} "
                f"(at {where()})"
            )
        axes_a, axes_b = (_axis_list(x) for x in axes)
    a, b = _arrays(a, b)
    axes_a = [normalize_axis(i, a.ndim, "tensordot: axis") for i in axes_a]
    axes_b = [normalize_axis(i, b.ndim, "tensordot: axis") for i in axes_b]
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise ValueError(
            f"duplicate axes are not allowed in tensordot: {axes_a}, {axes_b} (at {where()})"
        )
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        sizes_a = [a.shape[i] for i in axes_a]
        sizes_b = [b.shape[j] for j in axes_b]
        raise ValueError(
            f"shape-mismatch for sum: axes {axes_a} of {shape_str(a.shape)} have sizes {sizes_a}, "
            f"axes {axes_b} of {shape_str(b.shape)} have sizes {sizes_b} (at {where()})"
        )
    return _dot(a, b, (axes_a, axes_b))


@numpy_function
def kron(a, b):
    """Kronecker product: result dim i has size ``a.shape[i] * b.shape[i]`` (ranks padded)."""
    a, b = _arrays(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    # a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...), then merge each pair of dims.
    ea = reshaped(a, [n for s in sa for n in (s, 1)])
    eb = reshaped(b, [n for s in sb for n in (1, s)])
    return reshaped(multiply(ea, eb), [x * y for x, y in zip(sa, sb)])


# -- cross ----------------------------------------------------------------------------------
def _component(t: Tracer, i: int) -> Tracer:
    """``t[..., i]``."""
    start = [0] * t.ndim
    start[-1] = i
    limit = list(t.shape)
    limit[-1] = i + 1
    part = Tracer(P.slice(t.node, start=tuple(start), limit=tuple(limit), stride=(1,) * t.ndim))
    return reshaped(part, t.shape[:-1])


@numpy_function(keep_0d=True)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of (arrays of) 3-vectors (or 2-vectors, deprecated in NumPy 2), broadcast.

    >>> import mlc.numpy as mnp
    >>> mnp.cross([1, 0, 0], [0, 1, 0]).tolist()
    [0, 0, 1]
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = lift(a), lift(b)
    if a.ndim < 1 or b.ndim < 1:
        raise ValueError(f"At least one array has zero dimension (at {where()})")
    a = _moveaxis(a, normalize_axis(axisa, a.ndim, "axisa: axis"), a.ndim - 1)
    b = _moveaxis(b, normalize_axis(axisb, b.ndim, "axisb: axis"), b.ndim - 1)
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(
            f"incompatible dimensions for cross product\n(dimension must be 2 or 3): vectors of "
            f"length {na} and {nb} (at {where()})"
        )
    if 2 in (na, nb):
        warnings.warn(
            "Arrays of 2-dimensional vectors are deprecated. Use arrays of "
            "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
            DeprecationWarning,
            stacklevel=3,
        )
    shape = broadcast_shapes(a.shape[:-1], b.shape[:-1])
    a, b = _arrays(a, b)
    a0, a1, b0, b1 = _component(a, 0), _component(a, 1), _component(b, 0), _component(b, 1)
    z = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == nb == 2:
        return z
    axisc = normalize_axis(axisc, len(shape) + 1, "axisc: axis")
    if na == 3 and nb == 3:
        a2, b2 = _component(a, 2), _component(b, 2)
        x = subtract(multiply(a1, b2), multiply(a2, b1))
        y = subtract(multiply(a2, b0), multiply(a0, b2))
    elif na == 2:  # a2 = 0
        b2 = _component(b, 2)
        x, y = multiply(a1, b2), negative(multiply(a0, b2))
    else:  # b2 = 0
        a2 = _component(a, 2)
        x, y = negative(multiply(a2, b1)), multiply(a2, b0)
    parts = [reshaped(broadcast_to(c, shape), shape + (1,)).node for c in (x, y, z)]
    out = Tracer(P.concatenate(*parts, axis=len(shape)))
    return _moveaxis(out, len(shape), axisc)


# -- einsum ---------------------------------------------------------------------------------
# Sublist subscripts 0..51 are the letters A..Z, a..z (NumPy's mapping).
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _sublist(sub) -> str:
    out = []
    for s in sub:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if not 0 <= s < len(_LETTERS):
                raise ValueError(f"subscript is not within the valid range [0, 52) (at {where()})")
            out.append(_LETTERS[s])
        else:
            raise TypeError(
                f"each subscript must be either an integer or an ellipsis, got {s!r} (at {where()})"
            )
    return "".join(out)


def _einsum_call(args):
    """``(subscripts, operands)`` from ``einsum('ij,jk', a, b)`` or ``einsum(a, [0, 1], ...)``."""
    if not args:
        raise ValueError(
            "must specify the einstein sum subscripts string and at least one operand, or at "
            f"least one operand and its corresponding subscripts list (at {where()})"
        )
    if isinstance(args[0], str):
        return args[0], list(args[1:])
    n = len(args) // 2
    operands = list(args[0 : 2 * n : 2])
    subscripts = ",".join(_sublist(s) for s in args[1 : 2 * n : 2])
    if len(args) % 2:
        subscripts += "->" + _sublist(args[-1])
    return subscripts, operands


def _split_term(term: str, what: str):
    """``'ab...c'`` as ``('ab', True, 'c')``: letters before and after the one ellipsis."""
    has_ellipsis = "..." in term
    if term.count("...") > 1:
        raise ValueError(
            f"einstein sum subscripts string contains more than one ellipsis ('...') in {what} "
            f"(at {where()})"
        )
    left, _, right = term.partition("...")
    for c in left + right:
        if c == ".":
            raise ValueError(
                "einstein sum subscripts string contains a '.' that is not part of an ellipsis "
                f"('...') in {what} (at {where()})"
            )
        if c not in _LETTERS:
            raise ValueError(
                f"invalid subscript '{c}' in einstein sum subscripts string, subscripts must be "
                f"letters (at {where()})"
            )
    return left, has_ellipsis, right


def _parse_einsum(subscripts: str, ndims: list[int]):
    """Labels of each operand's dims and of the output. Letters label themselves; the dims an
    ellipsis stands for are labelled 0..E-1, right-aligned across operands (they broadcast)."""
    s = subscripts.replace(" ", "")
    ins, arrow, out = s.partition("->")
    terms = ins.split(",")
    if len(terms) != len(ndims):
        more = "more" if len(ndims) > len(terms) else "fewer"
        raise ValueError(
            f"{more} operands provided to einstein sum function than specified in the "
            f"subscripts string '{subscripts}' (at {where()})"
        )
    split = [_split_term(t, f"operand {i}") for i, t in enumerate(terms)]
    n_ellipsis = []
    for i, ((left, has_e, right), nd) in enumerate(zip(split, ndims)):
        extra = nd - len(left) - len(right)
        if extra < 0:
            raise ValueError(
                f"einstein sum subscripts string contains too many subscripts for operand {i} "
                f"('{terms[i]}' for an array of dimension {nd}) (at {where()})"
            )
        if extra > 0 and not has_e:
            raise ValueError(
                "operand has more dimensions than subscripts given in einstein sum, but no "
                f"'...' ellipsis provided to broadcast the extra dimensions (operand {i}: "
                f"'{terms[i]}' for an array of dimension {nd}) (at {where()})"
            )
        n_ellipsis.append(extra)
    E = max(n_ellipsis, default=0)
    in_labels = [
        list(left) + list(range(E - e, E)) + list(right)
        for (left, _, right), e in zip(split, n_ellipsis)
    ]
    letters = [lab for labels in in_labels for lab in labels if isinstance(lab, str)]
    if not arrow:
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        return in_labels, list(range(E)) + once
    left, has_e, right = _split_term(out, "the output")
    for c in left + right:
        if (left + right).count(c) > 1:
            raise ValueError(
                f"einstein sum subscripts string includes output subscript '{c}' multiple "
                f"times (at {where()})"
            )
        if c not in letters:
            raise ValueError(
                f"einstein sum subscripts string included output subscript '{c}' which never "
                f"appeared in an input (at {where()})"
            )
    if E and not has_e:
        raise ValueError(
            "output has more dimensions than subscripts given in einstein sum, but no '...' "
            f"ellipsis provided to broadcast the extra dimensions (at {where()})"
        )
    return in_labels, list(left) + list(range(E)) + list(right)


def _show(label) -> str:
    return f"'{label}'" if isinstance(label, str) else f"'...' dim {label}"


def _diagonal(t: Tracer, labels: list, i: int):
    """Collapse repeated labels (``'ii'``) with one exact gather: the repeated dims go first and
    are indexed by ``(j, j)`` for every j."""
    repeated = [lab for lab in dict.fromkeys(labels) if labels.count(lab) > 1]
    if not repeated:
        return t, labels
    sizes = []
    for lab in repeated:
        ns = [n for m, n in zip(labels, t.shape) if m == lab]
        if len(set(ns)) > 1:
            raise ValueError(
                f"dimensions in operand {i} for collapsing index {_show(lab)} don't match "
                f"({ns[0]} != {[n for n in ns if n != ns[0]][0]}) (at {where()})"
            )
        sizes.append(ns[0])
    front = [j for lab in repeated for j, m in enumerate(labels) if m == lab]
    rest = [j for j, m in enumerate(labels) if m not in repeated]
    t = transposed(t, front + rest)
    grid = np.moveaxis(np.indices(sizes, dtype=np.int64), 0, -1)
    counts = [labels.count(lab) for lab in repeated]
    index = grid[..., np.repeat(np.arange(len(repeated)), counts)]
    out = Tracer(P.gather(t.node, P.const(index, dtypes.int64)))
    return out, repeated + [labels[j] for j in rest]


def _label_sizes(ops, labels_list):
    """Each label's size; a size-1 dim broadcasts against a larger one, as in NumPy's einsum."""
    seen = {}
    for t, labels in zip(ops, labels_list):
        for lab, n in zip(labels, t.shape):
            seen.setdefault(lab, []).append(n)
    sizes = {}
    for lab, ns in seen.items():
        big = sorted(set(ns) - {1})
        if len(big) > 1:
            shapes = " ".join(shape_str(t.shape) for t in ops)
            raise ValueError(
                f"operands could not be broadcast together: einsum index {_show(lab)} has sizes "
                f"{big[0]} and {big[1]} (operand shapes {shapes}) (at {where()})"
            )
        sizes[lab] = big[0] if big else 1
    return sizes


def _sum_unneeded(t: Tracer, labels: list, needed) -> tuple[Tracer, list]:
    axes = tuple(j for j, lab in enumerate(labels) if lab not in needed)
    if not axes:
        return t, labels
    return Tracer(P.reduce_sum(t.node, axes=axes)), [lab for lab in labels if lab in needed]


def _pick_pair(labels_list, sizes):
    """The pair whose dot_general does the least work (the product of the sizes of all its
    labels; ties: leftmost): a simple greedy order that avoids needless outer products."""
    best = None
    for i in range(len(labels_list)):
        for j in range(i + 1, len(labels_list)):
            involved = set(labels_list[i]) | set(labels_list[j])
            cost = int(np.prod([sizes[lab] for lab in involved], dtype=np.int64))
            if best is None or cost < best[0]:
                best = (cost, i, j)
    return best[1], best[2]


def _einsum(ops: list, in_labels: list, out_labels: list) -> Tracer:
    ops, in_labels = list(ops), list(in_labels)
    for i in range(len(ops)):
        ops[i], in_labels[i] = _diagonal(ops[i], in_labels[i], i)
    sizes = _label_sizes(ops, in_labels)
    for i, (t, labels) in enumerate(zip(ops, in_labels)):
        # A size-1 dim against a larger one: drop it here, the value broadcasts.
        keep = [j for j, (lab, n) in enumerate(zip(labels, t.shape)) if n == sizes[lab]]
        ops[i] = reshaped(t, [t.shape[j] for j in keep])
        in_labels[i] = [labels[j] for j in keep]
    # A label in one operand only and not in the output is summed before any product.
    for i in range(len(ops)):
        others = {lab for j, labels in enumerate(in_labels) if j != i for lab in labels}
        ops[i], in_labels[i] = _sum_unneeded(ops[i], in_labels[i], others | set(out_labels))
    while len(ops) > 1:
        i, j = _pick_pair(in_labels, sizes)
        rest = [k for k in range(len(ops)) if k not in (i, j)]
        keep = set(out_labels).union(*(in_labels[k] for k in rest))
        t, labels = _contract(ops[i], in_labels[i], ops[j], in_labels[j], keep)
        ops = [t] + [ops[k] for k in rest]
        in_labels = [labels] + [in_labels[k] for k in rest]
    return _arrange(ops[0], in_labels[0], out_labels)


@numpy_function
def einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    """Einstein summation: ``einsum('ij,jk->ik', a, b)`` or ``einsum(a, [0, 1], b, [1, 2])``.

    Repeated indices in one operand take a diagonal, indices absent from the output are
    summed, ``...`` broadcasts. Operands are contracted pairwise (greedy: smallest result
    first), each pair with exactly one dot_general. ``optimize`` is accepted and ignored.

    >>> import numpy as np, mlc.numpy as mnp
    >>> mnp.einsum('bij,bjk->bik', np.ones((4, 2, 3)), np.ones((4, 3, 5))).shape
    (4, 2, 5)
    >>> float(mnp.einsum('ii', np.eye(3)))
    3.0
    """
    _no_out("einsum", out)
    del optimize, order
    subscripts, arrays = _einsum_call(operands)
    ts = [lift(x) for x in arrays]
    dt = _checked_dtype("einsum", ts, dtype, casting)
    ts = [cast(t, dt) for t in ts]
    in_labels, out_labels = _parse_einsum(subscripts, [t.ndim for t in ts])
    return _einsum(ts, in_labels, out_labels)
