"""Formatting shared by the CPU (``benchmarks.run``) and GPU (``benchmarks.gpu``) tables; no
imports with side effects (``benchmarks.run`` pins jax to the CPU, the GPU runner must not)."""


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def markdown_table(head, body) -> str:
    """A Markdown table with padded columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = [
        "| " + " | ".join(str(x).ljust(w) for x, w in zip(line, widths)) + " |"
        for line in [head, *body]
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
