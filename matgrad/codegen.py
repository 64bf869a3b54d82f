"""IR → a standalone Python function computing F and its gradients together.

`generate(f, gradients, backend)` prints the source of

    def value_and_grad(W, X, ...):
        ...
        return value, {"W": grad_W, ...}

for NumPy, JAX or PyTorch; `generate_expression(e)` prints one expression as
`def f(...)`. `matgrad.lambdify` and the verifier run that code for a gradient, so
what is checked against finite differences is the code a user exports. The printed
code needs only its backend, and is meant to be read:

- Common subexpressions are computed once: the function and all gradients are
  printed from one DAG, and every node used more than once becomes a local
  `t1 = ...`, so forward intermediates (W*x, tanh(W*x), the residual) are shared
  between the value and the gradients.
- Transposes are moved outward before sharing (tanh(X'*W') is tanh(W*X)'), so a
  gradient that spells a forward intermediate transposed reuses it.
- Matrix chains are multiplied in the cheapest order for the actual shapes:
  products of three or more factors go through `linalg.multi_dot` (NumPy, JAX and
  PyTorch all have one; it runs the classic dynamic programme on the shapes at
  call time), so W'*W*x is computed as W'(Wx) and an outer product u*v' inside a
  chain is never formed. Single-use sub-products are flattened into the chain that
  uses them so the whole product is ordered at once.
- When the sizes are known at generation time (numeric dims, or `sizes=`), the same
  programme runs then instead, the order is written out with `@`, and a sub-product
  that several chains form is computed once: F = ||W*X*V - U||^2 with a thin V is
  W @ (X @ V) and its ∇W reuses X @ V as (X @ V).T. A later chain may reuse what an
  earlier one formed at no cost; an earlier chain's order is never bent for a later one.
- tr(A*B) is computed as sum(A .* B') and diag(A*B) as a row sum, never forming
  the product; diag(v) inside a product scales rows or columns instead.

Conventions of the generated function: matrices are 2-D arrays of the declared
shapes, vectors are n×1 columns (1-D arrays are accepted and reshaped), scalars
are floats or 0-d/1×1 arrays. The value is returned as a float (NumPy) or a 0-d
array/tensor; each gradient has its variable's shape (vectors as n×1 columns).
Dimensions no variable carries become keyword-only arguments.
"""

from __future__ import annotations

import hashlib
import keyword
from fractions import Fraction
from typing import Any, Callable, Iterable

from .ir import (
    Add, Const, Det, DiagMat, DiagVec, Expr, Fill, Func, Hadamard, Identity, Inverse, LogDet,
    LogSumExp, MatPow, Mul, Power, Softmax, Sum, Trace, Transpose, Var, postorder, variables,
)

__all__ = ["generate", "compile_function", "BACKENDS"]

BACKENDS = ("numpy", "jax", "torch")

# Python precedence levels: higher binds tighter. MATMUL is `*`/`@` too, but a product
# `a @ b` is parenthesized where a scalar multiplies it: 2.0 * (A @ B) scales the result,
# not an operand (and reads as the formula does).
ADD, MATMUL, MUL, UNARY, POW, ATOM = 1, 1.5, 2, 3, 4, 5

_LINE = 76  # inline expressions longer than this get their own local


# ----------------------------------------------------------------------------- backends

class _Backend:
    """How one array library spells each operation. `{}` is the operand."""

    def __init__(self, name: str, imports: list[str], mod: str, funcs: dict[str, str],
                 ops: dict[str, str], helpers: dict[str, str]) -> None:
        self.name = name
        self.imports = imports
        self.mod = mod
        self.funcs = funcs
        self.ops = ops
        self.helpers = helpers


_NUMPY_HELPERS = {
    "_sigmoid": '''def _sigmoid(x):
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))''',
    "_softmax": '''def _softmax(v):
    e = np.exp(v - np.max(v))
    return e / np.sum(e)''',
    "_logsumexp": '''def _logsumexp(v):
    m = np.max(v)
    return m + np.log(np.sum(np.exp(v - m)))''',
}

