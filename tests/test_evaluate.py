"""NumPy evaluation of the IR: every node's meaning against plain NumPy."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from matgrad import evaluate as ev
from matgrad.errors import MatgradError
from matgrad.codegen import lambdify  # matgrad.lambdify: the generated code, held to evaluate's numbers
from matgrad.evaluate import DomainViolation, dim_sizes, evaluate
from matgrad.ir import (Add, Const, Det, DiagMat, DiagVec, Fill, Func, Hadamard, Identity,
                        Inverse, LogDet, LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace,
                        Transpose, Var)

A = Var("A", ("m", "n"))
B = Var("B", ("n", "n"))
X = Var("X", ("n", "n"))
s = Var("s", ("n", 1))
x = Var("x", ("m", 1))
v = Var("v", ("n", 1))
a = Var("a", (1, 1))
ONE = Const(Fraction(1))
MINUS = Const(Fraction(-1))

rng = np.random.default_rng(1)
An = rng.standard_normal((4, 3))
Bn = rng.standard_normal((3, 3))
Xn = 1.5 * np.eye(3) + 0.3 * rng.standard_normal((3, 3))
sn = rng.standard_normal((3, 1))
xn = rng.standard_normal((4, 1))
vn = rng.standard_normal((3, 1))
ENV = {"A": An, "B": Bn, "X": Xn, "s": sn, "x": xn, "v": vn, "a": 0.7}


def val(expr, **extra):
    env = dict(ENV)
    env.update(extra)
    return evaluate(expr, env)


# ----------------------------------------------------------------------------- leaves and inputs

def test_var_const_identity_fill():
    assert np.array_equal(val(A), An)
    assert val(Const(Fraction(3, 4))).tolist() == [[0.75]]
    assert np.array_equal(evaluate(Identity("n"), {}, sizes={"n": 3}), np.eye(3))
    assert np.array_equal(val(Mul((Identity("n"), s))), sn)
    assert np.array_equal(val(Identity(2)), np.eye(2))
    assert np.array_equal(val(Add((A, Fill(Const(Fraction(2)), ("m", "n"))))), An + 2.0)
    assert np.allclose(val(Add((v, Fill(a, ("n", 1))))), vn + 0.7)


def test_results_are_2d_float_copies():
    out = evaluate(v, {"v": np.arange(3)})  # 1-D int input
    assert out.shape == (3, 1) and out.dtype == float
    src = np.ones((3, 1))
    res = evaluate(Transpose(Transpose(v)), {"v": src})
    res[0, 0] = 5.0
    assert src[0, 0] == 1.0
    assert evaluate(a, {"a": 2.5}).shape == (1, 1)
    assert evaluate(a, {"a": np.float64(2.5)}).tolist() == [[2.5]]
    row = Var("r", (1, "n"))
    assert evaluate(row, {"r": np.arange(3.0)}).shape == (1, 3)


def test_dim_sizes_inference_and_errors():
    assert dim_sizes(Mul((A, s)), {"A": An, "s": sn}) == {"m": 4, "n": 3}
    assert dim_sizes(Mul((A, s)), {"A": An, "s": sn.ravel()}) == {"m": 4, "n": 3}
    with pytest.raises(ValueError, match="'n'"):
        dim_sizes(Mul((A, s)), {"A": An, "s": np.ones(5)})
    with pytest.raises(ValueError, match="declared"):
        evaluate(Var("k", (2, 2)), {"k": np.ones((3, 3))})
    with pytest.raises(ValueError, match="1-D"):
        evaluate(B, {"B": np.ones(9)})
    with pytest.raises(ValueError, match="size of dimension 'q'"):
        evaluate(Identity("q"), {})
    assert evaluate(Identity("q"), {}, sizes={"q": 2}).shape == (2, 2)
    with pytest.raises(KeyError, match="'s'"):
        evaluate(s, {})


# ----------------------------------------------------------------------------- linear structure

def test_add_mul_transpose_hadamard():
    assert np.allclose(val(Add((Mul((A, s)), Mul((MINUS, x))))), An @ sn - xn)
    assert np.allclose(val(Add((s, v, s))), 2 * sn + vn)
    # scalars commute and may sit anywhere among the factors; the chain keeps its order
    assert np.allclose(val(Mul((A, a, B, Const(Fraction(2)), s))), 1.4 * An @ Bn @ sn)
    # a 1×1 product of vectors acts as a scalar factor
    assert np.allclose(val(Mul((Mul((Transpose(v), s)), B))), (vn.T @ sn)[0, 0] * Bn)
    assert val(Mul((a, Const(Fraction(3))))).tolist() == [[pytest.approx(2.1)]]
    assert np.allclose(val(Mul((Transpose(x), A, s))), xn.T @ An @ sn)
    assert np.array_equal(val(Transpose(A)), An.T)
    assert np.allclose(val(Hadamard((s, v, s))), sn * vn * sn)


def test_power():
    pos = np.abs(sn) + 0.1
    assert np.allclose(evaluate(Power(s, Fraction(2)), {"s": sn}), sn ** 2)
    assert np.allclose(evaluate(Power(s, Fraction(-1)), {"s": pos}), 1 / pos)
    assert np.allclose(evaluate(Power(s, Fraction(1, 2)), {"s": pos}), np.sqrt(pos))
    assert np.allclose(evaluate(Power(s, Fraction(3, 2)), {"s": pos}), pos ** 1.5)
    assert np.allclose(evaluate(Power(s, Fraction(0)), {"s": sn}), np.ones((3, 1)))


# ----------------------------------------------------------------------------- elementwise functions

def test_elementwise_functions():
    z = np.array([[-2.0], [-0.5], [0.0], [0.5], [3.0]])
    w = Var("w", ("k", 1))
    expected = {
        "exp": np.exp(z), "sin": np.sin(z), "cos": np.cos(z), "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)), "softplus": np.log1p(np.exp(z)),
        "relu": np.maximum(z, 0), "abs": np.abs(z), "sign": np.sign(z),
        "step": np.array([[0.0], [0.0], [0.0], [1.0], [1.0]]),
    }
    for name, want in expected.items():
        assert np.allclose(evaluate(Func(name, w), {"w": z}), want), name
    assert np.allclose(evaluate(Func("log", w), {"w": np.exp(z)}), z)


def test_sigmoid_softplus_are_stable():
    big = np.array([[-1000.0], [1000.0]])
    w = Var("w", (2, 1))
    with np.errstate(all="raise"):
        assert np.array_equal(evaluate(Func("sigmoid", w), {"w": big}), [[0.0], [1.0]])
        assert np.allclose(evaluate(Func("softplus", w), {"w": big}), [[0.0], [1000.0]])


def test_step_at_zero_is_zero():
    assert evaluate(Func("step", a), {"a": 0.0}).tolist() == [[0.0]]


# ----------------------------------------------------------------------------- reductions and matrix functions

def test_reductions_and_matrix_functions():
    assert np.isclose(val(Trace(B))[0, 0], np.trace(Bn))
    assert np.isclose(val(Sum(A))[0, 0], An.sum())
    assert np.isclose(val(Det(B))[0, 0], np.linalg.det(Bn))
    assert np.isclose(val(LogDet(X))[0, 0], np.log(np.linalg.det(Xn)))
    assert np.allclose(val(Inverse(X)), np.linalg.inv(Xn))
    assert np.allclose(val(MatPow(B, 3)), Bn @ Bn @ Bn)
    assert np.array_equal(val(DiagMat(v)), np.diag(vn[:, 0]))
    assert np.array_equal(val(DiagVec(B)), np.diag(Bn).reshape(3, 1))
    e = np.exp(vn)
    assert np.allclose(val(Softmax(v)), e / e.sum())
    assert np.isclose(val(LogSumExp(v))[0, 0], np.log(e.sum()))


def test_softmax_logsumexp_are_stable():
    big = np.array([[1000.0], [1001.0], [-1000.0]])
    with np.errstate(over="raise"):
        sm = evaluate(Softmax(v), {"v": big})
        lse = evaluate(LogSumExp(v), {"v": big})
    assert np.allclose(sm[:, 0], [1 / (1 + np.e), np.e / (1 + np.e), 0.0])
    assert np.isclose(lse[0, 0], 1001 + np.log1p(np.exp(-1)))


def test_each_distinct_subexpression_is_evaluated_once(monkeypatch):
    calls = []

    def counting_exp(z):
        calls.append(1)
        return np.exp(z)

    monkeypatch.setitem(ev._ELEMENTWISE, "exp", counting_exp)
    shared = Func("exp", v)
    again = Func("exp", Var("v", ("n", 1)))  # equal by structure, a different object
    evaluate(Sum(Add((Hadamard((shared, shared)), again, Mul((Const(Fraction(2)), shared))))),
             {"v": vn})
    assert len(calls) == 1


def test_deep_expression_does_not_recurse():
    e = v
    for _ in range(5000):
        e = Func("tanh", e)
    want = vn.copy()
    for _ in range(5000):
        want = np.tanh(want)
    assert np.allclose(evaluate(Sum(e), {"v": vn}), want.sum())


# ----------------------------------------------------------------------------- domain checks

@pytest.mark.parametrize("expr, env, what", [
    (Func("log", v), {"v": np.array([1.0, 0.0, 2.0])}, "log"),
    (Power(v, Fraction(1, 2)), {"v": np.array([1.0, -1.0, 2.0])}, "non-integer power"),
    (Power(v, Fraction(-2)), {"v": np.array([1.0, 0.0, 2.0])}, "negative power"),
    (Inverse(B), {"B": np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0 + 1e-12], [0.0, 1.0, 1.0]])},
     "singular"),
    (LogDet(B), {"B": -np.eye(3)}, "determinant"),
    (LogDet(B), {"B": np.diag([1.0, 1.0, 1e-10])}, "conditioned"),
    (Func("exp", v), {"v": np.array([1.0, 1000.0, 0.0])}, "non-finite"),
    (Sum(v), {"v": np.array([1.0, np.nan, 0.0])}, "non-finite"),
])
def test_domain_violations(expr, env, what):
    with pytest.raises(DomainViolation, match=what):
        evaluate(expr, env, check_domain=True)
    out = evaluate(expr, env)  # without the check: a value (possibly nan/inf), no exception
    assert out.ndim == 2


def test_domain_violation_is_internal():
    assert not issubclass(DomainViolation, MatgradError)
    assert DomainViolation("log").what == "log"


def test_in_domain_points_pass_the_check():
    env = {"v": np.array([0.5, 1.0, 2.0]), "B": Xn}
    expr = Add((Func("log", v), Power(v, Fraction(-1, 2)), Mul((Inverse(B), v)),
                Fill(LogDet(B), ("n", 1))))
    assert np.all(np.isfinite(evaluate(expr, env, check_domain=True)))


# ----------------------------------------------------------------------------- lambdify

def test_lambdify_arguments_and_results():
    f = lambdify(Sum(Power(Add((Mul((A, s)), Mul((MINUS, x)))), Fraction(2))))
    want = float(np.sum((An @ sn - xn) ** 2))
    assert isinstance(f(A=An, s=sn, x=xn), float)
    assert f(A=An, s=sn.ravel(), x=xn.ravel(), unused=object()) == pytest.approx(want)
    assert set(f.variables) == {"A", "s", "x"}
    with pytest.raises(TypeError, match="'x'"):
        f(A=An, s=sn)
    with pytest.raises(TypeError):
        f(An, sn, xn)

    g = lambdify(Mul((a, s)))
    out = g(a=2.0, s=[1.0, 2.0, 3.0])
    assert isinstance(out, np.ndarray) and out.shape == (3, 1)
    assert out.ravel().tolist() == [2.0, 4.0, 6.0]
    assert lambdify(Trace(Identity("n")), sizes={"n": 4})() == 4.0
    assert f(A=An, s=sn, x=xn) == pytest.approx(evaluate(Sum(Power(Add((Mul((A, s)), Mul((MINUS, x)))),
                                                                    Fraction(2))), {"A": An, "s": sn, "x": xn})[0, 0])
    # one compiled function works across sizes
    h = lambdify(Sum(s))
    assert h(s=np.ones(2)) == 2.0 and h(s=np.ones(5)) == 5.0
