"""The autodiff API: conventions, errors, pytrees, any order, custom rules, checkpoint, residuals.

Per-primitive and per-function derivative checks live in test_rules_*.py and
test_autodiff_numpy.py; this file checks the user-facing behaviour of the transforms.
"""

import numpy as np
import pytest
from mlc.ir import Graph
from mlc.ir.passes import autodiff as AD

import mlc
import mlc.numpy as mnp


def fd_grad(f, x, eps=1e-6):
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


RNG = np.random.RandomState(0)
X = RNG.uniform(0.5, 1.5, size=(3, 4))


def loss(x):
    return np.sum(np.tanh(x) * np.exp(-x) + x**3 / 3)


# -- the basic transforms against finite differences ------------------------------------------
def test_grad_matches_finite_differences():
    np.testing.assert_allclose(mlc.grad(loss)(X), fd_grad(loss, X), rtol=1e-7, atol=1e-9)


def test_value_and_grad():
    v, g = mlc.value_and_grad(loss)(X)
    np.testing.assert_allclose(v, loss(X))
    np.testing.assert_allclose(g, mlc.grad(loss)(X))


def test_vjp_and_jvp_agree():
    f = lambda x: np.sin(x) * x[::-1]  # noqa: E731
    u, w = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    out, f_vjp = mlc.vjp(f, X)
    np.testing.assert_allclose(out, f(X))
    (ju,) = f_vjp(w)
    o2, jv = mlc.jvp(f, (X,), (u,))
    np.testing.assert_allclose(o2, f(X))
    np.testing.assert_allclose(np.sum(w * jv), np.sum(ju * u), rtol=1e-12)


def test_linearize_reuses_residuals():
    f = lambda x: np.exp(np.sin(x))  # noqa: E731
    out, f_jvp = mlc.linearize(f, X)
    u = RNG.normal(size=X.shape)
    np.testing.assert_allclose(out, f(X))
    np.testing.assert_allclose(f_jvp(u), mlc.jvp(f, (X,), (u,))[1], rtol=1e-12)


def test_jacobians_and_hessian():
    f = lambda x: np.tanh(x @ x.T)  # noqa: E731
    jf, jr = mlc.jacfwd(f)(X), mlc.jacrev(f)(X)
    assert jf.shape == jr.shape == (3, 3, 3, 4)
    np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12)
    H = mlc.hessian(loss)(X)
    assert H.shape == (3, 4, 3, 4)
    Hm = H.reshape(12, 12)
    np.testing.assert_allclose(Hm, Hm.T, rtol=1e-10, atol=1e-12)
    g = mlc.grad(loss)
    fd = np.stack([fd_grad(lambda x, i=i: g(x)[i], X) for i in np.ndindex(3, 4)]).reshape(12, 12)
    np.testing.assert_allclose(Hm, fd, rtol=1e-6, atol=1e-6)


def test_any_order():
    f = lambda x: np.sin(x) * x**2  # noqa: E731
    d1 = mlc.grad(f)
    d2 = mlc.grad(d1)
    d3 = mlc.grad(d2)
    x = 0.7
    exact = [
        np.cos(x) * x**2 + 2 * x * np.sin(x),
        -np.sin(x) * x**2 + 4 * x * np.cos(x) + 2 * np.sin(x),
        -np.cos(x) * x**2 - 6 * x * np.sin(x) + 6 * np.cos(x),
    ]
    np.testing.assert_allclose([d1(x), d2(x), d3(x)], exact, rtol=1e-12)
    # every mode combination at second order gives the same Hessian-vector product
    u = RNG.normal(size=X.shape)
    hvp_rr = mlc.grad(lambda x: np.sum(mlc.grad(loss)(x) * u))(X)
    hvp_fr = mlc.jvp(mlc.grad(loss), (X,), (u,))[1]
    hvp_rf = mlc.grad(lambda x: mlc.jvp(loss, (x,), (u,))[1])(X)
    hvp_ff = np.stack(
        [
            mlc.jvp(lambda x, e=e: mlc.jvp(loss, (x,), (e.reshape(X.shape),))[1], (X,), (u,))[1]
            for e in np.eye(X.size)
        ]
    ).reshape(X.shape)
    for h in (hvp_fr, hvp_rf, hvp_ff):
        np.testing.assert_allclose(h, hvp_rr, rtol=1e-10, atol=1e-12)