_BACKENDS: dict[str, _Backend] = {
    "numpy": _Backend(
        "numpy", ["import numpy as np"], "np",
        funcs={"exp": "np.exp({})", "log": "np.log({})", "sin": "np.sin({})", "cos": "np.cos({})",
               "tanh": "np.tanh({})", "sigmoid": "_sigmoid({})", "softplus": "np.logaddexp(0.0, {})",
               "relu": "np.maximum({}, 0.0)", "abs": "np.abs({})", "sign": "np.sign({})",
               "step": "np.heaviside({}, 0.0)"},
        ops={"sqrt": "np.sqrt({})", "sum": "np.sum({})", "trace": "np.trace({})",
             "det": "np.linalg.det({})", "logdet": "np.linalg.slogdet({})[1]",
             "inv": "np.linalg.inv({})", "matpow": "np.linalg.matrix_power({}, {})",
             "diagmat": "np.diagflat({})", "diagvec": "np.diagonal({}).reshape(-1, 1)",
             "softmax": "_softmax({})", "logsumexp": "_logsumexp({})",
             "multi_dot": "np.linalg.multi_dot([{}])", "rowsum": "np.sum({}, axis=1, keepdims=True)",
             "eye": "np.eye({})", "full": "np.full(({}, {}), {})",
             "ones": "np.ones(({}, {}))", "zeros_like": "np.zeros(np.shape({}))", "zeros": "np.zeros(({}, {}))",
             "value": "float(np.reshape({}, ()))", "scalar_grad": "np.reshape({}, np.shape({}))",
             "column": "np.reshape({0}, (-1, 1)) if np.ndim({0}) == 1 else {0}"},
        helpers=_NUMPY_HELPERS),
    "jax": _Backend(
        "jax", ["import jax", "import jax.numpy as jnp"], "jnp",
        funcs={"exp": "jnp.exp({})", "log": "jnp.log({})", "sin": "jnp.sin({})", "cos": "jnp.cos({})",
               "tanh": "jnp.tanh({})", "sigmoid": "jax.nn.sigmoid({})", "softplus": "jax.nn.softplus({})",
               "relu": "jax.nn.relu({})", "abs": "jnp.abs({})", "sign": "jnp.sign({})",
               "step": "jnp.heaviside({}, 0.0)"},
        ops={"sqrt": "jnp.sqrt({})", "sum": "jnp.sum({})", "trace": "jnp.trace({})",
             "det": "jnp.linalg.det({})", "logdet": "jnp.linalg.slogdet({})[1]",
             "inv": "jnp.linalg.inv({})", "matpow": "jnp.linalg.matrix_power({}, {})",
             "diagmat": "jnp.diagflat({})", "diagvec": "jnp.diagonal({}).reshape(-1, 1)",
             "softmax": "jax.nn.softmax({}, axis=0)", "logsumexp": "jax.nn.logsumexp({})",
             "multi_dot": "jnp.linalg.multi_dot([{}])", "rowsum": "jnp.sum({}, axis=1, keepdims=True)",
             "eye": "jnp.eye({})", "full": "jnp.full(({}, {}), {})",
             "ones": "jnp.ones(({}, {}))", "zeros_like": "jnp.zeros(jnp.shape({}))", "zeros": "jnp.zeros(({}, {}))",
             "value": "jnp.reshape({}, ())", "scalar_grad": "jnp.reshape({}, jnp.shape({}))",
             "column": "jnp.reshape({0}, (-1, 1)) if jnp.ndim({0}) == 1 else {0}"},
        helpers={}),
    "torch": _Backend(
        "torch", ["import torch"], "torch",
        funcs={"exp": "torch.exp({})", "log": "torch.log({})", "sin": "torch.sin({})",
               "cos": "torch.cos({})", "tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})",
               "softplus": "torch.nn.functional.softplus({})", "relu": "torch.relu({})",
               "abs": "torch.abs({})", "sign": "torch.sign({})",
               "step": "torch.heaviside({0}, torch.zeros_like({0}))"},
        ops={"sqrt": "torch.sqrt({})", "sum": "torch.sum({})", "trace": "torch.trace({})",
             "det": "torch.linalg.det({})", "logdet": "torch.linalg.slogdet({})[1]",
             "inv": "torch.linalg.inv({})", "matpow": "torch.linalg.matrix_power({}, {})",
             "diagmat": "torch.diag({}.reshape(-1))", "diagvec": "torch.diagonal({}).reshape(-1, 1)",
             "softmax": "torch.softmax({}, dim=0)", "logsumexp": "torch.logsumexp({}.reshape(-1), 0)",
             "multi_dot": "torch.linalg.multi_dot([{}])", "rowsum": "torch.sum({}, dim=1, keepdim=True)",
             "eye": "torch.eye({}, dtype=_dtype)", "full": "torch.ones(({}, {}), dtype=_dtype).mul({})",
             "ones": "torch.ones(({}, {}), dtype=_dtype)", "zeros_like": "torch.zeros_like({})", "zeros": "torch.zeros(({}, {}), dtype=_dtype)",
             "value": "torch.reshape({}, ())", "scalar_grad": "torch.reshape(torch.as_tensor({}), {}.shape)",
             "column": "{0}.reshape(-1, 1) if {0}.dim() == 1 else {0}"},
        helpers={}),
}


# ----------------------------------------------------------------------------- transposes outward

def _is_free_T(e: Expr) -> bool:
    """Can e be transposed without a Transpose node?"""
    return e.is_scalar or isinstance(e, (Transpose, Identity, Fill, Const))


def _T(e: Expr) -> Expr:
    """e' with no new node where none is needed."""
    if e.is_scalar:
        return e
    if isinstance(e, Transpose):
        return e.arg
    if isinstance(e, Identity):
        return e
    if isinstance(e, Fill):
        return Fill(e.value, (e.dims[1], e.dims[0]))
    return Transpose(e)


def _nT(es: tuple[Expr, ...] | list[Expr]) -> int:
    return sum(1 for e in es if isinstance(e, Transpose))


def _key(e: Expr, memo: dict[Expr, int]) -> int:
    """A structural hash that, unlike hash(), is the same in every process (it orders spellings)."""
    k = memo.get(e)
    if k is None:
        h = hashlib.blake2b(digest_size=8)
        h.update(type(e).__name__.encode())
        for c in e.children():
            h.update(_key(c, memo).to_bytes(8, "little"))
        for name in ("name", "dims", "value", "n", "exponent", "k", "kind"):
            if hasattr(e, name) and not isinstance(getattr(e, name), Expr):
                h.update(repr(getattr(e, name)).encode())
        k = memo[e] = int.from_bytes(h.digest(), "little")
    return k


