"""Numeric verification of claimed gradients by central finite differences.

A claim "∂f/∂X = G" is checked by numbers rather than trusted: symbolic dims get
small, distinct sizes (so a missing transpose cannot hide behind a square
shape), inputs are drawn at random from a fixed seed with a strategy suited to
how each variable is used (positive under log, well-conditioned under inv/det),
and every entry of G is compared with a central difference of f, re-checked at
other step sizes before anything is called a mismatch.

Symmetric and SPD variables are perturbed symmetrically (E_ij + E_ji), so the
gradient that verifies is the symmetric one, (G + G')/2 of the unconstrained
gradient G; an unsymmetrised claim is rejected with a note saying so.

Everything is deterministic: the same inputs and seed give the same report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping

import numpy as np

from . import ir
from .codegen import compile_expression
from .errors import NotScalarError
from .evaluate import DomainViolation, _Context, _Plan, _symbolic_dims
from .ir import Add, Const, Det, Expr, Fill, Func, Hadamard, Inverse, LogDet, MatPow, Mul, Power, Softmax, Var

__all__ = ["VerifyReport", "verify", "check_claim", "TOLERANCE"]

# Relative agreement required between a claim and finite differences.
TOLERANCE = 1e-5
# Central-difference step relative to max(1, |x_ij|): truncation error ~1e-10
# relative, rounding error ~1e-11·|f|, both far below TOLERANCE.
FD_STEP = 1e-5
# Rounding in one evaluation of f is taken as this many ulps of |f|; the
# resulting finite-difference noise floor keeps exact zeros from failing.
FD_NOISE_ULPS = 16.0
# Pattern diagnoses (sign error, transpose …) need only this much agreement.
DIAGNOSE_TOL = 1e-3
# Cap on the entries (directions) finite-differenced per random draw.
MAX_DIRECTIONS = 240
# Budget of node evaluations per draw for the first pass of finite differences.
MAX_NODE_EVALS = 300_000
# Attempts to find a point in f's domain for each draw.
TRIES_PER_DRAW = 20

# An entry is "hidden" at a point when it agrees only because it lies this far below the
# comparison floor (the largest entry, or f's rounding noise): sum(exp(30*x)) at a point
# with one large x_i hides every other entry. Hidden entries get a second look at points
# drawn at these smaller scales, where the floor is lower.
HIDDEN_FACTOR = 1e3
RESCALES = (0.1, 0.01)

_EPS = float(np.finfo(float).eps)
_SCHEDULE = ("primary", "primary", "primary", "positive", "positive", "near_identity",
             "small_positive", "small_normal")


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a numeric gradient check.

    status is "verified", "mismatch", "could not verify: domain" or "inconclusive";
    ok is True exactly when status is "verified" (every draw agreed).
    max_rel_error is the largest relative error seen (inf when nothing could be
    compared); checks the number of random draws compared; details the evidence
    (for a mismatch: variable, entry, finite-difference and claimed values, and a
    diagnosis such as a sign error or a missing transpose); sizes the size given
    to each symbolic dimension.
    """

    ok: bool
    status: str
    max_rel_error: float
    checks: int
    details: tuple[str, ...] = ()
    sizes: dict = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        size_text = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        size_note = f" (sizes {size_text})" if size_text else ""
        if self.status == "verified":
            head = (f"verified: the gradient agrees with central finite differences at "
                    f"{self.checks} random point{'s' if self.checks != 1 else ''}{size_note}, "
                    f"max relative error {self.max_rel_error:.1e}.")
        elif self.status == "mismatch":
            head = (f"mismatch: the gradient disagrees with central finite differences{size_note}, "
                    f"max relative error {self.max_rel_error:.2g}.")
        elif self.status.startswith("could not verify"):
            head = f"could not verify: no input in the domain of f was found{size_note}."
        else:
            head = (f"inconclusive: finite differences were too unstable to confirm or refute "
                    f"the gradient{size_note}.")
        return " ".join((head,) + self.details)


# ----------------------------------------------------------------------------- helpers

def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _entry_name(name: str, shape: tuple[int, int], pos: tuple[int, int]) -> str:
    """1-based, math-style index: x(2) for vectors, A(2,3) for matrices."""
    i, j = pos
    if shape == (1, 1):
        return name
    if shape[1] == 1:
        return f"{name}({i + 1})"
    if shape[0] == 1:
        return f"{name}(1,{j + 1})"
    return f"{name}({i + 1},{j + 1})"


