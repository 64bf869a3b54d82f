"""Code export: the generated value_and_grad agrees with matgrad's own evaluator."""

from __future__ import annotations

import numpy as np
import pytest

import matgrad
from matgrad import ir
from matgrad.codegen import BACKENDS, compile_function, generate
from matgrad.evaluate import evaluate

# (expression, wrt, shape declarations, how to draw inputs)
CASES = [
    ("||W'*W*X - X||^2", ["W"], None, "normal"),                                   # ICA (tied weights)
    ("||W'*W*x - x||^2", ["W", "x"], None, "normal"),
    ("||A*S - X||^2 + lambda*sum(sqrt(S.^2 + eps))", ["A", "S"], None, "positive"),  # sparse coding
    ("||A*s - x||^2 + gamma*||A||^2 + lambda*sum(abs(s))", ["A", "s", "gamma"], None, "normal"),
    ("||W*X*V - U||^2", ["W", "X", "V"], None, "normal"),
    ("-sum(Y .* (W3*tanh(W2*tanh(W1*X)))) + sum(log(ones'*exp(W3*tanh(W2*tanh(W1*X)))))",
     ["W1", "W2", "W3"], ["X=dxN", "Y=kxN"], "normal"),                            # MLP, softmax CE
    ("sum(softplus(X'*w)) - y'*X'*w + lambda*w'*w", ["w", "lambda"], None, "normal"),  # logistic regr.
    ("N*logdet(S) + tr(inv(S)*Y*Y')", ["S"], ["N=scalar"], "near_identity"),        # Gaussian NLL
    ("N*logdet(S) + tr(inv(S)*Y*Y')", ["S"], ["N=scalar", "S=spd"], "spd"),
    ("-logdet(W) - sum(log(sigmoid(W*X)))", ["W"], None, "near_identity"),           # ICA, ML form
    ("-y'*log(softmax(W*x))", ["W", "x"], None, "positive"),
    ("logsumexp(W*x) - y'*W*x", ["W"], None, "normal"),
    ("tr(A'*X*B) + sum(diag(X)) + tr(X^3)", ["X", "A"], None, "normal"),
    ("x'*diag(v)*A*x + sum(diag(A*B))", ["A", "v", "x"], None, "normal"),
    ("sum(relu(W*x)) + sum(cos(W)) + ||sin(W)||_1 + det(M)", ["W", "M"], None, "near_identity"),
    ("u'*A*v * sum(exp(u*v'))", ["A", "u", "v"], None, "normal"),
    ("||sigmoid(W2*relu(W1*x)) - y||^2", ["W1", "W2"], None, "normal"),
]


def _draw(var: ir.Var, sizes: dict[str, int], how: str, rng: np.random.Generator) -> np.ndarray:
    r, c = (d if isinstance(d, int) else sizes[d] for d in var.dims)
    if how == "spd" and var.kind == "spd":
        b = rng.standard_normal((r, r))
        return b @ b.T / r + np.eye(r)
    if how in ("near_identity", "spd") and r == c and r > 1:
        return 1.5 * np.eye(r) + 0.2 * rng.standard_normal((r, r))
    if how == "positive":
        return rng.uniform(0.5, 2.0, (r, c))
    return rng.standard_normal((r, c))


def _inputs(d: matgrad.Derivation, how: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dims: list[str] = []
    for v in d.variables.values():
        dims += [x for x in v.dims if isinstance(x, str) and x not in dims]
    sizes = {name: 3 + i for i, name in enumerate(dims)}
    return {n: _draw(v, sizes, how, rng) for n, v in d.variables.items()}


@pytest.mark.parametrize("expr,wrt,shapes,how", CASES, ids=[c[0][:40] for c in CASES])
def test_numpy_value_and_gradients_match_evaluate(expr, wrt, shapes, how):
    d = matgrad.derive(expr, wrt, shapes)
    fn = compile_function(d.expr, d.gradients_ir, "numpy", order=d.variables)
    for seed in (0, 1):
        env = _inputs(d, how, seed)
        args = {n: env[n] for n in d.variables}
        value, grads = fn(*args.values())
        assert isinstance(value, float)
        np.testing.assert_allclose(value, evaluate(d.expr, env)[0, 0], rtol=1e-9, atol=1e-9)
        assert set(grads) == set(wrt)
        for n in wrt:
            want = evaluate(d.gradients_ir[n], env)
            got = np.asarray(grads[n])
            if d.variables[n].is_scalar:
                assert got.shape == np.shape(env[n])
                got = got.reshape(1, 1)
            assert got.shape == want.shape, n
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9, err_msg=fn.source)


