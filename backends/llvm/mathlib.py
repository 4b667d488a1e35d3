"""Scalar math functions as branch-free LLVM IR that the loop and SLP vectorizers can widen.

`emit(module, name, dtype)` returns an internal `alwaysinline` function of one (two for pow,
atan2, hypot, copysign, fmin, fmax, minimum, maximum) scalar argument(s) implementing the NumPy
function `name` for float32 or float64. A bare `llvm.exp` in a vectorized loop becomes one libm
call per lane (10x slower), so every function here is straight-line code: selects instead of
branches, explicit `llvm.fma` steps, no fast-math flags (NaN, inf, -0.0 and subnormals behave as
in NumPy). Three methods, recorded in `METHOD` and docs/llvm-math.md:

- "polynomial": range reduction plus polynomial, all in IR (float32 functions marked
  "polynomial-f64" compute in float64 internally and round once, which makes them correctly
  rounded in almost every case);
- "libmvec": a scalar libm call carrying the `vector-function-abi-variant` attribute, so the loop
  vectorizer calls glibc's AVX2/SSE vector variant (`_ZGVdN4v_sin`, ...); float32 versions of these
  call the float64 variant and round. Kernels using them need `load_runtime()` before JIT linking
  (`emit` calls it). Without libmvec the same call is a plain, correct, scalar libm call;
- "intrinsic": an LLVM intrinsic that vectorizes by itself (sqrt, floor, fabs, ...).

>>> from llvmlite import ir
>>> m = ir.Module()
>>> f = emit(m, "exp", "float32")
>>> f.name, str(f.type.pointee), emit(m, "exp", "float32") is f
('mlc.exp.f32', 'float (float)', True)
"""

import math
from functools import cache

from llvmlite import ir

from .compiler import libmvec_path, load_runtime  # noqa: F401  (re-exported)

_UNARY_LIBMVEC = "sin cos tan exp2 erf sinh cosh asinh acosh atanh asin acos atan cbrt".split()
_BINARY_LIBMVEC = ("pow", "atan2", "hypot")
_UNARY_INTRINSIC = {n: n for n in ("sqrt", "floor", "ceil", "trunc", "rint", "fabs")}
_BINARY_INTRINSIC = {
    "copysign": "copysign",
    "fmin": "minnum",
    "fmax": "maxnum",
    "minimum": "minimum",
    "maximum": "maximum",
}
# Max ulp distance from NumPy's float64 result rounded to the dtype (float32), or from NumPy's own
# float64 result (float64), measured by tests/test_llvm_math.py over all finite floats plus the
# special values; the test asserts these.
ULP_BOUND = {
    ("exp", "float32"): 1,
    ("log", "float32"): 1,
    ("tanh", "float32"): 2,
    ("logistic", "float32"): 2,
    ("sin", "float32"): 1,
    ("cos", "float32"): 1,
    ("erf", "float32"): 1,
    ("pow", "float32"): 1,
    ("expm1", "float32"): 1,
    ("log1p", "float32"): 1,
    ("exp2", "float32"): 1,
    ("log2", "float32"): 1,
    ("log10", "float32"): 1,
    ("exp", "float64"): 1,
    ("log", "float64"): 1,
    ("tanh", "float64"): 2,
    ("logistic", "float64"): 2,
    ("expm1", "float64"): 2,
    ("log1p", "float64"): 1,
    ("log2", "float64"): 2,
    ("log10", "float64"): 4,
    ("hypot", "float32"): 1,
}
# The rest use libmvec: float32 rounds glibc's float64 vector result (measured 0 ulp); float64 is
# glibc's documented bound for libmvec (4 ulp; measured 1-3 here, see docs/llvm-math.md).
for _n in (*_UNARY_LIBMVEC, *_BINARY_LIBMVEC):
    ULP_BOUND.setdefault((_n, "float32"), 1)
    ULP_BOUND.setdefault((_n, "float64"), 4)

_TYPES = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
_SUFFIX = {"float32": "f32", "float64": "f64"}


# ---------------------------------------------------------------------------------------------
# A small value wrapper so that the math below reads like math.


