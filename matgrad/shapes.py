"""Syntax tree → typed, shaped IR (`infer_shapes`).

Typing by convention unless declared: a name starting with an uppercase letter is a
matrix, a lowercase name a column vector, a Greek name a scalar; `I` is the identity
and `ones` a vector of ones, each of whatever size its context needs.

Dimensions are symbols unified as the tree is read (union–find). A symbolic
dimension of a declared-by-convention vector or matrix is never 1: that would turn
`x*y` into a product of 1-vectors and hide a mistake. Only `I`, `ones` and explicit
declarations can have a dimension of 1. Where an operation's meaning depends on an
operand being a scalar (scaling vs matrix product, broadcasting a scalar in a sum),
it is decided from what is known at that point, reading left to right.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Any, Callable, Mapping, NamedTuple, Union

from . import simplify as S
from .errors import DomainError, LimitError, ParseError, ShapeError, UnsupportedError
from .limits import MAX_CONSTANT_BITS, MAX_EXPONENT, MAX_MATRIX_POWER, check_power, describe_number
from .ir import SCALAR, Expr, Identity, Var
from .parse import Syntax, iter_postorder

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eps", "lambda", "lam", "mu", "sigma", "tau",
         "theta", "rho", "eta", "kappa", "nu", "zeta", "xi", "omega", "phi", "psi", "chi", "iota"}

ShapeSpec = Union[int, tuple, str, None]


def is_greek(name: str) -> bool:
    if name.lower() in GREEK or name.split("_")[0].lower() in GREEK:
        return True
    return "GREEK" in unicodedata.name(name[0], "")


def parse_shape_spec(text: str) -> tuple[str, ShapeSpec]:
    """Parse a CLI declaration NAME=SPEC: 3x4, m x n, 5, scalar, vector, matrix, symmetric, spd, 4x4,symmetric."""
    if "=" not in text:
        raise ShapeError(f"cannot read --shape {text!r}: write NAME=SPEC, e.g. W=3x4, x=5, c=scalar, S=symmetric")
    name, spec = (p.strip() for p in text.split("=", 1))
    if not re.fullmatch(r"[^\W\d]\w*", name):
        raise ShapeError(f"cannot read --shape {text!r}: {name!r} is not a variable name")
    words = [w.strip() for w in spec.split(",") if w.strip()]
    kind = None
    dims: ShapeSpec = None
    for w in words:
        wl = w.lower()
        if wl in ("symmetric", "sym", "spd"):
            kind = "spd" if wl == "spd" else "symmetric"
        elif wl in ("prob", "probability", "distribution", "onehot"):
            kind = "prob"
        elif wl in ("scalar", "vector", "matrix"):
            dims = wl
        elif re.fullmatch(r"\d+", w):
            dims = int(w)
        else:
            parts = re.split(r"\s*[x×]\s*", w)
            if len(parts) != 2 or not all(re.fullmatch(r"\d+|[^\W\d]\w*", p) for p in parts):
                raise ShapeError(f"cannot read --shape {text!r}: {w!r} is not a size (use 3x4, 5, mxn, scalar, symmetric)")
            dims = tuple(int(p) if p.isdigit() else p for p in parts)
    if kind:
        return name, (kind, dims)
    if dims is None:
        raise ShapeError(f"cannot read --shape {text!r}: no size or structure given")
    return name, dims


def _check_declared_sizes(name: str, spec: Any) -> None:
    """Every declared size is an int ≥ 1 or a dimension name."""
    parts = [spec] if isinstance(spec, int) else list(spec) if isinstance(spec, (tuple, list)) else []
    for d in parts:
        if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, str) and not d.isidentifier()):
            raise ShapeError(f"cannot understand the declared shape of {name}: {spec!r}",
                             hint="a size is a positive integer or a dimension name such as n")
        if isinstance(d, int) and d < 1:
            raise ShapeError(f"{name} is declared with a size of {d}; sizes must be at least 1")


class _Dims:
    """Union–find over dimension variables; each class has at most one concrete size."""

    def __init__(self, taken: set[str]) -> None:
        self.parent: list[int] = []
        self.value: list[int | None] = []
        self.flexible: list[bool] = []
        self.name: list[str] = []
        self.rigid: list[bool] = []  # declared by name (A=mxn): two different names never merge
        self._pool = [n for n in "nmkpqrtuvwabcdefghijl" if n not in taken]
        self._taken = set(taken)
        self._named = 0
        self.ONE = self.new(value=1)

    def new(self, *, value: int | None = None, flexible: bool = False, name: str | None = None,
            rigid: bool = False) -> int:
        i = len(self.parent)
        self.rigid.append(rigid)
        self.parent.append(i)
        self.value.append(value)
        self.flexible.append(flexible)
        self.name.append(name or "")
        return i

    def symbolic_name(self) -> str:
        while True:
            k = self._named
            self._named += 1
            if k < len(self._pool):
                return self._pool[k]
            cand = f"n{k - len(self._pool) + 1}"
            if cand not in self._taken:
                return cand

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def unify(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        va, vb = self.value[ra], self.value[rb]
        if va is not None and vb is not None and va != vb:
            return False
        if self.rigid[ra] and self.rigid[rb]:
            return False
        # A symbolic size of a vector or matrix may not silently become 1.
        if (va == 1 and vb is None and not self.flexible[rb]) or (vb == 1 and va is None and not self.flexible[ra]):
            return False
        keep, drop = (ra, rb) if ra < rb else (rb, ra)
        self.parent[drop] = keep
        self.value[keep] = va if va is not None else vb
        self.flexible[keep] = self.flexible[ra] and self.flexible[rb]
        self.rigid[keep] = self.rigid[ra] or self.rigid[rb]
        if self.rigid[drop]:
            self.name[keep] = self.name[drop]
        if not self.name[keep]:
            self.name[keep] = self.name[drop]
        return True

    def resolve(self, i: int) -> int | str:
        r = self.find(i)
        if self.value[r] is not None:
            return self.value[r]  # type: ignore[return-value]
        if not self.name[r]:
            self.name[r] = self.symbolic_name()
        return self.name[r]

    def is_one(self, i: int) -> bool:
        return self.value[self.find(i)] == 1


class _Typed(NamedTuple):
    shape: tuple[int, int]
    build: Callable[[list[Expr]], Expr]


class Typed(NamedTuple):
    """The result of `infer_shapes`: the IR and every variable with its resolved shape."""
    expr: Expr
    variables: dict[str, Var]


def _constant(node: Syntax) -> Fraction | None:
    """The value of a purely numeric subexpression (used for exponents); iterative, so a long
    chain 1+1+…+1 or ------2 costs no stack. Raises LimitError for a power too large to compute."""
    values: dict[int, Fraction | None] = {}
    for n in iter_postorder(node):
        if n.op == "number":
            values[id(n)] = n.args[0]
            continue
        vals = [values[id(c)] for c in n.children]
        if not vals or any(v is None for v in vals):
            values[id(n)] = None
            continue
        a, b = (vals + [None, None])[:2]
        out: Fraction | None = None
        try:
            if n.op == "neg":
                out = -a  # type: ignore[operator]
            elif n.op == "add":
                out = a + b  # type: ignore[operator]
            elif n.op == "sub":
                out = a - b  # type: ignore[operator]
            elif n.op in ("mul", "hadamard"):
                out = a * b  # type: ignore[operator]
            elif n.op in ("div", "elemdiv"):
                out = a / b  # type: ignore[operator]
            elif n.op in ("pow", "elempow") and b.denominator == 1:  # type: ignore[union-attr]
                trivial = a.denominator == 1 and abs(a.numerator) <= 1  # type: ignore[union-attr]
                bits = (a.numerator.bit_length() + a.denominator.bit_length()) * abs(b)  # type: ignore[union-attr]
                if not trivial and bits > MAX_CONSTANT_BITS:
                    raise LimitError(f"the constant {a}^{b} is too large to compute exactly",
                                     hint="exponents and their bases must stay within double precision")
                out = a ** int(b)  # type: ignore[operator]
        except ZeroDivisionError:
            out = None
        values[id(n)] = out
    return values[id(node)]


# Builders of a sum of two equal-shaped operands (the build pass flattens chains of them).
_FLAT_SUM: dict[str, Callable[[list[Expr]], Expr]] = {
    "add": lambda k: S.add(k[0], k[1]),
    "sub": lambda k: S.sub(k[0], k[1]),
}


def infer_shapes(tree: Syntax, text: str, declared: Mapping[str, Any] | None = None,
                 result: tuple[Any, Any] | None = None) -> Typed:
    """Check and infer every shape in `tree`; return the IR built from it.

    `declared` maps names to shapes: an int n (vector of length n), a pair (r, c)
    of ints or dimension names, () or "scalar", "vector", "matrix", or a pair
    (kind, dims) with kind "symmetric"/"spd", or "prob" for a probability vector
    (entries ≥ 0 summing to 1, e.g. one-hot labels: sum(y) simplifies to 1).
    `result`, a pair of ints or dimension names, is the shape the whole expression
    should have where nothing else fixes it: a claimed gradient `ones*ones'` or `I`
    of a declared m×n or n×n variable. (Where it cannot be met, the expression keeps
    the shape it has and the caller reports the difference.)
    """
    declared = dict(declared or {})
    nodes = iter_postorder(tree)
    names_used = {n.args[0] for n in nodes if n.op == "name"}
    dims = _Dims(names_used)
    env: dict[str, tuple[tuple[int, int], str]] = {}
    typed: dict[int, _Typed] = {}

    def show(i: int) -> str:
        return str(dims.resolve(i))

    def show_shape(s: tuple[int, int]) -> str:
        return f"{show(s[0])}×{show(s[1])}"

    def src(node: Syntax) -> str:
        t = text[node_start(node):node.end].strip()
        return t if len(t) <= 30 else t[:27] + "…"

    def node_start(node: Syntax) -> int:  # only called to word an error, so a walk is affordable
        return min(n.pos for n in iter_postorder(node))

    def is_scalar(s: tuple[int, int]) -> bool:
        return dims.is_one(s[0]) and dims.is_one(s[1])

    def unify_shapes(a: tuple[int, int], b: tuple[int, int]) -> bool:
        ok = dims.unify(a[0], b[0])
        return dims.unify(a[1], b[1]) and ok

    def var_shape(name: str, node: Syntax) -> tuple[tuple[int, int], str]:
        if name in env:
            return env[name]
        kind = "general"
        spec = declared.get(name)
        if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ("symmetric", "spd", "prob"):
            kind, spec = spec
            if spec is None:
                spec = "vector" if kind == "prob" else "matrix"
        if spec is None:
            spec = "scalar" if is_greek(name) else ("matrix" if name[0].isupper() else "vector")
        _check_declared_sizes(name, spec)
        if spec == "scalar" or spec == ():
            shape = (dims.ONE, dims.ONE)
        elif spec == "vector":
            shape = (dims.new(), dims.ONE)
        elif spec == "matrix":
            shape = (dims.new(), dims.new())
        elif isinstance(spec, int):
            shape = (dims.new(value=spec), dims.ONE)
        elif isinstance(spec, (tuple, list)) and len(spec) == 2:
            ids = []
            for d in spec:
                if isinstance(d, int):
                    ids.append(dims.ONE if d == 1 else dims.new(value=d))
                else:
                    named = [i for i in range(len(dims.name)) if dims.name[i] == d and dims.find(i) == i]
                    ids.append(named[0] if named else dims.new(name=str(d), rigid=True))
            shape = (ids[0], ids[1])
        else:
            raise ShapeError(f"cannot understand the declared shape of {name}: {spec!r}")
        if kind in ("symmetric", "spd") and not dims.unify(shape[0], shape[1]):
            raise ShapeError(f"{name} is declared {kind} but is {show_shape(shape)}, not square")
        env[name] = (shape, kind)
        return env[name]

    for name in declared:
        if name not in names_used:
            continue
        var_shape(name, tree)

    for node in nodes:
        kids = [typed[id(c)] for c in node.children]
        op = node.op
        if op == "number":
            value = node.args[0]
            typed[id(node)] = _Typed((dims.ONE, dims.ONE), lambda k, v=value: S.const(v))
        elif op == "name":
            name = node.args[0]
            if name == "I" and "I" not in declared:
                d = dims.new(flexible=True)
                # An I that turned out 1×1 is the number 1 (and prints and reads back as 1).
                typed[id(node)] = _Typed((d, d), lambda k, d=d: S.ONE if dims.resolve(d) == 1
                                         else Identity(dims.resolve(d)))
            elif name in ("ones", "zeros") and name not in declared:
                d = dims.new(flexible=True)
                val = S.ONE if name == "ones" else S.ZERO
                typed[id(node)] = _Typed((d, dims.ONE), lambda k, d=d, v=val: S.fill(v, (dims.resolve(d), 1)))
            else:
                shape, kind = var_shape(name, node)
                typed[id(node)] = _Typed(shape, lambda k, n=name, s=shape, kd=kind:
                                         Var(n, (dims.resolve(s[0]), dims.resolve(s[1])), kd))
        elif op in ("add", "sub", "hadamard", "elemdiv"):
            a, b = kids
            left, right = node.children
            sa, sb = is_scalar(a.shape), is_scalar(b.shape)
            if sa != sb:
                shape = b.shape if sa else a.shape
                if op in ("add", "sub"):
                    def build(k: list[Expr], o: str = op, sa: bool = sa, shape: tuple = shape) -> Expr:
                        dims_ = (dims.resolve(shape[0]), dims.resolve(shape[1]))
                        x, y = (S.fill(k[0], dims_), k[1]) if sa else (k[0], S.fill(k[1], dims_))
                        return S.add(x, y) if o == "add" else S.sub(x, y)
                elif op == "hadamard":
                    build = lambda k: S.mul(k[0], k[1])  # noqa: E731 - scaling
                elif sb:  # matrix ./ scalar
                    build = lambda k: S.mul(k[0], S.power(k[1], -1))  # noqa: E731
                else:  # scalar ./ matrix
                    build = lambda k: S.mul(k[0], S.power(k[1], -1))  # noqa: E731
                typed[id(node)] = _Typed(shape, build)
                continue
            if not unify_shapes(a.shape, b.shape):
                verb = {"add": "add", "sub": "subtract", "hadamard": "multiply entrywise",
                        "elemdiv": "divide entrywise"}[op]
                what = f"cannot {verb} {src(left)} ({show_shape(a.shape)}) and {src(right)} ({show_shape(b.shape)})"
                if op == "sub":
                    what = f"cannot subtract {src(right)} ({show_shape(b.shape)}) from {src(left)} ({show_shape(a.shape)})"
                raise ShapeError(what, text=text, pos=node.pos, hint="the shapes must be equal, or one side a scalar")
            builders = {"add": _FLAT_SUM["add"], "sub": _FLAT_SUM["sub"],
                        "hadamard": lambda k: S.hadamard(k[0], k[1]),
                        "elemdiv": lambda k: S.hadamard(k[0], S.power(k[1], -1))}
            typed[id(node)] = _Typed(a.shape, builders[op])
        elif op == "mul":
            a, b = kids
            left, right = node.children
            if is_scalar(a.shape) or is_scalar(b.shape):
                shape = b.shape if is_scalar(a.shape) else a.shape
            else:
                if not dims.unify(a.shape[1], b.shape[0]):
                    raise ShapeError(
                        f"cannot multiply {src(left)} ({show_shape(a.shape)}) by {src(right)} ({show_shape(b.shape)})",
                        text=text, pos=node.pos,
                        hint=f"inner dimensions {show(a.shape[1])} and {show(b.shape[0])} differ")
                shape = (a.shape[0], b.shape[1])
            typed[id(node)] = _Typed(shape, lambda k: S.mul(k[0], k[1]))
        elif op == "div":
            a, b = kids
            if not is_scalar(b.shape):
                right = node.children[1]
                raise ShapeError(f"cannot divide by {src(right)} ({show_shape(b.shape)}), which is not a scalar",
                                 text=text, pos=node.pos, hint="use ./ for entrywise division or inv(…)")
            typed[id(node)] = _Typed(a.shape, lambda k: S.mul(k[0], S.power(k[1], -1)))
        elif op == "neg":
            typed[id(node)] = _Typed(kids[0].shape, lambda k: S.neg(k[0]))
        elif op == "transpose":
            s = kids[0].shape
            typed[id(node)] = _Typed((s[1], s[0]), lambda k: S.transpose(k[0]))
        elif op in ("pow", "elempow"):
            base_node, exp_node = node.children
            p = _constant(exp_node)
            if p is None:
                raise UnsupportedError("the exponent must be a number", text=text, pos=exp_node.pos,
                                       hint="write exp(y.*log(x)) for a variable exponent")
            a = kids[0]
            if abs(p.numerator) > MAX_EXPONENT or p.denominator > MAX_EXPONENT:
                raise LimitError(f"the exponent {describe_number(p)} is too large", text=text, pos=exp_node.pos,
                                 hint=f"exponents have numerator and denominator at most {MAX_EXPONENT}")
            if op == "elempow" or is_scalar(a.shape):
                # ||E||^2 needs no special case: power() turns sqrt(s)^2 into s.
                typed[id(node)] = _Typed(a.shape, lambda k, p=p: (check_power(k[0], p), S.power(k[0], p))[1])
                continue
            if dims.find(a.shape[1]) == dims.find(dims.ONE) or not dims.unify(a.shape[0], a.shape[1]):
                raise ShapeError(f"{src(base_node)} is {show_shape(a.shape)}; ^ needs a square matrix or a scalar",
                                 text=text, pos=node.pos, hint="use .^ for an entrywise power")
            if p.denominator != 1:
                raise UnsupportedError(f"a matrix power needs an integer exponent, got {p}", text=text, pos=node.pos)
            if abs(p) > MAX_MATRIX_POWER:
                raise LimitError(f"the gradient of a matrix power X^{p} has {abs(p)} terms; "
                                 f"powers up to {MAX_MATRIX_POWER} are supported", text=text, pos=node.pos)
            typed[id(node)] = _Typed(a.shape, lambda k, p=int(p): S.matpow(k[0], p))
        elif op == "call":
            typed[id(node)] = _call(node, kids, dims, text, show_shape, src)
        elif op == "norm":
            kind = node.args[0]
            if kind == "1":
                typed[id(node)] = _Typed((dims.ONE, dims.ONE), lambda k: S.sum_(S.func("abs", k[0])))
            else:
                typed[id(node)] = _Typed((dims.ONE, dims.ONE),
                                         lambda k: S.power(S.sum_(S.power(k[0], 2)), Fraction(1, 2)))
        else:  # pragma: no cover - the grammar has no other operations
            raise ParseError(f"unknown operation {op}", text=text, pos=node.pos)

    if result is not None:
        want = []
        for d in result:
            if isinstance(d, int):
                want.append(dims.ONE if d == 1 else dims.new(value=d))
            else:
                named = [i for i in range(len(dims.name)) if dims.name[i] == d and dims.find(i) == i]
                want.append(named[0] if named else dims.new(name=str(d), rigid=True))
        got = typed[id(tree)].shape
        if not is_scalar(got):
            unify_shapes(got, (want[0], want[1]))

    # A long sum a + b - c + … is built with one add() of all its terms, not one add() per
    # operator (each of which would re-read every term before it: quadratic in the length).
    # Only the left operand is absorbed, so a - (b - c) keeps its grouping.
    sums = {id(n) for n in nodes if n.op in ("add", "sub") and typed[id(n)].build is _FLAT_SUM[n.op]}
    users: dict[int, int] = {}
    for n in nodes:
        for c in n.children:
            users[id(c)] = users.get(id(c), 0) + 1
    absorbed = {id(n.children[0]) for n in nodes if id(n) in sums
                and id(n.children[0]) in sums and users[id(n.children[0])] == 1}
    built: dict[int, Expr] = {}
    for node in nodes:
        if id(node) in absorbed:
            continue
        if id(node) in sums:
            right: list[tuple[Syntax, bool]] = []
            n = node
            while id(n) in sums and (n is node or id(n) in absorbed):
                right.append((n.children[1], n.op == "sub"))
                n = n.children[0]
            terms = [built[id(n)]] + [S.neg(built[id(r)]) if minus else built[id(r)] for r, minus in reversed(right)]
            built[id(node)] = S.add(*terms)
            continue
        built[id(node)] = typed[id(node)].build([built[id(c)] for c in node.children])
    expr = built[id(tree)]
    variables = {}
    for name, (shape, kind) in env.items():
        if name in names_used:
            variables[name] = Var(name, (dims.resolve(shape[0]), dims.resolve(shape[1])), kind)
    return Typed(expr, variables)


ELEMENTWISE_CALLS = {"exp", "log", "abs", "sin", "cos", "tanh", "sigmoid", "softplus", "relu", "sign", "step"}


def _call(node: Syntax, kids: list[_Typed], dims: _Dims, text: str,
          show_shape: Callable[[tuple[int, int]], str], src: Callable[[Syntax], str]) -> _Typed:
    fname = node.args[0]
    a = kids[0]
    arg_node = node.children[0]
    one = (dims.ONE, dims.ONE)

    def square(what: str) -> None:
        if not dims.unify(a.shape[0], a.shape[1]):
            raise DomainError(f"{what} needs a square matrix; {src(arg_node)} is {show_shape(a.shape)}",
                              text=text, pos=node.pos)

    def column(what: str) -> None:
        if not dims.unify(a.shape[1], dims.ONE):
            raise DomainError(f"{what} needs a column vector; {src(arg_node)} is {show_shape(a.shape)}",
                              text=text, pos=node.pos)

    if fname in ELEMENTWISE_CALLS:
        return _Typed(a.shape, lambda k, f=fname: S.func(f, k[0]))
    if fname == "sqrt":
        return _Typed(a.shape, lambda k: S.power(k[0], Fraction(1, 2)))
    if fname in ("tr", "trace"):
        square("tr")
        return _Typed(one, lambda k: S.trace(k[0]))
    if fname == "det":
        square("det")
        return _Typed(one, lambda k: S.det(k[0]))
    if fname == "logdet":
        square("logdet")
        return _Typed(one, lambda k: S.logdet(k[0]))
    if fname == "inv":
        square("inv")
        return _Typed(a.shape, lambda k: S.inverse(k[0]))
    if fname == "sum":
        return _Typed(one, lambda k: S.sum_(k[0]))
    if fname == "diag":
        if dims.is_one(a.shape[1]) and not dims.is_one(a.shape[0]):
            return _Typed((a.shape[0], a.shape[0]), lambda k: S.diag_mat(k[0]))
        square("diag")
        return _Typed((a.shape[0], dims.ONE), lambda k: S.diag_vec(k[0]))
    if fname == "softmax":
        column("softmax")
        return _Typed(a.shape, lambda k: S.softmax(k[0]))
    if fname == "logsumexp":
        column("logsumexp")
        return _Typed(one, lambda k: S.logsumexp(k[0]))
    raise UnsupportedError(f"function {fname} is not supported", text=text, pos=node.pos)  # pragma: no cover


def scalar_or_error(expr: Expr, text: str) -> None:
    """A gradient needs a scalar function: say what the value is when it is not."""
    from .errors import NotScalarError
    r, c = expr.shape
    if (r, c) == SCALAR:
        return
    article = "an" if str(r)[0] in "aefhilmnorsx8" else "a"
    what = f"{article} {r}×{c} " + ("vector" if c == 1 else "row vector" if r == 1 else "matrix")
    raise NotScalarError(f"the expression is {what}; a gradient needs a scalar function",
                         hint="wrap it in sum(…), tr(…) or ||…||^2")

