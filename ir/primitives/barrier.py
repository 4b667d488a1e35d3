"""``barrier``: the identity, kept apart from equal values by a ``uid``.

Hash-consing merges structurally equal nodes, which is what CSE wants and what rematerialization
(``mlc.checkpoint``) must avoid: a forward pass recomputed inside the backward pass would be the
very nodes of the first forward pass, and their values would be kept alive as residuals. Routing
the recomputation's inputs through ``barrier(x, uid=k)`` with a fresh ``k`` makes it a distinct
computation. Passes treat it as an opaque identity; backends copy (or alias) it.
"""

from ..graph import Primitive, register
from . import _rules

barrier = register(
    Primitive(
        "barrier",
        lambda x, uid: x,
        lambda x, uid: x,
        "barrier(x, uid=k): identity that is never merged with another value (rematerialization)",
    )
)


@_rules.defjvp(barrier)
def _barrier_jvp(primals, tangents, out, uid):
    return tangents[0]


@_rules.defvjp(barrier)
def _barrier_vjp(ct, primals, out, uid):
    return (ct,)


@_rules.defbatch(barrier)
def _barrier_batch(inputs, bdims, uid):
    return barrier(inputs[0], uid=uid), bdims[0]
