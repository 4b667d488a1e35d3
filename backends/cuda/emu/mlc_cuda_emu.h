// mlc_cuda_emu.h -- run the CUDA C that mlc generates on the CPU, compiled by g++.
//
// `emulator.py` compiles a generated source with
//     g++ -std=c++17 -O1 -shared -fPIC -DMLC_CUDA_EMU -include mlc_cuda_emu.h
// plus one `extern "C"` launch wrapper per kernel. The source's NVRTC prelude is guarded by
// `#ifndef MLC_CUDA_EMU`; this header provides everything that prelude and NVRTC's built-ins
// would: qualifiers, threadIdx & co, vector types, device math, bit casts, intrinsics, atomics,
// shared memory, barriers and warp shuffles.
//
// Execution model. One launch runs on the calling OS thread, block after block (in reverse
// order when asked). Kernels with no barrier or warp operation run each thread of a block to
// completion in a plain loop. The others run each thread as a fiber (64 KB stacks, one pool per
// OS thread, reused across blocks and launches; a hand-written stack switch on x86-64, ucontext
// elsewhere): `__syncthreads()` yields until every thread of the block has arrived; a warp
// operation (`__shfl_*_sync`, `__syncwarp`, `__ballot_sync`, ...) publishes the lane's value and
// yields until every live lane of its mask has arrived (as in CUDA, lanes that have exited or do
// not exist in a partial warp do not take part); the lane that completes the group computes
// every member's result, so no published value is overwritten before it is read. The scheduler
// visits ready fibers in thread order (reverse order with order=reverse), so a missing barrier
// gives a different answer in the two orders.
//
// Misuse is an error, not a hang or a crash: a thread exiting while others wait at a barrier,
// threads at different `__syncthreads()` calls, a shuffle reading an exited or missing lane (its
// value is undefined on a GPU), a deadlock (no fiber can run), `__trap()`, a failed `assert`.
// The launch returns 1 and the message names the thread and the block. Not caught: out-of-bounds
// accesses and integer division by zero (they crash or corrupt, as native code does).
//
// Shared memory: static `__shared__` variables are `thread_local` (blocks run one at a time on
// an OS thread, so one copy is one block's copy). `extern __shared__ __align__(16) unsigned char
// mlc_smem[];` redeclares the per-OS-thread buffer defined below. Before each block both are
// filled with 0xFF bytes (NaN for floats, -1 for ints): CUDA leaves shared memory uninitialized,
// and the previous block's values must not make a missing write look right.
#pragma once
#ifndef MLC_CUDA_EMU
#define MLC_CUDA_EMU 1
#endif

#include <cmath>
#include <math.h>  // libstdc++'s <math.h>: std:: float/double overloads (expf, isnan, ...) global
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <link.h>
#include <ucontext.h>
#include <unistd.h>

#include <limits>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers -------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ __inline__
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __shared__ thread_local  // per OS thread = per block: blocks run one at a time

// ---- vector types, dim3, thread coordinates ---------------------------------------------------
#define MLC_EMU_VEC2(T, N, A)                                                                     \
  struct __attribute__((aligned(A))) N##2 { T x, y; };                                          \
  inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }
#define MLC_EMU_VEC3(T, N)                                                                        \
  struct N##3 { T x, y, z; };                                                                     \
  inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }
#define MLC_EMU_VEC4(T, N, A)                                                                     \
  struct __attribute__((aligned(A))) N##4 { T x, y, z, w; };                                    \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
MLC_EMU_VEC2(float, float, 8)
MLC_EMU_VEC3(float, float)
MLC_EMU_VEC4(float, float, 16)
MLC_EMU_VEC2(double, double, 16)
MLC_EMU_VEC3(double, double)
MLC_EMU_VEC4(double, double, 16)  // CUDA 13 spells it double4_16a; 16 is what matters here
MLC_EMU_VEC2(int, int, 8)
MLC_EMU_VEC3(int, int)
MLC_EMU_VEC4(int, int, 16)
MLC_EMU_VEC2(unsigned int, uint, 8)
MLC_EMU_VEC3(unsigned int, uint)
MLC_EMU_VEC4(unsigned int, uint, 16)
MLC_EMU_VEC2(long long, longlong, 16)
MLC_EMU_VEC2(unsigned long long, ulonglong, 16)
MLC_EMU_VEC2(signed char, char, 2)
MLC_EMU_VEC4(signed char, char, 4)
MLC_EMU_VEC2(unsigned char, uchar, 2)
MLC_EMU_VEC4(unsigned char, uchar, 4)
MLC_EMU_VEC2(short, short, 4)
MLC_EMU_VEC4(short, short, 8)

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---- failures ---------------------------------------------------------------------------------
namespace mlc_emu {
struct Failure {};  // thrown from device code; caught by the fiber trampoline or the thread loop

// Per-OS-thread state of the emulator itself. Trivially constructible and destructible: no TLS
// guard variables, so poisoning the module's TLS block around these ranges is safe.
struct Status {
  char error[1024];
  bool failed;
  long long clock;
};
inline thread_local Status status;

inline void set_error(const char* fmt, ...) {
  if (status.failed) return;  // the first error is the one worth reading
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(status.error, sizeof status.error, fmt, ap);
  va_end(ap);
  status.failed = true;
}

template <class... A>
[[noreturn]] inline void fail(const char* fmt, A... a) {
  set_error(fmt, a...);
  throw Failure{};
}

[[noreturn]] inline void fail_assert(const char* cond, int line) {
  fail("thread (%u,%u,%u): assertion `%s` failed (line %d)", threadIdx.x, threadIdx.y,
       threadIdx.z, cond, line);
}
}  // namespace mlc_emu