class _F:
    """A float SSA value (scalar) with arithmetic that emits IR through the shared builder."""

    __slots__ = ("k", "v")

    def __init__(self, k, v):
        self.k, self.v = k, v

    def _o(self, o):
        return o.v if isinstance(o, _F) else ir.Constant(self.v.type, float(o))

    def __add__(self, o):
        return _F(self.k, self.k.b.fadd(self.v, self._o(o)))

    def __radd__(self, o):
        return _F(self.k, self.k.b.fadd(self._o(o), self.v))

    def __sub__(self, o):
        return _F(self.k, self.k.b.fsub(self.v, self._o(o)))

    def __rsub__(self, o):
        return _F(self.k, self.k.b.fsub(self._o(o), self.v))

    def __mul__(self, o):
        return _F(self.k, self.k.b.fmul(self.v, self._o(o)))

    def __rmul__(self, o):
        return _F(self.k, self.k.b.fmul(self._o(o), self.v))

    def __truediv__(self, o):
        return _F(self.k, self.k.b.fdiv(self.v, self._o(o)))

    def __rtruediv__(self, o):
        return _F(self.k, self.k.b.fdiv(self._o(o), self.v))

    def __neg__(self):
        return _F(self.k, self.k.b.fneg(self.v))

    def _cmp(self, op, o):
        return _B(self.k, self.k.b.fcmp_ordered(op, self.v, self._o(o)))

    def __lt__(self, o):
        return self._cmp("<", o)

    def __le__(self, o):
        return self._cmp("<=", o)

    def __gt__(self, o):
        return self._cmp(">", o)

    def __ge__(self, o):
        return self._cmp(">=", o)

    def eq(self, o):
        return self._cmp("==", o)

    def ne(self, o):  # ordered: false for NaN
        return self._cmp("!=", o)

    def isnan(self):
        return _B(self.k, self.k.b.fcmp_unordered("uno", self.v, self.v))

    def isinf(self):
        return abs(self).eq(math.inf)

    def signbit(self):
        return self.bits() < 0

    def __abs__(self):
        return self.k.intrinsic("fabs", self)

    def bits(self):
        return _I(self.k, self.k.b.bitcast(self.v, self.k.it))

    def to(self, k):
        """Convert to the float type of emitter `k` (fpext / fptrunc)."""
        if k.ft == self.k.ft:
            return _F(k, self.v)
        conv = k.b.fpext if isinstance(k.ft, ir.DoubleType) else k.b.fptrunc
        return _F(k, conv(self.v, k.ft))


class _I:
    """An integer SSA value of the float's width (i32 for float32, i64 for float64)."""

    __slots__ = ("k", "v")

    def __init__(self, k, v):
        self.k, self.v = k, v

    def _o(self, o):
        return o.v if isinstance(o, _I) else ir.Constant(self.v.type, int(o))

    def __add__(self, o):
        return _I(self.k, self.k.b.add(self.v, self._o(o)))

    def __sub__(self, o):
        return _I(self.k, self.k.b.sub(self.v, self._o(o)))

    def __mul__(self, o):
        return _I(self.k, self.k.b.mul(self.v, self._o(o)))

    def __and__(self, o):
        return _I(self.k, self.k.b.and_(self.v, self._o(o)))

    def __or__(self, o):
        return _I(self.k, self.k.b.or_(self.v, self._o(o)))

    def __lshift__(self, o):
        return _I(self.k, self.k.b.shl(self.v, self._o(o)))

    def __rshift__(self, o):  # arithmetic
        return _I(self.k, self.k.b.ashr(self.v, self._o(o)))

    def lshr(self, o):
        return _I(self.k, self.k.b.lshr(self.v, self._o(o)))

    def __lt__(self, o):
        return _B(self.k, self.k.b.icmp_signed("<", self.v, self._o(o)))

    def __gt__(self, o):
        return _B(self.k, self.k.b.icmp_signed(">", self.v, self._o(o)))

    def eq(self, o):
        return _B(self.k, self.k.b.icmp_signed("==", self.v, self._o(o)))

    def as_float(self):
        return _F(self.k, self.k.b.bitcast(self.v, self.k.ft))

    def to_float(self):
        return _F(self.k, self.k.b.sitofp(self.v, self.k.ft))

    def cast(self, ty):
        w = ty.width
        if w == self.v.type.width:
            return _I(self.k, self.v)
        op = self.k.b.trunc if w < self.v.type.width else self.k.b.sext
        return _I(self.k, op(self.v, ty))


