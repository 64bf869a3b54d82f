"""The recipes: every worked example derives, verifies, and its stated result is accepted;
every printed form recorded as a typo is rejected."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import matgrad
from matgrad import recipes
from matgrad.errors import MatgradError
from matgrad_cli.main import main

NAMES = recipes.names()
REQUIRED = {"ufldl_sparse_coding", "ufldl_topographic", "ufldl_ica", "cs6910_mlp_sigmoid", "cs6910_mlp_tanh",
            "cs6910_output_units", "sadeghi_l_layer", "sadeghi_trick", "galvan_recurrence",
            "linear_regression", "ridge_regression", "logistic_regression", "softmax_regression",
            "pca_autoencoder", "gaussian_loglik", "sparse_coding_topographic", "two_layer_batch"}


def test_the_required_recipes_exist():
    assert REQUIRED <= set(NAMES)


def test_repository_folder_is_the_package_folder():
    root = Path(__file__).resolve().parent.parent / "recipes"
    if not root.exists():
        pytest.skip("not a source checkout")
    assert root.resolve() == recipes.recipes_dir()


@pytest.mark.parametrize("name", NAMES)
def test_file_is_plain_toml_with_the_fields(name):
    data = tomllib.loads((recipes.recipes_dir() / f"{name}.toml").read_text(encoding="utf-8"))
    for key in ("title", "source", "expression", "wrt", "prose"):
        assert data[key], key
    assert isinstance(data["wrt"], list)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_derives_and_verifies(name):
    r = recipes.load(name)
    d = r.derive()
    assert list(d.wrt) == list(r.wrt)
    report = d.verify()
    assert report.ok, str(report)


@pytest.mark.parametrize("name", NAMES)
def test_stated_result_is_accepted_by_check(name):
    r = recipes.load(name)
    assert r.printed, "every recipe states its result"
    for w in r.printed:
        result = matgrad.check(r.expression, w, r.stated(w), r.shapes)
        assert result.ok, f"{name} ∇_{w}: {result.report}"


WRONG = [(n, w) for n in NAMES for w in sorted(recipes.load(n).wrong)]


def test_the_known_typos_are_recorded():
    assert {n for n, _ in WRONG} >= {"sadeghi_trick", "galvan_recurrence", "ufldl_ica"}


@pytest.mark.parametrize("name,wrt", WRONG)
def test_printed_typo_is_rejected(name, wrt):
    r = recipes.load(name)
    try:
        result = matgrad.check(r.expression, wrt, r.printed[wrt], r.shapes)
    except MatgradError:  # a dimension error: rejected before any number is computed
        return
    assert not result.ok, f"{name} ∇_{wrt}: the printed typo was accepted"


def test_sadeghi_sign_typo_is_diagnosed_as_a_sign_error():
    r = recipes.load("sadeghi_trick")
    checks = [c for c in r.check_printed() if c.which == "printed"]
    assert len(checks) == 3 and all(not c.accepted and "sign" in c.message for c in checks)


def test_check_printed_is_as_expected_everywhere():
    for name in NAMES:
        assert all(c.as_expected for c in recipes.load(name).check_printed()), name


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(MatgradError, match="no recipe named"):
        recipes.load("no_such_recipe")


def test_malformed_recipe_is_rejected(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('title = "t"\nsource = "s"\nexpression = "x\'*x"\nwrt = ["x"]\nprose = "p"\n'
                 'printed_is_wrong = true\n[printed]\nx = "x"\n', encoding="utf-8")
    with pytest.raises(MatgradError, match="corrected"):
        recipes.load(p)
    p.write_text('title = "t"\nsource = "s"\nexpression = "x\'*x"\nwrt = ["x"]\nprose = "p"\nextra = 1\n',
                 encoding="utf-8")
    with pytest.raises(MatgradError, match="unknown key"):
        recipes.load(p)


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_lists_recipes():
    r = _cli("recipes")
    assert r.exit_code == 0
    for name in NAMES:
        assert name in r.output
    assert "typo" in r.output


def test_cli_recipe_shows_everything_and_flags_the_typo():
    r = _cli("recipe", "sadeghi_trick")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Layer" in out and "Deltas" in out and "∇_W F =" in out and "verified" in out
    assert out.count("REJECTED") == 3 and "typo" in out and "accepted" in out


def test_cli_recipe_ica_dimension_typo():
    r = _cli("recipe", "ufldl_ica")
    assert r.exit_code == 0, r.output
    assert "shape error" in r.output


def test_cli_unknown_recipe_exits_2():
    r = _cli("recipe", "nope")
    assert r.exit_code == 2