#undef assert
#define assert(c) ((c) ? (void)0 : ::mlc_emu::fail_assert(#c, __LINE__))
#define __trap()                                                                                  \
  ::mlc_emu::fail("thread (%u,%u,%u): __trap() (line %d)", threadIdx.x, threadIdx.y, threadIdx.z, \
                  __LINE__)
#define __brkpt() __trap()

// ---- bit casts and conversions ----------------------------------------------------------------
namespace mlc_emu {
template <class To, class From>
inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  To r;
  memcpy(&r, &v, sizeof r);
  return r;
}
}  // namespace mlc_emu

inline int __float_as_int(float x) { return mlc_emu::bit_cast<int>(x); }
inline unsigned int __float_as_uint(float x) { return mlc_emu::bit_cast<unsigned int>(x); }
inline float __int_as_float(int x) { return mlc_emu::bit_cast<float>(x); }
inline float __uint_as_float(unsigned int x) { return mlc_emu::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return mlc_emu::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return mlc_emu::bit_cast<double>(x); }
inline int __double2hiint(double x) { return (int)(__double_as_longlong(x) >> 32); }
inline int __double2loint(double x) { return (int)__double_as_longlong(x); }
inline double __hiloint2double(int hi, int lo) {
  return __longlong_as_double((long long)(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo));
}
// Conversions: the GPU saturates out-of-range values and sends NaN to 0 (cvt.rzi/rni).
namespace mlc_emu {
template <class I, class F>
inline I to_int_sat(F x) {
  if (x != x) return 0;
  if (x <= (F)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
  if (x >= (F)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
  return (I)x;
}
}  // namespace mlc_emu
inline int __float2int_rz(float x) { return mlc_emu::to_int_sat<int>(truncf(x)); }
inline int __float2int_rn(float x) { return mlc_emu::to_int_sat<int>(rintf(x)); }
inline int __float2int_rd(float x) { return mlc_emu::to_int_sat<int>(floorf(x)); }
inline int __float2int_ru(float x) { return mlc_emu::to_int_sat<int>(ceilf(x)); }
inline long long __float2ll_rz(float x) { return mlc_emu::to_int_sat<long long>(truncf(x)); }
inline long long __float2ll_rn(float x) { return mlc_emu::to_int_sat<long long>(rintf(x)); }
inline int __double2int_rz(double x) { return mlc_emu::to_int_sat<int>(trunc(x)); }
inline int __double2int_rn(double x) { return mlc_emu::to_int_sat<int>(rint(x)); }
inline long long __double2ll_rz(double x) { return mlc_emu::to_int_sat<long long>(trunc(x)); }
inline long long __double2ll_rn(double x) { return mlc_emu::to_int_sat<long long>(rint(x)); }
inline float __int2float_rn(int x) { return (float)x; }
inline float __ll2float_rn(long long x) { return (float)x; }
inline double __int2double_rn(int x) { return (double)x; }
inline double __ll2double_rn(long long x) { return (double)x; }
inline float __double2float_rn(double x) { return (float)x; }

// ---- math (NVRTC built-ins that libm lacks, and the fast intrinsics as their exact versions) --
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline double rcbrt(double x) { return 1.0 / cbrt(x); }
inline float sinpif(float x) { return sinf(3.14159265358979323846f * x); }
inline double sinpi(double x) { return sin(3.14159265358979323846 * x); }
inline float cospif(float x) { return cosf(3.14159265358979323846f * x); }
inline double cospi(double x) { return cos(3.14159265358979323846 * x); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }
inline float fdividef(float a, float b) { return a / b; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double x) { return 1.0 / x; }
inline double __dsqrt_rn(double x) { return sqrt(x); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }

// min/max: exactly CUDA's overload set (crt/math_functions.hpp), so a call that is ambiguous
// for NVRTC is ambiguous here too. Floating min/max are fminf/fmaxf: they ignore NaN.
#define MLC_EMU_MINMAX(R, A, B)                                                                   \
  inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }                                    \
  inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
MLC_EMU_MINMAX(int, int, int)
MLC_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
MLC_EMU_MINMAX(unsigned int, int, unsigned int)
MLC_EMU_MINMAX(unsigned int, unsigned int, int)
MLC_EMU_MINMAX(long, long, long)
MLC_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
MLC_EMU_MINMAX(unsigned long, long, unsigned long)
MLC_EMU_MINMAX(unsigned long, unsigned long, long)
MLC_EMU_MINMAX(long long, long long, long long)
MLC_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
MLC_EMU_MINMAX(unsigned long long, long long, unsigned long long)
MLC_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef MLC_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin((double)a, b); }
inline double max(float a, double b) { return fmax((double)a, b); }
inline double min(double a, float b) { return fmin(a, (double)b); }
inline double max(double a, float b) { return fmax(a, (double)b); }
inline unsigned int umin(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int umax(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long llmin(long long a, long long b) { return a < b ? a : b; }
inline long long llmax(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

// ---- integer intrinsics -----------------------------------------------------------------------
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned long long __brevll(unsigned long long x) {
  return ((unsigned long long)__brev((unsigned)x) << 32) | __brev((unsigned)(x >> 32));
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a * b) >> 32);
}
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int)((a << 8) >> 8) * (int)((b << 8) >> 8); }
inline unsigned int __umul24(unsigned int a, unsigned int b) {
  return (a & 0xffffffu) * (b & 0xffffffu);
}
inline int __hadd(int a, int b) { return (int)(((long long)a + b) >> 1); }
inline int __rhadd(int a, int b) { return (int)(((long long)a + b + 1) >> 1); }
inline unsigned int __uhadd(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a + b) >> 1);
}
inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int s) {
  unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned int)((v << (s & 31)) >> 32);
}
inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int s) {
  unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned int)(v >> (s & 31));
}
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
  unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned int r = 0;
  for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}

