"""NumPy evaluation of IR expressions.

Every value is a 2-D float array of the node's shape (vectors n×1, scalars 1×1).
Symbolic dimensions are resolved from the arrays bound to variables (`dim_sizes`).
Evaluation walks `ir.postorder` once, so it is iterative (no recursion on the
tree, whatever its depth) and each distinct subexpression is computed once.

With `check_domain=True` the evaluator refuses points where the expression is
not (robustly) defined by raising `DomainViolation`; the verifier uses this to
redraw inputs. `DomainViolation` is internal and deliberately not a MatgradError.

Conventions at non-smooth points: step(0) = 0, sign(0) = 0, relu(0) = 0, abs(0) = 0.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping

import numpy as np

from . import ir
from .ir import (Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity,
                 Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace,
                 Transpose, Var)

__all__ = ["DomainViolation", "COND_LIMIT", "dim_sizes", "evaluate"]

# Matrices whose condition number exceeds this are treated as singular when
# checking the domain: finite differences through them are meaningless.
COND_LIMIT = 1e8


class DomainViolation(Exception):
    """The expression is not defined (or not robustly so) at the given point.

    Internal: raised only when `check_domain=True`; the verifier catches it and
    draws another point. `what` says which operation failed and why.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)


# ----------------------------------------------------------------------------- inputs and sizes

def _describe_shape(dims: tuple[Any, Any]) -> str:
    return f"{dims[0]}×{dims[1]}"


