"""Parser: precedence (golden s-expressions of the Syntax tree), sugar, `where`,
errors with a caret under the right column, and input limits."""

from __future__ import annotations

import time

import pytest

from matgrad.errors import LimitError, MatgradError, ParseError, UnknownFunctionError
from matgrad.parse import MAX_LENGTH, MAX_NESTING, Syntax, parse
from matgrad.shapes import infer_shapes


def sexpr(t: Syntax) -> str:
    """A Syntax tree as an s-expression: numbers and names bare, everything else (op args…)."""
    if t.op == "number":
        return str(t.args[0])
    if t.op == "name":
        return t.args[0]
    if t.op == "call":
        return "(" + " ".join([t.args[0], *(sexpr(a) for a in t.args[1:])]) + ")"
    if t.op == "norm":
        return f"(norm{t.args[0]} {sexpr(t.args[1])})"
    return "(" + " ".join([t.op, *(sexpr(a) for a in t.args)]) + ")"


def ir(text: str):
    return infer_shapes(parse(text), text).expr


def caret_column(err: MatgradError) -> int:
    """The column the caret points at, checking the line above it is the input itself."""
    lines = str(err).split("\n")
    assert len(lines) == 3, str(err)
    assert lines[1] == "  " + err.text
    assert lines[2].strip() == "^"
    return lines[2].index("^") - 2


# ----------------------------------------------------------------------------- precedence

GOLDEN = [
    # unary minus: looser than ^ and ', tighter than *
    ("-x'*A*x", "(mul (mul (neg (transpose x)) A) x)"),
    ("-(x'*A*x)", "(neg (mul (mul (transpose x) A) x))"),
    ("-x^2", "(neg (pow x 2))"),
    ("-x.^2", "(neg (elempow x 2))"),
    ("- - x", "(neg (neg x))"),
    ("+x", "x"),
    ("a -- b", "(sub a (neg b))"),
    # a number never ends in a dot
    ("2.*x", "(hadamard 2 x)"),
    ("2*x", "(mul 2 x)"),
    ("2.5*x", "(mul 5/2 x)"),
    (".5*x", "(mul 1/2 x)"),
    ("1e-3*x", "(mul 1/1000 x)"),
    # signed exponents
    ("X^-1", "(pow X (neg 1))"),
    ("x.^-2", "(elempow x (neg 2))"),
    ("x.^(1/2)", "(elempow x (div 1 2))"),
    ("x'^2", "(pow (transpose x) 2)"),
    # associativity
    ("a - b - c", "(sub (sub a b) c)"),
    ("a - (b - c)", "(sub a (sub b c))"),
    ("a + b*c", "(add a (mul b c))"),
    ("(a + b)*c", "(mul (add a b) c)"),
    ("A*B*C", "(mul (mul A B) C)"),
    ("A @ B", "(mul A B)"),
    ("x./y.*z", "(hadamard (elemdiv x y) z)"),
    ("x/alpha*y", "(mul (div x alpha) y)"),
    ("a*b'", "(mul a (transpose b))"),
    ("(a*b)'", "(transpose (mul a b))"),
    # norms
    ("||E||^2", "(pow (norm2 E) 2)"),
    ("||E||", "(norm2 E)"),
    ("||E||_1", "(norm1 E)"),
    ("||E||_2", "(norm2 E)"),
    ("||E||_F", "(normF E)"),
    ("||E||_fro", "(normF E)"),
    ("||A*s - x||^2 + gamma*||A||^2",
     "(add (pow (norm2 (sub (mul A s) x)) 2) (mul gamma (pow (norm2 A) 2)))"),
    # transposes
    ("x'", "(transpose x)"),
    ("x.T", "(transpose x)"),
    ("xᵀ", "(transpose x)"),
    ("x''", "(transpose (transpose x))"),
    ("Aᵀ*x", "(mul (transpose A) x)"),
    # unicode names and operators
    ("γ*x", "(mul γ x)"),
    ("λ*x + μ", "(add (mul λ x) μ)"),
    ("x∘y", "(hadamard x y)"),
    ("x⊙y", "(hadamard x y)"),
    ("x .* y", "(hadamard x y)"),
    ("x_1 + x_2", "(add x_1 x_2)"),
    # calls
    ("tr(X)", "(tr X)"),
    ("sum(sqrt(V*(s.^2) + eps))", "(sum (sqrt (add (mul V (elempow s 2)) eps)))"),
    ("log(det(X))", "(log (det X))"),
    # where bindings are substituted
    ("r'*r where r = A*x - b", "(mul (transpose (sub (mul A x) b)) (sub (mul A x) b))"),
    ("u'*u where r = A*x - b, u = 2*r",
     "(mul (transpose (mul 2 (sub (mul A x) b))) (mul 2 (sub (mul A x) b)))"),
    ("r where r = x", "x"),
]


