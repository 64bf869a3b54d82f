"""Property tests: whatever the input, the only outcomes are a result or a MatgradError.

Arbitrary text, arbitrary sequences of the language's tokens and randomly generated
well-formed expressions go through `matgrad.derive` and every stage after it (verify,
text, LaTeX, SymPy, JSON, network view, --explain), and through the command line. On top:
a derived gradient is never a verification mismatch, and its printed form parses back to
the same function. Hypothesis runs derandomized, so the examples are the same every run.
"""

from __future__ import annotations

import json
import re

import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matgrad
from matgrad import MatgradError
from matgrad.api import _compile_claim
from matgrad.evaluate import _symbolic_dims, evaluate
from matgrad.ir import variables as ir_variables
from matgrad_cli.main import _json, main

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

NAMES = ["x", "y", "s", "A", "B", "W", "S", "V", "gamma", "γ", "lambda", "I", "ones", "zeros"]
TOKENS = NAMES + [
    "0", "1", "2", "0.5", ".5", "1e3", "2.5e-3", "+", "-", "*", "@", ".*", "∘", "⊙", "./", "/", "^",
    ".^", "'", "ᵀ", ".T", "(", ")", "||", "||_1", "||_2", "||_F", "_fro", "^2", ".^2", "^-1", ".^-1",
    "tr(", "trace(", "det(", "logdet(", "inv(", "diag(", "sum(", "exp(", "log(", "sqrt(", "abs(",
    "sin(", "cos(", "tanh(", "sigmoid(", "softplus(", "relu(", "softmax(", "logsumexp(", "sign(",
    "step(", "foo(", ",", " where ", "=", " ", "\n", "$", "#", "[", "]", "__import__(", "'os'",
]
WRT = st.sampled_from(["x", "y", "A", "W", "S", "gamma", "s", "z", "x,A", "γ"])
SHAPES = st.sampled_from([None, None, ["S=symmetric"], ["S=spd"], ["A=3x3"], ["W=3x4", "x=4"],
                          ["x=1"], ["A=1x1", "B=1x1"], ["W=1x3"], ["y=prob"], ["gamma=vector"]])


def stages(d: matgrad.Derivation) -> dict[str, object]:
    """Run every stage after derive; each gives a value or a MatgradError (which is returned)."""
    out: dict[str, object] = {}
    for name, run in {
        "verify": d.verify,
        "text": d.gradient_text,
        "named": lambda: d.gradient_text(name_shared=True),
        "latex": d.latex,
        "json": lambda: json.dumps(_json(d, None)),
        "network": lambda: str(d.network),
        "explain": d.explain,
        "sympy": lambda: str(d.gradient),
    }.items():
        try:
            out[name] = run()
        except MatgradError as e:
            out[name] = e
    return out


def outcome(text: str, wrt: str, shapes=None) -> matgrad.Derivation | None:
    """derive and every later stage; None when derive refuses with a MatgradError."""
    try:
        d = matgrad.derive(text, wrt, shapes)
    except MatgradError:
        return None
    stages(d)
    return d


# ----------------------------------------------------------------------------- arbitrary input

@settings(max_examples=250, **SETTINGS)
@given(st.text(max_size=30), WRT)
def test_arbitrary_text_gives_a_result_or_a_matgrad_error(text, wrt):
    outcome(text, wrt)


@settings(max_examples=250, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14), WRT, SHAPES)
def test_token_sequences_give_a_result_or_a_matgrad_error(tokens, wrt, shapes):
    outcome("".join(tokens), wrt, shapes)


@settings(max_examples=60, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=10),
       st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8), st.sampled_from(["x", "A", "gamma"]))
def test_check_gives_a_result_or_a_matgrad_error(expr, claim, wrt):
    try:
        matgrad.check("".join(expr), wrt, "".join(claim))
    except MatgradError:
        pass


# ----------------------------------------------------------------------------- well-formed expressions

