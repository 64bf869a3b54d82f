"""Tests for matgrad.sympy_bridge: SymPy forms evaluated numerically against direct NumPy.

Each case substitutes random matrices for the MatrixSymbols (and sizes for the
symbolic dimensions) in the SymPy result, evaluates with `.doit()` / `.as_explicit()`,
and compares with a NumPy computation written here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from matgrad import ir
from matgrad.ir import (Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity,
                        Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace,
                        Transpose, Var)
from matgrad.sympy_bridge import sympy_dim, to_sympy

REPO = Path(__file__).resolve().parent.parent
DIMS = {"m": 3, "n": 2}


def C(v: int | str) -> Const:
    return Const(Fraction(v))


def neg(e: Expr) -> Expr:
    return Mul((C(-1), e))


A = Var("A", ("m", "n"))
B = Var("B", ("m", "n"))
P = Var("P", ("m", "n"))          # positive entries (log, fractional powers)
W = Var("W", ("n", "n"))
S = Var("S", ("n", "n"), "spd")   # symmetric positive definite (logdet)
s = Var("s", ("n", 1))
x = Var("x", ("m", 1))
r = Var("r", (1, "n"))            # a row vector
K = Var("K", (2, 3))              # concrete dimensions
L = Var("L", (3, 2))
g = Var("gamma", (1, 1))
a = Var("a", (1, 1))
c = Var("c", (1, 1))              # positive scalar

_rng = np.random.default_rng(20240601)
ENV: dict[str, np.ndarray] = {
    "A": _rng.normal(size=(3, 2)),
    "B": _rng.normal(size=(3, 2)),
    "P": _rng.uniform(0.5, 2.0, size=(3, 2)),
    "W": _rng.normal(size=(2, 2)) + 2 * np.eye(2),
    "s": _rng.normal(size=(2, 1)),
    "x": _rng.normal(size=(3, 1)),
    "r": _rng.normal(size=(1, 2)),
    "K": _rng.normal(size=(2, 3)),
    "L": _rng.normal(size=(3, 2)),
    "gamma": np.array([[-0.7]]),
    "a": np.array([[1.3]]),
    "c": np.array([[0.8]]),
}
_m = _rng.normal(size=(2, 2))
ENV["S"] = _m @ _m.T + 2 * np.eye(2)

NP_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": lambda t: 1 / (1 + np.exp(-t)),
    "softplus": lambda t: np.log1p(np.exp(t)),
    "relu": lambda t: np.maximum(t, 0),
    "abs": np.abs, "sign": np.sign,
    "step": lambda t: (t > 0).astype(float),
}


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v)
    return e / e.sum()


E = ENV
Case = tuple[str, Expr, Callable[[], Any]]
CASES: list[Case] = [
    ("least_squares_gradient", Mul((C(2), Transpose(A), Add((Mul((A, s)), neg(x))))),
     lambda: 2 * E["A"].T @ (E["A"] @ E["s"] - E["x"])),
    ("half_norm_squared", Mul((C("1/2"), Sum(Power(Add((Mul((A, s)), neg(x))), Fraction(2))))),
     lambda: 0.5 * np.sum((E["A"] @ E["s"] - E["x"]) ** 2)),
    ("quadratic_form", Mul((Transpose(s), W, s)), lambda: E["s"].T @ E["W"] @ E["s"]),
    ("scalars_times_matrix", Mul((g, a, C(3), A)), lambda: 3 * E["gamma"] * E["a"] * E["A"]),
    ("scalar_product_times_matrix", Mul((Mul((Transpose(s), s)), W)),
     lambda: (E["s"].T @ E["s"]) * E["W"]),
    ("scaled_one_by_one_chain", Mul((C(2), g, Transpose(x), A, s)),
     lambda: 2 * E["gamma"] * (E["x"].T @ E["A"] @ E["s"])),
    ("outer_product", Mul((x, Transpose(s))), lambda: E["x"] @ E["s"].T),
    ("row_vector_chain", Mul((r, W)), lambda: E["r"] @ E["W"]),
    ("concrete_dims", Mul((K, L)), lambda: E["K"] @ E["L"]),
    ("transpose", Transpose(A), lambda: E["A"].T),
    ("transpose_scalar", Transpose(g), lambda: E["gamma"]),
    ("matrix_sum", Add((A, neg(B), Mul((C("1/2"), P)))), lambda: E["A"] - E["B"] + 0.5 * E["P"]),
    ("scalar_sum", Add((g, a, C(1))), lambda: E["gamma"] + E["a"] + 1),
    ("identity", Add((W, Identity("n"))), lambda: E["W"] + np.eye(2)),
    ("identity_one_by_one", Add((g, Identity(1))), lambda: E["gamma"] + 1),
    ("fill_ones", Add((A, Fill(C(1), ("m", "n")))), lambda: E["A"] + 1),
    ("fill_zeros", Add((A, Fill(C(0), ("m", "n")))), lambda: E["A"]),
    ("fill_const", Fill(C(3), ("m", "n")), lambda: np.full((3, 2), 3.0)),
    ("fill_scalar_var", Add((s, Fill(g, ("n", 1)))), lambda: E["s"] + E["gamma"]),
    ("fill_one_by_one", Fill(g, (1, 1)), lambda: E["gamma"]),
    ("hadamard", Hadamard((A, B, P)), lambda: E["A"] * E["B"] * E["P"]),
    ("hadamard_scalar", Hadamard((g, a)), lambda: E["gamma"] * E["a"]),
    ("elementwise_division", Hadamard((A, Power(P, Fraction(-1)))), lambda: E["A"] / E["P"]),
    ("entrywise_square", Power(A, Fraction(2)), lambda: E["A"] ** 2),
    ("entrywise_sqrt", Power(P, Fraction(1, 2)), lambda: np.sqrt(E["P"])),
    ("entrywise_power_negative_fraction", Power(P, Fraction(-3, 2)), lambda: E["P"] ** -1.5),
    ("scalar_cube", Power(g, Fraction(3)), lambda: E["gamma"] ** 3),
    ("scalar_reciprocal", Power(g, Fraction(-1)), lambda: 1 / E["gamma"]),
    ("scalar_fractional_power", Power(c, Fraction(3, 2)), lambda: E["c"] ** 1.5),
    ("trace", Trace(Mul((Transpose(A), A))), lambda: np.trace(E["A"].T @ E["A"])),
    ("trace_scalar", Trace(g), lambda: E["gamma"]),
    ("sum_matrix", Sum(A), lambda: E["A"].sum()),
    ("sum_vector", Sum(s), lambda: E["s"].sum()),
    ("sum_row_vector", Sum(r), lambda: E["r"].sum()),
    ("sum_scalar", Sum(g), lambda: E["gamma"]),
    ("det", Det(W), lambda: np.linalg.det(E["W"])),
    ("det_scalar", Det(g), lambda: E["gamma"]),
    ("logdet", LogDet(S), lambda: np.log(np.linalg.det(E["S"]))),
    ("logdet_scalar", LogDet(c), lambda: np.log(E["c"])),
    ("inverse", Inverse(W), lambda: np.linalg.inv(E["W"])),
    ("inverse_of_sum", Inverse(Add((W, Identity("n")))), lambda: np.linalg.inv(E["W"] + np.eye(2))),
    ("inverse_scalar", Inverse(g), lambda: 1 / E["gamma"]),
    ("matpow", MatPow(W, 3), lambda: np.linalg.matrix_power(E["W"], 3)),
    ("matpow_scalar", MatPow(g, 2), lambda: E["gamma"] ** 2),
    ("diagmat", DiagMat(s), lambda: np.diag(E["s"][:, 0])),
    ("diagmat_in_product", Mul((A, DiagMat(s))), lambda: E["A"] @ np.diag(E["s"][:, 0])),
    ("diagvec", DiagVec(W), lambda: np.diag(E["W"]).reshape(2, 1)),
    ("diagvec_of_product", Mul((W, DiagVec(Mul((Transpose(A), A))))),
     lambda: E["W"] @ np.diag(E["A"].T @ E["A"]).reshape(2, 1)),
    ("diag_scalar", DiagMat(DiagVec(g)), lambda: E["gamma"]),
    ("softmax", Softmax(s), lambda: _softmax(E["s"])),
    ("softmax_of_product", Softmax(Mul((A, s))), lambda: _softmax(E["A"] @ E["s"])),
    ("softmax_scalar", Softmax(g), lambda: np.ones((1, 1))),
    ("logsumexp", LogSumExp(x), lambda: np.log(np.exp(E["x"]).sum())),
    ("logsumexp_scalar", LogSumExp(g), lambda: E["gamma"]),
    ("cross_entropy_like", Sum(Hadamard((A, Func("log", P)))), lambda: np.sum(E["A"] * np.log(E["P"]))),
    ("sigmoid_derivative",
     Hadamard((Func("sigmoid", A), Add((Fill(C(1), ("m", "n")), neg(Func("sigmoid", A)))))),
     lambda: NP_FUNCS["sigmoid"](E["A"]) * (1 - NP_FUNCS["sigmoid"](E["A"]))),
]
# Every elementwise function, on a matrix and on a scalar (log on positive values).


def _apply(f: str, name: str) -> Callable[[], np.ndarray]:
    return lambda: NP_FUNCS[f](E[name])


for _f in ir.ELEMENTWISE:
    _mat, _sc = (P, c) if _f == "log" else (A, g)
    CASES.append((f"func_{_f}_matrix", Func(_f, _mat), _apply(_f, _mat.name)))
    CASES.append((f"func_{_f}_scalar", Func(_f, _sc), _apply(_f, _sc.name)))


def _explicit(e: Any) -> Any:
    """Evaluate a SymPy expression free of symbols to a number or an explicit matrix."""
    for _ in range(6):
        new = e.doit()
        if new == e:
            break
        e = new
    if isinstance(e, sp.MatrixExpr) and not isinstance(e, sp.MatrixBase):
        e = e.as_explicit()
    return e


def _substitute(e: Any, rep: dict[Any, Any]) -> Any:
    """Replace symbols bottom-up, evaluating the nodes SymPy cannot evaluate itself.

    Like xreplace (each MatrixSymbol is replaced whole, before its symbolic dimensions),
    but DiagonalOf is evaluated as soon as its argument is explicit, because SymPy's
    DiagonalOf cannot compute its shape over an explicit matrix (Python ints have no
    .is_Integer), and HadamardPower, which has no doit(), is evaluated by hand.
    """
    if e in rep:
        return rep[e]
    if not e.args or isinstance(e, sp.Lambda):  # a Lambda's variable is bound
        return e
    args = [_substitute(arg, rep) for arg in e.args]
    if isinstance(e, sp.DiagonalOf):
        return sp.ImmutableMatrix(_explicit(args[0])).diagonal().T
    if isinstance(e, sp.HadamardPower):
        return sp.ImmutableMatrix(_explicit(args[0])).applyfunc(lambda t: t ** args[1])
    if isinstance(e, (sp.OneMatrix, sp.ZeroMatrix, sp.Identity)):
        # With the sizes known these become explicit, so that doit() multiplies them.
        return e.func(*args).as_explicit()
    return e.func(*args)


def sympy_value(expr: Expr) -> np.ndarray:
    """Numeric value of to_sympy(expr) at ENV, as a 2-D float array."""
    rep: dict[Any, Any] = {}
    for name, var in ir.variables(expr).items():
        val = ENV[name]
        rep[to_sympy(var)] = sp.Float(val[0, 0]) if var.is_scalar else sp.ImmutableMatrix(val)
    rep.update({sympy_dim(d): sp.Integer(n) for d, n in DIMS.items()})
    e = _explicit(_substitute(to_sympy(expr), rep))
    if isinstance(e, sp.MatrixBase):
        return np.array(e.evalf(), dtype=float)
    return np.array([[float(sp.N(e))]])


@pytest.mark.parametrize("expr,reference", [(e, f) for _, e, f in CASES],
                         ids=[name for name, _, _ in CASES])
def test_numeric_agreement(expr: Expr, reference: Callable[[], Any]) -> None:
    got = sympy_value(expr)
    want = np.atleast_2d(np.asarray(reference(), dtype=float))
    shape = tuple(DIMS.get(d, d) if isinstance(d, str) else d for d in expr.shape)
    assert got.shape == shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_structure_of_leaves_and_nodes() -> None:
    m_, n_ = sympy_dim("m"), sympy_dim("n")
    assert m_.is_integer and m_.is_positive and sympy_dim(3) == sp.Integer(3)
    assert to_sympy(A) == sp.MatrixSymbol("A", m_, n_)
    assert to_sympy(s).shape == (n_, 1)
    assert to_sympy(g) == sp.Symbol("gamma", real=True)
    assert to_sympy(C("-3/4")) == sp.Rational(-3, 4)
    assert to_sympy(Identity("n")) == sp.Identity(n_)
    assert to_sympy(Fill(C(0), ("m", "n"))) == sp.ZeroMatrix(m_, n_)
    assert to_sympy(Fill(C(1), ("m", "n"))) == sp.OneMatrix(m_, n_)
    assert isinstance(to_sympy(Add((A, B))), sp.MatAdd)
    assert isinstance(to_sympy(Mul((A, s))), sp.MatMul)
    assert isinstance(to_sympy(Transpose(A)), sp.Transpose)
    assert isinstance(to_sympy(Hadamard((A, B))), sp.HadamardProduct)
    assert isinstance(to_sympy(Power(A, Fraction(2))), sp.HadamardPower)
    assert to_sympy(Power(g, Fraction(2))) == sp.Symbol("gamma", real=True) ** 2
    assert isinstance(to_sympy(Func("exp", A)), ElementwiseApplyFunction)
    assert to_sympy(Func("exp", g)) == sp.exp(sp.Symbol("gamma", real=True))
    assert isinstance(to_sympy(Trace(W)), sp.Trace)
    assert isinstance(to_sympy(Sum(A)), sp.Trace)
    assert isinstance(to_sympy(Det(W)), sp.Determinant)
    assert to_sympy(LogDet(W)) == sp.log(sp.Determinant(to_sympy(W)))
    assert isinstance(to_sympy(Inverse(W)), sp.Inverse)
    assert isinstance(to_sympy(MatPow(W, 3)), sp.MatPow)
    assert isinstance(to_sympy(DiagMat(s)), sp.DiagMatrix)
    assert isinstance(to_sympy(DiagVec(W)), sp.DiagonalOf)
    assert to_sympy(Mul((Transpose(s), s))) == sp.Trace(to_sympy(s).T * to_sympy(s))


def test_deep_ir_does_not_recurse() -> None:
    # 5000 nested sums: the conversion walks the IR iteratively; SymPy flattens the result.
    e: Expr = g
    for _ in range(5000):
        e = Add((e, C(1)))
    assert to_sympy(e) == sp.Symbol("gamma", real=True) + 5000


def test_importing_does_not_import_sympy() -> None:
    code = ("import sys, matgrad.sympy_bridge, matgrad.latex, matgrad.ir; "
            "assert 'sympy' not in sys.modules, 'sympy imported at import time'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported at module level (outside functions and `if TYPE_CHECKING:`)."""
    names: list[str] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            names += [al.name for al in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                stack += node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody
    return names


def test_only_the_bridge_may_import_sympy() -> None:
    offenders = []
    for path in sorted((REPO / "matgrad").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(n == "sympy" or n.startswith("sympy.") for n in _top_level_imports(tree)):
            offenders.append(path.name)
    assert offenders == []