def _outward(e: Expr, kids: tuple[Expr, ...], memo: dict[Expr, int]) -> Expr:
    """`e` over canonical children, spelled canonically up to a transpose.

    A product, sum or entrywise product and its transposed twin (X'*W' and (W*X)',
    P*X' + X*P' and its transpose) get the same inner node: of the two spellings the
    one with fewer inner transposes, ties broken by a fixed order. Entrywise functions
    move a transpose outward (tanh(A') is tanh(A)'). The result equals `e`; what it
    buys is that equal values become equal nodes, which is what sharing needs.
    """
    if isinstance(e, Transpose):
        return _T(kids[0])
    if isinstance(e, Power) and e.exponent < 0 and e.exponent != -1:
        # x.^-p as 1 ./ x.^p: the x.^p (a sqrt, a square) is then shared with F where F has it
        inner = _outward(Power(kids[0], -e.exponent), kids, memo)
        return _T(Power(inner.arg, Fraction(-1))) if isinstance(inner, Transpose) else Power(inner, Fraction(-1))
    if isinstance(e, (Func, Power, Inverse, MatPow)):
        a = kids[0]
        if isinstance(a, Transpose):
            return Transpose(e.with_children((a.arg,)))
        return e.with_children(kids)
    if isinstance(e, (Sum, Trace, DiagVec, LogDet, Det)):
        a = kids[0]
        return e.with_children((a.arg,) if isinstance(a, Transpose) else kids)
    if isinstance(e, (Add, Hadamard)) and not e.is_scalar:
        same = e.with_children(kids)
        if not any(isinstance(k, Transpose) for k in kids):
            return same
        flipped = type(e)(tuple(_T(k) for k in kids))
        if (_nT(flipped.children()), _key(flipped, memo)) < (_nT(kids), _key(same, memo)):
            return Transpose(flipped)
        return same
    if isinstance(e, Mul):
        scalars = [k for k in kids if k.is_scalar]
        chain = [k for k in kids if not k.is_scalar]
        if scalars and len(chain) > 1:  # 2*W'*W*X is 2*(W'*W*X): the bare chain can be shared
            return Mul(tuple(scalars) + (_outward(Mul(tuple(chain)), tuple(chain), memo),))
        if e.is_scalar:
            return e.with_children(kids)
        same = e.with_children(kids)
        flipped = Mul(tuple(scalars + [_T(k) for k in reversed(chain)]))
        if (_nT(flipped.factors), _key(flipped, memo)) < (_nT(chain), _key(same, memo)):
            return Transpose(flipped)
        return same
    return e.with_children(kids) if kids else e


def _transposes_outward(roots: list[Expr]) -> list[Expr]:
    memo: dict[Expr, Expr] = {}
    keys: dict[Expr, int] = {}
    out = []
    for r in roots:
        for e in postorder(r):
            if e not in memo:
                memo[e] = _outward(e, tuple(memo[c] for c in e.children()), keys)
        out.append(memo[r])
    return out


# ----------------------------------------------------------------------------- printing

def _number(v: Fraction) -> tuple[str, int]:
    if v.denominator == 1:
        s = f"{float(v.numerator)!r}" if abs(v.numerator) < 10**15 else f"{v.numerator}.0"
    else:
        f = float(v)
        s = repr(f) if Fraction(repr(f)) == v else f"({v.numerator} / {v.denominator})"
    if s.startswith("-"):
        return s, UNARY
    return s, ATOM


def _py_name(name: str, taken: set[str]) -> str:
    base = name if name.isidentifier() and not keyword.iskeyword(name) else \
        "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in name).lstrip("0123456789") or "v"
    if keyword.iskeyword(base):
        base += "_"
    out = base
    while out in taken:
        out += "_"
    taken.add(out)
    return out


def _sub_key(sub: list[tuple[Expr, bool]], memo: dict[Expr, int]) -> tuple[tuple, bool]:
    """A sub-chain's identity up to a transpose, and whether `sub` is the transposed spelling.
    (A*B)' = B'*A': the same factors reversed with every flip toggled. `memo` caches `_key`."""
    here = tuple((f, flip) for f, flip in sub)
    there = tuple((f, not flip) for f, flip in reversed(sub))
    rank = lambda t: [(_key(f, memo), flip) for f, flip in t]  # noqa: E731 - a deterministic order
    return (here, False) if rank(here) <= rank(there) else (there, True)


class _Plan:
    """The order of one chain: split[(i, j)] = k means chain[i..j] = chain[i..k] @ chain[k+1..j]."""

    def __init__(self, split: dict[tuple[int, int], int]) -> None:
        self.split = split

    def products(self, chain: list[tuple[Expr, bool]], memo: dict[Expr, int]) -> list[tuple]:
        """The keys of the sub-products this order forms or reuses (not the whole chain)."""
        out = []
        whole = (0, len(chain) - 1)
        stack = [whole]
        while stack:
            i, j = stack.pop()
            if i == j:
                continue
            if (i, j) != whole:
                out.append(_sub_key(chain[i:j + 1], memo)[0])
            if (i, j) in self.split:
                k = self.split[(i, j)]
                stack += [(i, k), (k + 1, j)]
        return out


def _order_chain(chain: list[tuple[Expr, bool]], dims: list[tuple[int, int]], available: set[tuple],
                 memo: dict[Expr, int]) -> _Plan:
    """The classic matrix-chain dynamic programme, where a sub-product already formed by an
    earlier chain costs nothing (it is not split further: it is reused whole)."""
    n = len(chain)
    cost: dict[tuple[int, int], int] = {(i, i): 0 for i in range(n)}
    split: dict[tuple[int, int], int] = {}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            if length < n and _sub_key(chain[i:j + 1], memo)[0] in available:
                cost[(i, j)] = 0
                continue
            best = None
            for k in range(i, j):
                c = cost[(i, k)] + cost[(k + 1, j)] + dims[i][0] * dims[k][1] * dims[j][1]
                if best is None or c < best[0]:
                    best = (c, k)
            cost[(i, j)], split[(i, j)] = best  # type: ignore[misc]
    return _Plan(split)


