"""Fusion: partition a graph into kernels, and say why every unfused edge was not fused.

A **kernel** (``Kernel``) computes a set of member nodes inside one loop nest and stores the
members that are needed elsewhere. Its iteration space is a shape ``F`` and a set of reduced axes
``R`` (empty for a pointwise kernel): an outer loop over the axes not in ``R`` and, inside, one
pass over the ``R`` axes per phase (DESIGN.md section 4). Each member is evaluated at one of three
index kinds relative to that loop nest:

- ``full``: at the whole index (shape ``F``), e.g. ``x``, ``exp(x - m)`` in softmax;
- ``outer``: at the outer index only (shape ``F`` minus ``R``), e.g. a row's max or sum, and
  elementwise epilogues on it (``mean = sum / n``);
- ``other``: at an index computed from a consumer's (through a transpose, slice, reshape,
  gather, ...): an inline expression with no reduction below it;
- ``final``: once, after the loop nest: a total (a reduction to one element, accumulated across
  the whole loop nest, per thread then combined) and scalar arithmetic on totals, e.g. a mean
  loss next to the per-element gradient it does not feed.

So a reduction, the elementwise chain that feeds it and the "broadcast back over the reduced
axes" consumers all live in one kernel: softmax, layernorm and logsumexp are one kernel each.

The pass walks the graph from the outputs back (every consumer of a node is placed before the
node itself) and pulls each producer into its consumers' kernel when that is legal:

- all of its consumers are in that one kernel (library calls and graph outputs may read it too:
  then the kernel also stores it), and it can be evaluated at one consistent index kind there;
- a producer whose consumers sit in several kernels is recomputed in each when cheap (no
  transcendental, no reduction, bounded chains) and stored once otherwise;
- a reduction joins only at the ``outer`` index, over the kernel's reduced axes, reading an input
  of shape ``F``;
- budgets per kernel bound compile time (nodes, buffers, reductions);
- ``dot_general``, sorting, scans and scatters are library calls: their operands are stored.

Values read by several phases of a kernel are recomputed per phase from the same expression; the
backends emit float arithmetic without contraction or reassociation there (only reduction
accumulators reassociate), so every copy gives the same bits (no ``exp(z - max(z)) > 1``).

``fuse(graph)`` returns a ``FusionPlan``: the kernels in execution order, and the unfused edges,
each with its reason (the fusion explainer). ``plan.report()`` is JSON-serializable; ``str(plan)``
is readable text with source lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..graph import Graph, Node

# -- classes of primitives -------------------------------------------------------------------
REDUCTIONS = {"reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin"}
LIBRARY = {"dot_general", "argsort", "cumsum", "cumprod", "scatter_add", "custom_call"}
MOVEMENT = {"broadcast_in_dim", "reshape", "transpose", "slice", "rev", "pad", "concatenate"}
INDEXED = MOVEMENT | {"gather"}
TRANSCENDENTAL = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "pow", "atan2", "cbrt", "hypot",
    "rem", "div",
}  # fmt: skip

FULL, OTHER, FINAL = "full", "other", "final"


def outer(axes) -> tuple:
    return ("outer", tuple(sorted(axes)))


def _sq(shape) -> tuple:
    """A shape without its unit dimensions: reshapes that only add or drop them (keepdims)
    do not change which index a value is read at."""
    return tuple(d for d in shape if d != 1)


def _drop(shape, axes) -> tuple:
    return tuple(d for a, d in enumerate(shape) if a not in axes)


def _is_reduction(n: Node) -> bool:
    """A reduction over at least one axis of more than one element (others are reshapes)."""
    return n.op in REDUCTIONS and bool(_reduced(n))


def _reduced(n: Node) -> tuple:
    """The axes a reduction node reduces that have more than one element."""
    axes = n.attr("axes") if n.op.startswith("reduce") else (n.attr("axis"),)
    return tuple(sorted(a for a in axes if n.inputs[0].shape[a] != 1))


@dataclass(frozen=True)
class Budget:
    """Per-kernel limits that keep compile time bounded (DESIGN.md section 4). Eight reductions,
    not four: the backward pass of ``max`` adds two (the tie count and the masked sum), and
    softmax's forward and backward together need five."""

    nodes: int = 64
    buffers: int = 32
    reductions: int = 8
    recompute_chain: int = 8  # longest chain of cheap nodes recomputed in several kernels


