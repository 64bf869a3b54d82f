"""The Python API: derive / check / lambdify, SymPy and LaTeX at the boundary, errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import matgrad


def test_derive_returns_sympy_gradient_with_the_variable_shape():
    d = matgrad.derive("||A*s - x||^2 + gamma*||A||^2", wrt="A")
    g = d.gradient
    assert isinstance(g, sympy.Basic)
    A = [s for s in g.free_symbols if isinstance(s, sympy.MatrixSymbol) and s.name == "A"][0]
    assert g.shape == A.shape
    assert set(d.gradients) == {"A"}
    assert d.verify().ok


def test_gamma_is_a_sympy_symbol_and_vectors_are_columns():
    d = matgrad.derive("||A*s - x||^2 + gamma*||A||^2", wrt=["s", "gamma"])
    names = {s.name: s for s in d.gradients["s"].free_symbols}
    assert isinstance(names["gamma"] if "gamma" in names else sympy.Symbol("gamma"), sympy.Symbol)
    s = names["s"]
    assert isinstance(s, sympy.MatrixSymbol) and s.shape[1] == 1


def test_latex_of_gradient():
    tex = matgrad.derive("||A*s - x||^2", "s").latex()
    assert tex.startswith("\\nabla_{s}")
    assert "A^{\\top}" in tex


def test_lambdify_evaluates_what_derive_returns():
    d = matgrad.derive("||A*s - x||^2 + gamma*||A||^2", wrt="A")
    rng = np.random.default_rng(0)
    A, s, x = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(4, 1))
    f = matgrad.lambdify(d.gradient)
    out = f(A=A, s=s, x=x, gamma=0.3, unused=1.0)
    expected = 2 * (A @ s.reshape(3, 1) - x) @ s.reshape(1, 3) + 2 * 0.3 * A
    assert out.shape == A.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(matgrad.lambdify(d)(A=A, s=s.reshape(3, 1), x=x, gamma=0.3), expected)


def test_check_accepts_and_rejects():
    assert matgrad.check("logdet(X)", "X", "inv(X)'").ok
    res = matgrad.check("logdet(X)", "X", "inv(X)")  # a general X: the transpose matters
    assert not res.ok


@pytest.mark.parametrize("expr, wrt, shapes, error", [
    ("||A*s - x||^2 +", "s", None, matgrad.ParseError),
    ("trac(X)", "X", None, matgrad.UnknownFunctionError),
    ("W*x", "W", {"W": (3, 4), "x": 5}, matgrad.ShapeError),
    ("A*x", "x", None, matgrad.NotScalarError),
    ("det(x)", "x", None, matgrad.DomainError),
    ("x^y", "x", None, matgrad.UnsupportedError),
])
def test_each_bad_input_class_has_its_error(expr, wrt, shapes, error):
    with pytest.raises(error) as info:
        matgrad.derive(expr, wrt, shapes)
    assert isinstance(info.value, matgrad.MatgradError)


def test_shape_error_names_both_operands():
    with pytest.raises(matgrad.ShapeError) as info:
        matgrad.derive("x'*W*x", "x", {"W": (3, 4)})
    msg = str(info.value)
    assert "x'*W (1×4)" in msg and "x (3×1)" in msg and "^" in msg


def test_absent_variable_has_zero_gradient():
    d = matgrad.derive("x'*A*x", ["x", "z"])
    assert d.gradient_text("z") == "0" and "z" in d.absent


def test_symmetric_variable_gets_the_symmetric_gradient():
    d = matgrad.derive("tr(A*S)", "S", {"S": "symmetric"})
    assert d.verify().ok
    assert matgrad.check("tr(A*S)", "S", "(A + A')/2", {"S": "symmetric"}).ok
    assert not matgrad.check("tr(A*S)", "S", "A'", {"S": "symmetric"}).ok


def test_sympy_diff_bug_cases_are_right_here():
    """SymPy 1.14's .diff returns 0 for these; matgrad derives them with its own rules."""
    assert matgrad.derive("log(det(X))", "X").gradient_text() == "inv(X)'"
    d = matgrad.derive("tr(r'*r) + gamma*tr(A'*A)", "A")
    assert d.gradient_text() == "2*gamma*A" and d.verify().ok
