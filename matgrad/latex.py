"""LaTeX rendering of IR expressions and gradients.

`to_latex` turns an expression into math-mode LaTeX that needs only amsmath and
amssymb. Notation: matrix products by juxtaposition (`2 A^{\\top} (A s - x)`),
scalar coefficients first, negative terms as subtraction, `\\odot` / `\\oslash`
for entrywise product and division, `X^{\\circ 2}` for entrywise powers of
matrices, `\\sqrt{X}` for the (entrywise, when X is a matrix) square root,
`\\lVert E \\rVert` sugar for norms, and the usual operator names.

Parentheses are inserted only where precedence requires them:
sum < product (juxtaposition, ⊙, ⊘) < unary minus < postfix (ᵀ, powers, ⁻¹) < atom.
Juxtaposition and ⊙ do not associate with each other, so each parenthesises
the other.

The renderer never recurses on the tree: every distinct subexpression is
rendered once, bottom-up over `ir.postorder`, into a "rope" (nested tuples of
strings that share their children's ropes), and the rope is flattened by an
explicit stack at the end. Deep or heavily shared expressions therefore cost
neither Python stack nor quadratic copying.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence, Union

from . import ir
from .errors import LimitError
from .ir import (Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity,
                 Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace,
                 Transpose, Var)

__all__ = ["to_latex", "gradient_latex", "name_latex", "DEFAULT_MAX_CHARS"]

# Output larger than this is refused: an expression with heavy sharing can
# expand to a tree exponentially larger than its DAG.
DEFAULT_MAX_CHARS = 2_000_000

# Precedence levels (higher binds tighter).
SUM, PROD, NEG, POST, ATOM = 1, 2, 3, 4, 5

Rope = Union[str, tuple["Rope", ...]]


@dataclass(frozen=True)
class _R:
    """A rendered subexpression: its text (as a rope) and what its context needs to know."""
    rope: Rope
    length: int
    prec: int
    kind: str = "other"          # "add", "mul" (juxtaposition), "had" (⊙/⊘) or "other"
    neg_abs: "_R | None" = None  # set when the text is "-" followed by this rendering
    numeric: bool = False        # starts with a number: must not follow a factor by juxtaposition
    lsep: bool = False           # starts with a multi-letter token: wants `\,` before it in a product
    rsep: bool = False           # ends with a multi-letter token or a call: wants `\,` after it
    sup: bool = False            # ends with a superscript: another one needs parentheses first
    tall: bool = False           # contains \frac or \sqrt: use \left( \right)
    lead_minus: bool = False     # text starts with a minus sign


def _join(parts: Sequence[str | _R], prec: int, **flags: object) -> _R:
    """Concatenate strings and renderings; `tall` is inherited unless given."""
    rope = tuple(p if isinstance(p, str) else p.rope for p in parts)
    length = sum(len(p) if isinstance(p, str) else p.length for p in parts)
    if "tall" not in flags:
        flags["tall"] = any(isinstance(p, _R) and p.tall for p in parts)
    return _R(rope, length, prec, **flags)  # type: ignore[arg-type]


def _leaf(text: str, prec: int = ATOM, **flags: object) -> _R:
    return _R(text, len(text), prec, **flags)  # type: ignore[arg-type]


def _paren(r: _R) -> _R:
    """`(r)`, sized with \\left/\\right when r contains fractions or roots."""
    if r.tall:
        return _join(["\\left(", r, "\\right)"], ATOM, tall=True)
    return _join(["(", r, ")"], ATOM)


def _delimited(open_: str, r: _R, close: str, pad: bool = False) -> list[str | _R]:
    """r between delimiters (spaced inside when `pad`), sized with \\left/\\right when r is tall."""
    if r.tall:
        open_, close = "\\left" + open_, "\\right" + close
    if pad:
        open_, close = open_ + " ", " " + close
    return [open_, r, close]


def _call(op: str, arg: _R) -> _R:
    """An operator applied with parentheses: `\\operatorname{tr}(A)`."""
    return _join([op, *_delimited("(", arg, ")")], ATOM, rsep=True)


def _split_sign(r: _R) -> tuple[int, _R]:
    return (-1, r.neg_abs) if r.neg_abs is not None else (1, r)


def _negate(r: _R) -> _R:
    """`-r`; r is a rendering without a leading minus."""
    body = r if r.prec > SUM else _paren(r)
    return _join(["-", body], NEG, neg_abs=r, numeric=r.numeric, rsep=r.rsep, sup=r.sup,
                 lead_minus=True)


def _postfix_base(r: _R) -> _R:
    """The operand of a superscript: an atom that does not already end in one."""
    return r if r.prec == ATOM and not r.sup and not r.lead_minus else _paren(r)


# ----------------------------------------------------------------------------- names

_GREEK_WORDS = {w: "\\" + w for w in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon phi chi psi omega varepsilon vartheta varphi varrho varsigma varpi "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()}
_GREEK_WORDS["eps"] = "\\epsilon"

_GREEK_CHARS = {
    "α": "\\alpha", "β": "\\beta", "γ": "\\gamma", "δ": "\\delta", "ε": "\\epsilon",
    "ϵ": "\\epsilon", "ζ": "\\zeta", "η": "\\eta", "θ": "\\theta", "ϑ": "\\vartheta",
    "ι": "\\iota", "κ": "\\kappa", "λ": "\\lambda", "μ": "\\mu", "ν": "\\nu", "ξ": "\\xi",
    "ο": "o", "π": "\\pi", "ϖ": "\\varpi", "ρ": "\\rho", "ϱ": "\\varrho", "σ": "\\sigma",
    "ς": "\\varsigma", "τ": "\\tau", "υ": "\\upsilon", "φ": "\\phi", "ϕ": "\\phi",
    "χ": "\\chi", "ψ": "\\psi", "ω": "\\omega",
    "Γ": "\\Gamma", "Δ": "\\Delta", "Θ": "\\Theta", "Λ": "\\Lambda", "Ξ": "\\Xi",
    "Π": "\\Pi", "Σ": "\\Sigma", "Υ": "\\Upsilon", "Φ": "\\Phi", "Ψ": "\\Psi", "Ω": "\\Omega",
    # Capitals that look like Latin letters have no LaTeX command.
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X",
}

_TRAILING_DIGITS = re.compile(r"^(.*?\D)(\d+)$")


def _char_latex(ch: str) -> str:
    """One character of a name, made safe for math mode under pdflatex."""
    if ch.isascii() and (ch.isalnum() or ch == "'"):
        return ch
    if ch in _GREEK_CHARS:
        return _GREEK_CHARS[ch]
    # pdflatex cannot typeset arbitrary Unicode in math: show the code point instead.
    return f"\\mathrm{{U{{+}}{ord(ch):04X}}}"


def _word_latex(word: str) -> tuple[str, bool]:
    """A name part without subscript: (latex, is it a multi-letter word)."""
    if word in _GREEK_WORDS:
        return _GREEK_WORDS[word], False
    if len(word) == 1:
        return _char_latex(word), False
    if word.isdigit():
        return word, False
    # Longer words go upright; a command inside needs a space so "\\gammay" cannot form.
    inner = "".join(t + " " if t.startswith("\\") and not t.startswith("\\mathrm") else t
                    for t in map(_char_latex, word)).rstrip()
    return f"\\mathrm{{{inner}}}", True


def _name_parts(name: str) -> tuple[str, bool]:
    """(latex, multi-letter) for a variable name: Greek, subscripts, upright words."""
    base, subs = name, []
    if "_" in name.strip("_"):
        head, *rest = name.split("_")
        if head:
            base, subs = head, [p for p in rest if p]
    elif (m := _TRAILING_DIGITS.match(name)) is not None:
        base, subs = m.group(1), [m.group(2)]
    if "_" in base:
        # Leading/trailing underscores: keep the whole name, escaped, upright.
        inner = "".join("\\_" if c == "_" else _char_latex(c) for c in base)
        return f"\\mathrm{{{inner}}}", True
    text, wide = _word_latex(base)
    if subs:
        text += "_{" + ",".join(_word_latex(s)[0] for s in subs) + "}"
    return text, wide


def name_latex(name: str) -> str:
    """LaTeX for a variable name: `gamma`→`\\gamma`, `W1`/`W_1`→`W_{1}`, `foo`→`\\mathrm{foo}`."""
    return _name_parts(name)[0]


# ----------------------------------------------------------------------------- numbers

def _int_leaf(n: int) -> _R:
    return _leaf(str(n), ATOM, numeric=True)


def _number(v: Fraction) -> _R:
    """A non-negative rational: `3` or `\\frac{1}{2}`."""
    if v.denominator == 1:
        return _int_leaf(v.numerator)
    # A fraction is not an atom: a superscript on it needs parentheses.
    return _leaf(f"\\frac{{{v.numerator}}}{{{v.denominator}}}", POST, numeric=True, tall=True)


def _const(v: Fraction) -> _R:
    return _negate(_number(-v)) if v < 0 else _number(v)


def _exponent_text(e: Fraction) -> str:
    return str(e.numerator) if e.denominator == 1 else f"{e.numerator}/{e.denominator}"


# ----------------------------------------------------------------------------- composite pieces

_ONE = _leaf("\\mathbf{1}")


def _power(base: _R, e: Fraction, scalar: bool) -> _R:
    """base raised to e: ordinary power for a scalar, entrywise (∘) for a matrix."""
    if e == Fraction(1, 2):
        return _join(["\\sqrt{", base, "}"], POST, tall=True)
    if scalar and e < 0:
        inner = _reciprocal_body(base, -e, True)
        return _join(["\\frac{1}{", inner, "}"], POST, tall=True)
    b = _postfix_base(base)
    sup = f"^{{{_exponent_text(e)}}}" if scalar else f"^{{\\circ {_exponent_text(e)}}}"
    return _join([b, sup], POST, sup=True, numeric=b.numeric, lsep=b.lsep)


def _reciprocal_body(base: _R, e: Fraction, scalar: bool) -> _R:
    """What goes under a fraction bar or after ⊘ for the factor base^(-e), e > 0."""
    return base if e == 1 else _power(base, e, scalar)


def _superscript(base: _R, sup: str) -> _R:
    b = _postfix_base(base)
    return _join([b, f"^{{{sup}}}"], POST, sup=True, numeric=b.numeric, lsep=b.lsep)


def _product(parts: list[_R], force_wrap: list[bool] | None = None) -> _R:
    """Juxtapose sign-free factors, parenthesising those that would be misread."""
    if len(parts) == 1 and not (force_wrap and force_wrap[0]):
        return parts[0]
    pieces: list[str | _R] = []
    shown: list[_R] = []
    for i, f in enumerate(parts):
        wrap = (f.prec in (SUM, NEG) or f.kind == "had" or f.lead_minus
                or (force_wrap is not None and force_wrap[i]))
        g = _paren(f) if wrap else f
        if shown:
            prev = shown[-1]
            if g.numeric:
                pieces.append(" \\cdot ")  # "A 2" or "2 3" would be misread
            elif prev.rsep or g.lsep:
                pieces.append("\\, ")
            else:
                pieces.append(" ")
        pieces.append(g)
        shown.append(g)
    return _join(pieces, PROD, kind="mul", numeric=shown[0].numeric, lsep=shown[0].lsep,
                 rsep=shown[-1].rsep, sup=shown[-1].sup)


def _norm(e: _R, sub: str, squared: bool) -> _R:
    body = _join(_delimited("\\lVert", e, "\\rVert", pad=True), ATOM)
    text: list[str | _R] = [body]
    if sub:
        text.append(f"_{{{sub}}}")
    if squared:
        text.append("^{2}")
        return _join(text, POST, sup=True)
    return _join(text, ATOM)


def _norm_subscript(e: Expr) -> str:
    """`F` for a matrix with no dimension 1 (the Frobenius norm), else nothing."""
    return "F" if 1 not in e.shape else ""


# ----------------------------------------------------------------------------- node renderers

_FUNC_OPS = {
    "exp": "\\exp", "log": "\\log", "sin": "\\sin", "cos": "\\cos", "tanh": "\\tanh",
    "sigmoid": "\\sigma", "softplus": "\\operatorname{softplus}",
    "relu": "\\operatorname{relu}", "sign": "\\operatorname{sign}",
    "step": "\\operatorname{step}",
}


def _render_add(e: Add, memo: dict[Expr, _R]) -> _R:
    if len(e.terms) == 1:
        return memo[e.terms[0]]
    pieces: list[str | _R] = []
    for i, t in enumerate(e.terms):
        r = memo[t]
        sign, a = _split_sign(r)
        if i == 0:
            pieces.append(r)
        elif sign < 0:
            pieces += [" - ", a if a.prec > SUM else _paren(a)]
        elif r.lead_minus:
            # A nested sum starting with a minus: keep it grouped rather than print "+ -".
            pieces += [" + ", _paren(r)]
        else:
            pieces += [" + ", r]
    first = memo[e.terms[0]]
    return _join(pieces, SUM, kind="add", lead_minus=first.lead_minus, numeric=first.numeric,
                 lsep=first.lsep, rsep=memo[e.terms[-1]].rsep)


def _render_mul(e: Mul, memo: dict[Expr, _R]) -> _R:
    coef = Fraction(1)
    sign = 1
    num: list[tuple[_R, bool]] = []   # (rendering, is a scalar product like xᵀy)
    den: list[_R] = []
    chain: list[_R] = []
    for f in e.factors:
        if isinstance(f, Const):
            coef *= f.value
            continue
        if f.is_scalar and isinstance(f, Power) and f.exponent < 0:
            den.append(_reciprocal_body(memo[f.arg], -f.exponent, True))
            continue
        s, a = _split_sign(memo[f])
        sign *= s
        if f.is_scalar:
            num.append((a, a.kind == "mul"))
        else:
            chain.append(a)
    if coef < 0:
        sign, coef = -sign, -coef
    p, q = coef.numerator, coef.denominator

    parts: list[_R] = []
    wraps: list[bool] = []
    if den:
        numer = ([_int_leaf(p)] if p != 1 or not num else []) + [r for r, _ in num]
        denom = ([_int_leaf(q)] if q != 1 else []) + den
        frac = _join(["\\frac{", _product(numer), "}{", _product(denom), "}"], POST,
                     numeric=not num, tall=True)
        parts, wraps = [frac], [False]
    else:
        if coef != 1 or not (num or chain):
            parts.append(_number(coef))
            wraps.append(False)
        for r, is_product in num:
            parts.append(r)
            # "xᵀy A" would read as one chain; the scalar product needs grouping.
            wraps.append(is_product and bool(chain))
    parts += chain
    wraps += [False] * len(chain)
    res = _product(parts, wraps)
    return _negate(res) if sign < 0 else res


def _render_hadamard(e: Hadamard, memo: dict[Expr, _R]) -> _R:
    sign = 1
    num: list[_R] = []
    den: list[_R] = []
    for f in e.factors:
        if isinstance(f, Power) and f.exponent < 0:
            den.append(_reciprocal_body(memo[f.arg], -f.exponent, e.is_scalar))
            continue
        s, a = _split_sign(memo[f])
        sign *= s
        num.append(a)
    if not den and len(num) == 1:
        res = num[0]
    else:
        pieces: list[str | _R] = []
        # ⊙ and ⊘ are associative-commutative entrywise, so a nested ⊙/⊘ needs no
        # parentheses in a numerator position, only in a denominator.
        for i, a in enumerate(num):
            if i:
                pieces.append(" \\odot ")
            pieces.append(_paren(a) if (a.prec <= NEG and a.kind != "had") or a.lead_minus else a)
        if not num:
            pieces.append(_ONE)
        for d in den:
            pieces += [" \\oslash ", _paren(d) if d.prec <= NEG or d.lead_minus else d]
        first = pieces[0]
        assert isinstance(first, _R)
        res = _join(pieces, PROD, kind="had", numeric=first.numeric, lsep=first.lsep,
                    rsep=isinstance(pieces[-1], _R) and pieces[-1].rsep)
    return _negate(res) if sign < 0 else res


def _render_fill(e: Fill, memo: dict[Expr, _R]) -> _R:
    if isinstance(e.value, Const) and e.value.value == 0:
        return _int_leaf(0)
    if isinstance(e.value, Const) and e.value.value == 1:
        return _ONE
    sign, a = _split_sign(memo[e.value])
    if a.prec <= NEG or a.kind == "mul" or a.lead_minus:
        a = _paren(a)
    res = _join([a, "\\,", _ONE], PROD, kind="mul", numeric=a.numeric, lsep=a.lsep)
    return _negate(res) if sign < 0 else res


def _render_transpose(e: Transpose, memo: dict[Expr, _R]) -> _R:
    # (X⁻¹)ᵀ prints as X^{-⊤}, the usual shorthand.
    if isinstance(e.arg, Inverse):
        inner = memo[e.arg.arg]
        if _postfix_base(inner) is inner:
            return _superscript(inner, "-\\top")
    return _superscript(memo[e.arg], "\\top")


def _render_inverse(e: Inverse, memo: dict[Expr, _R]) -> _R:
    if isinstance(e.arg, Transpose):
        inner = memo[e.arg.arg]
        if _postfix_base(inner) is inner:
            return _superscript(inner, "-\\top")
    return _superscript(memo[e.arg], "-1")


def _render_power(e: Power, memo: dict[Expr, _R]) -> _R:
    a = e.arg
    if (e.exponent == Fraction(1, 2) and isinstance(a, Sum) and isinstance(a.arg, Power)
            and a.arg.exponent == 2 and not a.arg.arg.is_scalar):
        inner = a.arg.arg
        return _norm(memo[inner], _norm_subscript(inner), squared=False)
    return _power(memo[a], e.exponent, e.is_scalar)


def _render_sum(e: Sum, memo: dict[Expr, _R]) -> _R:
    a = e.arg
    if isinstance(a, Power) and a.exponent == 2 and not a.arg.is_scalar:
        return _norm(memo[a.arg], _norm_subscript(a.arg), squared=True)
    if isinstance(a, Func) and a.name == "abs" and not a.arg.is_scalar:
        return _norm(memo[a.arg], "1", squared=False)
    return _call("\\operatorname{sum}", memo[a])


def _render_node(e: Expr, memo: dict[Expr, _R]) -> _R:
    """Render one node from its children's renderings (already in memo)."""
    if isinstance(e, Var):
        text, wide = _name_parts(e.name)
        return _leaf(text, ATOM, lsep=wide, rsep=wide)
    if isinstance(e, Const):
        return _const(e.value)
    if isinstance(e, Identity):
        return _leaf("I")
    if isinstance(e, Fill):
        return _render_fill(e, memo)
    if isinstance(e, Add):
        return _render_add(e, memo)
    if isinstance(e, Mul):
        return _render_mul(e, memo)
    if isinstance(e, Transpose):
        return _render_transpose(e, memo)
    if isinstance(e, Hadamard):
        return _render_hadamard(e, memo)
    if isinstance(e, Power):
        return _render_power(e, memo)
    if isinstance(e, Func):
        arg = memo[e.arg]
        if e.name == "abs":
            return _join(_delimited("\\lvert", arg, "\\rvert", pad=True), ATOM)
        return _call(_FUNC_OPS[e.name], arg)
    if isinstance(e, Sum):
        return _render_sum(e, memo)
    if isinstance(e, Trace):
        return _call("\\operatorname{tr}", memo[e.arg])
    if isinstance(e, Det):
        return _call("\\det", memo[e.arg])
    if isinstance(e, LogDet):
        return _call("\\log\\det", memo[e.arg])
    if isinstance(e, Inverse):
        return _render_inverse(e, memo)
    if isinstance(e, MatPow):
        return _superscript(memo[e.arg], str(e.k))
    if isinstance(e, (DiagMat, DiagVec)):
        return _call("\\operatorname{diag}", memo[e.arg])
    if isinstance(e, Softmax):
        return _call("\\operatorname{softmax}", memo[e.arg])
    if isinstance(e, LogSumExp):
        return _call("\\operatorname{logsumexp}", memo[e.arg])
    raise ir.IRError(f"latex: unknown node {type(e).__name__}")