class _Printer:
    """Prints the union DAG of the roots as statements, in postorder."""

    def __init__(self, roots: list[Expr], backend: _Backend, var_names: dict[str, str],
                 dim_names: dict[str, str], taken: set[str], sizes: dict[str, int] | None = None) -> None:
        self.b = backend
        self.sizes = dict(sizes or {})
        self.var_names = var_names
        self.dim_names = dim_names
        self.taken = taken
        self.lines: list[str] = []
        self.helpers: set[str] = set()
        self.uses_dtype = False
        self.count = 0
        self.order: list[Expr] = []
        seen: set[Expr] = set()
        for r in roots:
            for e in postorder(r):
                if e not in seen:
                    seen.add(e)
                    self.order.append(e)
        self.uses: dict[Expr, int] = {e: 0 for e in self.order}
        self.parent: dict[Expr, Expr] = {}
        self.parents: dict[Expr, list[Expr]] = {}
        for e in self.order:
            for c in e.children():
                self.uses[c] += 1
                self.parent[c] = e
                self.parents.setdefault(c, []).append(e)
        for r in roots:
            self.uses[r] += 1
        self.roots = set(roots)
        self.code: dict[Expr, tuple[str, int]] = {}
        self._absorbed_memo: dict[Expr, bool] = {}
        self.lazy_memo: dict[Expr, bool] = {}
        self.plans: dict[tuple[tuple[Expr, bool], ...], _Plan] = {}
        self.sub_uses: dict[tuple, int] = {}
        self.sub_names: dict[tuple, tuple[str, bool]] = {}
        self.key_memo: dict[Expr, int] = {}
        self._plan_chains()

    # -- names and calls
    def fresh(self) -> str:
        while True:
            self.count += 1
            n = f"t{self.count}"
            if n not in self.taken:
                self.taken.add(n)
                return n

    def dim(self, d: int | str) -> str:
        return str(d) if isinstance(d, int) else self.dim_names[d]

    def call(self, op: str, *args: str) -> tuple[str, int]:
        tpl = self.b.ops[op]
        if "_dtype" in tpl:
            self.uses_dtype = True
        if tpl.startswith("_"):
            self.helpers.add(tpl.split("(")[0])
        return tpl.format(*args), ATOM

    def ref(self, e: Expr, prec: int) -> str:
        s, p = self.code[e]
        return f"({s})" if p < prec else s

    def arg(self, e: Expr) -> str:
        """Text of e as a function argument (no outer parentheses needed)."""
        return self.code[e][0]

    # -- structure decisions
    def _cheap(self, e: Expr) -> bool:
        """Worth no local even when shared: a variable, a number, a transposed variable."""
        return isinstance(e, (Var, Const)) or (isinstance(e, Transpose) and isinstance(e.arg, Var))

    def absorbed(self, e: Expr) -> bool:
        """A single-use product, or transposed product, that the product using it flattens into its
        own chain (so the whole chain is ordered at once) or that tr/diag reads without forming."""
        memo = self._absorbed_memo
        if e in memo:
            return memo[e]
        out = False
        if self.uses[e] == 1 and e not in self.roots and not e.is_scalar:
            p = self.parent.get(e)
            if isinstance(e, Mul):
                out = isinstance(p, (Mul, Trace, DiagVec, Transpose))
        if isinstance(e, Transpose) and e not in self.roots and not e.is_scalar and self.parents.get(e) \
                and all(isinstance(p, Mul) for p in self.parents[e]):
            out = True  # every user is a chain, which reads it as its argument flipped: no local t = r.T
        memo[e] = out
        return out

    def flatten(self, e: Expr, flip: bool, scalars: list[Expr], out: list[tuple[Expr, bool]]) -> None:
        """e (transposed if flip) as scalar factors and a chain of (node, transposed) factors."""
        if isinstance(e, Transpose):
            a = e.arg
            if isinstance(a, Mul) and self.uses[a] == 1 and a not in self.roots:
                self.flatten(a, not flip, scalars, out)  # (A*B)' read as B'*A' inside the chain
            else:
                out.append((a, not flip))  # computed once elsewhere (or a leaf): used flipped
            return
        scalars.extend(f for f in e.factors if f.is_scalar)  # type: ignore[attr-defined]
        facs = [f for f in e.factors if not f.is_scalar]  # type: ignore[attr-defined]
        for f in (reversed(facs) if flip else facs):
            if self.absorbed(f):
                self.flatten(f, flip, scalars, out)
            else:
                out.append((f, flip))

    # -- broadcasting instead of forming constant-filled matrices
    def _compact(self, e: Expr) -> Expr | None:
        """The smaller operand that broadcasts to e: the value of a Fill, the row r of ones*r,
        the column c of c*ones'. None when e has no such form."""
        if isinstance(e, Fill):
            return e.value
        if isinstance(e, Mul) and not e.is_scalar and len(e.factors) == 2:
            a, b = e.factors
            if _is_ones(a) and a.shape[1] == 1 and b.shape[0] == 1:
                return b
            if _is_ones(b) and b.shape[0] == 1 and a.shape[1] == 1:
                return a
        return None

    def _could_be_compact(self, e: Expr) -> bool:
        while isinstance(e, (Func, Power)):
            e = e.arg
        return self._compact(e) is not None

    def lazy(self, e: Expr) -> bool:
        """Is e printed in its compact (broadcast) form? Only where every use is an entrywise
        operation that broadcasts it against a full-size operand."""
        if e in self.roots or e.is_scalar:
            return False
        if not (self._compact(e) is not None or
                isinstance(e, (Func, Power)) and self.lazy_memo.get(e.arg, False)):
            return False
        for p in self.parents.get(e, ()):
            if isinstance(p, (Add, Hadamard)):
                if not any(s is not e and not s.is_scalar and not self._could_be_compact(s)
                           for s in p.children()):
                    return False
            elif not (isinstance(p, (Func, Power)) and self.lazy(p)):
                return False
        return True

    # -- chain orders from known sizes
    def _size(self, f: Expr, flip: bool) -> tuple[int, int] | None:
        r, c = (self.sizes.get(d, d) if isinstance(d, str) else d for d in f.shape)
        if not (isinstance(r, int) and isinstance(c, int)):
            return None
        return (c, r) if flip else (r, c)

    def _chain_of(self, e: Expr) -> list[tuple[Expr, bool]] | None:
        """The matrix chain `mul` prints for e, or None when e is not printed as a chain."""
        printed_as_chain = (isinstance(e, Mul) and not self.absorbed(e)) or (
            isinstance(e, Transpose) and isinstance(e.arg, Mul) and self.absorbed(e.arg) and not self.absorbed(e))
        if not printed_as_chain:
            return None
        chain: list[tuple[Expr, bool]] = []
        self.flatten(e, False, [], chain)
        return chain

    def _plan_chains(self) -> None:
        """With every size known, fix each chain's order now (matrix-chain DP) and share the
        sub-products chains have in common, transposed or not: F's W*(X*V) and ∇W's
        R*(X*V)' compute X*V once. Chains are planned in printing order, so a later chain
        can use what an earlier one forms (at no cost) but not the other way round."""
        if not self.sizes and not any(isinstance(d, int) and d != 1 for e in self.order for d in e.shape):
            return
        available: set[tuple] = set()
        for e in self.order:
            chain = self._chain_of(e)
            if chain is None or len(chain) < 3:
                continue
            if any(isinstance(f, DiagMat) for f, _ in chain):
                continue  # printed as row/column scaling by `product`
            dims = [self._size(f, flip) for f, flip in chain]
            if any(d is None for d in dims):
                continue
            plan = _order_chain(chain, dims, available, self.key_memo)  # type: ignore[arg-type]
            self.plans[tuple(chain)] = plan
            for key in plan.products(chain, self.key_memo):
                self.sub_uses[key] = self.sub_uses.get(key, 0) + 1
                available.add(key)

    def planned(self, chain: list[tuple[Expr, bool]], plan: "_Plan", i: int, j: int, top: bool = True
                ) -> tuple[str, int]:
        """Text of chain[i..j] in the planned order; a sub-product used by several chains is
        computed once, as a local, where it first appears."""
        if i == j:
            return self.factor(*chain[i])
        key, flipped = _sub_key(chain[i:j + 1], self.key_memo)
        if not top and key in self.sub_names:
            name, stored_flipped = self.sub_names[key]
            return (name + ".T" if stored_flipped != flipped else name), ATOM
        if (i, j) not in plan.split:  # planned as reused, but never named: form it here after all
            return self.call("multi_dot", ", ".join(self.factor(*c)[0] for c in chain[i:j + 1]))
        k = plan.split[(i, j)]
        a, pa = self.planned(chain, plan, i, k, False)
        b, pb = self.planned(chain, plan, k + 1, j, False)
        text = f"{a if pa >= MUL else f'({a})'} @ {b if pb > MUL else f'({b})'}"
        if not top and self.sub_uses.get(key, 0) > 1:
            name = self.fresh()
            self.lines.append(f"{name} = {text}")
            self.sub_names[key] = (name, flipped)
            return name, ATOM
        return text, MATMUL

    # -- products
    def factor(self, f: Expr, flip: bool) -> tuple[str, int]:
        if not flip:
            return self.code[f]
        if isinstance(f, Transpose):
            return self.code[f.arg]
        if f.is_scalar or isinstance(f, Identity):
            return self.code[f]
        return self.ref(f, ATOM) + ".T", ATOM

    def product(self, chain: list[tuple[Expr, bool]]) -> tuple[str, int]:
        """A matrix chain in the cheapest order; diag(v) factors become row/column scaling."""
        plan = self.plans.get(tuple(chain))
        if plan is not None:
            return self.planned(chain, plan, 0, len(chain) - 1)
        parts: list[tuple[str, int]] = []
        lead: list[str] = []  # vectors of leading diag(v) factors: they scale the next factor's rows
        for f, flip in chain:
            if isinstance(f, DiagMat) and self.uses[f] == 1 and len(chain) > 1:
                if parts:  # A*diag(v): scale A's columns
                    t, p = parts[-1]
                    parts[-1] = (f"{t if p >= MUL else f'({t})'} * {self.ref(f.arg, ATOM)}.T", MUL)
                else:
                    lead.append(self.ref(f.arg, MUL + 1))
                continue
            t, p = self.factor(f, flip)
            if lead:
                t, p = " * ".join(lead + [t if p > MUL else f"({t})"]), MUL
                lead = []
            parts.append((t, p))
        if lead:  # only diagonal factors
            return self.call("diagmat", " * ".join(lead))
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            (a, pa), (b, pb) = parts
            return f"{a if pa >= MUL else f'({a})'} @ {b if pb > MUL else f'({b})'}", MATMUL
        return self.call("multi_dot", ", ".join(t for t, _ in parts))

    def scaled(self, scalars: list[Expr], body: tuple[str, int] | None, negate: bool = False) -> tuple[str, int]:
        """scalar factors times body: numbers folded into one leading coefficient."""
        coef = Fraction(-1 if negate else 1)
        items: list[str] = []
        for s in scalars:
            if isinstance(s, Const):
                coef *= s.value
            else:
                items.append(self.ref(s, MUL + 1))
        if body is not None:
            items.append(body[0] if body[1] >= MUL else f"({body[0]})")
        if not items:
            return _number(coef)
        if len(items) == 1 and body is not None:
            text, prec = body
        elif len(items) == 1:
            text, prec = items[0], MUL + 1
        else:
            text, prec = " * ".join(items), MUL
        if coef == 1:
            return text, prec
        if coef == -1:
            return "-" + (text if prec >= UNARY else f"({text})"), UNARY
        c, _ = _number(abs(coef))
        text = f"{c} * {text if prec >= MUL else f'({text})'}"
        return ("-" + text, UNARY) if coef < 0 else (text, MUL)

    def mul(self, e: Expr, negate: bool = False) -> tuple[str, int]:
        scalars: list[Expr] = []
        chain: list[tuple[Expr, bool]] = []
        self.flatten(e, False, scalars, chain)
        return self.scaled(scalars, self.product(chain) if chain else None, negate)

    def power(self, a: Expr, p: Fraction) -> tuple[str, int]:
        if p == 1:
            return self.code[a]
        if p == Fraction(1, 2):
            return self.call("sqrt", self.arg(a))
        if p == -1:
            return f"1.0 / {self.ref(a, MUL + 1)}", MUL
        if p == Fraction(-1, 2):
            return f"1.0 / {self.call('sqrt', self.arg(a))[0]}", MUL
        n = str(p.numerator) if p.denominator == 1 else _number(p)[0]
        if n.startswith("-"):
            n = f"({n})"
        return f"{self.ref(a, POW + 1)} ** {n}", POW

    # -- one node
    def render(self, e: Expr) -> tuple[str, int]:
        b = self.b
        if isinstance(e, Var):
            return self.var_names[e.name], ATOM
        if isinstance(e, Const):
            return _number(e.value)
        if isinstance(e, Identity):
            return self.call("eye", self.dim(e.n))
        if isinstance(e, Fill):
            r, c = (self.dim(d) for d in e.dims)
            if isinstance(e.value, Const) and e.value.value in (0, 1):
                return self.call("zeros" if e.value.value == 0 else "ones", r, c)
            return self.call("full", r, c, self.arg(e.value))
        if isinstance(e, Transpose):
            if self.absorbed(e.arg):  # (A*B)' printed as B'*A'
                return self.mul(e)
            return self.ref(e.arg, ATOM) + ".T", ATOM
        if isinstance(e, Add):
            parts: list[str] = []
            for i, t in enumerate(e.terms):
                neg, (s, p) = self.term(t)
                if i == 0:
                    parts.append("-" + (s if p >= UNARY else f"({s})") if neg else s)
                elif neg:
                    parts.append(" - " + (s if p > ADD else f"({s})"))
                else:
                    parts.append(" + " + (s if p >= ADD else f"({s})"))
            return "".join(parts), ADD
        if isinstance(e, Mul):
            return self.mul(e)
        if isinstance(e, Hadamard):
            num = [f for f in e.factors if not (isinstance(f, Power) and f.exponent < 0 and self.uses[f] == 1)]
            den = [f for f in e.factors if isinstance(f, Power) and f not in num]
            s = " * ".join(self.ref(f, MUL if i == 0 else MUL + 1) for i, f in enumerate(num)) if num else "1.0"
            for d in den:
                t, p = self.power(d.arg, -d.exponent)  # type: ignore[attr-defined]
                s += " / " + (t if p > MUL else f"({t})")
            return s, MUL
        if isinstance(e, Power):
            return self.power(e.arg, e.exponent)
        if isinstance(e, Func):
            text = b.funcs[e.name]
            if text.startswith("_"):
                self.helpers.add(text.split("(")[0])
            return text.format(self.arg(e.arg)), ATOM
        if isinstance(e, (Trace, DiagVec)):
            op = "trace" if isinstance(e, Trace) else "diagvec"
            if not self.absorbed(e.arg):
                return self.call(op, self.arg(e.arg))
            scalars: list[Expr] = []
            chain: list[tuple[Expr, bool]] = []
            self.flatten(e.arg, False, scalars, chain)
            if len(chain) >= 2:  # tr(P*Q) = sum(P .* Q'), diag(P*Q) = rowsum(P .* Q'): P*Q is never formed
                lt, lp = self.product(chain[:-1])
                rt, rp = self.factor(chain[-1][0], not chain[-1][1])
                inner = f"{lt if lp >= MUL else f'({lt})'} * {rt if rp > MUL else f'({rt})'}"
                return self.scaled(scalars, self.call("sum" if isinstance(e, Trace) else "rowsum", inner))
            return self.scaled(scalars, self.call(op, self.product(chain)[0]))
        unary = {Sum: "sum", Det: "det", LogDet: "logdet", Inverse: "inv", DiagMat: "diagmat",
                 Softmax: "softmax", LogSumExp: "logsumexp"}
        if type(e) in unary:
            return self.call(unary[type(e)], self.arg(e.arg))  # type: ignore[attr-defined]
        if isinstance(e, MatPow):
            return self.call("matpow", self.arg(e.arg), str(e.k))
        raise NotImplementedError(f"codegen: no rule for {type(e).__name__}")  # pragma: no cover

    def term(self, t: Expr) -> tuple[bool, tuple[str, int]]:
        """(negative?, text of |t|) for a term of a sum, so sums print as a - b."""
        if isinstance(t, Mul) and self.code[t][1] != ATOM:
            coef = Fraction(1)
            for f in t.factors:
                if isinstance(f, Const):
                    coef *= f.value
            if coef < 0:
                return True, self.mul(t, negate=True)
        return False, self.code[t]

    # -- the walk
    def emit(self, e: Expr, name: str | None = None) -> None:
        if name is None and self.absorbed(e):
            return  # its parent prints it as part of a larger chain
        if name is None and self.lazy(e):
            self.lazy_memo[e] = True
            small = self._compact(e)
            if small is not None:
                self.code[e] = self.code[small]
                return
        s, p = self.render(e)
        if name is not None or (not self._cheap(e) and (self.uses[e] > 1 or len(s) > _LINE)):
            n = name or self.fresh()
            self.lines.append(f"{n} = {s}")
            self.code[e] = (n, ATOM)
        else:
            self.code[e] = (s, p)

    def run(self, root_names: dict[Expr, str]) -> None:
        for e in self.order:
            if e in root_names and not isinstance(e, (Var, Const)):
                self.emit(e, root_names[e])
            else:
                self.emit(e)


