"""Numerically hard cases: large and tiny magnitudes, nearly singular matrices, sqrt and log
near 0. The verifier may say "inconclusive" when finite differences cannot decide, but it
never gives a wrong verdict: a correct gradient is never a mismatch, and a wrong one (wrong
by more than the verifier's relative tolerance) is never verified.
"""

from __future__ import annotations

import pytest

import matgrad

# (function, variable, declarations, a correct gradient, wrong gradients)
# Every wrong gradient differs from the truth by at least 1e-3 relative to the gradient's
# largest entry at ordinary points, far above the verifier's tolerance (1e-5).
CASES = [
    ("1e6*||A*s - x||^2", "s", None, "2e6*A'*(A*s - x)",
     ["2e6*A'*(A*s + x)", "2*A'*(A*s - x)", "2e6*A'*(A*s - x) + 1e4*s", "2.002e6*A'*(A*s - x)"]),
    ("1e6*||A*s - x||^2", "A", None, "2e6*(A*s - x)*s'",
     ["2e6*(A*s)*s'", "-2e6*(A*s - x)*s'", "2e6*(A*s - x)*s' + 1e4*A"]),
    ("1e-6*x'*A*x", "x", None, "1e-6*(A + A')*x",
     ["2e-6*A*x", "1e-6*A*x", "1e-6*(A + A')*x + 1e-8*x", "1.001e-6*(A + A')*x"]),
    ("1e-6*x'*A*x", "A", None, "1e-6*x*x'", ["1e-6*x*x' + 1e-8*A", "0", "1e-6*x*x' + 1e-6*I"]),
    ("1e12*x'*x", "x", None, "2e12*x", ["2e12*x + 1e10*x", "2.002e12*x"]),
    ("1e6*logdet(A)", "A", None, "1e6*inv(A)'", ["1e6*inv(A)", "1.001e6*inv(A)'"]),
    ("1e-6*||W*X*V - U||^2", "W", None, "2e-6*(W*X*V - U)*(X*V)'",
     ["-2e-6*(W*X*V - U)*(X*V)'", "2e-6*(W*X*V)*(X*V)'", "2e-6*(W*X*V - U)*(X*V)' + 1e-6*W"]),
    ("sum(exp(30*x))", "x", None, "30*exp(30*x)", ["30.03*exp(30*x)", "30*exp(30*x) + x"]),
    # nearly singular matrices under inv
    ("x'*inv(A)*x", "A", None, "-inv(A)'*x*x'*inv(A)'", ["-inv(A)*x*x'*inv(A)", "inv(A)'*x*x'*inv(A)'"]),
    ("x'*inv(A + 1e-9*I)*x", "x", None, "(inv(A + 1e-9*I) + inv(A + 1e-9*I)')*x", ["2*inv(A + 1e-9*I)*x"]),
    ("x'*inv(A'*A + 1e-8*I)*x", "x", None, "2*inv(A'*A + 1e-8*I)*x",
     ["inv(A'*A + 1e-8*I)*x", "2*inv(A'*A + I)*x"]),
    ("logdet(A'*A + 1e-8*I)", "A", None, "2*A*inv(A'*A + 1e-8*I)",
     ["A*inv(A'*A + 1e-8*I)", "2*A*inv(A'*A + I)"]),
    ("tr(inv(A))", "A", ["A=3x3"], "-inv(A)'*inv(A)'", ["-inv(A)*inv(A)'", "inv(A)'*inv(A)'"]),
    ("logdet(A)", "A", None, "inv(A)'", ["inv(A)", "inv(A)' + 1e-3*A"]),
    # sqrt and log near 0
    ("sum(sqrt(x.^2 + 1e-12))", "x", None, "x ./ sqrt(x.^2 + 1e-12)", ["x ./ sqrt(x.^2 + 1e-2)", "2*sign(x)"]),
    ("sum(log(x.^2 + 1e-10))", "x", None, "2*x ./ (x.^2 + 1e-10)", ["2*x ./ (x.^2 + 1e-2)", "1 ./ x"]),
    ("sum(sqrt(V*(s.^2) + eps))", "s", None, "s .* (V'*((V*(s.^2) + eps).^(-1/2)))",
     ["s .* (V'*((V*(s.^2) + eps).^(-1/2))) + 1e-3*s", "s .* (V'*((V*(s.^2) + eps).^(1/2)))"]),
    ("sum(sqrt(V*(s.^2) + 1e-8))", "s", None, "s .* (V'*((V*(s.^2) + 1e-8).^(-1/2)))",
     ["s .* (V'*((V*(s.^2) + 1e-2).^(-1/2)))", "2*s .* (V'*((V*(s.^2) + 1e-8).^(-1/2)))"]),
    ("log(x'*x + 1e-12)", "x", None, "2*x/(x'*x + 1e-12)", ["2*x/(x'*x + 1)", "x/(x'*x)"]),
    ("1e6*sum(log(x.^2 + 1e-6))", "x", None, "2e6*x ./ (x.^2 + 1e-6)", ["2e6*x ./ (x.^2 + 1e-3)", "2e6 ./ x + 1e4*x"]),
    ("sum(log(x))", "x", None, "1 ./ x", ["1 ./ x + 1e-2*x", "-1 ./ x"]),
]

