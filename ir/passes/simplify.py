"""Algebraic simplification: small pattern rewrites, each exact in NumPy.

Every rule preserves the reference interpreter's result bit for bit, NaN, inf and -0.0 included
(docs/passes.md gives the reasoning rule by rule). So some familiar rewrites are *not* here:
``x + 0.0 -> x`` (turns -0.0 into +0.0), ``x - x -> 0`` and ``x * 0 -> 0`` on floats (NaN, inf),
``x ** 3 -> x * x * x`` on floats (rounds twice where ``pow`` rounds once; the opt-in pass
``expand-pow`` does it, and for integers ``simplify`` does it exactly).
"""

import numpy as np

from .. import dtypes
from ..graph import Graph
from ..primitives import elementwise as E
from ..primitives import structure as S
from .manager import register_pass
from .rewrite import Rewriter, const, is_const, pow_exponent_views, splat_value

rules = Rewriter("simplify")
rule = rules.rule


def _is_float(n) -> bool:
    return n.dtype.kind == "f"


def _is_exact(n) -> bool:
    """Integer or bool: no NaN, inf or signed zero, so ring identities hold exactly."""
    return n.dtype.kind in "iub"


# -- arithmetic identities ---------------------------------------------------------------------
@rule("add")
def add_zero(n):
    # x + (-0.0) == x for every float x (+0.0 + -0.0 is +0.0, -0.0 + -0.0 is -0.0, NaN stays
    # NaN); x + (+0.0) is not: -0.0 + 0.0 is +0.0. For ints x + 0 == x; for bools add is "or".
    x, y = n.inputs
    zero = -0.0 if _is_float(n) else 0
    if is_const(y, zero):
        return x
    if is_const(x, zero):
        return y
    return None


@rule("sub")
def sub_zero(n):
    # x - (+0.0) is x + (-0.0): exact. x - (-0.0) is x + 0.0: not exact.
    x, y = n.inputs
    if is_const(y, 0.0 if _is_float(n) else 0):
        return x
    return None


@rule("sub")
def sub_self_int(n):
    # x - x == 0 for ints (wrapping arithmetic); for floats inf - inf and NaN - NaN are NaN.
    x, y = n.inputs
    return const(0, n) if _is_exact(n) and x is y else None


@rule("sub")
def zero_sub_int(n):
    # 0 - x == -x for ints (both wrap at the minimum); for floats 0.0 - 0.0 is +0.0, -(0.0) -0.0.
    x, y = n.inputs
    return E.neg(y) if _is_exact(n) and is_const(x, 0) else None


@rule("mul")
def mul_one(n):
    # x * 1 == x exactly in IEEE arithmetic (NaN, inf, -0.0 included); for bools mul is "and".
    x, y = n.inputs
    if is_const(y, 1):
        return x
    if is_const(x, 1):
        return y
    return None


@rule("mul")
def mul_zero_int(n):
    # x * 0 == 0 for ints and bools only: for floats NaN * 0 is NaN and -1.0 * 0 is -0.0.
    x, y = n.inputs
    if not _is_exact(n):
        return None
    if is_const(y, 0):
        return y
    if is_const(x, 0):
        return x
    return None


@rule("div")
def div_one(n):
    # x / 1 == x exactly (division by one is exact; NaN stays NaN).
    x, y = n.inputs
    return x if is_const(y, 1) else None


@rule("max", "min", "and", "or")
def idempotent(n):
    # max(x, x) == x (NaN in, NaN out; -0.0 stays -0.0); likewise min, logical and/or.
    x, y = n.inputs
    return x if x is y else None


@rule("and", "or")
def logic_identity(n):
    # x and True == x, x or False == x; x and False == False, x or True == True (bools only).
    x, y = n.inputs
    unit = n.op == "and"  # the identity element: True for "and", False for "or"
    for a, b in ((x, y), (y, x)):
        v = splat_value(b)
        if v is None:
            continue
        return a if bool(v) == unit else b
    return None