// ---- memory: loads/stores with cache hints, fences, atomics -----------------------------------
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
inline void __nanosleep(unsigned int) {}
inline long long clock64() { return ++mlc_emu::status.clock; }

// A launch runs on one OS thread and fibers switch only at barriers and warp operations, so an
// atomic read-modify-write is a plain one. The value is not deduced (CUDA converts it).
namespace mlc_emu {
template <class T> struct same { using type = T; };
}
template <class T> inline T atomicAdd(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = o + v; return o;
}
template <class T> inline T atomicSub(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = o - v; return o;
}
template <class T> inline T atomicExch(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = v; return o;
}
template <class T> inline T atomicMin(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = v < o ? v : o; return o;
}
template <class T> inline T atomicMax(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = v > o ? v : o; return o;
}
template <class T> inline T atomicAnd(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = o & v; return o;
}
template <class T> inline T atomicOr(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = o | v; return o;
}
template <class T> inline T atomicXor(T* p, typename mlc_emu::same<T>::type v) {
  T o = *p; *p = o ^ v; return o;
}
template <class T>
inline T atomicCAS(T* p, typename mlc_emu::same<T>::type cmp, typename mlc_emu::same<T>::type v) {
  T o = *p; if (o == cmp) *p = v; return o;
}
inline unsigned int atomicInc(unsigned int* p, unsigned int v) {
  unsigned int o = *p; *p = o >= v ? 0 : o + 1; return o;
}
inline unsigned int atomicDec(unsigned int* p, unsigned int v) {
  unsigned int o = *p; *p = (o == 0 || o > v) ? v : o - 1; return o;
}

// ---- dynamic shared memory ----------------------------------------------------------------------
// The kernel's `extern __shared__ __align__(16) unsigned char mlc_smem[];` (with __shared__ =
// thread_local) redeclares this array; CUDA's per-block limit on sm_90 is 227 KB.
#define MLC_EMU_SMEM_CAPACITY 232448
thread_local __attribute__((aligned(16))) unsigned char mlc_smem[MLC_EMU_SMEM_CAPACITY];