FUNCTIONS = ["tr", "det", "logdet", "inv", "diag", "sum", "exp", "log", "sqrt", "abs", "sin", "cos",
             "tanh", "sigmoid", "softplus", "relu", "softmax", "logsumexp", "sign", "step"]
LEAVES = st.sampled_from(["x", "y", "A", "B", "W", "S", "gamma", "2", "0.5", "I", "ones", "3", "1e-3"])


def _extend(e: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        e.map(lambda a: f"-{a}"),
        e.map(lambda a: f"({a})'"),
        st.tuples(st.sampled_from(FUNCTIONS), e).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(e, st.sampled_from(["^2", ".^2", "^-1", ".^-1", ".^(1/2)", "^3"])).map(lambda t: f"({t[0]}){t[1]}"),
        st.tuples(e, st.sampled_from(["||", "||^2", "||_1", "||_F^2"])).map(lambda t: f"||{t[0]}{t[1]}"),
        st.tuples(e, st.sampled_from(["+", "-", "*", ".*", "./", "/"]), e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    )


EXPRESSIONS = st.tuples(
    st.sampled_from(["sum({})", "tr({})", "||{}||^2", "{}", "x'*{}*x", "logsumexp({})"]),
    st.recursive(LEAVES, _extend, max_leaves=10),
).map(lambda t: t[0].format(t[1]))


def _same_function(a, b, seed: int = 0) -> bool:
    """a and b agree at a few random points (nan where either is undefined is skipped).

    Every symbolic dim gets the same size: a free dim (the n of a lone I) may be named
    differently after printing and reading back, and equal sizes make that harmless."""
    rng = np.random.default_rng(seed)
    vs = {**ir_variables(a), **ir_variables(b)}
    sizes = {d: 3 for d in _symbolic_dims(a) | _symbolic_dims(b)}
    for _ in range(3):
        env = {}
        for name, v in vs.items():
            shape = tuple(d if isinstance(d, int) else sizes[d] for d in v.dims)
            x = rng.uniform(0.5, 1.5, shape)
            env[name] = (x + x.T) / 2 + shape[0] * np.eye(shape[0]) if v.kind != "general" else x
        va = evaluate(a, env, sizes=sizes)
        vb = evaluate(b, env, sizes=sizes)
        ok = np.isfinite(va) & np.isfinite(vb)
        if not np.allclose(va[ok], vb[ok], rtol=1e-7, atol=1e-9):
            return False
    return True


def _occurring(text: str, pick: int) -> str:
    """One of the variables that occur in `text` (x when none does)."""
    names = [n for n in ("x", "y", "A", "B", "W", "S", "gamma") if re.search(rf"\b{n}\b", text)]
    return names[pick % len(names)] if names else "x"


@settings(max_examples=200, **SETTINGS)
@given(EXPRESSIONS, st.integers(0, 6),
       st.sampled_from([None, None, ["S=symmetric"], ["S=spd"], ["A=3x3"], ["W=3x4", "x=4"], ["x=1"],
                        ["A=1x1", "B=1x1"]]))
def test_derived_gradients_verify_print_and_parse_back(text, pick, shapes):
    wrt = _occurring(text, pick)
    try:
        d = matgrad.derive(text, wrt, shapes)
    except MatgradError:
        return
    results = stages(d)
    report = results["verify"]
    assert isinstance(report, MatgradError) or report.status != "mismatch", (text, wrt, str(report))
    if wrt not in d.variables:
        return
    g = d.gradients_ir[wrt]
    for printed in (results["text"], results["named"]):
        if isinstance(printed, MatgradError):
            continue
        back = _compile_claim(printed, d.variables, d.variables[wrt])
        assert _same_function(g, back), (text, printed)


# ----------------------------------------------------------------------------- the command line

FLAGS = st.sampled_from([[], ["--explain"], ["--format", "json"], ["--format", "latex"],
                         ["--format", "sympy"], ["--no-verify"], ["--shape", "A=3x3"],
                         ["--shape", "S=symmetric"], ["--shape", "x=0"], ["--shape", "bad"]])


def _clean(r) -> None:
    assert r.exit_code in (0, 1, 2), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output


@settings(max_examples=80, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12), WRT, FLAGS)
def test_cli_derive_exits_0_1_or_2_without_a_traceback(tokens, wrt, flags):
    _clean(CliRunner().invoke(main, ["derive", "--wrt", wrt, *flags, "--", "".join(tokens)]))


