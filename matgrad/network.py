"""The network view: the expression seen as layers of weights and activations (the seeds' method).

A product chain W'*W*x is read the way the UFLDL page reads it: x is the input,
W then W' are weights applied one layer at a time. Everything else is one layer
per operation: an activation f applied entrywise (z − x, z², √z, tanh z …), an
operation (tr, det, inv, softmax …), or a join where two branches that depend on
the variable meet (a sum or product of two such terms). Each layer does one thing,
so a layer is either (W, f = z) or (I, f); this reproduces the tables of the seeds.

`build_network` re-associates products into nested binary products (one weight per
layer); the deriver runs on that same expression, so each layer's delta is an
ordinary adjoint: δ⁽ˡ⁾ = ∂J/∂z⁽ˡ⁾.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from . import simplify as S
from .ir import Add, Expr, Fill, Func, Hadamard, Mul, Power, Sum, Transpose, Var, depends_on, postorder
from .printers import to_text
from .rules import adjoint


class Layer(NamedTuple):
    """One layer: z⁽ˡ⁾ goes in, `node` comes out.

    kind is "weight" (node = W z or z V), "activation" (an entrywise f, node = f(z)),
    "operation" (a non-entrywise f such as tr, det, inv) or "join" (several inputs
    that depend on the variable). `parents` are the layers whose outputs feed this
    one (0 = a network input).
    """
    index: int
    kind: str
    node: Expr
    inputs: tuple[Expr, ...]
    parents: tuple[int, ...]
    weight: Expr | None = None
    side: str = ""
    f: str = "z"
    f_prime: str = "1"

    @property
    def z(self) -> Expr:
        return self.inputs[0]


class Network:
    """The layers in order from the input to the output, and the objective J on top."""

    def __init__(self, expr: Expr, layers: list[Layer], output: Expr, J: str, wrt: tuple[str, ...],
                 deltas: Mapping[int, Expr] | None = None) -> None:
        self.expr = expr        # the expression, products re-associated one weight per layer
        self.layers = layers
        self.output = output    # z⁽ⁿ⁾ fed to J
        self.J = J              # "sum" (J = Σ z) or "z" (the output layer is the value)
        self.wrt = wrt
        self.deltas: Mapping[int, Expr] = deltas if deltas is not None else {}  # layer index → δ⁽ˡ⁾ (simplified)

    @property
    def is_chain(self) -> bool:
        return all(len(l.parents) <= 1 and (l.parents == (l.index - 1,) or (l.index == 1 and l.parents == (0,)))
                   for l in self.layers)

    def __str__(self) -> str:
        from .report import network_table
        return network_table(self)


# ----------------------------------------------------------------------------- re-association

def _data_position(chain: list[Expr], dep: dict[Expr, bool]) -> int:
    """Where the data enters a product chain: a trailing column vector (the seeds' input x),
    else the rightmost factor that depends on the variable, else the last factor."""
    if chain[-1].shape[1] == 1:
        return len(chain) - 1
    for j in range(len(chain) - 1, -1, -1):
        if dep.get(chain[j], False):
            return j
    return len(chain) - 1


def _associate(expr: Expr, dep_names: set[str]) -> Expr:
    """Rewrite every product as nested binary products, weights applied one at a time."""
    done: dict[Expr, Expr] = {}
    for e in postorder(expr):
        kids = tuple(done[c] for c in e.children())
        new = e.with_children(kids) if kids else e
        if isinstance(new, Mul) and len(new.factors) > 2 or isinstance(new, Mul) and new.scalars and new.chain:
            new = _split_product(new, depends_on(new, dep_names))
        done[e] = new
    return done[expr]


def _split_product(m: Mul, dep: dict[Expr, bool]) -> Expr:
    chain = list(m.chain)
    scalars = list(m.scalars)
    if not chain:  # a product of scalars: the rightmost dependent factor is the data
        d = max((j for j, f in enumerate(scalars) if dep.get(f)), default=len(scalars) - 1)
        z = scalars[d]
        others = scalars[:d] + scalars[d + 1:]
    else:
        d = _data_position(chain, dep)
        z = chain[d]
        for w in reversed(chain[:d]):
            z = Mul((w, z))
        for w in chain[d + 1:]:
            z = Mul((z, w))
        others = scalars
    constant = [s for s in others if not dep.get(s)]
    varying = [s for s in others if dep.get(s)]
    if constant:
        z = Mul(((constant[0] if len(constant) == 1 else Mul(tuple(constant))), z))
    for s in varying:
        z = Mul((s, z))
    return z


# ----------------------------------------------------------------------------- layers

def _is_tied_leaf(e: Expr) -> bool:
    return isinstance(e, Var) or (isinstance(e, Transpose) and isinstance(e.arg, Var))


def _is_leaf(e: Expr) -> bool:
    return not e.children()


def _data_children(e: Expr, dep: dict[Expr, bool]) -> tuple[list[int], str]:
    """Indices of the operands that carry data into this layer, and the layer kind."""
    kids = e.children()
    varying = [i for i, c in enumerate(kids) if dep.get(c)]
    if isinstance(e, Mul):
        a, b = kids
        if a.is_scalar and not b.is_scalar:
            weight_i, data_i = 0, 1
        elif b.is_scalar and not a.is_scalar:
            weight_i, data_i = 1, 0
        elif b.shape[1] == 1 or (dep.get(b) and not dep.get(a)) or (not dep.get(a) and not dep.get(b)):
            weight_i, data_i = 0, 1
        else:
            weight_i, data_i = 1, 0
        w = kids[weight_i]
        if dep.get(w) and not _is_tied_leaf(w):  # the weight is itself computed from the variable
            return ([data_i, weight_i], "join") if dep.get(kids[data_i]) else ([weight_i], "operation")
        if w.is_scalar:
            return [data_i], "activation"
        return [data_i], "weight"
    if isinstance(e, (Add, Hadamard)):
        if len(varying) >= 2:
            return varying, "join"
        if varying:
            return varying, "activation"
        inner = [i for i, c in enumerate(kids) if not _is_leaf(c)] or [0]
        return [inner[0]], "activation"
    if len(kids) == 1:
        return [0], ("activation" if isinstance(e, (Func, Power, Fill)) else "operation")
    return varying or [0], "operation"  # pragma: no cover - every node type is covered above


def default_wrt(variables: dict[str, Var]) -> list[Var]:
    """Without --wrt the network treats the matrices as weights (the seeds' convention)."""
    mats = [v for v in variables.values() if not v.is_scalar and v.shape[1] != 1]
    return mats or list(variables.values())


def build_network(expr: Expr, wrt: list[Var]) -> Network:
    names = {v.name for v in wrt}
    assoc = _associate(expr, names)
    dep = depends_on(assoc, names)
    J = "z"
    top = assoc
    if isinstance(assoc, Sum) and not _is_leaf(assoc.arg):
        J, top = "sum", assoc.arg
    # Which nodes are layers: those depending on wrt, plus the data path below them.
    wanted: set[Expr] = set()
    stack = [top]
    while stack:
        e = stack.pop()
        if e in wanted or _is_leaf(e):
            continue
        wanted.add(e)
        idx, _ = _data_children(e, dep)
        kids = e.children()
        stack.extend(kids[i] for i in idx)
    order = [e for e in postorder(top) if e in wanted]
    index = {e: i + 1 for i, e in enumerate(order)}
    layers = []
    for e in order:
        idx, kind = _data_children(e, dep)
        kids = e.children()
        inputs = tuple(kids[i] for i in idx)
        parents = tuple(index.get(c, 0) for c in inputs)
        weight, side = None, ""
        if kind == "weight":
            weight_i = 1 - idx[0]
            weight, side = kids[weight_i], ("left" if weight_i == 0 else "right")
        layers.append(Layer(index[e], kind, e, inputs, parents, weight, side,
                            *_describe(e, idx, kind)))
    return Network(assoc, layers, top, J, tuple(sorted(names)))


def _describe(e: Expr, idx: list[int], kind: str) -> tuple[str, str]:
    """f(z) and f′(z) as text, with the data input written z."""
    kids = list(e.children())
    if kind == "weight":
        return "z", "1"
    if kind == "join":
        zs = {kids[i]: Var(f"z{n + 1}", kids[i].shape) for n, i in enumerate(idx)}
        sub = e.with_children(tuple(zs.get(c, c) for c in kids))
        return to_text(sub), "—"
    z = Var("z", kids[idx[0]].shape)
    kids[idx[0]] = z
    sub = e.with_children(tuple(kids))
    f = to_text(S.canonical(sub))
    if kind == "activation" and sub.shape == z.shape:
        d = S.simplify(adjoint(sub, S.ones(sub.shape), idx[0]))
        fp = "1" if d == S.ones(d.shape) else to_text(d)
        return f, fp
    delta = Var("δ", sub.shape)
    return f, "δ ↦ " + to_text(S.simplify(adjoint(sub, delta, idx[0])))