// ---- the scheduler: blocks, threads, fibers ----------------------------------------------------
namespace mlc_emu {
enum State : unsigned char { READY, AT_BARRIER, AT_WARP, DONE };
enum WarpOp : unsigned char {
  W_SYNC, W_IDX, W_UP, W_DOWN, W_XOR, W_BALLOT, W_ANY, W_ALL, W_ADD, W_MIN, W_MAX, W_UMIN, W_UMAX,
  W_AND, W_OR, W_XOR_REDUCE
};
inline const char* op_name(unsigned char k) {
  static const char* names[] = {"__syncwarp",     "__shfl_sync",    "__shfl_up_sync",
                                "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync",
                                "__any_sync",     "__all_sync",     "__reduce_add_sync",
                                "__reduce_min_sync", "__reduce_max_sync", "__reduce_min_sync",
                                "__reduce_max_sync", "__reduce_and_sync", "__reduce_or_sync",
                                "__reduce_xor_sync"};
  return names[k];
}

constexpr size_t STACK_BYTES = 64 * 1024;

// Context switches. swapcontext makes a system call (the signal mask) on every switch, which
// dominates fiber kernels; on x86-64 a switch saves the callee-saved registers and swaps stack
// pointers instead. Elsewhere (or with -DMLC_EMU_UCONTEXT) ucontext is used.
#if defined(__x86_64__) && !defined(MLC_EMU_UCONTEXT)
extern "C" __attribute__((visibility("hidden"))) void mlc_emu_switch(void** save, void* load);
asm(R"(
  .text
  .p2align 4
  .globl mlc_emu_switch
  .hidden mlc_emu_switch
  .type mlc_emu_switch, @function
mlc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size mlc_emu_switch, .-mlc_emu_switch
)");
struct Context {
  void* sp;
};
inline void switch_context(Context& save, Context& load) { mlc_emu_switch(&save.sp, load.sp); }
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  // [6 registers][return address = entry][fake return address of entry]; at entry, as after a
  // call, rsp + 8 is 16-byte aligned.
  void** top = (void**)(((uintptr_t)(stack + size)) & ~(uintptr_t)15);
  top[-1] = nullptr;
  top[-2] = (void*)entry;
  for (int i = 3; i <= 8; ++i) top[-i] = nullptr;
  c.sp = top - 8;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context& save, Context& load) { swapcontext(&save.uc, &load.uc); }
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
  Context ctx;
  char* stack = nullptr;  // STACK_BYTES usable, above one PROT_NONE guard page
  uint3 tid;
  unsigned int linear;
  unsigned char state;
  int line;  // of the barrier or warp operation it waits at
  int bar_result;
  unsigned char wop;
  unsigned int wmask;
  int wparam, wwidth;
  unsigned long long wvalue, wresult;
};

// Stacks outlive launches: mapping 1024 stacks per launch would cost more than most kernels.
// They are never unmapped (a trivially destructible pool: see Status).
struct Pool {
  Fiber* fibers;
  unsigned int n;
  size_t page;
  bool reserve(unsigned int want) {
    if (want <= n) return true;
    if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
    Fiber* grown = (Fiber*)realloc((void*)fibers, sizeof(Fiber) * want);
    if (!grown) return false;
    fibers = grown;
    for (; n < want; ++n) {
      void* m = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED) return false;
      mprotect(m, page, PROT_NONE);  // an overflowing fiber faults instead of corrupting memory
      new (&fibers[n]) Fiber();
      fibers[n].stack = (char*)m + page;
    }
    return true;
  }
};

struct Launch {
  void (*body)(void*);
  void* arg;
  bool fiber_mode;
  Fiber* fibers;
  Fiber* cur;
  unsigned int nthr;
  unsigned int arrived, done;  // at the block barrier; exited
  int bar_line, bar_count;
  Context sched;
};

struct Sched {
  Pool pool;
  Launch* current;
  unsigned char* tls;  // this module's TLS block in this OS thread, and its size
  size_t tls_size;
  bool tls_known;
};
inline thread_local Sched sched;

inline void yield() { switch_context(sched.current->cur->ctx, sched.current->sched); }

inline Launch* fiber_launch(const char* what, int line) {
  Launch* l = sched.current;
  if (!l || !l->fiber_mode)
    fail("%s (line %d) in a kernel run without fibers: the emulator found no barrier or warp "
         "operation in its source text (a macro or function pointer hides it?)",
         what, line);
  return l;
}

inline int barrier(int line, int pred) {
  Launch* l = fiber_launch("__syncthreads()", line);
  Fiber* f = l->cur;
  if (l->done)
    fail("thread (%u,%u,%u) reached __syncthreads() (line %d) after %u thread(s) of its block "
         "exited: they can never arrive (a barrier inside a branch not every thread takes?)",
         f->tid.x, f->tid.y, f->tid.z, line, l->done);
  if (l->arrived == 0) {
    l->bar_line = line;
    l->bar_count = 0;
  } else if (l->bar_line != line) {
    fail("thread (%u,%u,%u) waits at __syncthreads() on line %d while %u thread(s) wait at the "
         "one on line %d: divergent barriers",
         f->tid.x, f->tid.y, f->tid.z, line, l->arrived, l->bar_line);
  }
  f->state = AT_BARRIER;
  f->line = line;
  l->bar_count += pred != 0;
  if (++l->arrived == l->nthr) {  // the last one releases the block
    for (unsigned int i = 0; i < l->nthr; ++i) {
      l->fibers[i].state = READY;
      l->fibers[i].bar_result = l->bar_count;
    }
    l->arrived = 0;
  }
  yield();
  return f->bar_result;
}

