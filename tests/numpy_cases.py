"""One entry per name in ``mlc.numpy.__all__``: the cases of the autodiff and vmap sweeps.

An entry is either a list of ``Case`` objects or an ``Excluded`` reason:

- ``Case.fn(mod, *arrays)`` calls the function under test through ``mod`` (``numpy`` or
  ``mlc.numpy``); static arguments (axis, shapes, index arrays, pad widths) live inside ``fn``.
  ``Case.gen(rng)`` draws the float64 inputs, in the function's domain (positive for log, away
  from the kinks of abs and the jumps of mod, ...), with fixed shapes that broadcast against each
  other for multi-input functions (``(3, 1)`` with ``(4,)``, 0-d with 2-d, ...). A function has
  several cases: axis variants, keepdims, offsets, index forms.
- ``differentiable=False`` marks a function whose result does not depend differentiably on the
  input (comparisons, floor, argmax, argsort, isnan, ``zeros_like``): the autodiff sweep checks
  that derivatives through it are exactly zero and raise nothing; the vmap sweep still runs it.
- ``dtypes`` are the input dtypes the vmap sweep tries (NumPy itself decides whether it accepts
  each: a dtype NumPy refuses is skipped). Int-only functions (bitwise) leave float64 out, so
  the autodiff sweep skips them.
- ``numpy_dispatch``: ``None`` when ``fn(numpy, tracer)`` reaches mlc, else the reason NumPy
  converts its input before dispatching (``np.array``, ``np.r_``, ...; docs/numpy.md); those
  cases run through ``mlc.numpy`` only.
- ``values=False``: only shapes and dtypes are specified (``empty_like``).
- ``specials=False``: NaN/inf inputs are meaningless (inputs that become indices).
- ``numpy_traced``: arguments that must be traced for plain NumPy code to reach mlc (vmap
  passes unbatched arguments as concrete arrays): ``ndarray[tracer]`` converts the index,
  ``np.take`` dispatches on its array only, and ``.at`` exists only on traced arrays.

``missing()`` names every ``__all__`` name with no entry (a test fails on it).

    >>> c = CASES["sum"][0]
    >>> c.fn(np, *c.gen(np.random.RandomState(0))).shape
    ()
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

import mlc.numpy as mnp
from mlc.tracing import Tracer


@dataclasses.dataclass(frozen=True)
class In:
    """One float64 input: ``shape``, and values uniform in [lo, hi] (``signed``: magnitudes in
    [lo, hi] with random signs, away from zero)."""

    shape: tuple
    lo: float = -2.0
    hi: float = 2.0
    signed: bool = False

    def draw(self, rng):
        x = rng.uniform(self.lo, self.hi, size=self.shape)
        if self.signed:
            x = x * np.where(rng.uniform(size=self.shape) < 0.5, -1.0, 1.0)
        return np.asarray(x, dtype=np.float64)


def U(*shape, lo=-2.0, hi=2.0):
    return In(tuple(shape), lo, hi)


def S(*shape, lo=0.3, hi=2.0):
    """Away from zero (abs, reciprocal, divisors, cbrt)."""
    return In(tuple(shape), lo, hi, signed=True)


def P(*shape, lo=0.3, hi=2.0):
    """Positive (log, sqrt, bases of power)."""
    return In(tuple(shape), lo, hi)


ALL_DTYPES = ("float64", "float32", "int64", "int32", "bool")
# mlc has no bit-operation primitives: bitwise_* and invert take bool arrays only (and raise
# NotImplementedError on integers, tests/test_numpy_elementwise.py).
BITWISE_DTYPES = ("bool",)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    label: str
    fn: Callable
    inputs: tuple
    differentiable: bool = True
    dtypes: tuple = ALL_DTYPES
    numpy_dispatch: str | None = None
    values: bool = True
    specials: bool = True
    numpy_traced: tuple = ()

    @property
    def id(self) -> str:
        return f"{self.name}-{self.label}"

    def gen(self, rng) -> tuple:
        return tuple(i.draw(rng) for i in self.inputs)

    @property
    def arity(self) -> int:
        return len(self.inputs)


@dataclasses.dataclass(frozen=True)
class Excluded:
    reason: str


CASES: dict[str, list[Case] | Excluded] = {}


def case(name, fn, *inputs, label=None, **kw):
    entry = CASES.setdefault(name, [])
    assert isinstance(entry, list), name
    entry.append(Case(name, label or str(len(entry)), fn, tuple(inputs), **kw))


def exclude(reason, *names):
    for name in names:
        assert name not in CASES, name
        CASES[name] = Excluded(reason)


def missing() -> list[str]:
    return sorted(n for n in mnp.__all__ if n not in CASES)


def all_cases() -> list[Case]:
    return [c for entry in CASES.values() if isinstance(entry, list) for c in entry]


def cast(x: np.ndarray, dtype) -> np.ndarray:
    """A float64 input as ``dtype``: floats as they are, integers rounded, bools ``x > 0``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.asarray(x > 0)
    if dtype.kind in "iu":
        return np.rint(x).astype(dtype)
    return x.astype(dtype)