# -- reasons a producer is not fused into its consumer ---------------------------------------
LIBRARY_CALL = "library call"
AXES_DIFFER = "reduction axes differ"
SPACE_DIFFERS = "iteration space differs"
LAYOUT = "reduction read through a layout change"
SHARED = "expensive producer with consumers in several kernels"
BUDGET = "kernel budget"
CYCLE = "fusing would make a cycle through a library call"


@dataclass
class Kernel:
    """One fused loop nest (or one library call, ``kind == "library"``)."""

    name: str
    kind: str  # "pointwise", "reduction" or "library"
    shape: tuple  # the iteration space F (for a library call: its result's shape)
    reduce_axes: tuple | None = None  # R (None: pointwise)
    members: list = field(default_factory=list)  # nodes computed here, topological
    index: dict = field(default_factory=dict)  # id(member) -> FULL, ("outer", R) or OTHER
    outputs: list = field(default_factory=list)  # members stored to memory
    inputs: list = field(default_factory=list)  # values read from memory (not members)

    def has(self, n: Node) -> bool:
        return id(n) in self.index

    @property
    def reductions(self) -> list:
        return [n for n in self.members if _is_reduction(n)]

    def describe(self) -> dict:
        ops = [n.op for n in self.members]
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "reduce_axes": None if self.reduce_axes is None else list(self.reduce_axes),
            "ops": ops,
            "inputs": [_value(n) for n in self.inputs],
            "outputs": [_value(n) for n in self.outputs],
            "lines": sorted({str(n.loc) for n in self.members if n.loc is not None}),
        }


def _value(n: Node) -> dict:
    return {"op": n.op, "type": str(n.type), "loc": None if n.loc is None else str(n.loc)}


@dataclass
class Unfused:
    """An edge whose producer is stored by one kernel and loaded by another."""

    producer: Node
    consumer: Node
    reason: str
    detail: str = ""

    def describe(self) -> dict:
        return {
            "producer": _value(self.producer),
            "consumer": _value(self.consumer),
            "reason": self.reason,
            "detail": self.detail,
        }


class FusionReport(dict):
    """A fusion report: a plain dict (``json.dumps`` works) whose ``str()`` is readable text."""

    def __init__(self, data, text):
        super().__init__(data)
        self.text = text

    def __str__(self):
        return self.text


