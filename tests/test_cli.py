"""The command line's contract: help is cheap, errors are one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tts_doctor import __version__

HEAVY = ("torch", "numpy", "scipy")


def _imported_after(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from tts_doctor.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return set(proc.stderr.split())


@pytest.mark.parametrize("args", [["--help"], ["check", "--list-checks"], ["check", "--help"],
                                  ["--version"]])
def test_help_and_list_do_not_import_heavy_modules(args):
    loaded = _imported_after(*args)
    assert "tts_doctor.cli" in loaded  # the probe itself ran
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_version(cli):
    r = cli("--version")
    assert r.returncode == 0
    assert __version__ in r.stdout


def test_list_checks_names_the_first_probes(cli):
    r = cli("check", "--list-checks", "--json")
    assert r.returncode == 0, r
    ids = {row["id"] for row in json.loads(r.stdout)}
    assert {"python.platform", "packages.consistency", "torch.build"} <= ids


@pytest.mark.parametrize("args, needle", [
    (["check", "--bogus"], "No such option"),
    (["check", "--only", "no.such.probe"], "no probe or category matches 'no.such.probe'"),
    (["check", "--skip", "nocategory"], "no probe or category matches 'nocategory'"),
    (["check", "--format", "xml"], "Invalid value"),
    (["check", "--timeout", "0"], "Invalid value"),
    (["check", "--recipe", "no-such-recipe"], "no such recipe"),
    (["check", "--json", "--format", "text"], "conflicts"),
    (["check", "--set", "novalue"], "KEY=VALUE"),
    (["nosuchcommand"], "No such command"),
])
def test_usage_errors_are_one_line_and_exit_2(cli, args, needle):
    r = cli(*args)
    assert r.returncode == 2, r
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tts-doctor: error:")
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_python_m_doctor_is_the_cli(cli):
    r = cli("check", "--only", "python.platform", "--json")
    assert r.returncode == 0, r
    assert r.json["findings"][0]["id"] == "python.platform"


def test_only_and_skip_accept_globs_categories_and_commas(cli):
    r = cli("check", "--only", "packages,python.*", "--skip", "packages.dup*", "--json")
    ids = [f["id"] for f in r.json["findings"]]
    assert "python.platform" in ids and "packages.consistency" in ids
    assert "packages.duplicates" not in ids and "torch.build" not in ids
