"""Pytrees: nested tuples, lists and dicts (and None) of leaves, flattened and rebuilt.

>>> leaves, tree = flatten({"b": (1, 2), "a": [3, None]})
>>> leaves
[3, 1, 2]
>>> unflatten(tree, [30, 10, 20])
{'a': [30, None], 'b': (10, 20)}
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: ``kind`` is leaf, none, tuple, list or dict."""

    kind: str
    children: tuple = ()
    keys: tuple = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __str__(self):
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = [str(c) for c in self.children]
        if self.kind == "dict":
            inner = [f"{k!r}: {c}" for k, c in zip(self.keys, inner)]
            return "{" + ", ".join(inner) + "}"
        return ("(%s)" if self.kind == "tuple" else "[%s]") % ", ".join(inner)


LEAF = TreeDef("leaf")
NONE = TreeDef("none")


def flatten(tree) -> tuple[list, TreeDef]:
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree, leaves) -> TreeDef:
    if tree is None:
        return NONE
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return TreeDef("tuple", tuple(_flatten(x, leaves) for x in tree))
    if isinstance(tree, list):
        return TreeDef("list", tuple(_flatten(x, leaves) for x in tree))
    if isinstance(tree, dict):
        keys = tuple(sorted(tree, key=repr))
        return TreeDef("dict", tuple(_flatten(tree[k], leaves) for k in keys), keys)
    leaves.append(tree)
    return LEAF


def unflatten(treedef: TreeDef, leaves):
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td: TreeDef, it):
    if td.kind == "leaf":
        return next(it)
    if td.kind == "none":
        return None
    children = [_unflatten(c, it) for c in td.children]
    if td.kind == "tuple":
        return tuple(children)
    if td.kind == "list":
        return children
    return dict(zip(td.keys, children))


def tree_map(fn, tree, *rest):
    leaves, td = flatten(tree)
    others = [flatten(r)[0] for r in rest]
    return unflatten(td, [fn(*xs) for xs in zip(leaves, *others)])
