"""The adjoint (delta) rules: one entry per operator, nothing else.

Each rule takes the node y = op(x₀, x₁, …), the adjoint Ḡ = ∂J/∂y (same shape as y)
and the index i of an operand, and returns that operand's contribution x̄ᵢ = ∂J/∂xᵢ.
This is the seeds' δ⁽ˡ⁾ = (W⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾) ∘ f′(z⁽ˡ⁾) split per operator: a weight
contributes Wᵀ Ḡ to its input and Ḡ aᵀ to itself; an activation contributes
Ḡ ∘ f′(z). Rules build their results with the smart constructors so that
results are already canonical. Adding an operator = one row here.

Every IR node with operands has its row (tests/test_cookbook.py checks this): sums,
products (matrix, scalar, and powers of scalar subexpressions such as tr(X'*X)^2 or
(x'*x)^(-1/2) through Power), transposes, Hadamard products and entrywise division
(Power with exponent −1; both sides may depend on the variable), entrywise functions,
broadcasts (I and ones need none: they are leaves), tr, sum, det, logdet, inv / X^-1,
integer matrix powers X^k, diag in both directions, softmax and logsumexp. Norms are
sugar: ||E|| = sqrt(sum(E.^2)), ||E||_1 = sum(abs(E)).

Non-smooth points: relu′(0) = step(0) = 0 and abs′(0) = sign(0) = 0, i.e. the gradient
returned there is the subgradient 0 (the same convention as evaluate.py); sign and step
have derivative 0 almost everywhere, which is what is returned.
"""

from __future__ import annotations

from typing import Callable

from . import simplify as S
from .ir import (
    Add, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity, Inverse, LogDet, LogSumExp,
    MatPow, Mul, Power, Softmax, Sum, Trace, Transpose,
)

Rule = Callable[[Expr, Expr, int], Expr]


def mul_adjoint(y: Mul, G: Expr, i: int) -> Expr:
    """Mul: for a chain factor Fⱼ of s·F₁…Fₖ, F̄ⱼ = s·(F₁…Fⱼ₋₁)ᵀ Ḡ (Fⱼ₊₁…Fₖ)ᵀ; for a scalar factor s, s̄ = ⟨Ḡ, y/s⟩."""
    factor = y.factors[i]
    if factor.is_scalar:
        others = [f for j, f in enumerate(y.factors) if j != i]
        rest = S.mul(*others) if others else S.ONE
        return S.inner(G, rest)
    scalars = [f for f in y.factors if f.is_scalar]
    chain_index = [j for j, f in enumerate(y.factors) if not f.is_scalar].index(i)
    chain = [f for f in y.factors if not f.is_scalar]
    left, right = chain[:chain_index], chain[chain_index + 1:]
    parts: list[Expr] = list(scalars)
    if left:
        parts.append(S.transpose(S.mul(*left)))
    parts.append(G)
    if right:
        parts.append(S.transpose(S.mul(*right)))
    return S.mul(*parts)


def hadamard_adjoint(y: Hadamard, G: Expr, i: int) -> Expr:
    """Hadamard: x̄ᵢ = Ḡ ∘ (∏_{j≠i} xⱼ)."""
    return S.hadamard(G, *(f for j, f in enumerate(y.factors) if j != i))


def power_adjoint(y: Power, G: Expr, i: int) -> Expr:
    """Power: x.^p gives x̄ = Ḡ ∘ p·x.^(p−1)."""
    p = y.exponent
    return S.hadamard(G, S.mul(S.const(p), S.power(y.arg, p - 1)))


def _sigmoid_prime(x: Expr) -> Expr:
    s = S.func("sigmoid", x)
    return S.hadamard(s, S.sub(S.ones(x.shape), s))


# f′ of each elementwise function, as an expression in its argument.
DERIVATIVES: dict[str, Callable[[Expr], Expr]] = {
    "exp": lambda x: S.func("exp", x),
    "log": lambda x: S.power(x, -1),
    "sin": lambda x: S.func("cos", x),
    "cos": lambda x: S.neg(S.func("sin", x)),
    "tanh": lambda x: S.sub(S.ones(x.shape), S.power(S.func("tanh", x), 2)),
    "sigmoid": _sigmoid_prime,
    "softplus": lambda x: S.func("sigmoid", x),
    "relu": lambda x: S.func("step", x),    # subgradient 0 at x = 0
    "abs": lambda x: S.func("sign", x),     # subgradient 0 at x = 0
    "sign": lambda x: S.zeros(x.shape),     # almost everywhere
    "step": lambda x: S.zeros(x.shape),
}