// Lanes of the warp starting at `base` that exist in this block and have not exited. Lanes of a
// mask outside this set do not take part in a warp operation (CUDA: "all non-exited threads
// named in mask"); reading a value from one is an error, as its value is undefined on a GPU.
inline unsigned int live_lanes(Launch* l, unsigned int base) {
  unsigned int m = 0;
  for (unsigned int j = 0; j < 32 && base + j < l->nthr; ++j)
    if (l->fibers[base + j].state != DONE) m |= 1u << j;
  return m;
}

// If every live lane of `mask` waits at a warp operation with this mask, computes each one's
// result and makes them ready. The lane that completes the group computes every member's
// result, so no published value is overwritten before it is read.
inline void try_complete(Launch* l, unsigned int base, unsigned int mask) {
  Fiber* w = l->fibers + base;
  const unsigned int group = mask & live_lanes(l, base);
  for (unsigned int j = 0; j < 32; ++j)
    if ((group >> j & 1) && (w[j].state != AT_WARP || w[j].wmask != mask)) return;
  if (!group) return;
  const Fiber& first = w[__builtin_ctz(group)];
  const unsigned char op = first.wop;
  unsigned long long votes = 0, acc = 0;
  long long sacc = 0;
  bool start = true;
  for (unsigned int j = 0; j < 32; ++j) {
    if (!(group >> j & 1)) continue;
    Fiber& g = w[j];
    if (g.wop != op)
      fail("lanes of warp %u with mask 0x%08x meet at different warp operations: %s (line %d) "
           "and %s (line %d)",
           base / 32, mask, op_name(first.wop), first.line, op_name(g.wop), g.line);
    const unsigned long long v = g.wvalue;
    const int sv = (int)(unsigned int)v;
    votes |= (unsigned long long)(v != 0) << j;
    if (op == W_ADD) acc += v;
    else if (op == W_AND) acc = start ? v : (acc & v);
    else if (op == W_OR) acc |= v;
    else if (op == W_XOR_REDUCE) acc ^= v;
    else if (op == W_MIN) sacc = start ? sv : (sacc < sv ? sacc : sv);
    else if (op == W_MAX) sacc = start ? sv : (sacc > sv ? sacc : sv);
    else if (op == W_UMIN) acc = start ? v : (acc < v ? acc : v);
    else if (op == W_UMAX) acc = start ? v : (acc > v ? acc : v);
    start = false;
  }
  for (unsigned int j = 0; j < 32; ++j) {
    if (!(group >> j & 1)) continue;
    Fiber& g = w[j];
    g.state = READY;
    const unsigned int width = (unsigned int)g.wwidth, seg = j & ~(width - 1);
    const unsigned int p = (unsigned int)g.wparam;
    unsigned int src = j;
    switch (op) {
      case W_SYNC: g.wresult = 0; continue;
      case W_BALLOT: g.wresult = votes; continue;
      case W_ANY: g.wresult = votes != 0; continue;
      case W_ALL: g.wresult = votes == group; continue;
      case W_MIN: case W_MAX: g.wresult = (unsigned long long)sacc; continue;
      case W_IDX: src = seg + (p & (width - 1)); break;
      case W_UP: src = (j - seg) >= p ? j - p : j; break;
      case W_DOWN: src = (j - seg) + p < width ? j + p : j; break;
      case W_XOR: src = (j ^ p) < seg + width ? (j ^ p) : j; break;
      default: g.wresult = acc; continue;  // the other reductions
    }
    if (!(group >> src & 1))
      fail("thread (%u,%u,%u) (lane %u of warp %u) reads lane %u in %s (line %d, mask 0x%08x), "
           "but lane %u %s: the value is undefined on a GPU",
           g.tid.x, g.tid.y, g.tid.z, j, base / 32, src, op_name(op), g.line, mask, src,
           !(mask >> src & 1)                 ? "is not in the mask"
           : base + src >= l->nthr            ? "does not exist (partial warp)"
                                              : "has exited");
    g.wresult = w[src].wvalue;
  }
}

inline unsigned long long warp_op(int line, unsigned char op, unsigned int mask,
                                  unsigned long long value, int param, int width) {
  Launch* l = fiber_launch(op_name(op), line);
  Fiber* f = l->cur;
  const unsigned int lane = f->linear & 31, base = f->linear & ~31u;
  if (!(mask >> lane & 1))
    fail("thread (%u,%u,%u) (lane %u) calls %s (line %d) with mask 0x%08x, which excludes it",
         f->tid.x, f->tid.y, f->tid.z, lane, op_name(op), line, mask);
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail("%s (line %d): width %d is not a power of two from 1 to 32", op_name(op), line, width);
  f->state = AT_WARP;
  f->line = line;
  f->wop = op;
  f->wmask = mask;
  f->wparam = param;
  f->wwidth = width;
  f->wvalue = value;
  try_complete(l, base, mask);
  yield();
  return f->wresult;
}