class FusionPlan:
    """The kernels of a graph in execution order, and the explained unfused edges."""

    def __init__(self, graph: Graph, kernels: list, unfused: list):
        self.graph = graph
        self.kernels = kernels
        self.unfused = unfused
        self.fallback = None  # set when fusion had to fall back to a simpler partition

    @property
    def fused_kernels(self) -> list:
        return [k for k in self.kernels if k.kind != "library"]

    @property
    def library_calls(self) -> list:
        return [k for k in self.kernels if k.kind == "library"]

    def report(self) -> FusionReport:
        """The plan as JSON-serializable data; ``str()`` of it is the readable text."""
        data = {
            "graph": self.graph.name,
            "kernels": [k.describe() for k in self.kernels],
            "unfused": [u.describe() for u in self.unfused],
        }
        return FusionReport(data, str(self))

    def __str__(self) -> str:
        lines = [f"fusion of @{self.graph.name}: {len(self.fused_kernels)} kernels, "
                 f"{len(self.library_calls)} library calls"]  # fmt: skip
        for k in self.kernels:
            space = "x".join(map(str, k.shape)) or "scalar"
            red = "" if not k.reduce_axes else f", reducing axes {list(k.reduce_axes)}"
            lines.append(
                f"  {k.name} ({k.kind} over {space}{red}): {' '.join(n.op for n in k.members)}"
            )
            where = sorted({str(n.loc) for n in k.members if n.loc is not None})
            if where:
                lines.append(f"    from {', '.join(where)}")
        if self.unfused:
            lines.append("not fused:")
        for u in self.unfused:
            at = f" (line {u.consumer.loc})" if u.consumer.loc else ""
            why = u.reason + (f": {u.detail}" if u.detail else "")
            lines.append(f"  {u.producer.op} {u.producer.type} -> {u.consumer.op}{at}: {why}")
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"<FusionPlan {self.graph.name}: {len(self.kernels)} kernels>"

    def check(self):
        """Raise AssertionError unless the plan is well formed: each kernel reads only values
        stored before it runs (parameters, constants, earlier outputs), every graph output is
        stored, and every edge inside a kernel reads its producer where it is computed."""
        stored = set()
        for k in self.kernels:
            for i in k.inputs:
                if not _is_leaf(i) and id(i) not in stored:
                    raise AssertionError(f"{k.name} reads {i.op} {i.type} before it is stored")
            for m in k.members:
                for i in m.inputs:
                    if not k.has(i) and not _is_leaf(i) and id(i) not in stored:
                        raise AssertionError(f"{k.name}: {m.op} reads {i.op} that is not stored")
            if k.kind != "library" and not _Fuser.valid_kernel(k):
                raise AssertionError(f"{k.name}: a member is read at the wrong index")
            for o in k.outputs:
                if not k.has(o):
                    raise AssertionError(f"{k.name} stores {o.op}, which it does not compute")
                if k.index[id(o)] == OTHER:
                    raise AssertionError(f"{k.name} stores {o.op} at a computed index")
                stored.add(id(o))
            if k.kind == "library":
                stored.add(id(k.members[0]))
        for o in self.graph.outputs:
            if not _is_leaf(o) and id(o) not in stored:
                raise AssertionError(f"graph output {o.op} {o.type} is never stored")

    def evaluate(self, *arrays):
        """Run the plan kernel by kernel with the reference semantics, each kernel seeing only
        stored values: the same results as the graph when the plan is right."""
        from ..interpreter import evaluate_node

        env = {id(p): a for p, a in zip(self.graph.inputs, arrays)}
        for n in self.graph.nodes():
            if n.op == "constant":
                env[id(n)] = n.attr("value").array
        for k in self.kernels:
            local = dict((key, v) for key, v in env.items())
            for m in k.members:
                local[id(m)] = evaluate_node(m, [local[id(i)] for i in m.inputs])
            for o in k.outputs:
                env[id(o)] = local[id(o)]
            if k.kind == "library":
                env[id(k.members[0])] = local[id(k.members[0])]
        return [env[id(o)] for o in self.graph.outputs]


# -- the pass --------------------------------------------------------------------------------
def _is_leaf(n: Node) -> bool:
    """Values every kernel reads directly: parameters and constants (scalars inline)."""
    return n.op in ("param", "constant")


def _free(n: Node) -> bool:
    """Values computed from indices and scalar constants alone (``iota``, splats): free to
    compute wherever they are read, so they never make a kernel boundary."""
    if n.op == "iota":
        return True
    if n.op in ("broadcast_in_dim", "reshape", "convert") and n.inputs:
        x = n.inputs[0]
        return (x.op == "constant" and x.type.size <= 1) or _free(x)
    return False


def _cheap(n: Node) -> bool:
    return n.op not in TRANSCENDENTAL and not _is_reduction(n) and n.op not in LIBRARY


