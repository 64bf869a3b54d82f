"""matgrad benchmarks: `make bench` (or `.venv/bin/python bench/run.py [--quick]`).

Three parts, each printed and written to bench/RESULTS.md:

(a) Gradient evaluation at realistic sizes. For each case: F alone (the numpy code
    matgrad generates for F), matgrad's generated numpy value_and_grad, and the
    peers that are importable — jax.jit(jax.value_and_grad(F)) after compilation,
    torch autograd (forward + backward), HIPS autograd — plus matgrad's generated
    jax code under jax.jit. Peers get F written by hand in their library with the
    best association of every product chain (W'*(W*X), not (W'*W)*X), so chain
    ordering does not flatter matgrad. Everything runs in float64; every peer's
    gradient is checked against matgrad's before it is timed.
(b) Derivation time: matgrad.derive (parse → shapes → network → backward →
    simplify) against SymPy's MatrixExpr.diff on cases SymPy can do, and a depth
    sweep ||W_L*tanh(…tanh(W_1*x))||^2 w.r.t. W_1 with the fitted exponent of time vs L.
(c) CLI start-up: `matgrad derive … --no-verify` against the floors
    `python -c "import click"` and `python -c "import numpy, click"`.

No number here is asserted anywhere; the tests check behaviour only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

# One thread for every library, set before any of them loads: the comparison is then of
# the computations, not of thread pools (several BLAS/Eigen pools on a shared machine
# oversubscribe the cores and turn a 0.1 ms product into 16 ms). --threads N changes it.
_THREADS = "1"
if "--threads" in sys.argv:
    _THREADS = sys.argv[sys.argv.index("--threads") + 1]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS
if _THREADS == "1":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    # JAX 0.10's CPU backend ignores those flags and runs a 2000×2000 product on every core
    # (CPU time twice its wall time, measured): pin the whole process to one core instead.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matgrad  # noqa: E402
from matgrad.codegen import compile_function  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except Exception:  # pragma: no cover - optional peer
    jax = None
try:
    import torch
    torch.set_num_threads(int(_THREADS))
except Exception:  # pragma: no cover - optional peer
    torch = None
try:
    import autograd
    import autograd.numpy as anp
except Exception:  # pragma: no cover - optional peer
    autograd = None


def timeit(fn: Callable[[], Any], budget: float, min_runs: int = 3, max_runs: int = 50) -> float:
    """Median wall time of fn() over repeated runs (≥ min_runs, about `budget` seconds)."""
    fn()  # warm-up (and compilation for jit)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget and len(times) < max_runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ----------------------------------------------------------------------------- (a) cases

class Case:
    """A function F: its matgrad text, what to differentiate, inputs, and F per peer library.

    `peer(lib, params, data)` computes F with `lib` (numpy-like module) from the params
    tuple (the wrt variables, in `wrt` order) and the data dict.
    """

    def __init__(self, name: str, expr: str, wrt: list[str], shapes: list[str] | None,
                 sizes: list[dict[str, int]], draw: Callable[[np.random.Generator, dict[str, int]], dict],
                 peer: Callable[[Any, tuple, dict], Any], size_label: Callable[[dict[str, int]], str],
                 floor: Callable[[dict[str, int]], float] | None = None) -> None:
        self.name, self.expr, self.wrt, self.shapes = name, expr, wrt, shapes
        self.sizes, self.draw, self.peer, self.size_label = sizes, draw, peer, size_label
        self.floor = floor  # (value+grad)/F in matrix-product multiply-adds, best schedule


# Matrix products dominate these cases; counting their multiply-adds for the best schedule
# gives the lowest grad/F any implementation can reach (entrywise work aside).

def _ica_floor(s: dict[str, int]) -> float:
    n, m, N = s["n"], s["m"], s["N"]
    f = 2 * n * m * N                     # W*X, then W'*(W*X)
    return (f + m * m * N + n * m * m) / f  # R*X' (its transpose is free), W*(R*X' + X*R')


def _sparse_floor(s: dict[str, int]) -> float:
    return 3.0  # A*S for F; R*S' and A'*R for the gradients, all the same size


def _wxv_floor(s: dict[str, int]) -> float:
    n, m, k, p = s["n"], s["m"], s["k"], s["p"]
    xv_first = m * k * p + n * m * p      # W*(X*V); ∇W = R*(X*V)' reuses X*V
    wx_first = n * m * k + n * k * p      # (W*X)*V; ∇W = R*V'*X' in its best order
    return min(xv_first + n * m * p, wx_first + min(n * p * k + n * k * m, p * k * m + n * p * m)) \
        / min(xv_first, wx_first)


def _mlp_floor(s: dict[str, int]) -> float:
    d, h, k, N = s["d"], s["h"], s["k"], s["N"]
    f = h * d * N + h * h * N + k * h * N
    return (f + 2 * k * h * N + 2 * h * h * N + h * d * N) / f  # ∇W3, δ2, ∇W2, δ1, ∇W1


def _logreg_floor(s: dict[str, int]) -> float:
    return 2.0  # X'*w for F, X*(σ − y) for the gradient


def _ica_peer(lib: Any, p: tuple, d: dict) -> Any:
    (W,) = p
    X = d["X"]
    R = W.T @ (W @ X) - X
    return lib.sum(R * R)


def _sparse_peer(lib: Any, p: tuple, d: dict) -> Any:
    A, S = p
    R = A @ S - d["X"]
    return lib.sum(R * R) + d["lambda"] * lib.sum(lib.sqrt(S * S + d["eps"]))


def _wxv_peer(lib: Any, p: tuple, d: dict) -> Any:
    (W,) = p
    X, V, U = d["X"], d["V"], d["U"]
    # best association for n, m, k, p as drawn below (m, k ≥ p): W*(X*V)
    R = W @ (X @ V) - U
    return lib.sum(R * R)


def _mlp_peer(lib: Any, p: tuple, d: dict) -> Any:
    W1, W2, W3 = p
    X, Y = d["X"], d["Y"]
    Z = W3 @ lib.tanh(W2 @ lib.tanh(W1 @ X))
    return lib.sum(lib.log(lib.sum(lib.exp(Z), axis=0))) - lib.sum(Y * Z)


def _logreg_peer(lib: Any, p: tuple, d: dict) -> Any:
    (w,) = p
    X, y = d["X"], d["y"]
    z = X.T @ w
    softplus = lib.logaddexp(0.0 * z, z)
    return lib.sum(softplus) - lib.sum(y * z) + d["lambda"] * lib.sum(w * w)


def _nll_peer(lib: Any, p: tuple, d: dict) -> Any:
    (S,) = p
    Y = d["Y"]
    logdet = lib.linalg.slogdet(S)[1]
    return d["N"] * logdet + lib.sum(lib.linalg.inv(S) @ Y * Y)


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    B = rng.standard_normal((n, n))
    return B @ B.T / n + np.eye(n)


CASES = [
    Case("ICA ||W'*W*X - X||^2", "||W'*W*X - X||^2", ["W"], None,
         [dict(n=100, m=100, N=200), dict(n=1000, m=1000, N=1000)],
         lambda r, s: dict(W=r.standard_normal((s["n"], s["m"])) / np.sqrt(s["m"]),
                           X=r.standard_normal((s["m"], s["N"]))),
         _ica_peer, lambda s: f"W {s['n']}×{s['m']}, X {s['m']}×{s['N']}", _ica_floor),
    Case("sparse coding", "||A*S - X||^2 + lambda*sum(sqrt(S.^2 + eps))", ["A", "S"], None,
         [dict(n=100, m=200, N=200), dict(n=500, m=1000, N=2000)],
         lambda r, s: dict(A=r.standard_normal((s["n"], s["m"])), S=r.standard_normal((s["m"], s["N"])),
                           X=r.standard_normal((s["n"], s["N"])), **{"lambda": 0.1, "eps": 1e-3}),
         _sparse_peer, lambda s: f"A {s['n']}×{s['m']}, S {s['m']}×{s['N']}", _sparse_floor),
    Case("||W*X*V - U||^2", "||W*X*V - U||^2", ["W"], None,
         [dict(n=100, m=200, k=200, p=50), dict(n=1000, m=2000, k=2000, p=100)],
         lambda r, s: dict(W=r.standard_normal((s["n"], s["m"])), X=r.standard_normal((s["m"], s["k"])),
                           V=r.standard_normal((s["k"], s["p"])), U=r.standard_normal((s["n"], s["p"]))),
         _wxv_peer, lambda s: f"W {s['n']}×{s['m']}, X {s['m']}×{s['k']}, V {s['k']}×{s['p']}", _wxv_floor),
    Case("MLP 3 layers, tanh, softmax CE (batch)",
         "-sum(Y .* (W3*tanh(W2*tanh(W1*X)))) + sum(log(ones'*exp(W3*tanh(W2*tanh(W1*X)))))",
         ["W1", "W2", "W3"], ["X=dxN", "Y=kxN"],
         [dict(d=100, h=100, k=10, N=128), dict(d=784, h=1000, k=10, N=1000)],
         lambda r, s: dict(W1=r.standard_normal((s["h"], s["d"])) / np.sqrt(s["d"]),
                           W2=r.standard_normal((s["h"], s["h"])) / np.sqrt(s["h"]),
                           W3=r.standard_normal((s["k"], s["h"])) / np.sqrt(s["h"]),
                           X=r.standard_normal((s["d"], s["N"])),
                           Y=np.eye(s["k"])[:, r.integers(0, s["k"], s["N"])]),
         _mlp_peer, lambda s: f"d={s['d']}, hidden {s['h']}×2, k={s['k']}, batch {s['N']}", _mlp_floor),
    Case("logistic regression", "sum(softplus(X'*w)) - y'*X'*w + lambda*w'*w", ["w"], None,
         [dict(n=100, m=1000), dict(n=2000, m=2000)],
         lambda r, s: dict(X=r.standard_normal((s["n"], s["m"])) / np.sqrt(s["n"]),
                           w=r.standard_normal((s["n"], 1)),
                           y=(r.random((s["m"], 1)) < 0.5).astype(float), **{"lambda": 0.1}),
         _logreg_peer, lambda s: f"X {s['n']}×{s['m']}", _logreg_floor),
    Case("Gaussian NLL logdet/inv", "N*logdet(S) + tr(inv(S)*Y*Y')", ["S"], ["N=scalar"],
         [dict(n=100, m=500), dict(n=1000, m=2000)],
         lambda r, s: dict(S=_spd(r, s["n"]), Y=r.standard_normal((s["n"], s["m"])), N=float(s["m"])),
         _nll_peer, lambda s: f"S {s['n']}×{s['n']}, Y {s['n']}×{s['m']}"),
]


def _dim_sizes(d: Any, data: dict) -> dict[str, int]:
    """Each symbolic dimension of the derivation's variables, read off the arrays."""
    out: dict[str, int] = {}
    for name, v in d.variables.items():
        shape = np.shape(data[name]) if name in data else ()
        for axis, dim in enumerate(v.dims):
            if isinstance(dim, str) and axis < len(shape):
                out[dim] = int(shape[axis])
    return out


