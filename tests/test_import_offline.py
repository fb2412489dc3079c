"""`model.offline-import`: will importing this deployment's code work without a network?

`check`'s closure import (doctor/reach.py) runs under the air-gap recording of
`smoke --offline` (doctor/airgap.py). Real environments: the harness's NLTK 3.9.1 environment
(tests/harness/envs_families.py TEXT_NO_DATA, no NLTK data) with, layered on it, a project
installed with `pip install -e` whose module connects to a host when it is imported and calls
the real `nltk.download` for data it does not find; and the same environment with an
application folder that only imports nltk (clean). The CLI runs as a subprocess, its JSON read
back; the warm run reads the closure answer (and its audit) from the cache.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_env, run_cli
from tests.harness import envs_families, venvs
from tests.harness.apps import install_editable, write_app
from tests.harness.blindfold import comparable

ID = "model.offline-import"
FETCH = '''"""Fetches what it needs when it is imported, as research code often does."""
import socket

import nltk

try:
    socket.create_connection(("models.example.org", 443), timeout=3)
except OSError:
    pass

try:
    nltk.data.find("taggers/averaged_perceptron_tagger_eng")
except LookupError:
    nltk.download("averaged_perceptron_tagger_eng", quiet=True)
'''


def _layered(base: venvs.Venv, folder: Path) -> Path:
    """A venv of the base's Python whose site-packages adds the base's by a .pth line (the
    shared harness environment itself is never changed)."""
    subprocess.run([str(venvs.find_python(base.spec.python)), "-m", "venv", "--without-pip",
                    str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "base.pth").write_text(f"{base.site}\n")
    return python


@pytest.fixture(scope="module")
def base() -> venvs.Venv:
    return build_env(envs_families.TEXT_NO_DATA)


@pytest.fixture(scope="module")
def phoning(base, tmp_path_factory) -> dict:
    """A layered venv with the editable project `netproj` (netproj/fetch.py phones home)."""
    root = tmp_path_factory.mktemp("phoning")
    python = _layered(base, root / "venv")
    src = root / "netproj"
    (src / "netproj").mkdir(parents=True)
    (src / "netproj" / "__init__.py").write_text("from . import fetch  # noqa: F401\n")
    (src / "netproj" / "fetch.py").write_text(FETCH)
    install_editable(python, src, "netproj")
    env = {"TTS_DOCTOR_CACHE": str(root / "cache"), "NLTK_DATA": str(root / "nltk_data")}
    args = ("check", "--json", "--python", str(python), "--only", ID)
    cold = run_cli(*args, env=env, cwd=root)
    warm = run_cli(*args, env=env, cwd=root)
    return {"root": root, "python": python, "fetch": src / "netproj" / "fetch.py", "env": env,
            "args": args, "cold": cold, "warm": warm}


def _line(path: Path, frame: str) -> str:
    where, _, _function = frame.partition(" in ")
    file, _, line = where.rpartition(":")
    assert file == str(path), frame
    return path.read_text().splitlines()[int(line) - 1]


@pytest.mark.venv
def test_a_connection_and_a_download_at_import_time_fail_with_host_port_frame_and_command(
        phoning):
    r = phoning["cold"]
    assert r.returncode == 1, r
    f = r.finding(ID)
    assert f["status"] == "fail" and f["summary"].startswith("not air-gap safe"), f
    assert "netproj" in f["details"]["entries"]
    conns = {c["host"]: c for c in f["details"]["connections"]}
    mine = conns["models.example.org"]
    assert mine["port"] == 443 and mine["via"] == "socket.create_connection"
    assert "socket.create_connection" in _line(phoning["fetch"], mine["frame"])
    # nltk.download itself asked for its index: reported too, from nltk's own frame
    assert conns["raw.githubusercontent.com"]["port"] == 443
    assert "/nltk/" in conns["raw.githubusercontent.com"]["frame"]
    (download,) = f["details"]["downloads"]
    assert download["kind"] == "nltk" and download["what"] == "averaged_perceptron_tagger_eng"
    assert download["outcome"] == "failed"  # nothing to download from, nothing cached
    assert "nltk.download" in _line(phoning["fetch"], download["frame"])
    prefetch = f"{phoning['python']} -m nltk.downloader averaged_perceptron_tagger_eng"
    assert f["fix"]["commands"][0] == prefetch
    assert f["fix"]["steps"][0]["kind"] == "manual"  # for the image build: fix never runs it
    assert "models.example.org:443" in f["summary"] and str(phoning["fetch"]) in f["summary"]
    assert "averaged_perceptron_tagger_eng" in f["summary"]
    # the offline switches the import ran under
    assert f["details"]["env"]["HF_HUB_OFFLINE"] == "1"


@pytest.mark.venv
def test_the_warm_run_reports_the_same_from_the_cached_closure_answer(phoning):
    cache = Path(phoning["env"]["TTS_DOCTOR_CACHE"]) / "scan"
    assert list(cache.glob("closure-*.json")), list(cache.iterdir())
    cold, warm = phoning["cold"].finding(ID), phoning["warm"].finding(ID)
    assert warm["status"] == "fail" and comparable(cold) == comparable(warm), (cold, warm)


@pytest.mark.venv
def test_fetching_the_data_makes_the_cached_audit_stale(phoning):
    # what the pre-fetch command leaves behind (nltk.data.find accepts the unpacked folder)
    (Path(phoning["env"]["NLTK_DATA"]) / "taggers" / "averaged_perceptron_tagger_eng").mkdir(
        parents=True)
    r = run_cli(*phoning["args"], env=phoning["env"], cwd=phoning["root"])
    f = r.finding(ID)
    assert f["details"]["downloads"] == [], f
    # the connection is the code's own, data or not
    assert [c["host"] for c in f["details"]["connections"]] == ["models.example.org"]
    assert f["status"] == "fail"


@pytest.mark.venv
def test_an_application_whose_imports_stay_offline_is_ok_cold_and_warm(base, tmp_path):
    app = write_app(tmp_path / "app", "import nltk\n\nprint(nltk.word_tokenize('hi'))\n")
    env = {"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}
    args = ("check", "--json", "--python", str(base.python), "--only", ID, "--project",
            str(app))
    cold = run_cli(*args, env=env, cwd=tmp_path)
    assert cold.returncode == 0, cold
    f = cold.finding(ID)
    assert f["status"] == "ok" and f["summary"].startswith("air-gap safe"), f
    assert f["details"]["entries"] == ["nltk"]
    assert f["details"]["connections"] == [] and f["details"]["downloads"] == []
    warm = run_cli(*args, env=env, cwd=tmp_path)
    assert comparable(f) == comparable(warm.finding(ID))


def test_without_an_entry_module_it_is_skipped(tmp_path):
    # the doctor's own venv diagnosed from an empty folder: nothing the deployment imports
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    r = run_cli("check", "--json", "--python", str(venv / "bin" / "python"), "--only", ID,
                env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path)
    assert r.returncode == 0, r
    f = r.finding(ID)
    assert f["status"] == "skip" and "no entry module" in f["summary"], f


@pytest.mark.venv
def test_the_recorded_audit_is_judged_again_from_a_facts_file(phoning, tmp_path):
    facts = tmp_path / "facts.json"
    live = run_cli(*phoning["args"], "--save-facts", str(facts), env=phoning["env"],
                   cwd=phoning["root"])
    again = run_cli("check", "--json", "--facts", str(facts), "--only", ID,
                    env={"TTS_DOCTOR_CACHE": str(tmp_path / "empty-cache")}, cwd=tmp_path)
    assert again.returncode == live.returncode == 1, again
    a, b = live.finding(ID), again.finding(ID)
    assert b["status"] == "fail" and b["summary"] == a["summary"], (a, b)
    assert b["fix"] == a["fix"]


@pytest.mark.parametrize("command, pip", [
    ([sys.executable, "-m", "pip", "install", "--no-index", "espeak-phonemizer-data"], True),
    (["/usr/bin/pip3.11", "-q", "install", "y"], True),
    ("cd /tmp && pip install z", True),
    ("sudo pip install a", True),
    ("PIP_NO_INDEX=1 python3 -I -m pip install b", True),
    # pip named as an argument, another pip subcommand, a line that does not parse: not pip
    ([sys.executable, "-c", "pass", "pip", "install", "x"], False),
    ("echo pip install z", False),
    (["pip", "download", "x"], False),
    (["python", "-m", "pip", "list"], False),
    ("pip install 'unbalanced", False),
    (b"pip install bytes-too", True),
])
def test_only_a_pip_install_in_command_position_is_a_runtime_install(command, pip):
    from tts_doctor import airgap

    assert (airgap._pip_args(command) is not None) is pip


# --- the judge alone (pure: facts in, verdict out) -----------------------------------------

def _reach(**kw):
    return {"known": True, "entries": ["pkg"], "failed": {}, **kw}


def test_the_judge_says_when_an_entry_failed_for_another_reason():
    from tts_doctor.probes.import_offline import judge_import_offline

    audit = {"env": {}, "connections": [], "downloads": []}
    r = judge_import_offline(audit, _reach(failed={"pkg": "ModuleNotFoundError: x"}), "py")
    assert r.status.value == "ok" and "1 of 1 entry module(s) failed to import" in r.summary
    assert r.details["failed"] == {"pkg": "ModuleNotFoundError: x"}
    assert "failed" not in judge_import_offline(audit, _reach(), "py").summary


def test_the_judge_counts_a_download_the_cache_answered_as_offline_and_one_that_failed_not():
    from tts_doctor.probes.import_offline import judge_import_offline

    hit = {"kind": "huggingface", "what": "org/m/config.json", "outcome": "returned",
           "frame": "/app/m.py:3 in <module>",
           "argv": ["python", "-c", "from huggingface_hub import hf_hub_download; ..."]}
    r = judge_import_offline({"connections": [], "downloads": [hit]}, _reach(), "/v/bin/python")
    assert r.status.value == "ok" and "answered from the local cache" in r.summary
    miss = {**hit, "outcome": "failed"}
    r = judge_import_offline({"connections": [], "downloads": [miss]}, _reach(),
                             "/v/bin/python")
    assert r.status.value == "fail" and "/app/m.py:3" in r.summary
    assert r.fix.commands[0].argv[0] == "/v/bin/python"  # the target's interpreter
    pip = {"kind": "pip", "what": "espeak-data", "outcome": "started", "frame": "f:1 in g",
           "argv": ["pip", "install", "espeak-data"]}
    r = judge_import_offline({"connections": [], "downloads": [pip]}, _reach(), "/v/bin/python")
    assert list(r.fix.commands[0].argv) == ["/v/bin/python", "-m", "pip", "install",
                                            "espeak-data"]


def test_the_judge_skips_without_an_audit_or_an_entry():
    from tts_doctor.probes.import_offline import judge_import_offline

    assert judge_import_offline(None, _reach(), "py").status.value == "skip"
    assert judge_import_offline({}, {"known": False, "why": "no entry"}, "py").status.value \
        == "skip"


PHONES = '''import socket, subprocess, sys
try:
    socket.create_connection(("203.0.113.9", 80), timeout=1)
except OSError:
    pass
subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--dry-run",
                "espeak-data"], capture_output=True)
'''


@pytest.mark.parametrize("version", ["3.7", "3.8"])
def test_the_closure_import_records_under_the_oldest_targets(version, tmp_path, monkeypatch):
    """reach.py with airgap.py's source, under CPython 3.7/3.8 (no audit hooks on 3.7: pip is
    watched through subprocess.Popen): a connection and a pip run at import time."""
    from tts_doctor import usage

    try:
        python = venvs.find_python(version)
    except venvs.EnvUnavailable as exc:
        pytest.skip(str(exc))
    (tmp_path / "phones.py").write_text(PHONES)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    answer = usage.import_closure(str(python), ["phones", "json"])
    assert answer["python"].startswith(version) and answer["failed"] == {}, answer
    (conn,) = answer["airgap"]["connections"]
    assert (conn["host"], conn["port"]) == ("203.0.113.9", 80)
    assert conn["frame"] == f"{tmp_path / 'phones.py'}:3 in <module>"
    (pip,) = answer["airgap"]["downloads"]
    assert pip["kind"] == "pip" and pip["command"] == "pip install espeak-data"
    # the call spans lines 6-7: 3.7 names the line it ends on, 3.8+ the one it starts on
    assert pip["frame"] in (f"{tmp_path / 'phones.py'}:{n} in <module>" for n in (6, 7)), pip
    assert "_tts_doctor_airgap" not in answer["loaded"]  # the recorder is not in the closure
