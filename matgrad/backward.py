"""The reverse pass: adjoints of every node, from the output back to the variables.

Walks the expression DAG once in reverse topological order (autodidax's evaluator
run backwards), asks the rule table for each operand's contribution and sums the
contributions per node. A variable used several times (tied weights) simply
receives several contributions; a Wᵀ occurrence contributes through the Transpose
rule, i.e. the transpose of its gradient.
"""

from __future__ import annotations

from typing import NamedTuple

from . import simplify as S
from .ir import Expr, Var, depends_on, postorder
from .rules import adjoint


class Contribution(NamedTuple):
    """One occurrence of a variable and what it contributes to that variable's gradient."""
    variable: str
    via: Expr          # the node that uses the variable (W in W*x, or W' in W'*W*x)
    amount: Expr       # the contribution to ∇ variable


class Adjoints(NamedTuple):
    """Result of the reverse pass."""
    adjoint: dict[Expr, Expr]                      # ∂J/∂node for every node on a path to a wrt variable
    gradients: dict[str, Expr]                     # ∇ for each wrt variable (unsimplified sum)
    contributions: list[Contribution]


def backward(root: Expr, wrt: list[Var], also: frozenset[Expr] = frozenset()) -> Adjoints:
    """Reverse-mode over `root` (a 1×1 expression) for the variables in `wrt`.

    `also` names extra nodes whose adjoints are wanted even though no wrt variable
    lies below them (the network view shows the delta of every layer).
    """
    names = {v.name for v in wrt}
    needed = depends_on(root, names)
    if also:
        asked: dict[Expr, bool] = {}
        for node in postorder(root):  # ancestors of an asked-for node carry its adjoint down
            asked[node] = node in also or any(asked[c] for c in node.children())
            needed[node] = needed[node] or asked[node]
    pending: dict[Expr, list[Expr]] = {root: [S.ONE]}
    adjoints: dict[Expr, Expr] = {}
    contributions: list[Contribution] = []
    for node in reversed(postorder(root)):
        parts = pending.pop(node, None)
        if parts is None:
            continue
        G = S.add(*parts)
        adjoints[node] = G
        for i, child in enumerate(node.children()):
            if not needed.get(child, False):
                continue
            amount = adjoint(node, G, i)
            pending.setdefault(child, []).append(amount)
            if isinstance(child, Var) and child.name in names:
                contributions.append(Contribution(child.name, node, amount))
    gradients = {}
    for v in wrt:
        g = adjoints.get(v)
        gradients[v.name] = g if g is not None else S.zeros(v.shape)
    return Adjoints(adjoints, gradients, contributions)