def _peers(case: Case, data: dict) -> dict[str, Callable[[], Any]]:
    """name → zero-argument callable computing (F, gradients) with that peer."""
    out: dict[str, Callable[[], Any]] = {}
    params = tuple(data[n] for n in case.wrt)
    rest = {k: v for k, v in data.items() if k not in case.wrt}
    if jax is not None:
        jp = tuple(jnp.asarray(p) for p in params)
        jd = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in rest.items()}
        vg = jax.jit(jax.value_and_grad(lambda p, d: case.peer(jnp, p, d)))

        def run_jax() -> Any:
            v, g = vg(jp, jd)
            jax.block_until_ready(g)
            return float(v), [np.asarray(x) for x in g]
        out["jax.jit(value_and_grad)"] = run_jax
    if torch is not None:
        tp = tuple(torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params)
        td = {k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v)
              for k, v in rest.items()}

        class _T:  # the bits of the numpy API the peers use, spelled for torch
            sum = staticmethod(lambda x, axis=None: torch.sum(x) if axis is None else torch.sum(x, dim=axis))
            exp, log, tanh, sqrt = torch.exp, torch.log, torch.tanh, torch.sqrt
            logaddexp = staticmethod(torch.logaddexp)
            linalg = torch.linalg

        def run_torch() -> Any:
            v = case.peer(_T, tp, td)
            g = torch.autograd.grad(v, tp)
            return float(v.detach()), [x.numpy() for x in g]
        out["torch autograd"] = run_torch
    if autograd is not None:
        ag = autograd.value_and_grad(lambda p: case.peer(anp, p, rest))

        def run_autograd() -> Any:
            v, g = ag(params)
            return float(v), [np.asarray(x) for x in g]
        out["HIPS autograd"] = run_autograd
    return out


