"""mlc in one screen: plain NumPy code, jitted, and the graph it became."""

import numpy as np

import mlc


@mlc.jit
def gelu(x):
    # Written against plain NumPy: mlc traces it unchanged.
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


x = np.linspace(-3, 3, 8, dtype=np.float32)
y = gelu(x)
expected = 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))

print("input :", x)
print("mlc   :", y, y.dtype)
print("numpy :", expected, expected.dtype)
print("max abs difference:", float(np.max(np.abs(y - expected))))
print()
print("The graph mlc traced (one SSA line per node, with the source line that made it):")
print(gelu.lower(x).as_text(optimized=False))


@mlc.jit
def scaled_square(x):
    return (x * 1.0 - 0.0) ** 2  # the passes remove what does not change a single bit


print("scaled_square, traced:")
print(scaled_square.lower(x).as_text(optimized=False))
print("scaled_square, after cse, fold, simplify, dce:")
print(scaled_square.lower(x).as_text())
print("stats:", mlc.stats())


# Transforms are graph passes too: differentiate, batch, compile, in any order.
def loss(w, x):
    return np.mean(np.tanh(x @ w) ** 2)


w = np.full(3, 0.5, dtype=np.float32)
xs = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
per_example = mlc.jit(mlc.vmap(mlc.grad(loss), in_axes=(None, 0)))
print("per-example gradients (vmap of grad, jitted):")
print(per_example(w, xs))
print(
    "their mean equals the batch gradient:",
    np.allclose(per_example(w, xs).mean(0), mlc.grad(loss)(w, xs)),
)