class _B:
    """An i1 condition."""

    __slots__ = ("k", "v")

    def __init__(self, k, v):
        self.k, self.v = k, v

    def __and__(self, o):
        return _B(self.k, self.k.b.and_(self.v, o.v))

    def __or__(self, o):
        return _B(self.k, self.k.b.or_(self.v, o.v))

    def __invert__(self):
        return _B(self.k, self.k.b.not_(self.v))


class _K:
    """Emitter state for one float type: builder, module, float and matching int type."""

    def __init__(self, builder, module, dtype):
        self.b, self.m, self.dtype = builder, module, dtype
        self.ft = _TYPES[dtype]
        self.it = ir.IntType(32 if dtype == "float32" else 64)

    def other(self, dtype):
        return _K(self.b, self.m, dtype)

    def c(self, value):
        return _F(self, ir.Constant(self.ft, float(value)))

    def i(self, value):
        return _I(self, ir.Constant(self.it, int(value)))

    def sel(self, cond, a, b):
        a = a if isinstance(a, (_F, _I)) else self.c(a)
        b = b if isinstance(b, (_F, _I)) else self.c(b)
        return type(a)(self, self.b.select(cond.v, a.v, b.v))

    def intrinsic(self, name, *args):
        fn = _intrinsic(self.m, name, self.ft, len(args))
        vals = [a.v if isinstance(a, _F) else ir.Constant(self.ft, float(a)) for a in args]
        return _F(self, self.b.call(fn, vals))

    def fma(self, a, b, c):
        return self.intrinsic("fma", a, b, c)

    def poly(self, x, coeffs):
        """c0 + c1 x + c2 x^2 + ... by Horner with fma (coefficients lowest first)."""
        acc = self.c(coeffs[-1])
        for co in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, co)
        return acc

    def pow2(self, n):
        """2**n for an integer n in the normal exponent range."""
        mant = 23 if self.dtype == "float32" else 52
        bias = 127 if self.dtype == "float32" else 1023
        return ((n + bias) << mant).as_float()


def _intrinsic(module, name, ft, nargs):
    full = f"llvm.{name}.{'f32' if isinstance(ft, ir.FloatType) else 'f64'}"
    if full in module.globals:
        return module.globals[full]
    return ir.Function(module, ir.FunctionType(ft, [ft] * nargs), name=full)


# ---------------------------------------------------------------------------------------------
# Constants. Polynomials for float64 are truncated Taylor series (exact coefficients, a few more
# terms than a minimax fit would need); erf's [1, 4] piece is a Chebyshev least-squares fit of
# degree 16 in u = (|x| - 2.5) / 1.5, absolute error 6e-10 (ample for float32).

_LN2 = math.log(2.0)
_LOG2E = 1.0 / _LN2
_LN2_HI_F32, _LN2_LO_F32 = 0.693359375, -2.12194440e-4  # Cephes: n * hi exact for |n| < 2^9
_LN2_HI_F64, _LN2_LO_F64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm
_MAGIC = {"float32": 12582912.0, "float64": 6755399441055744.0}  # 1.5 * 2^mantissa: rounds to int

_EXP_TAYLOR = {"float32": 7, "float64": 13}  # degree on |r| <= ln2/2 (float64 only now)
# float32 minimax fits (Lawson-weighted least squares on Chebyshev nodes, relative error):
# exp(r) = 1 + r + c2 r^2 + ... + c6 r^6 on |r| <= ln2/2, relative error 3.1e-9;
# expm1(2s)/2 = s + s^2 (d0 + d1 s + ... + d4 s^4) on |s| <= ln2/4, relative error 1.3e-8.
_EXP_F32 = [
    1.0,
    1.0,
    0.49999993450653846,
    0.1666652067830017,
    0.041668387562836126,
    0.008368710970956433,
    0.0013814604778162425,
]
_TANH_F32 = [
    1.0000000123748725,
    0.6666617213245472,
    0.33333025845865455,
    0.13386525113332745,
    0.044628571805233275,
]
_EXPM1_TAYLOR = {"float32": 8, "float64": 14}
_ATANH_TERMS = {"float32": 5, "float64": 10}  # 2 atanh(s) series terms after s, |s| <= 0.1716