def traced(*xs) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


# -- exclusions ------------------------------------------------------------------------------
exclude(
    "a dtype, type or constant, not a function of arrays",
    *("bool_", "int32", "int64", "float16", "float32", "float64", "dtype", "finfo", "iinfo"),
    *("ndarray", "pi", "e", "inf", "nan", "newaxis", "euler_gamma"),
)
exclude(
    "creation from shapes and scalars only: no array input to differentiate or batch",
    *("arange", "empty", "eye", "identity", "ones", "zeros", "tri"),
)
exclude(
    "returns static Python ints/tuples (shape metadata), not an array",
    *("shape", "ndim", "size", "broadcast_shapes"),
)

# -- elementwise: unary ----------------------------------------------------------------------
UNARY_SMOOTH = {
    "abs": S,
    "absolute": S,
    "fabs": S,
    "negative": U,
    "positive": U,
    "sin": U,
    "cos": U,
    "tan": lambda *s: U(*s, lo=-1.2, hi=1.2),
    "sinh": U,
    "cosh": U,
    "tanh": U,
    "arcsin": lambda *s: U(*s, lo=-0.8, hi=0.8),
    "arccos": lambda *s: U(*s, lo=-0.8, hi=0.8),
    "arctanh": lambda *s: U(*s, lo=-0.8, hi=0.8),
    "arctan": U,
    "arcsinh": U,
    "arccosh": lambda *s: P(*s, lo=1.2, hi=3.0),
    "exp": U,
    "exp2": U,
    "expm1": U,
    "log": P,
    "log2": P,
    "log10": P,
    "log1p": lambda *s: U(*s, lo=-0.5, hi=2.0),
    "sqrt": P,
    "cbrt": S,
    "square": U,
    "reciprocal": S,
    "deg2rad": U,
    "degrees": U,
    "rad2deg": U,
    "radians": U,
    "sinc": U,
    "nan_to_num": U,
}
for _name, _dom in UNARY_SMOOTH.items():
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), _dom(3, 4), label="2d")
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), _dom(), label="0d")
case("exp", lambda m, x: m.exp(x), U(0, 3), label="empty")
case("sin", lambda m, x: m.sin(x), U(2, 1, 3), label="3d")

UNARY_STEP = ("sign", "floor", "ceil", "trunc", "rint", "fix", "around", "round")
UNARY_PREDICATE = ("isnan", "isinf", "isfinite", "signbit", "logical_not")
for _name in UNARY_STEP + UNARY_PREDICATE:
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3, 4), differentiable=False)
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(), differentiable=False)
case("round", lambda m, x: m.round(x, 1), U(3, 4), label="decimals", differentiable=False)
case("around", lambda m, x: m.around(x, -1), U(5, lo=-40, hi=40), label="neg-dec",
     differentiable=False)  # fmt: skip
_SPECIAL = np.array([[0.0, np.nan, 1.0, np.inf], [-np.inf, 2.0, np.nan, -1.0], [3.0] * 4])
for _name in ("isnan", "isinf", "isfinite"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x + _SPECIAL), U(3, 4), label="specials",
         differentiable=False)  # fmt: skip
# nan_to_num differentiates as the identity where x is finite and as 0 where it is replaced.
case("nan_to_num", lambda m, x: m.nan_to_num(x + _SPECIAL, posinf=9.0, neginf=-9.0), U(3, 4),
     label="specials")  # fmt: skip
for _name in ("bitwise_not", "invert"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3, 4, lo=-9, hi=9),
         differentiable=False, dtypes=BITWISE_DTYPES)  # fmt: skip

# -- elementwise: binary ---------------------------------------------------------------------
PAIRS = (((3, 1), (4,)), ((), (2, 3)), ((2, 3), (2, 3)), ((2, 1, 3), (4, 1)))
BINARY_SMOOTH = {
    "add": (U, U),
    "subtract": (U, U),
    "multiply": (U, U),
    "divide": (U, S),
    "true_divide": (U, S),
    "power": (P, U),
    "float_power": (P, U),
    "arctan2": (S, S),
    "hypot": (S, U),
    "copysign": (S, S),
    "maximum": (U, U),
    "minimum": (U, U),
    "fmax": (U, U),
    "fmin": (U, U),
    "mod": (lambda *s: U(*s, lo=-3, hi=3), lambda *s: S(*s, lo=0.5, hi=2.0)),
    "remainder": (lambda *s: U(*s, lo=-3, hi=3), lambda *s: S(*s, lo=0.5, hi=2.0)),
    "logaddexp": (U, U),
    "logaddexp2": (U, U),
}
for _name, (_a, _b) in BINARY_SMOOTH.items():
    for _k, (_sa, _sb) in enumerate(PAIRS[:3]):
        case(_name, lambda m, x, y, _n=_name: getattr(m, _n)(x, y), _a(*_sa), _b(*_sb))