def _is_ones(e: Expr) -> bool:
    return isinstance(e, Fill) and isinstance(e.value, Const) and e.value.value == 1


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _strip(s: str) -> str:
    """Drop one pair of redundant outer parentheses."""
    if s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        return s[1:-1]
    return s


# ----------------------------------------------------------------------------- public API

class _Program:
    """The shared part of every generated function: parameters, dimension lookups and the
    statements computing `roots` (named as `run` is told)."""

    def __init__(self, roots: list[Expr], backend: str, order: Iterable[str], extra_vars: Iterable[str],
                 reserved: set[str], sizes: dict[str, int] | None) -> None:
        b = self.b = _BACKENDS[backend]
        # Variables: those of the roots, first those named in `order`; `extra_vars` (wrt
        # variables absent from F) still come as arguments.
        found: dict[str, Var] = {}
        for r in roots:
            for n, v in variables(r).items():
                found.setdefault(n, v)
        allvars = {n: found[n] for n in order if n in found}
        allvars.update(found)
        self.allvars = allvars
        taken = set(reserved) | {b.mod, "jax", "torch", "np", "jnp", "_dtype", "float", *b.helpers}
        self.var_names = {n: _py_name(n, taken) for n in allvars}
        self.params = list(self.var_names.values())
        for n in extra_vars:
            if n not in allvars:
                self.params.append(_py_name(n, taken))
                self.var_names[n] = self.params[-1]
        self.roots = _transposes_outward(roots)
        dims: list[str] = []
        for r in self.roots:
            for e in postorder(r):
                for d in e.shape:
                    if isinstance(d, str) and d not in dims:
                        dims.append(d)
        dim_source: dict[str, str] = {}
        for v in allvars.values():
            for axis, d in enumerate(v.dims):
                if isinstance(d, str) and d not in dim_source:
                    dim_source[d] = f"{self.var_names[v.name]}.shape[{axis}]"
        self.dim_names = {d: _py_name(d if d.isidentifier() else "n", taken) for d in dims}
        self.printer = _Printer(self.roots, b, self.var_names, self.dim_names, taken, sizes)
        self.dims, self.dim_source = dims, dim_source

    def run(self, root_names: dict[Expr, str]) -> list[str]:
        """Print the statements; the lines before them read vectors and dimensions."""
        printer, b = self.printer, self.b
        printer.run(root_names)
        body: list[str] = []
        used_dims = [d for d in self.dims if any(self.dim_names[d] in _words(line) for line in printer.lines)]
        self.kwonly = {d: self.dim_names[d] for d in used_dims if d not in self.dim_source}
        for v in self.allvars.values():
            if v.dims[1] == 1 and v.dims[0] != 1:  # vectors are n×1 columns (1-D arrays accepted)
                nm = self.var_names[v.name]
                body.append(f"{nm} = {b.ops['column'].format(nm)}")
        for d in used_dims:
            if d in self.dim_source:
                body.append(f"{self.dim_names[d]} = {self.dim_source[d]}")
        if printer.uses_dtype:
            first = next((self.var_names[v.name] for v in self.allvars.values() if not v.is_scalar),
                         self.params[0])
            body.append(f"_dtype = {first}.dtype")
        return body + printer.lines

    def text(self, root: Expr) -> str:
        return self.printer.code[root][0]

    def source(self, name: str, doc: list[str], body: list[str]) -> str:
        sig = ", ".join(self.params + (["*", *self.kwonly.values()] if self.kwonly else []))
        lines = [*self.b.imports, ""]
        for h in sorted(self.printer.helpers):
            lines += ["", self.b.helpers[h], ""]
        lines += ["", f"def {name}({sig}):", *doc]
        lines += ["    " + ln for ln in body]
        return "\n".join(lines).replace("\n\n\n\n", "\n\n\n") + "\n"

    def shapes_text(self) -> str:
        return ", ".join(f"{self.var_names[v.name]}: {_dims_text(v.dims)}" for v in self.allvars.values())