def _render(expr: Expr, max_chars: int) -> _R:
    memo: dict[Expr, _R] = {}
    for e in ir.postorder(expr):
        r = _render_node(e, memo)
        if r.length > max_chars:
            raise LimitError(f"the LaTeX of this expression would exceed {max_chars} characters",
                             hint="simplify it first, or print it as text")
        memo[e] = r
    return memo[expr]


def _flatten(rope: Rope) -> str:
    """The rope's text, by an explicit stack (ropes can be arbitrarily deep)."""
    out: list[str] = []
    stack: list[Rope] = [rope]
    while stack:
        p = stack.pop()
        if isinstance(p, str):
            out.append(p)
        else:
            stack.extend(reversed(p))
    return "".join(out)


# ----------------------------------------------------------------------------- public API

def to_latex(expr: Expr, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Math-mode LaTeX for `expr` (needs only amsmath and amssymb).

    Raises LimitError when the text would be longer than `max_chars`.
    """
    return _flatten(_render(expr, max_chars).rope)


def gradient_latex(wrt: str, grad: Expr, f: Expr | None = None, *,
                   max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """`\\nabla_{W} F = …` for a matrix or vector `wrt`, `\\frac{\\partial F}{\\partial w} = …` for a scalar.

    `grad` has the shape of `wrt`, which tells whether `wrt` is a scalar. When `f` is
    given it replaces the placeholder `F`.
    """
    w = name_latex(wrt)
    rhs = _render(grad, max_chars)
    lhs_f = ""
    if f is not None:
        fr = _render(f, max_chars)
        # "∇ₓ xᵀ A x" would apply ∇ to xᵀ only: group anything looser than a postfix.
        fr = fr if fr.prec >= POST and not fr.lead_minus else _paren(fr)
        lhs_f = _flatten(fr.rope)
    if grad.is_scalar:
        lhs = (f"\\frac{{\\partial}}{{\\partial {w}}} {lhs_f}" if f is not None
               else f"\\frac{{\\partial F}}{{\\partial {w}}}")
    else:
        lhs = f"\\nabla_{{{w}}} {lhs_f}" if f is not None else f"\\nabla_{{{w}}} F"
    return f"{lhs} = {_flatten(rhs.rope)}"
