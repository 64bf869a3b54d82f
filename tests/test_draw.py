"""Pictures of the network (Graphviz) and the Jupyter representations."""

from __future__ import annotations

import shutil
import xml.dom.minidom
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import matgrad
from matgrad import draw
from matgrad.errors import MatgradError
from matgrad_cli.main import main

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")

ICA = "||W'*W*x - x||^2"


def test_dot_text_marks_tied_weights_and_wrt():
    d = matgrad.derive(ICA, "W")
    dot = draw.to_dot(d.network, d.wrt)
    assert dot.startswith("digraph network {") and dot.rstrip().endswith("}")
    assert "rankdir=LR" in dot
    assert dot.count("tied") == 2 and draw.HIGHLIGHT in dot
    assert "z.^2" in dot and 'label="I"' in dot and "J = Σ z" in dot


def test_dot_highlights_only_the_wrt_occurrences():
    d = matgrad.derive("||A*s - x||^2", "s")
    dot = draw.to_dot(d.network, d.wrt)
    # s is the input box, A labels an edge: only s is red
    s_line = next(l for l in dot.splitlines() if 'label="s"' in l)
    a_line = next(l for l in dot.splitlines() if 'label="A"' in l)
    assert draw.HIGHLIGHT in s_line and draw.HIGHLIGHT not in a_line


def test_dot_file_needs_no_dot_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    d = matgrad.derive(ICA, "W")
    p = draw.render(d, tmp_path / "n.dot")
    assert p.read_text(encoding="utf-8").startswith("digraph")


def test_svg_without_dot_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    d = matgrad.derive(ICA, "W")
    with pytest.raises(MatgradError, match="dot"):
        draw.render(d, tmp_path / "n.svg")
    assert d._repr_svg_() is None


def test_bad_suffix(tmp_path):
    d = matgrad.derive(ICA, "W")
    with pytest.raises(MatgradError, match="must end in"):
        draw.render(d, tmp_path / "n.jpg")


@needs_dot
@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_render_svg_png(tmp_path, suffix):
    d = matgrad.derive("-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", ["W1", "b1"], {"y": "prob"})
    p = draw.render(d, tmp_path / f"n.{suffix}")
    data = p.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG")
    else:
        xml.dom.minidom.parseString(data)


@needs_dot
def test_repr_svg_is_well_formed_xml():
    svg = matgrad.derive(ICA, "W")._repr_svg_()
    doc = xml.dom.minidom.parseString(svg)
    assert doc.documentElement.tagName == "svg"


class _Balanced(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def test_repr_html_is_well_formed():
    html = matgrad.derive("x'*A*x - b'*x", ["x", "A"])._repr_html_()
    p = _Balanced()
    p.feed(html)
    assert p.ok and not p.stack
    assert "<table>" in html and "∇_x F" in html and "∇_A F" in html and "Delta δ" in html


def test_cli_network_draw(tmp_path):
    out = tmp_path / "n.dot"
    r = CliRunner().invoke(main, ["network", ICA, "--wrt", "W", "--draw", str(out)])
    assert r.exit_code == 0, r.output
    assert "Layer" in r.output and out.exists()
    r = CliRunner().invoke(main, ["network", ICA, "--draw", str(tmp_path / "n.bmp")])
    assert r.exit_code == 2
