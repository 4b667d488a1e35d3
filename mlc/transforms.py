"""The transforms users call: grad, value_and_grad, vjp, jvp, linearize, jacfwd, jacrev, hessian
and vmap.

Each one traces the function into a graph (with parameters no other trace shares), applies a
graph-to-graph pass (``mlc.ir.passes.autodiff`` or ``batching``) and runs the result:

- called on concrete arrays, the transformed graph is evaluated and NumPy arrays come back;
- called on tracers (inside ``jit``, another transform, or with a closure over a traced value),
  the transformed graph is inlined into the enclosing trace and tracers come back.

So transforms compose in any order: ``grad(grad(f))`` differentiates the graph ``grad(f)``
inlined, ``vmap(grad(f))`` batches it, ``jit(grad(f))`` traces it once into one graph.
"""

from __future__ import annotations

import functools

import numpy as np

import mlc.numpy as mnp
from mlc import pytree
from mlc.errors import where
from mlc.ir import Graph
from mlc.ir.passes import autodiff as AD
from mlc.ir.passes.batching import batch_graph
from mlc.ir.passes.rewrite import located, map_nodes
from mlc.ir.primitives import _rules
from mlc.tracing import Tracer, abstract, trace_flat


# -- tracing and running ----------------------------------------------------------------------
def _name(f) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


def _trace(f, args, kwargs, argnums, avals=None):
    """Trace ``f(*args, **kwargs)`` with the arguments at ``argnums`` as fresh parameters (the
    others are passed as they are). Returns ``(graph, leaves, in_trees, out_tree)``."""
    dyn = tuple(args[i] for i in argnums)
    leaves, in_tree = pytree.flatten(dyn)
    if avals is None:
        avals = [abstract(x) for x in leaves]

    def flat(*tracers):
        full = list(args)
        for i, v in zip(argnums, pytree.unflatten(in_tree, tracers)):
            full[i] = v
        return f(*full, **kwargs)

    graph, out_tree = trace_flat(flat, avals, _name(f), unique=True)
    return graph, leaves, in_tree, out_tree


def _foreign_params(graph: Graph) -> bool:
    own = {id(p) for p in graph.inputs}
    return any(n.op == "param" and id(n) not in own for n in graph.nodes())


def _lift_node(v, like):
    """``v`` (array, scalar or tracer) as a node of ``like``'s type."""
    from mlc.numpy._core import lift

    t = lift(v)
    if t.node.type != like.type:
        if t.shape != like.shape:
            raise ValueError(f"expected an array of shape {like.shape}, got shape {t.shape}")
        if t.weak or t.dtype == like.dtype:
            from mlc.numpy._core import cast

            t = cast(t, like.dtype)
        else:
            raise TypeError(f"expected an array of dtype {like.dtype}, got {t.dtype}")
    return t.node


def run(graph: Graph, values) -> list:
    """Run ``graph`` on ``values``: evaluated when they are all concrete, else inlined into the
    enclosing trace (tracers come back)."""
    values = list(values)
    if any(isinstance(v, Tracer) for v in values) or _foreign_params(graph):
        nodes = [_lift_node(v, p) for v, p in zip(values, graph.inputs)]
        return [Tracer(n) for n in AD.inline(graph, nodes)]
    arrays = []
    for v, p in zip(values, graph.inputs):
        a = np.asarray(v)
        if a.dtype != p.dtype:
            a = a.astype(p.dtype)
        if a.shape != p.shape:
            raise ValueError(f"expected an array of shape {p.shape}, got shape {a.shape}")
        arrays.append(a)
    from mlc.api import execute

    return execute(graph, arrays)


def _substitute(graph: Graph, values: dict) -> Graph:
    """``graph`` with some inputs (``index -> node``) replaced by nodes; those inputs go away."""
    env = {id(graph.inputs[i]): v for i, v in values.items()}
    outs = map_nodes(graph.outputs, lambda n, ins: AD.keep(n, ins), env)
    keep = [p for i, p in enumerate(graph.inputs) if i not in values]
    return Graph(keep, outs, graph.name)


