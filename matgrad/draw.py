"""Pictures of the network view: Graphviz, layers left to right.

Inputs (the data, constants) are boxes on the left; each layer is a node showing
its activation f; the weight a layer applies labels the edge into it (I for an
activation layer, as in the seeds); the objective J closes the picture on the
right. Occurrences of the variables we differentiate with respect to are drawn in
red; weights that are tied (the same matrix used by several layers, W and Wᵀ) are
marked "tied" in the same colour.

`to_dot` is plain text and needs nothing installed; `render` to .svg/.png uses the
Python `graphviz` package and the Graphviz `dot` program.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MatgradError
from .ir import Expr, Transpose, Var, variables
from .network import Network
from .printers import to_text

if TYPE_CHECKING:
    from .api import Derivation

__all__ = ["to_dot", "render", "svg", "dot_available", "FORMATS"]

FORMATS = ("dot", "gv", "svg", "png", "pdf")
HIGHLIGHT = "#d62728"
TIED = "#1f77b4"


def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _clip(s: str, width: int = 28) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def _base_var(w: Expr) -> str | None:
    """The matrix a weight is (W for W and Wᵀ), or None for a computed weight."""
    if isinstance(w, Var):
        return w.name
    if isinstance(w, Transpose) and isinstance(w.arg, Var):
        return w.arg.name
    return None


def _mentions(e: Expr, names: set[str]) -> bool:
    return bool(names & set(variables(e)))


def to_dot(net: Network, wrt: list[str] | tuple[str, ...] | None = None, *, title: str | None = None) -> str:
    """The network as Graphviz DOT text."""
    names = set(wrt if wrt is not None else net.wrt)
    uses: dict[str, int] = {}
    for l in net.layers:
        if l.kind == "weight" and l.weight is not None and (b := _base_var(l.weight)):
            uses[b] = uses.get(b, 0) + 1
    tied = {b for b, k in uses.items() if k > 1}

    lines = ["digraph network {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=11];']
    if title:
        lines.append(f"  labelloc=t; label={_q(title)};")
    inputs: dict[Expr, str] = {}
    for l in net.layers:
        for z, p in zip(l.inputs, l.parents):
            if p == 0 and z not in inputs:
                nid = f"in{len(inputs)}"
                inputs[z] = nid
                hot = _mentions(z, names)
                style = f', color="{HIGHLIGHT}", fontcolor="{HIGHLIGHT}", penwidth=2' if hot else ""
                lines.append(f"  {nid} [shape=box, label={_q(_clip(to_text(z)))}{style}];")
    for l in net.layers:
        label = f"{l.index}\n{_clip(l.f)}"
        extra = [k for k in l.node.children() if k not in l.inputs and not (l.kind == "weight" and k == l.weight)]
        hot = any(_mentions(k, names) for k in extra)
        style = f', color="{HIGHLIGHT}", penwidth=2' if hot else ""
        shape = "ellipse" if l.kind in ("activation", "weight") else "box, style=rounded"
        lines.append(f"  L{l.index} [shape={shape}, label={_q(label)}{style}];")
        for z, p in zip(l.inputs, l.parents):
            src = inputs[z] if p == 0 else f"L{p}"
            attrs: list[str] = []
            if l.kind == "weight" and l.weight is not None:
                w = to_text(l.weight)
                base = _base_var(l.weight)
                text = w + (" (right)" if l.side == "right" else "") + (" · tied" if base in tied else "")
                attrs.append(f"label={_q(_clip(text, 36))}")
                if _mentions(l.weight, names):
                    attrs += [f'color="{HIGHLIGHT}"', f'fontcolor="{HIGHLIGHT}"', "penwidth=2.5"]
                elif base in tied:
                    attrs += [f'color="{TIED}"', f'fontcolor="{TIED}"']
                if base in tied:
                    attrs.append("style=bold")
            elif l.kind == "activation":
                attrs.append('label="I"')
            lines.append(f"  {src} -> L{l.index}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    top = f"L{net.layers[-1].index}" if net.layers else None
    j = "J = Σ z" if net.J == "sum" else "J = z"
    lines.append(f"  J [shape=doublecircle, label={_q(j)}];")
    if top:
        lines.append(f"  {top} -> J;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_available() -> bool:
    import shutil
    return shutil.which("dot") is not None


def _pipe(dot: str, fmt: str) -> bytes:
    try:
        import graphviz
    except ImportError:
        raise MatgradError(f"drawing .{fmt} needs the Python package graphviz",
                           hint="pip install graphviz, or write .dot instead") from None
    try:
        return graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise MatgradError(f"drawing .{fmt} needs Graphviz's dot program, which is not installed",
                           hint="apt-get install graphviz (or brew install graphviz), or write .dot "
                                "and render it elsewhere") from None
    except graphviz.CalledProcessError as e:  # pragma: no cover - our DOT is well formed
        raise MatgradError(f"Graphviz failed: {e}") from None


def svg(net: Network, wrt: list[str] | tuple[str, ...] | None = None, *, title: str | None = None) -> str:
    """The picture as SVG text (needs dot)."""
    return _pipe(to_dot(net, wrt, title=title), "svg").decode("utf-8")


def render(d: "Derivation", path: str | Path, *, title: str | None = None) -> Path:
    """Draw the derivation's network to `path`; the suffix picks the format (.dot/.gv, .svg, .png, .pdf)."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MatgradError(f"cannot draw to {p.name!r}: the file name must end in "
                           + ", ".join("." + f for f in FORMATS))
    dot = to_dot(d.network, d.wrt, title=title)
    try:
        if fmt in ("dot", "gv"):
            p.write_text(dot, encoding="utf-8")
        else:
            p.write_bytes(_pipe(dot, fmt))
    except OSError as e:
        raise MatgradError(f"cannot write {p}: {e.strerror}") from None
    return p
