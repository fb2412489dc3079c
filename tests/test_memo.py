"""The facts memo (doctor/memo.py, doctor/footprint.py): a warm check judges kept facts again
only while nothing they were observed from changed, and re-observes as soon as something did.

Through the real CLI: probes of tests/plugins/memo_probes.py (each observing one kind of
input) and a real venv whose numpy is edited in place and then upgraded with pip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import PLUGINS, build_env, run_cli
from tests.harness.blindfold import comparable
from tests.harness.venvs import EnvSpec

MEMO_IDS = ("memotest.read", "memotest.exists", "memotest.writable", "memotest.scratch",
            "memotest.home")


@pytest.fixture
def memo_env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.txt").write_text("first\n")
    (data / "box").mkdir()
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "TTS_DOCTOR_PLUGINS": "memo_probes",
            "TTS_DOCTOR_CACHE": str(tmp_path / "cache"), "MEMO_TEST_DIR": str(data),
            "HF_TOKEN": "hf_" + "Q" * 8 + "memoTestToken42"}


def _check(env: dict[str, str], *extra: str) -> dict:
    res = run_cli("check", "--json", "--only", "memotest", *extra, env=env)
    assert res.returncode == 0, res
    return res.json


def _pids(report: dict) -> dict[str, int]:
    return {f["id"]: f["details"]["pid"] for f in report["findings"]}


def test_second_check_judges_the_kept_facts_and_never_keeps_programs_or_secrets(memo_env):
    first = _check(memo_env)
    assert first["memo"]["reused"] == []
    second = _check(memo_env)
    assert sorted(second["memo"]["reused"]) == sorted(MEMO_IDS)
    before, after = _pids(first), _pids(second)
    for probe_id in MEMO_IDS:
        assert after[probe_id] == before[probe_id], probe_id  # observed by the first check
    for probe_id in ("memotest.program", "memotest.secret", "memotest.live"):
        assert after[probe_id] != before[probe_id], probe_id  # observed again
    # findings judged from the memo equal the observed ones, apart from the time taken
    strip = [comparable(f) for f in first["findings"] if f["id"] in MEMO_IDS]
    again = [comparable(f) for f in second["findings"] if f["id"] in MEMO_IDS]
    assert len(strip) == len(MEMO_IDS) and strip == again
    # another check (its own cache) rewrites the scratch file both map: not an input
    _check({**memo_env, "TTS_DOCTOR_CACHE": memo_env["TTS_DOCTOR_CACHE"] + "-other"})
    assert sorted(_check(memo_env)["memo"]["reused"]) == sorted(MEMO_IDS)
    # the secret never reached the cache folder
    cache = Path(memo_env["TTS_DOCTOR_CACHE"])
    blob = "".join(p.read_text(errors="replace") for p in cache.rglob("*.json"))
    assert "memoTestToken42" not in blob
    assert '"memotest.read"' in blob


def test_what_a_probe_read_or_declared_changes_and_it_observes_again(memo_env):
    """A probe's footprint is its worker's up to its own collection (a later probe in the same
    worker may depend on what an earlier one imported), so a change re-observes that probe
    and the ones after it, and never those before it."""
    data = Path(memo_env["MEMO_TEST_DIR"])
    _check(memo_env)
    (data / "data.txt").write_text("second\n")
    report = _check(memo_env)
    assert "memotest.read" not in report["memo"]["reused"]
    read = next(f for f in report["findings"] if f["id"] == "memotest.read")
    assert read["details"]["content"] == "second\n"
    assert sorted(_check(memo_env)["memo"]["reused"]) == sorted(MEMO_IDS)

    (data / "mark").write_text("")
    report = _check(memo_env)
    assert "memotest.read" in report["memo"]["reused"]
    assert "memotest.exists" not in report["memo"]["reused"]
    assert next(f for f in report["findings"] if f["id"] == "memotest.exists"
                )["details"]["exists"] is True

    os.chmod(data / "box", 0o500)
    try:
        report = _check(memo_env)
        assert {"memotest.read", "memotest.exists"} <= set(report["memo"]["reused"])
        assert "memotest.writable" not in report["memo"]["reused"]
        if os.geteuid() != 0:  # root writes anyway; the change was noticed all the same
            assert next(f for f in report["findings"] if f["id"] == "memotest.writable"
                        )["details"]["writable"] is False
    finally:
        os.chmod(data / "box", 0o700)


def test_a_changed_environment_variable_or_fresh_observes_everything(memo_env):
    _check(memo_env)
    assert _check({**memo_env, "MEMO_TEST_UNRELATED": "1"})["memo"]["reused"] == []
    assert _check(memo_env, "--fresh")["memo"]["reused"] == []
    assert sorted(_check(memo_env)["memo"]["reused"]) == sorted(MEMO_IDS)


def test_a_damaged_memo_or_an_unusable_cache_never_fails_a_check(memo_env, tmp_path):
    _check(memo_env)
    for memo_file in (Path(memo_env["TTS_DOCTOR_CACHE"]) / "memo").glob("*.json"):
        memo_file.write_text('{"version": 1, "base": 3, "probes": [')
    assert _check(memo_env)["memo"]["reused"] == []
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    report = _check({**memo_env, "TTS_DOCTOR_CACHE": str(blocked)})
    assert report["memo"]["reused"] == []
    assert _check({**memo_env, "TTS_DOCTOR_CACHE": str(blocked)})["memo"]["reused"] == []


def test_text_report_says_which_facts_were_reused(memo_env):
    _check(memo_env)
    res = run_cli("check", "--only", "memotest", env=memo_env)
    assert res.returncode == 0, res
    assert "5 probes judged from facts an earlier check observed" in res.stdout
    assert "--fresh" in res.stdout


def test_fresh_cannot_be_combined_with_facts(memo_env, tmp_path):
    facts = tmp_path / "facts.json"
    assert run_cli("check", "--only", "memotest", "--save-facts", str(facts),
                   env=memo_env).returncode == 0
    res = run_cli("check", "--facts", str(facts), "--fresh", env=memo_env)
    assert res.returncode == 2, res
    assert "--fresh" in res.stderr and "Traceback" not in res.stderr


# a real environment: numpy edited in place, then upgraded by pip. Its own spec: this test
# changes it (and marks it to be rebuilt next time)
MEMO_NUMPY = EnvSpec("memo-numpy", steps=(("install", "numpy==1.26.4"),))


@pytest.mark.slow
def test_real_env_numpy_edited_then_upgraded_is_observed_again(tmp_path):
    venv = build_env(MEMO_NUMPY)
    (venv.path / ".tts-doctor-ready").unlink()  # changed below: rebuilt by the next run
    env = {"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}
    args = ("check", "--json", "--only", "numpy.aliases,numba.numpy", "--python",
            str(venv.python))

    def check() -> dict:
        res = run_cli(*args, env=env, cwd=tmp_path)
        assert res.returncode in (0, 1), res
        return res.json

    first = check()
    assert "1.26.4" in json.dumps(first["findings"])
    assert check()["memo"]["reused"] == ["numpy.aliases", "numba.numpy"]
    init = venv.site / "numpy" / "__init__.py"
    init.write_text(init.read_text() + "\n# edited in place\n")
    # numpy.aliases reads the usage index, so it runs after numba.numpy in their worker;
    # numba.numpy (numba is not installed) imported nothing of numpy and is still valid
    assert check()["memo"]["reused"] == ["numba.numpy"]
    venv.pip("install", "numpy==2.0.2")
    upgraded = check()
    assert upgraded["memo"]["reused"] == []
    assert "2.0.2" in json.dumps(upgraded["findings"])
    assert check()["memo"]["reused"] == ["numpy.aliases", "numba.numpy"]


def test_simulated_gpu_node_keeps_device_probes_observing(monkeypatch):
    """A GPU cannot exist here: its device nodes are simulated. With one, the torch, CUDA,
    VRAM, torchaudio and ONNX Runtime probes never come from the memo; others still may."""
    from tts_doctor import memo, registry

    specs = {s.id: s for s in registry.all_probes()}
    monkeypatch.setattr(memo, "gpu_nodes", lambda: [])
    assert memo.eligible(specs["vram.devices"]) and memo.eligible(specs["torch.build"])
    monkeypatch.setattr(memo, "gpu_nodes", lambda: ["/dev/nvidia0"])
    for probe_id in ("vram.devices", "cuda.kernel", "torch.build", "torchaudio.api",
                     "onnxruntime.providers"):
        assert not memo.eligible(specs[probe_id]), probe_id
    assert memo.eligible(specs["scipy.removed-names"])
    assert not memo.eligible(specs["model.cache"])  # not a memo probe at all
