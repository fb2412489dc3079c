"""Recipes: every built-in one validates, malformed ones are named precisely, and the CLI
lists, shows and validates them. Verdict changes by recipe are tested with the probes."""

from __future__ import annotations

import json
import textwrap

import pytest
from tts_doctor.recipe import RecipeError, builtin_names, load, validate

from tests.harness.recipes import write_recipe

REQUIRED = {"sambert-hifigan-16k", "indextts2", "cosyvoice", "piper", "reference-hifigan-v1"}


def test_the_required_recipes_ship_and_validate():
    assert REQUIRED <= set(builtin_names())
    for name in builtin_names():
        data = load(name)
        assert data["name"] == name
        assert data["audio"]["sample_rate"] > 0
        assert data["smoke"]["text"].strip()


def test_every_number_in_a_builtin_recipe_cites_its_source():
    """A numeric value must share its line with a comment (or sit under a commented table)."""
    from importlib import resources

    for name in builtin_names():
        text = resources.files("tts_doctor.recipes").joinpath(f"{name}.toml").read_text()
        for line in text.splitlines():
            body = line.split("#", 1)[0]
            if "=" not in body:
                continue
            value = body.split("=", 1)[1].strip()
            if value.replace(".", "", 1).isdigit() and value not in ("0",):
                assert "#" in line, f"{name}: uncited number: {line.strip()}"


def test_recipes_change_the_ttsfrd_requirement():
    from tts_doctor.registry import Context

    assert Context(load("sambert-hifigan-16k")).needs("ttsfrd") == "required"
    assert Context(load("cosyvoice")).needs("ttsfrd") == "optional"
    assert Context(load("piper")).needs("ttsfrd") == "absent"
    assert Context(None).needs("ttsfrd") is None


@pytest.mark.parametrize("body, key, words", [
    ('engine = "piper"\n[audio]\nsample_rate = 1\n[smoke]\ntext = "x"', "name", "missing"),
    ('name = "x"\nengine = "nope"\n[audio]\nsample_rate = 1\n[smoke]\ntext = "x"', "engine",
     "one of reference, piper"),
    ('name = "x"\nengine = "piper"\n[audio]\nsample_rate = "fast"\n[smoke]\ntext = "x"',
     "audio.sample_rate", "expected an integer"),
    ('name = "x"\nengine = "piper"\n[audio]\nsample_rate = 1\n[smoke]\ntext = "x"\n'
     '[requires]\nttsfrd = "maybe"', "requires.ttsfrd", "one of required, optional"),
    ('name = "x"\nengine = "piper"\n[audio]\nsample_rate = 1\n[smoke]\ntext = "x"\n'
     '[requires]\npython = "three"', "requires.python", "version specifier"),
    ('name = "x"\nengine = "piper"\nsurprise = 1\n[audio]\nsample_rate = 1\n[smoke]\ntext = "x"',
     "surprise", "unknown key"),
    ('name = "x"\nengine = "piper"\n[smoke]\ntext = "x"', "audio", "missing"),
])
def test_malformed_recipes_name_file_key_and_expectation(tmp_path, body, key, words):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(RecipeError) as err:
        load(str(path))
    message = str(err.value)
    assert str(path) in message
    assert f"'{key}'" in message
    assert words in message


def test_invalid_toml_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load(str(path))


def test_cli_list_show_validate(cli, tmp_path):
    r = cli("recipes", "list", "--json")
    assert r.returncode == 0
    assert REQUIRED <= {row["name"] for row in json.loads(r.stdout)}
    r = cli("recipes", "show", "sambert-hifigan-16k")
    assert "damo/speech_sambert-hifigan_tts_zh-cn_16k" in r.stdout and "#" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nengine = "piper"\n[audio]\nsample_rate = 0\n[smoke]\ntext="x"')
    r = cli("recipes", "validate", str(bad))
    assert r.returncode == 2
    assert "audio.sample_rate" in r.stderr and "Traceback" not in r.stderr
    assert cli("check", "--recipe", str(bad)).returncode == 2


def test_recipes_from_an_entry_point(tmp_path, make_env):
    """A package registers a recipe through the tts_doctor.recipes entry point group."""
    pkg = tmp_path / "acme_recipes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        def recipe():
            return {"name": "acme-voice", "engine": "callable",
                    "model": {"target": "acme:tts"},
                    "audio": {"sample_rate": 24000}, "smoke": {"text": "hello"}}
    '''))
    dist = tmp_path / "acme_recipes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-recipes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tts_doctor.recipes]\nacme-voice = "
                                           "acme_recipes:recipe\n")
    from tests.conftest import run_cli

    r = run_cli("recipes", "show", "acme-voice", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["audio"]["sample_rate"] == 24000
    r = run_cli("recipes", "list", env={"PYTHONPATH": str(tmp_path)})
    assert "acme-voice" in r.stdout


def test_validate_accepts_a_minimal_recipe():
    data = validate({"name": "m", "engine": "reference", "audio": {"sample_rate": 16000},
                     "smoke": {"text": "hi"}}, "inline")
    assert data["source"] == "inline"


def test_python_range_of_a_recipe_is_a_verdict(cli, tmp_path):
    path = write_recipe(tmp_path / "old.toml", 'python = ">=3.8,<3.9"', name="old", sample_rate=1,
                        text="x")
    r = cli("check", "--json", "--only", "python", "--recipe", path)
    f = r.finding("python.platform")
    assert f["status"] == "fail" and ">=3.8,<3.9" in f["summary"]
    assert f["fix"]["commands"] == ["python3.8 -m venv .venv-old"]


def test_recipe_package_pins_are_checked(cli, tmp_path):
    pins = 'click = ">=1"\npackaging = "<1"\nno-such-dist = ">=1"'
    path = write_recipe(tmp_path / "pins.toml", pins, name="pins", sample_rate=1, text="x",
                        table="requires.packages")
    r = cli("check", "--json", "--only", "packages.recipe", "--recipe", path)
    f = r.finding("packages.recipe")
    assert f["status"] == "fail"
    assert [m["package"] for m in f["details"]["missing"]] == ["no-such-dist"]
    assert [o["package"] for o in f["details"]["outside"]] == ["packaging"]
    assert "no-such-dist>=1" in f["fix"]["commands"][0]
