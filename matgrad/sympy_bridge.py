"""Conversion of IR expressions to SymPy matrix expressions (the Python API's boundary format).

Mapping:

* a variable with shape r×c → `MatrixSymbol(name, r, c)`; a 1×1 variable → `Symbol(name, real=True)`;
  a symbolic dimension "n" → `Symbol("n", integer=True, positive=True)` (see `sympy_dim`);
* every 1×1 IR value becomes a SymPy *scalar* expression, so that it can scale matrices.
  A matrix chain whose product is 1×1 (such as xᵀAy) becomes `Trace(x.T*A*y)`;
* Const → Rational, Identity → Identity, Fill → c·OneMatrix (ZeroMatrix for 0),
  Add → MatAdd / Add, Mul → scalars times MatMul, Transpose → Transpose,
  Hadamard → HadamardProduct, Power → HadamardPower (matrix) / `**` (scalar),
  Func → ElementwiseApplyFunction(Lambda(t, f(t)), X) (matrix) / f(x) (scalar),
  Trace → Trace, Sum → Trace(OneMatrix(c, r)·X), Det → Determinant, LogDet → log(Determinant),
  Inverse → Inverse, MatPow → MatPow, DiagMat → DiagMatrix, DiagVec → DiagonalOf,
  Softmax → exp(v)·(1/sum(exp(v))), LogSumExp → log(sum(exp(v))).

Variable kinds ("symmetric", "spd") are not encoded: SymPy's MatrixSymbol carries no
such assumption. No simplification and no `.diff` is called; SymPy's constructors
are used unevaluated.

To evaluate numerically, replace the MatrixSymbols (and dimension Symbols) with explicit
matrices and call `.doit()`. Two SymPy 1.14 gaps: HadamardPower has no `doit()` (use
`.as_explicit()` on it), and DiagonalOf cannot compute its shape once its argument is an
explicit matrix (take `.diagonal()` of the explicit argument instead).

SymPy is imported only when a conversion is made, so importing this module (and the
CLI) stays cheap. The conversion is iterative over `ir.postorder`, so deep IR costs no
Python stack here (SymPy's own printers and `doit` may still recurse on the result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import ir
from .ir import (Add, Const, Det, DiagMat, DiagVec, Dim, Expr, Fill, Func, Hadamard, Identity,
                 Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace, Transpose,
                 Var)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import sympy

__all__ = ["to_sympy", "sympy_dim", "scalar_function"]


def sympy_dim(d: Dim) -> "sympy.Expr":
    """The SymPy form of a dimension: an Integer, or a positive integer Symbol for a name."""
    import sympy
    if isinstance(d, int):
        return sympy.Integer(d)
    return sympy.Symbol(d, integer=True, positive=True)


def scalar_function(name: str) -> Callable[[Any], Any]:
    """The scalar SymPy function for an IR elementwise function name (one of ir.ELEMENTWISE)."""
    import sympy
    table: dict[str, Callable[[Any], Any]] = {
        "exp": sympy.exp,
        "log": sympy.log,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tanh": sympy.tanh,
        "sigmoid": lambda t: 1 / (1 + sympy.exp(-t)),
        "softplus": lambda t: sympy.log(1 + sympy.exp(t)),
        "relu": lambda t: sympy.Max(t, 0),
        "abs": sympy.Abs,
        "sign": sympy.sign,
        # Heaviside needs its value at 0 spelled out; step(0) = 0.
        "step": lambda t: sympy.Heaviside(t, 0),
    }
    try:
        return table[name]
    except KeyError:
        raise ir.IRError(f"sympy bridge: unknown elementwise function {name}") from None


class _Converter:
    """Builds each node's SymPy form from its children's, which are already converted."""

    def __init__(self) -> None:
        import sympy
        from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
        self.sp = sympy
        self.apply = ElementwiseApplyFunction
        # Bound variable of elementwise Lambdas; real so that Max/Heaviside behave.
        self.t = sympy.Symbol("t", real=True)
        self.memo: dict[Expr, Any] = {}

    # -- helpers -------------------------------------------------------------------------

    def dims(self, e: Expr) -> tuple[Any, Any]:
        return sympy_dim(e.shape[0]), sympy_dim(e.shape[1])

    def elementwise(self, name: str, x: Any) -> Any:
        """f applied entrywise to the matrix expression x."""
        f = scalar_function(name)
        return self.apply(self.sp.Lambda(self.t, f(self.t)), x)

    def sum_entries(self, x: Any, shape: tuple[Dim, Dim]) -> Any:
        """Sum of all entries of the r×c matrix expression x: tr(1_{c×r} X)."""
        r, c = sympy_dim(shape[0]), sympy_dim(shape[1])
        return self.sp.Trace(self.sp.MatMul(self.sp.OneMatrix(c, r), x))

    # -- nodes ---------------------------------------------------------------------------

    def convert(self, e: Expr) -> Any:
        sp = self.sp
        m = self.memo
        scalar = e.is_scalar
        if isinstance(e, Var):
            if scalar:
                return sp.Symbol(e.name, real=True)
            return sp.MatrixSymbol(e.name, *self.dims(e))
        if isinstance(e, Const):
            return sp.Rational(e.value.numerator, e.value.denominator)
        if isinstance(e, Identity):
            return sp.Integer(1) if scalar else sp.Identity(sympy_dim(e.n))
        if isinstance(e, Fill):
            v = m[e.value]
            if scalar:
                return v
            if v == 0:
                return sp.ZeroMatrix(*self.dims(e))
            ones = sp.OneMatrix(*self.dims(e))
            return ones if v == 1 else sp.MatMul(v, ones)
        if isinstance(e, Add):
            terms = [m[t] for t in e.terms]
            if len(terms) == 1:
                return terms[0]
            return sp.Add(*terms) if scalar else sp.MatAdd(*terms)
        if isinstance(e, Mul):
            scalars = [m[f] for f in e.scalars]
            chain = [m[f] for f in e.chain]
            if not chain:
                return sp.Mul(*scalars)
            if scalar:
                # A 1×1 product of matrices (xᵀAy) must become a SymPy scalar to scale matrices.
                return sp.Mul(*scalars, sp.Trace(sp.MatMul(*chain)))
            if len(chain) == 1 and not scalars:
                return chain[0]
            return sp.MatMul(*scalars, *chain)
        if isinstance(e, Transpose):
            return m[e.arg] if scalar else sp.Transpose(m[e.arg])
        if isinstance(e, Hadamard):
            fs = [m[f] for f in e.factors]
            if len(fs) == 1:
                return fs[0]
            return sp.Mul(*fs) if scalar else sp.HadamardProduct(*fs)
        if isinstance(e, Power):
            p = sp.Rational(e.exponent.numerator, e.exponent.denominator)
            return sp.Pow(m[e.arg], p) if scalar else sp.HadamardPower(m[e.arg], p)
        if isinstance(e, Func):
            x = m[e.arg]
            return scalar_function(e.name)(x) if scalar else self.elementwise(e.name, x)
        if isinstance(e, Trace):
            return m[e.arg] if e.arg.is_scalar else sp.Trace(m[e.arg])
        if isinstance(e, Sum):
            return m[e.arg] if e.arg.is_scalar else self.sum_entries(m[e.arg], e.arg.shape)
        if isinstance(e, Det):
            return m[e.arg] if e.arg.is_scalar else sp.Determinant(m[e.arg])
        if isinstance(e, LogDet):
            return sp.log(m[e.arg] if e.arg.is_scalar else sp.Determinant(m[e.arg]))
        if isinstance(e, Inverse):
            return sp.Pow(m[e.arg], -1) if scalar else sp.Inverse(m[e.arg])
        if isinstance(e, MatPow):
            return sp.Pow(m[e.arg], e.k) if scalar else sp.MatPow(m[e.arg], e.k)
        if isinstance(e, DiagMat):
            return m[e.arg] if scalar else sp.DiagMatrix(m[e.arg])
        if isinstance(e, DiagVec):
            return m[e.arg] if scalar else sp.DiagonalOf(m[e.arg])
        if isinstance(e, Softmax):
            if scalar:
                return sp.exp(m[e.arg]) / sp.exp(m[e.arg])
            ex = self.elementwise("exp", m[e.arg])
            return sp.MatMul(sp.Pow(self.sum_entries(ex, e.arg.shape), -1), ex)
        if isinstance(e, LogSumExp):
            if e.arg.is_scalar:
                return sp.log(sp.exp(m[e.arg]))
            ex = self.elementwise("exp", m[e.arg])
            return sp.log(self.sum_entries(ex, e.arg.shape))
        raise ir.IRError(f"sympy bridge: unknown node {type(e).__name__}")


def to_sympy(expr: Expr) -> "sympy.Basic":
    """The SymPy matrix expression (or scalar expression, for a 1×1 IR value) equal to `expr`."""
    conv = _Converter()
    for e in ir.postorder(expr):
        conv.memo[e] = conv.convert(e)
    return conv.memo[expr]
