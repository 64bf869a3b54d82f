"""The intermediate representation: a small closed set of immutable, shaped nodes.

Every value is a matrix; a column vector is n×1 and a scalar is 1×1. Dimensions
are ints or symbolic names ("n", "m", …) fixed by `infer_shapes`. Gradients are
built from the same node set, so they can be printed, evaluated, verified and
differentiated again.

Nodes are immutable records (`@node`) compared by structure; their hash is cached so that
dictionaries keyed by nodes (adjoints, common subexpressions) stay linear.
The raw constructors do no simplification: `simplify.py` provides the smart
constructors that keep expressions canonical.
"""

from __future__ import annotations

import weakref
from fractions import Fraction
from typing import Any, Iterator, Union

Dim = Union[int, str]
Shape = tuple[Dim, Dim]
SCALAR: Shape = (1, 1)

# Elementwise functions with their meaning; derivatives live in rules.py.
ELEMENTWISE = ("exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus", "relu", "abs",
               "sign", "step")


class IRError(AssertionError):
    """An internal inconsistency: a node built with operands that do not fit."""


def _cached_hash(self: "Expr") -> int:
    return self.__dict__["_hash"]


def _structural_eq(self: "Expr", other: object) -> bool:
    # Iterative, and each pair of objects is compared once: two equal but distinct deep
    # trees (a 128-layer network) neither exhaust the stack nor re-compare shared subtrees.
    if self is other:
        return True
    if type(self) is not type(other) or hash(self) != hash(other):
        return False
    stack: list[tuple[Any, Any]] = [(self, other)]
    seen: set[tuple[int, int]] = set()
    while stack:
        a, b = stack.pop()
        if a is b:
            continue
        if type(a) is not type(b) or hash(a) != hash(b):
            return False
        key = (id(a), id(b))
        if key in seen:
            continue
        seen.add(key)
        for name in a._field_names:
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(x, Expr):
                stack.append((x, y))
            elif isinstance(x, tuple) and x and isinstance(x[0], Expr):
                if not isinstance(y, tuple) or len(x) != len(y):
                    return False
                stack.extend(zip(x, y))
            elif x != y:
                return False
    return True


def _frozen(self: "Expr", name: str, value: Any) -> None:
    raise AttributeError(f"{type(self).__name__} nodes are immutable")


def _bind(cls: type, names: tuple[str, ...], defaults: dict[str, Any], args: tuple, kwargs: dict) -> tuple:
    """Positional and keyword arguments → one value per field, as a call signature would."""
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__} takes {len(names)} arguments, got {len(args)}")
    values = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in values:
            raise TypeError(f"{cls.__name__} got an unexpected or repeated argument {k!r}")
        values[k] = v
    for n in names:
        if n not in values:
            if n not in defaults:
                raise TypeError(f"{cls.__name__} is missing the argument {n!r}")
            values[n] = defaults[n]
    return tuple(values[n] for n in names)


