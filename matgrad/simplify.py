"""Smart constructors that keep expressions canonical, and the final `simplify` pass.

Every constructor here returns an expression equal (as a function, on its domain) to
the raw node it stands for, in a canonical form:
- sums are flat, zero terms dropped, like terms collected (2*a + 3*a → 5*a), also
  when they differ only in the order of commuting factors (x .* a + a .* x → 2*(x .* a),
  alpha*beta*x + beta*alpha*x); broadcast scalars merge (a*ones + b*ones → (a + b)*ones);
- products are flat, constants folded into one leading coefficient, scalar (1×1)
  factors first, identities dropped from chains (I*X → X); 1×1 stretches of a chain
  become scalar factors (x*y'*z → (y'*z)*x); neighbouring powers of one square base
  multiply (X*X → X^2, X*inv(X) → I); diag(v)*u → v .* u; sign(s)*s → abs(s);
  a 1×1 product is read in the orientation with fewer transposes (b'*X'*a → a'*X*b);
- transposes are pushed through products to the leaves ((A*B)' → B'*A'), cancel
  in pairs, vanish on 1×1 values and on provably symmetric matrices (`is_symmetric`:
  S, X'*X, A + A', inv(S), …), and stop at sums, where (r)' reads better than the
  expanded form, unless spreading them leaves fewer transposes ((A' + B')' → A + B);
- Hadamard products are flat, scalars pulled out, x∘x → x.^2;
- reductions and matrix functions fold what they can: tr(diag(v)) = sum(v),
  diag(u*v') = u .* v, diag(c*ones) = c*I, inv(X^k) = inv(X)^k, (X^j)^k = X^(jk), ….

Each rewrite makes the expression smaller (fewer nodes or factors) or moves a
transpose strictly closer to a leaf, so applying them bottom-up terminates.

`simplify` rebuilds an expression through these constructors and then brings every
sum, and every product with a sum in it, to the cheapest of a few equal forms by
`cost` (the operator count of the printed text): factored as it stands, or expanded,
collected and factored again — with inverses of products of square factors split so
they can cancel (A'*inv(A*X*B)'*B' → inv(X)'), common factors taken out, terms grouped
by shared scalar sums ((1 - s)*A + (1 - s)*A' → (1 - s)*(A + A')), lowest powers
taken out (1 ./ u - v ./ u.^2 → (u - v) ./ u.^2), or a sum of transposed products
written as one transposed sum ((X*B + B*X)'). A form is only ever replaced by one
that costs no more, so the pass terminates and never lengthens the text.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Iterable

from .ir import (
    SCALAR, Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity, Inverse,
    LogDet, LogSumExp, MatPow, Mul, Power, Shape, Softmax, Sum, Trace, Transpose, Var, postorder,
)

# The smart constructors are pure functions of their (interned, immutable) operands, and
# the simplifier's candidate forms rebuild the same products and sums thousands of times
# over (a derivation asks for ~5000 products of ~200 distinct ones), mostly with the
# same few numbers: remember them.
_remembered = lru_cache(maxsize=16384)


def clear_caches() -> None:
    """Forget remembered results (benchmarks time a cold derivation with this)."""
    for f in (add, mul, transpose, const):
        f.cache_clear()


ZERO = Const(Fraction(0))
ONE = Const(Fraction(1))


@_remembered
def const(v: int | Fraction) -> Const:
    return Const(Fraction(v))


def const_value(e: Expr) -> Fraction | None:
    return e.value if isinstance(e, Const) else None


def is_zero(e: Expr) -> bool:
    return (isinstance(e, Const) and e.value == 0) or (isinstance(e, Fill) and is_zero(e.value))


def fill(value: Expr, dims: Shape) -> Expr:
    """A matrix of shape `dims` with every entry `value` (a scalar)."""
    if tuple(dims) == SCALAR:
        return value
    return Fill(value, tuple(dims))  # type: ignore[arg-type]


def zeros(dims: Shape) -> Expr:
    return fill(ZERO, dims)


def ones(dims: Shape) -> Expr:
    return fill(ONE, dims)


# ----------------------------------------------------------------------------- sums

def split_coefficient(t: Expr) -> tuple[Fraction, Expr | None]:
    """t = c * rest with c a number; rest None when t is a plain number."""
    if isinstance(t, Const):
        return t.value, None
    if isinstance(t, Mul) and isinstance(t.factors[0], Const):
        rest = t.factors[1:]
        return t.factors[0].value, (rest[0] if len(rest) == 1 else Mul(rest))
    if isinstance(t, Fill) and isinstance(t.value, Const) and t.value.value != 0:
        return t.value.value, Fill(ONE, t.dims)
    return Fraction(1), t


@_remembered
def add(*terms: Expr) -> Expr:
    """Sum with like terms collected; first-appearance order is kept for readable output."""
    if not terms:
        raise ValueError("add() needs at least one term")
    shape = terms[0].shape
    flat: list[Expr] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, Add) else (t,))
    fills = [t for t in flat if isinstance(t, Fill) and not is_zero(t)]
    if len(fills) > 1 and any(not isinstance(f.value, Const) for f in fills):
        # a*ones + b*ones = (a + b)*ones: one broadcast scalar, never a sum of broadcasts
        merged = fill(add(*(f.value for f in fills)), fills[0].dims)  # type: ignore[attr-defined]
        at = flat.index(fills[0])
        flat = [t for t in flat if t not in fills]
        flat.insert(at, merged)
    coefs: dict[Expr | None, Fraction] = {}
    seen: dict[object, Expr | None] = {}  # like-term key → the first form met
    for t in flat:
        if is_zero(t):
            continue
        c, rest = split_coefficient(t)
        rest = seen.setdefault(_like_key(rest), rest)
        coefs[rest] = coefs.get(rest, Fraction(0)) + c
    out = []
    for rest, c in coefs.items():
        if c == 0:
            continue
        if rest is None:
            out.append(const(c))
        elif isinstance(rest, Fill) and rest.value == ONE:
            out.append(Fill(const(c), rest.dims))
        else:
            out.append(rest if c == 1 else mul(const(c), rest))
    if not out:
        return zeros(shape)
    if len(out) == 1:
        return out[0]
    if split_coefficient(out[0])[0] < 0:  # lead with a positive term: s - y, not -y + s
        first_positive = next((t for t in out if split_coefficient(t)[0] > 0), None)
        if first_positive is not None:
            out.remove(first_positive)
            out.insert(0, first_positive)
    return Add(tuple(out))


def _like_key(e: Expr | None) -> object:
    """Terms equal up to the order of commuting factors are like terms: x .* a and a .* x,
    alpha*beta*x and beta*alpha*x (entrywise products and scalar factors commute)."""
    if isinstance(e, Hadamard):
        return ("H", frozenset(Counter(e.factors).items()))
    if isinstance(e, Mul) and (len(e.scalars) > 1 or any(isinstance(f, Hadamard) for f in e.chain)):
        return ("M", frozenset(Counter(e.scalars).items()), tuple(_like_key(f) for f in e.chain))
    return e


def neg(x: Expr) -> Expr:
    return mul(const(-1), x)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


# ----------------------------------------------------------------------------- products

def _power_parts(e: Expr) -> tuple[Expr, Fraction]:
    if isinstance(e, Power):
        return e.arg, e.exponent
    return e, Fraction(1)


@_remembered
def mul(*factors: Expr) -> Expr:
    """Product: 1×1 factors scale (and commute), the others form a chain whose inner dims match."""
    coef = Fraction(1)
    scalars: list[Expr] = []
    chain: list[Expr] = []
    pending = list(factors)
    pending.reverse()
    while pending:
        f = pending.pop()
        if isinstance(f, Mul) and (not f.is_scalar or not f.chain):
            # A 1×1 product with a chain (x'*y) stays one scalar factor; see the module docs.
            pending.extend(reversed(f.factors))
            continue
        if isinstance(f, Const):
            coef *= f.value
        elif f.is_scalar:
            if isinstance(f, Mul):  # c*alpha*x'*y: numbers and scalars join ours, x'*y stays one factor
                for g in f.scalars:
                    if isinstance(g, Const):
                        coef *= g.value
                    else:
                        scalars.append(g)
                f = Mul(f.chain)
            scalars.append(f)
        elif isinstance(f, Fill) and not isinstance(f.value, Const):
            pending.append(f.value)
            chain.append(Fill(ONE, f.dims))
        elif isinstance(f, Fill) and f.value != ONE:
            coef *= f.value.value  # type: ignore[union-attr]
            chain.append(Fill(ONE, f.dims))
        else:
            chain.append(f)
    shape = _chain_shape(chain)
    if coef == 0 or any(is_zero(f) for f in scalars) or any(is_zero(f) for f in chain):
        return zeros(shape)
    # Merge equal scalar bases into powers: det(X) * det(X)^-1 → 1.
    merged: dict[Expr, Fraction] = {}
    for s in scalars:
        base, p = _power_parts(s)
        merged[base] = merged.get(base, Fraction(0)) + p
    _sign_times_self(merged)
    scalars = [b if p == 1 else power(b, p) for b, p in merged.items() if p != 0]
    scalars = [s for s in scalars if not (isinstance(s, Const) and s.value == 1)]
    for s in list(scalars):
        if isinstance(s, Const):
            coef *= s.value
            scalars.remove(s)
    if len(chain) > 1:
        chain = [f for f in chain if not isinstance(f, Identity)] or [chain[0]]
    if len(chain) > 1:
        chain = _merge_chain_powers(chain) or [Identity(shape[0])]  # X*inv(X) is I of X's size
    if len(chain) > 1 and any(isinstance(f, DiagMat) for f in chain):
        chain = _diag_times_vector(chain)
    units = [f for f in scalars if isinstance(f, Mul) and f.chain]
    if not chain and len(units) == 1:  # -(x'*A*x) and -x'*A*x are one form: the product is the chain
        scalars.remove(units[0])
        chain = list(units[0].chain)
    chain, inner_scalars = _scalar_segments(chain)
    if inner_scalars:
        return mul(const(coef), *scalars, *inner_scalars, *chain)
    if shape == SCALAR and len(chain) > 1:  # a 1×1 product equals its transpose: a'*X*b, not b'*X'*a
        chain = orient_chain(chain)
    out: list[Expr] = ([] if coef == 1 else [const(coef)]) + scalars + chain
    if not out:
        return ONE if shape == SCALAR else Identity(shape[0])
    if len(out) == 1:
        return out[0]
    return Mul(tuple(out))


def _sign_times_self(powers: dict[Expr, Fraction]) -> None:
    """sign(b)*b^p = abs(b)*b^(p−1) (b real, b ≠ 0 wherever b^p with p ≤ 0 is defined):
    log(abs(det(X))) then differentiates to inv(X)', not sign(det(X))*det(X)*inv(X)'/abs(det(X)).
    Applied to a {base: exponent} map of a product; the number of factors only drops."""
    for base in [b for b, p in powers.items() if isinstance(b, Func) and b.name == "sign" and p == 1]:
        arg = base.arg  # type: ignore[attr-defined]
        if powers.get(arg, Fraction(0)) != 0:
            powers[base] = Fraction(0)
            powers[arg] -= 1
            key = func("abs", arg)
            powers[key] = powers.get(key, Fraction(0)) + 1


def _is_ones(e: Expr) -> bool:
    return isinstance(e, Fill) and e.value == ONE


def _scalar_segments(chain: list[Expr]) -> tuple[list[Expr], list[Expr]]:
    """Take 1×1 stretches (a row … a column) out of a longer chain as scalar factors.

    x'*y*z' is (x'*y)*z' and x*y'*z is (y'*z)*x, whichever way they were built, so that
    equal values have one form. The rest of the chain still fits: both neighbours of
    a 1×1 stretch have a dimension 1 there. A stretch v'*ones or ones'*v is sum(v).
    """
    out: list[Expr] = []
    scalars: list[Expr] = []
    i = 0
    while i < len(chain):
        if chain[i].shape[0] == 1:
            j = next((k for k in range(i, len(chain)) if chain[k].shape[1] == 1), None)
            if j is not None and j > i and (i > 0 or j < len(chain) - 1 or (j == i + 1 and
                                                                          (_is_ones(chain[i]) or _is_ones(chain[j])))):
                segment = chain[i:j + 1]
                if len(segment) == 2 and (_is_ones(segment[0]) or _is_ones(segment[1])):
                    other = segment[1] if _is_ones(segment[0]) else segment[0]
                    scalars.append(sum_(other))
                else:
                    scalars.append(Mul(tuple(orient_chain(segment))))
                i = j + 1
                continue
        out.append(chain[i])
        i += 1
    return out, scalars


def _matrix_power_parts(f: Expr) -> tuple[Expr, int] | None:
    """A square chain factor as base^k with an integer k (negative for inverses), or None."""
    if f.shape[0] != f.shape[1] or isinstance(f, (Identity, Fill)):
        return None
    base, k = (f.arg, f.k) if isinstance(f, MatPow) else (f, 1)
    if isinstance(base, Inverse):
        return base.arg, -k
    if isinstance(base, Transpose) and isinstance(base.arg, Inverse):  # inv(X)' = inv(X')
        return transpose(base.arg.arg), -k
    return base, k


def _matrix_power(base: Expr, k: int) -> Expr:
    if k == 0:
        return Identity(base.shape[0])
    if k < 0:
        return matpow(inverse(base), -k)
    return matpow(base, k)


def _merge_chain_powers(chain: list[Expr]) -> list[Expr]:
    """Neighbouring powers of one square base multiply: X*X → X^2, X^2*X → X^3,
    X*inv(X) → I (dropped), inv(X)'*X' → I. Exact (where the inverses exist, which is
    where the product is defined); the chain only gets shorter, so this terminates."""
    out: list[Expr] = []
    for f in chain:
        cur = f
        while out:
            a, b = _matrix_power_parts(out[-1]), _matrix_power_parts(cur)
            if a is None or b is None or a[0] != b[0]:
                break
            out.pop()
            cur = _matrix_power(a[0], a[1] + b[1])
        if not isinstance(cur, Identity):
            out.append(cur)
    return out


def _diag_times_vector(chain: list[Expr]) -> list[Expr]:
    """diag(v)*u = v .* u for a column u, and u'*diag(v) = (v .* u)' for a row u': exact,
    and one factor fewer each time."""
    out: list[Expr] = []
    for f in chain:
        prev = out[-1] if out else None
        if isinstance(prev, DiagMat) and f.shape[1] == 1:
            out[-1] = hadamard(prev.arg, f)
        elif isinstance(f, DiagMat) and prev is not None and prev.shape[0] == 1:
            out[-1] = transpose(hadamard(f.arg, transpose(prev)))
        else:
            out.append(f)
    return out


def _fold(e: Expr, cache: dict[Expr, int], own: Callable[[Expr, dict[Expr, int]], int]) -> int:
    """A per-node measure computed bottom-up once per distinct node and kept in `cache`
    (cleared when it grows large, as nodes are interned and live long)."""
    if e in cache:
        return cache[e]
    if len(cache) > 200_000:
        cache.clear()
    for node in postorder(e):
        if node not in cache:
            cache[node] = own(node, cache)
    return cache[e]


def _transposes_here(node: Expr, cache: dict[Expr, int]) -> int:
    own = 1 if isinstance(node, Transpose) or (isinstance(node, Fill) and node.dims[0] == 1
                                                and node.dims[1] != 1) else 0
    return own + sum(cache[c] for c in node.children())


def transpose_count(e: Expr) -> int:
    """How many transposes (') the printed text of `e` has: Transpose nodes and row vectors of ones."""
    return _fold(e, _TCOUNT, _transposes_here)


_TCOUNT: dict[Expr, int] = {}


def _products_here(node: Expr, cache: dict[Expr, int]) -> int:
    own = 1 if isinstance(node, Mul) and len(node.chain) >= 2 else 0
    return own + sum(cache[c] for c in node.children())


def product_count(e: Expr) -> int:
    """How many matrix products (two or more non-scalar factors) the printed text of `e` has.
    Between forms of equal length, fewer products is less work: X*(s - y) over X*s - X*y."""
    return _fold(e, _PCOUNT, _products_here)


_PCOUNT: dict[Expr, int] = {}


def orient_chain(chain: list[Expr] | tuple[Expr, ...], *, ties: bool = False) -> list[Expr]:
    """A 1×1 product equals its transpose (a'*X*b = b'*X'*a): the orientation with fewer
    transposes. With `ties`, equally many are decided by a fixed order (fewer transposed
    compound factors, then the text), so that x'*y and y'*x become like terms."""
    chain = list(chain)
    flipped = [transpose(f) for f in reversed(chain)]
    a, b = sum(transpose_count(f) for f in chain), sum(transpose_count(f) for f in flipped)
    if b < a:
        return flipped
    if b > a or not ties:
        return chain

    def key(ch: list[Expr]) -> tuple[int, str]:
        from .printers import to_text  # printers imports only ir
        compound = sum(1 for f in ch if isinstance(f, Transpose) and not isinstance(f.arg, Var))
        return compound, to_text(Mul(tuple(ch)))

    return flipped if key(flipped) < key(chain) else chain


def _chain_shape(chain: list[Expr]) -> Shape:
    if not chain:
        return SCALAR
    return (chain[0].shape[0], chain[-1].shape[1])


def mul_chain(factors: Iterable[Expr]) -> Expr | None:
    fs = list(factors)
    return mul(*fs) if fs else None


@_remembered
def transpose(x: Expr) -> Expr:
    """x' pushed towards the leaves.

    Vanishes on 1×1 values and on provably symmetric matrices (`is_symmetric`: S' = S
    for symmetric variables, X'*X, A + A', inv(S), …). Through a sum it is kept as
    (a + b)', which usually reads best, unless spreading it over the terms leaves fewer
    transposes in total: (A' + B')' → A + B, (inv(r)' - M')' → inv(r) - M.
    """
    if x.is_scalar:
        return x
    if isinstance(x, Transpose):
        return x.arg
    if isinstance(x, (Var, Identity, DiagMat)) and _is_symmetric_leaf(x):
        return x
    if isinstance(x, Fill):
        return Fill(x.value, (x.dims[1], x.dims[0]))
    if isinstance(x, Mul):
        return mul(*x.scalars, *(transpose(f) for f in reversed(x.chain)))
    if isinstance(x, Hadamard):
        return hadamard(*(transpose(f) for f in x.factors))
    if isinstance(x, (Power, Func)):
        # Entrywise maps keep the transpose outside, tanh(r)' not tanh(r'), unless moving it
        # in removes one: tanh(X')' → tanh(X).
        inner = transpose(x.arg)
        if transpose_count(inner) < transpose_count(x.arg):
            return power(inner, x.exponent) if isinstance(x, Power) else func(x.name, inner)
        return Transpose(x)
    if isinstance(x, MatPow):  # (X^k)' = (X')^k
        return matpow(transpose(x.arg), x.k)
    if is_symmetric(x):
        return x
    if isinstance(x, Add):
        spread = [transpose(t) for t in x.terms]
        if sum(transpose_count(t) for t in spread) < transpose_count(x) + 1:
            return add(*spread)
    return Transpose(x)


def _is_symmetric_leaf(x: Expr) -> bool:
    return (isinstance(x, Var) and x.kind in ("symmetric", "spd")) or isinstance(x, (Identity, DiagMat))


_SYMMETRIC: dict[Expr, bool] = {}


def is_symmetric(x: Expr) -> bool:
    """Is x' = x provably, from structure alone?

    Symmetric leaves (declared symmetric/spd variables, I, diag(v), square ones*ones');
    inverses, matrix powers, entrywise functions and powers of symmetric matrices;
    Hadamard products of symmetric factors; products that read the same transposed
    backwards (X'*X, x*x', X'*S*X with S symmetric); sums whose terms are symmetric or
    pair up with their transposes (A + A', a*b' + b*a'). Never claims too much: False
    only means "not shown".
    """
    if x.shape[0] != x.shape[1]:
        return False
    if x.is_scalar:
        return True
    hit = _SYMMETRIC.get(x)
    if hit is not None:
        return hit
    if len(_SYMMETRIC) > 100_000:
        _SYMMETRIC.clear()
    if isinstance(x, (Var, Identity, DiagMat)):
        out = _is_symmetric_leaf(x)
    elif isinstance(x, Fill):
        out = True
    elif isinstance(x, (Transpose, Inverse, MatPow, Power, Func)):
        out = is_symmetric(x.arg)  # type: ignore[attr-defined]
    elif isinstance(x, Hadamard):
        out = all(is_symmetric(f) for f in x.factors)
    elif isinstance(x, Mul):
        ch = x.chain
        k = len(ch)
        out = all(ch[i] == transpose(ch[k - 1 - i]) for i in range(k // 2)) and \
            (k % 2 == 0 or is_symmetric(ch[k // 2]))
    elif isinstance(x, Add):
        from collections import Counter
        out = all(is_symmetric(t) for t in x.terms) or \
            Counter(x.terms) == Counter(transpose(t) for t in x.terms)
    else:
        out = False
    _SYMMETRIC[x] = out
    return out


# ----------------------------------------------------------------------------- elementwise

def hadamard(*factors: Expr) -> Expr:
    """Entrywise product; scalar parts move out front, equal factors become powers."""
    shape = factors[0].shape
    if shape == SCALAR:
        return mul(*factors)
    outer: list[Expr] = []
    powers: dict[Expr, Fraction] = {}
    pending = list(reversed(factors))
    while pending:
        f = pending.pop()
        if isinstance(f, Hadamard):
            pending.extend(reversed(f.factors))
        elif isinstance(f, Fill):
            outer.append(f.value)
        elif isinstance(f, Mul) and f.scalars:
            outer.extend(f.scalars)
            rest = f.chain
            pending.append(rest[0] if len(rest) == 1 else Mul(rest))
        else:
            base, p = _power_parts(f)
            powers[base] = powers.get(base, Fraction(0)) + p
    _sign_times_self(powers)  # sign(x) .* x = abs(x)
    inner = [b if p == 1 else power(b, p) for b, p in powers.items() if p != 0]
    if any(is_zero(f) for f in inner) or any(is_zero(f) for f in outer):
        return zeros(shape)
    if not inner:
        return mul(*outer, ones(shape))
    core = inner[0] if len(inner) == 1 else Hadamard(tuple(inner))
    return mul(*outer, core) if outer else core


def power(x: Expr, p: Fraction | int) -> Expr:
    """Entrywise power x.^p (ordinary power for scalars)."""
    p = Fraction(p)
    if p == 1:
        return x
    if p == 0:
        return ones(x.shape)
    if isinstance(x, Const):
        v = x.value
        if p.denominator == 1 and (v != 0 or p > 0):
            return const(v ** int(p))
        if p.denominator == 2 and v > 0:
            num, den = v.numerator, v.denominator
            rn, rd = _isqrt_exact(num), _isqrt_exact(den)
            if rn is not None and rd is not None:
                return power(const(Fraction(rn, rd)), p * 2)
    if isinstance(x, Power) and p.denominator == 1:
        return power(x.arg, x.exponent * p)
    if isinstance(x, Fill):
        return fill(power(x.value, p), x.dims)
    if isinstance(x, Mul) and p.denominator == 1 and (x.is_scalar or x.scalars):
        if x.is_scalar and not x.chain:
            return mul(*(power(f, p) for f in x.factors))
        if not x.is_scalar:
            rest = x.chain
            return mul(*(power(f, p) for f in x.scalars),
                       power(rest[0] if len(rest) == 1 else Mul(rest), p))
    if isinstance(x, Transpose):  # (X').^p = (X.^p)', as for functions
        return transpose(power(x.arg, p))
    return Power(x, p)


def _isqrt_exact(n: int) -> int | None:
    import math
    r = math.isqrt(n)
    return r if r * r == n else None


def func(name: str, x: Expr) -> Expr:
    """Elementwise function application with the few exact identities that shorten results."""
    if name == "log" and isinstance(x, Det):
        return logdet(x.arg)
    if name == "log" and isinstance(x, Func) and x.name == "exp":
        return x.arg
    if name == "exp" and isinstance(x, Func) and x.name == "log":
        return x.arg
    if isinstance(x, Const):
        if name == "exp" and x.value == 0:
            return ONE
        if name == "log" and x.value == 1:
            return ZERO
        if name in ("sin", "tanh", "relu", "abs", "sign") and x.value == 0:
            return ZERO
        if name == "cos" and x.value == 0:
            return ONE
        if name in ("abs",):
            return const(abs(x.value))
    if isinstance(x, Fill):
        return fill(func(name, x.value), x.dims)
    if isinstance(x, Transpose):  # f(X') = f(X)': transposes stay outside entrywise maps
        return transpose(func(name, x.arg))
    return Func(name, x)


# ----------------------------------------------------------------------------- reductions and matrix functions

def trace(x: Expr) -> Expr:
    """tr(x); scalars leave, transposes vanish, and the cyclic rule turns tr(u*v'*…) into v'*…*u."""
    if x.is_scalar or is_zero(x):
        return ZERO if is_zero(x) else x
    if isinstance(x, Transpose):
        return trace(x.arg)
    if isinstance(x, Mul):
        chain = list(x.chain)
        if x.scalars:
            return mul(*x.scalars, trace(chain[0] if len(chain) == 1 else Mul(tuple(chain))))
        for i in range(1, len(chain)):
            if chain[i].shape[0] == 1:  # rotating to start at a row gives a 1×1 product
                return mul(*chain[i:], *chain[:i])
    if isinstance(x, Add):
        return add(*(trace(t) for t in x.terms))
    if isinstance(x, DiagMat):  # tr(diag(v)) = sum(v)
        return sum_(x.arg)
    if isinstance(x, Identity) and isinstance(x.n, int):  # a declared size: tr(I) is that number
        return const(x.n)
    return Trace(x)


def sum_(x: Expr) -> Expr:
    """Sum of all entries; sum(u∘v) of column vectors is u'*v."""
    if x.is_scalar or is_zero(x):
        return ZERO if is_zero(x) else x
    if isinstance(x, Var) and x.kind == "prob":
        return ONE
    if isinstance(x, Mul) and x.scalars:
        rest = x.chain
        return mul(*x.scalars, sum_(rest[0] if len(rest) == 1 else Mul(rest)))
    if isinstance(x, (Transpose, DiagMat)):  # sum(X') = sum(X), sum(diag(v)) = sum(v)
        return sum_(x.arg)
    if isinstance(x, Hadamard) and len(x.factors) == 2 and x.shape[1] == 1:
        return mul(transpose(x.factors[0]), x.factors[1])
    if isinstance(x, Fill) and all(isinstance(d, int) for d in x.dims):  # sum(ones) of a declared size
        return mul(x.value, const(x.dims[0] * x.dims[1]))
    if isinstance(x, Fill) and x.value != ONE:
        return mul(x.value, Sum(Fill(ONE, x.dims)))
    return Sum(x)


def det(x: Expr) -> Expr:
    if x.is_scalar:
        return x
    if isinstance(x, Transpose):
        return det(x.arg)
    if isinstance(x, Inverse):
        return power(det(x.arg), -1)
    if isinstance(x, Identity):
        return ONE
    return Det(x)


def logdet(x: Expr) -> Expr:
    if x.is_scalar:
        return func("log", x)
    if isinstance(x, Transpose):
        return logdet(x.arg)
    if isinstance(x, Inverse):
        return neg(logdet(x.arg))
    if isinstance(x, Identity):
        return ZERO
    return LogDet(x)


def inverse(x: Expr) -> Expr:
    """inv(x), with the transpose kept outside: inv(X') → inv(X)'."""
    if x.is_scalar:
        return power(x, -1)
    if isinstance(x, Inverse):
        return x.arg
    if isinstance(x, Identity):
        return x
    if isinstance(x, Transpose):
        return transpose(inverse(x.arg))
    if isinstance(x, MatPow):  # inv(X^k) = inv(X)^k, so that it cancels against powers of X
        return matpow(inverse(x.arg), x.k)
    if isinstance(x, Mul) and x.scalars:
        rest = x.chain
        return mul(*(power(s, -1) for s in x.scalars), inverse(rest[0] if len(rest) == 1 else Mul(rest)))
    return Inverse(x)


def matpow(x: Expr, k: int) -> Expr:
    if k == 0:
        return Identity(x.shape[0])
    if k == 1:
        return x
    if k < 0:
        return matpow(inverse(x), -k)
    if isinstance(x, Identity):
        return x
    if isinstance(x, MatPow):  # (X^j)^k = X^(j*k)
        return matpow(x.arg, x.k * k)
    return MatPow(x, k)


def diag_mat(v: Expr) -> Expr:
    """diag(v) of a vector; diag(c*ones) = c*I (diag(diag(X)) is not X, so it is left alone)."""
    if v.is_scalar:  # diag of a 1-vector is that 1×1 value
        return v
    if is_zero(v):
        return zeros((v.shape[0], v.shape[0]))
    if isinstance(v, Fill):  # diag(c*ones) = c*I
        return mul(v.value, Identity(v.shape[0]))
    return DiagMat(v)


def diag_vec(x: Expr) -> Expr:
    """diag(X): diag(diag(v)) = v, diag(X') = diag(X), diag(c*X) = c*diag(X), diag(I) = ones,
    and the diagonal of an outer product u*v' is u .* v (x .* x = x.^2)."""
    if x.is_scalar:  # the diagonal of a 1×1 matrix is itself
        return x
    if isinstance(x, DiagMat):
        return x.arg
    if isinstance(x, Transpose):
        return diag_vec(x.arg)
    if is_zero(x):
        return zeros((x.shape[0], 1))
    if isinstance(x, Identity):
        return ones((x.n, 1))
    if isinstance(x, Mul) and x.scalars:
        rest = x.chain
        return mul(*x.scalars, diag_vec(rest[0] if len(rest) == 1 else Mul(rest)))
    if isinstance(x, Mul) and len(x.chain) == 2 and x.chain[0].shape[1] == 1:
        return hadamard(x.chain[0], transpose(x.chain[1]))
    return DiagVec(x)


def softmax(v: Expr) -> Expr:
    return Softmax(v)


def logsumexp(v: Expr) -> Expr:
    return LogSumExp(v)


def inner(a: Expr, b: Expr) -> Expr:
    """⟨a, b⟩ = sum(a∘b), written as a'*b for vectors and tr(a'*b) for matrices."""
    if a.is_scalar:
        return mul(a, b)
    if a.shape[1] == 1:
        return mul(transpose(a), b)
    if a.shape[0] == 1:
        return mul(a, transpose(b))
    return trace(mul(transpose(a), b))


# ----------------------------------------------------------------------------- the final pass

def _rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    builder = _BUILDERS.get(type(e))
    if builder is None:
        return e if not kids else e.with_children(kids)
    return builder(e, kids)


_BUILDERS: dict[type, Callable[[Expr, tuple[Expr, ...]], Expr]] = {
    Add: lambda e, k: add(*k),
    Mul: lambda e, k: mul(*k),
    Transpose: lambda e, k: transpose(k[0]),
    Hadamard: lambda e, k: hadamard(*k),
    Power: lambda e, k: power(k[0], e.exponent),  # type: ignore[attr-defined]
    Func: lambda e, k: func(e.name, k[0]),  # type: ignore[attr-defined]
    Trace: lambda e, k: trace(k[0]),
    Sum: lambda e, k: sum_(k[0]),
    Det: lambda e, k: det(k[0]),
    LogDet: lambda e, k: logdet(k[0]),
    Inverse: lambda e, k: inverse(k[0]),
    MatPow: lambda e, k: matpow(k[0], e.k),  # type: ignore[attr-defined]
    DiagMat: lambda e, k: diag_mat(k[0]),
    DiagVec: lambda e, k: diag_vec(k[0]),
    Fill: lambda e, k: fill(k[0], e.dims),  # type: ignore[attr-defined]
}


def canonical(root: Expr) -> Expr:
    """Rebuild bottom-up through the smart constructors (iterative; depth is unbounded)."""
    done: dict[Expr, Expr] = {}
    for e in postorder(root):
        kids = e.children()
        done[e] = _rebuild(e, tuple(done[c] for c in kids)) if kids else e
    return done[root]


def _terms_parts(t: Expr) -> tuple[Fraction, list[Expr], list[Expr]]:
    """A term as (numeric coefficient, scalar factors, matrix chain)."""
    c, rest = split_coefficient(t)
    if rest is None:
        return c, [], []
    if isinstance(rest, Mul):
        return c, list(rest.scalars), list(rest.chain)
    if rest.is_scalar:
        return c, [rest], []
    return c, [], [rest]


# ----------------------------------------------------------------------------- size

_COST: dict[Expr, int] = {}


def cost(e: Expr) -> int:
    """The number of operators in the printed text of `e` (+, -, *, /, .*, ^, ', function
    names, norms), counted on the tree as `to_text` prints it without `where` names.
    The final pass keeps whichever of several equal forms costs least."""
    return _fold(e, _COST, _node_cost)


def shared_cost(e: Expr) -> int:
    """`cost` with a sum that occurs more than once counted once, as `to_text(…,
    name_shared=True)` prints it (`… where r = A*x - b`): the largest three such sums."""
    counts: dict[Expr, int] = {e: 1}
    order = postorder(e)
    for x in reversed(order):
        for c in x.children():
            counts[c] = counts.get(c, 0) + counts[x]
    shared = sorted((a for a, n in counts.items() if isinstance(a, Add) and n >= 2 and cost(a) >= 2),
                    key=lambda a: -cost(a))
    total = cost(e)
    taken: list[Expr] = []
    for a in shared:
        if len(taken) == 3:
            break
        if any(a in set(postorder(t)) for t in taken):
            continue
        taken.append(a)
        total -= (counts[a] - 1) * cost(a)
    return total


def _number_cost(v: Fraction) -> int:
    return (1 if v < 0 else 0) + (1 if v.denominator != 1 and (v.denominator & (v.denominator - 1)) else 0)


def _node_cost(e: Expr, c: dict[Expr, int]) -> int:
    kids = e.children()
    below = sum(c[k] for k in kids)
    if isinstance(e, (Var, Identity)):
        return 0
    if isinstance(e, Const):
        return _number_cost(e.value)
    if isinstance(e, Fill):
        r, k = e.dims
        shape_cost = 0 if k == 1 else (1 if r == 1 else 2)
        if isinstance(e.value, Const):
            return 0 if e.value.value == 0 else shape_cost + (0 if e.value.value == 1 else 1 + below)
        return shape_cost + 1 + below
    if isinstance(e, (Add, Hadamard)):
        return len(kids) - 1 + below
    if isinstance(e, Mul):
        lead = e.factors[0]
        if isinstance(lead, Const) and lead.value == -1:
            return 1 + below  # -x, not -1*x
        return len(kids) - 1 + below
    if isinstance(e, Power):
        p = abs(e.exponent) if e.is_scalar else e.exponent  # a scalar's s^-k prints as …/s^k
        if isinstance(e.arg, Sum) and isinstance(e.arg.arg, Power) and e.arg.arg.exponent == 2 \
                and (2 * p).denominator == 1:
            return (1 if p == Fraction(1, 2) else 2) + c[e.arg.arg.arg]  # ||E||, ||E||^k
        if p == 1:
            return below
        if p == Fraction(1, 2):
            return 1 + below
        return 1 + below + (1 if p < 0 else 0) + (1 if p.denominator != 1 else 0)
    if isinstance(e, Sum) and isinstance(e.arg, Power) and e.arg.exponent == 2:
        return 2 + c[e.arg.arg]  # ||E||^2
    if isinstance(e, Sum) and isinstance(e.arg, Func) and e.arg.name == "abs":
        return 1 + c[e.arg.arg]  # ||E||_1
    return 1 + below  # ', function names, ^k


# ----------------------------------------------------------------------------- expand, collect, factor

# Most monomials an expansion may produce, and most terms the partial-factoring search takes.
EXPAND_LIMIT = 40
SEARCH_LIMIT = 10


def _expand(e: Expr, memo: dict[Expr, list[Expr] | None]) -> list[Expr] | None:
    """Monomials whose sum is `e`: products distributed over sums (scalar sums too) and
    transposes spread over sums; every other node is an atom. None when there would be
    more than EXPAND_LIMIT monomials. Exact: distributivity and (a + b)' = a' + b'."""
    if e in memo:
        return memo[e]
    out: list[Expr] | None
    if isinstance(e, Add):
        out = []
        for t in e.terms:
            sub = _expand(t, memo)
            if sub is None or len(out) + len(sub) > EXPAND_LIMIT:
                out = None
                break
            out.extend(sub)
    elif isinstance(e, Mul):
        out = [ONE]
        for f in e.factors:
            sub = _expand(f, memo)
            if sub is None or len(out) * len(sub) > EXPAND_LIMIT:
                out = None
                break
            out = [mul(a, b) for a in out for b in sub]
    elif isinstance(e, Transpose) and isinstance(e.arg, Add):
        sub = _expand(e.arg, memo)
        out = None if sub is None else [transpose(t) for t in sub]
    else:
        out = [e]
    memo[e] = out
    return out


def orient(e: Expr) -> Expr:
    """Every 1×1 product in the factors of `e` (and `e` itself, when it is one) read in the
    orientation `orient_chain(…, ties=True)` picks: x'*y and y'*x become the same term."""
    if not isinstance(e, Mul):
        return e
    scalars = [Mul(tuple(orient_chain(f.factors, ties=True))) if isinstance(f, Mul) and not f.scalars
               else f for f in e.scalars]
    chain = list(e.chain)
    if e.is_scalar and len(chain) > 1:
        chain = orient_chain(chain, ties=True)
    if scalars == list(e.scalars) and chain == list(e.chain):
        return e
    return mul(*scalars, *chain)


def order_terms(s: Expr) -> Expr:
    """A + A' rather than A' + A: a term whose transpose is also in the sum with fewer
    transposes goes after it (otherwise the order is kept)."""
    if not isinstance(s, Add):
        return s
    ts = list(s.terms)
    present = set(ts)

    def late(t: Expr) -> bool:
        if t.shape[0] != t.shape[1] or t.is_scalar:
            return False
        tt = transpose(t)
        return tt != t and tt in present and transpose_count(tt) < transpose_count(t)

    ts.sort(key=late)
    return Add(tuple(ts)) if ts != list(s.terms) else s


def _sum(terms: list[Expr]) -> Expr:
    return order_terms(add(*terms))


def _common_part(parts: list[tuple[Fraction, list[Expr], list[Expr]]]
                 ) -> tuple[Fraction, list[Expr], list[Expr], list[Expr], list[Expr]] | None:
    """What every term shares: a coefficient (all equal in size, or all negative), scalar
    factors, leading and trailing chain factors (each term keeps at least one of its own).
    Returns (coefficient, scalars, left, right, the remaining terms) or None."""
    coefs = [p[0] for p in parts]
    common_coef = Fraction(1)
    if len({abs(c) for c in coefs}) == 1 and abs(coefs[0]) != 1:
        common_coef = abs(coefs[0])
    if all(c < 0 for c in coefs):
        common_coef = -common_coef
    common_scalars: list[Expr] = []
    pools = [list(p[1]) for p in parts]
    for f in parts[0][1]:
        if all(f in pool for pool in pools):
            common_scalars.append(f)
            for pool in pools:
                pool.remove(f)
    left: list[Expr] = []
    right: list[Expr] = []
    chains = [list(p[2]) for p in parts]
    while all(len(ch) >= 2 for ch in chains) and all(ch[0] == chains[0][0] for ch in chains):
        left.append(chains[0][0])
        chains = [ch[1:] for ch in chains]
    while all(len(ch) >= 2 for ch in chains) and all(ch[-1] == chains[0][-1] for ch in chains):
        right.insert(0, chains[0][-1])
        chains = [ch[:-1] for ch in chains]
    if common_coef == 1 and not common_scalars and not left and not right:
        return None
    rest = [mul(const(p[0] / common_coef), *pool, *ch) for p, pool, ch in zip(parts, pools, chains)]
    return common_coef, common_scalars, left, right, rest


def _factor(terms: tuple[Expr, ...], memo: dict) -> Expr:
    """The cheapest factored form found for the sum of `terms` (like terms already collected).

    Candidates, all exact (distributivity): the plain sum; everything the terms share
    taken out (`_common_part`); terms grouped by their matrix part and matrix parts by
    equal scalar coefficients ((1 - s)*A + (1 - s)*A' → (1 - s)*(A + A')); and, for a
    few terms, a factor shared by some of them taken out of those (partial factoring).
    Only ever keeps a form that costs no more than the plain sum, so it terminates
    and never lengthens the text.
    """
    if len(terms) == 1:
        return terms[0]
    if terms in memo:
        return memo[terms]
    parts = [_terms_parts(t) for t in terms]
    common = _common_part(parts)
    if common is not None:
        coef, scalars, left, right, rest = common
        inner = _factor(tuple(rest), memo) if len(rest) > 1 else rest[0]
        if isinstance(inner, Add) and len(rest) > 1:
            inner = order_terms(inner)
        result = mul(const(coef), *scalars, *left, inner, *right)
        memo[terms] = result
        return result
    candidates = [_sum(list(terms))]
    memo[terms] = candidates[0]  # a re-entrant call on the same terms gets the plain sum
    candidates.extend(_grouped(parts, memo))
    candidates.extend(_lowest_powers(parts, memo))
    candidates.extend(_common_square_factor(parts, memo))
    if len(terms) <= SEARCH_LIMIT:
        candidates.extend(_partial(terms, parts, memo))
    best = min(range(len(candidates)), key=lambda i: (cost(candidates[i]), product_count(candidates[i]), i))
    memo[terms] = candidates[best]
    return candidates[best]


def _grouped(parts: list[tuple[Fraction, list[Expr], list[Expr]]], memo: dict) -> list[Expr]:
    """Σ (scalar sum) * (matrix part): terms with one matrix part share it; matrix parts
    whose scalar sums agree up to a number share that sum."""
    by_chain: dict[tuple[Expr, ...], list[Expr]] = {}
    for c, scal, ch in parts:
        by_chain.setdefault(tuple(ch), []).append(mul(const(c), *scal))
    by_poly: dict[Expr | None, list[Expr]] = {}
    for ch, scalar_terms in by_chain.items():
        poly = _factor(tuple(scalar_terms), memo) if len(scalar_terms) > 1 else scalar_terms[0]
        k, rest = split_coefficient(poly)
        if isinstance(rest, Add) and split_coefficient(rest.terms[0])[0] < 0:
            k, rest = -k, neg(rest)
        by_poly.setdefault(rest, []).append(mul(const(k), *ch) if ch else const(k))
    if not any(len(v) > 1 for v in by_chain.values()) and \
            not any(poly is not None and len(m) > 1 for poly, m in by_poly.items()):
        return []
    out = []
    for poly, members in by_poly.items():
        m = _factor(tuple(_collected(members)), memo) if len(members) > 1 else members[0]
        if isinstance(m, Add):
            m = order_terms(m)
        out.append(m if poly is None else mul(poly, m))
    grouped = _sum(out)
    if isinstance(grouped, Add) and len(grouped.terms) > 1:
        shared = _common_part([_terms_parts(t) for t in grouped.terms])
        if shared is not None:
            coef, scalars, left, right, rest = shared
            grouped = mul(const(coef), *scalars, *left, _sum(rest), *right)
    return [grouped]


def _common_square_factor(parts: list[tuple[Fraction, list[Expr], list[Expr]]], memo: dict) -> list[Expr]:
    """A square factor every term starts (or ends) with, taken out even where a term is
    only that factor: M - X'*M → (I - X')*M. (`_common_part` leaves those alone, since
    A*(B*x + x) and A*(B + I)*x cost the same; here the cost decides.)"""
    out = []
    chains = [p[2] for p in parts]
    if not all(chains):
        return out
    for side in (0, -1):
        f = chains[0][side]
        if f.shape[0] != f.shape[1] or not all(ch[side] == f for ch in chains):
            continue
        rest = []
        for c, scal, ch in parts:
            inner = ch[1:] if side == 0 else ch[:-1]
            rest.append(mul(const(c), *scal, *(inner or [Identity(f.shape[0])])))
        inner_sum = _factor(tuple(_collected(rest)), memo) if len(rest) > 1 else rest[0]
        inner_sum = order_terms(inner_sum)
        out.append(mul(f, inner_sum) if side == 0 else mul(inner_sum, f))
    return out


def _entrywise_parts(chain: list[Expr]) -> dict[Expr, Fraction] | None:
    """A one-factor chain as {base: exponent} of an entrywise product, or None."""
    if len(chain) != 1:
        return None
    f = chain[0]
    out: dict[Expr, Fraction] = {}
    for g in (f.factors if isinstance(f, Hadamard) else (f,)):
        base, p = _power_parts(g)
        out[base] = out.get(base, Fraction(0)) + p
    return out


def _lowest_powers(parts: list[tuple[Fraction, list[Expr], list[Expr]]], memo: dict) -> list[Expr]:
    """A base every term has, to different powers, taken out at its lowest power, scalar
    (a/s - b/s^2 → (s*a - b)/s^2) or entrywise (1 ./ u - v ./ u.^2 → (u - v) ./ u.^2,
    x .* exp(x) + exp(x) → exp(x) .* (x + 1)); the remaining sum is expanded and collected,
    where such common denominators pay off."""
    out: list[Expr] = []
    scalar_powers = [dict(_power_parts(f) for f in scal) for _, scal, _ in parts]
    common = [b for b in scalar_powers[0] if all(b in sp for sp in scalar_powers[1:])]
    low = {b: min(sp[b] for sp in scalar_powers) for b in common}
    if common and any(len({sp[b] for sp in scalar_powers}) > 1 for b in common):
        inner = []
        for (c, _, ch), sp in zip(parts, scalar_powers):
            inner.append(mul(const(c), *(power(b, q - low.get(b, Fraction(0))) for b, q in sp.items()), *ch))
        out.append(mul(*(power(b, low[b]) for b in common), _expanded_sum(inner, memo)))
    entry = [_entrywise_parts(ch) for _, _, ch in parts]
    if all(e is not None for e in entry) and all(not scal for _, scal, _ in parts):
        ep = [e for e in entry if e is not None]
        common = [b for b in ep[0] if all(b in e for e in ep[1:])]
        if common:
            low = {b: min(e[b] for e in ep) for b in common}
            inner = []
            for (c, _, _), e in zip(parts, ep):
                rest = [power(b, q - low.get(b, Fraction(0))) for b, q in e.items()]
                rest = [r for r in rest if not (isinstance(r, Fill) and r.value == ONE)]
                inner.append(mul(const(c), hadamard(*rest)) if rest else fill(const(c), parts[0][2][0].shape))
            out.append(hadamard(_expanded_sum(inner, memo), *(power(b, low[b]) for b in common)))
    return out


def _expanded_sum(terms: list[Expr], memo: dict) -> Expr:
    """The sum of `terms`, expanded, collected and factored."""
    mono: list[Expr] = []
    for t in terms:
        sub = _expand(t, {})
        if sub is None:
            return _sum(terms)
        mono.extend(orient(m) for m in sub)
    collected = _collected(mono)
    return order_terms(_factor(tuple(collected), memo)) if len(collected) > 1 else collected[0]


def _collected(terms: list[Expr]) -> list[Expr]:
    s = add(*terms)
    return list(s.terms) if isinstance(s, Add) else [s]


def _partial(terms: tuple[Expr, ...], parts: list[tuple[Fraction, list[Expr], list[Expr]]],
             memo: dict) -> list[Expr]:
    """For the few factors shared by most (not all) terms: those terms factored, plus the rest."""
    def keys(p: tuple[Fraction, list[Expr], list[Expr]]) -> set[tuple[str, Expr]]:
        _, scal, ch = p
        out = {("s", f) for f in scal}
        if len(ch) >= 2:
            out |= {("l", ch[0]), ("r", ch[-1])}
        return out

    from collections import Counter
    per_term = [keys(p) for p in parts]
    counts: Counter[tuple[str, Expr]] = Counter(k for ks in per_term for k in ks)
    shared = [k for k, n in counts.items() if 2 <= n < len(terms)]
    shared.sort(key=lambda k: -(counts[k] - 1) * (cost(k[1]) + 1))
    out = []
    for k in shared[:3]:
        group = tuple(t for t, ks in zip(terms, per_term) if k in ks)
        rest = tuple(t for t, ks in zip(terms, per_term) if k not in ks)
        first = _factor(group, memo)
        second = _factor(rest, memo) if len(rest) > 1 else rest[0]
        out.append(Add((first, second)))
    return out


def _split_inverse(f: Expr) -> Expr:
    """inv(P*Q*…) of square factors as …*inv(Q)*inv(P) (and its transpose likewise); exact
    where the product is invertible, since then every square factor is. Other factors as they are."""
    outer = isinstance(f, Transpose)
    g = f.arg if outer else f  # type: ignore[attr-defined]
    if not isinstance(g, Inverse) or not isinstance(g.arg, Mul):
        return f
    m = g.arg
    if len(m.chain) < 2 or any(c.shape[0] != c.shape[1] for c in m.chain):
        return f
    split = mul(*(power(c, -1) for c in m.scalars), *(inverse(c) for c in reversed(m.chain)))
    return transpose(split) if outer else split


def _inverses_split(t: Expr) -> Expr:
    """A monomial with every inverse of a product of square factors split (`_split_inverse`), so
    that A*X*inv(A*X*B) meets its neighbours and cancels to inv(B)."""
    if not isinstance(t, Mul):
        return _split_inverse(t)
    new = [_split_inverse(f) for f in t.factors]
    return t if new == list(t.factors) else mul(*new)


def _has_sum_factor(e: Expr) -> bool:
    return isinstance(e, Mul) and any(isinstance(f, Add) or (isinstance(f, Transpose) and isinstance(f.arg, Add))
                                      for f in e.factors)


def _improve(e: Expr, memo: dict, expand_memo: dict) -> Expr:
    """The cheapest (`shared_cost`, then `cost`) of the equal forms of `e`: its sum factored
    as it stands; expanded, collected and factored, with and without inverses of products
    split; and, for a sum of transposed products, one transposed sum. A product without a
    sum only gets its inverses split, when that is cheaper (A*X*inv(A*X) → I)."""
    e = orient(e)
    if isinstance(e, Mul) and not _has_sum_factor(e):
        split = _inverses_split(e)
        return split if split != e and cost(split) < cost(e) else e
    if not isinstance(e, Add) and not _has_sum_factor(e):
        return e
    candidates = [order_terms(_factor(e.terms, memo)) if isinstance(e, Add) else e]
    mono = _expand(e, expand_memo)
    if mono is not None:
        for prepare in (orient, lambda t: orient(_inverses_split(t))):
            collected = add(*(prepare(t) for t in mono))
            terms = collected.terms if isinstance(collected, Add) else (collected,)
            candidates.append(order_terms(_factor(tuple(terms), memo)))
    if isinstance(e, Add) and not e.is_scalar:
        flipped = [transpose(t) for t in e.terms]
        if sum(transpose_count(t) for t in flipped) + 1 < transpose_count(e):
            # A'*B' + B'*A'... reads shorter as one transposed sum: (X*B + B*X)'
            inner = order_terms(_factor(tuple(_collected(flipped)), memo))
            if isinstance(inner, Add) and not is_symmetric(inner):
                candidates.append(Transpose(inner))
    unique = list(dict.fromkeys(candidates))
    if len(unique) == 1:
        return unique[0]
    return min(unique, key=lambda c: (shared_cost(c), cost(c), product_count(c)))


def factor_sum(s: Add) -> Expr:
    """Common factors taken out of a sum, and the cheapest grouping of the rest (see `_factor`)."""
    return order_terms(_factor(s.terms, {}))


def simplify(root: Expr) -> Expr:
    """Canonical form, then, bottom-up, every sum and every product of sums brought to the
    cheapest of its equal forms (`_improve`): like terms that only show up after
    distributing ((inv(r)' - M)' + inv(r)' - …) are collected, 1×1 products are read one
    way (x'*A'*y = y'*A*x), common factors come out. Sums built by one pass are looked at
    by the next, until nothing changes (at most MAX_PASSES passes). Every step is an exact
    identity and is kept only when the text gets no longer, so the pass terminates and
    never lengthens the result."""
    e = canonical(root)
    memo: dict = {}
    expand_memo: dict = {}
    improved: dict[Expr, Expr] = {}
    for _ in range(MAX_PASSES):
        new = _pass(e, memo, expand_memo, improved)
        if new == e:
            break
        e = new
    return e


MAX_PASSES = 4


def _pass(e: Expr, memo: dict, expand_memo: dict, improved: dict[Expr, Expr]) -> Expr:
    """One bottom-up sweep. `improved` remembers _improve across sweeps: the sweep that
    confirms nothing changes meets only nodes it has seen."""
    done: dict[Expr, Expr] = {}
    for node in postorder(e):
        kids = node.children()
        new = _rebuild(node, tuple(done[c] for c in kids)) if kids else node
        better = improved.get(new)
        if better is None:
            better = improved[new] = _improve(new, memo, expand_memo)
        done[node] = better
    return done[e]