def func_adjoint(y: Func, G: Expr, i: int) -> Expr:
    """Elementwise f: x̄ = Ḡ ∘ f′(x)."""
    return S.hadamard(G, DERIVATIVES[y.name](y.arg))


def inverse_adjoint(y: Inverse, G: Expr, i: int) -> Expr:
    """Inverse: X̄ = −X⁻ᵀ Ḡ X⁻ᵀ."""
    inv_t = S.transpose(S.inverse(y.arg))
    return S.neg(S.mul(inv_t, G, inv_t))


MAX_MATRIX_POWER = 64


def matpow_adjoint(y: MatPow, G: Expr, i: int) -> Expr:
    """MatPow: X^k gives X̄ = Σ_{r=0}^{k−1} (Xᵀ)^r Ḡ (Xᵀ)^{k−1−r}.

    The sum has k terms that do not collect (matrices do not commute), so k is capped.
    """
    if y.k > MAX_MATRIX_POWER:
        from .errors import LimitError
        raise LimitError(f"the gradient of a matrix power X^{y.k} has {y.k} terms; "
                         f"powers up to {MAX_MATRIX_POWER} are supported")
    xt = S.transpose(y.arg)
    return S.add(*(S.mul(S.matpow(xt, r), G, S.matpow(xt, y.k - 1 - r)) for r in range(y.k)))


def softmax_adjoint(y: Softmax, G: Expr, i: int) -> Expr:
    """Softmax: with s = softmax(v), v̄ = s ∘ Ḡ − s (sᵀ Ḡ).

    sᵀḠ is written sum(s ∘ Ḡ) so that a Ḡ = −y ./ s from log(softmax(v)) cancels to −sum(y).
    """
    s = S.softmax(y.arg)
    s_dot_g = S.sum_(S.hadamard(s, G))
    return S.sub(S.hadamard(s, G), S.mul(s_dot_g, s))


RULES: dict[type, Rule] = {
    Add:       lambda y, G, i: G,                                         # x̄ᵢ = Ḡ
    Mul:       mul_adjoint,                                               # weights: Wᵀ Ḡ and Ḡ aᵀ
    Transpose: lambda y, G, i: S.transpose(G),                            # x̄ = Ḡᵀ
    Hadamard:  hadamard_adjoint,                                          # x̄ᵢ = Ḡ ∘ others
    Power:     power_adjoint,                                             # x̄ = Ḡ ∘ p x^(p−1)
    Func:      func_adjoint,                                              # x̄ = Ḡ ∘ f′(x)
    Fill:      lambda y, G, i: S.sum_(G),                                 # c̄ = sum(Ḡ)
    Trace:     lambda y, G, i: S.mul(G, Identity(y.arg.shape[0])),     # X̄ = Ḡ I
    Sum:       lambda y, G, i: S.fill(G, y.arg.shape),                    # X̄ = Ḡ 𝟏𝟏ᵀ
    Det:       lambda y, G, i: S.mul(G, y, S.transpose(S.inverse(y.arg))),  # X̄ = Ḡ det(X) X⁻ᵀ
    LogDet:    lambda y, G, i: S.mul(G, S.transpose(S.inverse(y.arg))),   # X̄ = Ḡ X⁻ᵀ
    Inverse:   inverse_adjoint,                                           # X̄ = −X⁻ᵀ Ḡ X⁻ᵀ
    MatPow:    matpow_adjoint,                                            # Σ (Xᵀ)^r Ḡ (Xᵀ)^(k−1−r)
    DiagMat:   lambda y, G, i: S.diag_vec(G),                             # v̄ = diag(Ḡ)
    DiagVec:   lambda y, G, i: S.diag_mat(G),                             # X̄ = Diag(Ḡ)
    Softmax:   softmax_adjoint,                                           # v̄ = s∘Ḡ − s sᵀḠ
    LogSumExp: lambda y, G, i: S.mul(G, S.softmax(y.arg)),                # v̄ = Ḡ softmax(v)
}


def adjoint(y: Expr, G: Expr, i: int) -> Expr:
    """The contribution of operand i of y to the adjoint, given y's adjoint G."""
    rule = RULES.get(type(y))
    if rule is None:
        raise KeyError(f"no adjoint rule for {type(y).__name__}")
    return rule(y, G, i)


__all__ = ["RULES", "DERIVATIVES", "adjoint"]
