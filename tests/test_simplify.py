"""Smart constructors and the simplify pass.

Each identity is checked twice: on the printed text, and numerically — the raw,
unsimplified node (built with the plain IR classes) and the canonical result must
evaluate to the same numbers.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from matgrad import simplify as S
from matgrad.evaluate import evaluate
from matgrad.ir import (Add, Const, Det, DiagMat, DiagVec, Fill, Func, Hadamard, Identity, Inverse,
                        LogDet, MatPow, Mul, Power, Sum, Trace, Transpose, Var, postorder)
from matgrad.parse import parse
from matgrad.printers import to_text
from matgrad.shapes import infer_shapes

# n×n square, m×n rectangular, n-vectors, scalars
A = Var("A", ("n", "n"))
B = Var("B", ("n", "n"))
X = Var("X", ("n", "n"))
R = Var("R", ("m", "n"))
x = Var("x", ("n", 1))
y = Var("y", ("n", 1))
u = Var("u", ("n", 1))
v = Var("v", ("n", 1))
a = Var("a", ("n", 1))
b = Var("b", ("n", 1))
alpha = Var("alpha", (1, 1))
beta = Var("beta", (1, 1))
S_sym = Var("S", ("n", "n"), "symmetric")
I = Identity("n")


def c(v) -> Const:
    return Const(Fraction(v))


def _env() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    n, m = 4, 3
    sym = rng.standard_normal((n, n))
    return {
        "A": rng.standard_normal((n, n)),
        "B": rng.standard_normal((n, n)),
        "X": 2.0 * np.eye(n) + 0.3 * rng.standard_normal((n, n)),  # det > 0
        "R": rng.standard_normal((m, n)),
        "x": rng.standard_normal((n, 1)),
        "y": rng.standard_normal((n, 1)),
        "u": rng.standard_normal((n, 1)),
        "v": rng.standard_normal((n, 1)),
        "a": rng.standard_normal((n, 1)),
        "b": rng.standard_normal((n, 1)),
        "p": rng.uniform(0.5, 2.0, (n, 1)),  # positive, for fractional powers
        "alpha": np.array([[0.7]]),
        "beta": np.array([[-1.3]]),
        "S": sym + sym.T,
    }


ENV = _env()
p = Var("p", ("n", 1))


def value(e) -> np.ndarray:
    return evaluate(e, ENV, sizes={"n": 4, "m": 3})


def assert_same_value(raw, simplified):
    got, want = value(simplified), value(raw)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# (id, raw node with no simplification, expected text of canonical(raw))
CONSTRUCTOR_IDENTITIES = [
    ("I*X", Mul((I, X)), "X"),
    ("X*I", Mul((X, I)), "X"),
    ("I*x", Mul((I, x)), "x"),
    ("I*I", Mul((I, I)), "I"),
    ("(A')'", Transpose(Transpose(A)), "A"),
    ("(x')'", Transpose(Transpose(x)), "x"),
    ("(A*B)'", Transpose(Mul((A, B))), "B'*A'"),
    ("(R*A*x)'", Transpose(Mul((R, A, x))), "x'*A'*R'"),
    ("(alpha*A*B)'", Transpose(Mul((alpha, A, B))), "alpha*B'*A'"),
    ("(x'*y)'", Transpose(Mul((Transpose(x), y))), "x'*y"),
    ("alpha'", Transpose(alpha), "alpha"),
    ("(x'*A*x)'", Transpose(Mul((Transpose(x), A, x))), "x'*A*x"),
    ("S' symmetric", Transpose(S_sym), "S"),
    ("I'", Transpose(I), "I"),
    ("(A+B)' stays", Transpose(Add((A, B))), "(A + B)'"),
    ("2*3*x", Mul((c(2), c(3), x)), "6*x"),
    ("2*x*3", Mul((c(2), x, c(3))), "6*x"),
    ("2+3", Add((c(2), c(3))), "5"),
    ("1*x", Mul((c(1), x)), "x"),
    ("0*x", Mul((c(0), x)), "0"),
    ("x + 0", Add((x, Mul((c(0), x)))), "x"),
    ("2x+3x", Add((Mul((c(2), x)), Mul((c(3), x)))), "5*x"),
    ("x+x", Add((x, x)), "2*x"),
    ("x-x", Add((x, Mul((c(-1), x)))), "0"),
    ("a+b-a", Add((a, b, Mul((c(-1), a)))), "b"),
    ("alpha*x + x*alpha", Add((Mul((alpha, x)), Mul((x, alpha)))), "2*alpha*x"),
    ("x∘x", Hadamard((x, x)), "x.^2"),
    ("x∘x∘x", Hadamard((x, x, x)), "x.^3"),
    ("x∘x.^2", Hadamard((x, Power(x, Fraction(2)))), "x.^3"),
    ("x∘x.^-1", Hadamard((y, x, Power(x, Fraction(-1)))), "y"),
    ("(2x)∘y", Hadamard((Mul((c(2), x)), y)), "2*(x .* y)"),
    ("(x.^2).^3", Power(Power(x, Fraction(2)), Fraction(3)), "x.^6"),
    ("(p.^3).^-1", Power(Power(p, Fraction(3)), Fraction(-1)), "p.^-3"),
    ("(p.^(1/2)).^2", Power(Power(p, Fraction(1, 2)), Fraction(2)), "p"),
    ("x.^1", Power(x, Fraction(1)), "x"),
    ("alpha^2*alpha^-2", Mul((Power(alpha, Fraction(2)), Power(alpha, Fraction(-2)))), "1"),
    ("alpha*alpha", Mul((alpha, alpha)), "alpha^2"),
    ("log(det(X))", Func("log", Det(X)), "logdet(X)"),
    ("log(exp(x))", Func("log", Func("exp", x)), "x"),
    ("det(X')", Det(Transpose(X)), "det(X)"),
    ("det(inv(X))", Det(Inverse(X)), "det(X)^-1"),
    ("logdet(inv(X))", LogDet(Inverse(X)), "-logdet(X)"),
    ("inv(inv(X))", Inverse(Inverse(X)), "X"),
    ("inv(X')", Inverse(Transpose(X)), "inv(X)'"),
    ("inv(2*X)", Inverse(Mul((c(2), X))), "0.5*inv(X)"),
    ("tr(x*y')", Trace(Mul((x, Transpose(y)))), "y'*x"),
    ("tr(A*x*y')", Trace(Mul((A, x, Transpose(y)))), "y'*A*x"),
    ("tr(X')", Trace(Transpose(X)), "tr(X)"),
    ("tr(2*X)", Trace(Mul((c(2), X))), "2*tr(X)"),
    ("tr(A+B)", Trace(Add((A, B))), "tr(A) + tr(B)"),
    ("tr(alpha)", Trace(alpha), "alpha"),
    ("sum(u∘v)", Sum(Hadamard((u, v))), "u'*v"),
    ("sum(2*x)", Sum(Mul((c(2), x))), "2*sum(x)"),
    ("sum(x')", Sum(Transpose(x)), "sum(x)"),
    ("diag(diag(x))", DiagVec(DiagMat(x)), "x"),
    ("I^3", MatPow(I, 3), "I"),
    ("X.^1", Power(X, Fraction(1)), "X"),
]


@pytest.mark.parametrize("name,raw,expected", CONSTRUCTOR_IDENTITIES, ids=[i[0] for i in CONSTRUCTOR_IDENTITIES])
def test_constructor_identity(name, raw, expected):
    canon = S.canonical(raw)
    assert to_text(canon) == expected
    assert canon.shape == raw.shape
    assert_same_value(raw, canon)


# (id, raw node, expected text of simplify(raw)) — identities of the final factoring pass
SIMPLIFY_IDENTITIES = [
    ("A*x + A'*x", Add((Mul((A, x)), Mul((Transpose(A), x)))), "(A + A')*x"),
    ("x'*A + x'*B", Add((Mul((Transpose(x), A)), Mul((Transpose(x), B)))), "x'*(A + B)"),
    # a 1×1 product equals its transpose, so x'*A'*x is x'*A*x: like terms
    ("x'*A*x + x'*A'*x", Add((Mul((Transpose(x), A, x)), Mul((Transpose(x), Transpose(A), x)))),
     "2*x'*A*x"),
    ("x'*y + y'*x", Add((Mul((Transpose(x), y)), Mul((Transpose(y), x)))), "2*x'*y"),
    ("2*a + 2*b", Add((Mul((c(2), a)), Mul((c(2), b)))), "2*(a + b)"),
    ("2*a - 2*b", Add((Mul((c(2), a)), Mul((c(-2), b)))), "2*(a - b)"),
    ("-2*a - 2*b", Add((Mul((c(-2), a)), Mul((c(-2), b)))), "-2*(a + b)"),
    ("alpha*a + alpha*b", Add((Mul((alpha, a)), Mul((alpha, b)))), "alpha*(a + b)"),
    ("2*alpha*A*x + 2*alpha*B*x", Add((Mul((c(2), alpha, A, x)), Mul((c(2), alpha, B, x)))),
     "2*alpha*(A + B)*x"),
    ("A*B*x + A*x", Add((Mul((A, B, x)), Mul((A, x)))), "A*(B*x + x)"),
    ("a + b unchanged", Add((a, b)), "a + b"),
]


@pytest.mark.parametrize("name,raw,expected", SIMPLIFY_IDENTITIES, ids=[i[0] for i in SIMPLIFY_IDENTITIES])
def test_simplify_identity(name, raw, expected):
    out = S.simplify(raw)
    assert to_text(out) == expected
    assert_same_value(raw, out)


@pytest.mark.parametrize("name,raw,expected", CONSTRUCTOR_IDENTITIES + SIMPLIFY_IDENTITIES,
                         ids=[i[0] for i in CONSTRUCTOR_IDENTITIES + SIMPLIFY_IDENTITIES])
def test_simplify_is_idempotent(name, raw, expected):
    once = S.simplify(raw)
    assert S.simplify(once) == once


# ----------------------------------------------------------------------------- constructors called directly

def test_smart_constructors_directly():
    assert S.mul(I, X) == X
    assert S.mul(X, I) == X
    assert S.transpose(S.transpose(A)) == A
    assert to_text(S.transpose(S.mul(A, B))) == "B'*A'"
    assert S.transpose(S.mul(S.transpose(x), y)) == S.mul(S.transpose(x), y)
    assert S.mul(S.const(2), S.const(3), x) == S.mul(S.const(6), x)
    assert S.add(S.mul(S.const(2), x), S.mul(S.const(3), x)) == S.mul(S.const(5), x)
    assert S.hadamard(x, x) == Power(x, Fraction(2))
    assert S.power(S.power(x, 2), 3) == Power(x, Fraction(6))
    assert S.func("log", S.det(X)) == LogDet(X)
    assert to_text(S.trace(S.mul(x, S.transpose(y)))) == "y'*x"
    assert to_text(S.sum_(S.hadamard(u, v))) == "u'*v"
    assert S.neg(S.neg(x)) == x
    assert S.sub(x, x) == S.zeros(x.shape)


def test_scalar_factors_come_first():
    e = S.mul(A, alpha, x, c(3))
    assert isinstance(e, Mul)
    assert e.factors[0] == c(3) and e.factors[1] == alpha
    assert to_text(e) == "3*alpha*A*x"


def test_sums_are_flat_and_keep_order():
    e = S.add(x, S.add(y, u), v)
    assert isinstance(e, Add) and e.terms == (x, y, u, v)


def test_zero_of_a_shape():
    z = S.sub(A, A)
    assert z.shape == A.shape and S.is_zero(z)
    assert to_text(z) == "0"


def test_constants_fold_exactly():
    e = S.mul(c(Fraction(1, 3)), c(3), x)
    assert e == x
    assert S.power(c(4), Fraction(1, 2)) == c(2)
    assert S.power(c(Fraction(9, 4)), Fraction(-1, 2)) == c(Fraction(2, 3))


def test_power_of_scaled_vector_distributes():
    e = S.power(S.mul(c(2), x), 2)
    assert to_text(e) == "4*x.^2"
    assert_same_value(Power(Mul((c(2), x)), Fraction(2)), e)


def test_simplify_on_parsed_expression():
    text = "2*A*x + 2*A'*x"
    e = infer_shapes(parse(text), text).expr
    assert to_text(S.simplify(e)) == "2*(A + A')*x"


@pytest.mark.parametrize("text,expected", [
    ("x.*y + y.*x", "2*(x .* y)"),        # entrywise products commute
    ("x'*y + y'*x", "2*x'*y"),            # a 1×1 product equals its transpose
    ("alpha*beta*x + beta*alpha*x", "2*alpha*beta*x"),
])
def test_commuted_terms_are_like_terms(text, expected):
    e = infer_shapes(parse(text), text).expr
    out = S.simplify(e)
    assert to_text(out) == expected
    assert_same_value(e, out) if set(ENV) >= {"x", "y", "alpha", "beta"} else None


def test_canonical_is_iterative_on_deep_trees():
    e = x
    for _ in range(3000):
        e = Transpose(e)
    assert S.canonical(e) == x
    deep = x
    for i in range(3000):
        deep = Add((deep, Mul((c(1), y))))
    assert to_text(S.canonical(deep)) == "x + 3000*y"


def test_every_node_of_a_canonical_result_is_canonical():
    raw = Add((Mul((c(2), Transpose(Transpose(A)), I, x)), Mul((c(2), Transpose(Transpose(A)), x))))
    canon = S.canonical(raw)
    assert to_text(canon) == "4*A*x"
    for node in postorder(canon):
        assert not isinstance(node, Transpose) or not isinstance(node.arg, Transpose)
    assert_same_value(raw, canon)


def test_trace_of_zero_is_zero():
    assert to_text(S.trace(S.sub(A, A))) == "0"


def test_sum_of_zero_is_zero():
    assert to_text(S.sum_(S.sub(x, x))) == "0"


def test_fill_broadcast_values():
    raw = Add((x, Fill(alpha, ("n", 1))))
    canon = S.canonical(raw)
    assert to_text(canon) == "x + alpha"
    assert_same_value(raw, canon)
