"""The Python API: `derive`, `check`, `lambdify`, and the `Derivation` they return.

This module wires the stages together; it holds no calculus of its own:
parse → infer_shapes → build_network → backward → simplify → printers / verify.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Iterable, Mapping, NamedTuple

from . import simplify as S
from .backward import Adjoints, backward
from .errors import MatgradError, UnsupportedError
from .ir import Expr, Var
from .limits import check_expression, check_written_size
from .network import Layer, Network, build_network, default_wrt
from .parse import parse
from .printers import to_text
from .rules import adjoint
from .shapes import infer_shapes, is_greek, parse_shape_spec, scalar_or_error

Shapes = Mapping[str, Any] | Iterable[str] | None


def _declarations(shapes: Shapes) -> dict[str, Any]:
    """Accept {"W": (3, 4), "x": 5, "c": (), "S": "symmetric"} or CLI strings ["W=3x4", …]."""
    if shapes is None:
        return {}
    if isinstance(shapes, Mapping):
        out: dict[str, Any] = {}
        for name, spec in shapes.items():
            if isinstance(spec, str):
                out[name] = parse_shape_spec(f"{name}={spec}")[1]
            else:
                out[name] = spec
        return out
    from .errors import ShapeError
    if isinstance(shapes, str):
        shapes = [shapes]
    try:
        items = list(shapes)
    except TypeError:
        raise ShapeError(f"shapes must be a dict such as {{'W': (3, 4)}} or strings such as 'W=3x4', "
                         f"not {type(shapes).__name__}") from None
    out = {}
    given: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise ShapeError(f"a shape declaration is a string such as 'W=3x4', not {item!r}")
        name, spec = parse_shape_spec(item)
        if name in out and out[name] != spec:
            raise ShapeError(f"conflicting --shape declarations for {name}: {given[name]!r} and {item!r}",
                             hint="declare each variable once, e.g. S=3x3,symmetric")
        out[name] = spec
        given.setdefault(name, item)
    return out


def _absent_variable(name: str, declared: Mapping[str, Any]) -> Var:
    """A wrt variable that does not occur: its shape from its declaration or the naming convention."""
    spec = declared.get(name)
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ("symmetric", "spd", "prob"):
        return Var(name, (f"n_{name}", 1 if spec[0] == "prob" else f"n_{name}"), spec[0])
    if spec in ("scalar", ()) or (spec is None and is_greek(name)):
        return Var(name, (1, 1))
    if isinstance(spec, int):
        return Var(name, (spec, 1))
    if isinstance(spec, tuple) and len(spec) == 2:
        return Var(name, spec)  # type: ignore[arg-type]
    if spec == "vector" or (spec is None and name[0].islower()):
        return Var(name, (f"n_{name}", 1))
    return Var(name, (f"m_{name}", f"n_{name}"))


def _wrt_list(wrt: str | Iterable[str] | None) -> list[str]:
    if wrt is None:
        return []
    try:
        names = [wrt] if isinstance(wrt, str) else list(wrt)
    except TypeError:
        raise MatgradError(f"wrt must be a variable name or a list of names, not {type(wrt).__name__}") from None
    out: list[str] = []
    for n in names:
        for part in str(n).replace(",", " ").split():
            if not part.isidentifier():
                raise MatgradError(f"--wrt {part!r} is not a variable name")
            if part not in out:
                out.append(part)
    return out


class Derivation:
    """A derived gradient: the function, its network view, the adjoints and the gradients.

    `gradients_ir` holds matgrad's own expressions; `gradient`/`gradients` give SymPy.
    """

    def __init__(self, text: str, expr: Expr, variables: dict[str, Var], wrt: list[str], network: Network,
                 adjoints: Adjoints, gradients_ir: dict[str, Expr], absent: list[str]) -> None:
        self.text = text
        self.expr = expr
        self.variables = variables
        self.wrt = wrt
        self.network = network
        self.adjoints = adjoints
        self.gradients_ir = gradients_ir
        self.absent = absent

    def __repr__(self) -> str:
        return f"<Derivation of {self.text!r} w.r.t. {', '.join(self.wrt)}>"

    # --- SymPy at the boundary
    @cached_property
    def gradients(self) -> dict[str, Any]:
        from .limits import check_sympy_budget
        from .sympy_bridge import to_sympy
        out = {}
        for name, g in self.gradients_ir.items():
            check_sympy_budget(g)
            sym = to_sympy(g)
            _REGISTRY[_registry_key(sym)] = g
            out[name] = sym
        return out

    @property
    def gradient(self) -> Any:
        """The gradient w.r.t. the first wrt variable, as a SymPy expression."""
        return self.gradients[self.wrt[0]]

    @property
    def function(self) -> Any:
        from .limits import check_sympy_budget
        from .sympy_bridge import to_sympy
        check_sympy_budget(self.expr)
        return to_sympy(self.expr)

    # --- text and LaTeX
    def gradient_text(self, name: str | None = None, *, name_shared: bool = True) -> str:
        return to_text(self.gradients_ir[name or self.wrt[0]], name_shared=name_shared)

    def latex(self, name: str | None = None) -> str:
        from .latex import gradient_latex
        name = name or self.wrt[0]
        return gradient_latex(name, self.gradients_ir[name], self.expr)

    def explain(self) -> str:
        from .report import explain
        return explain(self)

    def verify(self, *, seed: int = 0) -> Any:
        """Check every gradient against central differences; returns a VerifyReport."""
        from .verify import verify
        present = {k: v for k, v in self.gradients_ir.items() if k in self.variables}
        # With only absent variables, check their zero gradients (f does not change with them).
        return verify(self.expr, present or dict(self.gradients_ir), seed=seed)

    def __str__(self) -> str:
        return "\n".join(f"∇_{n} F = {self.gradient_text(n)}" for n in self.wrt)

    def _repr_latex_(self) -> str:
        return "$$" + " \\\\ ".join(self.latex(n) for n in self.wrt) + "$$"

    def _repr_html_(self) -> str:
        """Jupyter: the network table and the gradients."""
        from .notes import derivation_html
        return derivation_html(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the network picture, when Graphviz's dot program is installed."""
        from .draw import dot_available, svg
        if not dot_available():
            return None
        try:
            return svg(self.network, self.wrt)
        except MatgradError:
            return None