@settings(max_examples=40, **SETTINGS)
@given(EXPRESSIONS, st.integers(0, 6), FLAGS)
def test_cli_derive_of_well_formed_expressions(text, pick, flags):
    wrt = _occurring(text, pick)
    r = CliRunner().invoke(main, ["derive", "--wrt", wrt, *flags, "--", text])
    _clean(r)
    assert r.exit_code != 1, r.output  # a derived gradient is never a verification mismatch


@settings(max_examples=40, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8),
       st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8))
def test_cli_check_and_network_exit_0_1_or_2(expr, claim):
    text = "".join(expr)
    _clean(CliRunner().invoke(main, ["check", "x'*A*x + " + text, "--wrt", "x", "--claim", "".join(claim)]))
    _clean(CliRunner().invoke(main, ["network", "--", text]))


# ----------------------------------------------------------------------------- regressions found by fuzzing

def test_regression_explain_with_a_transposed_weight():
    # The network's weight was W' (a Transpose) and the explanation asked it for .kind.
    text = matgrad.derive("-x'*x", "x").explain()
    assert "∇_x F = -2*x" in text


def test_regression_diag_of_a_scalar():
    # diag of a 1×1 product built Mul(()) and the printer indexed its first factor.
    d = matgrad.derive("logsumexp(((-diag(ones))')')", "y")
    assert d.explain() and str(d.network)
    assert matgrad.derive("sum(diag(x))", "x", ["x=1"]).verify().ok


def test_regression_a_quotient_without_numerator_prints_a_1():
    d = matgrad.derive("||B||^2 - (log(gamma))^-1", "gamma")
    assert d.gradient_text() == "1/log(gamma)^2/gamma"
    assert matgrad.check("||B||^2 - (log(gamma))^-1", "gamma", d.gradient_text()).ok


def test_regression_a_1x1_identity_reads_back():
    # I forced to 1×1 printed as "I", which reads back as an n×n identity: now it is the number 1.
    text = "logsumexp(((gamma ./ I))')"
    d = matgrad.derive(text, "gamma")
    assert d.gradient_text() == "softmax(gamma)"
    assert matgrad.check(text, "gamma", d.gradient_text()).ok


def test_regression_generated_code_with_a_variable_named_like_a_builtin():
    from matgrad.codegen import compile_function
    d = matgrad.derive("float'*float + 1", "float")
    value, grads = compile_function(d.expr, d.gradients_ir)(np.ones(3))
    assert value == 4.0 and grads["float"].ravel().tolist() == [2.0, 2.0, 2.0]


def test_regression_entrywise_reciprocal_of_a_matrix_prints_a_matrix_of_ones():
    # 1 ./ X with no numerator printed "ones ./ X", which reads back as a vector.
    d = matgrad.derive("sum(log(log(A)))", "A")
    assert d.gradient_text() == "ones*ones' ./ log(A) ./ A"
    back = _compile_claim(d.gradient_text(), d.variables, d.variables["A"])
    assert _same_function(d.gradients_ir["A"], back)


def test_regression_sum_of_ones_of_a_declared_size_is_a_number():
    # "(1 + sum(ones))*ones" lost the size 4 of x: the ones read back with a free size.
    d = matgrad.derive("sum(x + sum(x))", "x", ["x=4"])
    assert d.gradient_text() == "5*ones"
    assert matgrad.derive("tr(A + I)", "A", ["A=4x4"]).expr == matgrad.derive("tr(A) + 4", "A", ["A=4x4"]).expr
