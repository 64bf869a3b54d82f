"""Finite-difference verification: right gradients pass, wrong ones fail with a diagnosis."""

from __future__ import annotations

from fractions import Fraction

import pytest

from matgrad.errors import NotScalarError
from matgrad.ir import (Add, Const, DiagMat, DiagVec, Fill, Func, Hadamard, Identity, Inverse,
                        LogDet, Mul, Power, Softmax, Sum, Trace, Transpose, Var)
from matgrad.verify import VerifyReport, check_claim, verify


def c(p, q=1):
    return Const(Fraction(p, q))


A = Var("A", ("m", "n"))
s = Var("s", ("n", 1))
x = Var("x", ("m", 1))
R = Add((Mul((A, s)), Mul((c(-1), x))))          # A s − x
LSQ = Sum(Power(R, Fraction(2)))                  # ||A s − x||²
X = Var("X", ("n", "n"))
y = Var("y", ("n", 1))
z = Var("z", ("n", 1))


# ----------------------------------------------------------------------------- accepting

def test_least_squares_gradients_verify():
    rep = verify(LSQ, {"s": Mul((c(2), Transpose(A), R)),
                       "A": Mul((c(2), R, Transpose(s))),
                       "x": Mul((c(-2), R))})
    assert rep.ok and rep.status == "verified"
    assert rep.checks == 3 and rep.max_rel_error < 1e-7
    assert rep.sizes["m"] != rep.sizes["n"]  # distinct sizes expose missing transposes
    assert str(rep).startswith("verified")


def test_positive_domain_functions_verify():
    f = Sum(Add((Func("log", y), Power(y, Fraction(1, 2)), Power(y, Fraction(-1)))))
    grad = Add((Power(y, Fraction(-1)), Mul((c(1, 2), Power(y, Fraction(-1, 2)))),
                Mul((c(-1), Power(y, Fraction(-2))))))
    assert verify(f, {"y": grad}).ok


def test_logsumexp_and_identity_claims():
    lse = Func("log", Sum(Func("exp", y)))
    assert check_claim(lse, "y", Softmax(y)).ok
    assert verify(Trace(X), {"X": Identity("n")}).ok  # the claim has no variables at all


def test_sizes_are_reassigned_when_the_domain_needs_it():
    # tr(inv(A'A)) needs rows ≥ columns; the first size draw may not provide that.
    # (seeds 1 and 6 first draw m < n)
    m_ = Inverse(Mul((Transpose(A), A)))
    for seed in (0, 1, 6):
        rep = verify(Trace(m_), {"A": Mul((c(-2), A, m_, m_))}, seed=seed)
        assert rep.ok and rep.sizes["m"] > rep.sizes["n"]


def test_deep_function_verifies():
    e = y
    for _ in range(1500):
        e = Add((e, y))
    assert verify(Sum(e), {"y": Fill(c(1501), ("n", 1))}, draws=1).ok


# ----------------------------------------------------------------------------- rejecting, with a diagnosis

def test_sign_error_is_named():
    rep = verify(LSQ, {"s": Mul((c(-2), Transpose(A), R))})
    assert not rep.ok and rep.status == "mismatch"
    text = " ".join(rep.details)
    assert "sign error" in text and "s(" in text
    assert "finite differences give" in text


def test_factor_two_is_named():
    rep = verify(LSQ, {"s": Mul((c(4), Transpose(A), R))})
    assert rep.status == "mismatch" and "factor of 2 too large" in " ".join(rep.details)


def test_transposed_gradient_of_square_nonsymmetric_case_is_rejected():
    f = Mul((Transpose(y), X, z))                    # y' X z, gradient y z'
    assert verify(f, {"X": Mul((y, Transpose(z)))}).ok
    rep = verify(f, {"X": Mul((z, Transpose(y)))})
    assert rep.status == "mismatch" and "transpose" in " ".join(rep.details)


def test_transposed_shape_is_rejected_without_numbers():
    rep = verify(LSQ, {"A": Mul((c(2), s, Transpose(R)))})
    assert rep.status == "mismatch" and rep.checks == 0
    assert "transposed shape" in rep.details[0]


def test_logdet_of_general_matrix():
    assert verify(LogDet(X), {"X": Transpose(Inverse(X))}).ok
    rep = verify(LogDet(X), {"X": Inverse(X)})
    assert rep.status == "mismatch" and "transpose" in " ".join(rep.details)


# ----------------------------------------------------------------------------- symmetric variables