case("add", lambda m, x, y: m.add(x, y), U(*PAIRS[3][0]), U(*PAIRS[3][1]), label="rank3")
case("power", lambda m, x: m.power(x, 3), U(3, 4), label="int-exponent")
case("power", lambda m, x: m.power(x, 0), U(3, 4), label="zero-exponent")
case("power", lambda m, x: m.power(2.0, x), U(3), label="scalar-base")
case("multiply", lambda m, x: m.multiply(x, 2.5), U(3, 4), label="scalar")
case("maximum", lambda m, x: m.maximum(x, 0.0), S(3, 4), label="relu")

BINARY_STEP = {
    "floor_divide": (U, S),
    "heaviside": (S, U),
    "equal": (U, U),
    "not_equal": (U, U),
    "less": (U, U),
    "less_equal": (U, U),
    "greater": (U, U),
    "greater_equal": (U, U),
    "logical_and": (U, U),
    "logical_or": (U, U),
    "logical_xor": (U, U),
}
for _name, (_a, _b) in BINARY_STEP.items():
    for _sa, _sb in PAIRS[:2]:
        case(_name, lambda m, x, y, _n=_name: getattr(m, _n)(x, y), _a(*_sa), _b(*_sb),
             differentiable=False)  # fmt: skip
for _name in ("equal", "less_equal", "logical_and"):  # ties and falsy values
    case(_name, lambda m, x, y, _n=_name: getattr(m, _n)(m.floor(x), m.floor(y)), U(3, 1),
         U(4), label="ties", differentiable=False)  # fmt: skip
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    for _sa, _sb in PAIRS[:2]:
        case(_name, lambda m, x, y, _n=_name: getattr(m, _n)(x, y), U(*_sa, lo=-9, hi=9),
             U(*_sb, lo=-9, hi=9), differentiable=False, dtypes=BITWISE_DTYPES)  # fmt: skip

# -- elementwise: several inputs -------------------------------------------------------------
case("clip", lambda m, x: m.clip(x, -0.5, 0.5), U(3, 4), label="scalars")
case("clip", lambda m, x, lo, hi: m.clip(x, lo, hi), U(3, 4), U(3, 1, lo=-2, hi=-0.5),
     U(4, lo=0.5, hi=2), label="arrays")  # fmt: skip
case("clip", lambda m, x: m.clip(x, max=0.3), U(2, 3), label="max-only")
case("where", lambda m, x, y: m.where(x > 0, x, y), U(3, 1), U(4), label="broadcast")
case("where", lambda m, x: m.where(x > 0, x * x, 0.0), U(3, 4), label="scalar")
case("where", lambda m, c, x: m.where(c, x, 1.5), U(2, 1), U(3), label="float-cond")
case("select", lambda m, x, y: m.select([x > 0.5, x < -0.5], [x, y * 2.0], 0.25), U(3, 1),
     U(4), label="broadcast")  # fmt: skip
case("select", lambda m, x: m.select([x > 0], [m.sin(x)]), U(5), label="default")


# -- reductions and scans --------------------------------------------------------------------
def _axis_cases(name, dom, axes, shape=(2, 3, 4), **kw):
    for ax in axes:
        label = "none" if ax is None else str(ax).replace(" ", "")
        case(name, lambda m, x, _n=name, _a=ax: getattr(m, _n)(x, axis=_a), dom(*shape),
             label=f"axis{label}", **kw)  # fmt: skip
    case(name, lambda m, x, _n=name: getattr(m, _n)(x, axis=1, keepdims=True), dom(*shape),
         label="keepdims", **kw)  # fmt: skip
    if name != "std":  # the std of one element sits on sqrt's kink at 0
        case(name, lambda m, x, _n=name: getattr(m, _n)(x), dom(), label="0d", **kw)


for _name in ("sum", "prod", "mean", "max", "min", "amax", "amin", "ptp", "var", "std"):
    _axis_cases(_name, U, (None, 1, -1, (0, 2)))
case("sum", lambda m, x: m.sum(x, axis=(), keepdims=True), U(3, 4), label="empty-axes")
case("sum", lambda m, x: m.sum(x, axis=0), U(0, 3), label="size0")
case("sum", lambda m, x: m.sum(x, axis=1, initial=1.5), U(3, 4), label="initial")
case("sum", lambda m, x: m.sum(x, axis=0, where=np.array([True, False, True, True])), U(3, 4),
     label="where")  # fmt: skip
case("max", lambda m, x: m.max(x, axis=0, initial=0.0), U(3, 4), label="initial")
case("max", lambda m, x: m.max(x, axis=1), U(0, 3), label="empty")
case("prod", lambda m, x: m.prod(x, axis=1), S(3, 4, lo=0.5, hi=1.5), label="nonzero")
case("var", lambda m, x: m.var(x, axis=1, ddof=1), U(3, 4), label="ddof")
case("std", lambda m, x: m.std(x, axis=0, ddof=1, keepdims=True), U(3, 4), label="ddof")
case("mean", lambda m, x: m.mean(x, axis=1, dtype=np.float64), U(3, 4), label="dtype")

