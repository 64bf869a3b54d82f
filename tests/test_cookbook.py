"""The Matrix Cookbook's first-order derivatives (tests/cookbook.py), each checked three ways:

1. matgrad's gradient agrees with central finite differences (Derivation.verify);
2. the book's closed form, fed to matgrad.check, is accepted;
3. the two closed forms agree with each other at random points (matgrad.evaluate).

Then the printed size of matgrad's result (operators, see cookbook.operator_count) is compared
with the book's: `pytest -s` prints the table; matgrad's must never be larger, except by an
entry's declared slack.
"""

from __future__ import annotations

import numpy as np
import pytest

import matgrad
from matgrad.api import _compile_claim
from matgrad.evaluate import evaluate

from cookbook import ENTRIES, operator_count

IDS = [f"{i:03d} {e[0]} d/d{e[1]}" for i, e in enumerate(ENTRIES)]


def _parts(entry):
    expr, wrt, shapes, book, note = entry[:5]
    slack = entry[5] if len(entry) > 5 else 0
    return expr, wrt, shapes, book, note, slack


_DERIVED: dict[int, matgrad.Derivation] = {}


def derived(i: int) -> matgrad.Derivation:
    if i not in _DERIVED:
        expr, wrt, shapes, *_ = _parts(ENTRIES[i])
        _DERIVED[i] = matgrad.derive(expr, wrt, shapes)
    return _DERIVED[i]


def test_enough_identities():
    from_the_book = [e for e in ENTRIES if "MC (" in e[4] or "MC 8" in e[4]]
    assert len(ENTRIES) >= 80 and len(from_the_book) >= 80, (len(ENTRIES), len(from_the_book))
    assert len(set((e[0], e[1], repr(e[2]), e[3]) for e in ENTRIES)) == len(ENTRIES), "duplicate entry"


@pytest.mark.parametrize("i", range(len(ENTRIES)), ids=IDS)
def test_matgrad_gradient_verifies(i):
    report = derived(i).verify()
    assert report.ok, f"{derived(i).gradient_text()}: {report}"


@pytest.mark.parametrize("i", range(len(ENTRIES)), ids=IDS)
def test_book_form_is_accepted(i):
    expr, wrt, shapes, book, *_ = _parts(ENTRIES[i])
    result = matgrad.check(expr, wrt, book, shapes)
    assert result.ok, str(result.report)


def _random_point(variables, rng, sizes):
    env = {}
    for name, v in variables.items():
        r, c = (sizes[d] if isinstance(d, str) else d for d in v.shape)
        a = rng.uniform(0.5, 1.5, (r, c))
        if v.kind in ("symmetric", "spd"):
            a = a @ a.T + r * np.eye(r)
        elif r == c and r > 1:  # keep inverses, determinants and log-determinants defined
            a = a + r * np.eye(r)
        env[name] = a
    return env


def _points(d, seed, count=3):
    """Random points inside f's domain (and the gradient's: no singular inverse there), with
    distinct sizes for the symbolic dimensions, in increasing and then decreasing order."""
    from matgrad.evaluate import DomainViolation
    dims = sorted({x for v in d.variables.values() for x in v.shape if isinstance(x, str)})
    rng = np.random.default_rng(seed)
    for order in (range(len(dims)), reversed(range(len(dims)))):
        sizes = {dim: 3 + k for dim, k in zip(dims, order)}
        found = []
        for _ in range(10 * count):
            env = _random_point(d.variables, rng, sizes)
            try:
                evaluate(d.expr, env, sizes=sizes, check_domain=True)
                for g in d.gradients_ir.values():
                    evaluate(g, env, sizes=sizes, check_domain=True)
            except DomainViolation:
                continue
            found.append(env)
            if len(found) == count:
                return sizes, found
    raise AssertionError("no point in the domain")


