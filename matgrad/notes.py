"""Lecture notes: a complete, compilable LaTeX document for one derivation.

`notes_document(derivation, …)` writes the function, the network table as the seeds
tabulate it (layer, weight, f, f′, input z, δ), the deltas layer by layer, the
gradients, the numerical verification and, for a recipe, the forms its source
prints (typos flagged). Every formula is typeset from matgrad's IR with
`latex.to_latex`; the document needs amsmath, amssymb, booktabs, graphicx and
geometry only (texlive-latex-base + texlive-latex-recommended).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import simplify as S
from .ir import Var
from .latex import gradient_latex, name_latex, to_latex
from .network import Layer, Network
from .rules import adjoint

if TYPE_CHECKING:
    from .api import Derivation
    from .recipes import Recipe

__all__ = ["notes_document", "recipe_notes", "layer_function_latex", "network_table_latex", "text_latex"]

# Inputs longer than this (in LaTeX characters) are written a^{(p)} in the table.
_LONG_INPUT = 70
# Claims whose LaTeX is longer than this are shown as written rather than typeset.
_LONG_CLAIM = 320

# ----------------------------------------------------------------------------- text

_TEXT_SPECIALS = {"\\": "\\textbackslash{}", "{": "\\{", "}": "\\}", "#": "\\#", "$": "\\$", "%": "\\%",
                  "&": "\\&", "_": "\\_", "^": "\\textasciicircum{}", "~": "\\textasciitilde{}",
                  "<": "\\textless{}", ">": "\\textgreater{}", "|": "\\textbar{}"}

# Non-ASCII characters that occur in prose and reports, as math (wrapped in \ensuremath).
_UNICODE_MATH = {
    "ᵀ": "^{\\top}", "∘": "\\circ", "⊙": "\\odot", "‖": "\\lVert", "−": "-", "∇": "\\nabla",
    "∂": "\\partial", "×": "\\times", "≠": "\\neq", "≈": "\\approx", "≤": "\\leq", "≥": "\\geq",
    "→": "\\rightarrow", "↦": "\\mapsto", "←": "\\leftarrow", "∈": "\\in", "Σ": "\\Sigma",
    "√": "\\surd", "·": "\\cdot", "ℓ": "\\ell", "∞": "\\infty", "⁻": "^{-}", "½": "\\tfrac12",
    "′": "^{\\prime}", "ŷ": "\\hat{y}", "ⁿ": "^{n}", "ᵢ": "_{i}", "ₖ": "_{k}", "ₗ": "_{l}", "ₘ": "_{m}", "ₙ": "_{n}", "ⱼ": "_{j}",
}
_UNICODE_TEXT = {"—": "---", "–": "--", "“": "``", "”": "''", "‘": "`", "’": "'", "…": "\\ldots{}",
                 "é": "\\'e", "è": "\\`e", "ü": "\\\"u", "ö": "\\\"o", "ä": "\\\"a", "\u00a0": "~"}
_BREAK_AFTER = set("*+-/,(=")
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾", "0123456789()"))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₍₎₊₋", "0123456789()+-"))


def text_latex(s: str) -> str:
    """Plain text (with the Unicode matgrad's reports use) made safe for pdflatex in text mode."""
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if s.startswith("_{", i) and (j := s.find("}", i)) > i:  # ∇_{a₂}: a subscript
            out.append(f"\\ensuremath{{_{{\\text{{{text_latex(s[i + 2:j])}}}}}}}")
            i = j + 1
            continue
        if ch in _SUPER or ch in _SUB:
            table = _SUPER if ch in _SUPER else _SUB
            j = i
            while j < len(s) and s[j] in table:
                j += 1
            run = "".join(table[c] for c in s[i:j])
            out.append(f"\\ensuremath{{{'^' if table is _SUPER else '_'}{{{run}}}}}")
            i = j
            continue
        if ch in _TEXT_SPECIALS:
            out.append(_TEXT_SPECIALS[ch])
        elif ch in _BREAK_AFTER:  # formulas in reports are long words: let them break
            out.append(ch + "\\allowbreak{}")
        elif ch.isascii():
            out.append(ch)
        elif ch in _UNICODE_TEXT:
            out.append(_UNICODE_TEXT[ch])
        elif ch in _UNICODE_MATH:
            out.append(f"\\ensuremath{{{_UNICODE_MATH[ch]}}}")
        else:
            greek = name_latex(ch)
            out.append(f"\\ensuremath{{{greek}}}" if greek.startswith("\\") and "U{+}" not in greek
                       else f"\\texttt{{U+{ord(ch):04X}}}")
        i += 1
    return "".join(out)


def _code(s: str) -> str:
    """matgrad source text in typewriter type."""
    return f"\\texttt{{{text_latex(s)}}}"


# ----------------------------------------------------------------------------- network pieces

def _data_indices(layer: Layer) -> list[int]:
    kids = list(layer.node.children())
    used: list[int] = []
    for z in layer.inputs:
        i = next(k for k, c in enumerate(kids) if c == z and k not in used)
        used.append(i)
    return used


def layer_function_latex(layer: Layer) -> tuple[str, str]:
    """f(z) and f′(z) of a layer as LaTeX, with its data input written z (z_1, z_2 for a join)."""
    if layer.kind == "weight":
        return "z", "1"
    e = layer.node
    kids = list(e.children())
    idx = _data_indices(layer)
    if layer.kind == "join":
        zs = {kids[i]: Var(f"z{n + 1}", kids[i].shape) for n, i in enumerate(idx)}
        return to_latex(e.with_children(tuple(zs.get(c, c) for c in kids))), "\\text{---}"
    z = Var("z", kids[idx[0]].shape)
    kids[idx[0]] = z
    sub = e.with_children(tuple(kids))
    f = to_latex(S.canonical(sub))
    if layer.kind == "activation" and sub.shape == z.shape:
        d = S.simplify(adjoint(sub, S.ones(sub.shape), idx[0]))
        return f, ("1" if d == S.ones(d.shape) else to_latex(d))
    delta = Var("δ", sub.shape)
    return f, "\\delta \\mapsto " + to_latex(S.simplify(adjoint(sub, delta, idx[0])))


def _sup(i: int) -> str:
    return f"^{{({i})}}"


def _consumers(net: Network) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {l.index: [] for l in net.layers}
    for l in net.layers:
        for p in l.parents:
            if p:
                out[p].append(l.index)
    return out


def _delta_rule(net: Network, layer: Layer, consumers: dict[int, list[int]]) -> str:
    """The rule that gives δ of a layer, as the seeds write it in their tables."""
    n = len(net.layers)
    i = layer.index
    above = consumers.get(i, [])
    nxt = " + ".join(f"\\delta{_sup(c)}" for c in above) if above else f"\\delta{_sup(i + 1)}"
    if len(above) > 1:
        nxt = f"({nxt})"
    if layer.kind == "weight" and layer.weight is not None:
        wt = to_latex(S.transpose(layer.weight))
        wt = wt if len(wt) <= 16 else f"W{_sup(i)}^{{\\top}}"
        if layer.side == "left":
            return f"\\left({wt}\\, {nxt}\\right) \\odot 1"
        return f"\\left({nxt}\\, {wt}\\right) \\odot 1"
    if i == n:
        if net.J == "sum" and layer.kind == "activation":
            return f"f'(z{_sup(i)})"
        return f"\\partial J / \\partial z{_sup(i)}"
    if layer.kind == "activation":
        return f"\\left(I^{{\\top}} {nxt}\\right) \\odot f'(z{_sup(i)})"
    return f"\\text{{chain rule through }} f \\text{{ from }} {nxt}"


def _weight_cell(net: Network, layer: Layer) -> str:
    if layer.kind == "weight" and layer.weight is not None:
        w = f"${to_latex(layer.weight)}$"
        return w if layer.side == "left" else w + " (right)"
    if layer.index == len(net.layers):
        return "N/A"
    return "$I$" if layer.kind == "activation" else "---"


def _input_cell(net: Network, layer: Layer) -> str:
    parts = []
    for z, p in zip(layer.inputs, layer.parents):
        t = to_latex(z)
        parts.append(f"a{_sup(p)}" if p and len(t) > _LONG_INPUT else t)
    return ",\\; ".join(f"${p}$" for p in parts)


def network_table_latex(net: Network) -> str:
    """The seeds' table (layer, weight, f, f′, input z, δ) as a booktabs tabular."""
    chain = net.is_chain
    consumers = _consumers(net)
    cols = ["Layer"] + ([] if chain else ["Parents"]) + ["Weight", "Activation $f$", "$f'$",
                                                          "Input $z$", "Delta $\\delta$"]
    rows = []
    for layer in net.layers:
        f, fp = layer_function_latex(layer)
        row = [str(layer.index)]
        if not chain:
            row.append(", ".join("input" if p == 0 else str(p) for p in layer.parents))
        row += [_weight_cell(net, layer), f"$f(z) = {f}$" if layer.kind != "weight" else "$f(z) = z$",
                f"${fp}$", _input_cell(net, layer), f"${_delta_rule(net, layer, consumers)}$"]
        rows.append(" & ".join(row) + " \\\\")
    spec = "l" * len(cols)
    body = "\n".join(rows)
    return (f"\\fitwidth{{\\begin{{tabular}}{{{spec}}}\n\\toprule\n" + " & ".join(cols) + " \\\\\n\\midrule\n"
            + body + "\n\\bottomrule\n\\end{tabular}}")


def _display(math: str) -> str:
    """A display formula, shrunk to the line width when it is wider."""
    return f"\\begin{{center}}\\fitwidth{{$\\displaystyle {math}$}}\\end{{center}}"


# ----------------------------------------------------------------------------- the document

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage{booktabs}
\usepackage{graphicx}
\newsavebox{\mgbox}
\newcommand{\fitwidth}[1]{\sbox{\mgbox}{#1}\ifdim\wd\mgbox>\linewidth\resizebox{\linewidth}{!}{\usebox{\mgbox}}\else\usebox{\mgbox}\fi}
\sloppy
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6ex}
"""


def _gradient_lines(d: "Derivation") -> list[str]:
    out = []
    for name in d.wrt:
        g = d.gradients_ir[name]
        out.append(_display(gradient_latex(name, g)))
        if name in d.absent:
            out.append(f"(${name_latex(name)}$ does not occur in $F$, so its gradient is $0$.)")
    return out


def _claim_latex(expr: str, claim: str, shapes: Any, wrt: str) -> str | None:
    """The claim typeset from its IR, or None when it does not even type-check."""
    from .api import _compile_claim, compile_expression
    from .errors import MatgradError
    try:
        _, variables, _ = compile_expression(expr, shapes)
        return to_latex(_compile_claim(claim, variables, variables[wrt]))
    except MatgradError:
        return None


def notes_document(d: "Derivation", *, title: str | None = None, recipe: "Recipe | None" = None,
                   verify: bool = True, seed: int = 0) -> str:
    """A complete LaTeX document explaining the derivation `d`."""
    net = d.network
    title = title or "The gradient of $" + to_latex(d.expr) + "$"
    parts = [_PREAMBLE, f"\\title{{{title}}}", "\\author{matgrad}", "\\date{}", "\\begin{document}", "\\maketitle"]
    if recipe is not None:
        parts.append(f"\\textbf{{Source.}} {text_latex(recipe.source)}\n")
        for para in recipe.prose.split("\n\n"):
            parts.append(text_latex(" ".join(para.split())) + "\n")

    parts.append("\\section*{The function}")
    parts.append(_display("F = " + to_latex(d.expr)))
    parts.append("In matgrad's language: " + _code(d.text) + ". Gradients with respect to "
                 + ", ".join(f"${name_latex(n)}$" for n in d.wrt) + ".")

    parts.append("\\section*{The network}")
    parts.append("Each layer does one thing: it applies a weight ($f(z) = z$) or an activation $f$ "
                 "(with weight $I$). $z^{(l)}$ is the input of layer $l$, $a^{(l)}$ its output and "
                 "$\\delta^{(l)} = \\partial J / \\partial z^{(l)}$.")
    parts.append("\\begin{center}\n" + network_table_latex(net) + "\n\\end{center}")
    n = len(net.layers)
    top = f"a^{{({n})}}" if n else "z"
    parts.append(f"$J(z) = \\sum_k {top}_k$, the sum of the last layer's activations." if net.J == "sum"
                 else f"$J = {top}$: the last layer's output is the function's value.")
    if not net.is_chain:
        parts.append(" The expression is not a chain: each layer lists the layers it takes input from.")

    parts.append("\\section*{The deltas, layer by layer}")
    parts.append("From the output back:")
    consumers = _consumers(net)
    for layer in reversed(net.layers):
        delta = net.deltas.get(layer.index)
        value = to_latex(delta) if delta is not None else "\\text{---}"
        parts.append(_display(f"\\delta{_sup(layer.index)} = {_delta_rule(net, layer, consumers)} = {value}"))

    parts.append("\\section*{The gradient}")
    tied = [n for n in d.wrt if len({c.via for c in d.adjoints.contributions if c.variable == n}) > 1]
    if tied:
        parts.append(", ".join(f"${name_latex(n)}$" for n in tied)
                     + " occurs more than once: its gradient is the sum of the gradients through each "
                       "occurrence (transposed for an occurrence as a transpose).")
    parts += _gradient_lines(d)

    if verify and len(d.absent) < len(d.wrt):
        report = d.verify(seed=seed)
        parts.append("\\section*{Verification}")
        parts.append(text_latex(str(report)))

    if recipe is not None and recipe.printed:
        parts.append("\\section*{As the source prints it}")
        parts.append("\\begin{itemize}")
        for c in recipe.check_printed(seed=seed):
            lhs = f"\\nabla_{{{name_latex(c.wrt)}}} F"
            math = _claim_latex(recipe.expression, c.claim, recipe.shapes, c.wrt)
            if math is not None and len(math) <= _LONG_CLAIM:
                shown = _display(f"{lhs} = {math}")
            else:  # a long claim (where-bindings inlined) reads better as written
                shown = f"${lhs}$ = " + _code(c.claim)
            if c.which == "printed" and not c.expected_ok:
                verdict = ("\\textbf{Printed, with a typo} --- rejected:" if not c.accepted
                           else "\\textbf{Printed, recorded as a typo, but accepted:}")
            elif c.which == "corrected":
                verdict = "\\textbf{Corrected}" + (" --- accepted:" if c.accepted else " --- rejected!")
            else:
                verdict = "\\textbf{Printed}" + (" --- accepted:" if c.accepted else " --- rejected:")
            parts.append(f"\\item {verdict}\n{shown}\n{{\\small {text_latex(c.message)}}}")
        parts.append("\\end{itemize}")

    parts.append("\\end{document}\n")
    return "\n\n".join(parts)


def recipe_notes(recipe: "Recipe", *, verify: bool = True, seed: int = 0) -> str:
    return notes_document(recipe.derive(), title=text_latex(recipe.title), recipe=recipe,
                          verify=verify, seed=seed)


# ----------------------------------------------------------------------------- HTML (Jupyter)

def derivation_html(d: "Derivation") -> str:
    """The network table and the gradients as an HTML fragment (Derivation._repr_html_)."""
    from html import escape

    from .printers import to_text
    net = d.network
    chain = net.is_chain
    heads = ["Layer"] + ([] if chain else ["Parents"]) + ["Weight", "Activation f", "f′", "Input z", "Delta δ"]
    rows = []
    for layer in net.layers:
        delta = net.deltas.get(layer.index)
        if layer.kind == "weight" and layer.weight is not None:
            weight = to_text(layer.weight) + (" (right)" if layer.side == "right" else "")
        else:
            weight = "N/A" if layer.index == len(net.layers) else ("I" if layer.kind == "activation" else "—")
        cells = [str(layer.index)]
        if not chain:
            cells.append(", ".join("input" if p == 0 else str(p) for p in layer.parents))
        cells += [weight, layer.f, layer.f_prime, " , ".join(to_text(z) for z in layer.inputs),
                  to_text(delta, name_shared=True) if delta is not None else ""]
        rows.append("<tr>" + "".join(f"<td><code>{escape(c)}</code></td>" for c in cells) + "</tr>")
    grads = "".join(f"<li><code>∇_{escape(n)} F = {escape(d.gradient_text(n))}</code></li>" for n in d.wrt)
    return ("<div class=\"matgrad-derivation\">"
            f"<p><b>F</b> = <code>{escape(to_text(d.expr))}</code></p>"
            "<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>"
            f"<ul>{grads}</ul></div>")