class _Fuser:
    def __init__(self, graph: Graph, budget: Budget, merge: bool = True):
        self.graph = graph
        self.budget = budget
        self.merge = merge
        self.order = graph.nodes()
        self.position = {id(n): i for i, n in enumerate(self.order)}
        self.node_of = {id(n): n for n in self.order}
        self.consumers: dict[int, list[Node]] = defaultdict(list)
        for n in self.order:
            for i in dict.fromkeys(n.inputs):  # each consumer once per producer
                self.consumers[id(i)].append(n)
        self.is_output = {id(o) for o in graph.outputs}
        self.kernels: list[Kernel] = []
        self.groups: dict[int, list[Kernel]] = defaultdict(list)  # id(node) -> kernels holding it
        self.realized: dict[int, tuple] = {}  # id(node) -> (reason, detail) when it was split off
        self.chain: dict[int, int] = {}  # length of the recomputed chain above a duplicated node
        self.free_home: dict[int, Kernel] = {}  # the kernel that stores a free value, if any
        self._desc: dict[int, set] = {}

    # -- index kinds ----------------------------------------------------------------------
    @staticmethod
    def edge_index(shape, axes, c: Node, kind, n: Node):
        """The index kind input ``n`` has when member ``c`` is at ``kind`` in a loop nest over
        ``shape`` reducing ``axes`` (None: ``n`` cannot be read there at all)."""
        if kind == FINAL:
            if _is_reduction(c):  # a total: its input is read inside the loop nest
                if _sq(n.shape) == _sq(shape):
                    return FULL
                if axes is not None and _sq(n.shape) == _sq(_drop(shape, axes)):
                    return outer(axes)
                return None
            return FINAL if n.type.size == 1 else None
        if _is_reduction(c):
            if kind in (FULL, OTHER) or _sq(n.shape) != _sq(shape):
                return None
            return FULL if kind[1] == _reduced(c) else None
        if c.op == "broadcast_in_dim" and kind == FULL:
            dims = c.attr("dims")
            covered = {d for i, d in enumerate(dims) if n.shape[i] == c.shape[d]}
            bcast = tuple(a for a in range(len(c.shape)) if a not in covered and c.shape[a] != 1)
            if not bcast:
                return FULL
            if axes is None or tuple(axes) == bcast:
                return outer(bcast)
            return OTHER
        if c.op == "reshape":
            return kind if _sq(c.shape) == _sq(n.shape) and kind != OTHER else OTHER
        if c.op in INDEXED:
            return OTHER
        return kind  # elementwise: the same index

    def kinds_in(self, k: Kernel, n: Node):
        """The index kinds ``n``'s consumers in ``k`` ask for."""
        return [
            self.edge_index(k.shape, k.reduce_axes, c, k.index[id(c)], n)
            for c in self.consumers[id(n)]
            if k.has(c)
        ]

    def can_hold(self, k: Kernel, n: Node, kind) -> tuple | None:
        """None if ``n`` may join ``k`` at index ``kind``; else (reason, detail)."""
        if _is_reduction(n):
            if kind == OTHER:
                return LAYOUT, f"{n.op} is read at an index computed through a layout change"
            if kind == FULL:
                return AXES_DIFFER, f"{n.op} over axes {list(_reduced(n))} is read per element"
            if kind == FINAL:
                if n.type.size != 1:
                    return AXES_DIFFER, f"{n.op} keeps axes of a kernel over {k.shape}"
                if self.edge_index(k.shape, k.reduce_axes, n, FINAL, n.inputs[0]) is None:
                    return SPACE_DIFFERS, f"{n.op} of {n.inputs[0].type} in a kernel over {k.shape}"
            elif kind[1] != _reduced(n):
                return AXES_DIFFER, (
                    f"{n.op} over axes {list(_reduced(n))} in a kernel over {k.shape} "
                    f"reducing axes {list(kind[1])}"
                )
            elif _sq(n.inputs[0].shape) != _sq(k.shape):
                return (
                    SPACE_DIFFERS,
                    f"{n.op} reads {n.inputs[0].type}, the kernel runs over {k.shape}",
                )
            if len(k.reductions) >= self.budget.reductions:
                return BUDGET, f"more than {self.budget.reductions} reductions"
        elif kind == FULL and _sq(n.shape) != _sq(k.shape):
            return SPACE_DIFFERS, f"{n.type} in a kernel over {k.shape}"
        elif kind == FINAL and n.type.size != 1:
            return SPACE_DIFFERS, f"{n.type} after the loop nest"
        elif kind not in (FULL, OTHER, FINAL) and _sq(n.shape) != _sq(_drop(k.shape, kind[1])):
            return SPACE_DIFFERS, f"{n.type} read per row of a kernel over {k.shape}"
        if len(k.members) >= self.budget.nodes:
            return BUDGET, f"more than {self.budget.nodes} nodes"
        loads = {id(i) for m in k.members for i in m.inputs if not k.has(i)}
        loads |= {id(i) for i in n.inputs}
        if len(loads) > self.budget.buffers:
            return BUDGET, f"more than {self.budget.buffers} buffers"
        return None

    # -- reshaping a kernel's loop nest for a reduction that joins it ----------------------
    def reshape_for(self, k: Kernel, red: Node, kind):
        """When reduction ``red`` is read by ``k`` at ``kind`` but cannot be computed in ``k``'s
        loop nest as it is, the mapping of ``k``'s kinds into a loop nest that can hold it:
        ``(shape, axes, {old kind: new kind}, red's kind)``, or None."""
        if any(v not in (FULL, OTHER) for v in k.index.values()) or k.reduce_axes is not None:
            return None
        if kind != FULL or _sq(k.shape) != _sq(red.shape):
            return None
        src = red.inputs[0].shape
        if red.type.size == 1 and _sq(red.shape) == ():  # a scalar kernel after a total
            return src, None, {FULL: FINAL, OTHER: OTHER}, FINAL
        axes = _reduced(red)
        return src, axes, {FULL: outer(axes), OTHER: OTHER}, outer(axes)

    def apply(self, k: Kernel, shape, axes, mapping):
        k.shape, k.reduce_axes = shape, axes
        k.kind = "pointwise" if axes is None else "reduction"
        for key, v in list(k.index.items()):
            k.index[key] = mapping.get(v, v)

    # -- cycles ----------------------------------------------------------------------------
    def descendants(self, n: Node) -> set:
        got = self._desc.get(id(n))
        if got is None:
            got = set()
            stack = [n]
            while stack:
                m = stack.pop()
                for c in self.consumers[id(m)]:
                    if id(c) not in got:
                        got.add(id(c))
                        stack.append(c)
            self._desc[id(n)] = got
        return got

    def leaves_and_returns(self, members: dict) -> bool:
        """Whether some path leaves ``members`` and comes back (fusing them makes a cycle)."""
        for m in members.values():
            for x in self.consumers[id(m)]:
                if id(x) not in members and self.descendants(x) & members.keys():
                    return True
        return False

    def acyclic_after(self, merged: dict, gone) -> bool:
        """Whether the kernels, with ``gone`` replaced by one kernel of ``merged`` members,
        still read each other without a cycle (a kernel reads every value one of its members
        needs and does not compute; it may come from any kernel that computes it)."""
        gone_ids = {id(k) for k in gone}
        groups = [set(merged)] + [
            {id(m) for m in k.members} for k in self.kernels if k.members and id(k) not in gone_ids
        ]
        owners = defaultdict(list)
        for g, ids in enumerate(groups):
            for i in ids:
                owners[i].append(g)
        reads = []
        for ids in groups:
            out = set()
            for i in ids:
                for inp in self.node_of[i].inputs:
                    if id(inp) not in ids:
                        out.update(owners.get(id(inp), ()))
            reads.append(out)
        state = [0] * len(groups)  # 0 new, 1 on the stack, 2 done
        for root in range(len(groups)):
            if state[root]:
                continue
            stack = [(root, iter(reads[root]))]
            state[root] = 1
            while stack:
                g, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[g] = 2
                    stack.pop()
                elif state[nxt] == 1:
                    return False
                elif state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, iter(reads[nxt])))
        return True

    # -- the walk --------------------------------------------------------------------------
    def run(self) -> FusionPlan:
        for n in reversed(self.order):
            if _is_leaf(n):
                continue
            if n.op in LIBRARY:
                self.new_kernel(n, library=True)
                continue
            self.place(n)
        self.merge_siblings()
        return self.finish()

    def merge_siblings(self):
        """Kernels the walk left apart that can share one loop nest become one (for example the
        row reductions of a loss and of its gradient, split by a column reduction that reads
        them); repeated until nothing merges."""
        changed = True
        while changed:
            changed = False
            live = [k for k in self.kernels if k.members and k.kind != "library"]
            for i, a in enumerate(live):
                for b in live[i + 1 :]:
                    if a.members and b.members and self.merge_all([a, b]) is not None:
                        changed = True

    def new_kernel(self, n: Node, library=False) -> Kernel:
        if library:
            k = Kernel("", "library", n.shape)
            k.index[id(n)] = FULL
        elif _is_reduction(n) and n.type.size == 1 and _sq(n.shape) == ():
            k = Kernel("", "pointwise", n.inputs[0].shape)  # a total: after the loop nest
            k.index[id(n)] = FINAL
        elif _is_reduction(n):
            axes = _reduced(n)
            k = Kernel("", "reduction", n.inputs[0].shape, axes)
            k.index[id(n)] = outer(axes)
        else:
            k = Kernel("", "pointwise", n.shape)
            k.index[id(n)] = FULL
        k.members.append(n)
        self.kernels.append(k)
        self.groups[id(n)].append(k)
        return k

    def place(self, n: Node):
        cons = self.consumers[id(n)]
        if _free(n):  # index math and splats: computed wherever they are read
            kernels = {id(k): k for c in cons for k in self.groups[id(c)] if k.kind != "library"}
            for k in kernels.values():
                kinds = [v for v in self.kinds_in(k, n) if v is not None]
                self.join(k, n, kinds[0] if len(set(kinds)) == 1 else OTHER)
            needs_buffer = id(n) in self.is_output or any(
                k.kind == "library" for c in cons for k in self.groups[id(c)]
            )
            if needs_buffer or not kernels:
                self.free_home[id(n)] = self.new_kernel(n)
            return
        fusable, library = {}, []
        for c in cons:
            for k in self.groups[id(c)]:
                if k.kind == "library":
                    library.append((k, c))
                else:
                    fusable[id(k)] = k
        fusable = list(fusable.values())
        if not fusable:
            self.realize(n, (LIBRARY_CALL, f"{library[0][1].op} reads it") if library else None)
            return
        if len(fusable) > 1:
            merged = self.merge_all(fusable)
            if merged is not None:  # kernels over one iteration space become one
                fusable = [merged]
        if len(fusable) == 1:
            why = self.try_join(fusable[0], n, library)
            if why is not None:
                self.realize(n, why)
            return
        # consumers in several kernels: recompute a cheap chain in each, else store once
        chain = 1 + max((self.chain.get(id(c), 0) for c in cons), default=0)
        if _cheap(n) and not library and chain <= self.budget.recompute_chain:
            if all(self.try_join(k, n, [], dry=True) is None for k in fusable):
                for k in fusable:
                    self.try_join(k, n, [])
                self.chain[id(n)] = chain
                return
        self.realize(n, (SHARED, f"{len(fusable)} kernels read it"))

    def try_join(self, k: Kernel, n: Node, library, dry=False):
        kinds = self.kinds_in(k, n)
        if any(v is None for v in kinds):
            return SPACE_DIFFERS, f"{n.type} cannot be read at its consumers' index"
        distinct = set(kinds)
        if len(distinct) > 1 and (_is_reduction(n) or FINAL in distinct):
            return LAYOUT, f"{n.op} is read at {len(distinct)} different indices"
        kind = kinds[0] if len(distinct) == 1 else OTHER
        if _is_reduction(n) and kind == OTHER:
            readers = [c for c in self.consumers[id(n)] if k.has(c)]
            if all(c.op in ("broadcast_in_dim", "reshape") for c in readers):
                return AXES_DIFFER, (
                    f"{n.op} over axes {list(_reduced(n))} is broadcast back in a kernel "
                    f"reducing axes {list(k.reduce_axes or ())} over {k.shape}"
                )
        reshape = None
        if _is_reduction(n):
            reshape = self.reshape_for(k, n, kind)
            if reshape is not None:
                kind = reshape[3]
        if kind == OTHER and (library or id(n) in self.is_output):
            return SPACE_DIFFERS, f"{n.op} must be stored but is read at a computed index"
        probe = k
        if reshape is not None:
            probe = Kernel(k.name, k.kind, reshape[0], reshape[1], k.members, {}, k.outputs)
        why = self.can_hold(probe, n, kind)
        if why is not None:
            return why
        for _, lib_node in library:  # the library call reads n from k: it must not feed k
            if self.descendants(lib_node) & {id(m) for m in k.members}:
                return CYCLE, f"{lib_node.op} reads it and feeds the kernel"
        if not dry:
            if reshape is not None:
                self.apply(k, *reshape[:3])
            self.join(k, n, kind)
            if library or id(n) in self.is_output:
                k.outputs.append(n)
        return None

    def join(self, k: Kernel, n: Node, kind):
        if k.has(n):
            return
        k.index[id(n)] = kind
        k.members.append(n)
        self.groups[id(n)].append(k)
        if _is_reduction(n) and kind not in (FINAL, FULL, OTHER) and k.reduce_axes is None:
            k.reduce_axes = kind[1]
            k.kind = "reduction"

    def realize(self, n: Node, why):
        if why is not None:
            self.realized[id(n)] = why
        return self.new_kernel(n)

    # -- merging kernels that can share one loop nest --------------------------------------
    def merge_map(self, a: Kernel, b: Kernel):
        """``(target, other, mapping)``: ``other``'s kinds mapped into ``target``'s loop nest;
        None when the two cannot share one."""
        if a.reduce_axes is None and b.reduce_axes is not None:
            a, b = b, a
        same = {FULL: FULL, OTHER: OTHER, FINAL: FINAL}
        if _sq(a.shape) == _sq(b.shape) and a.reduce_axes == b.reduce_axes:
            return a, b, same
        if b.reduce_axes is None:
            if _sq(b.shape) == _sq(a.shape):
                return a, b, same
            if a.reduce_axes is not None and _sq(b.shape) == _sq(_drop(a.shape, a.reduce_axes)):
                return a, b, {FULL: outer(a.reduce_axes), OTHER: OTHER, FINAL: FINAL}
            if _sq(b.shape) == () and all(v in (FULL, OTHER) for v in b.index.values()):
                return a, b, {FULL: FINAL, OTHER: OTHER}  # scalars after the loop nest
            if a.reduce_axes is None and _sq(a.shape) == ():
                if all(v in (FULL, OTHER) for v in a.index.values()):
                    return b, a, {FULL: FINAL, OTHER: OTHER}
        return None

    @staticmethod
    def valid_kernel(k: Kernel) -> bool:
        """Every edge inside ``k`` reads its producer where the producer is computed."""
        for c in k.members:
            for p in c.inputs:
                if not k.has(p):
                    continue
                want = _Fuser.edge_index(k.shape, k.reduce_axes, c, k.index[id(c)], p)
                have = k.index[id(p)]
                if want is None:
                    return False
                if (_is_reduction(p) or FINAL in (want, have)) and want != have:
                    return False
        return True

    def merge_all(self, kernels):
        if not self.merge:
            return None
        homes = {id(k) for k in self.free_home.values()}
        if any(id(k) in homes for k in kernels):  # a free value's own store stays apart
            return None
        members = {}
        for k in kernels:
            for m in k.members:
                members[id(m)] = m
        reds = sum(1 for m in members.values() if _is_reduction(m))
        if len(members) > self.budget.nodes or reds > self.budget.reductions:
            return None
        if self.leaves_and_returns(members) or not self.acyclic_after(members, kernels):
            return None
        target = kernels[0]
        probe = Kernel(target.name, target.kind, target.shape, target.reduce_axes,
                       list(target.members), dict(target.index), list(target.outputs))  # fmt: skip
        for k in kernels[1:]:
            got = self.merge_map(probe, k)
            if got is None:
                return None
            into, _, mapping = got
            if into is k:  # the other kernel's loop nest holds both: remap what we have
                probe.shape, probe.reduce_axes, probe.kind = k.shape, k.reduce_axes, k.kind
                probe.index = {key: mapping.get(v, v) for key, v in probe.index.items()}
                for key, v in k.index.items():
                    probe.index.setdefault(key, v)
            else:
                for m in k.members:
                    new = mapping.get(k.index[id(m)], k.index[id(m)])
                    old = probe.index.get(id(m))
                    if old is not None and old != new:
                        if _is_reduction(m) or FINAL in (old, new) or m in probe.outputs:
                            return None
                        new = OTHER
                    probe.index[id(m)] = new
            for m in k.members:
                if m not in probe.members:
                    probe.members.append(m)
            probe.outputs += [o for o in k.outputs if o not in probe.outputs]
        if not self.valid_kernel(probe):
            return None
        for k in kernels:
            for m in k.members:
                groups = self.groups[id(m)]
                if k in groups:
                    groups.remove(k)
            if k is not target:
                k.members, k.index, k.outputs = [], {}, []
        target.shape, target.reduce_axes, target.kind = probe.shape, probe.reduce_axes, probe.kind
        target.members, target.index, target.outputs = probe.members, probe.index, probe.outputs
        for m in target.members:
            if target not in self.groups[id(m)]:
                self.groups[id(m)].append(target)
        return target

    # -- results ---------------------------------------------------------------------------
    def finish(self) -> FusionPlan:
        kernels = [k for k in self.kernels if k.members]
        for k in kernels:
            k.members.sort(key=lambda m: self.position[id(m)])
            inputs = {}
            for m in k.members:
                for i in m.inputs:
                    if not k.has(i) and not (i.op == "constant" and i.type.size <= 1):
                        inputs.setdefault(id(i), i)
                home = self.free_home.get(id(m))
                if home is not None:  # a free value is stored by its own kernel only
                    stored = home is k
                else:
                    stored = id(m) in self.is_output or any(
                        not g.has(m)  # a kernel (or library call) reads m without computing it
                        for c in self.consumers[id(m)]
                        for g in self.groups[id(c)]
                    )
                if stored and m not in k.outputs:
                    k.outputs.append(m)
            k.inputs = list(inputs.values())
            k.outputs.sort(key=lambda m: self.position[id(m)])
        kernels = self.schedule(kernels)
        names: dict[str, int] = defaultdict(int)
        for k in kernels:
            base = k.members[-1].op if k.kind == "library" else _name(k)
            k.name = f"{base}_{names[base]}"
            names[base] += 1
        unfused = []
        for k in kernels:
            for m in k.members:
                for i in dict.fromkeys(m.inputs):
                    if k.has(i) or _is_leaf(i):
                        continue
                    why = self.realized.get(id(i))
                    if why is None:
                        if k.kind == "library":
                            why = (LIBRARY_CALL, f"{m.op} reads its operands from memory")
                        elif any(g.kind == "library" for g in self.groups[id(i)]):
                            why = (LIBRARY_CALL, f"{i.op} writes its result to memory")
                        else:
                            continue
                    unfused.append(Unfused(i, m, why[0], why[1]))
        return FusionPlan(self.graph, kernels, unfused)

    def schedule(self, kernels):
        """Kernels in an order where each runs after the kernels whose outputs it reads."""
        producer = {}
        for k in kernels:
            for o in k.outputs:
                producer[id(o)] = k
            if k.kind == "library":
                producer[id(k.members[0])] = k
        done, out = set(), []

        def visit(k, stack=()):
            if id(k) in done:
                return
            if id(k) in stack:
                raise _Cycle("fusion made a cycle between kernels")
            for i in k.inputs:
                p = producer.get(id(i))
                if p is not None and p is not k:
                    visit(p, stack + (id(k),))
            done.add(id(k))
            out.append(k)

        for k in sorted(kernels, key=lambda k: self.position[id(k.members[-1])]):
            visit(k)
        return out


