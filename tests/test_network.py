"""The network view reproduces the seeds' layer tables (UFLDL, 001_… page) row for row."""

from __future__ import annotations

import matgrad
from matgrad.printers import to_text


def rows(expr: str, wrt: str, shapes=None):
    d = matgrad.derive(expr, wrt, shapes)
    net = d.network
    out = []
    for i, layer in enumerate(net.layers):
        last = i == len(net.layers) - 1
        weight = to_text(layer.weight) if layer.kind == "weight" else ("N/A" if last else "I")
        out.append((weight, layer.f, layer.f_prime, to_text(layer.z), to_text(net.deltas[layer.index])))
    return net, out


def test_example1_sparse_coding_table():
    net, r = rows("||A*s - x||^2", "s")
    assert net.J == "sum" and net.is_chain
    assert r == [
        ("A", "z", "1", "s", "2*A'*(A*s - x)"),
        ("I", "z - x", "1", "A*s", "2*(A*s - x)"),
        ("N/A", "z.^2", "2*z", "A*s - x", "2*(A*s - x)"),
    ]


def test_example2_topographic_penalty_table():
    net, r = rows("sum(sqrt(V*(s.^2) + eps))", "s")
    assert net.J == "sum" and net.is_chain
    assert [row[:3] for row in r] == [
        ("I", "z.^2", "2*z"),
        ("V", "z", "1"),
        ("I", "z + eps", "1"),
        ("N/A", "sqrt(z)", "0.5*z.^(-1/2)"),
    ]
    assert [row[3] for row in r] == ["s", "s.^2", "V*s.^2", "V*s.^2 + eps"]


def test_example3_ica_table_with_tied_weights():
    net, r = rows("||W'*W*x - x||^2", "W")
    assert net.J == "sum" and net.is_chain
    assert [row[:3] for row in r] == [("W", "z", "1"), ("W'", "z", "1"), ("I", "z - x", "1"), ("N/A", "z.^2", "2*z")]
    assert r[3][4] == "2*(W'*W*x - x)"        # δ⁽⁴⁾ = 2z
    assert r[1][4] == "2*W*(W'*W*x - x)"      # δ⁽²⁾ = (Wᵀ)ᵀ δ⁽³⁾
    d = matgrad.derive("||W'*W*x - x||^2", "W")
    explanation = d.explain()
    assert "W as the weight of layer 1" in explanation and "Wᵀ as the weight of layer 2" in explanation


def test_non_chain_is_a_graph_with_parents():
    d = matgrad.derive("||A*s - x||^2 + gamma*||A||^2", "A")
    net = d.network
    assert not net.is_chain
    joins = [l for l in net.layers if l.kind == "join"]
    assert len(joins) == 1 and len(joins[0].parents) == 2
    table = str(net)
    assert "Parents" in table and "not a chain" in table
    # nothing silently dropped: both branches' layers are there
    fs = [l.f for l in net.layers]
    assert "z - x" in fs and "z.^2" in fs


def test_table_text_has_seed_columns():
    d = matgrad.derive("||W'*W*x - x||^2", "W")
    header = str(d.network).splitlines()[0]
    for col in ("Layer", "Weight", "Activation f", "f′", "Input z", "Delta δ"):
        assert col in header