@pytest.mark.parametrize("text,expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_precedence_golden(text, expected):
    assert sexpr(parse(text)) == expected


def test_unary_minus_means_negated_quadratic_form():
    # The tree has neg on x' (tighter than *), but the value is -(x'*A*x).
    assert ir("-x'*A*x") == ir("-(x'*A*x)")


def test_unary_minus_quadratic_form_same_value_and_text():
    import numpy as np
    from matgrad.evaluate import evaluate
    rng = np.random.default_rng(0)
    env = {"x": rng.standard_normal((4, 1)), "A": rng.standard_normal((4, 4))}
    expected = -(env["x"].T @ env["A"] @ env["x"])
    for text in ("-x'*A*x", "-(x'*A*x)", "-1*x'*A*x", "(-x)'*A*x"):
        assert np.allclose(evaluate(ir(text), env), expected), text


@pytest.mark.parametrize("a,b", [
    ("2.*x", "2 .* x"),
    ("2.*x", "2*x"),
    ("X^-1", "inv(X)"),
    ("x.^-2", "1 ./ x.^2"),
    ("x.T", "x'"),
    ("xᵀ", "x'"),
    ("x∘y", "x .* y"),
    ("x⊙y", "x .* y"),
    ("||E||_F", "||E||"),
    ("||E||_fro", "sqrt(sum(E.^2))"),
    ("||E||^2", "sum(E.^2)"),
    ("||E||_1", "sum(abs(E))"),
    ("trace(X)", "tr(X)"),
    ("A @ x", "A*x"),
    ("r'*r where r = A*x - b", "(A*x - b)'*(A*x - b)"),
    ("-alpha^2", "-(alpha^2)"),
    ("-X^2", "-(X^2)"),
])
def test_same_value(a, b):
    assert ir(a) == ir(b)


def test_positions_cover_the_source():
    text = "alpha*x + tr(X)"
    t = parse(text)
    assert t.op == "add" and text[t.pos] == "+"
    left, right = t.args
    assert text[left.args[0].pos:left.args[0].end] == "alpha"
    assert text[right.pos:right.end] == "tr(X)"


# ----------------------------------------------------------------------------- errors

ERRORS = [
    # (input, error class, caret column, fragment of the message)
    ("(a + b", ParseError, 6, "ends too early"),
    ("((x)", ParseError, 4, "')'"),
    ("a + b)", ParseError, 5, "unexpected ')'"),
    ("x)", ParseError, 1, "unexpected ')'"),
    ("||x", ParseError, 3, "'||'"),
    ("x||", ParseError, 1, "unexpected '||'"),
    ("a +", ParseError, 3, "ends too early"),
    ("a + ", ParseError, 3, "ends too early"),
    ("a -", ParseError, 3, "ends too early"),
    ("x'*", ParseError, 3, "ends too early"),
    ("x.^", ParseError, 3, "ends too early"),
    ("* a", ParseError, 0, "unexpected '*'"),
    ("a * * b", ParseError, 4, "unexpected '*'"),
    ("A**B", ParseError, 2, "unexpected '*'"),
    ("x y", ParseError, 2, "unexpected 'y'"),
    ("2x", ParseError, 1, "unexpected 'x'"),
    ("x where", ParseError, 7, "ends too early"),
    ("x where r", ParseError, 9, "'='"),
    ("a # b", ParseError, 2, "unexpected character '#'"),
    ("x ; y", ParseError, 2, "unexpected character ';'"),
    ("a $ b", ParseError, 2, "unexpected character '$'"),
    ("x ÷ y", ParseError, 2, "unexpected character '÷'"),
    ("x..*y", ParseError, 1, "unexpected character '.'"),
    ("trac(X)", UnknownFunctionError, 0, "unknown function 'trac'"),
    ("2*trac(X)", UnknownFunctionError, 2, "unknown function 'trac'"),
    ("f(x)", UnknownFunctionError, 0, "unknown function 'f'"),
    ("tr(X, Y)", ParseError, 0, "tr takes 1 argument(s), got 2"),
    ("1 + tr(X,Y)", ParseError, 4, "tr takes 1 argument(s), got 2"),
    ("tr()", ParseError, 0, "got 0"),
    ("det()", ParseError, 0, "det takes 1"),
    ("sum(x, y)", ParseError, 0, "sum takes 1"),
    ("x where r = a, r = b", ParseError, 15, "'r' is defined twice"),
    ("", ParseError, 0, "empty expression"),
    ("   ", ParseError, 0, "empty expression"),
]


@pytest.mark.parametrize("text,cls,col,fragment", ERRORS, ids=[repr(e[0]) for e in ERRORS])
def test_errors_have_a_caret(text, cls, col, fragment):
    with pytest.raises(cls) as info:
        parse(text)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, MatgradError)
    assert fragment in err.message
    assert err.pos == col
    assert caret_column(err) == col


