"""backends/cuda/emulator.py + emu/mlc_cuda_emu.h: CUDA C kernels run on the CPU.

The kernels below are written the way the CUDA code generator emits them (DESIGN.md section 5):
an NVRTC prelude guarded by ``#ifndef MLC_CUDA_EMU``, ``extern "C" __global__`` entry points
with ``long long`` sizes and ``__restrict__`` pointers, grid-stride loops, warp-per-row and
block-per-row reductions with ``__shfl_xor_sync`` and dynamic shared memory, a two-stage total
with scratch. Each runs in forward and reverse thread order and is compared with NumPy; the same
source is compiled for sm_90 by NVRTC (or nvcc) when one is installed.
"""

import math
import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest
from mlc.backends.cuda import emulator

pytestmark = pytest.mark.skipif(not emulator.available(), reason="no C++ compiler")

ORDERS = ["forward", "reverse"]
PTR = "ptr"
I64 = ("i64", "long long")

PRELUDE = r"""
#ifndef MLC_CUDA_EMU
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#endif
#define MLC_FULL_MASK 0xffffffffu
"""

# --- elementwise: one grid-stride kernel per dtype ------------------------------------------
ELEMENTWISE = {
    # dtype: (ctype, expression of a and b, NumPy reference)
    "bool": ("bool", "(a && !b) || (b && !a)", lambda a, b: a ^ b),
    "int32": (
        "int",
        "b == 0 ? 0 : (a / b - ((a % b != 0) && ((a < 0) != (b < 0))))",
        lambda a, b: np.where(b == 0, 0, a // np.where(b == 0, 1, b)),
    ),
    "int64": (
        "long long",
        "max(a, b) * 3 - min(a, b)",
        lambda a, b: np.maximum(a, b) * 3 - np.minimum(a, b),
    ),
    "float32": (
        "float",
        "expf(a) * b + (a != a || b != b ? NAN : fmaxf(a, b))",
        lambda a, b: np.exp(a) * b + np.maximum(a, b),
    ),
    "float64": (
        "double",
        "tanh(a) - pow(fabs(b), 0.5) / (1.0 + a * a)",
        lambda a, b: np.tanh(a) - np.abs(b) ** 0.5 / (1 + a * a),
    ),
}


def elementwise_source():
    out = []
    for dtype, (ct, expr, _) in ELEMENTWISE.items():
        out.append(rf"""
extern "C" __global__ void ew_{dtype}(const {ct}* __restrict__ b0, const {ct}* __restrict__ b1,
                                      {ct}* __restrict__ b2, long long s0) {{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < s0;
         i += (long long)gridDim.x * blockDim.x) {{
        const {ct} a = b0[i];
        const {ct} b = b1[i];
        b2[i] = {expr};
    }}
}}""")
    return "".join(out)


REDUCTIONS = r"""
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(MLC_FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ double warp_max(double v) {  // NaN-propagating, like np.max
    for (int o = 16; o > 0; o >>= 1) {
        double w = __shfl_xor_sync(MLC_FULL_MASK, v, o);
        v = (v != v || w != w) ? NAN : fmax(v, w);
    }
    return v;
}

// one warp per row, blockDim.y rows per block: s0 rows of s1 floats
extern "C" __global__ void row_sum_warp(const float* __restrict__ b0, float* __restrict__ b1,
                                        long long s0, long long s1) {
    const long long row = (long long)blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= s0) return;  // the whole warp leaves together
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < s1; j += 32) acc += b0[row * s1 + j];
    acc = warp_sum(acc);
    if (threadIdx.x == 0) b1[row] = acc;
}

extern "C" __global__ void row_max_warp(const double* __restrict__ b0, double* __restrict__ b1,
                                        long long s0, long long s1) {
    const long long row = (long long)blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= s0) return;
    double acc = -INFINITY;
    for (long long j = threadIdx.x; j < s1; j += 32) {
        double v = b0[row * s1 + j];
        acc = (acc != acc || v != v) ? NAN : fmax(acc, v);
    }
    acc = warp_max(acc);
    if (threadIdx.x == 0) b1[row] = acc;
}

// block-wide sum: warp shuffles, then one partial per warp in a 32-entry shared array
__device__ float block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // red may still be read by a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = threadIdx.x < nwarps ? red[threadIdx.x] : 0.0f;
    if (warp == 0) v = warp_sum(v);
    if (threadIdx.x == 0) red[0] = v;
    __syncthreads();
    return red[0];
}

__device__ float block_max(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(MLC_FULL_MASK, v, o));
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = threadIdx.x < nwarps ? red[threadIdx.x] : -INFINITY;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(MLC_FULL_MASK, v, o));
    if (threadIdx.x == 0) red[0] = v;
    __syncthreads();
    return red[0];
}

// one block per row (grid-stride over rows), partials in dynamic shared memory
extern "C" __global__ void row_sum_block(const float* __restrict__ b0, float* __restrict__ b1,
                                         long long s0, long long s1) {
    extern __shared__ __align__(16) unsigned char mlc_smem[];
    float* red = reinterpret_cast<float*>(mlc_smem);
    for (long long row = blockIdx.x; row < s0; row += gridDim.x) {
        float acc = 0.0f;
        for (long long j = threadIdx.x; j < s1; j += blockDim.x) acc += b0[row * s1 + j];
        acc = block_sum(acc, red);
        if (threadIdx.x == 0) b1[row] = acc;
    }
}

// softmax over rows: max, sum of exp, normalize -- three phases in one kernel
extern "C" __global__ void softmax_rows(const float* __restrict__ b0, float* __restrict__ b1,
                                        long long s0, long long s1) {
    extern __shared__ __align__(16) unsigned char mlc_smem[];
    float* red = reinterpret_cast<float*>(mlc_smem);
    for (long long row = blockIdx.x; row < s0; row += gridDim.x) {
        const float* x = b0 + row * s1;
        float m = -INFINITY;
        for (long long j = threadIdx.x; j < s1; j += blockDim.x) m = fmaxf(m, x[j]);
        m = block_max(m, red);
        float s = 0.0f;
        for (long long j = threadIdx.x; j < s1; j += blockDim.x) s += expf(x[j] - m);
        s = block_sum(s, red);
        const float inv = 1.0f / s;
        for (long long j = threadIdx.x; j < s1; j += blockDim.x) b1[row * s1 + j] = expf(x[j] - m) * inv;
    }
}

// total sum in two stages: per-block partials (double) in scratch, then one block adds them
__device__ double block_sum_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(MLC_FULL_MASK, v, o);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(MLC_FULL_MASK, v, o);
    return v;  // valid in thread 0
}

extern "C" __global__ void total_stage1(const float* __restrict__ b0, long long s0,
                                        unsigned char* __restrict__ scratch) {
    __shared__ double red[32];
    double acc = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < s0;
         i += (long long)gridDim.x * blockDim.x)
        acc += b0[i];
    acc = block_sum_d(acc, red);
    if (threadIdx.x == 0) reinterpret_cast<double*>(scratch)[blockIdx.x] = acc;
}

extern "C" __global__ void total_stage2(const unsigned char* __restrict__ scratch,
                                        float* __restrict__ b1, long long s0) {
    __shared__ double red[32];
    const double* part = reinterpret_cast<const double*>(scratch);
    double acc = 0.0;
    for (long long i = threadIdx.x; i < s0; i += blockDim.x) acc += part[i];
    acc = block_sum_d(acc, red);
    if (threadIdx.x == 0) b1[0] = (float)acc;
}
"""

RACY = r"""
// up-sweep sum into the last slot; the barrier after the first store is missing
extern "C" __global__ void reduce_sum_racy(const float* __restrict__ b0, float* __restrict__ b1) {
    __shared__ float sm[256];
    const unsigned t = threadIdx.x;
    sm[t] = b0[blockIdx.x * blockDim.x + t];
    /* __syncthreads() missing here */
    for (unsigned s = 1; s < blockDim.x; s <<= 1) {
        if ((t + 1) % (2 * s) == 0) sm[t] += sm[t - s];
        __syncthreads();
    }
    if (t == blockDim.x - 1) b1[blockIdx.x] = sm[t];
}

extern "C" __global__ void reduce_sum_fixed(const float* __restrict__ b0, float* __restrict__ b1) {
    __shared__ float sm[256];
    const unsigned t = threadIdx.x;
    sm[t] = b0[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned s = 1; s < blockDim.x; s <<= 1) {
        if ((t + 1) % (2 * s) == 0) sm[t] += sm[t - s];
        __syncthreads();
    }
    if (t == blockDim.x - 1) b1[blockIdx.x] = sm[t];
}

extern "C" __global__ void barrier_in_branch(float* __restrict__ b0) {
    if (threadIdx.x < 16) __syncthreads();
    b0[threadIdx.x] = 1.0f;
}

extern "C" __global__ void divergent_barriers(float* __restrict__ b0) {
    if (threadIdx.x < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    b0[threadIdx.x] = 1.0f;
}

extern "C" __global__ void stuck(float* __restrict__ b0) {
    if (threadIdx.x == 0) __syncwarp(0x3u);  // lane 1 is at the block barrier: never comes
    __syncthreads();
    b0[threadIdx.x] = 1.0f;
}

extern "C" __global__ void lane_exits_before_shuffle(float* __restrict__ b0) {
    if (threadIdx.x == 5) return;
    b0[threadIdx.x] = __shfl_xor_sync(MLC_FULL_MASK, (float)threadIdx.x, 1);
}

extern "C" __global__ void stale_shared(float* __restrict__ b0, float* __restrict__ b1) {
    __shared__ float sm[32];
    extern __shared__ __align__(16) unsigned char mlc_smem[];
    float* dyn = reinterpret_cast<float*>(mlc_smem);
    const unsigned i = blockIdx.x * 32 + threadIdx.x;
    b0[i] = sm[threadIdx.x];  // read before written: garbage on a GPU
    b1[i] = dyn[threadIdx.x];
    sm[threadIdx.x] = 1.0f;
    dyn[threadIdx.x] = 2.0f;
}

extern "C" __global__ void traps(float* __restrict__ b0, long long s0) {
    if (blockIdx.x == s0 && threadIdx.x == 3) __trap();
    b0[blockIdx.x] = 1.0f;
}
"""

WARP_OPS = r"""
// every warp operation, results per thread: s0 = width used by the _sync shuffles
extern "C" __global__ void warp_ops(long long* __restrict__ b0, double* __restrict__ b1,
                                    long long s0) {
    const unsigned t = threadIdx.x + blockDim.x * threadIdx.y;
    const int w = (int)s0;
    long long* o = b0 + 8 * t;
    o[0] = __shfl_sync(MLC_FULL_MASK, (int)t * 10, 3, w);
    o[1] = __shfl_up_sync(MLC_FULL_MASK, (long long)t * 100000000000LL, 2, w);
    o[2] = __shfl_down_sync(MLC_FULL_MASK, (unsigned)t, 3, w);
    o[3] = __ballot_sync(MLC_FULL_MASK, t % 3 == 0);
    o[4] = __any_sync(MLC_FULL_MASK, t == 7) + 2 * __all_sync(MLC_FULL_MASK, t < 1000);
    o[5] = __reduce_add_sync(MLC_FULL_MASK, (int)t);
    o[6] = __shfl_xor_sync(MLC_FULL_MASK, (int)t, 5, w);
    __syncwarp();
    o[7] = __syncthreads_count(t % 4 == 1);
    b1[t] = __shfl_xor_sync(MLC_FULL_MASK, 0.5 * t, 1);
}

// threads >= s1 leave early; the rest sum their indices with xor shuffles from offset s0 down
extern "C" __global__ void partial_warp(int* __restrict__ b0, long long s0, long long s1) {
    if (threadIdx.x >= s1) return;
    b0[32 + threadIdx.x] = __ballot_sync(MLC_FULL_MASK, 1);
    int v = threadIdx.x;
    for (int o = (int)s0; o > 0; o >>= 1) v += __shfl_xor_sync(MLC_FULL_MASK, v, o);
    b0[threadIdx.x] = v;
}

extern "C" __global__ void coords(int* __restrict__ b0) {
    const long long blk = blockIdx.x + gridDim.x * (blockIdx.y + (long long)gridDim.y * blockIdx.z);
    const long long tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int* o = b0 + 12 * (blk * blockDim.x * blockDim.y * blockDim.z + tid);
    o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
    o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
    o[6] = blockDim.x; o[7] = blockDim.y; o[8] = blockDim.z;
    o[9] = gridDim.x; o[10] = gridDim.y; o[11] = gridDim.z + warpSize;
}
"""

MISC = r"""
extern __shared__ __align__(16) unsigned char mlc_smem[];  // at file scope this time

// float4 loads, atomics, __ldg, integer min/max, bit tricks, __launch_bounds__
extern "C" __global__ void __launch_bounds__(128) misc(const float* __restrict__ b0,
                                                       float* __restrict__ b1,
                                                       long long* __restrict__ b2, long long s0) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < s0 / 4) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(b0) + i);
        reinterpret_cast<float4*>(b1)[i] = make_float4(v.w, v.z, v.y, v.x);
    }
    atomicAdd(reinterpret_cast<unsigned long long*>(b2), 1ULL);
    atomicMax(b2 + 1, (long long)i);
    if (i == 0) {
        b2[2] = max(-3, 2) + min(7LL, -9LL) * 10;
        b2[3] = __popc(0xF0F0u) + 100 * __clz(1) + 10000 * __ffs(8);
        b2[4] = umin(5u, 3u) + (long long)__float_as_uint(1.0f);
        float* f = reinterpret_cast<float*>(mlc_smem);
        f[0] = 2.5f;
        b2[5] = (long long)(f[0] * 2);
    }
}
"""

MATH_F = ["expf", "logf", "log1pf", "expm1f", "tanhf", "erff", "sinf", "cosf", "sqrtf", "fabsf",
          "floorf", "ceilf", "rintf", "truncf", "rsqrtf"]  # fmt: skip
NUMPY_F = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "tanh": np.tanh,
    "erf": np.vectorize(math.erf, otypes=[np.float64]), "sin": np.sin, "cos": np.cos,
    "sqrt": np.sqrt, "fabs": np.abs, "floor": np.floor, "ceil": np.ceil, "rint": np.rint,
    "trunc": np.trunc, "rsqrt": lambda x: 1 / np.sqrt(x),
}  # fmt: skip
BINARY = [
    ("powf({x}, 2.5f)", "pow({x}, 2.5)", lambda x: np.power(x, 2.5)),
    ("fmodf({x}, 3.0f)", "fmod({x}, 3.0)", lambda x: np.fmod(x, 3.0)),
    ("copysignf(1.0f, {x})", "copysign(1.0, {x})", lambda x: np.copysign(1.0, x)),
    ("(isnan({x}) ? 1.0f : 0.0f)", "(isnan({x}) ? 1.0 : 0.0)", lambda x: np.isnan(x) * 1.0),
    ("(isinf({x}) ? 1.0f : 0.0f)", "(isinf({x}) ? 1.0 : 0.0)", lambda x: np.isinf(x) * 1.0),
    ("fminf({x}, 1.0f)", "min({x}, 1.0)", lambda x: np.fmin(x, 1.0)),
    ("__int_as_float(__float_as_int({x}))", "__longlong_as_double(__double_as_longlong({x}))",
     lambda x: x),
    ("INFINITY", "-INFINITY", None),
]  # fmt: skip


