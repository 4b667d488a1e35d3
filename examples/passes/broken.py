"""bad-simplify: a deliberately wrong pass, for `mlc bisect` to catch (docs/writing-a-pass.md).

exp(x) -> 1 + x is the first term of a Taylor series: right near 0, wrong everywhere else.
"""

from mlc.ir import primitives as P
from mlc.ir.passes import Rewriter, const, register_pass

rules = Rewriter("bad-simplify")


@rules.rule("exp")
def exp_is_one_plus_x(n):
    (x,) = n.inputs
    return P.add(x, const(1.0, x))


@register_pass("bad-simplify", "exp(x) -> x + 1 (wrong on purpose: bisect finds it)")
def bad_simplify(graph):
    return rules(graph)