def _show(expr: Expr) -> str:
    """Expression text for evidence lines; the printer is optional here."""
    try:
        from .printers import to_text  # local: printers may be absent or still changing
        return str(to_text(expr))
    except Exception:  # noqa: BLE001 - evidence must not fail because printing did
        return type(expr).__name__


class _Random:
    """Seeded draws on Python's Mersenne Twister, handed to NumPy as arrays.

    Not numpy.random: importing it costs a verified CLI call more than the verification
    does (it pulls in `secrets` and five bit generators), and the draws here are a few
    dozen numbers. The same seed gives the same draws on every machine.
    """

    def __init__(self, seed: int) -> None:
        import random
        self._r = random.Random(int(seed))

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        g = self._r.gauss
        return np.array([g(0.0, 1.0) for _ in range(math.prod(shape))]).reshape(shape)

    def uniform(self, low: float, high: float, shape: tuple[int, ...]) -> np.ndarray:
        u = self._r.uniform
        return np.array([u(low, high) for _ in range(math.prod(shape))]).reshape(shape)

    def permutation(self, n: int) -> list[int]:
        out = list(range(n))
        self._r.shuffle(out)
        return out

    def choice(self, n: int, k: int, replace: bool = False) -> list[int]:
        if replace:
            raise NotImplementedError("draws with replacement are not needed here")
        return self._r.sample(range(n), k)


