"""Human-readable reports: the network table (as in the seeds) and the step-by-step explanation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ir import Transpose, Var
from .network import Network
from .printers import to_text
from .simplify import simplify

if TYPE_CHECKING:
    from .api import Derivation

SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(n: int) -> str:
    return f"⁽{str(n).translate(SUPERSCRIPT)}⁾"


def _clip(s: str, width: int = 48) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    rule = "  ".join("─" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([line.rstrip(), rule, *body])


def _weight_cell(net: Network, i: int) -> str:
    layer = net.layers[i]
    last = i == len(net.layers) - 1
    if layer.kind == "weight":
        w = to_text(layer.weight) if layer.weight is not None else "?"
        return w if layer.side == "left" else f"·{w} (right)"
    if last:
        return "N/A"
    if layer.kind == "activation":
        return "I"
    return "—"


def network_table(net: Network) -> str:
    """The layers as the seeds tabulate them: weight, activation f, f′, input z, delta δ."""
    chain = net.is_chain
    headers = ["Layer", "Weight", "Activation f", "f′", "Input z", "Delta δ"]
    if not chain:
        headers.insert(1, "Parents")
    rows = []
    for i, layer in enumerate(net.layers):
        delta = net.deltas.get(layer.index)
        row = [str(layer.index), _weight_cell(net, i), _clip(layer.f, 40), _clip(layer.f_prime, 40),
               _clip(" , ".join(to_text(z) for z in layer.inputs)),
               _clip(to_text(delta, name_shared=True), 60) if delta is not None else ""]
        if not chain:
            row.insert(1, ", ".join("input" if p == 0 else str(p) for p in layer.parents))
        rows.append(row)
    out = _table(headers, rows)
    n = len(net.layers)
    top = f"a{sup(n)}" if n else "z"
    out += "\n" + (f"J(z) = Σₖ {top}ₖ  (the sum of the last layer's activations)" if net.J == "sum"
                   else f"J = {top}  (the last layer's output is the function's value)")
    if not chain:
        out += "\nThe expression is not a chain: layers list the layers they take input from."
    return out


def explain(d: "Derivation") -> str:
    """The derivation step by step: network, δ of each layer, each occurrence's contribution, ∇."""
    net = d.network
    lines = [f"F = {to_text(d.expr)}", "", "Network view (one operation per layer):", network_table(net), ""]
    n = len(net.layers)
    lines.append("Deltas, from the output back (δ⁽ˡ⁾ = ∂J/∂z⁽ˡ⁾):")
    consumer = {}  # the layer that takes each layer's output (l+1 in a chain)
    for layer in net.layers:
        for z in layer.inputs:
            consumer.setdefault(z, layer.index)
    for layer in reversed(net.layers):
        i = layer.index
        above = sup(consumer.get(layer.node, i + 1))
        delta = net.deltas.get(i)
        if layer.kind == "weight" and layer.weight is not None:
            w = to_text(layer.weight)
            w = w if w.isidentifier() else f"({w})"
            rule = f"({w}ᵀ δ{above}) ∘ 1" if layer.side == "left" else f"(δ{above} {w}ᵀ) ∘ 1"
        elif i == n:
            rule = f"f′(z{sup(i)})" if layer.kind == "activation" else f"∂J/∂z{sup(i)}"
        elif layer.kind == "activation":
            rule = f"(Iᵀ δ{above}) ∘ f′(z{sup(i)})"
        else:
            rule = f"the rule of {layer.f} applied to δ{above}"
        lines.append(f"  δ{sup(i)} = {rule} = {to_text(delta, name_shared=True) if delta is not None else '—'}")
    lines.append("")
    index_of = {l.node: l.index for l in net.layers}
    for name in d.wrt:
        contribs = [c for c in d.adjoints.contributions if c.variable == name]
        if name in d.absent:
            lines.append(f"{name} does not occur in F, so ∇_{name} F = 0.")
            continue
        lines.append(f"Contributions to ∇_{name} (one per occurrence, summed):")
        for c in contribs:
            amount = to_text(simplify(c.amount), name_shared=True)
            if isinstance(c.via, Transpose):
                users = [l for l in net.layers if c.via in l.node.children()]
                if users and users[0].kind == "weight":
                    u = users[0]
                    form = f"(δ{sup(consumer.get(u.node, u.index + 1))} a{sup(u.index)}ᵀ)ᵀ"
                    lines.append(f"  {name}ᵀ as the weight of layer {u.index}, so the transpose of its "
                                 f"gradient: {form} = {amount}")
                else:
                    where = f"layer {users[0].index}" if users else "the expression"
                    lines.append(f"  {name}ᵀ in {where}: the transpose of its gradient = {amount}")
            elif c.via in index_of:
                layer = net.layers[index_of[c.via] - 1]
                i = layer.index
                if layer.kind == "weight" and isinstance(layer.weight, Var) and layer.weight.name == name:
                    nxt = sup(consumer.get(layer.node, i + 1))
                    form = f"δ{nxt} a{sup(i)}ᵀ" if layer.side == "left" else f"a{sup(i)}ᵀ δ{nxt}"
                    lines.append(f"  {name} as the weight of layer {i}: {form} = {amount}")
                else:
                    lines.append(f"  {name} in layer {i} ({layer.f}): {amount}")
            else:
                lines.append(f"  {name} in {to_text(c.via)}: {amount}")
        lines.append(f"∇_{name} F = {d.gradient_text(name)}")
        lines.append("")
    return "\n".join(lines).rstrip()