def generate(f: Expr, gradients: dict[str, Expr], backend: str = "numpy", *,
             name: str = "value_and_grad", order: Iterable[str] = (),
             sizes: dict[str, int] | None = None) -> str:
    """Python source of `name(<variables>)` returning (F, {variable: gradient}).

    `f` is the scalar function, `gradients` maps variable names to gradient
    expressions (as in `Derivation.gradients_ir`). The parameters are the variables,
    those named in `order` first in that order (pass `Derivation.variables` to follow
    the expression's text), then the others in order of appearance. See the module
    docstring for what the printed code does and its calling conventions.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    grads = dict(gradients)
    found = set(variables(f))
    for g in grads.values():
        found |= set(variables(g))
    absent = [n for n in grads if n not in found]  # their gradient is 0, shaped like the argument
    present = {n: g for n, g in grads.items() if n in found}
    prog = _Program([f] + list(present.values()), backend, order, grads,
                    {"value", "grads", *(f"grad_{n}" for n in grads)}, sizes)
    b, var_names = prog.b, prog.var_names
    root_names: dict[Expr, str] = {prog.roots[0]: "value"}
    grad_roots = dict(zip(present, prog.roots[1:]))
    for n, g in grad_roots.items():
        root_names.setdefault(g, f"grad_{var_names[n]}")
    body = prog.run(root_names)
    # Results: the value as a scalar, each gradient with its variable's shape.
    out_items = []
    for n in grads:
        gname = f"grad_{var_names[n]}"
        if n in absent:
            body.append(f"{gname} = {b.ops['zeros_like'].format(var_names[n])}")
            out_items.append(f"{n!r}: {gname}")
            continue
        text = prog.text(grad_roots[n])
        v = prog.allvars.get(n)
        if v is not None and v.is_scalar:
            body.append(f"{gname} = {b.ops['scalar_grad'].format(text, var_names[n])}")
        elif text != gname:
            body.append(f"{gname} = {text}")
        out_items.append(f"{n!r}: {gname}")
    body.append(f"return {b.ops['value'].format(prog.text(prog.roots[0]))}, {{{', '.join(out_items)}}}")

    from .printers import to_text
    doc = [f'    """F = {to_text(f)}',
           "",
           f"    Returns (F, {{{', '.join(repr(n) for n in grads)}}}); shapes: {prog.shapes_text()}.",
           f"    Generated by matgrad ({backend}); common subexpressions are computed once.",
           '    """']
    return prog.source(name, doc, body)