// Called when a fiber's kernel body returns.
inline void thread_exit(Launch* l, Fiber* f) {
  f->state = DONE;
  ++l->done;
  if (l->arrived)
    fail("thread (%u,%u,%u) exited while %u thread(s) of its block wait at __syncthreads() "
         "(line %d): a barrier inside a branch or loop that not every thread takes?",
         f->tid.x, f->tid.y, f->tid.z, l->arrived, l->bar_line);
  // lanes waiting for this one at a warp operation now wait for one lane fewer
  const unsigned int lane = f->linear & 31, base = f->linear & ~31u;
  for (unsigned int j = 0; j < 32 && base + j < l->nthr; ++j) {
    Fiber& g = l->fibers[base + j];
    if (g.state == AT_WARP && (g.wmask >> lane & 1)) try_complete(l, base, g.wmask);
  }
}

inline void trampoline() {
  for (;;) {  // one iteration per block: a finished fiber is resumed to run the next block
    Launch* l = sched.current;
    Fiber* f = l->cur;
    try {
      l->body(l->arg);
      thread_exit(l, f);
    } catch (Failure&) {
      f->state = DONE;
    } catch (...) {
      set_error("thread (%u,%u,%u): a C++ exception escaped the kernel", f->tid.x, f->tid.y,
                f->tid.z);
      f->state = DONE;
    }
    switch_context(f->ctx, l->sched);
  }
}

inline void describe_deadlock(Launch* l) {
  unsigned int at_bar = 0, at_warp = 0;
  Fiber* first_warp = nullptr;
  for (unsigned int i = 0; i < l->nthr; ++i) {
    Fiber& f = l->fibers[i];
    if (f.state == AT_BARRIER) ++at_bar;
    if (f.state == AT_WARP && !at_warp++) first_warp = &f;
  }
  if (first_warp)
    set_error("deadlock: %u thread(s) wait at __syncthreads() (line %d), %u at warp operations "
              "(first: thread (%u,%u,%u) at %s, line %d, mask 0x%08x), %u exited",
              at_bar, l->bar_line, at_warp, first_warp->tid.x, first_warp->tid.y,
              first_warp->tid.z, op_name(first_warp->wop), first_warp->line, first_warp->wmask,
              l->done);
  else
    set_error("deadlock: %u thread(s) wait at __syncthreads() (line %d), %u exited", at_bar,
              l->bar_line, l->done);
}

// CUDA leaves shared memory uninitialized, and a thread_local __shared__ array still holds the
// previous block's values: a kernel that reads before it writes could pass by luck. So before
// each block, every byte of this module's TLS block (the static __shared__ variables) is set to
// 0xFF -- NaN for floats, -1 for ints -- except the emulator's own state, and the first
// `smem_bytes` of the dynamic buffer.
inline int find_tls(struct dl_phdr_info* info, size_t, void* out) {
  const uintptr_t self = (uintptr_t)(void*)&find_tls;
  bool mine = false;
  size_t tls_size = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && lo <= self && self < lo + ph.p_memsz) mine = true;
    if (ph.p_type == PT_TLS) tls_size = ph.p_memsz;
  }
  if (!mine) return 0;
  Sched* s = (Sched*)out;
  s->tls = (unsigned char*)info->dlpi_tls_data;
  s->tls_size = s->tls ? tls_size : 0;
  return 1;
}

inline void poison_range(unsigned char* lo, unsigned char* hi, unsigned char* const* skip,
                         int nskip) {
  // memset [lo, hi) minus the [skip[2k], skip[2k+1]) ranges, given sorted by start
  for (int k = 0; k < nskip && lo < hi; ++k) {
    unsigned char* a = skip[2 * k] < hi ? skip[2 * k] : hi;
    if (a > lo) memset(lo, 0xff, (size_t)(a - lo));
    if (skip[2 * k + 1] > lo) lo = skip[2 * k + 1];
  }
  if (lo < hi) memset(lo, 0xff, (size_t)(hi - lo));
}

inline void poison_shared(unsigned long long smem_bytes) {
  memset(mlc_smem, 0xff, smem_bytes);
  if (!sched.tls_known) {  // mlc_smem touched above: the TLS block exists in this thread
    sched.tls_known = true;
    Sched found{};
    dl_iterate_phdr(find_tls, &found);
    sched.tls = found.tls;
    sched.tls_size = found.tls_size;
  }
  if (!sched.tls) return;
  unsigned char* skip[8] = {(unsigned char*)&status, (unsigned char*)(&status + 1),
                            (unsigned char*)&sched,  (unsigned char*)(&sched + 1),
                            mlc_smem,                mlc_smem + MLC_EMU_SMEM_CAPACITY,
                            (unsigned char*)&threadIdx, (unsigned char*)(&threadIdx + 1)};
  for (int i = 0; i < 4; ++i)  // sort the four ranges by start (insertion sort)
    for (int j = i; j > 0 && skip[2 * j] < skip[2 * j - 2]; --j) {
      std::swap(skip[2 * j], skip[2 * j - 2]);
      std::swap(skip[2 * j + 1], skip[2 * j - 1]);
    }
  poison_range(sched.tls, sched.tls + sched.tls_size, skip, 4);
}