def _sizes(d: matgrad.Derivation) -> dict[str, int]:
    dims: list[str] = []
    for v in d.variables.values():
        dims += [x for x in v.dims if isinstance(x, str) and x not in dims]
    return {name: 3 + i for i, name in enumerate(dims)}


@pytest.mark.parametrize("expr,wrt,shapes,how", CASES, ids=[c[0][:40] for c in CASES])
def test_code_ordered_for_known_sizes_matches_evaluate(expr, wrt, shapes, how):
    """With sizes given, chains are ordered and shared at generation time: same numbers."""
    d = matgrad.derive(expr, wrt, shapes)
    fn = compile_function(d.expr, d.gradients_ir, "numpy", order=d.variables, sizes=_sizes(d))
    env = _inputs(d, how, 0)
    value, grads = fn(*(env[n] for n in d.variables))
    np.testing.assert_allclose(value, evaluate(d.expr, env)[0, 0], rtol=1e-9, atol=1e-9)
    for n in wrt:
        want = evaluate(d.gradients_ir[n], env)
        np.testing.assert_allclose(np.reshape(grads[n], want.shape), want, rtol=1e-8, atol=1e-9,
                                   err_msg=fn.source)


def test_known_sizes_share_a_sub_product_between_value_and_gradient():
    # ||W*X*V - U||^2 with V thin: F is W*(X*V) and ∇W = 2*R*(X*V)' reuses X*V.
    d = matgrad.derive("||W*X*V - U||^2", "W")
    src = generate(d.expr, d.gradients_ir, "numpy", sizes=dict(n=50, m=80, k=80, p=5))
    assert "multi_dot" not in src
    assert src.count("X @ V") == 1 and "t1.T" in src, src
    # With W a few rows only, (W*X)*V is far cheaper: no sharing is forced on F.
    src = generate(d.expr, d.gradients_ir, "numpy", sizes=dict(n=2, m=80, k=80, p=80))
    assert "(W @ X) @ V" in src and "X @ V" not in src, src


def test_shared_forward_intermediates_and_chain_order():
    d = matgrad.derive("||W'*W*X - X||^2", "W")
    src = generate(d.expr, d.gradients_ir, "numpy")
    # The residual is computed once and used by both the value and the gradient.
    assert src.count("multi_dot([W.T, W, X])") == 1
    assert "t1 = " in src and "value = " in src and "grad_W = " in src
    # The MLP gradient reuses the forward activations, even where it spells them transposed.
    d = matgrad.derive(CASES[5][0], CASES[5][1], CASES[5][2])
    src = generate(d.expr, d.gradients_ir, "numpy")
    assert src.count("np.tanh(") == 2 and src.count("np.exp(") == 1


def test_outer_product_inside_a_chain_is_not_formed():
    # Every product of three or more factors is ordered by multi_dot at call time, so
    # (x*x')*W*v is never formed as the n×n outer product.
    d = matgrad.derive("x'*W*v * x'*u", "W")
    src = generate(d.expr, d.gradients_ir, "numpy")
    assert "multi_dot" in src or "@" in src
    fn = compile_function(d.expr, d.gradients_ir, "numpy", order=d.variables)
    env = _inputs(d, "normal")
    value, grads = fn(*(env[n] for n in d.variables))
    np.testing.assert_allclose(grads["W"], evaluate(d.gradients_ir["W"], env), rtol=1e-9)


def test_trace_of_product_is_not_formed():
    d = matgrad.derive("tr(A*B) + x'*A*B*x", ["A"])
    src = generate(d.expr, d.gradients_ir, "numpy")
    assert "np.trace" not in src and "np.sum(A * B.T)" in src