def _size_assignments(names: list[str], rng: "_Random") -> list[dict[str, int]]:
    """Candidate sizes for the dims: distinct and seeded, then reversed, then all equal.

    Distinct sizes catch missing transposes; the reversed order flips every
    pairwise comparison (so inv(A'A) gets rows ≥ columns in one of the two); all
    equal is the last resort when only square shapes are in the domain.
    """
    if not names:
        return [{}]
    k = len(names)
    # Up to 11 dims get distinct sizes; more dims reuse them, so that an expression with
    # hundreds of dims is still checked on small matrices (sizes at most 12).
    base = [3, 4, 5, 6, 2] + list(range(7, 13))
    pool = (base * (k // len(base) + 1))[:max(4, k)]
    chosen = [pool[int(i)] for i in rng.permutation(len(pool))[:k]]
    # All equal (3, then 4: some functions are singular at every odd size, e.g. inv(A - A')).
    out = [dict(zip(names, chosen)), dict(zip(names, reversed(chosen))), {n: 3 for n in names},
           {n: 4 for n in names}]
    unique: list[dict[str, int]] = []
    for a in out:
        if a not in unique:
            unique.append(a)
    return unique


def _is_symmetric_kind(var: Var, shape: tuple[int, int]) -> bool:
    return var.kind in ("symmetric", "spd") and shape[0] == shape[1] and shape[0] > 1


def _always_positive(e: Expr) -> bool:
    """Positive whatever the inputs: then log needs no positive draws (log(softmax(a)))."""
    if isinstance(e, Softmax) or (isinstance(e, Func) and e.name in ("exp", "sigmoid")):
        return True
    if isinstance(e, Const):
        return e.value > 0
    if isinstance(e, Fill):
        return _always_positive(e.value)
    if isinstance(e, Add):
        return all(_always_positive(t) for t in e.terms)
    if isinstance(e, (Hadamard, Mul)) and all(f.is_scalar for f in e.children()) or isinstance(e, Hadamard):
        return all(_always_positive(f) for f in e.children())
    return False


def _draw(rng: "_Random", var: Var, shape: tuple[int, int], strategy: str,
          shrink: float = 1.0) -> np.ndarray:
    """A random value for `var` following `strategy`, respecting its kind; an unconstrained
    draw is scaled by `shrink`."""
    r, c = shape
    sym = _is_symmetric_kind(var, shape)
    if var.kind == "prob":  # a probability vector: positive entries summing to 1
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum()
    if var.kind == "spd" and sym:
        b = rng.standard_normal((r, r))
        return b @ b.T / r + np.eye(r)
    if strategy == "near_identity" and r == c:
        for _ in range(10):
            n = rng.standard_normal((r, r))
            if sym:
                n = (n + n.T) / 2
            x = 1.5 * np.eye(r) + 0.3 * n
            if np.linalg.det(x) > 0 and np.linalg.cond(x) < 1e3:
                return x
        return 1.5 * np.eye(r)
    if strategy in ("positive", "near_identity"):
        x = rng.uniform(0.5, 2.0, shape)
    elif strategy == "small_positive":
        x = rng.uniform(0.1, 0.5, shape)
    elif strategy == "small_normal":
        x = 0.1 * rng.standard_normal(shape)
    else:
        # A matrix is scaled by 1/√columns so that W*x stays of order 1: saturating maps
        # (tanh, sigmoid, softmax) then still respond to every input, and a wrong term
        # deep inside a network changes the value.
        x = shrink * rng.standard_normal(shape) / (np.sqrt(c) if r > 1 and c > 1 else 1.0)
    if sym:
        x = (x + x.T) / 2
    return x


def _diagnose(e: np.ndarray, c: np.ndarray, name: str, sym: bool, claim_word: str) -> list[str]:
    """Recognisable relations between a claim `c` and the truth `e` (finite differences)."""
    def norm(a: np.ndarray) -> float:
        return float(np.linalg.norm(a))

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return norm(a - b) <= DIAGNOSE_TOL * max(norm(a), norm(b), 1e-300)

    ne, nc = norm(e), norm(c)
    big = max(ne, nc)
    if big == 0:
        return []
    if ne <= 1e-8 * big:
        return [f"f does not change with {name} here (the true gradient is zero) but {claim_word} is not zero."]
    if nc <= 1e-8 * big:
        return [f"{claim_word.capitalize()} is zero but f does change with {name}."]
    if close(c, e):  # no pattern to name: the error is small next to the largest entries
        return [f"{claim_word.capitalize()} is close to the true gradient but not equal to it: they differ "
                f"by {norm(c - e) / ne:.2g} of its norm."]
    square = e.shape[0] == e.shape[1] and e.shape[0] > 1
    known = ((-1.0, "−1 × the true gradient: a sign error"),
             (2.0, "2 × the true gradient: a factor of 2 too large"),
             (0.5, "½ × the true gradient: a factor of 2 too small"))
    for k, text in known:
        if close(c, k * e):
            return [f"{claim_word.capitalize()} is {text}."]
    if square and not close(e, e.T):
        if close(c, e.T):
            return [f"{claim_word.capitalize()} is the transpose of the true gradient: "
                    f"a missing or extra transpose."]
        if close(c, -e.T):
            return [f"{claim_word.capitalize()} is −1 × the transpose of the true gradient: "
                    f"a sign error and a missing or extra transpose."]
    if sym:
        if not close(c, c.T) and close((c + c.T) / 2, e):
            return [f"{claim_word.capitalize()} is not symmetric, but its symmetric part (G + G')/2 "
                    f"matches: {name} is symmetric, so its gradient is the symmetric part of the "
                    f"unconstrained gradient."]
        if close(c, 2 * e - np.diag(np.diag(e))):
            return [f"The off-diagonal entries of {claim_word} are twice the truth (the "
                    f"'G + G' − diag(G)' convention); matgrad uses the symmetric gradient (G + G')/2."]
    k = float(np.vdot(c, e) / np.vdot(e, e))
    if close(c, k * e):
        return [f"{claim_word.capitalize()} is {k:.4g} × the true gradient: the direction is right "
                f"but the scale is wrong."]
    if square and not close(e, e.T):
        k = float(np.vdot(c, e.T) / np.vdot(e, e))
        if close(c, k * e.T):
            return [f"{claim_word.capitalize()} is {k:.4g} × the transpose of the true gradient."]
    return []


# ----------------------------------------------------------------------------- the verifier

@dataclass
class _Probe:
    """One finite-difference direction: the entries it determines and their weight."""
    positions: tuple[tuple[int, int], ...]
    weight: float


@dataclass
class _EntryResult:
    status: str  # "ok" | "mismatch" | "inconclusive"
    err: float
    position: tuple[int, int]
    fd: float
    claim: float
    note: str = ""


class _Verifier:
    def __init__(self, f: Expr, gradients: Mapping[str, Expr], seed: int, draws: int,
                 human: bool) -> None:
        if f.shape != ir.SCALAR:
            raise NotScalarError(f"the function to verify must be a scalar (1×1), got "
                                 f"{f.shape[0]}×{f.shape[1]}")
        if not gradients:
            raise ValueError("no gradients to verify")
        if draws < 1:
            raise ValueError("draws must be at least 1")
        self.f = f
        self.grads = dict(gradients)
        self.seed = seed
        self.draws = draws
        self.claim_word = "your claim" if human else "the claim"
        self._magnitudes: dict[int, tuple[list[np.ndarray], float]] = {}
        self._coarse = 0.0
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            from .errors import MatgradError
            raise MatgradError(f"the seed must be a non-negative integer, not {seed!r}")
        self.rng = _Random(seed)
        self.plan = _Plan(f)
        self.claim_code = {name: compile_expression(g) for name, g in self.grads.items()}

        f_vars = ir.variables(f)
        self.vars: dict[str, Var] = dict(f_vars)
        self.absent: list[str] = []
        for name, g in self.grads.items():
            for vname, v in ir.variables(g).items():
                self.vars.setdefault(vname, v)
        for name, g in self.grads.items():
            if name not in self.vars:
                self.vars[name] = Var(name, g.shape)
            if name not in f_vars:
                self.absent.append(name)

        dims: set[str] = set(_symbolic_dims(f))
        for g in self.grads.values():
            dims |= _symbolic_dims(g)
        for v in self.vars.values():
            dims |= {d for d in v.dims if isinstance(d, str)}
        self.dim_names = sorted(dims)
        self._check_sizes()

        # Which variables need positive entries / well-conditioned square values.
        self.positive: set[str] = set()
        self.matrix: set[str] = set()
        under: dict[Expr, frozenset[str]] = {}
        for e in self.plan.order:
            if isinstance(e, Var):
                under[e] = frozenset((e.name,))
            else:
                under[e] = frozenset().union(*(under[k] for k in e.children()))
            if isinstance(e, Func) and e.name == "log" and not _always_positive(e.arg):
                self.positive |= under[e.arg]
            elif isinstance(e, Power):
                p = Fraction(e.exponent)
                if p.denominator != 1 or p < 0:
                    self.positive |= under[e.arg]
            elif isinstance(e, (Inverse, Det, LogDet, MatPow)):
                self.matrix |= under[e.arg]

        self.details: list[str] = []
        self.hidden: dict[str, list[_Probe]] = {}  # per variable: entries hidden at some point
        self.coverage: dict[str, tuple[int, bool]] = {}
        self.max_err = 0.0
        self.compared = False

    # ------------------------------------------------------------------ sizes and points

    def _direction_limit(self) -> int:
        """Directions per draw: MAX_DIRECTIONS, fewer for a huge f so that the node evaluations
        per draw stay near MAX_NODE_EVALS (the rest of the entries are sampled)."""
        work = max([len(self.plan.dependents(n)) for n in self.grads] + [1])
        return min(MAX_DIRECTIONS, max(24, MAX_NODE_EVALS // (2 * work)))

    def _check_sizes(self) -> None:
        """Declared sizes are used as given: refuse values too large to check in reasonable time."""
        from .errors import LimitError
        from .limits import MAX_VERIFY_ENTRIES
        nodes = [*self.plan.order, *(e for g in self.grads.values() for e in ir.postorder(g))]
        for e in nodes:
            entries = 1
            for d in e.shape:
                entries *= d if isinstance(d, int) else 12  # symbolic dims get sizes of at most 12
            if entries > MAX_VERIFY_ENTRIES:
                raise LimitError(f"a {e.shape[0]}×{e.shape[1]} value is too large to verify numerically "
                                 f"(the limit is {MAX_VERIFY_ENTRIES} entries)",
                                 hint="declare symbolic sizes such as W=mxn, or skip the check with --no-verify")

    def _shape(self, var: Var, sizes: Mapping[str, int]) -> tuple[int, int]:
        return tuple(d if isinstance(d, int) else sizes[d] for d in var.dims)  # type: ignore[return-value]

    def _strategy(self, var: Var, shape: tuple[int, int], attempt: int) -> str:
        step = _SCHEDULE[attempt % len(_SCHEDULE)]
        square = shape[0] == shape[1]
        if var.name in self.matrix and square:
            return "near_identity"
        if step == "primary":
            return "positive" if var.name in self.positive else "normal"
        if step == "near_identity" and not square:
            return "positive"
        return step

    def _try_point(self, sizes: dict[str, int], attempt: int, shrink: float = 1.0
                   ) -> tuple[dict[str, np.ndarray], list[np.ndarray]] | str:
        """A point and f's node values there, or the domain violation that prevented it."""
        point = {}
        for name, var in self.vars.items():
            shape = self._shape(var, sizes)
            point[name] = _draw(self.rng, var, shape, self._strategy(var, shape, attempt), shrink)
        try:
            values = self.plan.run(point, _Context(sizes, True))
        except DomainViolation as exc:
            return exc.what
        return point, values

    # ------------------------------------------------------------------ finite differences

    def _magnitude(self, base: list[np.ndarray]) -> float:
        key = id(base)
        if self._magnitudes.get(key, (None,))[0] is not base:
            biggest = max((float(np.max(np.abs(v))) for v in base if v.size and np.all(np.isfinite(v))),
                          default=0.0)
            self._magnitudes[key] = (base, biggest)
        return self._magnitudes[key][1]

    def _directional(self, name: str, point: dict[str, np.ndarray], base: list[np.ndarray],
                     ctx: _Context, direction: np.ndarray, h: float) -> tuple[float, float] | None:
        """Central difference of f along `direction` and its rounding-noise floor, or None
        when the perturbed points leave the domain even after shrinking h."""
        x0 = point[name]
        f0 = abs(float(base[-1][0, 0]))
        self._coarse = self._magnitude(base)
        try:
            for _ in range(4):
                try:
                    point[name] = x0 + h * direction
                    fp = float(self.plan.rerun(base, name, point, ctx)[0, 0])
                    point[name] = x0 - h * direction
                    fm = float(self.plan.rerun(base, name, point, ctx)[0, 0])
                except DomainViolation:
                    h /= 10  # the step crossed the domain's edge: step less far
                    continue
                noise = FD_NOISE_ULPS * _EPS * max(abs(fp), abs(fm), f0) / h
                return (fp - fm) / (2 * h), noise
            return None
        finally:
            point[name] = x0

    def _judge(self, claims: list[float], fd: Callable[[float], tuple[float, float] | None],
               h: float, weight: float, scale: float) -> tuple[str, float, float, str]:
        """Compare claimed values with finite differences at step h, re-checking at h/4
        and 4h (and their Richardson extrapolation) before declaring a mismatch.
        Returns (status, relative error, best finite-difference estimate, note); status
        "hidden" is an agreement that only holds because the entry lies far below the
        comparison floor (see HIDDEN_FACTOR)."""
        first = fd(h)
        if first is None:
            return "inconclusive", 0.0, float("nan"), "f is not defined on both sides of this point"
        d1, n1 = first[0] / weight, first[1] / weight

        def err(g: float, noise: float) -> float:
            worst = 0.0
            for c in claims:
                if not math.isfinite(c):
                    return float("inf")
                denom = max(scale, abs(g), abs(c), noise / TOLERANCE, 1e-300)
                worst = max(worst, abs(c - g) / denom)
            return worst

        def agreed(g: float, noise: float) -> str:
            size = max([abs(g)] + [abs(c) for c in claims])
            return "hidden" if max(scale, noise / TOLERANCE) > HIDDEN_FACTOR * size else "ok"

        e1 = err(d1, n1)
        if e1 <= TOLERANCE:
            return agreed(d1, n1), e1, d1, ""
        small, large = fd(h / 4), fd(h * 4)
        if small is None or large is None:
            return "inconclusive", e1, d1, "f is not defined on both sides of this point"
        d2, n2 = small[0] / weight, small[1] / weight
        d3, n3 = large[0] / weight, large[1] / weight
        rich = (16 * d2 - d1) / 15  # cancels the h² truncation term of the central difference
        candidates = [(rich, 16 / 15 * n2 + n1 / 15), (d2, n2), (d3, n3)]
        errs = [err(g, n) for g, n in candidates]
        best = min(range(3), key=lambda i: errs[i])
        if errs[best] <= TOLERANCE:
            return agreed(*candidates[best]), errs[best], candidates[best][0], ""
        denom = max(scale, abs(d1), abs(d2), abs(d3), max(n1, n2, n3) / TOLERANCE, 1e-300)
        spread = max(abs(d1 - d2), abs(d1 - d3), abs(d2 - d3)) / denom
        e_rich = errs[0]
        # Rounding in f can be relative to the largest value computed on the way rather than
        # to f (log(1 + t) with tiny t is exact only to eps·1). A difference below that
        # coarser floor is no evidence either way: inconclusive, never a mismatch.
        coarse = FD_NOISE_ULPS * _EPS * self._coarse / h / weight
        gap = max(abs(c - rich) for c in claims) if all(math.isfinite(c) for c in claims) else float("inf")
        if e_rich > max(TOLERANCE, 10 * spread) and gap > coarse:
            return "mismatch", e_rich, rich, ""
        if gap <= coarse:
            return ("inconclusive", e_rich, rich,
                    f"the claim and finite differences ({_fmt(rich)}) differ by less than the rounding "
                    f"error of the values f is computed from")
        return ("inconclusive", e_rich, rich,
                f"finite differences with steps {h * 4:.1e}, {h:.1e}, {h / 4:.1e} give "
                f"{_fmt(d3)}, {_fmt(d1)}, {_fmt(d2)}: they disagree with each other")

    def _probes(self, var: Var, shape: tuple[int, int]) -> list[_Probe]:
        r, c = shape
        if _is_symmetric_kind(var, shape):
            out = []
            for i in range(r):
                for j in range(i, c):
                    out.append(_Probe(((i, i),), 1.0) if i == j else _Probe(((i, j), (j, i)), 2.0))
            return out
        return [_Probe(((i, j),), 1.0) for i in range(r) for j in range(c)]

    def _check_variable(self, name: str, point: dict[str, np.ndarray], base: list[np.ndarray],
                        ctx: _Context, claim: np.ndarray, probes: list[_Probe], sampled: bool,
                        label: str) -> str:
        """Compare one variable's claimed gradient with finite differences; add evidence lines.
        Returns "ok", "mismatch" or "inconclusive"."""
        var = self.vars[name]
        x0 = point[name]
        shape = x0.shape
        sym = _is_symmetric_kind(var, shape)  # type: ignore[arg-type]

        def direction_of(p: _Probe) -> np.ndarray:
            d = np.zeros(shape)
            for pos in p.positions:
                d[pos] = 1.0
            return d

        def step_for(p: _Probe) -> float:
            return FD_STEP * max(1.0, abs(float(x0[p.positions[0]])))

        first: list[tuple[float, float] | None] = []
        for p in probes:
            first.append(self._directional(name, point, base, ctx, direction_of(p), step_for(p)))
        scale = max([abs(r[0]) / p.weight for r, p in zip(first, probes) if r is not None] + [1e-12])

        results: list[_EntryResult] = []
        hidden: list[_Probe] = []
        expected = np.full(shape, np.nan)
        for p, r0 in zip(probes, first):
            cache = {step_for(p): r0}

            def fd(h: float, p: _Probe = p, cache: dict = cache) -> tuple[float, float] | None:
                if h not in cache:
                    cache[h] = self._directional(name, point, base, ctx, direction_of(p), h)
                return cache[h]

            claims = [float(claim[pos]) for pos in p.positions]
            status, err, g, note = self._judge(claims, fd, step_for(p), p.weight, scale)
            for pos in p.positions:
                expected[pos] = g
            worst = max(p.positions, key=lambda pos: abs(float(claim[pos]) - g)
                        if math.isfinite(float(claim[pos])) else float("inf"))
            results.append(_EntryResult(status, err, worst, g, float(claim[worst]), note))
            if status == "hidden":
                hidden.append(p)

        # Hidden at any point: where it was not, it may have been the large entry that hid the others.
        seen = self.hidden.setdefault(name, [])
        seen.extend(p for p in hidden if p not in seen)

        if sampled:
            # Entries were sampled; one random direction still covers all of them.
            v = self.rng.standard_normal(shape)
            if sym:
                v = (v + v.T) / 2
            v /= max(float(np.max(np.abs(v))), 1e-300)
            h = FD_STEP * max(1.0, float(np.max(np.abs(x0))))
            status, err, g, note = self._judge(
                [float(np.vdot(claim, v))],
                lambda hh: self._directional(name, point, base, ctx, v, hh),
                h, 1.0, scale * float(np.sum(np.abs(v))))
            results.append(_EntryResult(status, err, (-1, -1), g, float(np.vdot(claim, v)),
                                        note or "along a random direction"))

        finite_errs = [r.err for r in results if r.status != "inconclusive" and math.isfinite(r.err)]
        if any(not math.isfinite(r.err) for r in results):
            self.max_err = float("inf")
        if finite_errs:
            self.max_err = max(self.max_err, max(finite_errs))
            self.compared = True

        bad = [r for r in results if r.status == "mismatch"]
        if bad:
            worst = max(bad, key=lambda r: r.err)
            where = ("along a random direction" if worst.position == (-1, -1)
                     else f"at entry {_entry_name(name, shape, worst.position)}")
            self.details.append(
                f"∂f/∂{name} {label}: {len(bad)} of {len(results)} checked entries differ; "
                f"{where} finite differences give {_fmt(worst.fd)}, {self.claim_word} gives "
                f"{_fmt(worst.claim)} (relative error {worst.err:.2g}).")
            if not sampled and not np.any(np.isnan(expected)):
                self.details.extend(_diagnose(expected, claim, name, sym, self.claim_word))
            return "mismatch"
        unsure = [r for r in results if r.status == "inconclusive"]
        if unsure:
            r = unsure[0]
            where = ("along a random direction" if r.position == (-1, -1)
                     else f"at entry {_entry_name(name, shape, r.position)}")
            self.details.append(f"∂f/∂{name} {label}: cannot decide {where}: {r.note}.")
            return "inconclusive"
        return "ok"

    # ------------------------------------------------------------------ driver

    def _claim_values(self, point: dict[str, np.ndarray], sizes: dict[str, int]
                      ) -> dict[str, np.ndarray]:
        """Each claimed gradient at `point`, computed by the code `--format numpy` prints for it
        (so what is verified is also what a user runs); NaN where that code fails."""
        out = {}
        for name, (fn, params, dims) in self.claim_code.items():
            shape = tuple(sizes[d] if isinstance(d, str) else d for d in self.grads[name].shape)
            try:
                with np.errstate(all="ignore"):
                    value = fn(**{p: point[n] for n, p in params.items()}, **{p: sizes[d] for d, p in dims.items()})
                out[name] = np.reshape(np.asarray(value, dtype=float), shape)
            except (ArithmeticError, ValueError, np.linalg.LinAlgError):
                out[name] = np.full(shape, np.nan)
        return out

    def _shape_problems(self) -> list[str]:
        problems = []
        for name, g in self.grads.items():
            var = self.vars[name]
            if g.shape == var.dims:
                continue
            r, c = var.dims
            text = (f"∂f/∂{name}: {self.claim_word} has shape {g.shape[0]}×{g.shape[1]} but "
                    f"{name} is {r}×{c}")
            if g.shape == (c, r):
                text += ": the transposed shape, so a transpose is missing or extra"
            problems.append(text + ".")
        for name, g in self.grads.items():
            for vname, v in ir.variables(g).items():
                if self.vars[vname] is not v and self.vars[vname].dims != v.dims:
                    problems.append(f"{self.claim_word.capitalize()} uses {vname} as "
                                    f"{v.dims[0]}×{v.dims[1]} but f has it as "
                                    f"{self.vars[vname].dims[0]}×{self.vars[vname].dims[1]}.")
        return problems

    def _second_look(self, sizes: dict[str, int], checked: int) -> VerifyReport | None:
        """Entries hidden at some point (see HIDDEN_FACTOR) are checked again at points drawn
        at smaller scales. A mismatch there is the verdict; anything else leaves the report
        as it was (the hidden entries agreed within the floor wherever they were compared)."""
        for shrink in RESCALES:
            todo = {name: probes for name, probes in self.hidden.items() if probes}
            if not todo:
                return None
            got: tuple[dict[str, np.ndarray], list[np.ndarray]] | str = ""
            for attempt in range(TRIES_PER_DRAW):
                got = self._try_point(sizes, attempt, shrink)
                if not isinstance(got, str):
                    break
            if isinstance(got, str):
                return None
            point, base = got
            claims = self._claim_values(point, sizes)
            if not all(np.all(np.isfinite(c)) for c in claims.values()):
                continue
            kept = len(self.details)
            ctx = _Context(sizes, True)
            label = f"at point {checked + 1} (inputs drawn {1 / shrink:g}× smaller)"
            outcomes = [self._check_variable(name, point, base, ctx, claims[name], probes, False, label)
                        for name, probes in todo.items()]
            if "mismatch" in outcomes:
                return VerifyReport(False, "mismatch", self.max_err, checked + 1, tuple(self.details),
                                    dict(sizes))
            del self.details[kept:]  # no verdict here: the report stays as it was
        return None

    def run(self) -> VerifyReport:
        assignments = _size_assignments(self.dim_names, self.rng)
        problems = self._shape_problems()
        if problems:
            return VerifyReport(False, "mismatch", float("inf"), 0, tuple(problems),
                                dict(assignments[0]))

        for name in self.absent:
            self.details.append(f"Note: f does not depend on {name}, so its true gradient is zero.")

        sizes: dict[str, int] | None = None
        checked = 0
        verified = 0
        spare = self.draws  # replacement draws allowed for inconclusive ones
        status = "verified"
        last_violation = ""
        while verified < self.draws:
            found = None
            candidates = [sizes] if sizes is not None else assignments
            per_size = TRIES_PER_DRAW if sizes is not None else max(1, (TRIES_PER_DRAW + 1) // len(candidates))
            for cand in candidates:
                for attempt in range(per_size):
                    got = self._try_point(cand, attempt)
                    if isinstance(got, str):
                        last_violation = got
                        continue
                    found = (cand, got)
                    break
                if found is not None:
                    break
            if found is None:
                tries = per_size * len(candidates)
                if checked == 0:
                    self.details.append(f"No valid input found in {tries} random tries; the last "
                                        f"failed with: {last_violation}.")
                    return VerifyReport(False, "could not verify: domain", float("inf"), 0,
                                        tuple(self.details), dict(assignments[0]))
                self.details.append(f"Only {verified} of {self.draws} draws were in f's domain "
                                    f"(after {tries} tries: {last_violation}).")
                status = "inconclusive"
                break
            cand, (point, base) = found
            if sizes is None:
                sizes = cand
                if cand is not assignments[0] and self.dim_names:
                    if len(set(cand.values())) < len(cand):
                        self.details.append("Note: only equal sizes gave valid inputs, so a missing "
                                            "transpose between equal dims may go unnoticed.")
            checked += 1
            label = f"at point {checked}"
            ctx = _Context(sizes, True)
            claims = self._claim_values(point, sizes)
            undefined = [name for name, c in claims.items() if not np.all(np.isfinite(c))]
            if undefined:
                # f is defined here but the formula is not (det(X)*inv(X)' at a singular X):
                # no verdict on this point, draw another.
                self.details.append(f"At point {checked} the formula for ∂f/∂{undefined[0]} is not finite "
                                    f"although f is; another point was drawn.")
                if spare > 0:
                    spare -= 1
                    checked -= 1
                    continue
                if verified == 0:  # undefined at every point where f is defined: not a gradient of f
                    self.details.append(f"The formula for ∂f/∂{undefined[0]} is not finite at any of the "
                                        f"points tried, although f is defined and finite there.")
                    return VerifyReport(False, "mismatch", float("inf"), checked + 1, tuple(self.details),
                                        dict(sizes))
                status = "inconclusive"
                break
            planned = {name: self._probes(self.vars[name], point[name].shape) for name in self.grads}
            total = sum(len(p) for p in planned.values())
            limit = self._direction_limit()
            sampled = total > limit
            if sampled:
                for name, probes in planned.items():
                    quota = max(4, limit * len(probes) // total)
                    if quota < len(probes):
                        keep = sorted(self.rng.choice(len(probes), quota, replace=False))
                        planned[name] = [probes[int(i)] for i in keep]
            self.coverage = {name: (len(planned[name]), sampled) for name in self.grads}
            outcomes = [self._check_variable(name, point, base, ctx, claims[name], planned[name],
                                             sampled, label) for name in self.grads]
            if "mismatch" in outcomes:
                return VerifyReport(False, "mismatch", self.max_err, checked, tuple(self.details),
                                    dict(sizes))
            if "inconclusive" in outcomes:
                if spare > 0:
                    spare -= 1  # probably a kink near this point: draw another one instead
                    continue
                status = "inconclusive"
                break
            verified += 1

        if status == "verified":
            mismatch = self._second_look(sizes or assignments[0], checked)
            if mismatch is not None:
                return mismatch
            for name in self.grads:
                n, sampled = self.coverage[name]
                what = (f"{n} sampled entries and a random direction agree" if sampled
                        else f"{n} entr{'y agrees' if n == 1 else 'ies agree'}")
                self.details.append(f"∂f/∂{name}: {what} at each of {verified} "
                                    f"point{'s' if verified != 1 else ''}.")
        max_err = self.max_err if self.compared else float("inf")
        return VerifyReport(status == "verified", status, max_err, checked, tuple(self.details),
                            dict(sizes or assignments[0]))


# ----------------------------------------------------------------------------- public API

def verify(f: Expr, gradients: Mapping[str, Expr], *, seed: int = 0, draws: int = 3) -> VerifyReport:
    """Check claimed gradients of the scalar `f` against central finite differences.

    `gradients` maps a variable name to an expression of that variable's shape
    claimed to be ∂f/∂var (for symmetric/SPD variables: the symmetric gradient).
    Symbolic dims get small distinct sizes, inputs are drawn from
    a generator seeded with `seed` inside f's domain, and every entry (or, for big
    inputs, a sample plus a random direction) is compared at `draws` points.
    ok is True only when every draw verified. Deterministic for equal inputs.
    Raises NotScalarError when f is not 1×1 and ValueError when nothing is claimed.
    """
    return _Verifier(f, gradients, seed, draws, human=False).run()


def check_claim(f: Expr, wrt: str, claim: Expr, *, seed: int = 0) -> VerifyReport:
    """Check a human-written claim ∂f/∂wrt = claim, with evidence addressed to its author.

    Same procedure and guarantees as `verify` with a single gradient; the first
    evidence line restates the claim being checked.
    """
    report = _Verifier(f, {wrt: claim}, seed, 3, human=True).run()
    intro = f"Checking your claim ∂f/∂{wrt} = {_show(claim)}."
    return VerifyReport(report.ok, report.status, report.max_rel_error, report.checks,
                        (intro,) + report.details, report.sizes)
