"""frontend.wetext on real environments: nothing installed, WeTextProcessing without pynini
(the half-install a failed pynini build leaves), the real pair, and ttsfrd as the
alternative frontend of a CosyVoice-style recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import envs, envs_text

pytestmark = pytest.mark.venv

HEAD = """name = "{name}"
engine = "callable"
[audio]
sample_rate = 22050
[smoke]
text = "今天天气很好"
[requires]
"""
NEEDS_WETEXT = HEAD.format(name="indextts-like") + 'wetextprocessing = "required"\n' \
    'ttsfrd = "absent"\n'
COSYVOICE = HEAD.format(name="cosyvoice-like") + 'ttsfrd = "optional"\n' \
    'wetextprocessing = "optional"\n'
OPTIONAL_ONLY = HEAD.format(name="optional-wetext") + 'wetextprocessing = "optional"\n' \
    'ttsfrd = "absent"\n'


def recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_nothing_installed_required_optional_alternative_and_no_recipe(cli, make_env, tmp_path):
    venv = make_env(envs.BARE)
    r = check(cli, venv, "--only", "frontend")
    assert [f["id"] for f in r.json["findings"]] == []  # no recipe mentions a frontend

    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, NEEDS_WETEXT))
    f = r.finding("frontend.wetext")
    assert f["status"] == "fail" and "No module named 'tn'" in f["summary"]
    # Linux x86_64, CPython 3.11: pynini has a wheel here, so the fix is a plain pip install
    assert f["details"]["pynini_wheel"] == "cp311-cp311-manylinux_2_27_x86_64"
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip install pynini==2.1.7 WeTextProcessing"]

    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, OPTIONAL_ONLY))
    assert r.finding("frontend.wetext")["status"] == "warn"

    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, COSYVOICE))
    f = r.finding("frontend.wetext")
    assert f["status"] == "fail" and "no Chinese text frontend" in f["summary"]


def test_wetextprocessing_without_pynini_names_pynini(cli, make_env, tmp_path):
    venv = make_env(envs_text.WETEXT_NO_PYNINI)
    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, NEEDS_WETEXT))
    f = r.finding("frontend.wetext")
    assert f["status"] == "fail"
    assert "No module named 'pynini'" in f["summary"]
    assert f["details"]["wetextprocessing"] == "1.2.0"


def test_ttsfrd_is_the_frontend_when_wetextprocessing_is_absent(cli, make_env, tmp_path):
    venv = make_env(envs.TTSFRD_REAL)
    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, COSYVOICE))
    f = r.finding("frontend.wetext")
    assert f["status"] == "ok", f
    assert "ttsfrd is the frontend here" in f["summary"]


@pytest.mark.slow
def test_pynini_and_wetextprocessing_normalise_chinese(cli, make_env, tmp_path):
    venv = make_env(envs_text.WETEXT)
    before = sorted(p.relative_to(venv.path) for p in venv.path.rglob("*"))
    r = check(cli, venv, "--only", "frontend", "--recipe", recipe(tmp_path, NEEDS_WETEXT))
    f = r.finding("frontend.wetext")
    assert f["status"] == "ok", f
    assert f["details"]["pynini_ok"] is True
    assert f["details"]["normalized"] == "二零二四年"
    # the shipped grammar was read, nothing written into the environment
    assert sorted(p.relative_to(venv.path) for p in venv.path.rglob("*")) == before