@pytest.mark.parametrize("i", range(len(ENTRIES)), ids=IDS)
def test_matgrad_and_book_agree(i):
    expr, wrt, shapes, book, *_ = _parts(ENTRIES[i])
    d = derived(i)
    ours = d.gradients_ir[wrt]
    theirs = _compile_claim(book, d.variables, d.variables[wrt])
    sizes, points = _points(d, 11 + i)
    for env in points:
        a, b = evaluate(ours, env, sizes=sizes), evaluate(theirs, env, sizes=sizes)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_output_size_against_the_book():
    """matgrad's printed result is never longer than the book's form (beyond a declared slack)."""
    rows = []
    worse = []
    for i, entry in enumerate(ENTRIES):
        expr, wrt, shapes, book, note, slack = _parts(entry)
        ours = derived(i).gradient_text(wrt, name_shared=False)
        a, b = operator_count(ours), operator_count(book)
        rows.append((i, f"{expr}  d/d{wrt}", ours, book, a, b))
        if a > b + slack:
            worse.append(f"{expr} d/d{wrt}: matgrad {ours!r} ({a}) vs book {book!r} ({b})")
    smaller = sum(1 for r in rows if r[4] < r[5])
    equal = sum(1 for r in rows if r[4] == r[5])
    larger = sum(1 for r in rows if r[4] > r[5])
    width = max(len(r[1]) for r in rows)
    print()
    print(f"{'#':>3}  {'function':<{width}}  {'ops':>3} {'book':>4}  matgrad  |  book")
    for i, f, ours, book, a, b in rows:
        mark = "<" if a < b else ("=" if a == b else ">")
        print(f"{i:3d}  {f:<{width}}  {a:3d} {b:4d} {mark} {ours}  |  {book}")
    print(f"\n{len(rows)} identities: matgrad smaller {smaller}, equal {equal}, larger {larger}")
    assert not worse, "\n".join(worse)


def test_symmetric_answers_differ_from_the_books_structured_formula():
    """MC (141) A + A' - (A∘I) is rejected by check with the symmetric-gradient diagnosis."""
    r = matgrad.check("tr(A*S)", "S", "A + A' - A .* I", {"S": "symmetric"})
    assert not r.ok
    assert "twice" in str(r.report) or "symmetric" in str(r.report)


def test_several_variables_and_scalars_at_once():
    d = matgrad.derive("gamma*x'*A*x + lambda*||x||^2 + tr(inv(A + gamma*I))",
                       ["gamma", "lambda", "x", "A"])
    assert d.verify().ok
    assert d.gradient_text("lambda") == "||x||^2"
    assert d.gradient_text("x") == "2*lambda*x + gamma*(A + A')*x"


@pytest.mark.parametrize("expr,wrt,shapes,expected", [
    ("x'*A*x", "x", None, "(A + A')*x"),
    ("det(X)", "X", None, "det(X)*inv(X)'"),
    ("a'*inv(X)*b", "X", None, "-inv(X)'*a*b'*inv(X)'"),
    ("b'*X'*X*c", "X", None, "X*(b*c' + c*b')"),
    ("sum(exp(X*a))", "X", None, "exp(X*a)*a'"),
    ("tr(X'*X)^2", "X", None, "4*tr(X'*X)*X"),
    ("x'*inv(A + x*x')*x", "x", None, "(1 - x'*inv(r)*x)*(inv(r) + inv(r)')*x where r = A + x*x'"),
    ("tr(W*W'*W*W')", "W", None, "4*W*W'*W"),
    ("tr(A*S)", "S", {"S": "symmetric"}, "0.5*(A + A')"),
    ("||x||", "x", None, "x/||x||"),
    ("tr(X^3)", "X", None, "3*X'^2"),
    ("log(abs(det(X)))", "X", None, "inv(X)'"),
])
def test_compact_canonical_forms(expr, wrt, shapes, expected):
    d = matgrad.derive(expr, wrt, shapes)
    assert d.gradient_text(wrt) == expected
    assert d.verify().ok


def test_book_127_needs_a_symmetric_A():
    """MC (127) assumes B and C symmetric; with a general A its formula is wrong."""
    book = "-2*C*X*inv(A + X'*C*X)*X'*B*X*inv(A + X'*C*X) + 2*B*X*inv(A + X'*C*X)"
    expr = "tr(inv(A + X'*C*X)*(X'*B*X))"
    assert not matgrad.check(expr, "X", book, {"B": "symmetric", "C": "symmetric"}).ok
    assert matgrad.check(expr, "X", book, {"A": "symmetric", "B": "symmetric", "C": "symmetric"}).ok


def test_book_84_needs_a_symmetric_W():
    assert not matgrad.check("(x - A*s)'*W*(x - A*s)", "s", "-2*A'*W*(x - A*s)").ok


def test_every_operator_has_exactly_one_rule():
    """rules.RULES has an entry for every IR node class that has operands (leaves have none)."""
    import inspect

    from matgrad import ir
    from matgrad.rules import DERIVATIVES, RULES
    nodes = [c for _, c in inspect.getmembers(ir, inspect.isclass)
             if issubclass(c, ir.Expr) and c is not ir.Expr and c.__module__ == ir.__name__]
    leaves = {ir.Var, ir.Const, ir.Identity}
    assert {c for c in nodes if c not in leaves} == set(RULES)
    assert set(DERIVATIVES) == set(ir.ELEMENTWISE)