def _argnums(argnums, nargs, who):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{who}: argnums must name at least one argument")
    out = []
    for i in nums:
        if not isinstance(i, int) or not -nargs <= i < nargs:
            raise ValueError(
                f"{who}: argnums {argnums!r} out of range for a call with {nargs} positional "
                "arguments"
            )
        out.append(i % nargs)
    return single, tuple(out)


def _check_float_inputs(graph: Graph, leaves, who, what="differentiate with respect to"):
    for p in graph.inputs:
        if p.dtype.kind != "f":
            raise TypeError(
                f"{who} requires float inputs, but an argument to {what} has dtype "
                f"{p.dtype} (shape {p.shape}). Pass it as a float array (x.astype(float)), "
                "or leave it out of argnums."
            )


def _split_aux(out, has_aux, who):
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{who}(..., has_aux=True) needs the function to return a pair (out, aux)")
    return out[0], out[1]


class _AuxTrace:
    """Wraps ``f`` so that tracing records the structure of ``out`` and ``aux`` separately."""

    def __init__(self, f, has_aux, who):
        self.f, self.has_aux, self.who = f, has_aux, who
        self.__name__ = _name(f)
        self.out_tree = self.aux_tree = None
        self.n_out = 0

    def __call__(self, *args, **kwargs):
        out, aux = _split_aux(self.f(*args, **kwargs), self.has_aux, self.who)
        out_leaves, self.out_tree = pytree.flatten(out)
        aux_leaves, self.aux_tree = pytree.flatten(aux)
        self.n_out = len(out_leaves)
        return out_leaves + aux_leaves


# -- reverse mode -----------------------------------------------------------------------------
def value_and_grad(fun, argnums=0, has_aux=False):
    """``fun``'s value and its gradient with respect to the arguments ``argnums``.

    ``fun`` must return a float scalar (or ``(scalar, aux)`` with ``has_aux``). The gradient has
    the structure and dtype of the argument; with a tuple ``argnums``, a tuple of gradients.

    >>> import numpy as np, mlc
    >>> mlc.value_and_grad(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
    (array(5.), array([2., 4.]))
    """

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        who = "grad"
        single, nums = _argnums(argnums, len(args), who)
        tf = _AuxTrace(fun, has_aux, who)
        graph, leaves, in_tree, _ = _trace(tf, args, kwargs, nums)
        _check_float_inputs(graph, leaves, who)
        if tf.n_out != 1 or tf.out_tree.kind != "leaf":
            raise TypeError(
                f"grad requires a function that returns one scalar, but {_name(fun)} returns "
                f"{tf.out_tree} ({tf.n_out} arrays). Use mlc.vjp for a cotangent of your own, or "
                "mlc.jacrev / mlc.jacfwd for the Jacobian."
            )
        out = graph.outputs[0]
        if out.shape != () or out.dtype.kind != "f":
            raise TypeError(
                f"grad requires a scalar float output, but {_name(fun)} returns an array of "
                f"shape {out.shape} and dtype {out.dtype}. Reduce it to a scalar (e.g. .sum()), "
                "or use mlc.jacrev / mlc.vjp for non-scalar outputs."
            )
        g = AD.vjp_graph(Graph(graph.inputs, [out], graph.name))
        with located(None):
            one = _rules.full(1, (), out.dtype)
        n = len(graph.inputs)
        g = _substitute(g, {n: one})
        g = Graph(g.inputs, [g.outputs[0]] + list(graph.outputs[1:]) + list(g.outputs[1:]))
        res = run(g, leaves)
        value, aux, grads = res[0], res[1 : len(graph.outputs)], res[len(graph.outputs) :]
        grads = pytree.unflatten(in_tree, grads)
        grads = grads[0] if single else tuple(grads)
        if has_aux:
            return (value, pytree.unflatten(tf.aux_tree, aux)), grads
        return value, grads

    return wrapped


def grad(fun, argnums=0, has_aux=False):
    """The gradient of a scalar function, as a function (``mlc.value_and_grad`` without the value).

    >>> import numpy as np, mlc
    >>> mlc.grad(lambda x: np.sin(x).sum())(np.zeros(2))
    array([1., 1.])
    """
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        (value_aux, g) = vg(*args, **kwargs)
        if has_aux:
            return g, value_aux[1]
        return g

    return wrapped