def test_closures_keep_their_levels_apart():
    """A function differentiating a closure over an outer traced value (perturbation
    confusion): d/dx [d/dy (x*y)] = 1, not 2."""

    def outer(x):
        return mlc.grad(lambda y: x * y)(3.0)

    assert mlc.grad(outer)(2.0) == 1.0
    assert mlc.jit(mlc.grad(outer))(2.0) == 1.0
    same_shape = lambda x: mlc.grad(lambda y: np.sum(x * y))(np.ones(3))  # noqa: E731
    np.testing.assert_allclose(mlc.jacfwd(same_shape)(np.full(3, 2.0)), np.eye(3))


# -- arguments, pytrees, aux ------------------------------------------------------------------
def test_argnums_and_pytrees():
    def f(params, x, scale):
        w, b = params["w"], params["b"]
        return scale * np.sum(np.tanh(x @ w + b) ** 2)

    params = {"w": RNG.normal(size=(4, 2)), "b": RNG.normal(size=2)}
    g = mlc.grad(f)(params, X, 3)
    assert set(g) == {"w", "b"} and g["w"].shape == (4, 2) and g["b"].shape == (2,)
    np.testing.assert_allclose(
        g["w"], fd_grad(lambda w: f({"w": w, "b": params["b"]}, X, 3), params["w"]), rtol=1e-6
    )
    gp, gx = mlc.grad(f, argnums=(0, 1))(params, X, 3)
    assert gx.shape == X.shape and set(gp) == {"w", "b"}
    np.testing.assert_allclose(gp["b"], g["b"])
    (gx2,) = mlc.grad(f, argnums=(-2,))(params, X, 3)
    np.testing.assert_allclose(gx2, gx)


def test_has_aux():
    def f(x):
        return np.sum(x**2), {"mean": np.mean(x)}

    g, aux = mlc.grad(f, has_aux=True)(X)
    np.testing.assert_allclose(g, 2 * X)
    np.testing.assert_allclose(aux["mean"], X.mean())
    (v, aux2), g2 = mlc.value_and_grad(f, has_aux=True)(X)
    np.testing.assert_allclose(v, np.sum(X**2))
    out, f_vjp, aux3 = mlc.vjp(f, X, has_aux=True)
    np.testing.assert_allclose(f_vjp(1.0)[0], 2 * X)
    np.testing.assert_allclose(aux3["mean"], X.mean())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_has_the_input_dtype(dtype):
    x = X.astype(dtype)
    assert mlc.grad(lambda x: np.sum(np.sin(x)))(x).dtype == dtype
    assert mlc.grad(lambda x: np.sum(x * 2.5))(x).dtype == dtype
    assert mlc.jacrev(np.sin)(x[0]).dtype == dtype
    assert mlc.grad(lambda x: x * 3.0)(dtype(2.0)).dtype == dtype


def test_grad_errors_say_what_to_use():
    with pytest.raises(TypeError, match="jacrev"):
        mlc.grad(lambda x: x * 2)(X)
    with pytest.raises(TypeError, match="float"):
        mlc.grad(lambda x: np.sum(x * 2.0))(np.arange(3))
    with pytest.raises(TypeError, match="vjp"):
        mlc.grad(lambda x: (x.sum(), x.sum()))(X)
    with pytest.raises(ValueError, match="argnums"):
        mlc.grad(loss, argnums=3)(X)
    with pytest.raises(TypeError, match="float"):
        mlc.jvp(lambda x: x, (np.arange(3),), (np.arange(3),))
    _, f_vjp = mlc.vjp(np.sin, X)
    with pytest.raises(ValueError, match="shape"):
        f_vjp(np.ones(3))


