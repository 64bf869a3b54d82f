"""LaTeX notes: complete documents that compile with pdflatex."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

import matgrad
from matgrad import notes, recipes
from matgrad_cli.main import main

PDFLATEX = shutil.which("pdflatex")
needs_pdflatex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")


def _compile(tex: str, tmp_path, stem: str = "doc") -> str:
    src = tmp_path / f"{stem}.tex"
    src.write_text(tex, encoding="utf-8")
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                        f"-output-directory={tmp_path}", str(src)],
                       capture_output=True, text=True, timeout=120)
    log = (tmp_path / f"{stem}.log").read_text(encoding="utf-8", errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert r.returncode == 0 and not errors, f"LaTeX errors in {stem}:\n" + "\n".join(errors) + r.stdout[-2000:]
    assert "Missing character" not in log, "a character the font does not have"
    assert (tmp_path / f"{stem}.pdf").stat().st_size > 1000
    return log


def test_document_has_the_parts():
    doc = notes.recipe_notes(recipes.load("ufldl_ica"))
    assert doc.startswith("\\documentclass")
    for pkg in ("amsmath", "amssymb", "booktabs"):
        assert f"\\usepackage{{{pkg}}}" in doc
    assert "\\toprule" in doc and "\\bottomrule" in doc
    assert "\\nabla_{W} F =" in doc and "^{\\top}" in doc and "\\odot" in doc and "\\lVert" in doc
    assert "\\delta^{(4)}" in doc and "typo" in doc
    assert doc.rstrip().endswith("\\end{document}")


def test_layer_functions_are_typeset_from_the_ir():
    d = matgrad.derive("sum(sqrt(V*(s.^2) + eps))", "s")
    fs = [notes.layer_function_latex(l) for l in d.network.layers]
    assert ("z^{\\circ 2}", "2 z") in fs
    assert any(f == "\\sqrt{z}" for f, _ in fs)


def test_text_is_escaped():
    t = notes.text_latex("50% of a_b & {x} ∇_{W₂} ‖WᵀW‖ — σ′")
    assert "\\%" in t and "\\_" in t and "\\&" in t and "\\{x\\}" in t and "\\nabla" in t


@needs_pdflatex
@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_compiles(name, tmp_path):
    _compile(notes.recipe_notes(recipes.load(name)), tmp_path, name)


@needs_pdflatex
def test_expression_notes_compile(tmp_path):
    d = matgrad.derive("x'*S*x + logdet(S) - trace(inv(S))", ["S", "x"], {"S": "spd"})
    _compile(notes.notes_document(d), tmp_path)


def test_cli_notes_writes_a_file(tmp_path):
    out = tmp_path / "ica.tex"
    r = CliRunner().invoke(main, ["notes", "ufldl_ica", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("\\documentclass")
    r = CliRunner().invoke(main, ["notes", "||A*s - x||^2", "--wrt", "s"])
    assert r.exit_code == 0 and "\\begin{document}" in r.output


def test_cli_notes_needs_wrt_for_an_expression():
    r = CliRunner().invoke(main, ["notes", "||A*s - x||^2"])
    assert r.exit_code == 2 and "--wrt" in r.output