def _coerce_linear(values, like_tree, likes, who, what):
    leaves, td = pytree.flatten(values)
    if td != like_tree:
        raise ValueError(f"{who}: {what} has structure {td}, expected {like_tree}")
    for v, p in zip(leaves, likes):
        shape = tuple(np.shape(v)) if not isinstance(v, Tracer) else v.shape
        if shape != p.shape:
            raise ValueError(f"{who}: {what} of shape {shape} where {p.shape} is expected")
    return leaves


def vjp(fun, *primals, has_aux=False):
    """``(out, vjp_fn)``: ``fun(*primals)`` and the function ``ct -> cotangents of primals``.

    The forward pass runs now and keeps only the residuals the backward pass reads (see
    ``mlc.ir.passes.autodiff.split``); ``vjp_fn`` runs the backward pass on them.

    >>> import numpy as np, mlc
    >>> out, f_vjp = mlc.vjp(np.sin, np.zeros(2))
    >>> f_vjp(np.ones(2))
    (array([1., 1.]),)
    """
    who = "vjp"
    tf = _AuxTrace(fun, has_aux, who)
    nums = tuple(range(len(primals)))
    graph, leaves, in_tree, _ = _trace(tf, primals, {}, nums)
    outs = list(graph.outputs[: tf.n_out])
    aux = list(graph.outputs[tf.n_out :])
    g = AD.vjp_graph(Graph(graph.inputs, outs, graph.name))
    wrt = [i for i, p in enumerate(graph.inputs) if p.dtype.kind == "f"]
    fwd, lin, _ = AD.split(g, len(graph.inputs), len(outs))
    fwd = Graph(fwd.inputs, list(fwd.outputs[: len(outs)]) + aux + list(fwd.outputs[len(outs) :]))
    res = run(fwd, leaves)
    out_vals = res[: len(outs)]
    aux_vals = res[len(outs) : len(outs) + len(aux)]
    residuals = res[len(outs) + len(aux) :]
    out_tree = tf.out_tree

    def vjp_fn(ct):
        ct_leaves = _coerce_linear(ct, out_tree, outs, who, "the cotangent")
        cts = run(lin, list(residuals) + ct_leaves)
        full = []
        it = iter(cts)
        for i, p in enumerate(graph.inputs):
            full.append(next(it) if i in wrt else np.zeros(p.shape, p.dtype))
        return tuple(pytree.unflatten(in_tree, full))

    out = pytree.unflatten(out_tree, out_vals)
    if has_aux:
        return out, vjp_fn, pytree.unflatten(tf.aux_tree, aux_vals)
    return out, vjp_fn


# -- forward mode -----------------------------------------------------------------------------
def _jvp_setup(fun, primals, who, has_aux=False):
    if not isinstance(primals, (tuple, list)):
        raise TypeError(f"{who}: primals must be a tuple or list of arguments, got {type(primals)}")
    tf = _AuxTrace(fun, has_aux, who)
    graph, leaves, in_tree, _ = _trace(tf, tuple(primals), {}, tuple(range(len(primals))))
    _check_float_inputs(graph, leaves, who, "take tangents for")
    return tf, graph, leaves, in_tree


def jvp(fun, primals, tangents, has_aux=False):
    """``(out, tangent_out)``: ``fun(*primals)`` and its derivative along ``tangents``.

    >>> import numpy as np, mlc
    >>> mlc.jvp(np.exp, (np.zeros(2),), (np.ones(2),))
    (array([1., 1.]), array([1., 1.]))
    """
    who = "jvp"
    tf, graph, leaves, in_tree = _jvp_setup(fun, primals, who, has_aux)
    t_leaves = _coerce_linear(tuple(tangents), in_tree, graph.inputs, who, "tangents")
    outs = list(graph.outputs[: tf.n_out])
    aux = list(graph.outputs[tf.n_out :])
    g = AD.jvp_graph(Graph(graph.inputs, outs, graph.name))
    g = Graph(g.inputs, outs + aux + list(g.outputs[len(outs) :]))
    res = run(g, leaves + t_leaves)
    n = len(outs)
    out = pytree.unflatten(tf.out_tree, res[:n])
    tan = pytree.unflatten(tf.out_tree, res[n + len(aux) :])
    if has_aux:
        return out, tan, pytree.unflatten(tf.aux_tree, res[n : n + len(aux)])
    return out, tan