def math_source():
    f_exprs = [f"{f}(x)" for f in MATH_F] + [b[0].format(x="x") for b in BINARY]
    d_exprs = [f"{f[:-1]}(x)" for f in MATH_F] + [b[1].format(x="x") for b in BINARY]
    out = []
    for ct, exprs in (("float", f_exprs), ("double", d_exprs)):
        body = "\n".join(f"        b1[{k} * s0 + i] = {e};" for k, e in enumerate(exprs))
        out.append(rf"""
extern "C" __global__ void math_{ct}(const {ct}* __restrict__ b0, {ct}* __restrict__ b1,
                                     long long s0) {{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < s0;
         i += (long long)gridDim.x * blockDim.x) {{
        const {ct} x = b0[i];
{body}
    }}
}}""")
    return "".join(out)


def F32(*_):
    return [(PTR, "float"), (PTR, "float"), I64, I64]


SOURCE = PRELUDE + elementwise_source() + REDUCTIONS + RACY + WARP_OPS + MISC + math_source()
KERNELS = {
    **{f"ew_{d}": [(PTR, f"const {ct}"), (PTR, f"const {ct}"), (PTR, ct), I64]
       for d, (ct, _, _) in ELEMENTWISE.items()},
    "row_sum_warp": F32(),
    "row_max_warp": [(PTR, "double"), (PTR, "double"), I64, I64],
    "row_sum_block": F32(),
    "softmax_rows": F32(),
    "total_stage1": [(PTR, "float"), I64, (PTR, "unsigned char")],
    "total_stage2": [(PTR, "unsigned char"), (PTR, "float"), I64],
    "reduce_sum_racy": [(PTR, "float"), (PTR, "float")],
    "reduce_sum_fixed": [(PTR, "float"), (PTR, "float")],
    "barrier_in_branch": [(PTR, "float")],
    "divergent_barriers": [(PTR, "float")],
    "stuck": [(PTR, "float")],
    "lane_exits_before_shuffle": [(PTR, "float")],
    "traps": [(PTR, "float"), I64],
    "stale_shared": [(PTR, "float"), (PTR, "float")],
    "warp_ops": [(PTR, "long long"), (PTR, "double"), I64],
    "coords": [(PTR, "int")],
    "partial_warp": [(PTR, "int"), I64, I64],
    "misc": [(PTR, "float"), (PTR, "float"), (PTR, "long long"), I64],
    "math_float": [(PTR, "float"), (PTR, "float"), I64],
    "math_double": [(PTR, "double"), (PTR, "double"), I64],
}  # fmt: skip


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    old = os.environ.get("MLC_CACHE_DIR")
    os.environ["MLC_CACHE_DIR"] = str(tmp_path_factory.mktemp("emu-cache"))
    try:
        return emulator.build(SOURCE, KERNELS)
    finally:
        if old is None:
            del os.environ["MLC_CACHE_DIR"]
        else:
            os.environ["MLC_CACHE_DIR"] = old


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    return tmp_path


