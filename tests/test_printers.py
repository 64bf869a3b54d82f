"""Text printer: printed results parse back to the same IR, and golden outputs for
norms, signs, division and `where` naming."""

from __future__ import annotations

from fractions import Fraction

import pytest

from matgrad import simplify as S
from matgrad.ir import Add, Const, Expr, Fill, Identity, Mul, Power, Var, postorder
from matgrad.parse import parse
from matgrad.printers import format_number, shared_sums, to_text
from matgrad.shapes import infer_shapes


def infer(text: str, declared=None) -> Expr:
    return infer_shapes(parse(text), text, declared).expr


def rename_dims(e: Expr) -> Expr:
    """`e` with its symbolic dimensions renamed d0, d1, … in order of first appearance.

    Shape inference names dimensions in the order it meets them, so the same
    expression printed with its factors in another order gets other names.
    """
    mapping: dict[str, str] = {}

    def ren(d):
        if isinstance(d, str):
            mapping.setdefault(d, f"d{len(mapping)}")
            return mapping[d]
        return d

    done: dict[Expr, Expr] = {}
    for node in postorder(e):
        kids = tuple(done[k] for k in node.children())
        if isinstance(node, Var):
            new: Expr = Var(node.name, (ren(node.dims[0]), ren(node.dims[1])), node.kind)
        elif isinstance(node, Identity):
            new = Identity(ren(node.n))
        elif isinstance(node, Fill):
            new = Fill(kids[0], (ren(node.dims[0]), ren(node.dims[1])))
        else:
            new = node.with_children(kids) if kids else node
        done[node] = new
    return done[e]


ROUND_TRIP = [
    "||A*s - x||^2 + gamma*||A||^2",
    "sum(sqrt(V*(s.^2) + eps))",
    "||W'*W*x - x||^2",
    "x'*A*x",
    "-x'*A*x",
    "(A*x - b)'*(A*x - b)",
    "(A*B)'",
    "A'*(x + y)",
    "(A + B)'*x",
    "a - b - c",
    "-(a + b)",
    "2*x - 3*y",
    "x/alpha",
    "x/(alpha + beta)",
    "(alpha + beta)/gamma",
    "alpha/(beta*gamma)",
    "x/3 + y/2",
    "0.25*x",
    "x ./ (y + z)",
    "x .* (y + z)",
    "(x + y).^2",
    "-x.^2",
    "x.^-2",
    "x.^(1/3)",
    "X^3",
    "inv(X)^2",
    "det(X)^-1",
    "logdet(X) - tr(inv(X)*Y)",
    "log(det(X))",
    "exp(A*x - b)",
    "sigmoid(W*x + b)'*y",
    "softmax(x)'*y + logsumexp(x)",
    "diag(x)*A",
    "diag(A)'*x",
    "||x||_1 + ||A||",
    "sqrt(||x||^2 + 1)",
    "1 - y",
    "V*s + eps",
    "x - alpha",
    "alpha - x",
    "x*x'",
    "ones'*x",
    "(x'*y)*z",
    "alpha^2*x",
    "tr(x*y')",
    "sum(u .* v)",
    "r'*r where r = A*x - b",
    "relu(W2*relu(W1*x + b1) + b2)",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text):
    e = infer(text)
    printed = to_text(e)
    back = infer(printed)
    assert rename_dims(back) == rename_dims(e), (printed, to_text(back))
    assert to_text(back) == printed  # printing is a fixed point


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_with_where_names(text):
    e = infer(text)
    printed = to_text(e, name_shared=True)
    assert rename_dims(infer(printed)) == rename_dims(e), printed


@pytest.mark.parametrize("text", ["x'*(y*z')", "(x/alpha)'*(A*x)"])
def test_round_trip_of_interior_scalar_chain(text):
    e = infer(text)
    printed = to_text(e)
    assert rename_dims(infer(printed)) == rename_dims(e), printed


NEGATED_SUMS = ["a - (b - c)", "x - (y + z)", "c - (a + b)", "-(a + b) + c", "-(a - b) + c",
                "x - (A*x + y)", "alpha - (beta + gamma)"]