def test_non_differentiable_functions_give_zero_not_errors():
    x = np.array([-1.5, 0.3, 2.7])
    np.testing.assert_array_equal(mlc.grad(lambda x: np.sum(np.floor(x)))(x), 0.0)
    np.testing.assert_array_equal(mlc.grad(lambda x: np.sum(np.floor(x) * x))(x), np.floor(x))
    np.testing.assert_array_equal(mlc.grad(lambda x: np.sum(np.sign(x) * 2.0))(x), 0.0)
    np.testing.assert_array_equal(mlc.grad(lambda x: np.sum((x > 0) * 1.0))(x), 0.0)
    np.testing.assert_array_equal(mlc.grad(lambda x: np.sum(x * np.argmax(x)))(x), 2.0)


# -- conventions ------------------------------------------------------------------------------
def test_conventions():
    g = mlc.grad
    np.testing.assert_array_equal(g(lambda x: np.max(x))(np.array([1.0, 3.0, 3.0])), [0, 0.5, 0.5])
    np.testing.assert_array_equal(g(lambda x: np.min(x))(np.array([2.0, 2.0, 3.0])), [0.5, 0.5, 0])
    np.testing.assert_array_equal(
        g(lambda x: np.maximum(x, 2.0).sum())(np.array([1.0, 2.0, 3.0])), [0, 0.5, 1]
    )
    np.testing.assert_array_equal(
        g(lambda x: np.minimum(x, 2.0).sum())(np.array([1.0, 2.0, 3.0])), [1, 0.5, 0]
    )
    np.testing.assert_array_equal(
        g(lambda x: np.abs(x).sum())(np.array([-2.0, 0.0, 3.0])), [-1, 0, 1]
    )
    np.testing.assert_array_equal(g(lambda x: np.sum(x**0))(np.array([0.0, 2.0])), [0, 0])
    np.testing.assert_array_equal(
        g(lambda x: np.sum(np.power(x, 0.0)))(np.array([0.0, 2.0])), [0, 0]
    )
    # sort differentiates through its permutation
    x = np.array([3.0, 1.0, 2.0])
    w = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(g(lambda x: np.sum(np.sort(x) * w))(x), [30, 10, 20])
    # comparisons and where-conditions: no gradient, no error
    np.testing.assert_array_equal(
        g(lambda x: np.sum(np.where(x > 1.5, x, -x)))(x), [1.0, -1.0, 1.0]
    )


# -- jit: one trace, one graph, minimal residuals ---------------------------------------------
def test_jit_of_grad_traces_once():
    mlc.reset_stats()
    f = mlc.jit(mlc.grad(loss))
    for _ in range(3):
        np.testing.assert_allclose(f(X), mlc.grad(loss)(X))
    assert mlc.stats()["traces"] == 1
    graph = f.lower(X).optimized
    assert isinstance(graph, Graph) and len(graph.outputs) == 1


def test_backward_keeps_only_needed_residuals():
    # d/dx sum(sin(x) * exp(x)) = cos(x) exp(x) + sin(x) exp(x): the backward pass reads
    # sin(x), exp(x) and cos(x) (3 residuals); x itself and the product are not kept.
    g = mlc.trace(lambda x: np.sum(np.sin(x) * np.exp(x)), np.zeros(3))
    fwd, lin, n = AD.split(AD.vjp_graph(g), 1, 1)
    assert n == 3
    assert sorted(o.op for o in fwd.outputs[1:]) == ["cos", "exp", "sin"]
    # a linear function keeps nothing: the backward pass needs no primal value
    g = mlc.trace(lambda x: np.sum(x * 3.0), np.zeros(3))
    assert AD.split(AD.vjp_graph(g), 1, 1)[2] == 0


