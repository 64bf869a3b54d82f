"""Shape inference: naming conventions, declarations, --shape specs, and errors
that name both operands with their shapes."""

from __future__ import annotations

import pytest

from matgrad.errors import DomainError, MatgradError, ShapeError, UnsupportedError
from matgrad.ir import SCALAR, Fill, Identity, Var
from matgrad.parse import parse
from matgrad.printers import to_text
from matgrad.shapes import infer_shapes, is_greek, parse_shape_spec


def infer(text, declared=None):
    return infer_shapes(parse(text), text, declared)


def shapes_of(text, declared=None):
    return {k: v.dims for k, v in infer(text, declared).variables.items()}


def is_symbolic(d) -> bool:
    return isinstance(d, str)


# ----------------------------------------------------------------------------- conventions

@pytest.mark.parametrize("name,kind", [
    ("A", "matrix"), ("W", "matrix"), ("X1", "matrix"), ("Xs", "matrix"),
    ("x", "vector"), ("s", "vector"), ("b", "vector"), ("x_1", "vector"), ("y2", "vector"),
    ("alpha", "scalar"), ("gamma", "scalar"), ("eps", "scalar"), ("lambda", "scalar"), ("lam", "scalar"),
    ("mu", "scalar"), ("sigma_1", "scalar"), ("γ", "scalar"), ("λ", "scalar"), ("μ", "scalar"),
])
def test_naming_conventions(name, kind):
    t = infer(name)
    r, c = t.variables[name].dims
    if kind == "scalar":
        assert (r, c) == SCALAR
    elif kind == "vector":
        assert c == 1 and is_symbolic(r)
    else:
        assert is_symbolic(r) and is_symbolic(c) and r != c
    assert t.variables[name].kind == "general"


@pytest.mark.parametrize("name,expected", [("gamma", True), ("γ", True), ("eps_2", True), ("g", False),
                                           ("x", False), ("A", False), ("epsilon", True)])
def test_is_greek(name, expected):
    assert is_greek(name) is expected


def test_identity_takes_its_size_from_context():
    t = infer("A + I")
    a = t.variables["A"]
    assert a.dims[0] == a.dims[1]
    assert "I" not in t.variables
    assert to_text(t.expr) == "A + I"
    assert infer("I*A").expr == infer("A").expr


def test_identity_alone_in_a_product_is_dropped():
    assert to_text(infer("I*x").expr) == "x"
    assert to_text(infer("W*I*x").expr) == "W*x"


def test_ones_is_a_vector_of_the_needed_length():
    t = infer("ones'*x")
    assert t.expr.shape == SCALAR
    assert "ones" not in t.variables
    s = infer("x + ones").expr
    assert s.shape == t.variables["x"].dims
    assert any(isinstance(e, Fill) for e in s.terms)  # type: ignore[attr-defined]


def test_ones_with_declared_length():
    t = infer("ones'*x", {"x": 4})
    assert t.variables["x"].dims == (4, 1)


def test_same_name_same_shape():
    t = infer("x'*A*x")
    (n, one), (r, c) = t.variables["x"].dims, t.variables["A"].dims
    assert one == 1 and r == c == n


def test_shapes_flow_through_a_chain():
    v = shapes_of("A*B*C*x")
    assert v["A"][1] == v["B"][0] and v["B"][1] == v["C"][0] and v["C"][1] == v["x"][0]
    assert infer("A*B*C*x").expr.shape == (v["A"][0], 1)


def test_generated_dimension_names_avoid_variable_names():
    # n is a variable here, so a dimension may not be called n
    t = infer("A*n", {"n": "vector"})
    dims = set(t.variables["A"].dims) | set(t.variables["n"].dims)
    assert "n" not in dims


# ----------------------------------------------------------------------------- declarations

@pytest.mark.parametrize("declared,expected,kind", [
    ({"x": 5}, (5, 1), "general"),
    ({"W": (3, 4)}, (3, 4), "general"),
    ({"c": "scalar"}, (1, 1), "general"),
    ({"c": ()}, (1, 1), "general"),
    ({"gamma": "vector"}, None, "general"),
    ({"W": ("m", "n")}, ("m", "n"), "general"),
    ({"W": (1, 4)}, (1, 4), "general"),
])
def test_declarations(declared, expected, kind):
    (name, _), = declared.items()
    t = infer(name, declared)
    v = t.variables[name]
    if expected is None:
        assert v.dims[1] == 1 and is_symbolic(v.dims[0])
    else:
        assert v.dims == expected
    assert v.kind == kind


