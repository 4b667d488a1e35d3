"""The LLVM CPU backend: fused kernels built with llvmlite's IR builder, compiled at O3.

`mathlib` emits the transcendental functions those kernels call, as branch-free IR that LLVM
inlines and vectorizes (see docs/llvm-math.md).
"""
