"""Buffer planning shared by the runtimes: when each intermediate value can be let go.

A runtime keeps every value of a graph at a position in a list (parameters, constants, then the
steps' outputs). ``release_plan`` says, per step, which positions no later step reads: the
runtime drops them right after that step, so their memory serves the next outputs of the same
call (the CPU backend's buffer pool, CuPy's memory pool) instead of living until the call ends.

>>> release_plan([((0,), (2,)), ((2,), (3,)), ((3, 0), (4,))], keep={4}, first=2)
[(), (2,), (3,)]
"""

from __future__ import annotations


def release_plan(accesses, keep, first: int) -> list:
    """``accesses``: per step, ``(positions read, positions written)``; ``keep``: the graph's
    outputs; ``first``: the first position that is an intermediate (parameters and constants
    come before it). Returns, per step, the tuple of positions to drop after it."""
    last: dict[int, int] = {}
    for k, (reads, writes) in enumerate(accesses):
        for i in (*reads, *writes):
            last[i] = k
    dead: list[list] = [[] for _ in accesses]
    for i, k in last.items():
        if i >= first and i not in keep:
            dead[k].append(i)
    return [tuple(sorted(d)) for d in dead]