_NAN_MASK = np.array([[False, True, False, False], [True, False, False, True], [False] * 4])
for _name in ("nanmax", "nanmin", "nansum", "nanmean"):
    for _ax in (None, 0, 1):
        case(_name, lambda m, x, _n=_name, _a=_ax: getattr(m, _n)(m.where(_NAN_MASK, m.nan, x),
             axis=_a), U(3, 4), label=f"nan-axis{_ax}")  # fmt: skip
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x, axis=-1, keepdims=True), U(2, 3),
         label="keepdims")  # fmt: skip

case("average", lambda m, x: m.average(x), U(3, 4), label="plain")
case("average", lambda m, x, w: m.average(x, axis=1, weights=w), U(3, 4), P(4), label="weights")
case("average", lambda m, x, w: m.average(x, axis=0, weights=w, returned=True), U(3, 4),
     P(3, 4), label="returned")  # fmt: skip
case("average", lambda m, x: m.average(x, axis=(0, 1), keepdims=True), U(2, 3, 2), label="kd")

for _name in ("cumsum", "cumprod"):
    for _ax in (None, 0, -1):
        case(_name, lambda m, x, _n=_name, _a=_ax: getattr(m, _n)(x, axis=_a), U(3, 4),
             label=f"axis{_ax}")  # fmt: skip
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(), label="0d")
case("cumprod", lambda m, x: m.cumprod(x, axis=1), U(2, 3, 4, lo=0.5, hi=1.5), label="3d")
case("cumsum", lambda m, x: m.cumsum(x, axis=0), U(0, 3), label="empty")

case("diff", lambda m, x: m.diff(x), U(3, 4), label="last")
case("diff", lambda m, x: m.diff(x, n=2, axis=0), U(4, 3), label="n2")
case("diff", lambda m, x, p, a: m.diff(x, axis=1, prepend=p, append=a), U(3, 4), U(3, 1),
     U(3, 2), label="pre-append")  # fmt: skip
case("diff", lambda m, x: m.diff(x, n=0), U(3), label="n0")

case("trace", lambda m, x: m.trace(x), U(3, 4), label="plain")
case("trace", lambda m, x: m.trace(x, offset=1), U(3, 4), label="offset")
case("trace", lambda m, x: m.trace(x, offset=-1, axis1=2, axis2=0), U(3, 2, 4), label="axes")

for _name in ("all", "any"):
    for _ax in (None, 1):
        case(_name, lambda m, x, _n=_name, _a=_ax: getattr(m, _n)(m.floor(x), axis=_a), U(3, 4),
             label=f"axis{_ax}", differentiable=False)  # fmt: skip
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x > 0, axis=0, keepdims=True), U(3, 4),
         label="keepdims", differentiable=False)  # fmt: skip
for _name in ("argmax", "argmin"):
    for _ax in (None, 1, -1):
        case(_name, lambda m, x, _n=_name, _a=_ax: getattr(m, _n)(x, axis=_a), U(3, 4),
             label=f"axis{_ax}", differentiable=False)  # fmt: skip
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x, axis=0, keepdims=True), U(2, 3, 4),
         label="keepdims", differentiable=False)  # fmt: skip
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(m.floor(x), axis=1), U(3, 4), label="ties",
         differentiable=False)  # fmt: skip

# -- shapes ------------------------------------------------------------------------------------
case("reshape", lambda m, x: m.reshape(x, (2, 6)), U(3, 4), label="2d")
case("reshape", lambda m, x: m.reshape(x, (-1,)), U(2, 3, 2), label="flat")
case("reshape", lambda m, x: m.reshape(x, (1, 3, 1)), U(3), label="ones")
case("reshape", lambda m, x: m.reshape(x, ()), U(1), label="0d")
case("ravel", lambda m, x: m.ravel(x), U(2, 3, 2))
case("ravel", lambda m, x: m.ravel(x), U())
case("transpose", lambda m, x: m.transpose(x), U(2, 3, 4), label="reverse")
case("transpose", lambda m, x: m.transpose(x, (1, 0, 2)), U(2, 3, 4), label="axes")
case("transpose", lambda m, x: m.transpose(x, (-1, 0)), U(3, 4), label="neg")
case("moveaxis", lambda m, x: m.moveaxis(x, 0, -1), U(2, 3, 4), label="one")
case("moveaxis", lambda m, x: m.moveaxis(x, (0, 1), (2, 0)), U(2, 3, 4), label="two")
case("swapaxes", lambda m, x: m.swapaxes(x, 0, 2), U(2, 3, 4))
case("swapaxes", lambda m, x: m.swapaxes(x, -1, 1), U(2, 3, 4))
case("rollaxis", lambda m, x: m.rollaxis(x, 2), U(2, 3, 4))
case("rollaxis", lambda m, x: m.rollaxis(x, 0, 3), U(2, 3, 4))
case("expand_dims", lambda m, x: m.expand_dims(x, 0), U(3, 4))
case("expand_dims", lambda m, x: m.expand_dims(x, (0, -1)), U(3))
case("squeeze", lambda m, x: m.squeeze(x), U(1, 3, 1))
case("squeeze", lambda m, x: m.squeeze(x, axis=-1), U(1, 3, 1))
case("flip", lambda m, x: m.flip(x), U(3, 4), label="all")
case("flip", lambda m, x: m.flip(x, 1), U(3, 4), label="one")
case("flip", lambda m, x: m.flip(x, (0, 2)), U(2, 3, 4), label="two")
case("fliplr", lambda m, x: m.fliplr(x), U(3, 4))
case("flipud", lambda m, x: m.flipud(x), U(3, 4))
case("flipud", lambda m, x: m.flipud(x), U(3))
for _k in (1, 2, -1):
    case("rot90", lambda m, x, _k=_k: m.rot90(x, _k), U(3, 4), label=f"k{_k}")