inline bool run_block_fibers(Launch* l, bool reverse) {
  for (unsigned int i = 0; i < l->nthr; ++i) l->fibers[i].state = READY;
  l->arrived = l->done = 0;
  for (;;) {
    bool ran = false;
    for (unsigned int k = 0; k < l->nthr; ++k) {
      Fiber& f = l->fibers[reverse ? l->nthr - 1 - k : k];
      if (f.state != READY) continue;
      ran = true;
      threadIdx = f.tid;
      l->cur = &f;
      switch_context(l->sched, f.ctx);
      if (status.failed) return false;
    }
    if (l->done == l->nthr) return true;
    if (!ran) {
      describe_deadlock(l);
      return false;
    }
  }
}

inline bool run_block_loop(Launch* l, bool reverse) {
  const dim3 b = blockDim;
  try {
    for (unsigned int k = 0; k < l->nthr; ++k) {
      unsigned int t = reverse ? l->nthr - 1 - k : k;
      threadIdx = uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
      l->body(l->arg);
    }
  } catch (Failure&) {
    return false;
  } catch (...) {
    set_error("thread (%u,%u,%u): a C++ exception escaped the kernel", threadIdx.x, threadIdx.y,
              threadIdx.z);
    return false;
  }
  return true;
}

// dims = grid x, y, z, block x, y, z. Returns 0, or 1 with the message in `err`.
inline int launch(const long long* dims, unsigned long long smem_bytes, int reverse,
                  bool fiber_mode, void (*body)(void*), void* arg, char* err, size_t errlen) {
  status.failed = false;
  status.error[0] = 0;
  const long long gx = dims[0], gy = dims[1], gz = dims[2];
  const long long bx = dims[3], by = dims[4], bz = dims[5];
  if (gx < 1 || gy < 1 || gz < 1 || gx > 2147483647LL || gy > 65535 || gz > 65535 || bx < 1 ||
      by < 1 || bz < 1 || bx > 1024 || by > 1024 || bz > 64 || bx * by * bz > 1024 ||
      smem_bytes > MLC_EMU_SMEM_CAPACITY) {
    snprintf(err, errlen, "invalid launch configuration: grid (%lld,%lld,%lld), block "
             "(%lld,%lld,%lld), %llu bytes of dynamic shared memory",
             gx, gy, gz, bx, by, bz, smem_bytes);
    return 1;
  }
  Launch l{};
  l.body = body;
  l.arg = arg;
  l.fiber_mode = fiber_mode;
  l.nthr = (unsigned int)(bx * by * bz);
  gridDim = dim3((unsigned)gx, (unsigned)gy, (unsigned)gz);
  blockDim = dim3((unsigned)bx, (unsigned)by, (unsigned)bz);
  if (fiber_mode) {
    if (!sched.pool.reserve(l.nthr)) {
      snprintf(err, errlen, "cannot allocate %u fiber stacks", l.nthr);
      return 1;
    }
    l.fibers = sched.pool.fibers;
    for (unsigned int t = 0; t < l.nthr; ++t) {
      Fiber& f = l.fibers[t];
      f.linear = t;
      f.tid = uint3{t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
      make_context(f.ctx, f.stack, STACK_BYTES, trampoline);
    }
  }
  Launch* outer = sched.current;  // a launch from a kernel is not CUDA, but stay consistent
  sched.current = &l;
  bool ok = true;
  for (long long iz = 0; iz < gz && ok; ++iz) {
    for (long long iy = 0; iy < gy && ok; ++iy) {
      for (long long ix = 0; ix < gx && ok; ++ix) {
        poison_shared(smem_bytes);
        blockIdx = uint3{(unsigned)(reverse ? gx - 1 - ix : ix),
                         (unsigned)(reverse ? gy - 1 - iy : iy),
                         (unsigned)(reverse ? gz - 1 - iz : iz)};
        gridDim = dim3((unsigned)gx, (unsigned)gy, (unsigned)gz);
        blockDim = dim3((unsigned)bx, (unsigned)by, (unsigned)bz);
        ok = fiber_mode ? run_block_fibers(&l, reverse) : run_block_loop(&l, reverse);
      }
    }
  }
  sched.current = outer;
  if (ok) return 0;
  snprintf(err, errlen, "%s at block (%u,%u,%u)", status.error, blockIdx.x, blockIdx.y, blockIdx.z);
  return 1;
}

template <class F>
void call(void* f) {
  (*static_cast<F*>(f))();
}

// Kernel arguments arrive as a void** : a pointer parameter's slot holds the data pointer, a
// scalar's slot points at the value.
template <class P>
inline P arg(void* slot) {
  if constexpr (std::is_pointer_v<P>) return static_cast<P>(slot);
  else return *static_cast<P*>(slot);
}
template <class... P, size_t... I>
inline void invoke(void (*k)(P...), void** a, std::index_sequence<I...>) {
  k(arg<P>(a[I])...);
}
template <class... P>
inline void invoke(void (*k)(P...), void** a) {
  invoke(k, a, std::index_sequence_for<P...>{});
}

// Compile-time check of a kernel's signature against the parameter list the codegen declared.
template <class F> struct params;
template <class... P> struct params<void(P...)> {
  static constexpr size_t count = sizeof...(P);
  template <size_t I> using at = std::tuple_element_t<I, std::tuple<P...>>;
};
template <class P, class T>
constexpr bool is_ptr_to = std::is_pointer_v<P> &&
                           std::is_same_v<std::remove_cv_t<std::remove_pointer_t<P>>, T>;

// ---- typed fronts of the warp operations -------------------------------------------------------
template <class T> struct shfl_type { using type = T; };  // bool, char, short promote to int
template <> struct shfl_type<bool> { using type = int; };
template <> struct shfl_type<signed char> { using type = int; };
template <> struct shfl_type<unsigned char> { using type = int; };
template <> struct shfl_type<char> { using type = int; };
template <> struct shfl_type<short> { using type = int; };
template <> struct shfl_type<unsigned short> { using type = int; };

template <unsigned char OP, class T>
inline typename shfl_type<T>::type shfl(int line, unsigned int mask, T v, int param,
                                        int width = 32) {
  using U = typename shfl_type<T>::type;
  static_assert(std::is_arithmetic_v<U> && sizeof(U) <= 8, "shuffle of an unsupported type");
  U u = (U)v;
  unsigned long long bits = 0;
  memcpy(&bits, &u, sizeof u);
  unsigned long long r = warp_op(line, OP, mask, bits, param, width);
  memcpy(&u, &r, sizeof u);
  return u;
}
template <unsigned char OP>
inline unsigned long long vote(int line, unsigned int mask, int pred) {
  return warp_op(line, OP, mask, pred != 0, 0, 32);
}
template <unsigned char OP, class T>
inline T reduce(int line, unsigned int mask, T v) {
  static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned int>,
                "__reduce_*_sync takes int or unsigned int");
  unsigned char op = OP;
  if (std::is_same_v<T, unsigned int> && OP == W_MIN) op = W_UMIN;
  if (std::is_same_v<T, unsigned int> && OP == W_MAX) op = W_UMAX;
  return (T)warp_op(line, op, mask, (unsigned long long)(unsigned int)v, 0, 32);
}