S = Var("S", ("n", "n"), "symmetric")
B = Var("B", ("n", "n"))


def test_quadratic_form_in_symmetric_matrix():
    f = Mul((Transpose(y), S, y))
    xxt = Mul((y, Transpose(y)))
    assert verify(f, {"S": xxt}).ok
    # the "2G − diag(G)" convention is rejected, and recognised
    rep = verify(f, {"S": Add((Mul((c(2), xxt)), Mul((c(-1), DiagMat(DiagVec(xxt))))))})
    assert rep.status == "mismatch" and "convention" in " ".join(rep.details)


def test_trace_with_symmetric_matrix_needs_the_symmetric_part():
    f = Trace(Mul((B, S)))
    rep = verify(f, {"S": Transpose(B)})
    assert rep.status == "mismatch"
    assert "symmetric part" in " ".join(rep.details)
    assert verify(f, {"S": Mul((c(1, 2), Add((B, Transpose(B)))))}).ok


def test_spd_logdet():
    P = Var("P", ("n", "n"), "spd")
    assert verify(LogDet(P), {"P": Inverse(P)}).ok


# ----------------------------------------------------------------------------- domain, instability, odd claims

def test_no_valid_domain():
    a = Var("a", (1, 1))
    rep = verify(Func("log", Mul((c(-1), Func("exp", a)))), {"a": a})
    assert rep.status == "could not verify: domain" and not rep.ok and rep.checks == 0
    assert "log" in " ".join(rep.details)


def test_unstable_finite_differences_are_inconclusive():
    a = Var("a", (1, 1))
    k = c(10 ** 6)
    f = Func("sin", Mul((k, a)))
    rep = verify(f, {"a": Mul((k, Func("cos", Mul((k, a)))))})
    assert rep.status == "inconclusive" and not rep.ok


def test_variable_absent_from_f():
    w = Var("w", ("n", 1))
    assert verify(Sum(y), {"y": Fill(c(1), ("n", 1)), "w": Fill(c(0), ("n", 1))}).ok
    rep = verify(Sum(y), {"w": w})
    assert rep.status == "mismatch" and "does not depend on w" in " ".join(rep.details)


def test_large_variables_are_sampled_and_still_checked():
    G = Var("G", (20, 20))
    f = Sum(Hadamard((G, G)))
    assert verify(f, {"G": Mul((c(2), G))}, draws=1).ok
    assert verify(f, {"G": Mul((c(2), Transpose(G)))}, draws=1).status == "mismatch"


def test_check_claim_speaks_to_the_author():
    rep = check_claim(LSQ, "s", Mul((c(2), Transpose(A), R)))
    assert rep.ok and rep.details[0].startswith("Checking your claim")
    bad = check_claim(LSQ, "s", Mul((c(-2), Transpose(A), R)))
    assert not bad.ok and "your claim" in " ".join(bad.details)


def test_bad_requests():
    with pytest.raises(NotScalarError):
        verify(R, {"s": s})
    with pytest.raises(ValueError):
        verify(LSQ, {})


def test_deterministic():
    claims = {"s": Mul((c(-2), Transpose(A), R))}
    assert verify(LSQ, claims, seed=5) == verify(LSQ, claims, seed=5)
    ok = {"A": Mul((c(2), R, Transpose(s)))}
    assert verify(LSQ, ok, seed=7) == verify(LSQ, ok, seed=7)
    assert isinstance(verify(LSQ, ok), VerifyReport)


def test_formula_undefined_where_f_is_defined_is_no_mismatch():
    """det(X)*inv(X)' is NaN at a singular X although det is smooth there: draw elsewhere."""
    import matgrad
    d = matgrad.derive("det(x*x')", "x")
    report = d.verify()
    assert report.status != "mismatch", str(report)


def test_tiny_gradient_is_judged_against_rounding_of_intermediates():
    """log(1 + t) with t ≈ 1e-13 is exact only to eps·1: the gradient (~1e-13) must not be a false mismatch."""
    import matgrad
    d = matgrad.derive("log(1 + exp(-||a||_1^2)^2)", "a")
    for seed in (0, 1, 2):
        assert d.verify(seed=seed).status != "mismatch"
    # the looser floor does not let an ordinary-sized error through
    wrong = matgrad.check("log(1 + exp(-x'*x))", "x", "2*x*exp(-x'*x)/(1 + exp(-x'*x))")
    assert wrong.report.status == "mismatch"