_ERF_SMALL = [
    2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(13)
]
_ERF_LARGE = [
    0.9995930478582273,
    0.0032674177560796866,
    -0.01225282838954786,
    0.028181964738406864,
    -0.043651326904380276,
    0.046447836782476236,
    -0.03187075519232299,
    0.009303870991042023,
    0.006650058150012738,
    -0.009742476745018559,
    0.004635940381828342,
    0.0006709135854299619,
    -0.0019913923462473353,
    0.0006738999588703211,
    0.00023024139986923593,
    -0.0001538317487468211,
    7.403919719166635e-06,
]
_SIN_TAYLOR = [(-1) ** n / math.factorial(2 * n + 1) for n in range(7)]  # in r^2, |r| <= pi/4
_COS_TAYLOR = [(-1) ** n / math.factorial(2 * n) for n in range(8)]


def _pi_bits(bits):
    """floor(pi * 2**bits), by Machin's formula on integers (no float rounding anywhere)."""
    guard = bits + 32
    one = 1 << guard

    def arctan_inv(x):
        total, term, n, sign = 0, one // x, 1, 1
        while term:
            total += sign * (term // n)
            term //= x * x
            n += 2
            sign = -sign
        return total

    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) >> 32


@cache
def _two_over_pi_table():
    """W[e] = floor(2**(e+94) * 2/pi) mod 2**96 for e in 0..104, as three 32-bit words each.

    For a float32 x = m * 2**e (m a 24-bit integer), m * W[e] / 2**94 equals x * 2/pi modulo 4
    up to 2**-70: the Payne-Hanek reduction of huge arguments, done with integer multiplies.
    """
    p = 400
    two_over_pi = (1 << (2 * p + 1)) // _pi_bits(p)  # floor(2/pi * 2**p)
    rows = []
    for e in range(105):
        w = (two_over_pi >> (p - e - 94)) & ((1 << 96) - 1)
        rows.append((w >> 64, (w >> 32) & 0xFFFFFFFF, w & 0xFFFFFFFF))
    return rows


# ---------------------------------------------------------------------------------------------
# Implementations. Each takes the emitter `k` and _F argument(s) and returns an _F.


def _exp_core(k, x, nonpositive=False):
    """exp(x); NaN -> NaN, overflow -> inf, underflow -> 0 (subnormals rounded once).

    `nonpositive`: the caller guarantees x <= 0 (or NaN), so the overflow clamp is left out.
    """
    f32 = k.dtype == "float32"
    hi, lo = (89.0, -104.0) if f32 else (710.0, -746.0)
    xc = x if nonpositive else k.sel(x > hi, hi, x)
    xc = k.sel(xc < lo, lo, xc)  # selects keep NaN: comparisons with NaN are false
    magic = _MAGIC[k.dtype]
    t = k.fma(xc, _LOG2E, magic)
    n = t - magic
    ni = t.bits() - k.c(magic).bits()
    ln2_hi, ln2_lo = (_LN2_HI_F32, _LN2_LO_F32) if f32 else (_LN2_HI_F64, _LN2_LO_F64)
    r = k.fma(n, -ln2_hi, xc)
    r = k.fma(n, -ln2_lo, r)
    if f32:
        p = k.poly(r, _EXP_F32)
    else:
        p = k.poly(r, [1 / math.factorial(i) for i in range(_EXP_TAYLOR[k.dtype] + 1)])
    # 2^n as two normal factors so that results near the subnormal range round only once.
    n1 = ni >> 1
    return (p * k.pow2(n1)) * k.pow2(ni - n1)