# -- pow with a scalar exponent ----------------------------------------------------------------
def _numpy_power_fast_paths() -> bool:
    """Does NumPy's power loop turn a stride-0 exponent 2 / 0.5 / -1 into square / sqrt /
    reciprocal (NumPy 2.x does)? Then those rules are exact; otherwise they are switched off."""
    with np.errstate(all="ignore"):
        for dt in (np.float32, np.float64):
            x = np.array([0.1, -0.0, -np.inf, 3.0, 1e30], dt)

            def power(e, x=x, dt=dt):
                return np.power(x, np.broadcast_to(np.asarray(e, dt), x.shape))

            ok = (
                np.array_equal(power(2), x * x)
                and np.array_equal(power(0.5), np.sqrt(x), equal_nan=True)
                and np.array_equal(np.signbit(power(0.5)), np.signbit(np.sqrt(x)))
                and np.array_equal(power(-1), 1 / x)
            )
            if not ok:
                return False
    return True


POWER_FAST_PATHS = _numpy_power_fast_paths()


def _scalar_exponent(n):
    """The exponent of ``pow`` node ``n`` as a number when NumPy treats it as a scalar, else None.

    The interpreter passes a splat as a stride-0 view, and NumPy's power loop then takes its
    scalar fast paths, except for a one-element array of rank >= 1 (measured: shape (1, 1)
    calls ``pow``). So a one-element, non-0-d pow keeps its ``pow``.
    """
    e = splat_value(n.inputs[1])
    if e is None or (n.type.size == 1 and n.ndim > 0):
        return None
    if _is_float(n) and not POWER_FAST_PATHS:
        return None
    return e


@rule("pow")
def pow_scalar(n):
    # x ** 0 == 1 for every x, NaN included (C99 pow); x ** 1 == x; x ** 2 == x * x (NumPy's
    # fast path is np.square); x ** 0.5 == sqrt(x) (fast path: np.sqrt, so -0.0 ** 0.5 is
    # -0.0 and -inf ** 0.5 is NaN here, unlike C pow); x ** -1 == 1 / x (np.reciprocal).
    e = _scalar_exponent(n)
    if e is None:
        return None
    x = n.inputs[0]
    if e == 0:
        return const(1, n)
    if e == 1:
        return x
    if e == 2:
        return E.mul(x, x)
    if e == 3 and _is_exact(n):
        # Integer power is repeated multiplication modulo 2**bits, so x*x*x is bit-exact.
        return E.mul(E.mul(x, x), x)
    if _is_float(n) and e == 0.5:
        return E.sqrt(x)
    if _is_float(n) and e == -1:
        return E.div(const(1, n), x)
    return None


# -- involutions and idempotent unary ops ------------------------------------------------------
@rule("neg")
def double_negation(n):
    # -(-x) == x: a sign flip twice (also for NaN's sign bit; ints wrap at the minimum both ways).
    (x,) = n.inputs
    return x.inputs[0] if x.op == "neg" else None


@rule("not")
def double_not(n):
    (x,) = n.inputs
    return x.inputs[0] if x.op == "not" else None


@rule("abs")
def abs_of_sign_change(n):
    # |(-x)| == |x| and ||x|| == |x|: abs clears the sign bit whatever it was.
    (x,) = n.inputs
    return E.abs(x.inputs[0]) if x.op in ("neg", "abs") else None


@rule("convert")
def convert_same_dtype(n):
    # astype to the dtype the array already has is a copy.
    (x,) = n.inputs
    return x if dtypes.dtype(n.attr("dtype")) == x.dtype else None


# -- select ------------------------------------------------------------------------------------
@rule("select")
def select_same(n):
    p, a, b = n.inputs
    if a is b:
        return a
    v = splat_value(p)
    if v is not None:
        return a if v else b
    if p.op == "not":
        return E.select(p.inputs[0], b, a)
    return None