struct SyncWarp {
  int line;
  void operator()(unsigned int mask = 0xffffffffu) const { warp_op(line, W_SYNC, mask, 0, 0, 32); }
};

inline unsigned int activemask(int line) {
  Launch* l = fiber_launch("__activemask()", line);
  return live_lanes(l, l->cur->linear & ~31u);
}
}  // namespace mlc_emu

#define __syncthreads() ((void)::mlc_emu::barrier(__LINE__, 0))
#define __syncthreads_count(p) ::mlc_emu::barrier(__LINE__, (p))
#define __syncthreads_and(p) (::mlc_emu::barrier(__LINE__, (p)) == (int)blockDim.x * blockDim.y * blockDim.z)
#define __syncthreads_or(p) (::mlc_emu::barrier(__LINE__, (p)) != 0)
#define __syncwarp(...) ::mlc_emu::SyncWarp{__LINE__}(__VA_ARGS__)  // mask is optional
#define __shfl_sync(...) ::mlc_emu::shfl<::mlc_emu::W_IDX>(__LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::mlc_emu::shfl<::mlc_emu::W_UP>(__LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::mlc_emu::shfl<::mlc_emu::W_DOWN>(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::mlc_emu::shfl<::mlc_emu::W_XOR>(__LINE__, __VA_ARGS__)
#define __ballot_sync(m, p) ((unsigned int)::mlc_emu::vote<::mlc_emu::W_BALLOT>(__LINE__, (m), (p)))
#define __any_sync(m, p) ((int)::mlc_emu::vote<::mlc_emu::W_ANY>(__LINE__, (m), (p)))
#define __all_sync(m, p) ((int)::mlc_emu::vote<::mlc_emu::W_ALL>(__LINE__, (m), (p)))
#define __reduce_add_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_ADD>(__LINE__, (m), (v))
#define __reduce_min_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_MIN>(__LINE__, (m), (v))
#define __reduce_max_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_MAX>(__LINE__, (m), (v))
#define __reduce_and_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_AND>(__LINE__, (m), (v))
#define __reduce_or_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_OR>(__LINE__, (m), (v))
#define __reduce_xor_sync(m, v) ::mlc_emu::reduce<::mlc_emu::W_XOR_REDUCE>(__LINE__, (m), (v))
#define __activemask() ::mlc_emu::activemask(__LINE__)