def _expm1_core(k, x):
    f32 = k.dtype == "float32"
    hi, lo = (89.0, -25.0) if f32 else (710.0, -40.0)
    xc = k.sel(x > hi, hi, x)
    xc = k.sel(xc < lo, lo, xc)
    magic = _MAGIC[k.dtype]
    t = k.fma(xc, _LOG2E, magic)
    n = t - magic
    ni = t.bits() - k.c(magic).bits()
    ln2_hi, ln2_lo = (_LN2_HI_F32, _LN2_LO_F32) if f32 else (_LN2_HI_F64, _LN2_LO_F64)
    r = k.fma(n, -ln2_hi, xc)
    r = k.fma(n, -ln2_lo, r)
    q = k.poly(r, [1 / math.factorial(i) for i in range(2, _EXPM1_TAYLOR[k.dtype] + 1)])
    p = k.fma(r * r, q, r)  # expm1(r)
    # expm1(x) = 2^n (p + 1) - 1 = 2 * (p * 2^(n-1) + (2^(n-1) - 1/2)); halves keep 2^(n-1) finite
    h = k.pow2(ni - 1)
    res = k.fma(p, h, h - 0.5) * 2.0
    return k.sel(x.eq(0.0), x, res)  # -0.0


def _log_core(k, x, corr=None):
    """log(x) (+ corr, a tiny correction added before the final rounding, for log1p)."""
    f32 = k.dtype == "float32"
    mant = 23 if f32 else 52
    tiny = 2.0**-126 if f32 else 2.0**-1022
    sub = x < tiny  # subnormals (and 0, negatives; fixed below): scale into the normal range
    xs = k.sel(sub, x * 2.0**mant, x)
    off = k.c(math.sqrt(0.5)).bits()  # mantissa m in [sqrt(1/2), sqrt(2))
    u = xs.bits() - off
    kk = (u >> mant) - k.sel(sub, k.i(mant), k.i(0))
    m = ((u & ((1 << mant) - 1)) + off).as_float()
    f = m - 1.0  # exact (Sterbenz)
    s = f / (f + 2.0)  # log(1 + f) = 2 atanh(s) = 2s + 2s^3/3 + ...
    z = s * s
    terms = [2.0 / (2 * j + 3) for j in range(_ATANH_TERMS[k.dtype])]
    tail = z * k.poly(z, terms)
    # 2s = f - s f, so log(1 + f) = f - s (f - tail): the correction is small, its error damped.
    kf = kk.to_float()
    ln2_hi, ln2_lo = (_LN2_HI_F32, _LN2_LO_F32) if f32 else (_LN2_HI_F64, _LN2_LO_F64)
    lo = kf * ln2_lo - s * (f - tail)
    if corr is not None:
        lo = lo + corr
    res = (kf * ln2_hi + f) + lo
    res = k.sel(x.eq(math.inf), math.inf, res)
    res = k.sel(x.eq(0.0), -math.inf, res)
    res = k.sel(x < 0.0, math.nan, res)
    return k.sel(x.isnan(), x, res)


def _log1p_core(k, x):
    u = x + 1.0
    bb = u - 1.0
    err = (1.0 - (u - bb)) + (x - bb)  # TwoSum: 1 + x = u + err exactly
    res = _log_core(k, u, err / u)
    res = k.sel(x.eq(-1.0), -math.inf, res)
    res = k.sel(x < -1.0, math.nan, res)
    res = k.sel(x.eq(math.inf), math.inf, res)
    res = k.sel(x.eq(0.0), x, res)
    return k.sel(x.isnan(), x, res)


def _tanh_core(k, x):
    a = abs(x)
    big = 10.0 if k.dtype == "float32" else 20.0  # tanh rounds to 1 beyond
    em = _expm1_core(k, k.sel(a > big, big, a) * 2.0)
    t = em / (em + 2.0)  # tanh(a) = expm1(2a) / (expm1(2a) + 2)
    return k.intrinsic("copysign", t, x)


