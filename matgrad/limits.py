"""Resource limits: what matgrad refuses (with a LimitError) rather than hang or exhaust memory.

Every stage is iterative, so depth alone never overflows the Python stack; what can
still explode is *size*. A derivative written out can be quadratic in the nesting
depth of its function (tanh(tanh(…)) nested n deep has n² factors in its gradient),
and `where` bindings can share a subexpression so that writing it out doubles per
binding. The limits below keep every path (derive, verify, text, LaTeX, --explain)
within a few seconds and a bounded amount of memory:

- the input text: `parse.MAX_LENGTH` characters, `parse.MAX_NESTING` parentheses deep;
- number literals: at most `parse.MAX_NUMBER_DIGITS` digits, within ±1e300 (doubles);
- exponents: numerator and denominator at most MAX_EXPONENT; matrix powers X^k with
  k ≤ MAX_MATRIX_POWER (the gradient of X^k has k terms); exact constants at most
  MAX_CONSTANT_BITS bits and within the range of doubles;
- a gradient written out (counted as a tree, shared parts once per use) has at most
  MAX_WRITTEN_NODES nodes, and so have the network deltas that --explain prints;
- text and LaTeX output: at most MAX_TEXT_CHARS characters;
- numeric verification: at most MAX_VERIFY_ENTRIES entries per variable.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .errors import LimitError
from .ir import Const, Expr, MatPow, Power, postorder, size

MAX_EXPONENT = 10**6
MAX_MATRIX_POWER = 64
MAX_CONSTANT_BITS = 4096
MAX_CONSTANT_MAGNITUDE = Fraction(10) ** 300
MAX_WRITTEN_NODES = 100_000
MAX_TEXT_CHARS = 2_000_000
MAX_VERIFY_ENTRIES = 10_000

__all__ = ["MAX_EXPONENT", "MAX_MATRIX_POWER", "MAX_CONSTANT_BITS", "MAX_WRITTEN_NODES",
           "MAX_TEXT_CHARS", "MAX_VERIFY_ENTRIES", "check_expression", "check_written_size",
           "check_power", "describe_number"]


def describe_number(v: Fraction) -> str:
    """A short description of a possibly enormous rational (never converts >4300 digits to text)."""
    if v.numerator.bit_length() + v.denominator.bit_length() < 200:
        return str(v)
    if v == 0:
        return "0"
    exponent = (v.numerator.bit_length() - v.denominator.bit_length()) * math.log10(2)
    return f"{'-' if v < 0 else ''}about 10^{round(exponent)}"


def _constant_ok(v: Fraction) -> bool:
    if v == 0:
        return True
    if v.numerator.bit_length() + v.denominator.bit_length() > MAX_CONSTANT_BITS:
        return False
    return 1 / MAX_CONSTANT_MAGNITUDE <= abs(v) <= MAX_CONSTANT_MAGNITUDE


def check_power(base: Expr, p: Fraction) -> None:
    """Refuse base^p before it is folded when base is a constant and the result would be huge."""
    if abs(p.numerator) > MAX_EXPONENT or p.denominator > MAX_EXPONENT:
        raise LimitError(f"the exponent {describe_number(p)} is too large",
                         hint=f"exponents have numerator and denominator at most {MAX_EXPONENT}")
    if isinstance(base, Const):
        v = base.value
        if v.denominator == 1 and abs(v.numerator) <= 1:
            return
        if (v.numerator.bit_length() + v.denominator.bit_length()) * abs(p) > MAX_CONSTANT_BITS:
            raise LimitError(f"the constant {describe_number(v)}^{describe_number(p)} is too large to compute",
                             hint="constants must stay within the range of double precision")


def check_expression(expr: Expr) -> None:
    """Refuse an expression whose constants, exponents or matrix powers are out of bounds."""
    for e in postorder(expr):
        if isinstance(e, Const) and not _constant_ok(e.value):
            raise LimitError(f"the constant {describe_number(e.value)} is outside the range of double precision",
                             hint="matgrad checks gradients numerically; constants must lie within ±1e300")
        elif isinstance(e, Power) and (abs(e.exponent.numerator) > MAX_EXPONENT
                                       or e.exponent.denominator > MAX_EXPONENT):
            raise LimitError(f"the exponent {describe_number(e.exponent)} is too large",
                             hint=f"exponents have numerator and denominator at most {MAX_EXPONENT}")
        elif isinstance(e, MatPow) and abs(e.k) > MAX_MATRIX_POWER:
            raise LimitError(f"the gradient of a matrix power X^{e.k} has {abs(e.k)} terms; "
                             f"powers up to {MAX_MATRIX_POWER} are supported")


def check_written_size(exprs: list[Expr], what: str) -> None:
    """Refuse expressions that would be too large to write out (and to simplify)."""
    total = 0
    for e in exprs:
        total += size(e)
        if total > MAX_WRITTEN_NODES:
            raise LimitError(f"{what} would be too large to write out (more than {MAX_WRITTEN_NODES} "
                             f"operations)", hint="the expression is too deeply nested or shares too much; "
                                                 "split it into smaller parts")


# SymPy's printers recurse on the tree (RecursionError beyond a few hundred levels) and its
# assumptions system re-derives facts about nested elementwise functions at every level,
# so the time to build and print grows about threefold per nested function (tanh worst).
MAX_SYMPY_NODES = 5000
MAX_SYMPY_DEPTH = 100
MAX_SYMPY_FUNCTION_NESTING = 8


def check_sympy_budget(expr: Expr) -> None:
    """Refuse to hand SymPy an expression it would take minutes (or the whole stack) to build or print."""
    from .ir import Func
    depth: dict[Expr, int] = {}
    nesting: dict[Expr, int] = {}
    for e in postorder(expr):
        kids = e.children()
        depth[e] = 1 + max((depth[c] for c in kids), default=0)
        own = (2 if e.name == "tanh" else 1) if isinstance(e, Func) else 0
        nesting[e] = own + max((nesting[c] for c in kids), default=0)
    hint = "use the text or LaTeX form instead"
    if depth[expr] > MAX_SYMPY_DEPTH:
        raise LimitError(f"the expression is {depth[expr]} operations deep; SymPy handles at most "
                         f"{MAX_SYMPY_DEPTH}", hint=hint)
    if nesting[expr] > MAX_SYMPY_FUNCTION_NESTING:
        raise LimitError(f"the expression nests functions too deeply for SymPy (at most "
                         f"{MAX_SYMPY_FUNCTION_NESTING} levels, tanh counting as two)", hint=hint)
    if size(expr) > MAX_SYMPY_NODES:
        raise LimitError(f"the expression is too large for SymPy (more than {MAX_SYMPY_NODES} "
                         f"operations written out)", hint=hint)