def linearize(fun, *primals):
    """``(out, f_jvp)``: ``fun(*primals)`` now, and ``f_jvp(*tangents)`` that evaluates the
    linear map on the saved residuals only.

    >>> import numpy as np, mlc
    >>> out, f_jvp = mlc.linearize(np.sin, np.zeros(2))
    >>> f_jvp(np.full(2, 3.0))
    array([3., 3.])
    """
    who = "linearize"
    tf, graph, leaves, in_tree = _jvp_setup(fun, primals, who)
    outs = list(graph.outputs)
    g = AD.jvp_graph(Graph(graph.inputs, outs, graph.name))
    fwd, lin, _ = AD.split(g, len(graph.inputs), len(outs))
    res = run(fwd, leaves)
    residuals = res[len(outs) :]

    def f_jvp(*tangents):
        t_leaves = _coerce_linear(tuple(tangents), in_tree, graph.inputs, who, "tangents")
        return pytree.unflatten(tf.out_tree, run(lin, list(residuals) + t_leaves))

    return pytree.unflatten(tf.out_tree, res[: len(outs)]), f_jvp


# -- Jacobians and Hessians -------------------------------------------------------------------
def _basis(likes):
    """The standard basis of the concatenated leaves: per leaf, an array (N,) + leaf.shape."""
    sizes = [int(np.prod(p.shape, dtype=np.int64)) for p in likes]
    total = sum(sizes)
    dtype = np.result_type(*[p.dtype for p in likes]) if likes else np.float64
    eye = np.eye(total, dtype=dtype)
    out, start = [], 0
    for p, s in zip(likes, sizes):
        out.append(eye[:, start : start + s].reshape((total,) + tuple(p.shape)).astype(p.dtype))
        start += s
    return out


def _blocks(stacked, likes, out_first):
    """Split a stacked Jacobian (N,) + shape into one block per leaf of ``likes``, each with the
    leaf's dims placed after (``out_first``) or before the stacked value's own dims."""
    out, start = [], 0
    for p in likes:
        s = int(np.prod(p.shape, dtype=np.int64))
        block = stacked[start : start + s]
        block = mnp.reshape(block, tuple(p.shape) + tuple(stacked.shape[1:]))
        if out_first:
            k = len(p.shape)
            block = mnp.moveaxis(block, tuple(range(k)), tuple(range(block.ndim - k, block.ndim)))
        out.append(block)
        start += s
    return out


def _fix_others(fun, args, kwargs, argnums, who):
    """``(single, dyn, partial)``: the arguments at ``argnums`` and ``fun`` as a function of
    those alone (the other arguments fixed)."""
    single, nums = _argnums(argnums, len(args), who)

    def partial(*d):
        full = list(args)
        for i, v in zip(nums, d):
            full[i] = v
        return fun(*full, **kwargs)

    return single, tuple(args[i] for i in nums), partial


def jacfwd(fun, argnums=0, has_aux=False):
    """The Jacobian by forward mode: ``vmap`` of ``jvp`` over the input basis. Each block has
    shape ``out.shape + in.shape``.

    >>> import numpy as np, mlc
    >>> mlc.jacfwd(lambda x: x * 2)(np.zeros(2))
    array([[2., 0.],
           [0., 2.]])
    """

    @functools.wraps(fun)
    def jac(*args, **kwargs):
        single, dyn, partial = _fix_others(fun, args, kwargs, argnums, "jacfwd")

        tf, graph, leaves, in_tree = _jvp_setup(partial, dyn, "jacfwd", has_aux)
        likes = list(graph.inputs)

        def push(*t_leaves):
            res = jvp(tf, dyn, tuple(pytree.unflatten(in_tree, t_leaves)))
            return res[1]

        basis = _basis(likes)
        tans = vmap(push, in_axes=0, out_axes=-1)(*basis) if likes else []
        out_leaves = [tans[k] for k in range(tf.n_out)]
        blocks = []
        for t in out_leaves:  # t: out.shape + (N,)
            parts = _blocks(_to_front(t), likes, out_first=True)
            per_arg = pytree.unflatten(in_tree, parts)
            blocks.append(per_arg[0] if single else tuple(per_arg))
        jac_tree = pytree.unflatten(tf.out_tree, blocks)
        if has_aux:
            aux = run(graph, leaves)[tf.n_out :]
            return jac_tree, pytree.unflatten(tf.aux_tree, aux)
        return jac_tree

    return jac