case("rot90", lambda m, x: m.rot90(x, 1, axes=(2, 1)), U(2, 3, 4), label="axes")
case("roll", lambda m, x: m.roll(x, 2), U(3, 4), label="flat")
case("roll", lambda m, x: m.roll(x, -1, axis=1), U(3, 4), label="axis")
case("roll", lambda m, x: m.roll(x, (1, -2), axis=(0, 1)), U(3, 4), label="axes")
case("tile", lambda m, x: m.tile(x, (2, 1)), U(3, 2))
case("tile", lambda m, x: m.tile(x, 3), U(2))
case("tile", lambda m, x: m.tile(x, (2, 1, 2)), U(2, 3))
case("repeat", lambda m, x: m.repeat(x, 2), U(2, 3), label="flat")
case("repeat", lambda m, x: m.repeat(x, [1, 0, 2], axis=1), U(2, 3), label="counts")
case("repeat", lambda m, x: m.repeat(x, 3, axis=0), U(2, 3), label="axis0")
case("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4)), U(3, 1))
case("broadcast_to", lambda m, x: m.broadcast_to(x, (3,)), U())
case("broadcast_arrays", lambda m, x, y: m.broadcast_arrays(x, y), U(3, 1), U(4))
case("broadcast_arrays", lambda m, x, y, z: m.broadcast_arrays(x, y, z), U(), U(2, 1), U(3))
for _name in ("atleast_1d", "atleast_2d", "atleast_3d"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(), label="0d")
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3), label="1d")
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(2, 3), label="2d")
    case(_name, lambda m, x, y, _n=_name: getattr(m, _n)(x, y), U(), U(2, 3), label="pair")

# -- joining and splitting -----------------------------------------------------------------------
case("concatenate", lambda m, x, y: m.concatenate([x, y]), U(2, 3), U(1, 3), label="axis0")
case("concatenate", lambda m, x, y: m.concatenate((x, y), axis=-1), U(2, 3), U(2, 1),
     label="axis-1")  # fmt: skip
case("concatenate", lambda m, x, y: m.concatenate([x, y], axis=None), U(2, 3), U(4),
     label="flat")  # fmt: skip
case("concatenate", lambda m, x, y, z: m.concatenate([x, y, z], axis=1), U(2, 1), U(2, 0),
     U(2, 2), label="three")  # fmt: skip
case("stack", lambda m, x, y: m.stack([x, y]), U(2, 3), U(2, 3), label="axis0")
case("stack", lambda m, x, y: m.stack([x, y], axis=-1), U(3), U(3), label="axis-1")
case("hstack", lambda m, x, y: m.hstack([x, y]), U(2, 3), U(2, 1))
case("hstack", lambda m, x, y: m.hstack([x, y]), U(3), U())
case("vstack", lambda m, x, y: m.vstack([x, y]), U(2, 3), U(3))
case("vstack", lambda m, x, y: m.vstack([x, y]), U(), U(1))
case("dstack", lambda m, x, y: m.dstack([x, y]), U(2, 3), U(2, 3))
case("dstack", lambda m, x, y: m.dstack([x, y]), U(3), U(3))
case("column_stack", lambda m, x, y: m.column_stack([x, y]), U(3), U(3, 2))
case("append", lambda m, x, y: m.append(x, y), U(2, 3), U(2), label="flat")
case("append", lambda m, x, y: m.append(x, y, axis=0), U(2, 3), U(1, 3), label="axis0")
case("split", lambda m, x: m.split(x, 2, axis=1), U(3, 4), label="sections")
case("split", lambda m, x: m.split(x, [1, 3]), U(4, 2), label="indices")
case("split", lambda m, x: m.split(x, [2, 1, 5], axis=-1), U(2, 4), label="odd-indices")
case("array_split", lambda m, x: m.array_split(x, 3, axis=1), U(2, 4), label="uneven")
case("array_split", lambda m, x: m.array_split(x, [1]), U(3), label="indices")
case("hsplit", lambda m, x: m.hsplit(x, 2), U(3, 4))
case("hsplit", lambda m, x: m.hsplit(x, [1]), U(4))
case("vsplit", lambda m, x: m.vsplit(x, [2]), U(3, 4))
case("dsplit", lambda m, x: m.dsplit(x, 2), U(2, 1, 4))
case("pad", lambda m, x: m.pad(x, 1), U(3, 4), label="constant")
case("pad", lambda m, x: m.pad(x, ((1, 2), (0, 1)), constant_values=1.5), U(3, 4), label="value")
for _mode in ("edge", "reflect", "symmetric", "wrap"):
    case("pad", lambda m, x, _mode=_mode: m.pad(x, ((2, 1), (1, 2)), mode=_mode), U(3, 4),
         label=_mode)  # fmt: skip