def _tanh_f32(k, x):
    """float32 tanh(|x|) = u / (u + 1) with u = expm1(2|x|) / 2, sign copied; all in float32.

    Specialized expm1: the argument is in [0, 18] (tanh rounds to 1 from 9.01), so no clamps
    besides the upper one and no -0.0 case (copysign gives tanh(-0.0) = -0.0). The reduction
    runs on |x| itself, 2|x| = n ln2 + 2s with |s| <= ln2/4, and a minimax polynomial gives
    expm1(2s)/2; then u = 2^n expm1(2s)/2 + (2^n - 1)/2, and the factor 2 of
    expm1(2|x|) / (expm1(2|x|) + 2) cancels.
    """
    a = abs(x)
    a = k.sel(a > 9.0, 9.0, a)  # keeps NaN
    magic = _MAGIC["float32"]
    t = k.fma(a, 2 * _LOG2E, magic)
    n = t - magic
    ni = t.bits() - k.c(magic).bits()
    s = k.fma(n, -0.5 * _LN2_HI_F32, a)  # n * hi/2 exact for n < 2^9
    s = k.fma(n, -0.5 * _LN2_LO_F32, s)
    q = k.fma(s * s, k.poly(s, _TANH_F32), s)  # expm1(2s) / 2
    h = k.pow2(ni)
    u = k.fma(q, h, k.fma(h, 0.5, -0.5))
    return k.intrinsic("copysign", u / (u + 1.0), x)


def _logistic_core(k, x):
    # e = exp(-|x|) never overflows; 1/(1+e) for x >= 0, e/(1+e) for x < 0 (keeps subnormals).
    e = _exp_core(k, -abs(x), nonpositive=True)
    return k.sel(x >= 0.0, 1.0, e) / (e + 1.0)


def _via_f64(core):
    """A float32 function computed in float64 by `core` and rounded once."""

    def impl(k, *args):
        k64 = k.other("float64")
        return core(k64, *(a.to(k64) for a in args)).to(k)

    return impl


def _sincos_f32(k, x, want_cos):
    """float32 sin/cos: reduction and polynomial in float64, Payne-Hanek for |x| >= 2^23."""
    k64 = k.other("float64")
    i64 = ir.IntType(64)
    a = abs(x)
    small = a < 2.0**23  # false for NaN and inf
    # Cody-Waite with pi/2 in three float64 parts (exact products inside fma).
    ac = k.sel(small, a, 0.0).to(k64)  # sanitized: no fptosi of huge/NaN values
    n = k64.intrinsic("rint", ac * (2 / math.pi))
    p1 = 1.5707963267948966
    p2 = 6.123233995736766e-17
    p3 = -1.4973849048591698e-33
    r_cw = k64.fma(n, -p1, ac)
    r_cw = k64.fma(n, -p2, r_cw)
    r_cw = k64.fma(n, -p3, r_cw)
    q_cw = _I(k64, k.b.fptosi(n.v, i64))
    # Payne-Hanek on the integer mantissa: 2 integer + 62 fraction bits of x * 2/pi mod 4.
    ix = a.bits()
    e = (ix >> 23) - 150
    e = k.sel(e < 0, k.i(0), e)
    e = k.sel(e > 104, k.i(104), e)
    m = ((ix & 0x7FFFFF) | 0x800000).cast(i64)
    words = [_table_load(k, j, e) for j in range(3)]
    top = ((m * words[0]) << 32) + m * words[1] + (m * words[2]).lshr(32)
    q_ph = (top + (1 << 61)).lshr(62)
    rem = top - (q_ph << 62)
    r_ph = _I(k64, rem.v).to_float() * (math.pi / 2 * 2.0**-62)
    r = k64.sel(small, r_cw, r_ph)
    q = k64.sel(small, q_cw, q_ph)
    if want_cos:
        q = q + 1  # cos(x) = sin(x + pi/2)
    z = r * r
    s = k64.fma(r * z, k64.poly(z, _SIN_TAYLOR[1:]), r)
    c = k64.poly(z, _COS_TAYLOR)
    val = k64.sel((q & 1).eq(1), c, s)
    val = k64.sel((q & 2).eq(2), -val, val)
    if not want_cos:
        val = k64.sel(x.signbit(), -val, val)  # sin is odd (also gives sin(-0.0) = -0.0)
    res = val.to(k)
    return k.sel(x.isnan() | x.isinf(), math.nan, res)