# -- data movement -----------------------------------------------------------------------------
@rule("reshape")
def reshape_chain(n):
    # Reshapes are row-major, so reshape(reshape(x, s1), s2) == reshape(x, s2); an identity
    # reshape is x.
    (x,) = n.inputs
    if n.shape == x.shape:
        return x
    if x.op == "reshape":
        return S.reshape(x.inputs[0], shape=n.shape)
    return None


@rule("transpose")
def transpose_chain(n):
    # transpose(transpose(y, p1), p2) has dim i = y's dim p1[p2[i]].
    (x,) = n.inputs
    perm = n.attr("perm")
    if tuple(perm) == tuple(range(n.ndim)):
        return x
    if x.op == "transpose":
        inner = x.attr("perm")
        return S.transpose(x.inputs[0], perm=tuple(inner[p] for p in perm))
    return None


@rule("broadcast_in_dim")
def broadcast_chain(n):
    # broadcast(broadcast(y, dims=d1), dims=d2) == broadcast(y, dims=d2[d1]); an identity
    # broadcast (same shape, dims 0..n-1) is x.
    (x,) = n.inputs
    dims = tuple(n.attr("dims"))
    if n.shape == x.shape and dims == tuple(range(x.ndim)):
        return x
    if x.op == "broadcast_in_dim":
        inner = x.attr("dims")
        return S.broadcast_in_dim(x.inputs[0], shape=n.shape, dims=tuple(dims[d] for d in inner))
    return None


@rule("slice")
def slice_whole(n):
    (x,) = n.inputs
    whole = all(s == 0 for s in n.attr("start")) and all(st == 1 for st in n.attr("stride"))
    return x if whole and n.shape == x.shape else None


@rule("rev")
def rev_chain(n):
    # Reversing an axis twice is the identity: rev(rev(y, A), B) == rev(y, A xor B).
    (x,) = n.inputs
    axes = set(n.attr("axes"))
    if not axes:
        return x
    if x.op == "rev":
        left = axes ^ set(x.attr("axes"))
        y = x.inputs[0]
        return S.rev(y, axes=tuple(sorted(left))) if left else y
    return None


@rule("pad")
def pad_nothing(n):
    x = n.inputs[0]
    amounts = tuple(n.attr("low")) + tuple(n.attr("high")) + tuple(n.attr("interior"))
    return x if all(a == 0 for a in amounts) else None


@rule("concatenate")
def concatenate_one(n):
    return n.inputs[0] if len(n.inputs) == 1 else None


@rule("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")
def reduce_nothing(n):
    # A reduction over no axes returns its operand unchanged.
    (x,) = n.inputs
    return x if not n.attr("axes") else None


@register_pass("simplify", "algebraic simplification: exact pattern rewrites (docs/passes.md)")
def simplify(graph: Graph) -> Graph:
    return rules(graph, frozen=pow_exponent_views)


# -- not exact: opt-in -------------------------------------------------------------------------
approx_rules = Rewriter("expand-pow")


@approx_rules.rule("pow")
def pow_small_integer(n):
    # x ** k -> repeated multiplication for k = 2, 3, 4 on floats: within 2 ulp of pow, not
    # bit-exact (pow rounds once), so it is not in the default pipeline. Compiled backends,
    # which state their own ulp bounds, run it; so can `mlc opt --passes expand-pow`.
    e = splat_value(n.inputs[1])
    if e is None or e not in (2, 3, 4):
        return None
    x = n.inputs[0]
    x2 = E.mul(x, x)
    return {2: x2, 3: E.mul(x2, x), 4: E.mul(x2, x2)}[int(e)]


@register_pass("expand-pow", "x**2, x**3, x**4 -> multiplications (floats: within 2 ulp; opt-in)")
def expand_pow(graph: Graph) -> Graph:
    return approx_rules(graph)