@pytest.mark.parametrize("text,suggestion", [
    ("trac(X)", "trace"),
    ("tarce(X)", "trace"),
    ("dett(X)", "det"),
    ("logdett(X)", "logdet"),
    ("sigmod(x)", "sigmoid"),
])
def test_unknown_function_suggests(text, suggestion):
    with pytest.raises(UnknownFunctionError) as info:
        parse(text)
    assert f"did you mean {suggestion}?" in str(info.value)


def test_trac_suggests_tr_or_trace():
    with pytest.raises(UnknownFunctionError) as info:
        parse("trac(X)")
    hint = info.value.hint or ""
    assert "trace" in hint or "tr?" in hint


def test_unknown_function_without_close_match_lists_functions():
    with pytest.raises(UnknownFunctionError) as info:
        parse("foo(X)")
    assert "known functions" in str(info.value) and "tr" in str(info.value)
    assert "foo*(" in str(info.value)


def test_unexpected_token_message_has_no_internal_names():
    with pytest.raises(ParseError) as info:
        parse("a + b)")
    assert "$end" not in str(info.value).lower()


def test_non_string_input():
    with pytest.raises(ParseError):
        parse(None)  # type: ignore[arg-type]


def test_python_code_is_not_executed(capfd):
    with pytest.raises(ParseError):
        parse("__import__('os').system('echo hi')")
    out, err = capfd.readouterr()
    assert "hi" not in out and "hi" not in err


@pytest.mark.parametrize("text", ["eval('1')", "x.__class__", "lambda: 0", "x[0]", "{x}", "`x`"])
def test_other_code_like_input_is_rejected(text):
    with pytest.raises(ParseError):
        parse(text)


# ----------------------------------------------------------------------------- limits

def test_deep_nesting_is_a_limit_error_quickly():
    text = "(" * 10_000 + "x" + ")" * 10_000
    t0 = time.perf_counter()
    with pytest.raises(LimitError):
        parse(text)
    assert time.perf_counter() - t0 < 1.0


def test_nesting_limit_under_the_length_limit():
    n = MAX_NESTING + 1
    text = "(" * n + "x" + ")" * n
    assert len(text) <= MAX_LENGTH
    with pytest.raises(LimitError) as info:
        parse(text)
    assert info.value.pos == MAX_NESTING


def test_nesting_just_under_the_limit_parses():
    n = MAX_NESTING - 1
    text = "(" * n + "x" + ")" * n
    assert sexpr(parse(text)) == "x"


def test_one_megabyte_expression_is_a_limit_error_quickly():
    text = "x+" * 500_000 + "x"
    assert len(text) > 1_000_000
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as info:
        parse(text)
    assert time.perf_counter() - t0 < 1.0
    assert "limit" in str(info.value)
    # no multi-megabyte echo of the input in the message
    assert len(str(info.value)) < 500


def test_limit_error_is_a_matgrad_error():
    assert issubclass(LimitError, MatgradError)
