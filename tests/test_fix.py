"""`tts-doctor fix` on a real SciPy 1.17 environment: plan, dry run, apply, before/after,
package commands (only when asked), undo, and usage errors.

The finding to fix comes from a probe plugin written by the test (TTS_DOCTOR_PLUGINS): it
imports scipy.signal in the diagnosed interpreter and reports `warn` with a shim fix while
`scipy.signal.hann` is missing, `ok` once it is there (the real scipy.removed-names probe
belongs to another part of the project; this keeps the test independent of its wording).
Its command (an argument vector that writes a marker file) is the recommended alternative;
the shim fixes the finding first, so `--run-commands` never needs to run it. A second plugin
finding without a shim shows that the command runs, without a shell, when it is needed.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from tts_doctor import shim_install as si

from tests.harness.envs_shims import SHIMS_FIX, exclusive, snapshot

pytestmark = pytest.mark.venv

PLUGIN = '''
import os

from tts_doctor.finding import Fix, cmd, export, ok, warn
from tts_doctor.registry import probe


@probe("testfix.hann", title="test: scipy.signal.hann", isolated=True)
def hann(ctx):
    import scipy.signal

    fn = getattr(scipy.signal, "hann", None)
    if fn is None:
        return warn("scipy.signal.hann is missing",
                    Fix("Restore the removed names", shim="scipy_names",
                        commands=(cmd(*COMMAND), export("TTS_DOCTOR_TEST_VAR", "1"))))
    return ok("scipy.signal.hann present: " + str(getattr(fn, "__tts_doctor_shim__", "real")))


@probe("testfix.marker", title="test: the marker file exists")
def marker(ctx):
    if not os.path.exists(MARKER):
        return warn("no marker file", Fix("Write it", commands=(cmd(*COMMAND),)))
    return ok("the marker file exists")
'''


@pytest.fixture
def setup(make_env, cli, tmp_path):
    marker = tmp_path / "command-ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    command = shlex.join(argv)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "testfix_probe.py").write_text(f"COMMAND = {argv!r}\nMARKER = {str(marker)!r}\n"
                                              + PLUGIN)
    env = {"PYTHONPATH": str(plugins), "TTS_DOCTOR_PLUGINS": "testfix_probe",
           "TTS_DOCTOR_STATE_DIR": str(tmp_path / "state")}
    with exclusive(make_env(SHIMS_FIX)) as venv:
        py = str(venv.python)
        cli("shims", "uninstall", "--python", py)

        def fix(*args: str, only: str = "testfix.hann"):
            return cli("fix", *args, "--python", py, "--only", only, env=env)

        yield venv, fix, marker, command, tmp_path / "state"
        cli("shims", "uninstall", "--python", py)


def test_dry_run_shows_the_plan_with_file_content_and_changes_nothing(setup):
    venv, fix, marker, command, state = setup
    before = snapshot(venv.site)
    r = fix("--dry-run")
    assert r.returncode == 0, r
    pth = venv.site / si.PTH_NAME
    assert f"would write {pth} (new file):" in r.stdout
    assert "    | # tts-doctor shims: written by `tts-doctor shims install`" in r.stdout
    assert "    | import sys; exec(" in r.stdout
    assert "scipy_names  # testfix.hann" in r.stdout
    assert "  testfix.hann:\n" in r.stdout
    assert f"    1.  $ {command}\n" in r.stdout
    assert "    2.  export TTS_DOCTOR_TEST_VAR=1\n" in r.stdout
    assert snapshot(venv.site) == before and not marker.exists() and not state.exists()


def test_fix_applies_shims_shows_before_after_and_undo_reverts(setup, cli):
    venv, fix, marker, _, state = setup
    before = snapshot(venv.site)
    r = fix()
    assert r.returncode == 0, r
    assert f"applied: shims scipy_names in {venv.site / si.PTH_NAME}" in r.stdout
    assert "testfix.hann   warn -> ok     scipy.signal.hann present: scipy_names" in r.stdout
    assert "commands not run" not in r.stdout  # the shim fixed the only finding
    assert not marker.exists()
    assert si.parse((venv.site / si.PTH_NAME).read_text())["shims"] == ["scipy_names"]
    journal = json.loads((state / "fix-journal.json").read_text())
    tx = journal["transactions"][-1]
    assert tx["actions"] == [{"kind": "pth", "path": str(venv.site / si.PTH_NAME),
                              "before": None, "state": "done",
                              "after": (venv.site / si.PTH_NAME).read_text()}]
    # fixed: a second run has nothing left to do
    again = fix()
    assert again.returncode == 0 and "nothing to fix" in again.stdout

    r = cli("fix", "--undo", "--python", str(venv.python),
            env={"TTS_DOCTOR_STATE_DIR": str(state)})
    assert r.returncode == 0, r
    assert f"removed {venv.site / si.PTH_NAME}" in r.stdout and "undid fix" in r.stdout
    assert snapshot(venv.site) == before
    assert json.loads((state / "fix-journal.json").read_text())["transactions"][-1]["undone"]
    r = cli("fix", "--undo", "--python", str(venv.python),
            env={"TTS_DOCTOR_STATE_DIR": str(state)})
    assert r.returncode == 0 and "nothing to undo" in r.stdout


def test_no_command_runs_for_a_finding_the_shim_fixed(setup):
    _, fix, marker, command, state = setup
    r = fix("--run-commands")
    assert r.returncode == 0, r
    assert not marker.exists(), r
    assert "testfix.hann: fixed already (by the shims" in r.stdout
    assert f"$ {command}" not in r.stdout.splitlines()
    tx = json.loads((state / "fix-journal.json").read_text())["transactions"][-1]
    assert [a["kind"] for a in tx["actions"]] == ["pth"]


def test_package_commands_run_only_when_asked_each_shown_first(setup):
    _, fix, marker, command, state = setup
    r = fix(only="testfix.marker")
    assert r.returncode == 0 and not marker.exists(), r
    assert "commands not run (add --run-commands" in r.stdout
    r = fix("--run-commands", only="testfix.marker")
    assert r.returncode == 0, r
    assert marker.exists()
    lines = r.stdout.splitlines()
    assert f"$ {command}" in lines
    assert "testfix.marker: fixed (ok)" in lines
    assert not any(line.startswith("$ export") for line in lines)  # never run
    tx = json.loads((state / "fix-journal.json").read_text())["transactions"][-1]
    (action,) = tx["actions"]
    assert action["kind"] == "command" and action["command"] == command
    assert action["rc"] == 0 and action["state"] == "done"
    assert action["before"] == action["after"] and action["before"]["scipy"] == "1.17.1"


def test_undo_refuses_when_the_file_changed_since(setup, cli):
    venv, fix, _, _, state = setup
    assert fix().returncode == 0
    assert cli("shims", "install", "resample", "--python", str(venv.python)).returncode == 0
    r = cli("fix", "--undo", "--python", str(venv.python),
            env={"TTS_DOCTOR_STATE_DIR": str(state)})
    assert r.returncode == 1 and "changed since tts-doctor fix wrote it" in r.stderr, r
    assert si.parse((venv.site / si.PTH_NAME).read_text())["shims"] == ["resample",
                                                                        "scipy_names"]


@pytest.mark.parametrize("args, needle", [
    (["fix", "--undo", "--dry-run"], "cannot be combined"),
    (["fix", "--undo", "--only", "scipy"], "--undo takes only"),
    (["fix", "--undo", "--allow-downgrade"], "--undo takes only"),
    (["fix", "--json"], "--json goes with --dry-run"),
    (["fix", "--only", "no.such.probe"], "no probe or category matches"),
    (["fix", "--python", "/no/such/python"], "does not exist"),
    (["fix", "--recipe", "no-such-recipe"], "no such recipe"),
    (["fix", "--bogus"], "No such option"),
])
def test_usage_errors_exit_2_without_traceback(cli, args, needle, tmp_path):
    r = cli(*args, env={"TTS_DOCTOR_STATE_DIR": str(tmp_path)})
    assert r.returncode == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not list(Path(tmp_path).iterdir())


def test_make_plan_groups_fixes():
    from tts_doctor.commands.fix import make_plan
    from tts_doctor.finding import Finding, Fix, Status

    findings = [
        Finding("a.x", "a", Status.WARN, "s", fix=Fix("d", shim="scipy_names",
                                                        commands=("pip install x",))),
        Finding("b.y", "b", Status.FAIL, "s", fix=Fix("d", shim="mel",
                                                        commands=("pip install x",
                                                                  "export A=1"))),
        Finding("c.z", "c", Status.OK, "s", fix=Fix("d", shim="resample")),
        Finding("d.e", "d", Status.ERROR, "s", fix=Fix("d", commands=("tts-doctor check",))),
    ]
    plan = make_plan(findings)
    assert plan.shims == {"scipy_names": ["a.x"]} and plan.library == {"mel": ["b.y"]}
    assert plan.commands == [("pip install x", ["a.x", "b.y"])]
    assert plan.exports == [("export A=1", ["b.y"])]
    assert [f.id for f in plan.errors] == ["d.e"] and plan.considered == 2
    # each command line is an alternative; plain strings are text that fix never runs
    assert [[str(c) for c in alt] for alt in plan.fixes["b.y"]] == [["pip install x"],
                                                                    ["export A=1"]]
    assert not any(c.runnable for alts in plan.fixes.values() for alt in alts for c in alt)


def test_reverse_commands_restore_the_recorded_versions():
    from tts_doctor.commands.fix import reverse_commands

    out = reverse_commands("/v/bin/python", {"librosa": "0.10.0", "numpy": "2.4.6"},
                           {"librosa": "0.10.2", "numpy": "2.4.6", "soxr": "1.1.0"})
    assert out == ["/v/bin/python -m pip uninstall -y soxr",
                   "/v/bin/python -m pip install --no-deps librosa==0.10.0"]
    assert [c.argv for c in out] == [
        ("/v/bin/python", "-m", "pip", "uninstall", "-y", "soxr"),
        ("/v/bin/python", "-m", "pip", "install", "--no-deps", "librosa==0.10.0")]
