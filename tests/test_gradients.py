"""Corpus-driven gradient tests: every case derives, verifies numerically, and agrees with its reference."""

from __future__ import annotations

import numpy as np
import pytest

import matgrad
from matgrad.evaluate import evaluate
from matgrad.api import _compile_claim

from corpus import CASES

IDS = [f"{e} d/d{w}" for e, w, _, _ in CASES]


@pytest.mark.parametrize("expr, wrt, shapes, reference", CASES, ids=IDS)
def test_gradient_verifies_numerically(expr, wrt, shapes, reference):
    d = matgrad.derive(expr, wrt, shapes)
    report = d.verify()
    assert report.ok, str(report)
    assert report.max_rel_error < 1e-5


@pytest.mark.parametrize("expr, wrt, shapes, reference", CASES, ids=IDS)
def test_reference_is_accepted_by_check(expr, wrt, shapes, reference):
    result = matgrad.check(expr, wrt, reference, shapes)
    assert result.ok, str(result.report)


@pytest.mark.parametrize("expr, wrt, shapes, reference", CASES, ids=IDS)
def test_gradient_equals_reference_at_random_points(expr, wrt, shapes, reference):
    """The derived closed form and the hand-written one agree entry by entry."""
    d = matgrad.derive(expr, wrt, shapes)
    ref = _compile_claim(reference, d.variables, d.variables[wrt])
    g = d.gradients_ir[wrt]
    rng = np.random.default_rng(7)
    sizes = {}
    for v in d.variables.values():
        for dim in v.shape:
            if isinstance(dim, str):
                sizes.setdefault(dim, 3 + len(sizes) % 3)
    for _ in range(3):
        env = {}
        for name, v in d.variables.items():
            r, c = (sizes.get(x, x) for x in v.shape)
            a = rng.uniform(0.5, 1.5, (r, c))
            if v.kind in ("symmetric", "spd"):
                a = a @ a.T + r * np.eye(r)
            elif r == c:  # keep inverses and log-determinants defined
                a = a + r * np.eye(r)
            if v.kind == "prob":
                a = a / a.sum()
            env[name] = a
        np.testing.assert_allclose(evaluate(g, env), evaluate(ref, env), rtol=1e-9, atol=1e-9)


def test_wrong_seed_formula_is_caught():
    """Sadeghi's trick slide prints −2(WXV−U)(XV)ᵀ; the sign is wrong and check must say so."""
    bad = matgrad.check("||W*X*V - U||^2", "W", "-2*(W*X*V - U)*(X*V)'")
    assert not bad.ok
    assert "sign" in str(bad.report)
    good = matgrad.check("||W*X*V - U||^2", "W", "2*(W*X*V - U)*(X*V)'")
    assert good.ok


def test_compact_forms():
    """The forms the core issue names, exactly."""
    assert matgrad.derive("||A*s - x||^2 + gamma*||A||^2", "s").gradient_text() == "2*A'*(A*s - x)"
    assert matgrad.derive("x'*A*x", "x").gradient_text() == "(A + A')*x"
    ica = matgrad.derive("||W'*W*x - x||^2", "W").gradient_text()
    assert ica == "2*W*(r*x' + x*r') where r = W'*W*x - x"
    assert matgrad.derive("-y'*log(softmax(a))", "a", {"y": "prob"}).gradient_text() == "softmax(a) - y"


def test_several_wrt_share_one_pass():
    d = matgrad.derive("||W*X*V - U||^2", ["W", "X", "V"])
    assert set(d.gradients_ir) == {"W", "X", "V"}
    assert d.verify().ok
