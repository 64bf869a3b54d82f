"""Text → syntax tree. The grammar is `grammar.lark`; this module turns lark's tree
into `Syntax` nodes that carry their position, and lark's errors into `ParseError`s
with a caret. No shapes here: that is `shapes.py`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import LimitError, MatgradError, ParseError, UnknownFunctionError

MAX_LENGTH = 20_000
MAX_NESTING = 400
MAX_CHAIN = 256
# Number literals: matgrad checks results in double precision, so a literal must be a double.
MAX_NUMBER_DIGITS = 100
MAX_NUMBER_MAGNITUDE = 1e300

# Known functions and how many arguments each takes.
FUNCTIONS: dict[str, int] = {
    "tr": 1, "trace": 1, "det": 1, "logdet": 1, "inv": 1, "diag": 1, "sum": 1,
    "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "sin": 1, "cos": 1, "tanh": 1,
    "sigmoid": 1, "softplus": 1, "relu": 1, "softmax": 1, "logsumexp": 1,
    "sign": 1, "step": 1,
}


@dataclass(frozen=True)
class Syntax:
    """One node of the syntax tree: an operation name, its arguments and where it stands.

    op is one of: number, name, call, add, sub, mul, hadamard, elemdiv, div, neg,
    pow, elempow, transpose, norm. For number/name/call/norm the first argument is
    the literal (Fraction, name, function name, norm kind).
    """
    op: str
    args: tuple[Any, ...]
    pos: int
    end: int

    @property
    def children(self) -> tuple["Syntax", ...]:
        return tuple(a for a in self.args if isinstance(a, Syntax))


@lru_cache(maxsize=1)
def _parser() -> Any:
    from lark import Lark  # imported lazily: the grammar is compiled once per process
    grammar = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")
    # Building the LALR tables costs ~50 ms, most of a CLI call; lark caches them in a file
    # it checks against the grammar, the options and its own version (a stale or broken
    # cache is rebuilt). Without a writable cache directory we simply build every time.
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False,
                cache=_cache_file() or False)


def _cache_file() -> str | None:
    """A per-user file for lark's parser cache: $XDG_CACHE_HOME/matgrad or ~/.cache/matgrad."""
    import os
    import sys
    if os.environ.get("MATGRAD_NO_CACHE"):
        return None
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matgrad"
        base.mkdir(parents=True, exist_ok=True)
        return str(base / f"grammar-py{sys.version_info[0]}{sys.version_info[1]}.lark-cache")
    except (OSError, RuntimeError):
        return None


_TOKEN_NAMES = {"NUMBER": "a number", "NAME": "a name", "TRANSPOSE": "'", "HADAMARD": "'.*'",
                "NORM_KIND": "_1/_F", "$END": "the end of the expression"}


def _describe_expected(expected: set[str]) -> str:
    def describe(t: str) -> str:
        if t in _TOKEN_NAMES:
            return _TOKEN_NAMES[t]
        try:
            return repr(_parser().get_terminal(t).pattern.value)
        except KeyError:
            return t.lower()
    names = sorted({describe(t) for t in expected})
    if len(names) > 6:
        return "an operand or an operator"
    return " or ".join(names)


def _unbalanced(text: str, expected: set[str], stray_close: int | None = None) -> str | None:
    """Point at an opening ( or || that is never closed, or say a ) closes nothing."""
    opened: list[int] = []
    for i, ch in enumerate(text[:stray_close] if stray_close is not None else text):
        if ch == "(":
            opened.append(i)
        elif ch == ")" and opened:
            opened.pop()
    if stray_close is not None:
        return None if opened else "no '(' opens it"
    if "RPAR" in expected and opened:
        return f"the ( at column {opened[-1] + 1} is never closed"
    bars = [m.start() for m in re.finditer(r"\|\|", text)]
    if len(bars) % 2 == 1 and any(_parser().get_terminal(t).pattern.value == "||" for t in expected
                                  if t not in _TOKEN_NAMES):
        return f"the || at column {bars[-1] + 1} is never closed"
    return None