def bench_gradients(quick: bool, budget: float) -> tuple[list[dict], list[str]]:
    rows: list[dict] = []
    notes: list[str] = []
    for case in CASES:
        d = matgrad.derive(case.expr, case.wrt, case.shapes)
        order = list(d.variables)
        generic = compile_function(d.expr, d.gradients_ir, "numpy", order=order)
        for sizes in (case.sizes[:1] if quick else case.sizes):
            rng = np.random.default_rng(0)
            data = case.draw(rng, sizes)
            args = [data[n] for n in order]
            # The code is generated for these sizes, as a user would with --shape W=1000x2000:
            # chain orders and shared sub-products are fixed then (jax.jit specializes too).
            known = _dim_sizes(d, data)
            f_only = compile_function(d.expr, {}, "numpy", order=order, sizes=known)
            vg = compile_function(d.expr, d.gradients_ir, "numpy", order=order, sizes=known)
            mg_jax = None
            if jax is not None:
                mg_jax = jax.jit(compile_function(d.expr, d.gradients_ir, "jax", order=order, sizes=known))
            value, grads = vg(*args)
            row: dict[str, Any] = {"case": case.name, "size": case.size_label(sizes),
                                   "floor": case.floor(sizes) if case.floor else None}
            row["F (matgrad numpy)"] = timeit(lambda: f_only(*args), budget)
            row["matgrad numpy"] = timeit(lambda: vg(*args), budget)
            row["generic"] = timeit(lambda: generic(*args), budget)
            timings: dict[str, Callable[[], Any]] = dict(_peers(case, data))
            if mg_jax is not None:
                jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]

                def run_mg_jax() -> Any:
                    v, g = mg_jax(*jargs)
                    jax.block_until_ready(g)
                    return float(v), [np.asarray(g[n]) for n in case.wrt]
                timings["matgrad→jax (jit)"] = run_mg_jax
            for peer, fn in timings.items():
                try:
                    pv, pg = fn()
                    ok = np.isclose(pv, value, rtol=1e-6) and all(
                        np.allclose(np.reshape(a, np.shape(grads[n])), grads[n], rtol=1e-5, atol=1e-6 * np.max(np.abs(grads[n])))
                        for a, n in zip(pg, case.wrt))
                    if not ok:
                        notes.append(f"{case.name} ({row['size']}): {peer} disagrees with matgrad; not timed")
                        continue
                    row[peer] = timeit(fn, budget)
                except Exception as e:  # a peer failing is reported, not fatal
                    notes.append(f"{case.name} ({row['size']}): {peer} failed: {type(e).__name__}: {e}")
            rows.append(row)
            _print_row(row)
    return rows, notes