@pytest.mark.parametrize("text", NEGATED_SUMS)
def test_subtracted_sum_keeps_its_parentheses(text):
    e = infer(text)
    printed = to_text(e)
    assert rename_dims(infer(printed)) == rename_dims(e), printed


NEGATED_SUM_VALUES = {
    "a - (b - c)": lambda e: e["a"] - (e["b"] - e["c"]),
    "x - (y + z)": lambda e: e["x"] - (e["y"] + e["z"]),
    "c - (a + b)": lambda e: e["c"] - (e["a"] + e["b"]),
    "-(a + b) + c": lambda e: -(e["a"] + e["b"]) + e["c"],
    "-(a - b) + c": lambda e: -(e["a"] - e["b"]) + e["c"],
    "x - (A*x + y)": lambda e: e["x"] - (e["A"] @ e["x"] + e["y"]),
    "alpha - (beta + gamma)": lambda e: e["alpha"] - (e["beta"] + e["gamma"]),
}


@pytest.mark.parametrize("text", NEGATED_SUMS)
def test_subtracted_sum_ir_is_right(text):
    import numpy as np
    from matgrad.evaluate import evaluate
    rng = np.random.default_rng(3)
    env = {k: rng.standard_normal((3, 1)) for k in "abcxyz"}
    env.update({"A": rng.standard_normal((3, 3)), "alpha": 0.3, "beta": 1.1, "gamma": -0.4})
    np.testing.assert_allclose(evaluate(infer(text), env), np.atleast_2d(NEGATED_SUM_VALUES[text](env)))


def test_round_trip_with_declarations():
    declared = {"W": (3, 4), "S": ("symmetric", None), "c": "scalar"}
    for text in ["c*W*x", "x'*S*x", "||W*x - y||^2 + c*||x||_1"]:
        e = infer(text, declared)
        assert infer(to_text(e), declared) == e


# ----------------------------------------------------------------------------- golden outputs

GOLDEN = [
    # norms
    ("||A*x - b||^2", "||A*x - b||^2"),
    ("sum((A*x - b).^2)", "||A*x - b||^2"),
    ("||x||_1", "||x||_1"),
    ("sum(abs(x))", "||x||_1"),
    ("||X||_F", "||X||"),
    ("||X||_fro", "||X||"),
    ("||X||_2", "||X||"),
    ("sqrt(sum(X.^2))", "||X||"),
    ("gamma*||A||^2", "gamma*||A||^2"),
    ("||x||^2*y", "||x||^2*y"),
    ("||x||*y", "||x||*y"),
    # negative terms
    ("a - 2*b", "a - 2*b"),
    ("a + -2*b", "a - 2*b"),
    ("-a - b", "-a - b"),
    ("-(a + b)", "-(a + b)"),
    ("-a + b", "b - a"),
    ("-a + b - c", "b - a - c"),
    ("b - 2*(a - c)", "b - 2*(a - c)"),
    ("x - (y + z)*2", "x - 2*(y + z)"),
    ("-x'*A*x", "-x'*A*x"),
    ("a - 0.5*b", "a - 0.5*b"),
    ("a - b/3", "a - 1/3*b"),
    ("1 - y", "1 - y"),
    ("y - 1", "y - 1"),
    ("-alpha", "-alpha"),
    ("x - alpha*y", "x - alpha*y"),
    ("-(x + y)'*z", "-(x + y)'*z"),
    # division and numbers
    ("x/alpha", "x/alpha"),
    ("x/(alpha + beta)", "x/(alpha + beta)"),
    ("(alpha + beta)/gamma", "(alpha + beta)/gamma"),
    ("x/2", "0.5*x"),
    ("x/3", "1/3*x"),
    ("2/3*x", "2/3*x"),
    ("x/(x'*x)", "x/(x'*x)"),
    ("1/alpha", "alpha^-1"),
    ("x ./ y", "x ./ y"),
    ("x ./ y.^2", "x ./ y.^2"),
    ("x.^(1/2)", "sqrt(x)"),
    ("x.^-1", "1 ./ x"),
    # products and transposes
    ("(A*B*x)'", "x'*B'*A'"),
    ("(A + B)'", "(A + B)'"),
    ("x'*y*z", "(x'*y)*z"),
    ("2.*x", "2*x"),
    ("x∘y", "x .* y"),
    ("X^-1", "inv(X)"),
    ("log(det(X))", "logdet(X)"),
]