def _check_limits(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise LimitError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise LimitError(f"parentheses nested deeper than {MAX_NESTING}", text=text, pos=i)
        elif ch == ")":
            depth -= 1


def parse(text: str) -> Syntax:
    """Parse `text` into a Syntax tree, or raise ParseError with the position of the problem."""
    from lark import Token, Transformer_NonRecursive, v_args
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    if not isinstance(text, str):
        raise ParseError(f"expected the expression as a string, got {type(text).__name__}")
    if not text.strip():
        raise ParseError("empty expression", text=text, pos=0)
    _check_limits(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream is not None and e.pos_in_stream < len(text) else "?"
        raise ParseError(f"unexpected character {ch!r}", text=text, pos=e.pos_in_stream) from None
    except UnexpectedEOF as e:
        raise ParseError(f"the expression ends too early; expected {_describe_expected(set(e.expected))}",
                         text=text, pos=len(text.rstrip()), hint=_unbalanced(text, set(e.expected))) from None
    except UnexpectedToken as e:
        tok = e.token
        pos = tok.start_pos if tok.start_pos is not None else len(text)
        if tok.type == "$END":
            raise ParseError(f"the expression ends too early; expected {_describe_expected(set(e.expected))}",
                             text=text, pos=len(text.rstrip()), hint=_unbalanced(text, set(e.expected))) from None
        hint = _unbalanced(text, set(e.expected), pos if tok.type == "RPAR" else None)
        raise ParseError(f"unexpected {str(tok)!r}; expected {_describe_expected(set(e.expected))}",
                         text=text, pos=pos, hint=hint) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above cover LALR
        raise ParseError("cannot parse the expression", text=text, pos=getattr(e, "pos_in_stream", 0)) from None

    def span(meta: Any) -> tuple[int, int]:
        if getattr(meta, "empty", True):
            return 0, 0
        return meta.start_pos, meta.end_pos

    def op_pos(left: Syntax) -> int:
        """Position of the binary operator: the first non-blank after the left operand."""
        i = left.end
        while i < len(text) and text[i].isspace():
            i += 1
        return i

    @v_args(meta=True)
    class ToSyntax(Transformer_NonRecursive):  # type: ignore[misc]
        def number(self, meta: Any, c: list[Token]) -> Syntax:
            return Syntax("number", (_number(str(c[0]), text, c[0].start_pos),), *span(meta))

        def name(self, meta: Any, c: list[Token]) -> Syntax:
            return Syntax("name", (str(c[0]),), *span(meta))

        def call(self, meta: Any, c: list[Any]) -> Syntax:
            fname = str(c[0])
            args = tuple(a for a in c[1:] if a is not None)
            start, end = span(meta)
            if fname not in FUNCTIONS:
                close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1)
                hint = f"did you mean {close[0]}?" if close else \
                    f"known functions: {', '.join(sorted(set(FUNCTIONS)))}; write {fname}*(…) for a product"
                raise UnknownFunctionError(f"unknown function {fname!r}", text=text, pos=start, hint=hint)
            if len(args) != FUNCTIONS[fname]:
                raise ParseError(f"{fname} takes {FUNCTIONS[fname]} argument(s), got {len(args)}",
                                 text=text, pos=start)
            return Syntax("call", (fname, *args), start, end)

        def norm(self, meta: Any, c: list[Any]) -> Syntax:
            kind = str(c[1]).lstrip("_") if len(c) > 1 else "2"
            kind = {"fro": "F"}.get(kind, kind)
            return Syntax("norm", (kind, c[0]), *span(meta))

        def transpose(self, meta: Any, c: list[Any]) -> Syntax:
            tok = c[1]
            return Syntax("transpose", (c[0],), tok.start_pos, span(meta)[1])

        def neg(self, meta: Any, c: list[Any]) -> Syntax:
            return Syntax("neg", (c[0],), *span(meta))

        def _binary(self, op: str, meta: Any, c: list[Any]) -> Syntax:
            left, right = c[0], c[-1]
            return Syntax(op, (left, right), op_pos(left), span(meta)[1])

        def add(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("add", meta, c)
        def sub(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("sub", meta, c)
        def mul(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("mul", meta, c)
        def hadamard(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("hadamard", meta, c)
        def elemdiv(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("elemdiv", meta, c)
        def div(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("div", meta, c)
        def pow(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("pow", meta, c)
        def elempow(self, meta: Any, c: list[Any]) -> Syntax: return self._binary("elempow", meta, c)

        def binding(self, meta: Any, c: list[Any]) -> tuple[str, Syntax, int]:
            return (str(c[0]), c[1], c[0].start_pos)

        def where(self, meta: Any, c: list[Any]) -> Syntax:
            body, bindings = c[0], c[1:]
            env: dict[str, Syntax] = {}
            for name, value, pos in bindings:
                if name in env:
                    raise ParseError(f"{name!r} is defined twice after 'where'", text=text, pos=pos)
                env[name] = substitute(value, env)
            return substitute(body, env)

    from lark.exceptions import VisitError
    try:
        out = ToSyntax().transform(tree)
    except VisitError as e:  # errors raised inside the transformer come wrapped
        if isinstance(e.orig_exc, MatgradError):
            raise e.orig_exc from None
        raise
    _check_chains(out, text)
    return out


_PRODUCTS = frozenset({"mul", "hadamard", "elemdiv", "div"})


def _check_chains(tree: Syntax, text: str) -> None:
    """Refuse a product of more than MAX_CHAIN distinct factors: each factor's gradient carries
    the product of all the others, so the work grows with the square of the chain's length.
    (Repeated factors such as A*A*…*A merge into a power as they are read.)"""
    factors: dict[int, set[str]] = {}
    for n in iter_postorder(tree):
        if n.op in _PRODUCTS:
            left, right = n.children
            seen = factors.pop(id(left), None) if left.op in _PRODUCTS else None
            if seen is None:
                seen = {text[left.pos:left.end]}
            seen.add(text[n.pos:right.end].lstrip("*@.∘⊙/ \t\n"))
            factors[id(n)] = seen
            if len(seen) > MAX_CHAIN:
                raise LimitError(f"a product of more than {MAX_CHAIN} different factors; the limit is "
                                 f"{MAX_CHAIN}", text=text, pos=n.pos)


def _number(literal: str, text: str, pos: int) -> Fraction:
    """The exact value of a number literal, refused (LimitError) when it is not a usable double."""
    mantissa, _, exponent = literal.lower().partition("e")
    digits = exponent.lstrip("+-").lstrip("0")
    if len(mantissa) > MAX_NUMBER_DIGITS or len(digits) > 4:
        raise LimitError(f"the number {literal[:16]}{'…' if len(literal) > 16 else ''} is too long "
                         f"or too large", text=text, pos=pos,
                         hint=f"numbers have at most {MAX_NUMBER_DIGITS} digits and lie within "
                              f"±1e300: matgrad checks gradients in double precision")
    value = Fraction(literal)
    if value and not (Fraction(1) / Fraction(MAX_NUMBER_MAGNITUDE) <= abs(value) <= Fraction(MAX_NUMBER_MAGNITUDE)):
        raise LimitError(f"the number {literal} is outside the range of double precision", text=text,
                         pos=pos, hint="numbers must lie between 1e-300 and 1e300 in magnitude, or be 0")
    return value


def substitute(tree: Syntax, env: dict[str, Syntax]) -> Syntax:
    """Replace names bound by `where` with their definitions (iteratively, depth is unbounded)."""
    if not env:
        return tree
    done: dict[int, Syntax] = {}
    stack: list[tuple[Syntax, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children if id(c) not in done)
            continue
        if node.op == "name" and node.args[0] in env:
            done[id(node)] = env[node.args[0]]
        else:
            args = tuple(done[id(a)] if isinstance(a, Syntax) else a for a in node.args)
            done[id(node)] = Syntax(node.op, args, node.pos, node.end)
    return done[id(tree)]


def iter_postorder(tree: Syntax) -> list[Syntax]:
    """Nodes children-first (by identity), without recursion."""
    out: list[Syntax] = []
    seen: set[int] = set()
    stack: list[tuple[Syntax, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            out.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children))
    return out