def test_vectors_as_1d_arrays_and_scalars_as_floats():
    d = matgrad.derive("||A*s - x||^2 + gamma*s'*s", ["s", "gamma"])
    fn = compile_function(d.expr, d.gradients_ir, "numpy", order=d.variables)
    rng = np.random.default_rng(3)
    A, s, x = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    args = {"A": A, "s": s, "x": x, "gamma": 0.5}
    value, grads = fn(*(args[n] for n in d.variables))
    np.testing.assert_allclose(value, np.sum((A @ s - x) ** 2) + 0.5 * s @ s)
    np.testing.assert_allclose(grads["s"].ravel(), 2 * A.T @ (A @ s - x) + s)
    assert np.shape(grads["gamma"]) == ()


def test_keyword_names_and_unknown_backend():
    d = matgrad.derive("lambda*||x||^2", ["x"])
    src = generate(d.expr, d.gradients_ir, "numpy")
    assert "lambda_" in src
    compile(src, "<test>", "exec")
    with pytest.raises(ValueError):
        generate(d.expr, d.gradients_ir, "tensorflow")


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("expr,wrt,shapes,how", CASES, ids=[c[0][:40] for c in CASES])
def test_other_backends_compile(backend, expr, wrt, shapes, how):
    d = matgrad.derive(expr, wrt, shapes)
    compile(generate(d.expr, d.gradients_ir, backend), f"<{backend}>", "exec")


@pytest.mark.parametrize("expr,wrt,shapes,how", CASES, ids=[c[0][:40] for c in CASES])
def test_jax_backend_runs(expr, wrt, shapes, how):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    d = matgrad.derive(expr, wrt, shapes)
    fn = compile_function(d.expr, d.gradients_ir, "jax", order=d.variables)
    env = _inputs(d, how)
    value, grads = jax.jit(fn)(*(env[n] for n in d.variables))
    np.testing.assert_allclose(float(value), evaluate(d.expr, env)[0, 0], rtol=1e-8, atol=1e-9)
    for n in wrt:
        want = evaluate(d.gradients_ir[n], env)
        np.testing.assert_allclose(np.asarray(grads[n]).reshape(want.shape), want, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("expr,wrt,shapes,how", CASES, ids=[c[0][:40] for c in CASES])
def test_torch_backend_runs(expr, wrt, shapes, how):
    torch = pytest.importorskip("torch")
    d = matgrad.derive(expr, wrt, shapes)
    fn = compile_function(d.expr, d.gradients_ir, "torch", order=d.variables)
    env = _inputs(d, how)
    value, grads = fn(*(torch.as_tensor(env[n], dtype=torch.float64) for n in d.variables))
    np.testing.assert_allclose(float(value), evaluate(d.expr, env)[0, 0], rtol=1e-8, atol=1e-9)
    for n in wrt:
        want = evaluate(d.gradients_ir[n], env)
        np.testing.assert_allclose(grads[n].numpy().reshape(want.shape), want, rtol=1e-7, atol=1e-8)


def test_backends_listed():
    assert BACKENDS == ("numpy", "jax", "torch")


def test_the_verifier_and_lambdify_run_the_generated_code(monkeypatch):
    """What is verified is the code a user exports: break the printer and verification fails."""
    from matgrad import codegen
    d = matgrad.derive("sum(tanh(W*x))", "W")
    assert d.verify().status == "verified"
    fn = matgrad.lambdify(d)
    assert "np.tanh(" in fn.source and "def f(W, x)" in fn.source
    monkeypatch.setitem(codegen._BACKENDS["numpy"].funcs, "tanh", "np.sin({})")
    d = matgrad.derive("sum(tanh(W*x))", "W")
    assert d.verify().status == "mismatch"
    assert "np.sin(" in matgrad.lambdify(d).source


def test_lambdify_of_an_expression_with_a_dimension_no_variable_carries():
    from matgrad.codegen import lambdify
    from matgrad.ir import Identity, Trace
    assert lambdify(Trace(Identity("n")), sizes={"n": 4})() == 4.0
    with pytest.raises(TypeError, match="'n'"):
        lambdify(Trace(Identity("n")))()
