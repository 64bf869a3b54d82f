"""First-order derivatives from the Matrix Cookbook, one identity per line.

Each entry is (expression, wrt, shapes, book, note):
- expression, wrt, shapes: as for `matgrad.derive` (shapes None = the naming convention:
  Uppercase matrix, lowercase vector, Greek scalar);
- book: the book's closed form, transcribed into matgrad's input language (the numerator/
  gradient layout ∂f/∂X with the shape of X, which is the book's convention too);
- note: where it comes from — "MC (n)" is equation n of Petersen & Pedersen, *The Matrix
  Cookbook*, version of November 15, 2012 (other editions number differently; the section is
  given too) — and anything the book gets wrong or leaves ambiguous.

tests/test_cookbook.py checks every entry three ways (matgrad's gradient against finite
differences, the book's form through `matgrad.check`, and the two against each other at
random points) and compares the printed size of matgrad's result with the book's.

Entries marked "beyond the book" are not in the Cookbook; they exercise what the issue asks
for (a variable repeated inside inverses/determinants/elementwise functions, scalars,
Hadamard forms) with a closed form worked out by hand.

Where a size SLACK is given (a 6th field), matgrad's printed form may be that many operators
longer than the book's; the note says why.
"""

from __future__ import annotations

import re

SQ = ("n", "n")  # a square matrix whose size is shared with the other SQ entries