case("diag", lambda m, x: m.diag(x), U(3), label="make")
case("diag", lambda m, x: m.diag(x, 1), U(3), label="make-k")
case("diag", lambda m, x: m.diag(x), U(3, 4), label="take")
case("diag", lambda m, x: m.diag(x, -1), U(3, 4), label="take-k")
case("diagonal", lambda m, x: m.diagonal(x), U(3, 4), label="plain")
case("diagonal", lambda m, x: m.diagonal(x, 1, 2, 0), U(3, 2, 4), label="axes")
case("diagonal", lambda m, x: m.diagonal(x, -2), U(4, 3), label="neg")
for _name in ("tril", "triu"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3, 4), label="plain")
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x, -1), U(2, 3, 3), label="k")
case("sort", lambda m, x: m.sort(x), U(3, 4), label="last")
case("sort", lambda m, x: m.sort(x, axis=0), U(3, 4), label="axis0")
case("sort", lambda m, x: m.sort(x, axis=None), U(3, 4), label="flat")
# NumPy's default (unstable) argsort orders ties as its SIMD sort happens to: floats only.
case("argsort", lambda m, x: m.argsort(x), U(3, 4), label="last", differentiable=False,
     dtypes=("float64", "float32"))  # fmt: skip
case("argsort", lambda m, x: m.argsort(x, axis=0, stable=True), U(3, 4), label="axis0",
     differentiable=False)  # fmt: skip
case("argsort", lambda m, x: m.argsort(m.floor(x), axis=None, kind="stable"), U(3, 4),
     label="ties", differentiable=False)  # fmt: skip


# -- indexing --------------------------------------------------------------------------------
def _getitem(index):
    def fn(m, x):
        return m.getitem(x, index) if m is mnp else x[index]

    return fn


_IDX = np.array([[2, 0], [0, 1]])
for _label, _index in (
    ("slices", (slice(None, None, -1), slice(1, None, 2))),
    ("int", 1),
    ("negative-int", (-1, slice(None))),
    ("none-ellipsis", (None, Ellipsis, 0)),
    ("int-array", _IDX),
    ("duplicates", ([0, 0, 2], slice(None))),
    ("mixed", (slice(None), [3, 1, 1])),
    ("two-arrays", ([0, 2, 1], [1, 3, 3])),
    ("mask", np.array([True, False, True])),
    ("full-mask", np.arange(12).reshape(3, 4) % 3 == 0),
    ("empty-slice", slice(2, 2)),
):
    case("getitem", _getitem(_index), U(3, 4), label=_label)

# x.at[index].<op>(values): NumPy's equivalent is an in-place update (ufunc.at) of a copy.
_UFUNC_AT = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def _update(op, index):
    def fn(m, x, v):
        if m is np and not traced(x, v):
            y = np.array(x, dtype=np.result_type(x, v))
            if op == "set":
                y[index] = v
                return y
            pos = np.arange(x.size).reshape(x.shape)[index]
            _UFUNC_AT[op].at(y.reshape(-1), pos.reshape(-1), np.broadcast_to(v, pos.shape).ravel())
            return y
        at = x.at if m is np else mnp.IndexUpdater(x)
        return getattr(at[index], op)(v)

    return fn


_AT = {"numpy_traced": (0,)}
for _op in ("set", "add", "multiply", "min", "max"):
    case("IndexUpdater", _update(_op, (slice(None), 1)), U(3, 4), U(3), label=f"{_op}-column",
         **_AT)  # fmt: skip
    case("IndexUpdater", _update(_op, ([0, 2, 0],)), U(3, 4), U(3, 1), label=f"{_op}-dups", **_AT)
case("IndexUpdater", _update("add", (Ellipsis, slice(None, None, -2))), U(3, 4), U(),
     label="add-scalar", **_AT)  # fmt: skip
case("IndexUpdater", lambda m, x: mnp.IndexUpdater(x)[1:, ::2].get() if m is mnp else (
     x.at[1:, ::2].get() if traced(x) else x[1:, ::2]), U(3, 4), label="get")  # fmt: skip

case("take", lambda m, x: m.take(x, [5, 0, 5, 11]), U(3, 4), label="flat")