def generate_expression(expr: Expr, backend: str = "numpy", *, name: str = "f",
                        sizes: dict[str, int] | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
    """Python source of `name(<variables>, *, <dims>)` returning the value of `expr` (an array,
    or a number where `expr` is 1×1); its parameters ({variable: parameter}); and the
    keyword-only dimension parameters ({dim: parameter}) it takes for the dimensions no
    variable carries. The same printer as `generate`: `lambdify` and the verifier run this code."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    prog = _Program([expr], backend, (), (), {"result"}, sizes)
    body = prog.run({prog.roots[0]: "result"} if not isinstance(prog.roots[0], (Var, Const)) else {})
    body.append(f"return {prog.text(prog.roots[0])}")
    from .printers import to_text
    shapes = f"; shapes: {prog.shapes_text()}" if prog.allvars else ""
    doc = [f'    """{to_text(expr)}{shapes}. Generated by matgrad ({backend})."""']
    src = prog.source(name, doc, body)
    return src, dict(prog.var_names), dict(prog.kwonly)


def lambdify(expr: Expr, sizes: dict[str, int] | None = None) -> Callable[..., Any]:
    """`expr` as a NumPy function of keyword arrays, running the code `generate_expression` prints.

    It takes every variable of `expr` by keyword (names it does not use are ignored),
    accepts vectors as 1-D arrays or n×1 columns and scalars as floats, and returns a
    2-D array of `expr`'s shape, or a float when `expr` is 1×1. A missing variable
    raises TypeError naming it. Dimensions no variable carries come from `sizes`.
    """
    import numpy as np

    from .evaluate import _as_matrix, dim_sizes
    compiled, params, dim_params = compile_expression(expr)
    found = variables(expr)

    def fn(**arrays: Any) -> Any:
        missing = [n for n in found if n not in arrays]
        if missing:
            raise TypeError(f"missing value for variable{'s' if len(missing) > 1 else ''} "
                            + ", ".join(repr(n) for n in missing))
        env = {n: _as_matrix(arrays[n], v) for n, v in found.items()}
        dims = dim_sizes(expr, env, sizes)
        unknown = [d for d in dim_params if d not in dims]
        if unknown:
            raise TypeError(f"no variable carries the dimension {unknown[0]!r}: pass sizes={{{unknown[0]!r}: …}}")
        out = compiled(**{params[n]: a for n, a in env.items()}, **{p: dims[d] for d, p in dim_params.items()})
        shape = tuple(dims[d] if isinstance(d, str) else d for d in expr.shape)
        out = np.reshape(np.asarray(out, dtype=float), shape)
        return float(out[0, 0]) if shape == (1, 1) else out

    fn.__name__ = "matgrad_function"
    fn.__doc__ = f"Evaluate {expr!r}; keyword arguments: {', '.join(found) or '(none)'}."
    fn.variables = list(found)  # type: ignore[attr-defined]
    fn.source = compiled.source  # type: ignore[attr-defined]
    return fn


def compile_expression(expr: Expr) -> tuple[Callable[..., Any], dict[str, str], dict[str, str]]:
    """`generate_expression` (NumPy) then exec: the function, its variable parameters and its
    dimension parameters. What `lambdify` and the verifier run."""
    src, params, dims = generate_expression(expr, "numpy")
    fn = load(src, "f", "expression")
    fn.source = src  # type: ignore[attr-defined]
    return fn, params, dims


def _words(line: str) -> set[str]:
    import re
    return set(re.findall(r"[^\W\d]\w*", line))


def _dims_text(dims: tuple[int | str, int | str]) -> str:
    return f"{dims[0]}×{dims[1]}"


def compile_function(f: Expr, gradients: dict[str, Expr], backend: str = "numpy", *,
                     order: Iterable[str] = (), sizes: dict[str, int] | None = None) -> Callable:
    """`generate` then exec: the generated `value_and_grad` as a Python function."""
    src = generate(f, gradients, backend, order=order, sizes=sizes)
    fn = load(src, "value_and_grad", backend)
    fn.source = src  # type: ignore[attr-defined]
    return fn


def load(src: str, name: str, label: str) -> Callable[..., Any]:
    """The function `name` defined by `src`, source that this module generated from matgrad's
    own IR (names are grammar identifiers made safe by _py_name), never text from a user."""
    namespace: dict[str, Any] = {}
    exec(compile(src, f"<matgrad {label}>", "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]
