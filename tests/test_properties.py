"""Property tests: random well-typed expressions, derived and checked by numbers.

Expressions are random strings of matgrad's language built by type (scalar, n-vector,
m-vector, n×n matrix) up to depth 5 over the operator set: + - * ' .* ./ ^ .^ tr det logdet
inv sum diag (both ways) exp log sqrt sin cos tanh sigmoid softplus relu abs softmax
logsumexp norms, I and ones, with the variables X, A (n×n), W (n×m), x, a (n), v (m) and
gamma (scalar). For each one matgrad derives the gradient w.r.t. one or more of its
variables and then:

- the gradient verifies against central finite differences: "mismatch" is a failure,
  "could not verify: domain" and "inconclusive" are tolerated but counted (they should be
  rare) and printed with `pytest -s`;
- the simplified gradient equals the unsimplified one from the reverse pass at random
  points (the simplifier's rewrites are exact);
- the printed gradient parses back (with its `where` names) to the same values;
- simplifying the result again changes nothing (the final pass is idempotent).

Hypothesis runs derandomized, so the examples are the same on every run.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matgrad
from matgrad import simplify as S
from matgrad.api import _compile_claim
from matgrad.evaluate import DomainViolation, evaluate

SHAPES = {"X": ("n", "n"), "A": ("n", "n"), "W": ("n", "m"), "x": ("n", 1), "a": ("n", 1),
          "v": ("m", 1)}
SIZES = {"n": 3, "m": 4}

# Templates by result type; "S" a scalar, "N" an n-vector, "M" an m-vector, "Q" an n×n matrix.
# (ones and I appear only next to something that fixes their size: sum(ones) alone has none.)
LEAVES = {
    "S": ["gamma", "2", "0.5"],
    "N": ["x", "a"],
    "M": ["v"],
    "Q": ["X", "A"],
}
RULES = {
    "S": ["({S} + {S})", "({S} - {S})", "{S}*{S}", "{S}/(1 + {S}^2)", "({S})^2", "tr({Q})", "det({Q} + 2*I)", "det(X)",
          "logdet({Q}*{Q}' + I)", "sum({N})", "{N}'*{N}", "{N}'*{Q}*{N}", "||{N}||^2", "||{N}||",
          "||{Q}||_F", "||{N}||_1", "logsumexp({N})", "sum({Q})", "sin({S})", "tanh({S})",
          "tr({Q})^2", "{M}'*{M}", "exp(-{S}^2)", "sqrt({S}^2 + 1)", "log(1 + {S}^2)",
          "{N}'*inv({Q}*{Q}' + I)*{N}", "{N}'*{Q}^-1*{N}"],
    "N": ["({N} + {N})", "({N} - {N})", "{Q}*{N}", "{S}*{N}", "{N} .* {N}", "{N} ./ (1 + {N}.^2)",
          "exp(-{N}.^2)", "tanh({N})", "sigmoid({N})", "softplus({N})", "relu({N})", "abs({N})",
          "sin({N})", "cos({N})", "softmax({N})", "{N} + ones", "{N} - 2*ones", "diag({Q})", "W*{M}", "{N}.^2", "sqrt(1 + {N}.^2)",
          "log(1 + {N}.^2)", "{Q}'*{N}", "inv({Q}*{Q}' + I)*{N}"],
    "M": ["({M} + {M})", "W'*{N}", "tanh({M})", "{S}*{M}", "{M} .* {M}"],
    "Q": ["({Q} + {Q})", "({Q} - {Q})", "{Q}*{Q}", "{Q}'", "{Q} .* {Q}", "{S}*{Q}", "{N}*{N}'",
          "diag({N})", "{Q}^2", "{Q}^3", "inv({Q}*{Q}' + I)", "tanh({Q})", "exp(-{Q}.^2)",
          "W*W'", "W*diag({M})*W'", "{Q} + I", "I - {Q}", "{Q} ./ (1 + {Q}.^2)", "{Q}^-1"],
}


@st.composite
def expressions(draw, kind="S", depth=5):
    if depth <= 1 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES[kind]))
    template = draw(st.sampled_from(RULES[kind]))
    out = []
    i = 0
    while i < len(template):
        if template[i] == "{" and template[i + 2] == "}":
            sub = draw(expressions(template[i + 1], depth - 1))
            out.append(sub if sub.isidentifier() or sub.replace(".", "").isdigit() else f"({sub})")
            i += 3
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


VARIABLES = ["X", "A", "W", "x", "a", "v", "gamma"]


@st.composite
def cases(draw):
    expr = draw(expressions("S", 5))
    present = [n for n in VARIABLES if _mentions(expr, n)]
    if not present:
        expr = f"{expr} + x'*X*x"
        present = ["X", "x"]
    wrt = draw(st.lists(st.sampled_from(present), min_size=1, max_size=min(3, len(present)), unique=True))
    return expr, wrt


def _mentions(expr: str, name: str) -> bool:
    import re
    return re.search(rf"(?<![A-Za-z_]){name}(?![A-Za-z_0-9])", expr) is not None


def _env(variables, rng):
    env = {}
    for name, v in variables.items():
        r, c = (SIZES.get(d, d) for d in v.shape)
        env[name] = rng.standard_normal((r, c)) * 0.7 + (np.eye(r) if r == c and r > 1 else 0)
    return env


STATUS: Counter = Counter()
EXAMPLES: list[str] = []


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def _check(case):
    expr, wrt = case
    d = matgrad.derive(expr, wrt, SHAPES)  # a MatgradError here would be a bug: inputs are well typed
    report = d.verify(seed=1)
    STATUS[report.status] += 1
    if report.status != "verified":
        EXAMPLES.append(f"{report.status}: {expr} d/d{','.join(wrt)}")
    assert report.status != "mismatch", f"{expr} d/d{wrt}: {d}\n{report}"
    for name, g in d.gradients_ir.items():  # the final pass is idempotent
        assert S.simplify(g) == g, f"{expr} d/d{name}: {d.gradient_text(name)}"

    # The simplifier's rewrites are exact: simplified = unsimplified at random points.
    rng = np.random.default_rng(5)
    for _ in range(5):
        env = _env(d.variables, rng)
        try:
            evaluate(d.expr, env, sizes=SIZES, check_domain=True)
            raw = {n: evaluate(d.adjoints.gradients[n], env, sizes=SIZES, check_domain=True)
                   for n in wrt if n in d.variables}
        except DomainViolation:
            continue
        for name, want in raw.items():
            got = evaluate(d.gradients_ir[name], env, sizes=SIZES)
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=f"{expr} d/d{name}")
            # the printed text (with its where names) parses back to the same values
            text = d.gradient_text(name)
            back = _compile_claim(text, d.variables, d.variables[name])
            np.testing.assert_allclose(evaluate(back, env, sizes=SIZES), want, rtol=1e-7, atol=1e-9,
                                       err_msg=f"{expr} d/d{name} printed as {text}")
        break


def test_random_expressions_derive_and_verify():
    STATUS.clear()
    EXAMPLES.clear()
    _check()
    total = sum(STATUS.values())
    print(f"\n{total} random derivations: " + ", ".join(f"{k} {v}" for k, v in sorted(STATUS.items())))
    for line in EXAMPLES:
        print("  " + line)
    assert STATUS["mismatch"] == 0
    assert STATUS["verified"] >= 0.9 * total, STATUS