def _getitem_traced(index):
    def fn(m, x, i):
        return m.getitem(x, index(_ints(m, i))) if m is mnp else x[index(_ints(m, i))]

    return fn


# Traced index arrays: float inputs floored to ints in [-3, 2] inside ``fn`` (negative ones wrap
# as in NumPy), so gathers and scatters with batched indices are swept too.
def _ints(m, i):
    return m.astype(m.floor(i), np.int64)


_I = {"lo": -3.0, "hi": 2.4}  # rounded (int dtypes) or floored: in [-3, 2]
_TRACED = {"dtypes": ("float64", "float32", "int64", "int32"), "specials": False}
case(
    "getitem",
    _getitem_traced(lambda i: i),
    U(3, 4),
    U(2, 2, **_I),
    label="traced",
    numpy_traced=(0,),
    **_TRACED,
)
case(
    "getitem",
    _getitem_traced(lambda i: (slice(None), i)),
    U(4, 3),
    U(5, **_I),
    label="traced-cols",
    numpy_traced=(0,),
    **_TRACED,
)
case(
    "take",
    lambda m, x, i: m.take(x, _ints(m, i), axis=1),
    U(2, 3),
    U(4, **_I),
    label="traced",
    numpy_traced=(0,),
    **_TRACED,
)
case("take_along_axis", lambda m, x, i: m.take_along_axis(x, _ints(m, i), axis=0), U(3, 2),
     U(4, 2, **_I), label="traced", **_TRACED)  # fmt: skip


def _add_at(m, x, i, v):
    idx = _ints(m, i)
    if m is np and not traced(x, i, v):
        y = np.array(x, dtype=np.result_type(x, v))
        np.add.at(y, idx, v)
        return y
    return (x.at if m is np else mnp.IndexUpdater(x))[idx].add(v)


case("IndexUpdater", _add_at, U(3, 2), U(4, **_I), U(4, 2), label="traced-add", numpy_traced=(0,),
     **_TRACED)  # fmt: skip
case("take", lambda m, x: m.take(x, _IDX, axis=1), U(3, 4), label="axis")
case("take", lambda m, x: m.take(x, [-1, 7], axis=0, mode="clip"), U(3, 4), label="clip")
case("take", lambda m, x: m.take(x, [4, -5], axis=0, mode="wrap"), U(3, 4), label="wrap")
case("take", lambda m, x: m.take(x, 2), U(3, 4), label="scalar")
_ALONG = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]])
case("take_along_axis", lambda m, x: m.take_along_axis(x, _ALONG, axis=1), U(3, 4), label="a1")
case("take_along_axis", lambda m, x: m.take_along_axis(x, _ALONG.T[:, :2], axis=0), U(4, 2),
     label="a0")  # fmt: skip
case("take_along_axis", lambda m, x: m.take_along_axis(x, np.array([3, 0, 0]), axis=None),
     U(2, 2), label="flat")  # fmt: skip

# -- products --------------------------------------------------------------------------------
case("dot", lambda m, a, b: m.dot(a, b), U(3), U(3), label="1-1")
case("dot", lambda m, a, b: m.dot(a, b), U(2, 3), U(3, 4), label="2-2")
case("dot", lambda m, a, b: m.dot(a, b), U(2, 3), U(3), label="2-1")
case("dot", lambda m, a, b: m.dot(a, b), U(), U(2, 3), label="0-2")
case("dot", lambda m, a, b: m.dot(a, b), U(2, 2, 3), U(4, 3, 2), label="3-3")
case("matmul", lambda m, a, b: m.matmul(a, b), U(2, 3), U(3, 4), label="2-2")
case("matmul", lambda m, a, b: m.matmul(a, b), U(3), U(3, 4), label="1-2")
case("matmul", lambda m, a, b: m.matmul(a, b), U(2, 3), U(3), label="2-1")
case("matmul", lambda m, a, b: m.matmul(a, b), U(2, 1, 2, 3), U(3, 3, 2), label="batch")
case("matmul", lambda m, a, b: a @ b, U(3, 2), U(2, 2), label="operator")
case("matmul", lambda m, a, b: m.matmul(a, b), U(2, 0), U(0, 3), label="empty-contraction")
case("matvec", lambda m, a, b: m.matvec(a, b), U(2, 3, 4), U(4))
case("matvec", lambda m, a, b: m.matvec(a, b), U(3, 4), U(2, 1, 4))
case("vecmat", lambda m, a, b: m.vecmat(a, b), U(3), U(2, 3, 4))
case("vecdot", lambda m, a, b: m.vecdot(a, b), U(3, 4), U(2, 1, 4))
case("vecdot", lambda m, a, b: m.vecdot(a, b), U(3), U(2, 3))
case("inner", lambda m, a, b: m.inner(a, b), U(3), U(3))
case("inner", lambda m, a, b: m.inner(a, b), U(2, 3), U(4, 3))
case("inner", lambda m, a, b: m.inner(a, b), U(), U(2))
case("outer", lambda m, a, b: m.outer(a, b), U(3), U(4))
case("outer", lambda m, a, b: m.outer(a, b), U(2, 2), U(3))
case("vdot", lambda m, a, b: m.vdot(a, b), U(2, 3), U(3, 2))
case("tensordot", lambda m, a, b: m.tensordot(a, b), U(2, 3, 4), U(3, 4, 2), label="2")
case("tensordot", lambda m, a, b: m.tensordot(a, b, 1), U(2, 3), U(3, 4), label="1")
case("tensordot", lambda m, a, b: m.tensordot(a, b, 0), U(2), U(3), label="0")
case("tensordot", lambda m, a, b: m.tensordot(a, b, ([1, 0], [0, 2])), U(2, 3), U(3, 4, 2),
     label="pairs")  # fmt: skip
