"""Numerically hard cases: large and tiny magnitudes, nearly singular matrices, sqrt/log near 0.

No false pass and no false failure: correct gradients verify; wrong ones are rejected or,
where finite differences cannot resolve them, called inconclusive — never verified.
"""

from __future__ import annotations

import pytest

import matgrad

CASES = [  # (f, wrt, a correct gradient, a wrong one)
    ("1e6*||A*s - x||^2", "s", "2e6*A'*(A*s - x)", "2e7*A'*(A*s - x)"),
    ("1e-6*x'*A*x", "x", "1e-6*(A + A')*x", "2e-6*A*x"),
    ("1e-12*sum(exp(X*a))", "a", "1e-12*X'*exp(X*a)", "-1e-12*X'*exp(X*a)"),
    ("1e8*logdet(X)", "X", "1e8*inv(X)'", "1e8*inv(X)"),
    ("sum(sqrt(x.*x + 1e-8))", "x", "x ./ sqrt(x.*x + 1e-8)", "2*x ./ sqrt(x.*x + 1e-8)"),
    ("sum(log(x + 1e-9))", "x", "1 ./ (x + 1e-9)", "2 ./ (x + 1e-9)"),
    ("a'*inv(X + 1e-6*I)*b", "X", "-inv(X + 1e-6*I)'*a*b'*inv(X + 1e-6*I)'",
     "-inv(X + 1e-6*I)*a*b'*inv(X + 1e-6*I)"),
    ("sum(exp(30*x))", "x", "30*exp(30*x)", "31*exp(30*x)"),
    ("log(1 + exp(-x'*x))", "x", "-2*x*exp(-x'*x)/(1 + exp(-x'*x))", "2*x*exp(-x'*x)/(1 + exp(-x'*x))"),
]


@pytest.mark.parametrize("f, wrt, good, bad", CASES, ids=[c[0] for c in CASES])
def test_no_false_pass_and_no_false_failure(f, wrt, good, bad):
    for seed in (0, 1):
        derived = matgrad.derive(f, wrt).verify(seed=seed)
        assert derived.status in ("verified", "inconclusive"), str(derived)
        right = matgrad.check(f, wrt, good, seed=seed)
        assert right.report.status in ("verified", "inconclusive"), str(right.report)
        wrong = matgrad.check(f, wrt, bad, seed=seed)
        assert wrong.report.status in ("mismatch", "inconclusive"), str(wrong.report)
        assert not wrong.ok


def test_ordinary_scales_give_definite_verdicts():
    """The conservative floor does not blur ordinary cases into 'inconclusive'."""
    for f, wrt, good, bad in CASES[:2] + CASES[3:8]:
        assert matgrad.check(f, wrt, good).report.status == "verified", f
        assert matgrad.check(f, wrt, bad).report.status == "mismatch", f