def node(cls: type) -> type:
    """Make `cls` an immutable node: an __init__ over its annotated fields (in order, with
    their class-level defaults), structural equality, a cached hash and a shape.

    Not `dataclasses.dataclass`: it writes and compiles five methods per class, which
    made importing this module a noticeable part of a CLI call's start-up.
    """
    names = tuple(n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_"))
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    count = len(names)

    check = cls.__dict__.get("__post_init__")  # a node's own validation of its operands
    type_name = cls.__name__

    def __init__(self: Expr, *args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) != count:
            args = _bind(cls, names, defaults, args, kwargs)
        for name, value in zip(names, args):
            object.__setattr__(self, name, value)
        if check is not None:
            check(self)
        object.__setattr__(self, "shape", self._shape())
        # Hashed at construction: children are hashed already, so this is O(1) and never recursive.
        object.__setattr__(self, "_hash", hash((type_name,) + args))

    cls.__init__ = __init__  # type: ignore[misc]
    cls._field_names = names  # type: ignore[attr-defined]
    cls.__hash__ = _cached_hash  # type: ignore[assignment]
    cls.__eq__ = _structural_eq  # type: ignore[assignment]
    cls.__setattr__ = _frozen  # type: ignore[assignment]
    cls.__delattr__ = _frozen  # type: ignore[assignment]
    return cls


class _Interning(type):
    """Constructing a node equal to a live one returns the live one (hash-consing).

    Equal expressions are then one object, so comparing them (dictionary lookups keyed
    by large subtrees, the simplifier's caches) is an identity test rather than a walk
    of both trees. The table holds nodes weakly: it never keeps an expression alive.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        key = (cls, tuple(getattr(obj, f) for f in cls._field_names))  # type: ignore[attr-defined]
        found = _INTERNED.get(key)
        if found is not None:
            return found
        _INTERNED[key] = obj
        return obj


_INTERNED: "weakref.WeakValueDictionary[Any, Expr]" = weakref.WeakValueDictionary()


class Expr(metaclass=_Interning):
    """Base of all nodes. `shape` is computed once at construction."""

    shape: Shape
    _field_names: tuple[str, ...] = ()

    def _shape(self) -> Shape:  # pragma: no cover - every node overrides
        raise NotImplementedError

    @property
    def is_scalar(self) -> bool:
        return self.shape == SCALAR

    def children(self) -> tuple[Expr, ...]:
        out: list[Expr] = []
        for name in self._field_names:
            v = getattr(self, name)
            if isinstance(v, Expr):
                out.append(v)
            elif isinstance(v, tuple) and v and isinstance(v[0], Expr):
                out.extend(v)
        return tuple(out)

    def with_children(self, new: tuple[Expr, ...]) -> Expr:
        """The same node over new children (same count, same order as `children()`)."""
        it = iter(new)
        kwargs = {}
        for name in self._field_names:
            v = getattr(self, name)
            if isinstance(v, Expr):
                kwargs[name] = next(it)
            elif isinstance(v, tuple) and v and isinstance(v[0], Expr):
                kwargs[name] = tuple(next(it) for _ in v)
            else:
                kwargs[name] = v
        return type(self)(**kwargs)

    def __repr__(self) -> str:
        from .printers import to_text  # local: printers import ir
        return f"<{type(self).__name__} {to_text(self)} : {self.shape[0]}×{self.shape[1]}>"


def _square(x: Expr, what: str) -> Dim:
    r, c = x.shape
    if r != c:
        raise IRError(f"{what} needs a square matrix, got {r}×{c}")
    return r


# ----------------------------------------------------------------------------- leaves

@node
class Var(Expr):
    """A named input. kind: "general", "symmetric" or "spd" (structure the verifier respects)."""
    name: str
    dims: Shape
    kind: str = "general"

    def _shape(self) -> Shape:
        return self.dims


@node
class Const(Expr):
    """A rational number (a 1×1 scalar)."""
    value: Fraction

    def _shape(self) -> Shape:
        return SCALAR


@node
class Identity(Expr):
    """The n×n identity matrix I."""
    n: Dim

    def _shape(self) -> Shape:
        return (self.n, self.n)


@node
class Fill(Expr):
    """A matrix whose every entry is the scalar `value` (ones, zeros, a broadcast scalar)."""
    value: Expr
    dims: Shape

    def __post_init__(self) -> None:
        if not self.value.is_scalar:
            raise IRError("Fill needs a scalar value")

    def _shape(self) -> Shape:
        return self.dims


# ----------------------------------------------------------------------------- linear structure

@node
class Add(Expr):
    """Sum of terms of equal shape."""
    terms: tuple[Expr, ...]

    def _shape(self) -> Shape:
        s = self.terms[0].shape
        for t in self.terms[1:]:
            if t.shape != s:
                raise IRError(f"Add of shapes {s} and {t.shape}")
        return s


@node
class Mul(Expr):
    """Product: scalar (1×1) factors, which commute, then a matrix chain with matching inner dims."""
    factors: tuple[Expr, ...]

    def _shape(self) -> Shape:
        chain = [f for f in self.factors if not f.is_scalar]
        if not chain:
            return SCALAR
        for a, b in zip(chain, chain[1:]):
            if a.shape[1] != b.shape[0]:
                raise IRError(f"Mul of {a.shape} by {b.shape}")
        return (chain[0].shape[0], chain[-1].shape[1])

    @property
    def scalars(self) -> tuple[Expr, ...]:
        return tuple(f for f in self.factors if f.is_scalar)

    @property
    def chain(self) -> tuple[Expr, ...]:
        return tuple(f for f in self.factors if not f.is_scalar)


@node
class Transpose(Expr):
    arg: Expr

    def _shape(self) -> Shape:
        return (self.arg.shape[1], self.arg.shape[0])


# ----------------------------------------------------------------------------- elementwise

@node
class Hadamard(Expr):
    """Entrywise product of factors of equal shape."""
    factors: tuple[Expr, ...]

    def _shape(self) -> Shape:
        s = self.factors[0].shape
        for t in self.factors[1:]:
            if t.shape != s:
                raise IRError(f"Hadamard of shapes {s} and {t.shape}")
        return s


@node
class Power(Expr):
    """Entrywise power x.^p with a rational exponent (for a scalar, the ordinary power)."""
    arg: Expr
    exponent: Fraction

    def _shape(self) -> Shape:
        return self.arg.shape


@node
class Func(Expr):
    """An elementwise function (one of ELEMENTWISE) applied entrywise."""
    name: str
    arg: Expr

    def __post_init__(self) -> None:
        if self.name not in ELEMENTWISE:
            raise IRError(f"unknown elementwise function {self.name}")

    def _shape(self) -> Shape:
        return self.arg.shape


# ----------------------------------------------------------------------------- reductions and matrix functions

@node
class Trace(Expr):
    arg: Expr

    def _shape(self) -> Shape:
        _square(self.arg, "tr")
        return SCALAR


@node
class Sum(Expr):
    """Sum of all entries."""
    arg: Expr

    def _shape(self) -> Shape:
        return SCALAR


@node
class Det(Expr):
    arg: Expr

    def _shape(self) -> Shape:
        _square(self.arg, "det")
        return SCALAR


@node
class LogDet(Expr):
    """log(det(X)), defined where det(X) > 0."""
    arg: Expr

    def _shape(self) -> Shape:
        _square(self.arg, "logdet")
        return SCALAR


@node
class Inverse(Expr):
    arg: Expr

    def _shape(self) -> Shape:
        n = _square(self.arg, "inv")
        return (n, n)


@node
class MatPow(Expr):
    """Integer power X^k of a square matrix, k ≥ 2."""
    arg: Expr
    k: int

    def _shape(self) -> Shape:
        n = _square(self.arg, "matrix power")
        return (n, n)


@node
class DiagMat(Expr):
    """diag(v): the square matrix with vector v on its diagonal."""
    arg: Expr

    def _shape(self) -> Shape:
        if self.arg.shape[1] != 1:
            raise IRError("diag of a non-vector")
        return (self.arg.shape[0], self.arg.shape[0])


@node
class DiagVec(Expr):
    """diag(X): the vector of the diagonal of square X."""
    arg: Expr

    def _shape(self) -> Shape:
        return (_square(self.arg, "diag"), 1)


@node
class Softmax(Expr):
    """softmax(v) = exp(v) / sum(exp(v)) of a column vector."""
    arg: Expr

    def _shape(self) -> Shape:
        if self.arg.shape[1] != 1:
            raise IRError("softmax of a non-vector")
        return self.arg.shape


@node
class LogSumExp(Expr):
    """log(sum(exp(v))) of a column vector."""
    arg: Expr

    def _shape(self) -> Shape:
        if self.arg.shape[1] != 1:
            raise IRError("logsumexp of a non-vector")
        return SCALAR


# ----------------------------------------------------------------------------- traversal helpers

def postorder(root: Expr) -> list[Expr]:
    """Distinct subexpressions, children before parents; iterative so depth is not limited."""
    seen: set[Expr] = set()
    order: list[Expr] = []
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        e, expanded = stack.pop()
        if expanded:
            order.append(e)
            continue
        if e in seen:
            continue
        seen.add(e)
        stack.append((e, True))
        for c in reversed(e.children()):
            if c not in seen:
                stack.append((c, False))
    return order


def variables(root: Expr) -> dict[str, Var]:
    """The variables of an expression by name, in order of first appearance."""
    out: dict[str, Var] = {}
    for e in postorder(root):
        if isinstance(e, Var) and e.name not in out:
            out[e.name] = e
    return out


def depends_on(root: Expr, names: frozenset[str] | set[str]) -> dict[Expr, bool]:
    """For every subexpression: does it contain one of the named variables?"""
    dep: dict[Expr, bool] = {}
    for e in postorder(root):
        dep[e] = (isinstance(e, Var) and e.name in names) or any(dep[c] for c in e.children())
    return dep


def walk(root: Expr) -> Iterator[Expr]:
    yield from postorder(root)


def size(root: Expr) -> int:
    """Number of nodes counted as a tree (shared subtrees counted each time they occur)."""
    count: dict[Expr, int] = {}
    for e in postorder(root):
        count[e] = 1 + sum(count[c] for c in e.children())
    return count[root]