def _to_front(t):
    return mnp.moveaxis(t, -1, 0)


def jacrev(fun, argnums=0, has_aux=False):
    """The Jacobian by reverse mode: ``vmap`` of the VJP over the output basis. Each block has
    shape ``out.shape + in.shape``.

    >>> import numpy as np, mlc
    >>> mlc.jacrev(lambda x: x[::-1] * 1.0)(np.zeros(2))
    array([[0., 1.],
           [1., 0.]])
    """

    @functools.wraps(fun)
    def jac(*args, **kwargs):
        single, dyn, partial = _fix_others(fun, args, kwargs, argnums, "jacrev")

        tf = _AuxTrace(partial, has_aux, "jacrev")
        graph, leaves, in_tree, _ = _trace(tf, dyn, {}, tuple(range(len(dyn))))
        _check_float_inputs(graph, leaves, "jacrev")
        outs = list(graph.outputs[: tf.n_out])
        _check_float_outputs(outs, "jacrev")
        g = AD.vjp_graph(Graph(graph.inputs, outs, graph.name))

        def pull(*ct_leaves):
            return run(g, list(leaves) + list(ct_leaves))[len(outs) :]

        basis = _basis(outs)
        cts = vmap(pull, in_axes=0, out_axes=0)(*basis) if outs else []
        blocks = []
        for k, o in enumerate(outs):  # rows of output k, for every input leaf
            per_in = []
            start = sum(int(np.prod(x.shape, dtype=np.int64)) for x in outs[:k])
            size = int(np.prod(o.shape, dtype=np.int64))
            for c in cts:  # c: (M,) + in.shape
                rows = c[start : start + size]
                per_in.append(mnp.reshape(rows, tuple(o.shape) + tuple(c.shape[1:])))
            per_arg = pytree.unflatten(in_tree, per_in)
            blocks.append(per_arg[0] if single else tuple(per_arg))
        jac_tree = pytree.unflatten(tf.out_tree, blocks)
        if has_aux:
            aux = run(graph, leaves)[tf.n_out :]
            return jac_tree, pytree.unflatten(tf.aux_tree, aux)
        return jac_tree

    return jac


def _check_float_outputs(outs, who):
    for o in outs:
        if o.dtype.kind != "f":
            raise TypeError(
                f"{who} requires float outputs, but the function returns an array of dtype "
                f"{o.dtype}"
            )