def test_checkpoint_saves_only_inputs():
    def body(y):
        return np.sin(np.exp(y)) * np.cos(y)

    plain = lambda x: np.sum(body(x))  # noqa: E731
    ckpt = lambda x: np.sum(mlc.checkpoint(body)(x))  # noqa: E731
    x = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(mlc.grad(ckpt)(x), mlc.grad(plain)(x), rtol=1e-14)
    np.testing.assert_allclose(mlc.jit(mlc.grad(ckpt))(x), mlc.grad(plain)(x), rtol=1e-14)
    res = lambda f: AD.split(AD.vjp_graph(mlc.trace(f, x)), 1, 1)[2]  # noqa: E731
    assert res(plain) >= 3
    assert res(ckpt) == 1  # only x: the rest is recomputed in the backward pass
    np.testing.assert_allclose(mlc.hessian(ckpt)(x), mlc.hessian(plain)(x), rtol=1e-12)


# -- custom rules -----------------------------------------------------------------------------
def test_custom_vjp():
    @mlc.custom_vjp
    def clip_gradient(x, lo, hi):
        return x

    def fwd(x, lo, hi):
        return x, (lo, hi)

    def bwd(res, ct):
        lo, hi = res
        return np.clip(ct, lo, hi), None, None

    clip_gradient.defvjp(fwd, bwd)
    f = lambda x: np.sum(clip_gradient(x, -1.0, 1.0) * 5.0)  # noqa: E731
    np.testing.assert_array_equal(mlc.grad(f)(X), np.ones_like(X))
    np.testing.assert_array_equal(mlc.jit(mlc.grad(f))(X), np.ones_like(X))
    np.testing.assert_array_equal(mlc.jit(f)(X), f(X))  # the value is the function's
    np.testing.assert_array_equal(mlc.vmap(mlc.grad(f))(X), np.ones_like(X))
    # forward mode has no user rule: it differentiates the function itself
    np.testing.assert_array_equal(mlc.jvp(f, (X,), (np.ones_like(X),))[1], 5.0 * X.size)


def test_custom_vjp_stable_log1pexp():
    @mlc.custom_vjp
    def softplus(x):
        return np.logaddexp(x, 0.0)

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, ct: (ct / (1 + np.exp(-x)),))
    x = np.array([-800.0, 0.0, 800.0])
    np.testing.assert_allclose(mlc.grad(lambda x: np.sum(softplus(x)))(x), [0.0, 0.5, 1.0])


def test_custom_jvp_and_its_transpose():
    @mlc.custom_jvp
    def f(x, y):
        return np.sin(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        return f(x, y), 2.0 * np.cos(x) * y * tx + np.sin(x) * ty  # a deliberately odd rule

    x, y = X, X[::-1] * 1.0
    tx, ty = RNG.normal(size=X.shape), RNG.normal(size=X.shape)
    out, tan = mlc.jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(out, np.sin(x) * y)
    np.testing.assert_allclose(tan, 2 * np.cos(x) * y * tx + np.sin(x) * ty)
    gx, gy = mlc.grad(lambda x, y: np.sum(f(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, 2 * np.cos(x) * y)
    np.testing.assert_allclose(gy, np.sin(x))
    with pytest.raises(TypeError, match="defjvp"):
        mlc.grad(lambda x: np.sum(mlc.custom_jvp(np.sin)(x)))(X)


def test_grad_of_mlc_numpy_and_plain_numpy_agree():
    f_np = lambda x: np.sum(np.logaddexp(x, 1.0) * np.cumsum(x, axis=1))  # noqa: E731
    f_mnp = lambda x: mnp.sum(mnp.logaddexp(x, 1.0) * mnp.cumsum(x, axis=1))  # noqa: E731
    np.testing.assert_allclose(mlc.grad(f_np)(X), mlc.grad(f_mnp)(X))
    np.testing.assert_allclose(mlc.grad(f_np)(X), fd_grad(f_np, X), rtol=1e-6)