PEER_COLUMNS = ["jax.jit(value_and_grad)", "torch autograd", "HIPS autograd", "matgrad→jax (jit)"]


def _ms(t: float | None) -> str:
    return "–" if t is None else (f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s")


def _print_row(row: dict) -> None:
    f, m = row["F (matgrad numpy)"], row["matgrad numpy"]
    peers = ", ".join(f"{p} {_ms(row[p])} ({row[p] / m:.2f}×)" for p in PEER_COLUMNS if p in row)
    print(f"  {row['case']:<40} {row['size']:<42} F {_ms(f)}, value+grad {_ms(m)} "
          f"(grad/F {m / f:.2f}); {peers}", flush=True)


# ----------------------------------------------------------------------------- (b) derivation time

def sympy_cases() -> list[tuple[str, str, str, Callable[[], Any]]]:
    """(matgrad text, wrt, description, thunk building and differentiating the SymPy expression)."""
    import sympy as sp

    n, m = sp.symbols("n m", integer=True, positive=True)

    def M(name: str, r: Any, c: Any) -> Any:
        return sp.MatrixSymbol(name, r, c)

    def c1() -> Any:
        A, x = M("A", n, n), M("x", n, 1)
        return (x.T * A * x).diff(x)

    def c2() -> Any:
        A, b, x = M("A", m, n), M("b", m, 1), M("x", n, 1)
        r = A * x - b
        return (r.T * r).diff(x)

    def c3() -> Any:
        A, X, B = M("A", m, n), M("X", n, n), M("B", n, m)
        return sp.Trace(A * X * B).diff(X)

    def c4() -> Any:
        X = M("X", n, n)
        return sp.log(sp.Determinant(X)).diff(X)

    def c5() -> Any:
        X, A = M("X", n, n), M("A", n, n)
        return sp.Trace(sp.Inverse(X) * A).diff(X)

    def c6() -> Any:
        W, x = M("W", n, m), M("x", m, 1)
        r = W.T * W * x - x
        return (r.T * r).diff(W)

    def c7() -> Any:
        W, X, V, U = M("W", n, m), M("X", m, m), M("V", m, n), M("U", n, n)
        r = W * X * V - U
        return sp.Trace(r.T * r).diff(W)

    def c8() -> Any:
        X = M("X", n, n)
        return sp.Trace(X ** 3).diff(X)

    def c9() -> Any:
        S, Y = M("S", n, n), M("Y", n, m)
        N = sp.Symbol("N")
        return (N * sp.log(sp.Determinant(S)) + sp.Trace(sp.Inverse(S) * Y * Y.T)).diff(S)

    def c10() -> Any:
        a, X, b = M("a", n, 1), M("X", n, n), M("b", n, 1)
        return (a.T * X.T * X * b).diff(X)

    return [
        ("x'*A*x", "x", "quadratic form", c1),
        ("||A*x - b||^2", "x", "least squares", c2),
        ("tr(A*X*B)", "X", "trace of a product", c3),
        ("logdet(X)", "X", "log-determinant", c4),
        ("tr(inv(X)*A)", "X", "trace with an inverse", c5),
        ("||W'*W*x - x||^2", "W", "tied-weights autoencoder", c6),
        ("||W*X*V - U||^2", "W", "Frobenius of a chain", c7),
        ("tr(X^3)", "X", "matrix power", c8),
        ("N*logdet(S) + tr(inv(S)*Y*Y')", "S", "Gaussian NLL", c9),
        ("a'*X'*X*b", "X", "bilinear in X'X", c10),
    ]


def bench_derivation(quick: bool) -> tuple[list[dict], list[dict], float, list[str]]:
    from sympy.core.cache import clear_cache

    from matgrad.simplify import clear_caches
    rows: list[dict] = []
    notes: list[str] = []
    shapes = {"N": "scalar"}
    for text, wrt, desc, thunk in sympy_cases():
        row: dict[str, Any] = {"case": text, "what": desc}

        def mg() -> Any:
            clear_caches()  # like SymPy's below: every run starts cold
            return matgrad.derive(text, wrt, shapes if "N" in text else None).gradients_ir

        row["matgrad"] = _median_runs(mg, 7)

        def sy() -> Any:
            clear_cache()  # SymPy memoizes: without this every run after the first is a cache hit
            return thunk()
        row["sympy_note"] = "SymPy cannot"
        try:
            result = sy()
            if getattr(result, "is_ZeroMatrix", False) or result == 0:  # log(det(X)).diff(X) is 0 in SymPy 1.14
                row["sympy"] = None
                row["sympy_note"] = "SymPy returns 0 (wrong); excluded"
                notes.append(f"SymPy returns 0 for the gradient of {text}, which is wrong; excluded from the ratios")
            else:
                row["sympy"] = _median_runs(sy, 7)
                if "Array" in type(result).__name__ or "Array" in str(result)[:40]:
                    notes.append(f"SymPy's result for {text} is an unsimplified array expression, "
                                 f"not a matrix formula: {str(result)[:70]}…")
        except Exception as e:
            row["sympy"] = None
            notes.append(f"SymPy cannot differentiate {text}: {type(e).__name__}: {str(e)[:80]}")
        rows.append(row)
        s = row["sympy"]
        print(f"  {text:<34} matgrad {_ms(row['matgrad'])}, SymPy {_ms(s)}"
              + (f" (SymPy/matgrad {s / row['matgrad']:.2f})" if s else ""), flush=True)

    depth = []
    Ls = [2, 4, 8, 16, 32, 64] if quick else [2, 4, 8, 16, 32, 64, 128]
    for L in Ls:
        text = deep_mlp(L)
        t = _median_runs(lambda: (clear_caches(), matgrad.derive(text, "W1")), 3)
        depth.append({"L": L, "time": t})
        print(f"  depth L={L:<4} {_ms(t)}", flush=True)
    big = [r for r in depth if r["L"] >= 8]
    slope = float(np.polyfit(np.log([r["L"] for r in big]), np.log([r["time"] for r in big]), 1)[0])
    print(f"  fitted exponent (time ∝ L^k, L ≥ 8): k = {slope:.2f}", flush=True)
    return rows, depth, slope, notes


def deep_mlp(L: int) -> str:
    s = "x"
    for i in range(1, L):
        s = f"tanh(W{i}*{s})"
    return f"||W{L}*{s}||^2"


def _median_runs(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ----------------------------------------------------------------------------- (c) CLI start-up

def bench_startup(runs: int) -> list[dict]:
    py = sys.executable
    env = dict(os.environ)
    # Measure an installed package as users run it: bytecode cached (this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which would recompile matgrad's sources on every call).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "matgrad-bench-pycache")
    script = str(Path(sys.executable).with_name("matgrad"))  # the console script, as users run it
    derive = [script, "derive", "||W'*W*x - x||^2", "--wrt", "W"]
    cmds = [  # label, command, extra environment, expected exit code
        ("python -c 'import click'", [py, "-c", "import click"], {}, 0),
        ("python -c 'import numpy, click'", [py, "-c", "import numpy, click"], {}, 0),
        ("matgrad derive … --no-verify", derive + ["--no-verify"], {}, 0),
        ("matgrad derive … --format latex --no-verify", derive + ["--format", "latex", "--no-verify"], {}, 0),
        ("matgrad derive … (verified)", derive, {}, 0),
        ("matgrad derive of a syntax error (lark explains it)",
         [script, "derive", "||W'*W*x - x||^", "--wrt", "W"], {}, 2),
    ]
    for label, cmd, extra, code in cmds:  # warm: bytecode and lark's table cache
        subprocess.run(cmd, env=dict(env, **extra), capture_output=True)
    times: dict[str, list[float]] = {label: [] for label, *_ in cmds}
    for _ in range(runs):  # round-robin, so that a slow spell of a shared machine hits every row
        for label, cmd, extra, code in cmds:
            t = time.perf_counter()
            p = subprocess.run(cmd, env=dict(env, **extra), capture_output=True)
            times[label].append(time.perf_counter() - t)
            if p.returncode != code:
                raise RuntimeError(f"{label} exited {p.returncode}: {p.stderr.decode()[:300]}")
    rows = []
    for label, *_ in cmds:
        rows.append({"what": label, "time": statistics.median(times[label])})
        print(f"  {label:<52} {_ms(rows[-1]['time'])}", flush=True)
    return rows


# ----------------------------------------------------------------------------- machine and report

def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sympy
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"sympy {sympy.__version__}"]
    versions.append(f"jax {jax.__version__}" if jax is not None else "jax: not installed")
    versions.append(f"torch {torch.__version__}" if torch is not None else "torch: not installed")
    versions.append(f"autograd {_version('autograd')}" if autograd is not None else "autograd: not installed")
    threads = ""
    if torch is not None:
        threads = f"; torch threads {torch.get_num_threads()}"
    load = ""
    try:
        load = "; load average at the end " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    pinned = (f", pinned to {len(os.sched_getaffinity(0))} core(s)" if hasattr(os, "sched_getaffinity") else "")
    return [f"- CPU: {cpu}; nproc {os.cpu_count()}; benchmark run with {_THREADS} thread(s) per library{pinned}"
            f"{threads}{load}",
            f"- {platform.platform()}",
            "- " + ", ".join(versions)]


def _version(pkg: str) -> str:
    from importlib.metadata import version
    try:
        return version(pkg)
    except Exception:
        return "?"


def _cell(text: str) -> str:
    """Text for a markdown table cell: the norm bars must not end the cell."""
    return text.replace("|", "\\|")


def report(grad_rows: list[dict], grad_notes: list[str], deriv: list[dict], depth: list[dict], slope: float,
           deriv_notes: list[str], startup: list[dict], total: float) -> str:
    out = ["# matgrad benchmark results", "",
           f"Produced by `make bench` (`bench/run.py`) in {total:.0f} s. Medians of repeated runs; float64 throughout. "
           "Wall-clock times on the machine below, which may be shared with other jobs (see the load "
           "average): treat differences under ~20% as noise.",
           "", "## Machine", "", *machine(), ""]
    out += ["## (a) Gradient evaluation", "",
            "F = the numpy code matgrad generates for F alone; *value+grad* = matgrad's generated numpy "
            "`value_and_grad` (F and all gradients), generated for the case's sizes (chain orders and shared "
            "sub-products fixed at generation time); *shape-generic* = the same without sizes (products of "
            "three or more factors ordered by `multi_dot` at call time). Peers compute F and the same gradients from F written "
            "by hand with the best association of each product; their times are after jit compilation. "
            "Ratios in parentheses: peer time / matgrad numpy value+grad time (> 1: matgrad is faster).", "",
            "*product floor* = (value+grad)/F counted in multiply-adds of the matrix products for the best "
            "schedule: the lowest grad/F any implementation can reach, entrywise work aside.", "",
            "| case | size | F | value+grad | grad/F | product floor | shape-generic | " + " | ".join(PEER_COLUMNS) + " |",
            "|---|---|---|---|---|---|---|" + "---|" * len(PEER_COLUMNS)]
    for r in grad_rows:
        f, m = r["F (matgrad numpy)"], r["matgrad numpy"]
        peers = " | ".join(f"{_ms(r[p])} ({r[p] / m:.2f})" if p in r else "–" for p in PEER_COLUMNS)
        floor = f"{r['floor']:.2f}" if r.get("floor") else "–"
        out.append(f"| {_cell(r['case'])} | {r['size']} | {_ms(f)} | {_ms(m)} | {m / f:.2f} | {floor} | "
                   f"{_ms(r.get('generic'))} | {peers} |")
    if grad_notes:
        out += ["", *[f"- {_cell(n)}" for n in grad_notes]]
    out += ["", "## (b) Derivation time", "",
            "matgrad: `matgrad.derive(text, wrt)` from the text to the simplified gradient, with matgrad's caches "
            "cleared before each run. SymPy: building the MatrixSymbol expression and `.diff`, with SymPy's cache "
            "cleared before each run. Median of 7.", "",
            "| F | wrt | matgrad | SymPy | SymPy / matgrad |", "|---|---|---|---|---|"]
    ratios = []
    for r in deriv:
        s = r["sympy"]
        if s:
            ratios.append(s / r["matgrad"])
        out.append(f"| `{_cell(r['case'])}` | {r['what']} | {_ms(r['matgrad'])} | {_ms(s)} | "
                   + (f"{s / r['matgrad']:.2f} |" if s else f"{r['sympy_note']} |"))
    if ratios:
        out += ["", f"Geometric mean SymPy/matgrad over the {len(ratios)} cases SymPy does: "
                    f"{float(np.exp(np.mean(np.log(ratios)))):.2f}."]
    if deriv_notes:
        out += ["", *[f"- {n}" for n in deriv_notes]]
    out += ["", "Depth sweep: `||WL*tanh(W(L-1)*…tanh(W1*x))||^2` w.r.t. W1 (median of 3); "
                "L = 128 is a 128-layer network.", "",
            "| L | derive time |", "|---|---|"]
    out += [f"| {r['L']} | {_ms(r['time'])} |" for r in depth]
    out += ["", f"Fitted exponent (time ∝ L^k over L ≥ 8): **k = {slope:.2f}**."]
    out += ["", "## (c) CLI start-up", "",
            "Wall time of a whole process through the `matgrad` console script, median of several runs taken "
            "round-robin, bytecode cached as in an installed package. Valid expressions are read by the "
            "fast reader; only an error goes to lark (its tables come from lark's cache file). "
            "Targets: `--no-verify` ≤ 1.3 × `import click`, verified ≤ 1.3 × `import numpy, click`.", "",
            "| command | time | / `import click` | / `import numpy, click` |", "|---|---|---|---|"]
    click_t = startup[0]["time"]
    np_t = startup[1]["time"]
    out += [f"| {r['what']} | {_ms(r['time'])} | {r['time'] / click_t:.2f} | {r['time'] / np_t:.2f} |"
            for r in startup]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only, fewer runs (a smoke test)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    ap.add_argument("--threads", default="1", help="threads for BLAS, torch and XLA (default 1)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    missing = [n for n, m in (("jax", jax), ("torch", torch), ("autograd", autograd)) if m is None]
    if missing:
        print(f"peers not importable (skipped): {', '.join(missing)}")
    print("(a) gradient evaluation")
    grad_rows, grad_notes = bench_gradients(a.quick, 0.3 if a.quick else 1.0)
    for n in grad_notes:
        print("  note:", n)
    print("(b) derivation time")
    deriv, depth, slope, deriv_notes = bench_derivation(a.quick)
    print("(c) CLI start-up")
    startup = bench_startup(5 if a.quick else 21)
    total = time.perf_counter() - t0
    Path(a.out).write_text(report(grad_rows, grad_notes, deriv, depth, slope, deriv_notes, startup, total),
                           encoding="utf-8")
    print(f"wrote {a.out} ({total:.0f} s)")


if __name__ == "__main__":
    main()