def _name(k: Kernel) -> str:
    """A kernel's name from what it does: its reductions, else its last member."""
    reds = [n.op.replace("reduce_", "") for n in k.members if _is_reduction(n)]
    if reds:
        return "_".join(dict.fromkeys(reds))
    return k.members[-1].op


def fuse(graph: Graph, budget: Budget | None = None) -> FusionPlan:
    """Partition ``graph`` into kernels (see the module docstring).

    >>> import numpy as np, mlc
    >>> from mlc.ir.passes.fusion import fuse
    >>> g = mlc.trace(lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True), np.ones((4, 8)))
    >>> plan = fuse(g)
    >>> [k.kind for k in plan.kernels]
    ['reduction']
    """
    budget = budget or Budget()
    try:
        return _Fuser(graph, budget).run()
    except _Cycle:
        pass
    try:  # without merging kernels (the step that can close a cycle)
        plan = _Fuser(graph, budget, merge=False).run()
        plan.fallback = "kernels not merged: merging made a cycle"
        return plan
    except _Cycle:
        plan = _Fuser(graph, Budget(nodes=1), merge=False).run()
        plan.fallback = "one kernel per node: fusion made a cycle"
        return plan


class _Cycle(AssertionError):
    """Fusion produced kernels that depend on each other in a cycle (a bug to report)."""