for _spec, _shapes in (
    ("ij,jk->ik", ((2, 3), (3, 4))),
    ("ii->i", ((3, 3),)),
    ("ii", ((3, 3),)),
    ("ij->ji", ((2, 3),)),
    ("i,i->", ((3,), (3,))),
    ("bij,bjk->bik", ((2, 2, 3), (2, 3, 2))),
    ("...ij,...j->...i", ((2, 3, 4), (4,))),
    ("ij,kl->ilkj", ((2, 2), (2, 3))),
    ("ij,jk,k", ((2, 3), (3, 2), (2,))),
    ("i,j", ((2,), (3,))),
):
    case("einsum", lambda m, *xs, _s=_spec: m.einsum(_s, *xs), *[U(*s) for s in _shapes],
         label=_spec)  # fmt: skip
case("kron", lambda m, a, b: m.kron(a, b), U(2, 2), U(2, 3))
case("kron", lambda m, a, b: m.kron(a, b), U(3), U(2, 2))
case("cross", lambda m, a, b: m.cross(a, b), U(4, 3), U(3))
case("cross", lambda m, a, b: m.cross(a, b, axisa=0, axisb=-1, axisc=0), U(3, 2), U(2, 3))

# -- creation and conversion -----------------------------------------------------------------
_NO_DISPATCH = "NumPy converts the argument with __array__ before dispatching (docs/numpy.md)"
case("array", lambda m, x: m.array(x), U(3, 4), label="copy", numpy_dispatch=_NO_DISPATCH)
case("array", lambda m, x, y: m.array([x, y]), U(3), U(3), label="stack",
     numpy_dispatch=_NO_DISPATCH)  # fmt: skip
case("array", lambda m, x: m.array(x, ndmin=3), U(3), label="ndmin", numpy_dispatch=_NO_DISPATCH)
for _name in ("asarray", "asanyarray", "ascontiguousarray"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3, 4), numpy_dispatch=_NO_DISPATCH)
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(), numpy_dispatch=_NO_DISPATCH)
case("c_", lambda m, x, y: m.c_[x, y], U(3), U(3, 2), label="cols", numpy_dispatch=_NO_DISPATCH)
case("r_", lambda m, x, y: m.r_[x, y], U(3), U(2), label="rows", numpy_dispatch=_NO_DISPATCH)
case("r_", lambda m, x, y: m.r_[x, 2.5, y], U(3), U(), label="scalar", numpy_dispatch=_NO_DISPATCH)
case("full", lambda m, x: m.full((2, 3, 4), x), U(4), label="array-fill",
     numpy_dispatch=_NO_DISPATCH)  # fmt: skip
case("copy", lambda m, x: m.copy(x), U(3, 4))
case("copy", lambda m, x: m.copy(x), U())
case("astype", lambda m, x: m.astype(x, np.float64), U(3, 4), label="float64")
case("astype", lambda m, x: m.astype(x, np.int32), U(3, 4, lo=-9, hi=9), label="int32",
     differentiable=False)  # fmt: skip
case("astype", lambda m, x: m.astype(x, bool), U(3, 4), label="bool", differentiable=False)
case("linspace", lambda m, a, b: m.linspace(a, b, 5), U(3), U(3), label="arrays")
case("linspace", lambda m, a, b: m.linspace(a, b, 4, endpoint=False, axis=-1), U(2, 1), U(3),
     label="axis")  # fmt: skip
case("linspace", lambda m, a: m.linspace(a, 2.0, 3), U(), label="scalar")
for _name in ("zeros_like", "ones_like"):
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x), U(3, 4), differentiable=False)
    case(_name, lambda m, x, _n=_name: getattr(m, _n)(x, dtype=np.int32, shape=(2, 1)), U(3),
         label="dtype-shape", differentiable=False)  # fmt: skip
case("full_like", lambda m, x: m.full_like(x, 2.5), U(3, 4), differentiable=False)
case("full_like", lambda m, x: m.full_like(x, 7, dtype=np.int64), U(2), differentiable=False)
case("empty_like", lambda m, x: m.empty_like(x), U(3, 4), differentiable=False, values=False)
