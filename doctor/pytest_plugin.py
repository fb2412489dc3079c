"""pytest plugin (entry point `pytest11`): gate a test session on `tts-doctor check`.

Inert unless asked for. It offers:

- `pytest --tts-doctor[=RECIPE]`: run the check once at session start; when it fails (a `fail`
  or `error`, or a `warn` with `--tts-doctor-fail-on=warn`), stop the session and print the
  report, so a broken image fails fast with the reason instead of with 200 import errors.
- the `tts_doctor_report` fixture: the session's `doctor.report.Report` (run on first use when
  `--tts-doctor` was not given).
- the marker `@pytest.mark.requires_tts_env("cuda.kernel", "torchaudio.extension")` (also
  importable as `doctor.pytest_plugin.requires_tts_env(...)`): the test is skipped unless every
  named probe is `ok`, and the skip reason says which probe and why.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

_KEY = "tts_doctor_reports"


def requires_tts_env(*probe_ids: str) -> Any:
    """`@requires_tts_env("cuda.kernel")`: skip the test unless those probes are ok."""
    return pytest.mark.requires_tts_env(*probe_ids)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("tts-doctor")
    group.addoption("--tts-doctor", action="store", nargs="?", const="", default=None,
                    metavar="RECIPE",
                    help="Run `tts-doctor check` (optionally against RECIPE) at session start "
                         "and stop the session when it fails.")
    group.addoption("--tts-doctor-fail-on", choices=("warn", "fail"), default="fail",
                    help="Lowest status that stops the session (default: fail).")
    group.addoption("--tts-doctor-only", action="append", default=[], metavar="PATTERN",
                    help="Probe ids or categories to run (globs, comma-separated).")
    group.addoption("--tts-doctor-skip", action="append", default=[], metavar="PATTERN",
                    help="Probe ids or categories not to run.")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "requires_tts_env(*probe_ids): skip unless these tts-doctor probes are ok "
        "(e.g. 'cuda.kernel', 'torchaudio.extension')")
    setattr(config, _KEY, {})


def _patterns(values: list[str]) -> tuple[str, ...]:
    """The option's values as given: `tts_doctor.check` splits comma-separated patterns."""
    return tuple(values or ())


def _run(config: Any, only: tuple[str, ...] = ()) -> Any:
    """Run (once per distinct selection) and cache the report on the config."""
    from tts_doctor.api import check as run_check
    from tts_doctor.api import load_recipe

    cache = getattr(config, _KEY)
    recipe_name = config.getoption("--tts-doctor") or None
    only = only or _patterns(config.getoption("--tts-doctor-only"))
    skip = _patterns(config.getoption("--tts-doctor-skip"))
    key = (recipe_name, only, skip)
    if key not in cache:
        from tts_doctor.errors import UserError

        try:
            recipe = load_recipe(recipe_name)
            cache[key] = run_check(only=only, skip=skip, recipe=recipe)
        except (UserError, ValueError) as exc:
            raise pytest.UsageError(f"tts-doctor: {exc}") from None
    return cache[key]


def pytest_sessionstart(session: Any) -> None:
    config = session.config
    if config.getoption("--tts-doctor") is None:
        return
    report = _run(config)
    fail_on = config.getoption("--tts-doctor-fail-on")
    data = report.to_dict()
    config._tts_doctor_session_report = report
    if report.exit_code(fail_on):
        from tts_doctor.render import text

        pytest.exit("tts-doctor check failed; the environment cannot run these tests:\n\n"
                    + text.render(data), returncode=1)


@pytest.fixture(scope="session")
def tts_doctor_report(pytestconfig: Any) -> Any:
    """The `tts-doctor check` report of this session (a doctor.report.Report)."""
    report = getattr(pytestconfig, "_tts_doctor_session_report", None)
    return report if report is not None else _run(pytestconfig)


def _verdicts(config: Any, ids: tuple[str, ...]) -> dict[str, Optional[Any]]:
    report = getattr(config, "_tts_doctor_session_report", None)
    by_id = {f.id: f for f in report.findings} if report is not None else {}
    if not all(i in by_id for i in ids):
        fresh = _run(config, only=ids)
        by_id.update({f.id: f for f in fresh.findings})
    return {i: by_id.get(i) for i in ids}


def pytest_runtest_setup(item: Any) -> None:
    for marker in item.iter_markers(name="requires_tts_env"):
        ids = tuple(marker.args)
        if not ids:
            continue
        problems = []
        for probe_id, finding in _verdicts(item.config, ids).items():
            if finding is None:
                problems.append(f"{probe_id}: not applicable here")
            elif finding.status.value != "ok":
                problems.append(f"{probe_id} is {finding.status.value}: {finding.summary}")
        if problems:
            pytest.skip("tts-doctor: " + "; ".join(problems))