def _table_load(k, j, idx):
    name = f"mlc.two_over_pi.{j}"
    ty = ir.ArrayType(ir.IntType(32), 105)
    gv = k.m.globals.get(name)
    if gv is None:
        gv = ir.GlobalVariable(k.m, ty, name=name)
        gv.linkage = "internal"
        gv.global_constant = True
        gv.initializer = ir.Constant(ty, [row[j] for row in _two_over_pi_table()])
    i32 = ir.IntType(32)
    ptr = k.b.gep(gv, [ir.Constant(i32, 0), idx.v], inbounds=True)
    return _I(k, k.b.zext(k.b.load(ptr), ir.IntType(64)))


def _sin_f32(k, x):
    return _sincos_f32(k, x, False)


def _cos_f32(k, x):
    return _sincos_f32(k, x, True)


def _erf_f64_core(k, x):
    """erf to ~1e-10 absolute (enough for float32 results): Taylor on |x| < 1, fit on [1, 4]."""
    a = abs(x)
    small = x * k.poly(x * x, _ERF_SMALL)
    u = k.fma(a, 2.0 / 3.0, -5.0 / 3.0)
    large = k.intrinsic("copysign", k.sel(a < 4.0, k.poly(u, _ERF_LARGE), 1.0), x)
    res = k.sel(a < 1.0, small, large)
    return k.sel(x.isnan(), x, res)


def _pow_f32_core(k, x, y):
    """powf in float64: exp(y log|x|) then C99's special cases (np.power agrees)."""
    ax = abs(x)
    mag = _exp_core(k, y * _log_core(k, ax))
    yint = y.eq(k.intrinsic("trunc", y))  # true for +-inf too
    half = y * 0.5
    yodd = yint & half.ne(k.intrinsic("trunc", half))
    res = k.sel(x.signbit() & yodd, -mag, mag)
    res = k.sel((x < 0.0) & (x > -math.inf) & ~yint, math.nan, res)
    one = x.eq(1.0) | y.eq(0.0) | (ax.eq(1.0) & y.isinf())
    return k.sel(one, 1.0, res)


def _hypot_f32_core(k, x, y):
    """hypot in float64, where x*x + y*y cannot overflow; hypot(inf, nan) = inf as in C99."""
    res = k.intrinsic("sqrt", k.fma(x, x, y * y))
    return k.sel(x.isinf() | y.isinf(), math.inf, res)


def _log2_core(k, x):
    return _log_core(k, x) * _LOG2E


def _log10_core(k, x):
    return _log_core(k, x) * (1 / math.log(10.0))


def _exp2_f32_core(k, x):  # in float64: x * ln2 keeps ~2^-44 relative accuracy
    return _exp_core(k, x * _LN2)


_POLY = {
    # name: (float32 impl, float32 method, float64 impl or None)
    "exp": (_exp_core, "polynomial", _exp_core),
    "log": (_log_core, "polynomial", _log_core),
    "expm1": (_expm1_core, "polynomial", _expm1_core),
    "tanh": (_tanh_f32, "polynomial", _tanh_core),
    "logistic": (_logistic_core, "polynomial", _logistic_core),
    "log1p": (_via_f64(_log1p_core), "polynomial-f64", _log1p_core),
    "log2": (_via_f64(_log2_core), "polynomial-f64", _log2_core),
    "log10": (_via_f64(_log10_core), "polynomial-f64", _log10_core),
    "exp2": (_via_f64(_exp2_f32_core), "polynomial-f64", None),
    "sin": (_sin_f32, "polynomial-f64", None),
    "cos": (_cos_f32, "polynomial-f64", None),
    "erf": (_via_f64(_erf_f64_core), "polynomial-f64", None),
    "pow": (_via_f64(_pow_f32_core), "polynomial-f64", None),
    "hypot": (_via_f64(_hypot_f32_core), "polynomial-f64", None),
}

NAMES = tuple(
    sorted(
        set(_POLY)
        | set(_UNARY_LIBMVEC)
        | set(_BINARY_LIBMVEC)
        | set(_UNARY_INTRINSIC)
        | set(_BINARY_INTRINSIC)
    )
)
BINARY = frozenset(_BINARY_LIBMVEC) | frozenset(_BINARY_INTRINSIC)


