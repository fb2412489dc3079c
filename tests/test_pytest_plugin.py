"""The pytest plugin, exercised with pytest's own pytester in subprocesses (the plugin is
registered through the real `pytest11` entry point of the installed distribution)."""

from __future__ import annotations

import textwrap

BAD_RECIPE = textwrap.dedent("""
    name = "needs-ancient-python"
    engine = "reference"
    [audio]
    sample_rate = 22050
    [smoke]
    text = "hi"
    [requires]
    python = "<3.0"
""")


def _tests(pytester, monkeypatch):
    from tests.conftest import PLUGINS

    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    monkeypatch.setenv("TTS_DOCTOR_PLUGINS", "faulty_probes")
    pytester.makepyfile(test_env=textwrap.dedent("""
        import pytest
        from tts_doctor.pytest_plugin import requires_tts_env

        def test_report_fixture(tts_doctor_report):
            ids = {f.id for f in tts_doctor_report.findings}
            assert "python.platform" in ids

        @requires_tts_env("python.platform")
        def test_runs_when_probe_ok():
            pass

        @pytest.mark.requires_tts_env("fault.raises")
        def test_needs_a_broken_probe():
            pass
    """))


def test_healthy_session_runs_and_the_marker_skips_with_the_reason(pytester, monkeypatch):
    _tests(pytester, monkeypatch)
    result = pytester.runpytest_subprocess("--tts-doctor", "--tts-doctor-only",
                                           "python,packages", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    # the probe the marker names is in error, and the skip says which and why
    result.stdout.fnmatch_lines(["*tts-doctor: fault.raises is error: probe raised ValueError*"])


def test_failing_check_stops_the_session_with_the_report(pytester, monkeypatch):
    _tests(pytester, monkeypatch)
    recipe = pytester.path / "bad.toml"
    recipe.write_text(BAD_RECIPE)
    result = pytester.runpytest_subprocess(f"--tts-doctor={recipe}", "--tts-doctor-only",
                                           "python")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*tts-doctor check failed*",
                                 "*python.platform: Python * is outside needs-ancient-python*"])
    assert " passed" not in result.stdout.str()  # no test ran


def test_plugin_is_inert_without_the_option(pytester):
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "tts-doctor check" not in result.stdout.str()


def test_unknown_probe_in_a_marker_is_a_usage_error(pytester):
    pytester.makepyfile(test_m=textwrap.dedent("""
        import pytest
        @pytest.mark.requires_tts_env("no.such.probe")
        def test_x():
            pass
    """))
    result = pytester.runpytest_subprocess()
    assert "no probe or category matches 'no.such.probe'" in result.stdout.str() + \
        result.stderr.str()