_REGISTRY: dict[Any, Expr] = {}


def _registry_key(sym: Any) -> Any:
    try:
        hash(sym)
        return sym
    except TypeError:  # pragma: no cover - sympy expressions are hashable
        return id(sym)


def compile_expression(expr: str, shapes: Shapes = None) -> tuple[Expr, dict[str, Var], dict[str, Any]]:
    declared = _declarations(shapes)
    tree = parse(expr)
    typed = infer_shapes(tree, expr, declared)
    check_expression(typed.expr)
    check_written_size([typed.expr], "the expression")
    return typed.expr, typed.variables, declared


def derive(expr: str, wrt: str | Iterable[str], shapes: Shapes = None) -> Derivation:
    """Derive ∂F/∂v for each v in `wrt` (one backward pass serves all) of the scalar function `expr`."""
    f, variables, declared = compile_expression(expr, shapes)
    scalar_or_error(f, expr)
    names = _wrt_list(wrt)
    if not names:
        raise MatgradError("no variable to differentiate with respect to (give --wrt NAME)")
    for n in names:
        if n in variables and variables[n].kind == "prob":
            raise UnsupportedError(f"{n} is declared a probability vector; derive with respect to it undeclared")
    present = [variables[n] for n in names if n in variables]
    absent = [n for n in names if n not in variables]
    network = build_network(f, present or default_wrt(variables))
    also = frozenset(l.z for l in network.layers) | {network.output}
    adj = backward(network.expr, present, also=also)
    # Simplified on first use (network view, --explain): each delta is simplified on its own,
    # so computing them all costs O(depth²) and a plain derive need not pay it.
    network.deltas = _LazyDeltas(lambda: _simplified_deltas(network, adj))
    check_written_size([adj.gradients[v.name] for v in present], "the gradient")
    gradients: dict[str, Expr] = {}
    for n in names:
        if n in variables:
            g = adj.gradients[n]
            v = variables[n]
            if v.kind in ("symmetric", "spd"):  # the gradient in the space of symmetric matrices
                g = S.mul(S.const(S.Fraction(1, 2)), S.add(g, _transpose_terms(g)))
            gradients[n] = S.simplify(g)
        else:
            gradients[n] = S.zeros(_absent_variable(n, declared).shape)
    return Derivation(expr, f, variables, names, network, adj, gradients, absent)