@pytest.mark.parametrize("spec,kind", [
    (("symmetric", None), "symmetric"),
    (("spd", None), "spd"),
    (("symmetric", (4, 4)), "symmetric"),
    (("spd", "matrix"), "spd"),
])
def test_structured_declarations(spec, kind):
    t = infer("S*x", {"S": spec})
    s = t.variables["S"]
    assert s.kind == kind
    assert s.dims[0] == s.dims[1]
    assert t.variables["x"].dims[0] == s.dims[1]


def test_symmetric_transpose_vanishes():
    assert to_text(infer("S'*x", {"S": ("symmetric", None)}).expr) == "S*x"
    assert to_text(infer("S'*x").expr) == "S'*x"


def test_symmetric_declaration_must_be_square():
    with pytest.raises(ShapeError) as info:
        infer("S", {"S": ("symmetric", (3, 4))})
    assert "symmetric" in str(info.value) and "3×4" in str(info.value)


def test_unknown_declaration_is_a_shape_error():
    with pytest.raises(ShapeError):
        infer("x", {"x": "blob"})
    with pytest.raises(ShapeError):
        infer("x", {"x": (1, 2, 3)})


def test_declared_but_unused_names_are_ignored():
    t = infer("x", {"W": (3, 4)})
    assert set(t.variables) == {"x"}


def test_declared_sizes_propagate():
    v = shapes_of("W*x + b", {"W": (3, 4)})
    assert v == {"W": (3, 4), "x": (4, 1), "b": (3, 1)}


def test_declared_size_meets_a_named_dimension():
    v = shapes_of("A + B", {"A": (3, 4), "B": ("m", "n")})
    assert v["B"] == (3, 4)


def test_distinct_declared_dimension_names_stay_distinct():
    with pytest.raises(MatgradError):
        infer("tr(A)", {"A": ("m", "n")})


# ----------------------------------------------------------------------------- --shape specs

@pytest.mark.parametrize("text,expected", [
    ("W=3x4", ("W", (3, 4))),
    ("W=3×4", ("W", (3, 4))),
    ("W = 3 x 4", ("W", (3, 4))),
    ("x=5", ("x", 5)),
    ("c=scalar", ("c", "scalar")),
    ("v=vector", ("v", "vector")),
    ("M=matrix", ("M", "matrix")),
    ("S=symmetric", ("S", ("symmetric", None))),
    ("S=sym", ("S", ("symmetric", None))),
    ("P=spd", ("P", ("spd", None))),
    ("S=4x4,symmetric", ("S", ("symmetric", (4, 4)))),
    ("X=m x n", ("X", ("m", "n"))),
    ("X=mxn", ("X", ("m", "n"))),
    ("X=3 x n", ("X", (3, "n"))),
    ("γ=scalar", ("γ", "scalar")),
])
def test_parse_shape_spec(text, expected):
    assert parse_shape_spec(text) == expected


@pytest.mark.parametrize("text", ["W", "W=", "W=3x", "W=3x4x5", "3=4", "W=foo bar", "W=-3", "=3x4",
                                  "W=3 by 4", "W=x"])
def test_bad_shape_specs(text):
    with pytest.raises(ShapeError) as info:
        parse_shape_spec(text)
    assert "--shape" in str(info.value)


def test_shape_spec_feeds_infer_shapes():
    declared = dict(parse_shape_spec(s) for s in ["W=3x4", "x=4", "c=scalar"])
    v = shapes_of("c*W*x", declared)
    assert v == {"c": (1, 1), "W": (3, 4), "x": (4, 1)}


# ----------------------------------------------------------------------------- errors

def test_mismatch_names_both_operands_and_shapes():
    with pytest.raises(ShapeError) as info:
        infer("W*x", {"W": (3, 4), "x": 5})
    msg = str(info.value)
    assert "W (3×4)" in msg and "x (5×1)" in msg
    assert info.value.pos == 1  # the caret is under the *
    assert msg.splitlines()[-1] == "   ^"


