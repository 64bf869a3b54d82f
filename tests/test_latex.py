"""Golden tests for matgrad.latex: every node type, the sugar, names, gradients, depth, limits.

When pdflatex is on PATH, every golden output is also compiled in a document that
loads only amsmath and amssymb.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from matgrad.errors import LimitError
from matgrad.ir import (Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity,
                        Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace,
                        Transpose, Var)
from matgrad.latex import gradient_latex, name_latex, to_latex


def C(v: int | Fraction | str) -> Const:
    return Const(Fraction(v))


def neg(e: Expr) -> Expr:
    return Mul((C(-1), e))


A = Var("A", ("m", "n"))
B = Var("B", ("m", "n"))
X = Var("X", ("m", "n"))
W = Var("W", ("n", "n"))
s = Var("s", ("n", 1))
u = Var("u", ("n", 1))
v = Var("v", ("n", 1))
x = Var("x", ("m", 1))
g = Var("gamma", (1, 1))
a = Var("a", (1, 1))
residual = Add((Mul((A, s)), neg(x)))

GOLDEN: list[tuple[str, Expr, str]] = [
    # leaves and names
    ("var", s, "s"),
    ("var_greek_word", g, r"\gamma"),
    ("var_eps", Var("eps", (1, 1)), r"\epsilon"),
    ("var_greek_unicode", Var("λ", (1, 1)), r"\lambda"),
    ("var_greek_capital", Var("Sigma", ("n", "n")), r"\Sigma"),
    ("var_trailing_digit", Var("W1", ("n", "n")), "W_{1}"),
    ("var_underscore", Var("W_1", ("n", "n")), "W_{1}"),
    ("var_two_subscripts", Var("W_1_2", ("n", "n")), "W_{1,2}"),
    ("var_multi_letter", Var("bias", ("n", 1)), r"\mathrm{bias}"),
    ("var_greek_word_subscript", Var("lambda_max", (1, 1)), r"\lambda_{\mathrm{max}}"),
    ("var_unicode_greek_digit", Var("γ2", (1, 1)), r"\gamma_{2}"),
    ("const_int", C(3), "3"),
    ("const_fraction", C("1/2"), r"\frac{1}{2}"),
    ("const_negative", C(-2), "-2"),
    ("identity", Identity("n"), "I"),
    ("fill_ones", Fill(C(1), ("n", 1)), r"\mathbf{1}"),
    ("fill_zeros", Fill(C(0), ("m", "n")), "0"),
    ("fill_const", Fill(C(3), ("n", 1)), r"3\,\mathbf{1}"),
    ("fill_negative", Fill(C(-2), ("n", 1)), r"-2\,\mathbf{1}"),
    ("fill_scalar_var", Fill(g, ("n", 1)), r"\gamma\,\mathbf{1}"),
    # sums and products
    ("least_squares_gradient", Mul((C(2), Transpose(A), residual)), r"2 A^{\top} (A s - x)"),
    ("ridge_gradient", Add((Mul((C(2), Transpose(A), residual)), Mul((C(2), g, s)))),
     r"2 A^{\top} (A s - x) + 2 \gamma s"),
    ("transpose_of_sum", Transpose(Add((Mul((Transpose(W), W, v)), neg(v)))),
     r"(W^{\top} W v - v)^{\top}"),
    ("leading_negative_term", Add((neg(x), Mul((A, s)))), "-x + A s"),
    ("fraction_coefficient_subtracted", Add((x, Mul((C("-1/2"), A, s)))),
     r"x - \frac{1}{2} A s"),
    ("subtract_fill", Add((v, Fill(C(-2), ("n", 1)))), r"v - 2\,\mathbf{1}"),
    ("subtract_constant", Add((g, C(-3))), r"\gamma - 3"),
    ("double_negation", Mul((C(-1), W, neg(v))), "W v"),
    ("negate_sum", Mul((C(-1), Add((g, a)))), r"-(\gamma + a)"),
    ("nested_sum_leading_minus", Add((u, Add((neg(v), u)))), "u + (-v + u)"),
    ("scalar_product_then_matrix", Mul((Mul((Transpose(v), u)), W)), r"(v^{\top} u) W"),
    ("quadratic_form", Mul((Transpose(s), W, s)), r"s^{\top} W s"),
    ("negative_chain", Mul((C(-1), Transpose(s), W, s)), r"-s^{\top} W s"),
    ("reciprocal_scalar_factor", Mul((Power(g, Fraction(-1)), X)), r"\frac{1}{\gamma} X"),
    ("coefficient_over_power", Mul((C(2), a, Power(g, Fraction(-2)), X)),
     r"\frac{2 a}{\gamma^{2}} X"),
    ("half_over_scalar", Mul((C("1/2"), Power(g, Fraction(-1)), X)), r"\frac{1}{2 \gamma} X"),
    ("call_then_matrix", Mul((Trace(W), W)), r"\operatorname{tr}(W)\, W"),
    ("multi_letter_spacing", Mul((Var("Wh", ("n", "n")), Var("h", ("n", 1)))),
     r"\mathrm{Wh}\, h"),
    ("numeric_factor_after_matrix", Mul((W, Fill(C(2), ("n", 1)))), r"W \cdot 2\,\mathbf{1}"),
    ("sum_factor", Mul((Add((g, a)), W)), r"(\gamma + a) W"),
    # entrywise
    ("hadamard", Hadamard((u, v)), r"u \odot v"),
    ("hadamard_three", Hadamard((A, B, X)), r"A \odot B \odot X"),
    ("hadamard_product_operand", Hadamard((Mul((W, v)), u)), r"(W v) \odot u"),
    ("product_hadamard_operand", Mul((W, Hadamard((u, v)))), r"W (u \odot v)"),
    ("hadamard_negative_factor", Hadamard((neg(u), v)), r"-u \odot v"),
    ("oslash", Hadamard((u, Power(v, Fraction(-1)))), r"u \oslash v"),
    ("oslash_reordered", Hadamard((Power(v, Fraction(-1)), u)), r"u \oslash v"),
    ("oslash_squared", Hadamard((u, Power(v, Fraction(-2)))), r"u \oslash v^{\circ 2}"),
    ("oslash_only_denominators", Hadamard((Power(u, Fraction(-1)), Power(v, Fraction(-1)))),
     r"\mathbf{1} \oslash u \oslash v"),
    ("oslash_sum_denominator", Hadamard((u, Power(Add((v, u)), Fraction(-1)))),
     r"u \oslash (v + u)"),
    ("sigmoid_derivative",
     Hadamard((Func("sigmoid", X), Add((Fill(C(1), ("m", "n")), neg(Func("sigmoid", X)))))),
     r"\sigma(X) \odot (\mathbf{1} - \sigma(X))"),
    # powers
    ("scalar_square", Power(g, Fraction(2)), r"\gamma^{2}"),
    ("scalar_fractional_power", Power(g, Fraction(3, 2)), r"\gamma^{3/2}"),
    ("entrywise_square", Power(X, Fraction(2)), r"X^{\circ 2}"),
    ("entrywise_negative_power", Power(X, Fraction(-2)), r"X^{\circ -2}"),
    ("entrywise_reciprocal", Power(X, Fraction(-1)), r"X^{\circ -1}"),
    ("scalar_sqrt", Power(g, Fraction(1, 2)), r"\sqrt{\gamma}"),
    ("entrywise_sqrt", Power(X, Fraction(1, 2)), r"\sqrt{X}"),
    ("scalar_reciprocal", Power(g, Fraction(-1)), r"\frac{1}{\gamma}"),
    ("scalar_reciprocal_square", Power(g, Fraction(-2)), r"\frac{1}{\gamma^{2}}"),
    ("scalar_reciprocal_sqrt", Power(g, Fraction(-1, 2)), r"\frac{1}{\sqrt{\gamma}}"),
    ("reciprocal_of_sum", Power(Add((g, C(1))), Fraction(-1)), r"\frac{1}{\gamma + 1}"),
    ("power_of_sum", Power(Add((g, a)), Fraction(2)), r"(\gamma + a)^{2}"),
    ("power_of_transpose", Power(Transpose(X), Fraction(2)), r"(X^{\top})^{\circ 2}"),
    ("power_of_negation", Power(neg(g), Fraction(2)), r"(-\gamma)^{2}"),
    ("power_of_fraction", Power(C("1/2"), Fraction(3)), r"\left(\frac{1}{2}\right)^{3}"),
    # transpose, inverse, matrix power
    ("transpose", Transpose(A), r"A^{\top}"),
    ("transpose_of_transpose", Transpose(Transpose(A)), r"(A^{\top})^{\top}"),
    ("transpose_of_scalar", Transpose(g), r"\gamma^{\top}"),
    ("transpose_of_negation", Transpose(neg(x)), r"(-x)^{\top}"),
    ("transpose_of_subscripted", Transpose(Var("W_1", ("n", "n"))), r"W_{1}^{\top}"),
    ("inverse", Inverse(W), "W^{-1}"),
    ("inverse_of_sum", Inverse(Add((W, Identity("n")))), "(W + I)^{-1}"),
    ("transpose_of_inverse", Transpose(Inverse(W)), r"W^{-\top}"),
    ("inverse_of_transpose", Inverse(Transpose(W)), r"W^{-\top}"),
    ("transpose_of_inverse_of_sum", Transpose(Inverse(Add((W, Identity("n"))))),
     r"((W + I)^{-1})^{\top}"),
    ("matpow", MatPow(W, 3), "W^{3}"),
    ("matpow_of_product", MatPow(Mul((W, W)), 2), "(W W)^{2}"),
    # elementwise functions
    ("exp", Func("exp", X), r"\exp(X)"),
    ("log", Func("log", X), r"\log(X)"),
    ("sin", Func("sin", X), r"\sin(X)"),
    ("cos", Func("cos", X), r"\cos(X)"),
    ("tanh", Func("tanh", X), r"\tanh(X)"),
    ("sigmoid", Func("sigmoid", X), r"\sigma(X)"),
    ("softplus", Func("softplus", X), r"\operatorname{softplus}(X)"),
    ("relu", Func("relu", X), r"\operatorname{relu}(X)"),
    ("abs", Func("abs", x), r"\lvert x \rvert"),
    ("sign", Func("sign", X), r"\operatorname{sign}(X)"),
    ("step", Func("step", X), r"\operatorname{step}(X)"),
    ("function_of_product", Func("exp", Mul((W, v))), r"\exp(W v)"),
    ("tall_argument", Func("exp", Mul((C("1/2"), v))), r"\exp\left(\frac{1}{2} v\right)"),
    ("tall_abs", Func("abs", Mul((C("1/2"), v))), r"\left\lvert \frac{1}{2} v \right\rvert"),
    ("function_transposed", Transpose(Func("exp", v)), r"\exp(v)^{\top}"),
    # reductions and matrix functions
    ("trace", Trace(Mul((Transpose(A), A))), r"\operatorname{tr}(A^{\top} A)"),
    ("sum", Sum(X), r"\operatorname{sum}(X)"),
    ("sum_of_scalar_square", Sum(Power(g, Fraction(2))), r"\operatorname{sum}(\gamma^{2})"),
    ("det", Det(W), r"\det(W)"),
    ("logdet", LogDet(W), r"\log\det(W)"),
    ("diagmat", DiagMat(v), r"\operatorname{diag}(v)"),
    ("diagvec", DiagVec(W), r"\operatorname{diag}(W)"),
    ("softmax", Softmax(v), r"\operatorname{softmax}(v)"),
    ("logsumexp", LogSumExp(v), r"\operatorname{logsumexp}(v)"),
    # norm sugar
    ("norm_squared_vector", Sum(Power(s, Fraction(2))), r"\lVert s \rVert^{2}"),
    ("norm_squared_frobenius", Sum(Power(X, Fraction(2))), r"\lVert X \rVert_{F}^{2}"),
    ("half_norm_squared", Mul((C("1/2"), Sum(Power(residual, Fraction(2))))),
     r"\frac{1}{2} \lVert A s - x \rVert^{2}"),
    ("norm_vector", Power(Sum(Power(s, Fraction(2))), Fraction(1, 2)), r"\lVert s \rVert"),
    ("norm_frobenius", Power(Sum(Power(X, Fraction(2))), Fraction(1, 2)),
     r"\lVert X \rVert_{F}"),
    ("norm_row_vector", Power(Sum(Power(Var("r", (1, "n")), Fraction(2))), Fraction(1, 2)),
     r"\lVert r \rVert"),
    ("norm_one", Sum(Func("abs", s)), r"\lVert s \rVert_{1}"),
    ("norm_squared_plus_penalty",
     Add((Sum(Power(residual, Fraction(2))), Mul((g, Sum(Func("abs", s)))))),
     r"\lVert A s - x \rVert^{2} + \gamma \lVert s \rVert_{1}"),
    ("norm_squared_squared", Power(Sum(Power(s, Fraction(2))), Fraction(2)),
     r"(\lVert s \rVert^{2})^{2}"),
]

GRADIENTS: list[tuple[str, tuple[str, Expr, Expr | None], str]] = [
    ("matrix_placeholder", ("W", Mul((C(2), W)), None), r"\nabla_{W} F = 2 W"),
    ("vector_with_f", ("s", Mul((Transpose(A), residual)),
                       Mul((C("1/2"), Sum(Power(residual, Fraction(2)))))),
     r"\nabla_{s} \left(\frac{1}{2} \lVert A s - x \rVert^{2}\right) = A^{\top} (A s - x)"),
    ("vector_with_postfix_f", ("s", Mul((C(2), s)), Sum(Power(s, Fraction(2)))),
     r"\nabla_{s} \lVert s \rVert^{2} = 2 s"),
    ("scalar_placeholder", ("gamma", Mul((C(2), g)), None),
     r"\frac{\partial F}{\partial \gamma} = 2 \gamma"),
    ("scalar_with_f", ("gamma", Mul((C(2), g)), Power(g, Fraction(2))),
     r"\frac{\partial}{\partial \gamma} \gamma^{2} = 2 \gamma"),
    ("subscripted_wrt", ("W_1", Var("G", ("n", "n")), Trace(Var("W_1", ("n", "n")))),
     r"\nabla_{W_{1}} \operatorname{tr}(W_{1}) = G"),
]


@pytest.mark.parametrize("expr,expected", [(e, t) for _, e, t in GOLDEN],
                         ids=[name for name, _, _ in GOLDEN])
def test_golden(expr: Expr, expected: str) -> None:
    assert to_latex(expr) == expected


@pytest.mark.parametrize("args,expected", [(a_, t) for _, a_, t in GRADIENTS],
                         ids=[name for name, _, _ in GRADIENTS])
def test_gradient_latex(args: tuple[str, Expr, Expr | None], expected: str) -> None:
    wrt, grad, f = args
    assert gradient_latex(wrt, grad, f) == expected


@pytest.mark.parametrize("name,expected", [
    ("x", "x"), ("alpha", r"\alpha"), ("Omega", r"\Omega"), ("ε", r"\epsilon"),
    ("W12", "W_{12}"), ("x_i", "x_{i}"), ("theta_0", r"\theta_{0}"), ("loss", r"\mathrm{loss}"),
    ("W_hidden", r"W_{\mathrm{hidden}}"), ("_tmp", r"\mathrm{\_tmp}"),
    ("Α", "A"), ("é", r"\mathrm{U{+}00E9}"), ("xγ", r"\mathrm{x\gamma}"),
])
def test_name_latex(name: str, expected: str) -> None:
    assert name_latex(name) == expected


def test_deep_expression_does_not_recurse() -> None:
    # 3000 nested products: far past Python's recursion limit if rendering recursed.
    e: Expr = v
    for _ in range(3000):
        e = Add((Mul((W, e)), v))
    out = to_latex(e)
    assert out.startswith("W (W (W (") and out.endswith(") + v) + v")
    assert out.count("(") == 2999


def test_shared_blowup_hits_limit() -> None:
    # 40 doublings share structure as a DAG but expand to 2^40 leaves as text.
    e: Expr = v
    for _ in range(40):
        e = Add((e, e))
    with pytest.raises(LimitError):
        to_latex(e)
    with pytest.raises(LimitError):
        to_latex(Add((v, v)), max_chars=3)


def _compile(formulas: list[str], d: Path) -> subprocess.CompletedProcess[str]:
    """Compile the formulas as display math in a document loading only amsmath and amssymb."""
    body = "\n".join(f"\\[ {f} \\]" for f in formulas)
    (d / "golden.tex").write_text(
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
        "\\begin{document}\n" + body + "\n\\end{document}\n", encoding="utf-8")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "golden.tex"],
                          cwd=d, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_goldens_compile_with_pdflatex(tmp_path: Path) -> None:
    formulas = [t for _, _, t in GOLDEN] + [t for _, _, t in GRADIENTS]
    formulas += [name_latex(n) for n in ("é", "xγ", "_tmp", "W_1_2", "ς")]
    result = _compile(formulas, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
