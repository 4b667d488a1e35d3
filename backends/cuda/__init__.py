"""The CUDA backend: kernel programs as CUDA C (codegen), NVRTC (compiler), launches (runtime).

Nothing here imports CuPy: ``runtime.CupyDevice`` does, lazily, when a GPU is used.
"""
