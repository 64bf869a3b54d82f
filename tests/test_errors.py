"""Bad input: every class of mistake gets its own MatgradError subclass, a clear message,
a caret under the spot when the mistake has a position, and exit code 2 on the command line.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import matgrad
from matgrad import (
    DomainError, LimitError, MatgradError, NotScalarError, ParseError, ShapeError,
    UnknownFunctionError, UnsupportedError,
)
from matgrad_cli.main import main


def error_of(expr: str, wrt: str = "x", shapes=None) -> MatgradError:
    with pytest.raises(MatgradError) as info:
        matgrad.derive(expr, wrt, shapes)
    return info.value


def caret_column(err: MatgradError) -> int:
    """The column the rendered caret points at (0-based, in the expression)."""
    lines = err.render().splitlines()
    assert len(lines) == 3, err.render()
    assert lines[1] == "  " + err.text
    return len(lines[2]) - 3


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


# ----------------------------------------------------------------------------- the hierarchy

def test_each_class_is_distinct_and_a_matgrad_error():
    classes = [ParseError, UnknownFunctionError, ShapeError, NotScalarError, DomainError,
               UnsupportedError, LimitError]
    assert all(issubclass(c, MatgradError) for c in classes)
    assert issubclass(UnknownFunctionError, ParseError)
    assert issubclass(NotScalarError, ShapeError)
    assert len(set(classes)) == len(classes)
    for a in (ParseError, ShapeError, DomainError, UnsupportedError, LimitError):
        for b in (ParseError, ShapeError, DomainError, UnsupportedError, LimitError):
            assert a is b or not issubclass(a, b)


# ----------------------------------------------------------------------------- syntax errors

SYNTAX = [
    # (expression, column of the caret, words the message must contain)
    ("||x||^2 + ||y", 13, ["ends too early", "'||'", "the || at column 11 is never closed"]),
    ("(x'*x", 5, ["ends too early", "')'", "the ( at column 1 is never closed"]),
    ("sum((x)", 7, ["ends too early", "the ( at column 4 is never closed"]),
    ("x'*x)", 4, ["unexpected ')'", "no '(' opens it"]),
    ("x'*x +", 6, ["ends too early"]),
    ("*x", 0, ["unexpected '*'"]),
    ("x'* *x", 4, ["unexpected '*'"]),
    ("x'*x # 2", 5, ["unexpected character '#'"]),
    ("x $ y", 2, ["unexpected character '$'"]),
    ("2 x", 2, ["unexpected 'x'"]),
    ("tr(A, B)", 0, ["tr takes 1 argument"]),
    ("a where a = x'*x, a = 2", 18, ["defined twice"]),
]


@pytest.mark.parametrize("expr,column,words", SYNTAX, ids=[s[0] for s in SYNTAX])
def test_syntax_errors_point_at_the_problem(expr, column, words):
    err = error_of(expr)
    assert type(err) is ParseError
    assert caret_column(err) == column
    for w in words:
        assert w in err.render()


def test_empty_and_non_string_input_are_parse_errors():
    assert type(error_of("")) is ParseError
    assert type(error_of("   ")) is ParseError
    with pytest.raises(ParseError, match="as a string"):
        matgrad.derive(42, "x")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- unknown functions

def test_unknown_function_suggests_the_nearest_name():
    err = error_of("sum(tanhh(x))")
    assert type(err) is UnknownFunctionError
    assert "unknown function 'tanhh'" in err.message and err.hint == "did you mean tanh?"
    assert caret_column(err) == 4


def test_unknown_function_without_a_near_name_lists_the_known_ones():
    err = error_of("foo(x)")
    assert type(err) is UnknownFunctionError
    assert "logdet" in err.hint and "foo*(…)" in err.hint


# ----------------------------------------------------------------------------- shapes

def test_dimension_mismatch_names_both_operands_and_shapes():
    err = error_of("||W*A*x||^2", shapes={"W": (3, 4), "A": (5, 5)})
    assert type(err) is ShapeError
    assert "cannot multiply W (3×4) by A (5×5)" in err.message
    assert caret_column(err) == 3


@pytest.mark.parametrize("expr,words", [
    ("sum(x + A)", "cannot add x (n×1) and A (n×m)"),
    ("sum(x - y')", "cannot subtract y' (1×m) from x (n×1)"),
    ("sum(x*y)", "cannot multiply x (n×1) by y (m×1)"),
    ("sum(x ./ A)", "cannot divide entrywise"),
    ("sum(x / y)", "cannot divide by y"),
])
def test_symbolic_mismatches_say_what_does_not_fit(expr, words):
    err = error_of(expr)
    assert isinstance(err, ShapeError) and words in err.message, err.message


def test_a_vector_function_is_not_scalar():
    err = error_of("A*x")
    assert type(err) is NotScalarError
    assert "n×1 vector" in err.message and "sum(" in err.hint


def test_declaration_contradicting_use_is_a_shape_error():
    err = error_of("sum(W*x)", shapes=["W=3x4", "x=5"])
    assert type(err) is ShapeError and "cannot multiply W (3×4) by x (5×1)" in err.message
    # x declared a 3×4 matrix is consistent with tr(x'*x): not an error.
    assert matgrad.derive("tr(x'*x)", "x", ["x=3x4"]).gradient_text() == "2*x"


def test_conflicting_declarations_are_a_shape_error():
    with pytest.raises(ShapeError, match="conflicting --shape declarations for x: 'x=3' and 'x=4'"):
        matgrad.derive("x'*x", "x", ["x=3", "x=4"])
    assert matgrad.derive("x'*x", "x", ["x=3", "x=3"]).gradient_text() == "2*x"  # repeating is fine
    r = cli("derive", "x'*S*x", "--wrt", "x", "--shape", "S=symmetric", "--shape", "S=3x3")
    assert r.exit_code == 2 and "conflicting --shape declarations for S" in r.output
    assert "S=3x3,symmetric" in r.output  # says how to declare both at once


@pytest.mark.parametrize("spec,words", [
    ("x=0", "size of 0"), ("x=3x0", "size of 0"), ("x=-3", "not a size"), ("x=3x4x5", "not a size"),
    ("x=", "no size"), ("=3", "not a variable name"), ("x=foo", "not a size"), ("x3", "NAME=SPEC"),
])
def test_bad_shape_declarations(spec, words):
    with pytest.raises(ShapeError, match=words):
        matgrad.derive("x'*x", "x", [spec])
    r = cli("derive", "x'*x", "--wrt", "x", "--shape", spec)
    assert r.exit_code == 2 and words in r.output


@pytest.mark.parametrize("shapes", [{"x": 0}, {"x": (3.5, 1)}, {"x": True}, {"x": (2, "n m")},
                                    {"x": (3, -1)}, 5, [3]])
def test_bad_declarations_through_the_api(shapes):
    with pytest.raises(ShapeError):
        matgrad.derive("x'*x", "x", shapes)


def test_symmetric_declared_non_square():
    with pytest.raises(ShapeError, match="declared symmetric but is 3×4"):
        matgrad.derive("x'*S*x", "x", ["S=3x4,symmetric"])


# ----------------------------------------------------------------------------- domains

@pytest.mark.parametrize("fn", ["det", "logdet", "inv", "tr", "diag"])
def test_square_only_functions_of_a_non_square_matrix(fn):
    expr = f"sum({fn}(W))" if fn in ("inv", "diag") else f"{fn}(W)"
    err = error_of(expr, "W", ["W=3x4"])
    assert type(err) is DomainError
    assert f"{fn} needs a square matrix; W is 3×4" in err.message
    assert err.text == expr and err.pos is not None


def test_softmax_of_a_matrix_is_a_domain_error():
    err = error_of("sum(softmax(A))", "A")
    assert type(err) is DomainError and "column vector" in err.message


def test_unsupported_and_limit_errors():
    assert type(error_of("sum(x .^ y)")) is UnsupportedError
    assert type(error_of("1e400*x'*x")) is LimitError
    assert type(error_of("tr(A^100)", "A")) is LimitError


# ----------------------------------------------------------------------------- the variable

def test_wrt_variable_that_does_not_occur_has_gradient_zero():
    d = matgrad.derive("x'*A*x", ["x", "y"])
    assert d.absent == ["y"]
    assert d.gradient_text("y") == "0"
    assert d.verify().ok  # the zero gradient of an absent variable verifies too
    only_absent = matgrad.derive("x'*x", "W")
    assert only_absent.gradient_text() == "0" and only_absent.verify().ok
    r = cli("derive", "x'*x", "--wrt", "y")
    assert r.exit_code == 0
    assert "∇_y F = 0" in r.output and "y does not occur in the expression" in r.output


@pytest.mark.parametrize("wrt", ["1y", "x-y", "", 5])
def test_bad_wrt(wrt):
    with pytest.raises(MatgradError):
        matgrad.derive("x'*x", wrt)


# ----------------------------------------------------------------------------- the command line

@pytest.mark.parametrize("args", [
    ["derive", "||x||^2 + ||y", "--wrt", "x"],
    ["derive", "sinn(x)", "--wrt", "x"],
    ["derive", "sum(W*x)", "--wrt", "x", "--shape", "W=3x4", "--shape", "x=5"],
    ["derive", "A*x", "--wrt", "x"],
    ["derive", "det(W)", "--wrt", "W", "--shape", "W=3x4"],
    ["derive", "1e999999999*x'*x", "--wrt", "x"],
    ["derive", "x'*x", "--wrt", "1y"],
    ["check", "x'*x", "--wrt", "x", "--claim", "2*x +"],
    ["check", "x'*x", "--wrt", "x", "--claim", "A"],
    ["network", "x'*x +"],
])
def test_cli_reports_bad_input_in_one_message_with_exit_2(args):
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ")
    assert "Traceback" not in r.output and "internal error" not in r.output


def test_cli_message_has_the_caret_line():
    r = cli("derive", "sum(tanhh(x))", "--wrt", "x")
    assert r.output.splitlines() == [
        "error: unknown function 'tanhh' (did you mean tanh?)",
        "  sum(tanhh(x))",
        "      ^",
    ]


def test_long_input_gives_the_column_instead_of_a_caret():
    expr = "x'*x + " * 40 + "foo(x)"
    err = error_of(expr)
    assert f"[at column {len(expr) - 5}]" in err.render() and "\n" not in err.render()


# ----------------------------------------------------------------------------- no eval of user strings

PAYLOAD = "__import__('os').system('touch /tmp/pwned_matgrad')"


def test_library_source_has_no_eval_of_strings():
    import re
    from pathlib import Path
    root = Path(matgrad.__file__).resolve().parent
    forbidden = re.compile(r"(?<![\w.])(eval|exec|sympify|parse_expr|compile|__import__)\s*\(")
    hits = []
    for path in sorted([*root.glob("*.py"), *(root.parent / "cli").glob("*.py")]):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if forbidden.search(code):
                hits.append(f"{path.name}:{n}: {code.strip()}")
    # The one exec compiles Python that codegen generated from matgrad's own IR (names are
    # grammar identifiers, made safe by _py_name), never text from the user.
    line = _line_of(root / "codegen.py", "exec(compile(src")
    assert hits == [f'codegen.py:{line}: exec(compile(src, f"<matgrad {{label}}>", "exec"), namespace)'], hits


def _line_of(path, needle: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return n
    return -1


def test_code_injection_is_a_parse_error_and_runs_nothing():
    import os
    marker = "/tmp/pwned_matgrad"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(ParseError):
        matgrad.derive(PAYLOAD, "x")
    with pytest.raises(ParseError):
        matgrad.check(PAYLOAD, "x", "2*x")
    with pytest.raises(ParseError):
        matgrad.check("x'*x", "x", PAYLOAD)
    with pytest.raises(MatgradError):
        matgrad.derive("x'*x", PAYLOAD)
    with pytest.raises(ShapeError):
        matgrad.derive("x'*x", "x", [f"x={PAYLOAD}"])
    for args in (["derive", PAYLOAD, "--wrt", "x"], ["derive", "x'*x", "--wrt", PAYLOAD],
                 ["derive", "x'*x", "--wrt", "x", "--shape", f"x={PAYLOAD}"],
                 ["derive", PAYLOAD, "--wrt", "x", "--format", "sympy"],
                 ["check", "x'*x", "--wrt", "x", "--claim", PAYLOAD], ["network", PAYLOAD]):
        r = cli(*args)
        assert r.exit_code == 2 and r.output.startswith("error: "), (args, r.output)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("seed", [-1, 1.5, "a", True])
def test_bad_seed_is_a_matgrad_error(seed):
    d = matgrad.derive("x'*x", "x")
    with pytest.raises(MatgradError, match="non-negative integer"):
        d.verify(seed=seed)


def test_bad_seed_on_the_command_line():
    for args in (["derive", "x'*x", "--wrt", "x", "--seed", "-1"],
                 ["check", "x'*x", "--wrt", "x", "--claim", "2*x", "--seed", "-5"]):
        r = cli(*args)
        assert r.exit_code == 2 and "non-negative integer" in r.output