IDS = [f"{c[0]} wrt {c[1]}" for c in CASES]


@pytest.mark.parametrize("f,wrt,shapes,right,wrongs", CASES, ids=IDS)
def test_derived_and_correct_gradients_verify(f, wrt, shapes, right, wrongs):
    assert matgrad.derive(f, wrt, shapes).verify().status == "verified"
    assert matgrad.check(f, wrt, right, shapes).report.status == "verified"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("f,wrt,shapes,right,wrongs", CASES, ids=IDS)
def test_wrong_gradients_are_rejected(f, wrt, shapes, right, wrongs, seed):
    # Several seeds: a verdict that holds only for the draws of seed 0 is luck, not a guarantee.
    for claim in wrongs:
        result = matgrad.check(f, wrt, claim, shapes, seed=seed)
        assert result.report.status == "mismatch", (claim, seed, str(result.report))


# At a scale of 1e-12 the function's value is far below the rounding of the values it is
# computed from, so finite differences cannot refute a claim: the honest verdict is
# "inconclusive" — but a wrong claim must never be "verified", a right one never a "mismatch".
TINY = [("1e-12*x'*x", "x", "2e-12*x", ["2e-12*x + 1e-14*x", "0", "2.002e-12*x", "-2e-12*x"]),
        ("1e-12*||A*s - x||^2", "s", "2e-12*A'*(A*s - x)", ["2e-12*A'*(A*s + x)", "-2e-12*A'*(A*s - x)"])]


@pytest.mark.parametrize("f,wrt,right,wrongs", TINY, ids=[t[0] for t in TINY])
def test_tiny_scale_is_never_a_wrong_verdict(f, wrt, right, wrongs):
    assert matgrad.derive(f, wrt).verify().status in ("verified", "inconclusive")
    assert matgrad.check(f, wrt, right).report.status in ("verified", "inconclusive")
    for claim in wrongs:
        assert matgrad.check(f, wrt, claim).report.status in ("mismatch", "inconclusive"), claim


def test_odd_sizes_that_are_always_singular_fall_back_to_even_ones():
    # A - A' is skew-symmetric: singular at every odd size. The verifier tries size 4 too.
    report = matgrad.derive("sum(inv(A - A')*x)", "x").verify()
    assert report.status == "verified" and set(report.sizes.values()) == {4}


def test_underflow_to_zero_is_not_evidence():
    # x.^5000 is 0 or inf at every ordinary point; a zero claim must not be "verified" by
    # comparing zeros with zeros … and the derived gradient is not a mismatch either.
    assert matgrad.derive("sum(x.^5000)", "x").verify().status != "mismatch"
    assert matgrad.check("sum(x.^5000)", "x", "0").report.status != "verified"


def test_kinks_use_the_documented_subgradient():
    # relu'(0) = step(0) = 0 and abs'(0) = sign(0) = 0: at random points the kink is never hit.
    assert matgrad.derive("sum(relu(x))", "x").gradient_text() == "step(x)"
    assert matgrad.derive("||x||_1", "x").gradient_text() == "sign(x)"
    assert matgrad.derive("sum(relu(A*x))", "x").verify().ok
    assert matgrad.check("sum(abs(x))", "x", "-sign(x)").report.status == "mismatch"


# One huge entry hides the others: at a point with one large x_i, sum(exp(30*x)) is ~1e21 and
# an error of size x in the small entries is far below both the largest entry and f's rounding
# noise. Such hidden entries get a second look at points drawn 10× and 100× smaller; every seed
# must find the error (before that second look, seeds 1–4 and 6 called this claim verified).
@pytest.mark.parametrize("seed", range(10))
def test_an_error_hidden_by_one_dominant_entry_is_found(seed):
    wrong = matgrad.check("sum(exp(30*x))", "x", "30*exp(30*x) + x", seed=seed)
    assert wrong.report.status == "mismatch", str(wrong.report)
    assert matgrad.check("sum(exp(30*x))", "x", "30*exp(30*x)", seed=seed).report.status == "verified"
