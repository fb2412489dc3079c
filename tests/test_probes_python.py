"""python.platform's fix for a recipe whose Python range excludes this interpreter: the
example `python3.X -m venv` names a Python that exists and that the range accepts."""

from __future__ import annotations

from tts_doctor.probes.python import _example

from tests.harness.recipes import write_recipe


def test_an_open_range_names_the_lowest_supported_python(cli, tmp_path):
    # the dev venv runs Python 3.11; ">=3.12" used to suggest python3.20, which does not exist
    path = write_recipe(tmp_path / "new.toml", 'python = ">=3.12"', name="new", sample_rate=1,
                        text="x")
    r = cli("check", "--json", "--only", "python", "--recipe", path)
    f = r.finding("python.platform")
    assert f["status"] == "fail" and ">=3.12" in f["summary"]
    assert f["fix"]["commands"] == ["python3.12 -m venv .venv-new"]


def test_example_python_for_a_range():
    assert _example(">=3.8") == "3.8"
    assert _example(">=3.9,<3.12") == "3.9"
    assert _example("<3.10") == "3.8"
    assert _example(">=3.8.5,<3.9") == "3.8"  # no 3.8.0, yet 3.8 releases qualify
    assert _example("==3.10.*") == "3.10"
    assert _example(">=3.10,!=3.10.*") == "3.11"
    # outside 3.8 .. 3.13: the nearest minor the range accepts
    assert _example(">=3.14") == "3.14"
    assert _example("<3.8") == "3.7"
    assert _example(">=3.8,<3.8") == "3"  # accepts nothing