def hessian(fun, argnums=0):
    """The Hessian: ``jacfwd(jacrev(fun))`` (forward over reverse, the cheap order).

    >>> import numpy as np, mlc
    >>> mlc.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacfwd(jacrev(fun, argnums), argnums)


# -- batching ---------------------------------------------------------------------------------
def _prefix_leaves(prefix, tree, what):
    """One axis spec per leaf of ``tree``, broadcasting ``prefix`` (an int/None or a pytree
    prefix of ``tree``)."""
    if prefix is None or isinstance(prefix, int):
        return [prefix] * len(pytree.flatten(tree)[0])
    if isinstance(prefix, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(prefix) != len(tree):
            raise ValueError(
                f"vmap: {what} {prefix!r} has {len(prefix)} entries for {len(tree)} values"
            )
        return [a for p, t in zip(prefix, tree) for a in _prefix_leaves(p, t, what)]
    if isinstance(prefix, dict) and isinstance(tree, dict):
        if set(prefix) != set(tree):
            raise ValueError(f"vmap: {what} keys {sorted(prefix)} differ from {sorted(tree)}")
        keys = pytree.flatten(tree)[1].keys
        return [a for k in keys for a in _prefix_leaves(prefix[k], tree[k], what)]
    raise ValueError(f"vmap: {what} {prefix!r} does not match the structure of {tree!r}")


def _leaf_names(args) -> list:
    """A name per leaf of the positional arguments: ``argument 1``, ``argument 0[1]['w']``."""
    names = []

    def walk(x, name):
        if isinstance(x, dict):
            for k in pytree.flatten(x)[1].keys:
                walk(x[k], f"{name}[{k!r}]")
        elif isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
            for i, v in enumerate(x):
                walk(v, f"{name}[{i}]")
        elif x is not None:
            names.append(name)

    for i, a in enumerate(args):
        walk(a, f"argument {i}")
    return names


def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """Map ``fun`` over an axis of its arguments, as one batched graph (no Python loop).

    ``in_axes``: an int (negative counts from the end), ``None`` (not batched) or a pytree prefix
    of the arguments; ``out_axes`` likewise for the results; ``axis_size`` when nothing is batched.

    >>> import numpy as np, mlc
    >>> mlc.vmap(lambda x, y: x @ y, in_axes=(0, None))(np.ones((4, 3)), np.ones(3))
    array([3., 3., 3., 3.])
    """

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if kwargs:  # keyword arguments are batched along axis 0, as in JAX
            names = sorted(kwargs)
            pos = list(args) + [kwargs[k] for k in names]

            def f(*a):
                return fun(*a[: len(args)], **dict(zip(names, a[len(args) :])))

            if isinstance(in_axes, (tuple, list)):
                axes = tuple(in_axes) + (0,) * len(names)
            else:  # an int or None covers the positional arguments only
                axes = (in_axes,) * len(args) + (0,) * len(names)
            return vmap(f, axes, out_axes, axis_size)(*pos)
        if isinstance(in_axes, list):
            spec = tuple(in_axes)
        else:
            spec = in_axes
        if isinstance(spec, tuple) and len(spec) != len(args):
            raise ValueError(
                f"vmap: in_axes has {len(spec)} entries but {_name(fun)} got {len(args)} "
                "positional arguments"
            )
        axes = _prefix_leaves(spec, tuple(args), "in_axes")
        leaves, in_tree = pytree.flatten(tuple(args))
        sizes, dims, avals = {}, [], []
        for k, (x, a) in enumerate(zip(leaves, axes)):
            if a is None:
                dims.append(None)
                continue
            if not isinstance(a, int):
                raise TypeError(f"vmap: in_axes entries must be int or None, got {a!r}")
            shape, dtype, weak = abstract(x)
            if not -len(shape) <= a < len(shape):
                raise ValueError(
                    f"vmap: in_axes={a} is out of range for argument {k} of shape {shape}"
                )
            a %= len(shape)
            sizes[k] = shape[a]
            dims.append(a)
            avals.append((shape[:a] + shape[a + 1 :], dtype, weak))
        distinct = set(sizes.values())
        if len(distinct) > 1:
            names = _leaf_names(args)
            detail = ", ".join(f"{names[k]} has size {s}" for k, s in sizes.items())
            raise ValueError(
                f"{where()}: vmap got inconsistent sizes for the mapped axis: {detail}"
            )
        if distinct:
            size = distinct.pop()
            if axis_size is not None and axis_size != size:
                raise ValueError(f"vmap: axis_size={axis_size} but the mapped axis has size {size}")
        elif axis_size is None:
            raise ValueError(
                "vmap needs axis_size when no argument is mapped (every in_axes entry is None)"
            )
        else:
            size = int(axis_size)
        mapped = [k for k, d in enumerate(dims) if d is not None]
        holder = {}

        def flat(*tracers):
            full = list(leaves)
            for k, t in zip(mapped, tracers):
                full[k] = t
            out = fun(*pytree.unflatten(in_tree, full))
            holder["out"] = out
            return out

        graph, out_tree = trace_flat(flat, avals, _name(fun), unique=True)
        shaped = holder["out"]
        oaxes = _prefix_leaves(out_axes, shaped, "out_axes")
        for a, o in zip(oaxes, graph.outputs):
            if a is not None and not -o.ndim - 1 <= a <= o.ndim:
                raise ValueError(
                    f"vmap: out_axes={a} is out of range for a result of rank {o.ndim}"
                )
        bg = batch_graph(graph, [dims[k] for k in mapped], size, oaxes)
        return pytree.unflatten(out_tree, run(bg, [leaves[k] for k in mapped]))

    return batched
