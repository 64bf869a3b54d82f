"""The verifier cannot be fooled: every wrong variant of a correct gradient is rejected.

For each corpus case, the derived gradient is mutated (a term dropped, a sign flipped,
a factor transposed, two factors swapped, the whole scaled by 2, a variable replaced by
another of the same shape). A mutant that equals the original as a function (checked at
random points) is skipped; every other one must get the verdict "mismatch".
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Iterator

import numpy as np
import pytest

import matgrad
from matgrad.evaluate import evaluate
from matgrad.ir import Add, Const, Expr, IRError, Mul, Transpose, Var, postorder
from matgrad.printers import to_text
from matgrad.verify import check_claim

from corpus import CASES

MAX_MUTANTS = 10


def replace(root: Expr, target: Expr, new: Expr) -> Expr:
    done: dict[Expr, Expr] = {}
    for e in postorder(root):
        if e == target:
            done[e] = new
        else:
            kids = e.children()
            done[e] = e.with_children(tuple(done[c] for c in kids)) if kids else e
    return done[root]


def _mutations(g: Expr, variables: dict[str, Var]) -> Iterator[tuple[str, Callable[[], Expr]]]:
    yield "scale by 2", lambda: Mul((Const(Fraction(2)), g))
    yield "flip the sign", lambda: Mul((Const(Fraction(-1)), g))
    for node in postorder(g):
        if isinstance(node, Add):
            for i in range(len(node.terms)):
                rest = node.terms[:i] + node.terms[i + 1:]
                yield "drop a term", lambda n=node, r=rest: replace(g, n, r[0] if len(r) == 1 else Add(r))
                yield "flip a term's sign", lambda n=node, i=i: replace(g, n, Add(n.terms[:i] + (
                    Mul((Const(Fraction(-1)), n.terms[i])),) + n.terms[i + 1:]))
        if isinstance(node, Mul):
            fs = node.factors
            for i, f in enumerate(fs):
                if not f.is_scalar and f.shape[0] == f.shape[1]:
                    yield "transpose a factor", lambda n=node, fs=fs, i=i, f=f: replace(
                        g, n, Mul(fs[:i] + (Transpose(f),) + fs[i + 1:]))
            for i in range(len(fs) - 1):
                yield "swap two factors", lambda n=node, fs=fs, i=i: replace(
                    g, n, Mul(fs[:i] + (fs[i + 1], fs[i]) + fs[i + 2:]))
        if isinstance(node, Var):
            for other in variables.values():
                if other.name != node.name and other.shape == node.shape:
                    yield "replace a variable", lambda n=node, o=other: replace(g, n, o)


def random_env(variables: dict[str, Var], rng: np.random.Generator) -> dict[str, np.ndarray]:
    sizes: dict[str, int] = {}
    env = {}
    for name, v in variables.items():
        dims = []
        for d in v.shape:
            if isinstance(d, str):
                d = sizes.setdefault(d, 3 + len(sizes))
            dims.append(d)
        a = rng.uniform(0.5, 1.5, dims)
        if v.kind in ("symmetric", "spd"):
            a = a @ a.T + dims[0] * np.eye(dims[0])
        elif dims[0] == dims[1] and dims[0] > 1:
            a = a + dims[0] * np.eye(dims[0])
        if v.kind == "prob":
            a = a / a.sum()
        env[name] = a
    return env


def equal_as_functions(a: Expr, b: Expr, variables: dict[str, Var]) -> bool:
    rng = np.random.default_rng(11)
    for _ in range(3):
        env = random_env(variables, rng)
        va, vb = evaluate(a, env), evaluate(b, env)
        if va.shape != vb.shape or not np.allclose(va, vb, rtol=1e-8, atol=1e-10):
            return False
    return True


def score(mutations: Callable[[Expr, dict[str, Var]], Iterator[tuple[str, Callable[[], Expr]]]],
          seed: int = 0) -> tuple[int, int, int, list[str]]:
    """Check every non-equivalent mutant of every corpus gradient: (killed, survived, equivalent, survivors)."""
    killed = survived = equivalent = 0
    survivors = []
    for expr, wrt, shapes, _ in CASES:
        d = matgrad.derive(expr, wrt, shapes)
        g = d.gradients_ir[wrt]
        seen: set[Expr] = set()
        tried = 0
        for kind, make in mutations(g, d.variables):
            if tried >= MAX_MUTANTS:
                break
            try:
                m = make()
            except IRError:
                continue  # the mutant does not fit (a swap or a dropped non-square factor)
            if m in seen or m == g or m.shape != g.shape:
                continue
            seen.add(m)
            try:
                if equal_as_functions(g, m, d.variables):
                    equivalent += 1
                    continue
            except (IRError, ValueError, FloatingPointError):
                continue
            tried += 1
            report = check_claim(d.expr, wrt, m, seed=seed)
            if report.status == "mismatch":
                killed += 1
            else:
                survived += 1
                survivors.append(f"{expr} d/d{wrt}: {kind} → {to_text(m)}: {report.status}")
    return killed, survived, equivalent, survivors


def _report(label: str, killed: int, survived: int, equivalent: int, capsys) -> None:  # type: ignore[no-untyped-def]
    with capsys.disabled():
        total = killed + survived
        print(f"\n{label}: {killed}/{total} non-equivalent mutants killed "
              f"({100 * killed / max(total, 1):.1f}%), {equivalent} equivalent mutants skipped")


# Two seeds: a kill that depends on seed 0's draws is luck (seeds 1-5 were all checked once
# by hand: every mutant killed under each).
@pytest.mark.parametrize("seed", [0, 1])
def test_every_non_equivalent_mutant_is_rejected(capsys, seed):
    killed, survived, equivalent, survivors = score(_mutations, seed)
    _report(f"mutation test (seed {seed})", killed, survived, equivalent, capsys)
    assert killed + survived > 100
    assert survived == 0, survivors


# ----------------------------------------------------------------------------- more mutation operators

SWAP_FUNCTION = {"tanh": "sigmoid", "sigmoid": "tanh", "exp": "softplus", "softplus": "exp", "log": "exp",
                 "sin": "cos", "cos": "sin", "sign": "step", "step": "sign", "relu": "abs", "abs": "relu"}


def _more_mutations(g: Expr) -> Iterator[tuple[str, Callable[[], Expr]]]:
    """Finer mistakes: a wrong function, a wrong exponent or constant, a dropped factor or transpose."""
    from matgrad.ir import Func, Hadamard, Power
    for node in postorder(g):
        if isinstance(node, Func) and node.name in SWAP_FUNCTION:
            yield "swap a function", lambda n=node: replace(g, n, Func(SWAP_FUNCTION[n.name], n.arg))
        if isinstance(node, Power):
            yield "exponent + 1", lambda n=node: replace(g, n, Power(n.arg, n.exponent + 1))
            yield "negate the exponent", lambda n=node: replace(g, n, Power(n.arg, -n.exponent))
        if isinstance(node, Const) and node.value not in (0, 1, -1):
            yield "change a constant", lambda n=node: replace(g, n, Const(n.value + 1))
        if isinstance(node, Transpose):
            yield "drop a transpose", lambda n=node: replace(g, n, n.arg)
        if isinstance(node, (Mul, Hadamard)) and len(node.factors) > 1:
            cls = type(node)
            for i in range(len(node.factors)):
                rest = node.factors[:i] + node.factors[i + 1:]
                yield "drop a factor", lambda n=node, r=rest, c=cls: replace(g, n, r[0] if len(r) == 1 else c(r))


@pytest.mark.parametrize("seed", [0, 1])
def test_finer_mutants_are_rejected_too(capsys, seed):
    killed, survived, equivalent, survivors = score(lambda g, variables: _more_mutations(g), seed)
    _report(f"finer mutants (seed {seed})", killed, survived, equivalent, capsys)
    assert killed + survived > 50
    assert survived == 0, survivors
