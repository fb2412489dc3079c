"""`smoke --offline`, the air-gap audit: the network blocked at the socket level in the smoke
child, the hubs' offline switches set, every attempted connection and runtime download
reported. The real Piper voice needs no network; a callable that phones home is caught at
each call site. (The real Hugging Face Hub and ModelScope downloaders are audited in
tests/test_smoke_real_libs.py, where those libraries are installed.)"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import textwrap

import pytest

from tests.conftest import REPO, run_cli
from tests.harness.venvs import EnvUnavailable, find_python

VOICES = "tests.fakes_smoke.voices"
FAKE = REPO / "tests" / "fakes_smoke" / "voices.py"


def _findings(r) -> dict[str, dict]:
    return {f["id"]: f for f in r.json["findings"]}


def test_real_piper_voice_is_air_gap_safe():
    r = run_cli("smoke", "--recipe", "piper", "--offline", "--json")
    assert r.returncode == 0, r
    f = _findings(r)
    assert f["smoke.offline"]["status"] == "ok", f["smoke.offline"]
    assert "smoke.download" not in f
    off = r.json["smoke"]["offline"]
    assert off["connections"] == [] and off["downloads"] == []
    assert off["env"]["HF_HUB_OFFLINE"] == "1" and off["env"]["TRANSFORMERS_OFFLINE"] == "1"
    assert f["smoke.synthesis"]["status"] == "ok"


@pytest.fixture(scope="module")
def phoned():
    return run_cli("smoke", "--callable", f"{VOICES}:phones_home", "--text", "Hello there.",
                   "--offline", "--json")


def test_every_attempted_connection_is_reported_with_host_port_and_frame(phoned):
    r = phoned
    assert r.returncode == 1, r
    f = _findings(r)["smoke.offline"]
    assert f["status"] == "fail" and "not air-gap safe" in f["summary"]
    conns = f["details"]["connections"]
    by_host = {c["host"]: c for c in conns}
    assert by_host["203.0.113.7"]["port"] == 8443
    assert by_host["203.0.113.7"]["via"] == "socket.create_connection"
    assert by_host["models.example.org"]["port"] == 443
    assert by_host["models.example.org"]["via"] == "socket.create_connection"  # http.client
    assert len(conns) == 2
    assert "127.0.0.1" not in by_host  # loopback is not the network
    lines = FAKE.read_text().splitlines()
    for c in conns:  # the frame is the model code's line, not socket.py or urllib
        path, _, rest = c["frame"].rpartition(":")
        assert path == str(FAKE), c
        line = lines[int(rest.split()[0]) - 1]
        assert "create_connection" in line or "urlopen" in line, (c, line)
    assert "203.0.113.7:8443" in f["summary"] and "models.example.org:443" in f["summary"]


def test_pip_at_runtime_is_a_download_finding_with_the_prefetch_command(phoned):
    f = _findings(phoned)["smoke.download"]
    assert f["status"] == "fail"
    (pip,) = f["details"]["downloads"]
    assert pip["kind"] == "pip" and pip["frame"].startswith(str(FAKE))
    assert "pip install espeak-phonemizer-data" in f["fix"]["commands"]
    # the synthesis itself went on: the audit reports, it does not break the run
    assert _findings(phoned)["smoke.synthesis"]["status"] == "ok"


def test_text_mode_shows_the_audit_line():
    r = run_cli("smoke", "--callable", f"{VOICES}:speak", "--text", "Hello there.",
                "--offline")
    assert r.returncode == 0, r
    assert "offline audit: 0 connection(s) blocked, 0 runtime download(s)" in r.stdout
    assert "smoke.offline: air-gap safe" in r.stdout


def _load_airgap():
    spec = importlib.util.spec_from_file_location("airgap_under_test",
                                                  REPO / "doctor" / "airgap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_deactivate_restores_the_network_in_process():
    airgap = _load_airgap()
    before = (socket.socket.connect, socket.getaddrinfo, socket.create_connection)
    airgap.activate()
    try:
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.invalid", 80)
        with pytest.raises(OSError):
            socket.create_connection(("198.51.100.1", 9), timeout=1)
        socket.getaddrinfo("localhost", 80)  # local names still resolve
    finally:
        airgap.deactivate()
    assert (socket.socket.connect, socket.getaddrinfo, socket.create_connection) == before
    seen = airgap.audit()["connections"]
    assert [(c["host"], c["port"]) for c in seen] == [("example.invalid", 80),
                                                       ("198.51.100.1", 9)]


@pytest.mark.parametrize("version", ["3.7", "3.8"])
def test_the_blocker_runs_on_old_pythons(version):
    """It runs inside the diagnosed interpreter: standard library of CPython 3.7+ only."""
    try:
        python = find_python(version)
    except EnvUnavailable as exc:
        pytest.skip(str(exc))
    path = str(REPO / "doctor" / "airgap.py")
    code = textwrap.dedent(f"""
        import importlib.util, socket
        spec = importlib.util.spec_from_file_location("airgap", {path!r})
        airgap = importlib.util.module_from_spec(spec); spec.loader.exec_module(airgap)
        airgap.activate()
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=1)
        except OSError as exc:
            print("blocked", exc.errno)
        airgap.deactivate()
        print(airgap.audit()["connections"][0]["host"])
    """)
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["blocked", "101", "192.0.2.1"]
