"""IR → text in matgrad's own input language, so any printed result can be fed back
(to `matgrad check --claim`, to `derive` again).

Parentheses follow the grammar's precedence; norms are printed in their sugared
form; repeated sums can be named with `where` (`to_text(e, name_shared=True)`).
Iterative over `ir.postorder`, so deep expressions print without recursion.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from .errors import LimitError
from .limits import MAX_TEXT_CHARS
from .ir import (
    Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity, Inverse, LogDet,
    LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace, Transpose, Var, postorder, variables,
)

# Precedence: higher binds tighter.
# A power (x^2, X^3, ||x||^2) binds looser than ' and cannot itself be the base of another
# power or be transposed without parentheses: (x^2)', (||x||^2)^3.
SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6


def format_number(v: Fraction) -> tuple[str, int]:
    """A number and its precedence: integers and short decimals are atoms, p/q is a quotient."""
    if v.denominator == 1:
        return str(v.numerator), (UNARY if v < 0 else ATOM)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        s = f"{float(v):.6g}"
        if Fraction(s) == v and "e" not in s:
            return s, (UNARY if v < 0 else ATOM)
    return f"{v.numerator}/{v.denominator}", PRODUCT


def _norm_sugar(e: Expr) -> tuple[str, Expr] | None:
    """Recognise ||E||^2, ||E||, ||E||^k and ||E||_1: (kind, E)."""
    if isinstance(e, Sum) and isinstance(e.arg, Power) and e.arg.exponent == 2:
        return "^2", e.arg.arg
    if isinstance(e, Sum) and isinstance(e.arg, Func) and e.arg.name == "abs":
        return "_1", e.arg.arg
    if isinstance(e, Power) and e.exponent == Fraction(1, 2) and isinstance(e.arg, Sum) \
            and isinstance(e.arg.arg, Power) and e.arg.arg.exponent == 2:
        return "", e.arg.arg.arg
    if isinstance(e, Power) and (2 * e.exponent).denominator == 1 and isinstance(e.arg, Sum) \
            and isinstance(e.arg.arg, Power) and e.arg.arg.exponent == 2:
        return f"^{int(2 * e.exponent)}", e.arg.arg.arg  # ||E||^k = (sum(E.^2))^(k/2)
    return None


_CALLS = {Trace: "tr", Sum: "sum", Det: "det", LogDet: "logdet", Inverse: "inv", DiagMat: "diag",
          DiagVec: "diag", Softmax: "softmax", LogSumExp: "logsumexp"}


def _render(root: Expr, names: dict[Expr, str] | None = None) -> str:
    return _render_all(root, names)[root][0]


def _render_all(root: Expr, names: dict[Expr, str] | None = None) -> dict[Expr, tuple[str, int]]:
    """The text of every subexpression; LimitError when one would exceed MAX_TEXT_CHARS."""
    names = names or {}
    out: dict[Expr, tuple[str, int]] = {}

    def wrap(e: Expr, min_prec: int) -> str:
        s, p = out[e]
        return f"({s})" if p < min_prec else s

    for e in postorder(root):
        if e in names and e is not root:
            out[e] = (names[e], ATOM)
            continue
        if e is not root and isinstance(e, Fill) and isinstance(e.value, Const) and e.value.value == 0 \
                and not e.is_scalar:
            # A zero matrix inside an expression keeps its shape: softmax(0*ones), not softmax(0).
            r, c = e.dims
            out[e] = ("0*" + ("ones" if c == 1 else ("ones'" if r == 1 else "ones*ones'")), PRODUCT)
            continue
        out[e] = _render_node(e, out, wrap)
        if len(out[e][0]) > MAX_TEXT_CHARS:
            raise LimitError(f"the text of this expression would exceed {MAX_TEXT_CHARS} characters",
                             hint="the expression is too large to print")
    return out


def _exponent(p: Fraction) -> str:
    if p.denominator == 1:
        return str(p.numerator)
    return f"({p.numerator}/{p.denominator})"


def _render_node(e: Expr, out: dict[Expr, tuple[str, int]], wrap) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    sugar = _norm_sugar(e)
    if sugar:
        kind, inner = sugar
        body = f"||{out[inner][0]}||"
        if kind.startswith("^"):
            return body + kind, POWER
        return body + kind, ATOM
    if isinstance(e, Var):
        return e.name, ATOM
    if isinstance(e, Const):
        return format_number(e.value)
    if isinstance(e, Identity):  # a 1×1 identity is the number 1 (I alone would read back as n×n)
        return ("1" if e.n == 1 else "I"), ATOM
    if isinstance(e, Fill):
        r, c = e.dims
        shape_word, prec = ("ones", ATOM) if c == 1 else (("ones'", POSTFIX) if r == 1 else ("ones*ones'", PRODUCT))
        if isinstance(e.value, Const) and e.value.value == 0:
            return "0", ATOM
        if isinstance(e.value, Const) and e.value.value == 1:
            return shape_word, prec
        plain = isinstance(e.value, Mul) and not e.value.chain  # 2*sum(X)*ones*ones', no parentheses
        return f"{wrap(e.value, PRODUCT if plain else PRODUCT + 1)}*{shape_word}", PRODUCT
    if isinstance(e, Add):
        parts: list[str] = []
        for i, t in enumerate(e.terms):
            negative, body = _signed_term(t, out, wrap)
            if i == 0:
                parts.append(("-" + body) if negative else body)
            else:
                parts.append((" - " if negative else " + ") + body)
        return "".join(parts), SUM
    if isinstance(e, Mul):
        return _render_mul(e, out, wrap)
    if isinstance(e, Transpose):
        return wrap(e.arg, POSTFIX) + "'", POSTFIX
    if isinstance(e, Hadamard):
        num = [f for f in e.factors if not (isinstance(f, Power) and f.exponent < 0)]
        den = [f for f in e.factors if isinstance(f, Power) and f.exponent < 0]
        r, c = e.shape  # with no numerator, 1 ./ X is a matrix of ones of X's shape
        ones = "ones" if c == 1 else ("ones'" if r == 1 else "ones*ones'")
        s = " .* ".join(wrap(f, PRODUCT + 1) for f in num) if num else ones
        for d in den:
            assert isinstance(d, Power)
            base = d.arg if d.exponent == -1 else Power(d.arg, -d.exponent)
            s += " ./ " + (wrap(base, PRODUCT + 1) if base in out else _render_power(base, out, wrap)[0])
        return s, PRODUCT
    if isinstance(e, Power):
        return _render_power(e, out, wrap)
    if isinstance(e, Func):
        return f"{e.name}({out[e.arg][0]})", ATOM
    if isinstance(e, MatPow):
        return f"{wrap(e.arg, POSTFIX)}^{e.k}", POWER
    name = _CALLS.get(type(e))
    if name:
        return f"{name}({out[e.children()[0]][0]})", ATOM
    raise TypeError(f"no text printer for {type(e).__name__}")  # pragma: no cover


def _render_power(e: Power, out, wrap) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    base = wrap(e.arg, POSTFIX) if e.arg in out else "?"
    if e.exponent == Fraction(1, 2):
        return f"sqrt({out[e.arg][0]})", ATOM
    if e.exponent == -1 and not e.is_scalar:  # the entrywise reciprocal
        return f"1 ./ {wrap(e.arg, PRODUCT + 1)}", PRODUCT
    op = "^" if e.is_scalar else ".^"
    return f"{base}{op}{_exponent(e.exponent)}", POWER


def _signed_term(t: Expr, out, wrap) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """Split a leading minus off a term so sums print as a - b."""
    if isinstance(t, Const) and t.value < 0:
        return True, format_number(-t.value)[0]
    if isinstance(t, Mul) and isinstance(t.factors[0], Const) and t.factors[0].value < 0:
        coef = -t.factors[0].value
        rest = t.factors[1:]
        s, p = _render_mul(Mul(((Const(coef),) if coef != 1 else ()) + rest) if (coef != 1 or len(rest) > 1)
                           else rest[0], out, wrap, allow_single=True)
        return True, (f"({s})" if p <= SUM else s)  # a - (b + c), never a - b + c
    if isinstance(t, Fill):  # a scalar added to every entry prints as itself: a + eps, 1 - y
        if isinstance(t.value, Const) and t.value.value < 0:
            return True, format_number(-t.value.value)[0]
        return False, wrap(t.value, SUM + 1)
    s, p = out[t]
    return False, (f"({s})" if p <= SUM else s)


def _render_mul(e: Expr, out, wrap, allow_single: bool = False) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    if not isinstance(e, Mul):
        s, p = out[e] if e in out else _render_node(e, out, wrap)
        return s, p
    factors = list(e.factors)
    prefix = ""
    if isinstance(factors[0], Const) and factors[0].value == -1 and len(factors) > 1:
        prefix = "-"
        factors = factors[1:]
    # Scalar factors with a negative exponent print as a division at the end: a*b/c,
    # x/||x||, x/(x'*x)^(3/2).
    divisors = [f for f in factors if f.is_scalar and isinstance(f, Power) and f.exponent < 0
                and len(factors) > 1]
    factors = [f for f in factors if f not in divisors]
    pieces = []
    many = len(factors) + len(divisors) > 1
    chain = [f for f in factors if not f.is_scalar]
    # A chain of three or more transposed factors reads shorter with one transpose outside:
    # -inv(X)'*A'*B'*inv(X)' prints -(inv(X)*B*A*inv(X))' (it parses back to the same form).
    # (A row vector keeps its leaf transposes: x'*B'*A'.)
    flip = len(chain) >= 3 and all(isinstance(f, Transpose) for f in chain) and chain[0].shape[0] != 1
    flipped = False
    for f in factors:
        if flip and not f.is_scalar:
            if not flipped:
                flipped = True
                inner = _render_mul(Mul(tuple(g.arg for g in reversed(chain))), out, wrap)[0]  # type: ignore[attr-defined]
                pieces.append(f"({inner})'")
            continue
        s, p = out[f] if f in out else _render_node(f, out, wrap)
        scalar_product = isinstance(f, Mul) and f.is_scalar and bool(f.chain) and many
        if p <= PRODUCT and not (f is factors[0] and isinstance(f, Const)) or scalar_product:
            s = f"({s})"
        pieces.append(s)
    if not pieces:  # only divisors: 1/(x'*x), -1/log(gamma)^2/gamma
        pieces.append("1")
    s = prefix + "*".join(pieces)
    for d in divisors:
        assert isinstance(d, Power)
        den = d.arg if d.exponent == -1 else Power(d.arg, -d.exponent)
        ds, dp = out[den] if den in out else _render_node(den, out, wrap)
        s += "/" + (f"({ds})" if dp <= PRODUCT or (isinstance(den, Mul) and den.chain) else ds)
    if flip and len(pieces) == 1 and not prefix and not divisors:
        return s, POSTFIX
    return s, (UNARY if prefix and len(pieces) == 1 and not divisors else PRODUCT)


def shared_sums(e: Expr, min_length: int = 8) -> list[Expr]:
    """Sums that occur at least twice (a transposed occurrence counts), longest first."""
    # Occurrences in the printed tree = number of paths from the root (linear, no tree walk).
    counts: Counter[Expr] = Counter({e: 1})
    for x in reversed(postorder(e)):
        for c in x.children():
            counts[c] += counts[x]
    out = _render_all(e)  # one rendering gives every sum's length
    shared = [a for a, n in counts.items() if isinstance(a, Add) and n >= 2 and len(out[a][0]) >= min_length]
    # A shared sum inside another shared sum is named by the outer one already.
    return sorted(shared, key=lambda a: -len(out[a][0]))[:3]


def to_text(e: Expr, *, name_shared: bool = False) -> str:
    """The expression in matgrad's input syntax; with name_shared, repeated sums become `where` names."""
    if not name_shared:
        return _render(e)
    shared = shared_sums(e)
    if not shared:
        return _render(e)
    taken = set(variables(e))
    pool = [n for n in ("r", "u", "v", "w", "q", "h") if n not in taken]
    names = {a: pool[i] if i < len(pool) else f"r{i}" for i, a in enumerate(shared)}
    body = _render(e, names)
    defs = ", ".join(f"{names[a]} = {_render(a)}" for a in shared)
    return f"{body} where {defs}"
