"""User-defined derivative rules (``custom_vjp``, ``custom_jvp``) and ``checkpoint``.

A call to a decorated function inside a trace becomes one ``custom_call`` node per result leaf.
The node holds a ``CallRecord``: the function's own traced graph (how to evaluate it, and what
``mlc.jit`` inlines when no transform asks for the rule) and the user's rules. The node's
``jvp``/``vjp``/``batch`` rules, below, consult the record:

- ``custom_vjp``: reverse mode runs the user's ``fwd`` then ``bwd``; forward mode differentiates
  the traced graph (the original function), as there is no forward rule to use.
- ``custom_jvp``: forward mode runs the user's ``jvp``; reverse mode transposes it: since the
  tangent map ``t -> jvp(primals, t)[1]`` is linear, its VJP at ``t = 0`` is ``J^T ct``.
- batching inlines the traced graph and batches it (the custom rule does not survive ``vmap``;
  apply ``grad`` inside ``vmap`` to keep it).

``checkpoint(f)`` is a ``custom_vjp`` whose residuals are only the inputs: its backward pass
recomputes ``f`` from them (through ``barrier`` nodes, so hash-consing cannot share the
recomputation with the forward pass).
"""

from __future__ import annotations

import functools
import itertools

from mlc import pytree
from mlc.ir import Graph
from mlc.ir.graph import Primitive, register
from mlc.ir.interpreter import evaluate
from mlc.ir.passes import autodiff as AD
from mlc.ir.passes.batching import batch_nodes
from mlc.ir.passes.manager import register_pass
from mlc.ir.passes.rewrite import keep, rebuild
from mlc.ir.primitives import _rules
from mlc.ir.primitives import barrier as _barrier
from mlc.tracing import Tracer, abstract, trace_flat

_BARRIER_UID = itertools.count(1)


class CallRecord:
    """What a ``custom_call`` node holds (compared by identity)."""

    def __init__(self, name, graph, in_tree, out_tree, kind, fwd=None, bwd=None, jvp=None):
        self.name, self.graph, self.in_tree, self.out_tree = name, graph, in_tree, out_tree
        self.kind, self.fwd, self.bwd, self.jvp = kind, fwd, bwd, jvp
        self._inlined = None

    def __repr__(self):
        return repr(f"{self.kind}:{self.name}")

    def inlined(self) -> Graph:
        """The graph with nested custom calls inlined too (memoized)."""
        if self._inlined is None:
            self._inlined = inline_calls(self.graph)
        return self._inlined


def _infer(*inputs, call, index):
    return call.graph.outputs[index].type


def _impl(*arrays, call, index):
    return evaluate(call.graph, *arrays)[index]


custom_call = register(
    Primitive(
        "custom_call",
        _infer,
        _impl,
        "custom_call(*args, call=..., index=k): result k of a function with user-defined "
        "derivative rules (custom_vjp / custom_jvp); jit inlines it",
    )
)


def _tracers(nodes):
    return [Tracer(n) for n in nodes]


def _nodes(values, likes):
    from mlc.transforms import _lift_node

    return [_lift_node(v, like) for v, like in zip(values, likes)]


@_rules.defjvp(custom_call)
def _custom_jvp_rule(primals, tangents, out, call, index):
    if call.kind == "jvp":
        ts = [_rules.instantiate(t, p) for t, p in zip(tangents, primals)]
        args = pytree.unflatten(call.in_tree, _tracers(primals))
        targs = pytree.unflatten(call.in_tree, _tracers(ts))
        res = call.jvp(tuple(args), tuple(targs))
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"the jvp rule of {call.name} must return (out, tangent_out)")
        t_leaves = pytree.flatten(res[1])[0]
        return _nodes([t_leaves[index]], [out])[0]
    outs = AD.inline(call.graph, primals)
    env = {id(p): t for p, t in zip(primals, tangents) if t is not None}
    return AD.jvp_nodes([outs[index]], env)[0]


@_rules.defvjp(custom_call)
def _custom_vjp_rule(ct, primals, out, call, index):
    outs = call.graph.outputs
    if call.kind == "vjp":
        args = pytree.unflatten(call.in_tree, _tracers(primals))
        res = call.fwd(*args)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"the fwd rule of {call.name} must return (out, residuals)")
        cts = [ct if k == index else _rules.zeros_like(o) for k, o in enumerate(outs)]
        ct_tree = pytree.unflatten(call.out_tree, _tracers(cts))
        in_cts = call.bwd(res[1], ct_tree)
        if not isinstance(in_cts, (tuple, list)):
            raise TypeError(f"the bwd rule of {call.name} must return a tuple, one per argument")
        if len(in_cts) != len(call.in_tree.children):
            raise ValueError(
                f"the bwd rule of {call.name} returned {len(in_cts)} cotangents for "
                f"{len(call.in_tree.children)} arguments"
            )
        leaves = []
        for c, sub in zip(in_cts, call.in_tree.children):
            if c is None:  # None: a zero cotangent for the whole argument
                leaves += [None] * sub.num_leaves
                continue
            cl, tree = pytree.flatten(c)
            if tree != sub:
                raise ValueError(
                    f"the bwd rule of {call.name} returned a cotangent of structure {tree} "
                    f"for an argument of structure {sub}"
                )
            leaves += cl
        return tuple(
            None if v is None or not _rules.is_float(p) else _nodes([v], [p])[0]
            for v, p in zip(leaves, primals)
        )
    # custom_jvp: the VJP of the linear tangent map, taken at zero tangents.
    floats = [i for i, p in enumerate(primals) if _rules.is_float(p)]

    def tangent_map(*ts):
        full = [_rules.zeros_like(p) for p in primals]
        full = _tracers(full)
        for i, t in zip(floats, ts):
            full[i] = t
        args = pytree.unflatten(call.in_tree, _tracers(primals))
        targs = pytree.unflatten(call.in_tree, full)
        return pytree.flatten(call.jvp(tuple(args), tuple(targs))[1])[0][index]

    avals = [(primals[i].shape, primals[i].dtype, False) for i in floats]
    g, _ = trace_flat(tangent_map, avals, call.name, unique=True)
    v = AD.vjp_graph(g)
    zeros = [_rules.zeros_like(primals[i]) for i in floats]
    got = AD.inline(v, zeros + [ct])[1:]
    result = [None] * len(primals)
    for i, c in zip(floats, got):
        result[i] = c
    return tuple(result)


