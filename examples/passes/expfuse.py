"""expfuse: exp(a) * exp(b) -> exp(a + b) and log(exp(x)) -> x (docs/writing-a-pass.md).

Not bit-exact, so not for the default pipeline: see the tutorial's "numerical caveats".
"""

from mlc.ir import primitives as P
from mlc.ir.passes import Rewriter, register_pass

rules = Rewriter("expfuse")


@rules.rule("mul")
def exp_times_exp(n):
    # exp(a) * exp(b) = exp(a + b): one exp instead of two (rounds differently: a few ulp).
    a, b = n.inputs
    if a.op == "exp" and b.op == "exp":
        return P.exp(P.add(a.inputs[0], b.inputs[0]))
    return None


@rules.rule("log")
def log_of_exp(n):
    # log(exp(x)) = x, where NumPy overflows for x > 88.7 (float32) and gives inf.
    (e,) = n.inputs
    return e.inputs[0] if e.op == "exp" else None


@register_pass("expfuse", "exp(a)*exp(b) -> exp(a+b), log(exp(x)) -> x (not bit-exact)")
def expfuse(graph):
    return rules(graph)