@pytest.mark.parametrize("text,declared,fragments", [
    ("x*y", None, ["x (n×1)", "y (m×1)", "multiply"]),
    ("x + A", None, ["x (n×1)", "A (n×m)", "add"]),
    ("x - A*y", {"A": (3, 4), "x": 5}, ["A*y (3×1)", "x (5×1)", "subtract"]),
    ("x .* A", None, ["x (n×1)", "A (n×m)", "entrywise"]),
    ("x ./ A", None, ["x (n×1)", "A (n×m)", "entrywise"]),
    ("A*B + C", {"A": (2, 3), "B": (3, 4), "C": (4, 2)}, ["A*B (2×4)", "C (4×2)"]),
])
def test_shape_errors(text, declared, fragments):
    with pytest.raises(ShapeError) as info:
        infer(text, declared)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, (f, msg)
    assert "^" in msg.splitlines()[-1]


def test_scalar_plus_vector_broadcasts_not_error():
    # x'*x + x: a scalar added to a vector broadcasts
    t = infer("x'*x + x")
    assert t.expr.shape == t.variables["x"].dims


def test_product_of_two_vectors_is_an_error():
    with pytest.raises(ShapeError) as info:
        infer("x*y")
    assert "inner dimensions" in str(info.value)


def test_product_of_vector_with_itself_is_an_error():
    with pytest.raises(ShapeError):
        infer("x*x")


@pytest.mark.parametrize("text,printed,like", [
    ("1 - y", "1 - y", "y"),
    ("V*s + eps", "V*s + eps", ("V", 0)),
    ("y + 2", "y + 2", "y"),
    ("alpha + x", "alpha + x", "x"),
    ("A + 1", "A + 1", "A"),
    ("x .* 3", "3*x", "x"),
    ("x ./ alpha", "x/alpha", "x"),
    ("x'*x + 1", "x'*x + 1", None),
])
def test_scalar_broadcast(text, printed, like):
    t = infer(text)
    if like is None:
        expected = SCALAR
    elif isinstance(like, tuple):
        expected = (t.variables[like[0]].dims[like[1]], 1)
    else:
        expected = t.variables[like].dims
    assert t.expr.shape == expected
    assert to_text(t.expr) == printed


def test_broadcast_builds_fill():
    e = infer("1 - y").expr
    assert any(isinstance(t, Fill) for t in e.terms)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["det(x)", "tr(x)", "inv(x)", "logdet(x)", "softmax(A)", "logsumexp(X)"])
def test_domain_errors(text):
    with pytest.raises(DomainError) as info:
        infer(text)
    msg = str(info.value)
    assert "needs a" in msg
    assert info.value.pos == 0


def test_det_of_vector_message():
    with pytest.raises(DomainError) as info:
        infer("det(x)")
    assert "square" in str(info.value) and "x is n×1" in str(info.value)


def test_power_of_vector_suggests_elementwise():
    with pytest.raises(ShapeError) as info:
        infer("x^2")
    msg = str(info.value)
    assert ".^" in msg and "x is n×1" in msg
    assert info.value.pos == 1


def test_power_of_rectangular_matrix_is_an_error():
    with pytest.raises(ShapeError):
        infer("A^2", {"A": (3, 4)})


def test_power_of_square_matrix_and_scalar():
    assert to_text(infer("X^2").expr) == "X^2"
    assert to_text(infer("alpha^2").expr) == "alpha^2"
    assert to_text(infer("x.^2").expr) == "x.^2"


def test_matrix_division_suggests_elementwise():
    with pytest.raises(ShapeError) as info:
        infer("A/B")
    msg = str(info.value)
    assert "./" in msg and "B (n×m)" in msg
    assert info.value.pos == 1


def test_division_by_scalar_is_fine():
    assert to_text(infer("A/alpha").expr) == "A/alpha"


@pytest.mark.parametrize("text", ["x^y", "x.^alpha", "X^(1/2)", "X^2.5"])
def test_unsupported_exponents(text):
    with pytest.raises(UnsupportedError):
        infer(text)


def test_errors_are_matgrad_errors():
    for cls in (ShapeError, DomainError, UnsupportedError):
        assert issubclass(cls, MatgradError)


def test_result_variables_match_leaves():
    t = infer("W*x + b", {"W": (3, 4)})
    assert t.variables["W"] == Var("W", (3, 4))
    assert isinstance(infer("I").expr, Identity)