def rng():
    return np.random.default_rng(0)


# --- which kernels run as fibers ----------------------------------------------------------


def test_fiber_detection_follows_calls(mod):
    assert not mod.fibers["ew_float32"] and not mod.fibers["math_double"]
    assert not mod.fibers["coords"] and not mod.fibers["traps"]
    # no shuffle in their own bodies: through warp_sum / block_sum / block_max
    assert mod.fibers["row_sum_warp"] and mod.fibers["row_sum_block"]
    assert mod.fibers["softmax_rows"] and mod.fibers["total_stage2"]
    assert mod.fibers["reduce_sum_racy"] and mod.fibers["warp_ops"]


def test_fiber_detection_is_conservative():
    macro = "#define SYNC() __syncthreads()\n__global__ void k() { SYNC(); }\n"
    assert emulator.fiber_kernels(macro, ["k"]) == {"k": True}
    plain = '/* __syncthreads() */ extern "C" __global__ void k(float* b) { b[0] = 1; }'
    assert emulator.fiber_kernels(plain, ["k", "missing"]) == {"k": False, "missing": True}


# --- elementwise ---------------------------------------------------------------------------


def ew_inputs(dtype, n):
    r = rng()
    if dtype == "bool":
        return r.random(n) < 0.5, r.random(n) < 0.5
    if dtype.startswith("int"):
        a = r.integers(-50, 50, n).astype(dtype)
        b = r.integers(-5, 5, n).astype(dtype)
        return a, b
    a = r.uniform(-3, 3, n).astype(dtype)
    b = r.uniform(-3, 3, n).astype(dtype)
    a[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return a, b


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", list(ELEMENTWISE))
def test_elementwise_grid_stride(mod, dtype, order):
    n = 1000
    a, b = ew_inputs(dtype, n)
    out = np.empty_like(a)
    # fewer threads than elements: the grid-stride loop covers the rest
    mod.launch(f"ew_{dtype}", (3,), (64,), 0, [a, b, out, n], order=order)
    with np.errstate(all="ignore"):
        want = ELEMENTWISE[dtype][2](a, b)
    tol = 1e-5 if dtype == "float32" else 1e-12  # float32: cancellation in exp(a) * b + a
    np.testing.assert_allclose(out, want.astype(dtype), tol, tol, equal_nan=True, strict=True)


def test_elementwise_many_blocks_and_empty(mod):
    n = 70000
    a, b = ew_inputs("float32", n)
    out = np.full_like(a, 7.0)
    mod.launch("ew_float32", 70000, 1, 0, [a, b, out, n])  # one thread per block
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(out, np.exp(a) * b + np.maximum(a, b), 1e-5, 1e-5)
    e = np.empty(0, np.float32)
    mod.launch("ew_float32", 1, 32, 0, [e, e, e, 0])


@pytest.mark.parametrize("order", ORDERS)
def test_thread_and_block_coordinates(mod, order):
    grid, block = (2, 3, 2), (4, 2, 3)
    nb, nt = 12, 24
    out = np.zeros((nb, nt, 12), np.int32)
    mod.launch("coords", grid, block, 0, [out], order=order)
    t = np.arange(nt)
    b = np.arange(nb)
    np.testing.assert_array_equal(out[..., 0], np.broadcast_to(t % 4, (nb, nt)))
    np.testing.assert_array_equal(out[..., 1], np.broadcast_to(t // 4 % 2, (nb, nt)))
    np.testing.assert_array_equal(out[..., 2], np.broadcast_to(t // 8, (nb, nt)))
    np.testing.assert_array_equal(out[..., 3], np.broadcast_to((b % 2)[:, None], (nb, nt)))
    np.testing.assert_array_equal(out[..., 4], np.broadcast_to((b // 2 % 3)[:, None], (nb, nt)))
    np.testing.assert_array_equal(out[..., 5], np.broadcast_to((b // 6)[:, None], (nb, nt)))
    assert (out[..., 6:9] == block).all() and (out[..., 9:11] == grid[:2]).all()
    assert (out[..., 11] == grid[2] + 32).all()


# --- reductions ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("rows,cols", [(37, 100), (8, 1), (5, 1024), (1, 0)])
def test_warp_per_row_sum(mod, rows, cols, order):
    x = rng().standard_normal((rows, cols)).astype(np.float32)
    out = np.full(rows, np.nan, np.float32)
    rows_per_block = 4
    grid = (rows + rows_per_block - 1) // rows_per_block
    mod.launch("row_sum_warp", grid, (32, rows_per_block), 0, [x, out, rows, cols], order=order)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order", ORDERS)
def test_warp_per_row_max_propagates_nan(mod, order):
    x = rng().standard_normal((10, 77))
    x[3, 50] = np.nan
    x[4, :] = -np.inf
    x[5, 76] = np.inf
    out = np.zeros(10)
    mod.launch("row_max_warp", 5, (32, 2), 0, [x, out, 10, 77], order=order)
    np.testing.assert_array_equal(out, x.max(axis=1))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("rows,cols,threads", [(6, 3000, 256), (3, 50, 1024), (4, 33, 96)])
def test_block_per_row_sum(mod, rows, cols, threads, order):
    x = rng().standard_normal((rows, cols)).astype(np.float32)
    out = np.zeros(rows, np.float32)
    # fewer blocks than rows: each block takes several rows through the shared array
    mod.launch("row_sum_block", 2, threads, 32 * 4, [x, out, rows, cols], order=order)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("order", ORDERS)
def test_softmax_three_phases(mod, order):
    x = rng().standard_normal((5, 700)).astype(np.float32) * 10
    x[2, 7] = np.inf  # its row becomes NaN, as NumPy's does
    out = np.zeros_like(x)
    mod.launch("softmax_rows", 3, 128, 128, [x, out, 5, 700], order=order)
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("order", ORDERS)
def test_two_stage_total_with_scratch(mod, order):
    n, blocks, threads = 100_003, 40, 256
    x = rng().standard_normal(n).astype(np.float32)
    scratch = np.zeros(blocks * 8, np.uint8)
    out = np.zeros(1, np.float32)
    mod.launch("total_stage1", blocks, threads, 0, [x, n, scratch], order=order)
    mod.launch("total_stage2", 1, 64, 0, [scratch, out, blocks], order=order)
    np.testing.assert_allclose(out[0], x.astype(np.float64).sum(), rtol=1e-6)


# --- warp operations ---------------------------------------------------------------------


@pytest.mark.parametrize("width", [32, 8])
def test_warp_operations(mod, width):
    block = (16, 4)  # 64 threads, two warps: lanes count through threadIdx.y
    n = 64
    out = np.zeros((n, 8), np.int64)
    dbl = np.zeros(n)
    mod.launch("warp_ops", 1, block, 0, [out, dbl, width])
    t = np.arange(n)
    lane, seg = t % 32, t - t % width
    np.testing.assert_array_equal(out[:, 0], (seg + 3 % width) * 10)
    np.testing.assert_array_equal(out[:, 1], np.where(lane % width >= 2, t - 2, t) * 10**11)
    np.testing.assert_array_equal(out[:, 2], np.where(lane % width + 3 < width, t + 3, t))
    ballot = [sum(1 << j for j in range(32) if (w * 32 + j) % 3 == 0) for w in (0, 1)]
    np.testing.assert_array_equal(out[:, 3], np.repeat(ballot, 32))
    np.testing.assert_array_equal(out[:, 4], np.repeat([1 + 2, 0 + 2], 32))
    np.testing.assert_array_equal(out[:, 5], np.repeat([sum(range(32)), sum(range(32, 64))], 32))
    xor = t ^ 5
    np.testing.assert_array_equal(out[:, 6], np.where(xor < seg + width, xor, t))
    np.testing.assert_array_equal(out[:, 7], np.full(n, (t % 4 == 1).sum()))
    np.testing.assert_array_equal(dbl, 0.5 * (t ^ 1))


@pytest.mark.parametrize("order", ORDERS)
def test_exited_and_missing_lanes_do_not_take_part(mod, order):
    # as in CUDA, a full mask names only the lanes that exist and have not exited
    for stay, offset in [(8, 4), (16, 8)]:
        out = np.zeros(64, np.int32)
        mod.launch("partial_warp", 1, 16, 0, [out, offset, stay], order=order)
        assert (out[:stay] == sum(range(stay))).all() and (out[stay:32] == 0).all()
        assert (out[32 : 32 + stay] == (1 << stay) - 1).all()
    # reading a lane that has exited or does not exist is undefined on a GPU: an error here
    out = np.zeros(64, np.int32)
    with pytest.raises(RuntimeError, match=r"reads lane \d+ .*has exited"):
        mod.launch("partial_warp", 1, 16, 0, [out, 8, 8], order=order)
    with pytest.raises(RuntimeError, match=r"reads lane \d+ .*does not exist"):
        mod.launch("partial_warp", 1, 16, 0, [out, 16, 16], order=order)


# --- bugs the emulator must expose --------------------------------------------------------


def test_missing_barrier_passes_forward_fails_reverse(mod):
    x = rng().standard_normal(4 * 256).astype(np.float32)
    want = x.reshape(4, 256).sum(axis=1)
    out = {}
    for order in ORDERS:
        for k in ("racy", "fixed"):
            out[k, order] = np.zeros(4, np.float32)
            mod.launch(f"reduce_sum_{k}", 4, 256, 0, [x, out[k, order]], order=order)
    for order in ORDERS:
        np.testing.assert_allclose(out["fixed", order], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["racy", "forward"], want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out["racy", "reverse"], want, rtol=1e-3, atol=1e-3)


def test_order_from_environment(mod, monkeypatch):
    x = rng().standard_normal(256).astype(np.float32)
    out = np.zeros(1, np.float32)
    monkeypatch.setenv("MLC_EMU_ORDER", "reverse")
    mod.launch("reduce_sum_racy", 1, 256, 0, [x, out])
    assert not np.isclose(out[0], x.sum(), rtol=1e-3)
    mod.launch("reduce_sum_racy", 1, 256, 0, [x, out], order="forward")  # explicit wins
    assert np.isclose(out[0], x.sum(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    "kernel,grid,message",
    [
        ("barrier_in_branch", 2, r"exited .*wait at __syncthreads|after \d+ thread\(s\) of its block exited"),
        ("divergent_barriers", 1, r"divergent barriers"),
        ("stuck", 1, r"deadlock: .*__syncwarp"),
        ("lane_exits_before_shuffle", 1, r"exited"),
    ],
)  # fmt: skip
def test_misuse_raises_instead_of_hanging(mod, kernel, grid, message, order):
    out = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError, match=rf"kernel {kernel}: .*{message}.* at block \(\d+,0,0\)"):
        mod.launch(kernel, grid, 32, 0, [out], order=order)
    # the emulator is usable after a failed launch
    x = np.ones(256, np.float32)
    res = np.zeros(1, np.float32)
    mod.launch("reduce_sum_fixed", 1, 256, 0, [x, res], order=order)
    assert res[0] == 256


def test_shared_memory_is_garbage_at_block_start(mod):
    # the previous block's (or launch's) values must not leak in: they could hide a missing write
    for _ in range(2):
        a, b = np.zeros(96, np.float32), np.zeros(96, np.float32)
        mod.launch("stale_shared", 3, 32, 128, [a, b])
        assert np.isnan(a).all() and np.isnan(b).all()


def test_trap_names_thread_and_block(mod):
    out = np.zeros(8, np.float32)
    with pytest.raises(
        RuntimeError, match=r"kernel traps: thread \(3,0,0\): __trap\(\).* at block \(5,0,0\)"
    ):
        mod.launch("traps", 8, 32, 0, [out, 5])
    mod.launch("traps", 8, 32, 0, [out, 99])
    assert (out == 1).all()


# --- argument checking ----------------------------------------------------------------------


def test_argument_types_are_checked(mod):
    a = np.ones(8, np.float32)
    n = a.size
    with pytest.raises(TypeError, match=r"argument 0 has dtype float64.*const float\*|float\*"):
        mod.launch("ew_float32", 1, 32, 0, [a.astype(np.float64), a, a, n])
    with pytest.raises(TypeError, match="C-contiguous"):
        mod.launch("ew_float32", 1, 32, 0, [np.ones(16, np.float32)[::2], a, a, n])
    with pytest.raises(TypeError, match="NumPy array"):
        mod.launch("ew_float32", 1, 32, 0, [[1.0] * 8, a, a, n])
    with pytest.raises(TypeError, match="long long"):
        mod.launch("ew_float32", 1, 32, 0, [a, a, a, 8.0])
    with pytest.raises(TypeError, match="long long"):
        mod.launch("ew_float32", 1, 32, 0, [a, a, a, True])
    with pytest.raises(TypeError, match="takes 4 arguments, got 3"):
        mod.launch("ew_float32", 1, 32, 0, [a, a, a])
    with pytest.raises(TypeError, match="dtype int64"):
        mod.launch(
            "ew_int32",
            1,
            32,
            0,
            [np.ones(8, np.int64), np.ones(8, np.int32), np.ones(8, np.int32), 8],
        )
    mod.launch("ew_float32", 1, 32, 0, [a, a, a, np.int64(n)])  # NumPy ints are fine


def test_launch_configuration_is_checked(mod):
    a = np.ones(8, np.float32)
    args = [a, a, a, 8]
    with pytest.raises(ValueError, match="1024"):
        mod.launch("ew_float32", 1, (64, 32), 0, args)
    with pytest.raises(ValueError, match="grid.y"):
        mod.launch("ew_float32", (1, 65536), 32, 0, args)
    with pytest.raises(ValueError, match="grid.x"):
        mod.launch("ew_float32", 2**31, 32, 0, args)
    with pytest.raises(ValueError, match="shared"):
        mod.launch("ew_float32", 1, 32, 10**6, args)
    with pytest.raises(ValueError, match="order"):
        mod.launch("ew_float32", 1, 32, 0, args, order="sideways")
    with pytest.raises(ValueError, match="no kernel"):
        mod.launch("nope", 1, 32, 0, args)


@pytest.mark.parametrize("order", ORDERS)
def test_vector_types_atomics_and_intrinsics(mod, order):
    x = np.arange(40, dtype=np.float32)
    y = np.zeros_like(x)
    ints = np.array([0, -1, 0, 0, 0, 0], np.int64)
    mod.launch("misc", 3, 16, 16, [x, y, ints, x.size], order=order)
    np.testing.assert_array_equal(y, x.reshape(-1, 4)[:, ::-1].ravel())
    assert ints.tolist() == [48, 47, 2 - 90, 8 + 3100 + 40000, 3 + 0x3F800000, 5]


# --- math: NaN, inf, signed zeros against NumPy -------------------------------------------


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-30, 3.7, 80.0, -80.0,
           1e10, -1e10, 2.5, 100.0, 7.0]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_math_functions_match_numpy(mod, dtype):
    x = np.array(SPECIAL + list(rng().uniform(-10, 10, 30)), dtype)
    n = x.size
    fns = [NUMPY_F[f[:-1]] for f in MATH_F] + [b[2] for b in BINARY]
    out = np.zeros((len(fns), n), dtype)
    name = "math_float" if dtype == "float32" else "math_double"
    mod.launch(name, 2, 16, 0, [x, out, n])
    rtol = 2e-6 if dtype == "float32" else 1e-13
    with np.errstate(all="ignore"):
        for k, f in enumerate(fns):
            if f is None:
                assert np.isinf(out[k]).all()
                continue
            want = f(x.astype(np.float64)).astype(dtype)
            np.testing.assert_allclose(out[k], want, rtol=rtol, atol=1e-37, equal_nan=True,
                                       err_msg=f"function {k}")  # fmt: skip
            # signs of zeros and infinities exactly as NumPy
            special = (want == 0) | np.isinf(want)
            np.testing.assert_array_equal(np.signbit(out[k][special]), np.signbit(want[special]))


# --- build: cache, errors, signature checks ------------------------------------------------


def unique_source():
    tag = uuid.uuid4().hex
    return PRELUDE + f"// {tag}\n" + elementwise_source(), {
        f"ew_{d}": [(PTR, ct), (PTR, ct), (PTR, ct), I64] for d, (ct, _, _) in ELEMENTWISE.items()
    }


def test_cache_second_build_compiles_nothing(cache):
    src, kernels = unique_source()
    emulator.reset_stats()
    m1 = emulator.build(src, kernels)
    assert emulator.STATS["compiled"] == 1
    m2 = emulator.build(src, kernels)
    assert m2 is m1 and emulator.STATS["compiled"] == 1 and emulator.STATS["memory_hits"] == 1
    assert list((cache / "cuda-emu").glob("*.so")) == [
        cache / "cuda-emu" / os.path.basename(m1.path)
    ]
    emulator._MEMORY.clear()  # as a fresh process would: the .so comes from disk
    m3 = emulator.build(src, kernels)
    assert emulator.STATS["compiled"] == 1 and emulator.STATS["disk_hits"] == 1
    a = np.arange(4.0, dtype=np.float32)
    out = np.zeros(4, np.float32)
    m3.launch("ew_float32", 1, 4, 0, [a, a, out, 4])
    np.testing.assert_allclose(out, np.exp(a) * a + a, rtol=1e-6)


def test_damaged_cache_entry_is_rebuilt(cache):
    src, kernels = unique_source()
    (cache / "cuda-emu").mkdir()
    (cache / "cuda-emu" / f"{emulator.entry_key(src, kernels)}.so").write_bytes(b"not an ELF")
    emulator.reset_stats()
    mod = emulator.build(src, kernels)
    assert emulator.STATS["disk_rejected"] == 1 and emulator.STATS["compiled"] == 1
    a = np.ones(3, np.float32)
    out = np.zeros(3, np.float32)
    mod.launch("ew_float32", 1, 3, 0, [a, a, out, 3])
    np.testing.assert_allclose(out, np.e + 1, rtol=1e-6)


def test_compile_error_shows_log_and_source_line(cache):
    src = (
        PRELUDE
        + 'extern "C" __global__ void bad(float* __restrict__ b0) {\n    b0[0] = undefined_name;\n}\n'
    )
    with pytest.raises(
        RuntimeError, match=r"(?s)undefined_name.*source lines.*>\s*\d+\s+b0\[0\] = undefined_name"
    ):
        emulator.build(src, {"bad": [(PTR, "float")]})


def test_declared_parameters_must_match_the_source(cache):
    src = PRELUDE + elementwise_source()
    wrong = {"ew_float32": [(PTR, "float"), (PTR, "double"), (PTR, "float"), I64]}
    with pytest.raises(RuntimeError, match="kernel ew_float32: parameter 1 is declared double"):
        emulator.build(src, wrong)
    with pytest.raises(RuntimeError, match="different number of parameters"):
        emulator.build(src, {"ew_float32": [(PTR, "float"), (PTR, "float"), (PTR, "float")]})
    with pytest.raises(ValueError, match="parameter 0"):
        emulator.build(src, {"ew_float32": [("f32", "float")]})


# --- the same source is valid CUDA --------------------------------------------------------


def nvrtc_compile():
    """A function compiling a source to an sm_90 cubin with NVRTC, or None if not installed."""
    try:
        from mlc.backends.cuda import compiler
    except ImportError:
        return None
    if not getattr(compiler, "available", lambda: False)():
        return None
    return lambda src: compiler.compile(src, 90, disk=False)


def test_same_source_compiles_with_nvrtc():
    compile_ = nvrtc_compile()
    if compile_ is None:
        pytest.skip("NVRTC is not installed (pip install nvidia-cuda-nvrtc)")
    cubin = compile_(SOURCE)
    assert len(cubin) > 1000


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_same_source_compiles_with_nvcc(tmp_path):
    cu = tmp_path / "kernels.cu"
    cu.write_text(SOURCE)
    run = subprocess.run(
        ["nvcc", "-cubin", "-arch=sm_90", "-o", str(tmp_path / "k.cubin"), str(cu)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "k.cubin").stat().st_size > 1000