def method(name, dtype):
    """How `emit(module, name, dtype)` implements the function (see the module docstring)."""
    if name in _UNARY_INTRINSIC or name in _BINARY_INTRINSIC:
        return "intrinsic"
    if name in _POLY:
        f32, m32, f64 = _POLY[name]
        if dtype == "float32":
            return m32
        if f64 is not None:
            return "polynomial"
    return "libmvec" if libmvec_path() else "libm"


# ---------------------------------------------------------------------------------------------
# libmvec: glibc's vector math, reached through the vector-function-abi-variant attribute.


def _libm_decl(module, name, nargs):
    """Declare double `name`(double...) as readnone, with libmvec's AVX2 and SSE variants."""
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    d = ir.DoubleType()
    fn = ir.Function(module, ir.FunctionType(d, [d] * nargs), name=name)
    for attr in ("nounwind", "readnone"):
        fn.attributes.add(attr)
    set.add(fn.attributes, "willreturn")
    if load_runtime():
        params = "v" * nargs
        variants = []
        for isa, width in (("b", 2), ("d", 4)):
            vname = f"_ZGV{isa}N{width}{params}_{name}"
            vty = ir.VectorType(d, width)
            vfn = module.globals.get(vname) or ir.Function(
                module, ir.FunctionType(vty, [vty] * nargs), name=vname
            )
            _compiler_used(module, vfn)
            variants.append(f"_ZGV_LLVM_N{width}{params}_{name}({vname})")
        # llvmlite validates attribute names; this string attribute is what the vectorizer reads.
        set.add(fn.attributes, f'"vector-function-abi-variant"="{",".join(variants)}"')
    return fn


def _compiler_used(module, fn):
    """Keep a vector variant's declaration alive (in llvm.compiler.used) until vectorization."""
    ptr = ir.PointerType(ir.IntType(8))
    gv = module.globals.get("llvm.compiler.used")
    if gv is None:
        gv = ir.GlobalVariable(module, ir.ArrayType(ptr, 0), name="llvm.compiler.used")
        gv.linkage = "appending"
        gv.section = "llvm.metadata"
        gv.initializer = ir.Constant(gv.value_type, [])
    used = [*gv.initializer.constant, fn.bitcast(ptr)]
    gv.value_type = ir.ArrayType(ptr, len(used))  # llvmlite fixes the type at creation: regrow
    gv.initializer = ir.Constant(gv.value_type, used)


def _libm_impl(name, nargs):
    def impl(k, *args):
        k64 = k.other("float64")
        fn = _libm_decl(k.m, name, nargs)
        out = _F(k64, k.b.call(fn, [a.to(k64).v for a in args]))
        return out.to(k)

    return impl


# ---------------------------------------------------------------------------------------------


def emit(module: ir.Module, name: str, dtype: str) -> ir.Function:
    """The function `mlc.<name>.<f32|f64>` in `module`, created on first use.

    >>> from llvmlite import ir
    >>> m = ir.Module()
    >>> [str(a.type) for a in emit(m, "pow", "float64").args]
    ['double', 'double']
    """
    if dtype not in _TYPES:
        raise TypeError(f"mathlib: no {name} for dtype {dtype!r} (float32 or float64)")
    if name not in NAMES:
        raise NotImplementedError(f"mathlib: no function {name!r}; supported: {', '.join(NAMES)}")
    fname = f"mlc.{name}.{_SUFFIX[dtype]}"
    if fname in module.globals:
        return module.globals[fname]
    nargs = 2 if name in BINARY else 1
    ft = _TYPES[dtype]
    fn = ir.Function(module, ir.FunctionType(ft, [ft] * nargs), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    k = _K(builder, module, dtype)
    args = [_F(k, a) for a in fn.args]
    builder.ret(_impl(name, dtype, nargs)(k, *args).v)
    return fn


def _impl(name, dtype, nargs):
    if name in _UNARY_INTRINSIC:
        return lambda k, x: k.intrinsic(_UNARY_INTRINSIC[name], x)
    if name in _BINARY_INTRINSIC:
        return lambda k, x, y: k.intrinsic(_BINARY_INTRINSIC[name], x, y)
    if name in _POLY:
        f32, _, f64 = _POLY[name]
        impl = f32 if dtype == "float32" else f64
        if impl is not None:
            return impl
    return _libm_impl(name, nargs)
