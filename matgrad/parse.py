"""Text → syntax tree. The grammar is `grammar.lark`; this module turns text into
`Syntax` nodes that carry their position, and syntax errors into `ParseError`s with a
caret. No shapes here: that is `shapes.py`.

Two readers of the one grammar: `read_fast`, a recursive-descent reader with one method
per grammar rule, and lark's LALR parser built from `grammar.lark`. Importing lark and
loading its tables costs ~40 ms, more than everything else a CLI call does, so a valid
expression is read by `read_fast`; whenever it stops (a syntax error, an unknown
function, input too deep for recursion), the text is read again by lark, which reports
the error with the grammar's expected tokens, or reads what the fast reader could not.
The tests read every corpus expression and random token sequences with both and demand
identical trees, positions included, or an error from both.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

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


class Syntax(NamedTuple):
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


# ----------------------------------------------------------------------------- the fast reader

# The terminals of grammar.lark, as one regex. `where` and the norm kinds _1/_2/_F/_fro are
# read as names here and told apart by the reader where the grammar expects them (lark's
# contextual lexer does the same: there a name could not stand).
_TOKEN = re.compile(r"(?P<ws>[ \t\f\r\n]+)"
                    r"|(?P<number>(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>(?!ᵀ)[^\W\d](?:(?!ᵀ)\w)*)"
                    r"|(?P<op>\|\||\.\*|\./|\.\^|\.T|[-+*@/^(),='∘⊙ᵀ])")
_NAME = re.compile(r"(?!ᵀ)[^\W\d](?:(?!ᵀ)\w)*\Z")
_TRANSPOSE = frozenset({"'", ".T", "ᵀ"})
_PRODUCT_OPS = {"*": "mul", "@": "mul", ".*": "hadamard", "∘": "hadamard", "⊙": "hadamard",
                "./": "elemdiv", "/": "div"}
_NORM_KINDS = {"_1": "1", "_2": "2", "_F": "F", "_fro": "F"}


class _Stop(Exception):
    """The fast reader cannot go on; lark reads the text again and says why."""


class _Node:
    """A Syntax node and the span it occupies in the text, parentheses and unary + included
    (lark's "container" span): a parent node's span is its children's containers."""
    __slots__ = ("syntax", "start", "end")

    def __init__(self, syntax: Syntax, start: int, end: int) -> None:
        self.syntax, self.start, self.end = syntax, start, end


class _Reader:
    """Recursive descent over grammar.lark, one method per rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int, int]] = []  # kind, text, start, end
        i, n = 0, len(text)
        while i < n:
            m = _TOKEN.match(text, i)
            if m is None:
                raise _Stop
            kind = m.lastgroup
            if kind != "ws":
                self.tokens.append((kind, m.group(), i, m.end()))  # type: ignore[arg-type]
            i = m.end()
        self.tokens.append(("end", "", n, n))
        self.i = 0

    # -- tokens
    def peek(self) -> tuple[str, str, int, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, op: str) -> tuple[str, str, int, int]:
        tok = self.take()
        if tok[0] != "op" or tok[1] != op:
            raise _Stop
        return tok

    def at(self, *ops: str) -> bool:
        kind, t, _, _ = self.tokens[self.i]
        return kind == "op" and t in ops

    # -- rules
    def start(self) -> Syntax:
        body = self.expr()
        kind, t, s, e = self.peek()
        if kind == "name" and t.startswith("where"):
            self.i += 1
            if len(t) > 5:  # `x wherey = 1` is `x where y = 1` to lark's lexer too
                self.i -= 1
                self.tokens[self.i] = ("name", t[5:], s + 5, e)
            bindings = [self.binding()]
            while self.at(","):
                self.i += 1
                bindings.append(self.binding())
            out = _where(body.syntax, bindings, self.text)
        else:
            out = body.syntax
        if self.peek()[0] != "end":
            raise _Stop
        return out

    def binding(self) -> tuple[str, Syntax, int]:
        kind, name, s, _ = self.take()
        if kind != "name" or not _NAME.match(name):
            raise _Stop
        self.expect("=")
        return (name, self.expr().syntax, s)

    def expr(self) -> _Node:
        left = self.product()
        while self.at("+", "-"):
            op = "add" if self.take()[1] == "+" else "sub"
            left = self.binary(op, left, self.product())
        return left

    def product(self) -> _Node:
        left = self.unary()
        while self.at(*_PRODUCT_OPS):
            op = _PRODUCT_OPS[self.take()[1]]
            left = self.binary(op, left, self.unary())
        return left

    def unary(self) -> _Node:
        if self.at("-"):
            return self.negated(self.unary)
        if self.at("+"):
            s = self.take()[2]
            arg = self.unary()
            return _Node(arg.syntax, s, arg.end)
        return self.power()

    def power(self) -> _Node:
        base = self.postfix()
        if self.at("^", ".^"):
            op = "pow" if self.take()[1] == "^" else "elempow"
            return self.binary(op, base, self.exponent())
        return base

    def exponent(self) -> _Node:
        if self.at("-"):
            return self.negated(self.exponent)
        return self.postfix()

    def negated(self, operand: Any) -> _Node:
        """"-" operand, with `operand` the rule the grammar allows after this minus."""
        s = self.take()[2]
        arg = operand()
        return _Node(Syntax("neg", (arg.syntax,), s, arg.end), s, arg.end)

    def postfix(self) -> _Node:
        node = self.atom()
        while self.at(*_TRANSPOSE):
            _, _, s, e = self.take()
            node = _Node(Syntax("transpose", (node.syntax,), s, e), node.start, e)
        return node

    def atom(self) -> _Node:
        kind, t, s, e = self.take()
        if kind == "number":
            return _Node(Syntax("number", (_number(t, self.text, s),), s, e), s, e)
        if kind == "name":
            if not self.at("("):
                return _Node(Syntax("name", (t,), s, e), s, e)
            self.i += 1
            args: list[Syntax] = []
            if not self.at(")"):
                args.append(self.expr().syntax)
                while self.at(","):
                    self.i += 1
                    args.append(self.expr().syntax)
            end = self.expect(")")[3]
            return _Node(_call(t, tuple(args), s, end, self.text), s, end)
        if kind == "op" and t == "(":
            inner = self.expr()
            return _Node(inner.syntax, s, self.expect(")")[3])
        if kind == "op" and t == "||":
            inner = self.expr()
            end = self.expect("||")[3]
            norm = "2"
            k, kt, _, ke = self.peek()
            if k == "name" and kt.startswith("_"):
                if kt not in _NORM_KINDS:
                    raise _Stop
                norm, end = _NORM_KINDS[kt], ke
                self.i += 1
            return _Node(Syntax("norm", (norm, inner.syntax), s, end), s, end)
        raise _Stop

    def binary(self, op: str, left: _Node, right: _Node) -> _Node:
        return _Node(Syntax(op, (left.syntax, right.syntax), _op_pos(self.text, left.syntax), right.end),
                     left.start, right.end)


def read_fast(text: str) -> Syntax:
    """The tree of a valid expression; _Stop (or a MatgradError) where it is not."""
    return _Reader(text).start()


# ----------------------------------------------------------------------------- semantic actions
# Shared by both readers, so their trees cannot differ in meaning.

def _op_pos(text: str, left: Syntax) -> int:
    """Position of a binary operator: past the left operand, its closing parentheses and blanks."""
    i = left.end
    while i < len(text) and (text[i].isspace() or text[i] == ")"):
        i += 1
    return i


def _call(fname: str, args: tuple[Syntax, ...], start: int, end: int, text: str) -> Syntax:
    if fname not in FUNCTIONS:
        import difflib  # only on this error path: it costs a CLI call a millisecond
        close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1)
        hint = f"did you mean {close[0]}?" if close else \
            f"known functions: {', '.join(sorted(set(FUNCTIONS)))}; write {fname}*(…) for a product"
        raise UnknownFunctionError(f"unknown function {fname!r}", text=text, pos=start, hint=hint)
    if len(args) != FUNCTIONS[fname]:
        raise ParseError(f"{fname} takes {FUNCTIONS[fname]} argument(s), got {len(args)}",
                         text=text, pos=start)
    return Syntax("call", (fname, *args), start, end)


def _where(body: Syntax, bindings: list[tuple[str, Syntax, int]], text: str) -> Syntax:
    env: dict[str, Syntax] = {}
    for name, value, pos in bindings:
        if name in env:
            raise ParseError(f"{name!r} is defined twice after 'where'", text=text, pos=pos)
        env[name] = substitute(value, env)
    return substitute(body, env)


# ----------------------------------------------------------------------------- parse

def parse(text: str) -> Syntax:
    """Parse `text` into a Syntax tree, or raise ParseError with the position of the problem."""
    if not isinstance(text, str):
        raise ParseError(f"expected the expression as a string, got {type(text).__name__}")
    if not text.strip():
        raise ParseError("empty expression", text=text, pos=0)
    _check_limits(text)
    try:
        out = read_fast(text)
    except (_Stop, MatgradError, RecursionError):
        out = read_with_lark(text)  # says what is wrong, where, and what the grammar expected
    _check_chains(out, text)
    return out


def read_with_lark(text: str) -> Syntax:
    """The tree as lark's parser for grammar.lark reads it; ParseError with lark's expected tokens."""
    from lark import Token, Transformer_NonRecursive, v_args
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

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

    @v_args(meta=True)
    class ToSyntax(Transformer_NonRecursive):  # type: ignore[misc]
        def number(self, meta: Any, c: list[Token]) -> Syntax:
            return Syntax("number", (_number(str(c[0]), text, c[0].start_pos),), *span(meta))

        def name(self, meta: Any, c: list[Token]) -> Syntax:
            return Syntax("name", (str(c[0]),), *span(meta))

        def call(self, meta: Any, c: list[Any]) -> Syntax:
            return _call(str(c[0]), tuple(a for a in c[1:] if a is not None), *span(meta), text)

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
            return Syntax(op, (left, right), _op_pos(text, left), span(meta)[1])

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
            return _where(c[0], c[1:], text)

    from lark.exceptions import VisitError
    try:
        return ToSyntax().transform(tree)
    except VisitError as e:  # errors raised inside the transformer come wrapped
        if isinstance(e.orig_exc, MatgradError):
            raise e.orig_exc from None
        raise


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