def _transpose_terms(g: Expr) -> Expr:
    """Gᵀ taken term by term, so that symmetric terms meet their twins and collect: sym(G) stays short."""
    from .ir import Add
    if isinstance(g, Add):
        return S.add(*(S.transpose(t) for t in g.terms))
    return S.transpose(g)


class _LazyDeltas(Mapping):
    """A read-only dict computed by `compute()` the first time it is read."""

    def __init__(self, compute: Any) -> None:
        self._compute = compute
        self._data: dict | None = None

    def _get(self) -> dict:
        if self._data is None:
            self._data = self._compute()
            self._compute = None
        return self._data

    def __getitem__(self, key: Any) -> Any:
        return self._get()[key]

    def __iter__(self) -> Any:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


def _simplified_deltas(network: Network, adj: Adjoints) -> dict[int, Expr]:
    raw = {l.index: _layer_delta(l, adj) for l in network.layers}
    check_written_size(list(raw.values()), "the deltas of the network view")
    return {i: S.simplify(d) for i, d in raw.items()}


def _layer_delta(layer: Layer, adj: Adjoints) -> Expr:
    """δ⁽ˡ⁾ = ∂J/∂z⁽ˡ⁾. An input leaf used elsewhere too (x in W'*W*x - x) gets the part that
    flows through this layer, as in the seeds' tables; an inner node gets its whole adjoint."""
    if layer.z.children():
        return adj.adjoint.get(layer.z, S.zeros(layer.z.shape))
    above = adj.adjoint.get(layer.node)
    if above is None:
        return S.zeros(layer.z.shape)
    return adjoint(layer.node, above, layer.node.children().index(layer.z))


class CheckResult(NamedTuple):
    """Outcome of checking a human-written gradient."""
    ok: bool
    report: Any
    claim: Expr
    derived: Expr

    def __str__(self) -> str:
        return str(self.report)


def check(expr: str, wrt: str, claim: str, shapes: Shapes = None, *, seed: int = 0) -> CheckResult:
    """Check a claimed gradient `claim` of `expr` w.r.t. `wrt` numerically (finite differences).

    The claim is read in the same variable context as the expression, so its names
    share the expression's dimensions.
    """
    from .verify import check_claim
    names = _wrt_list(wrt)
    if len(names) != 1:
        raise MatgradError("check takes exactly one --wrt variable")
    name = names[0]
    f, variables, _ = compile_expression(expr, shapes)
    scalar_or_error(f, expr)
    if name not in variables:
        raise MatgradError(f"{name} does not occur in the expression; its gradient is 0")
    claim_expr = _compile_claim(claim, variables, variables[name])
    report = check_claim(f, name, claim_expr, seed=seed)
    derived = derive(expr, name, shapes).gradients_ir[name]
    return CheckResult(bool(report.ok), report, claim_expr, derived)


def _compile_claim(claim: str, variables: dict[str, Var], target: Var) -> Expr:
    """Type the claim with the expression's variables fixed, so the two share dimensions."""
    from .errors import ShapeError
    fixed = {n: (v.shape if v.kind == "general" else (v.kind, v.shape)) for n, v in variables.items()}
    c = infer_shapes(parse(claim), claim, fixed, result=target.shape).expr
    check_expression(c)
    check_written_size([c], "the claim")
    if c.is_scalar and not target.is_scalar:  # "0" or "1" stands for a constant matrix
        c = S.fill(c, target.shape)
    if c.shape != target.shape:
        raise ShapeError(f"the claim is {c.shape[0]}×{c.shape[1]} but {target.name} is "
                         f"{target.shape[0]}×{target.shape[1]}; a gradient has the shape of its variable")
    return c


def lambdify(obj: Any) -> Any:
    """A NumPy callable for anything matgrad returns (IR, SymPy gradient, Derivation).

    Takes arrays by name, ignores names it does not use, accepts vectors as 1-D
    arrays or n×1 columns.
    """
    from .codegen import lambdify as lam  # the code --format numpy prints, which the verifier runs too
    if isinstance(obj, Derivation):
        obj = obj.gradients_ir[obj.wrt[0]]
    if isinstance(obj, Expr):
        return lam(obj)
    key = _registry_key(obj)
    if key in _REGISTRY:
        return lam(_REGISTRY[key])
    raise MatgradError("lambdify takes an expression that matgrad returned (a gradient or a Derivation)")