@_rules.defbatch(custom_call)
def _custom_batch_rule(inputs, bdims, call, index):
    g = call.graph
    env = {id(p): (x, d) for p, x, d in zip(g.inputs, inputs, bdims)}
    return batch_nodes([g.outputs[index]], env)[0]


def inline_calls(graph: Graph) -> Graph:
    """``graph`` with every ``custom_call`` replaced by the function it calls."""

    def visit(n, ins):
        if n.op != "custom_call":
            return keep(n, ins)
        call = n.attr("call")
        return AD.inline(call.inlined(), list(ins))[n.attr("index")]

    return rebuild(graph, visit)


register_pass("inline-calls", "replace custom_vjp/custom_jvp calls by their functions")(
    inline_calls
)


def _call(record_kind, fun, args, name, **rules):
    leaves, in_tree = pytree.flatten(tuple(args))
    if not any(isinstance(x, Tracer) for x in leaves):
        return fun(*args)  # no transform can be watching: just run it
    avals = [abstract(x) for x in leaves]
    holder = {}

    def flat(*tracers):
        out = fun(*pytree.unflatten(in_tree, tracers))
        holder["out"] = out
        return out

    graph, out_tree = trace_flat(flat, avals, name, unique=True)
    record = CallRecord(name, graph, in_tree, out_tree, record_kind, **rules)
    from mlc.transforms import _lift_node

    nodes = [_lift_node(x, p) for x, p in zip(leaves, graph.inputs)]
    outs = [Tracer(custom_call(*nodes, call=record, index=k)) for k in range(len(graph.outputs))]
    return pytree.unflatten(out_tree, outs)


class custom_vjp:
    """A function with a user-defined reverse-mode rule.

    >>> import numpy as np, mlc
    >>> @mlc.custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, ct: (np.clip(ct, -1, 1),))
    >>> mlc.grad(lambda x: (clip_gradient(x) * 5).sum())(np.ones(2))
    array([1., 1.])
    """

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """``fwd(*args) -> (out, residuals)``; ``bwd(residuals, ct) -> tuple of cotangents``."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {self.__name__} has no rule: call defvjp first")
        return _call("vjp", self.fun, args, self.__name__, fwd=self.fwd, bwd=self.bwd)


class custom_jvp:
    """A function with a user-defined forward-mode rule (reverse mode transposes it).

    >>> import numpy as np, mlc
    >>> @mlc.custom_jvp
    ... def f(x):
    ...     return np.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     return np.sin(*primals), 2 * tangents[0]
    >>> mlc.grad(lambda x: f(x).sum())(np.zeros(2))
    array([2., 2.])
    """

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.jvp = None

    def defjvp(self, jvp):
        """``jvp(primals, tangents) -> (out, tangent_out)`` with tuples of arguments."""
        self.jvp = jvp
        return jvp

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"custom_jvp function {self.__name__} has no rule: call defjvp first")
        return _call("jvp", self.fun, args, self.__name__, jvp=self.jvp)


def checkpoint(fun):
    """``fun`` whose reverse mode saves only its inputs and recomputes the rest in the backward
    pass (rematerialization: less memory, more compute).

    >>> import numpy as np, mlc
    >>> mlc.grad(lambda x: mlc.checkpoint(np.sin)(x).sum())(np.zeros(2))
    array([1., 1.])
    """

    @functools.wraps(fun)
    def wrapped(*args):
        uid = next(_BARRIER_UID)

        def fwd(*a):
            return fun(*a), a

        def bwd(res, ct):
            from mlc.transforms import vjp

            leaves, tree = pytree.flatten(res)
            fenced = [
                Tracer(_barrier(x.node, uid=uid)) if isinstance(x, Tracer) else x for x in leaves
            ]
            _, f_vjp = vjp(fun, *pytree.unflatten(tree, fenced))
            return f_vjp(ct)

        return _call("vjp", fun, args, getattr(fun, "__name__", "checkpoint"), fwd=fwd, bwd=bwd)

    return wrapped