def _as_matrix(value: Any, var: Var) -> np.ndarray:
    """`value` as a 2-D float array laid out for `var` (1-D → column or row, 0-d → 1×1)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value for {var.name} is not a real numeric array: {exc}") from None
    r, c = var.dims
    if arr.ndim == 2:
        return arr
    if arr.ndim == 0:
        return arr.reshape(1, 1)
    if arr.ndim == 1:
        if c == 1:
            return arr.reshape(-1, 1)
        if r == 1:
            return arr.reshape(1, -1)
        raise ValueError(f"{var.name} is a {_describe_shape(var.dims)} matrix but was given "
                         f"a 1-D array of length {arr.shape[0]}")
    raise ValueError(f"{var.name} needs a 2-D array, got {arr.ndim} dimensions {arr.shape}")


def _symbolic_dims(expr: Expr) -> set[str]:
    """Every symbolic dimension name used anywhere in `expr`."""
    _warm_hashes(expr)
    names: set[str] = set()
    for e in ir.postorder(expr):
        for d in e.shape:
            if isinstance(d, str):
                names.add(d)
    return names


def dim_sizes(expr: Expr, env: Mapping[str, Any],
              known: Mapping[str, int] | None = None) -> dict[str, int]:
    """Sizes of the symbolic dimensions of `expr`, read off the arrays in `env`.

    Each variable's declared dims are matched against its array's shape: an int
    dim must equal the array's extent, a named dim is bound to it. `known`
    pre-binds sizes (e.g. for dims no variable carries). Variables absent from
    `env` are skipped. Raises ValueError naming the dimension and both sources
    when two bindings disagree, or when an int dim does not match.
    """
    _warm_hashes(expr)
    sizes: dict[str, int] = dict(known or {})
    source: dict[str, str] = {k: "the given sizes" for k in sizes}
    for e in ir.postorder(expr):
        if not isinstance(e, Var) or e.name not in env:
            continue
        arr = _as_matrix(env[e.name], e)
        for axis, d in enumerate(e.dims):
            got = int(arr.shape[axis])
            where = f"{e.name} ({'rows' if axis == 0 else 'columns'})"
            if isinstance(d, str):
                if d in sizes and sizes[d] != got:
                    raise ValueError(f"inconsistent sizes for dimension {d!r}: {source[d]} gives "
                                     f"{sizes[d]} but {where} gives {got}")
                if d not in sizes:
                    sizes[d] = got
                    source[d] = where
            elif d != got:
                raise ValueError(f"{e.name} is declared {_describe_shape(e.dims)} but its array "
                                 f"has shape {arr.shape[0]}×{arr.shape[1]}")
    return sizes


# ----------------------------------------------------------------------------- node semantics

def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; pick the algebraically equal form per sign.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": _stable_sigmoid,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "relu": lambda x: np.maximum(x, 0.0),
    "abs": np.abs,
    "sign": np.sign,
    "step": lambda x: (x > 0).astype(float),
}


def _cond(a: np.ndarray) -> float:
    if a.size == 0:
        return 1.0
    if not np.all(np.isfinite(a)):
        return float("inf")
    s = np.linalg.svd(a, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


class _Context:
    """Per-evaluation settings shared by the node functions."""

    __slots__ = ("sizes", "check")

    def __init__(self, sizes: Mapping[str, int], check: bool) -> None:
        self.sizes = sizes
        self.check = check

    def dim(self, d: ir.Dim) -> int:
        if isinstance(d, int):
            return d
        try:
            return self.sizes[d]
        except KeyError:
            raise ValueError(f"cannot tell the size of dimension {d!r}: no variable has it "
                             f"(pass sizes={{{d!r}: …}})") from None


def _power(e: Power, a: np.ndarray, ctx: _Context) -> np.ndarray:
    out = _power_value(e, a, ctx)
    if ctx.check and np.any((out == 0) & (a != 0)):
        # x.^5000 of |x| < 1: zeros compared with zeros would be no evidence at all.
        raise DomainViolation(f"a power ({e.exponent}) of a non-zero entry underflows to 0")
    return out


def _power_value(e: Power, a: np.ndarray, ctx: _Context) -> np.ndarray:
    p: Fraction = Fraction(e.exponent)
    if p.denominator == 1:
        k = int(p)
        if ctx.check and k < 0 and np.any(a == 0):
            raise DomainViolation(f"a negative power ({k}) of a zero entry")
        if k == 2:
            return a * a
        return a ** k if k >= 0 else 1.0 / (a ** (-k))
    if ctx.check and np.any(a < 0):
        raise DomainViolation(f"a non-integer power ({p}) of a negative entry")
    if p == Fraction(1, 2):
        return np.sqrt(a)
    return np.power(a, float(p))


def _func(e: Func, a: np.ndarray, ctx: _Context) -> np.ndarray:
    if ctx.check and e.name == "log" and np.any(a <= 0):
        raise DomainViolation(f"log of a non-positive entry ({float(np.min(a)):.3g})")
    out = _ELEMENTWISE[e.name](a)
    if ctx.check and e.name == "exp" and np.any(out == 0):
        raise DomainViolation("exp of an entry so negative that it underflows to 0")
    return out


def _mul(e: Mul, args: list[np.ndarray], ctx: _Context) -> np.ndarray:
    # Classify by the symbolic shape, not the numeric one: a factor n×1 with n = 1
    # is still part of the chain and must keep its position.
    scale = 1.0
    chain: np.ndarray | None = None
    for f, v in zip(e.factors, args):
        if f.is_scalar:
            scale *= float(v[0, 0])
        elif chain is None:
            chain = v
        else:
            chain = chain @ v
    if chain is None:
        return np.array([[scale]])
    return scale * chain


def _add(e: Add, args: list[np.ndarray], ctx: _Context) -> np.ndarray:
    out = args[0] + args[1] if len(args) > 1 else args[0].copy()
    for t in args[2:]:
        out += t  # `out` is fresh, so adding in place cannot clobber an operand
    return out


def _hadamard(e: Hadamard, args: list[np.ndarray], ctx: _Context) -> np.ndarray:
    out = args[0] * args[1] if len(args) > 1 else args[0].copy()
    for t in args[2:]:
        out *= t
    return out


def _inverse(e: Inverse, a: np.ndarray, ctx: _Context) -> np.ndarray:
    if ctx.check:
        c = _cond(a)
        if c > COND_LIMIT:
            raise DomainViolation(f"inverse of a (nearly) singular matrix (condition number {c:.3g})")
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        if ctx.check:
            raise DomainViolation("inverse of a singular matrix") from None
        return np.full(a.shape, np.nan)


def _logdet(e: LogDet, a: np.ndarray, ctx: _Context) -> np.ndarray:
    sign, logabs = np.linalg.slogdet(a)
    if ctx.check:
        if sign <= 0:
            raise DomainViolation("logdet of a matrix whose determinant is not positive")
        c = _cond(a)
        if c > COND_LIMIT:
            raise DomainViolation(f"logdet of a badly conditioned matrix (condition number {c:.3g})")
    if sign > 0:
        return np.array([[float(logabs)]])
    return np.array([[float("-inf") if sign == 0 else float("nan")]])


def _softmax(e: Softmax, a: np.ndarray, ctx: _Context) -> np.ndarray:
    m = np.max(a)
    if not np.isfinite(m):
        m = 0.0
    z = np.exp(a - m)
    return z / np.sum(z)


def _logsumexp(e: LogSumExp, a: np.ndarray, ctx: _Context) -> np.ndarray:
    m = float(np.max(a))
    if not np.isfinite(m):
        return np.array([[m]])
    return np.array([[m + float(np.log(np.sum(np.exp(a - m))))]])


def _var_value(e: Var, env: Mapping[str, np.ndarray], ctx: _Context) -> np.ndarray:
    try:
        v = env[e.name]
    except KeyError:
        raise KeyError(f"no value given for variable {e.name!r}") from None
    want = (ctx.dim(e.dims[0]), ctx.dim(e.dims[1]))
    if v.shape != want:
        raise ValueError(f"{e.name} should be {want[0]}×{want[1]} but its array is "
                         f"{v.shape[0]}×{v.shape[1]}")
    return v


# Unary nodes: function of (node, child value, context).
_UNARY: dict[type, Callable[[Any, np.ndarray, _Context], np.ndarray]] = {
    Transpose: lambda e, a, ctx: a.T,
    Power: _power,
    Func: _func,
    Trace: lambda e, a, ctx: np.array([[float(np.trace(a))]]),
    Sum: lambda e, a, ctx: np.array([[float(np.sum(a))]]),
    Det: lambda e, a, ctx: np.array([[float(np.linalg.det(a))]]),
    LogDet: _logdet,
    Inverse: _inverse,
    MatPow: lambda e, a, ctx: np.linalg.matrix_power(a, e.k),
    DiagMat: lambda e, a, ctx: np.diag(a[:, 0]),
    DiagVec: lambda e, a, ctx: np.diagonal(a).reshape(-1, 1).copy(),
    Softmax: _softmax,
    LogSumExp: _logsumexp,
    Fill: lambda e, a, ctx: np.full((ctx.dim(e.dims[0]), ctx.dim(e.dims[1])), float(a[0, 0])),
}

_NARY: dict[type, Callable[[Any, list[np.ndarray], _Context], np.ndarray]] = {
    Add: _add,
    Mul: _mul,
    Hadamard: _hadamard,
}


def _warm_hashes(root: Expr) -> None:
    """Compute every node's cached hash children-first.

    Node hashes are lazy and each one hashes its children, so the first hash of
    a deep tree built without hashing would recurse once per level; warming them
    bottom-up with an explicit stack keeps any depth safe.
    """
    done: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        e, expanded = stack.pop()
        if expanded:
            hash(e)
            continue
        if id(e) in done or "_hash" in e.__dict__:
            continue
        done.add(id(e))
        stack.append((e, True))
        stack.extend((c, False) for c in e.children())


class _Plan:
    """An expression compiled to a flat postorder program.

    `run` evaluates every node once; `rerun` re-evaluates only the nodes that
    depend on one variable, reusing the others from an earlier `run` (the
    verifier's finite differences perturb one variable at a time).
    """

    def __init__(self, expr: Expr) -> None:
        self.expr = expr
        _warm_hashes(expr)
        self.order: list[Expr] = ir.postorder(expr)
        index = {e: i for i, e in enumerate(self.order)}
        self.kids: list[tuple[int, ...]] = [tuple(index[c] for c in e.children()) for e in self.order]
        self.var_names: tuple[str, ...] = tuple(ir.variables(expr))
        self._dependents: dict[str, list[int]] = {}

    def dependents(self, name: str) -> list[int]:
        """Indices (in postorder) of the nodes whose value depends on variable `name`."""
        if name not in self._dependents:
            dep = [False] * len(self.order)
            out: list[int] = []
            for i, e in enumerate(self.order):
                if (isinstance(e, Var) and e.name == name) or any(dep[k] for k in self.kids[i]):
                    dep[i] = True
                    out.append(i)
            self._dependents[name] = out
        return self._dependents[name]

    def _node(self, i: int, values: list[Any], env: Mapping[str, np.ndarray],
              ctx: _Context) -> np.ndarray:
        e = self.order[i]
        t = type(e)
        if t is Var:
            out = _var_value(e, env, ctx)
            if ctx.check and not np.all(np.isfinite(out)):
                raise DomainViolation(f"non-finite value given for {e.name}")
            return out
        if t is Const:
            return np.array([[float(e.value)]])
        if t is Identity:
            return np.eye(ctx.dim(e.n))
        kids = self.kids[i]
        if t in _UNARY:
            out = _UNARY[t](e, values[kids[0]], ctx)
        elif t in _NARY:
            out = _NARY[t](e, [values[k] for k in kids], ctx)
        else:  # pragma: no cover - a node type added to ir.py but not here
            raise NotImplementedError(f"cannot evaluate {t.__name__}")
        if ctx.check and not np.all(np.isfinite(out)):
            raise DomainViolation(f"non-finite value in {t.__name__}"
                                  + (f" {e.name}" if t is Func else ""))
        return out

    def run(self, env: Mapping[str, np.ndarray], ctx: _Context) -> list[np.ndarray]:
        """Values of all nodes (postorder); `env` holds 2-D float arrays."""
        values: list[Any] = [None] * len(self.order)
        with np.errstate(all="ignore"):
            for i in range(len(self.order)):
                values[i] = self._node(i, values, env, ctx)
        return values

    def rerun(self, base: list[np.ndarray], name: str, env: Mapping[str, np.ndarray],
              ctx: _Context) -> np.ndarray:
        """The root's value when only variable `name` changed (to its value in `env`)."""
        values = list(base)
        with np.errstate(all="ignore"):
            for i in self.dependents(name):
                values[i] = self._node(i, values, env, ctx)
        return values[-1]


def _prepare_env(expr: Expr, env: Mapping[str, Any],
                 sizes: Mapping[str, int] | None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    arrays: dict[str, np.ndarray] = {}
    for name, var in ir.variables(expr).items():
        if name in env:
            arrays[name] = _as_matrix(env[name], var)
    return arrays, dim_sizes(expr, arrays, sizes)


# ----------------------------------------------------------------------------- public API

def evaluate(expr: Expr, env: Mapping[str, Any], *, check_domain: bool = False,
             sizes: Mapping[str, int] | None = None) -> np.ndarray:
    """The value of `expr` as a fresh 2-D float array of the node's shape.

    `env` maps variable names to arrays (1-D accepted for vectors, 0-d or floats
    for scalars); extra names are ignored. Symbolic dims are inferred from the
    arrays; `sizes` may pre-bind dims that no variable carries (e.g. the n of a
    lone Identity(n)). Raises KeyError for a missing variable and ValueError for
    inconsistent or unknown sizes. Each distinct subexpression is evaluated once
    and the walk is iterative. Without `check_domain`, values outside the domain
    come out as nan/inf; with it, `DomainViolation` is raised instead.
    """
    plan = _Plan(expr)
    arrays, resolved = _prepare_env(expr, env, sizes)
    values = plan.run(arrays, _Context(resolved, check_domain))
    return np.array(values[-1], dtype=float)