ENTRIES = [
    # ------------------------------------------------------------------ 2.1 determinants
    ("det(X)", "X", None, "det(X)*inv(X)'", "MC (49), 2.1.2"),
    ("det(A*X*B)", "X", {"A": SQ, "X": SQ, "B": SQ}, "det(A*X*B)*inv(X)'",
     "MC (51); holds for square A, X, B only. For rectangular A, B the gradient is "
     "det(A*X*B)*A'*inv(A*X*B)'*B' (what matgrad gives then)"),
    ("det(A*X*B)", "X", {"A": (3, 5), "X": (5, 4), "B": (4, 3)}, "det(A*X*B)*A'*inv(A*X*B)'*B'",
     "MC (51) generalised to rectangular A, B: the book's det(AXB)X^-T needs X square. Sizes "
     "are declared so that A*X*B can be invertible (3×3 from rank-3 factors)"),
    ("det(X'*A*X)", "X", {"A": SQ, "X": SQ}, "2*det(X'*A*X)*inv(X)'", "MC (52), X square"),
    ("det(X'*A*X)", "X", {"X": (5, 3), "A": ("symmetric", (5, 5))}, "2*det(X'*A*X)*A*X*inv(X'*A*X)",
     "MC (53), X not square, A symmetric. X is declared tall: for wide X, X'*A*X is singular "
     "and f = 0 while inv(X'*A*X) does not exist"),
    ("det(X'*A*X)", "X", {"X": (5, 3)}, "det(X'*A*X)*(A*X*inv(X'*A*X) + A'*X*inv(X'*A'*X))",
     "MC (54), X not square, A not symmetric (the book's (X'A'X)^-1 is inv(X'*A*X)')"),
    ("logdet(X'*X)", "X", {"X": (5, 3)}, "2*X*inv(X'*X)",
     "MC (55): 2(X^+)' with the pseudo-inverse X^+ = inv(X'X)X' of a full-column-rank X"),
    ("log(abs(det(X)))", "X", None, "inv(X)'", "MC (57), ∂ln|det X|/∂X = X^-T"),
    ("logdet(X)", "X", None, "inv(X)'", "MC (57) where det X > 0"),
    ("det(X^2)", "X", None, "2*det(X^2)*inv(X)'", "MC (58), k = 2"),
    ("det(X^3)", "X", None, "3*det(X^3)*inv(X)'", "MC (58), k = 3"),
    ("det(A + gamma*B)", "gamma", None, "det(A + gamma*B)*tr(inv(A + gamma*B)*B)",
     "MC (46), 2.1.1: ∂det(Y)/∂x = det(Y) Tr[Y^-1 ∂Y/∂x], x a scalar"),
    ("logdet(A + lambda*I)", "lambda", None, "tr(inv(A + lambda*I))",
     "MC (43)/(10) with a scalar: ∂ln det(Y)/∂x = Tr[Y^-1 ∂Y/∂x]"),
    # ------------------------------------------------------------------ 2.2 inverses
    ("a'*inv(X)*b", "X", None, "-inv(X)'*a*b'*inv(X)'", "MC (61)"),
    ("a'*X^-1*b", "X", None, "-inv(X)'*a*b'*inv(X)'", "MC (61), written with X^-1"),
    ("det(inv(X))", "X", None, "-det(inv(X))*inv(X)'", "MC (62)"),
    ("tr(A*inv(X)*B)", "X", None, "-(inv(X)*B*A*inv(X))'", "MC (63)"),
    ("tr(inv(X + A))", "X", None, "-(inv(X + A)*inv(X + A))'", "MC (64)"),
    ("tr(inv(A + gamma*I))", "gamma", None, "-tr(inv(A + gamma*I)*inv(A + gamma*I))",
     "MC (59), ∂Y^-1/∂x = -Y^-1 (∂Y/∂x) Y^-1, traced; x a scalar"),
    # ------------------------------------------------------------------ 2.3 eigenvalues
    ("tr(X)", "X", None, "I", "MC (65): ∂Σeig(X)/∂X = ∂Tr(X)/∂X = I"),
    ("det(X)", "X", {"X": ("symmetric", SQ)}, "det(X)*inv(X)",
     "MC (66) ∂Πeig(X)/∂X = det(X)X^-T; for symmetric X the (symmetric) gradient is det(X)*inv(X)"),
    # ------------------------------------------------------------------ 2.4.1 first order
    ("x'*a", "x", None, "a", "MC (69)"),
    ("a'*x", "x", None, "a", "MC (69)"),
    ("a'*X*b", "X", None, "a*b'", "MC (70)"),
    ("a'*X'*b", "X", None, "b*a'", "MC (71)"),
    ("a'*X*a", "X", None, "a*a'", "MC (72)"),
    ("a'*X'*a", "X", None, "a*a'", "MC (72)"),
    # ------------------------------------------------------------------ 2.4.2 second order
    ("sum(X)^2", "X", None, "2*sum(X)*ones*ones'", "MC (76): ∂/∂X_ij Σ X_kl X_mn = 2 Σ X_kl"),
    ("b'*X'*X*c", "X", None, "X*(b*c' + c*b')", "MC (77)"),
    ("a'*X'*X*a", "X", None, "2*X*a*a'", "MC (77) with b = c = a"),
    ("(B*x + b)'*C*(D*x + d)", "x", None, "B'*C*(D*x + d) + D'*C'*(B*x + b)", "MC (78)"),
    ("x'*B*x", "x", None, "(B + B')*x", "MC (81)"),
    ("b'*X'*D*X*c", "X", None, "D'*X*b*c' + D*X*c*b'", "MC (82)"),
    ("(X*b + c)'*D*(X*b + c)", "X", None, "(D + D')*(X*b + c)*b'", "MC (83)"),
    ("(x - A*s)'*W*(x - A*s)", "s", {"W": "symmetric"}, "-2*A'*W*(x - A*s)", "MC (84), W symmetric"),
    ("(x - s)'*W*(x - s)", "x", {"W": "symmetric"}, "2*W*(x - s)", "MC (85), W symmetric"),
    ("(x - s)'*W*(x - s)", "s", {"W": "symmetric"}, "-2*W*(x - s)", "MC (86), W symmetric"),
    ("(x - A*s)'*W*(x - A*s)", "x", {"W": "symmetric"}, "2*W*(x - A*s)", "MC (87), W symmetric"),
    ("(x - A*s)'*W*(x - A*s)", "A", {"W": "symmetric"}, "-2*W*(x - A*s)*s'", "MC (88), W symmetric"),
    ("(x - A*s)'*W*(x - A*s)", "s", None, "-A'*(W + W')*(x - A*s)",
     "MC (84) without the symmetry of W: the book's -2A'W(x - As) is then wrong"),
    # ------------------------------------------------------------------ 2.4.3 higher order and non-linear
    ("a'*X^2*b", "X", None, "a*b'*X' + X'*a*b'", "MC (90), n = 2: Σ_r (X^r)'ab'(X^(n-1-r))'"),
    ("a'*X^3*b", "X", None, "a*b'*(X^2)' + X'*a*b'*X' + (X^2)'*a*b'", "MC (90), n = 3"),
    ("a'*X'^2*X^2*b", "X", None, "X^2*(a*b' + b*a')*X' + X'*X^2*(a*b' + b*a')",
     "MC (91), n = 2, written as Σ_r (X^r)'X^n(ab' + ba')(X^(n-1-r))'"),
    ("(A*x)'*(A*x)/((B*x)'*(B*x))", "x", None,
     "2*A'*A*x/(x'*B'*B*x) - 2*x'*A'*A*x*B'*B*x/(x'*B'*B*x)^2", "MC (93)"),
    # ------------------------------------------------------------------ 2.4.4 gradient
    ("x'*A*x + b'*x", "x", None, "(A + A')*x + b", "MC (94)"),
    # ------------------------------------------------------------------ 2.5.1 traces, first order
    ("tr(X)", "X", {"X": SQ}, "I", "MC (99)"),
    ("tr(X*A)", "X", None, "A'", "MC (100)"),
    ("tr(A*X*B)", "X", None, "A'*B'", "MC (101)"),
    ("tr(A*X'*B)", "X", None, "B*A", "MC (102)"),
    ("tr(X'*A)", "X", None, "A", "MC (103)"),
    ("tr(A*X')", "X", None, "A", "MC (104)"),
    # ------------------------------------------------------------------ 2.5.2 traces, second order
    ("tr(X^2)", "X", None, "2*X'", "MC (106)"),
    ("tr(X*X)", "X", None, "2*X'", "MC (106), X*X written out"),
    ("tr(X^2*B)", "X", None, "(X*B + B*X)'", "MC (107)"),
    ("tr(X'*B*X)", "X", None, "B*X + B'*X", "MC (108)"),
    ("tr(B*X*X')", "X", None, "B*X + B'*X", "MC (109)"),
    ("tr(X*X'*B)", "X", None, "B*X + B'*X", "MC (110)"),
    ("tr(X*B*X')", "X", None, "X*B' + X*B", "MC (111)"),
    ("tr(B*X'*X)", "X", None, "X*B' + X*B", "MC (112)"),
    ("tr(X'*X*B)", "X", None, "X*B' + X*B", "MC (113)"),
    ("tr(A*X*B*X)", "X", None, "A'*X'*B' + B'*X'*A'", "MC (114)"),
    ("tr(X'*X)", "X", None, "2*X", "MC (115)"),
    ("tr(X*X')", "X", None, "2*X", "MC (115)"),
    ("tr(B'*X'*C*X*B)", "X", None, "C'*X*B*B' + C*X*B*B'", "MC (116)"),
    ("tr(X'*B*X*C)", "X", None, "B*X*C + B'*X*C'", "MC (117)"),
    ("tr(A*X*B*X'*C)", "X", None, "A'*C'*X*B' + C*A*X*B", "MC (118)"),
    ("tr((A*X*B + C)*(A*X*B + C)')", "X", None, "2*A'*(A*X*B + C)*B'", "MC (119)"),
    ("tr(X)*tr(X)", "X", None, "2*tr(X)*I", "MC (120): Tr(X⊗X) = Tr(X)Tr(X)"),
    # ------------------------------------------------------------------ 2.5.3 traces, higher order
    ("tr(X^3)", "X", None, "3*(X^2)'", "MC (121), k = 3"),
    ("tr(X^4)", "X", None, "4*(X^3)'", "MC (121), k = 4"),
    ("tr(A*X^2)", "X", None, "(A*X + X*A)'", "MC (122), k = 2: Σ_r (X^r A X^(k-r-1))'"),
    ("tr(A*X^3)", "X", None, "(A*X^2 + X*A*X + X^2*A)'", "MC (122), k = 3"),
    ("tr(B'*X'*C*X*X'*C*X*B)", "X", None,
     "C*X*X'*C*X*B*B' + C'*X*B*B'*X'*C'*X + C*X*B*B'*X'*C*X + C'*X*X'*C'*X*B*B'", "MC (123)"),
    # ------------------------------------------------------------------ 2.5.4 traces, other
    ("tr(A*inv(X)*B)", "X", None, "-inv(X)'*A'*B'*inv(X)'", "MC (124), the same as (63) in another form"),
    ("tr(inv(X'*C*X)*A)", "X", {"C": "symmetric"},
     "-(C*X*inv(X'*C*X))*(A + A')*inv(X'*C*X)", "MC (125), C symmetric"),
    ("tr(inv(X'*C*X)*(X'*B*X))", "X", {"B": "symmetric", "C": "symmetric"},
     "-2*C*X*inv(X'*C*X)*X'*B*X*inv(X'*C*X) + 2*B*X*inv(X'*C*X)", "MC (126), B and C symmetric"),
    ("tr(inv(A + X'*C*X)*(X'*B*X))", "X", {"A": "symmetric", "B": "symmetric", "C": "symmetric"},
     "-2*C*X*inv(A + X'*C*X)*X'*B*X*inv(A + X'*C*X) + 2*B*X*inv(A + X'*C*X)",
     "MC (127). The book assumes only B and C symmetric, but the formula also needs A "
     "symmetric (test_cookbook shows it fails for a general A); declared so here"),
    # ------------------------------------------------------------------ 2.6 / 2.7 norms
    ("||x - a||", "x", None, "(x - a)/||x - a||", "MC (129)"),
    ("||x||^2", "x", None, "2*x", "MC (131)"),
    ("x'*x", "x", None, "2*x", "MC (131), ||x||² = x'x"),
    ("||X||_F^2", "X", None, "2*X", "MC (132)"),
    ("||X||_F", "X", None, "X/||X||_F", "from MC (132) by the chain rule"),
    ("||x||", "x", None, "x/||x||", "from MC (131) by the chain rule, = MC (129) with a = 0"),
    ("||x||_1", "x", None, "sign(x)", "beyond the book; a subgradient, sign(0) = 0"),
    ("||A*x - b||^2", "x", None, "2*A'*(A*x - b)", "least squares, MC (84) with W = I (sign flipped)"),
    ("||X*a - b||^2", "X", None, "2*(X*a - b)*a'", "MC (83) with D = I, c = -b"),
    # ------------------------------------------------------------------ 2.8 structured: symmetric
    ("tr(A*S)", "S", {"S": "symmetric"}, "(A + A')/2",
     "MC (141) gives A + A' - (A∘I), which is not the gradient on symmetric matrices "
     "(Srinivasan & Panda, arXiv:1911.06491; Indian J. Pure Appl. Math. 2023): the gradient is sym(A') = (A + A')/2; docs/symmetric.md"),
    ("det(S)", "S", {"S": "spd"}, "det(S)*inv(S)",
     "MC (142) gives det(X)(2X^-1 - (X^-1∘I)): not a gradient, see (141); the gradient is det(S)*inv(S)"),
    ("logdet(S)", "S", {"S": "spd"}, "inv(S)",
     "MC (143) gives 2X^-1 - (X^-1∘I): not a gradient, see (141); the gradient is inv(S)"),
    ("x'*S*x", "S", {"S": "symmetric"}, "x*x'", "MC (72) on symmetric S: x*x' is already symmetric"),
    ("a'*S*b", "S", {"S": "symmetric"}, "(a*b' + b*a')/2", "MC (70) on symmetric S: sym(ab')"),
    ("tr(S*S)", "S", {"S": "symmetric"}, "2*S", "MC (106) on symmetric S"),
    # ------------------------------------------------------------------ 8.1 Gaussian
    ("(x - mu)'*inv(S)*(x - mu)", "mu", {"S": "spd", "mu": "vector"}, "-2*inv(S)*(x - mu)",
     "MC (86) with W = Σ^-1 (the Gaussian exponent)"),
    ("-0.5*logdet(S) - 0.5*(x - mu)'*inv(S)*(x - mu)", "S", {"S": "spd", "mu": "vector"},
     "-0.5*(inv(S) - inv(S)*(x - mu)*(x - mu)'*inv(S))",
     "MC 8.1.1: ∂ln p(x)/∂Σ = -½(Σ^-T - Σ^-T(x-μ)(x-μ)'Σ^-T); symmetric Σ"),
    # ------------------------------------------------------------------ Hadamard and elementwise
    ("tr(A'*(B .* X))", "X", None, "A .* B", "MC (523): Tr(A'(B∘C)) = Tr((A∘B)'C), so ∂/∂C = A∘B"),
    ("sum(A .* X)", "X", None, "A", "sum(A∘X) = Tr(A'X), MC (103)"),
    ("sum(X .* X)", "X", None, "2*X", "= ||X||_F², MC (132)"),
    ("x'*(a .* x)", "x", None, "2*a .* x", "beyond the book: x'diag(a)x"),
    ("x'*diag(a)*x", "x", None, "2*a .* x", "MC (81) with B = diag(a)"),
    ("x'*diag(a)*x", "a", None, "x .* x", "beyond the book: Σ a_i x_i²"),
    ("diag(X)'*a", "X", None, "diag(a)", "beyond the book: Σ a_i X_ii"),
    ("sum(diag(X))", "X", None, "I", "sum(diag(X)) = Tr(X), MC (99)"),
    ("sum(x ./ y)", "y", None, "-x ./ y.^2", "beyond the book: entrywise quotient"),
    ("sum((x + a) ./ (x + b))", "x", None, "(b - a) ./ (x + b).^2",
     "beyond the book: both sides of ./ depend on x"),
    ("sum(x .* exp(x))", "x", None, "exp(x) .* (1 + x)", "beyond the book: both factors depend on x"),
    ("sum(exp(X*a))", "X", None, "exp(X*a)*a'", "beyond the book"),
    ("sum(exp(X*a))", "a", None, "X'*exp(X*a)", "beyond the book"),
    ("sum(log(A*x))", "x", None, "A'*(1 ./ (A*x))", "beyond the book"),
    ("sum(sqrt(x))", "x", None, "0.5*x.^(-1/2)", "beyond the book"),
    ("sum(tanh(W*x))", "W", None, "(1 - tanh(W*x).^2)*x'", "beyond the book"),
    ("sum(sigmoid(X*w))", "w", None, "X'*(sigmoid(X*w) .* (1 - sigmoid(X*w)))", "beyond the book"),
    ("sum(softplus(X*w))", "w", None, "X'*sigmoid(X*w)", "beyond the book"),
    ("sum(sin(x) .* cos(x))", "x", None, "cos(x).^2 - sin(x).^2", "beyond the book"),
    ("sum(relu(W*x))", "W", None, "step(W*x)*x'", "beyond the book; subgradient relu'(0) = 0"),
    ("sum(abs(x - a))", "x", None, "sign(x - a)", "beyond the book; subgradient abs'(0) = 0"),
    ("logsumexp(x)", "x", None, "softmax(x)", "beyond the book"),
    ("logsumexp(A*x)", "x", None, "A'*softmax(A*x)", "beyond the book"),
    ("a'*softmax(x)", "x", None, "softmax(x) .* a - softmax(x)*(softmax(x)'*a)",
     "beyond the book: the softmax Jacobian diag(s) - s*s'"),
    # ------------------------------------------------------------------ variables repeated, scalars
    ("x'*inv(A + x*x')*x", "x", None,
     "(1 - x'*inv(A + x*x')*x)*(inv(A + x*x') + inv(A + x*x')')*x",
     "beyond the book: x inside and outside an inverse"),
    ("tr(W*W'*W*W')", "W", None, "4*W*W'*W", "beyond the book: W four times, transposed or not"),
    ("tr(X'*X)^2", "X", None, "4*tr(X'*X)*X", "beyond the book: a power of a scalar subexpression"),
    ("(x'*x)^(-1/2)", "x", None, "-(x'*x)^(-3/2)*x", "beyond the book: a fractional power"),
    ("det(X)*tr(X)", "X", None, "det(X)*(tr(X)*inv(X)' + I)", "beyond the book: product rule"),
    ("logdet(X'*X + I)", "X", None, "2*X*inv(X'*X + I)", "beyond the book: X inside a logdet, twice"),
    ("sum(exp(x'*A*x))", "x", None, "exp(x'*A*x)*(A + A')*x", "beyond the book: a scalar inside exp"),
    ("gamma^2*x'*x", "gamma", None, "2*gamma*x'*x", "beyond the book: a scalar variable"),
    ("x'*(gamma*A + B)*x", "gamma", None, "x'*A*x", "beyond the book: a scalar variable"),
]


# ----------------------------------------------------------------------------- output size

_FUNCTIONS = ("logsumexp", "softmax", "softplus", "sigmoid", "logdet", "trace", "relu", "sqrt",
              "sign", "step", "tanh", "diag", "sum", "exp", "log", "abs", "sin", "cos", "det",
              "inv", "tr")
_FUNCTION_CALL = re.compile(r"\b(" + "|".join(_FUNCTIONS) + r")\s*\(")


def operator_count(text: str) -> int:
    """Operators in a formula: + - * / .* ./ ^ .^ and ' each count once, as do function names
    and a norm ||…|| (its subscript, numbers and parentheses are free). A `where` clause is
    counted as written."""
    n = len(_FUNCTION_CALL.findall(text))
    rest = _FUNCTION_CALL.sub("(", text)
    n += rest.count("||") // 2
    rest = rest.replace("||", " ")
    for dotted in (".*", "./", ".^"):
        n += rest.count(dotted)
        rest = rest.replace(dotted, " ")
    rest = re.sub(r"_(1|2|F|fro)\b", "", rest)
    n += sum(rest.count(c) for c in "+-*/^'")
    return n