@pytest.mark.parametrize("text,expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(text, expected):
    assert to_text(infer(text)) == expected


@pytest.mark.parametrize("value,text", [
    (Fraction(3), "3"), (Fraction(-3), "-3"), (Fraction(1, 2), "0.5"), (Fraction(-1, 4), "-0.25"),
    (Fraction(1, 3), "1/3"), (Fraction(3, 8), "0.375"), (Fraction(1, 1024), "1/1024"),
])
def test_format_number(value, text):
    assert format_number(value)[0] == text
    assert Fraction(text) == value


# ----------------------------------------------------------------------------- where naming

WHERE_GOLDEN = [
    ("(A*x - b1)'*(A*x - b1)", "r'*r where r = A*x - b1"),
    ("(W*x + b - y)'*(W*x + b - y)", "r'*r where r = W*x + b - y"),
    ("(A*x + B*y)'*C*(A*x + B*y)", "r'*C*r where r = A*x + B*y"),
    ("sum(exp(A*x - b - c)) + sum(A*x - b - c)", "sum(exp(r)) + sum(r) where r = A*x - b - c"),
    # r is taken by a variable: the next free name is used
    ("(A*x - r - y)'*(A*x - r - y)", "u'*u where u = A*x - r - y"),
]


@pytest.mark.parametrize("text,expected", WHERE_GOLDEN, ids=[g[0] for g in WHERE_GOLDEN])
def test_where_naming(text, expected):
    e = infer(text)
    assert to_text(e, name_shared=True) == expected
    assert rename_dims(infer(expected)) == rename_dims(e)


def test_no_where_without_repetition():
    e = infer("(A*x - b1)'*(C*x - b1)")
    assert " where " not in to_text(e, name_shared=True)


def test_short_sums_are_not_named():
    # below the minimum length a name does not shorten anything
    e = infer("(x - y)'*(x - y)")
    assert to_text(e, name_shared=True) == "(x - y)'*(x - y)"


def test_two_shared_sums_get_two_names():
    e = infer("(A*x - b1)'*(A*x - b1) + (C*y - d1)'*(C*y - d1)")
    printed = to_text(e, name_shared=True)
    assert printed.count(" where ") == 1
    assert "r = " in printed and "u = " in printed
    assert rename_dims(infer(printed)) == rename_dims(e)
    assert len(shared_sums(e)) == 2


def test_name_shared_without_sharing_equals_plain():
    for text in ROUND_TRIP[:10]:
        e = infer(text)
        if not shared_sums(e):
            assert to_text(e, name_shared=True) == to_text(e)


# ----------------------------------------------------------------------------- raw nodes

def test_raw_nodes_print():
    x = Var("x", ("n", 1))
    y = Var("y", ("n", 1))
    assert to_text(Add((x, Mul((Const(Fraction(-1)), y))))) == "x - y"
    assert to_text(Fill(Const(Fraction(0)), ("n", 1))) == "0"
    assert to_text(Fill(Const(Fraction(1)), ("n", 1))) == "ones"
    assert to_text(Fill(Const(Fraction(1)), (1, "n"))) == "ones'"
    assert to_text(Power(x, Fraction(3))) == "x.^3"
    assert to_text(Identity("n")) == "I"
    assert to_text(S.mul(Var("alpha", (1, 1)), Power(Var("beta", (1, 1)), Fraction(-1)))) == "alpha/beta"


def test_deep_expression_prints_without_recursion():
    x = Var("x", ("n", 1))
    e: Expr = x
    for _ in range(5000):
        e = Mul((Const(Fraction(2)), S.func("exp", e)))
    s = to_text(e)
    assert s.count("exp(") == 5000
