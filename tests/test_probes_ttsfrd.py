"""ttsfrd and KAN-TTS probes on real environments: PyPI's placeholders, the real ttsfrd 0.4.2
binary without and with its shared-library wheel, and its resource folder in the states users
lose it in (missing, empty, corrupt zip, unextracted zip, garbage). Diagnosed from outside with
`--python`, and once from inside the 3.10 environment."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.harness import envs, envs_text
from tests.harness.source import source_path

venv_only = pytest.mark.venv

SAMBERT = """name = "sambert-like"
engine = "modelscope"
[audio]
sample_rate = 16000
[smoke]
text = "今天天气很好"
[requires]
ttsfrd = "required"
kantts = "required"
"""
COSYVOICE = """name = "cosyvoice-like"
engine = "callable"
[audio]
sample_rate = 24000
[smoke]
text = "今天天气很好"
[requires]
ttsfrd = "optional"
wetextprocessing = "optional"
kantts = "absent"
"""
TTSFRD_ONLY = """name = "ttsfrd-required"
engine = "callable"
[audio]
sample_rate = 24000
[smoke]
text = "今天天气很好"
[requires]
ttsfrd = "required"
"""
PIPER = """name = "piper-like"
engine = "piper"
[audio]
sample_rate = 22050
[smoke]
text = "hello"
[requires]
ttsfrd = "absent"
kantts = "absent"
"""


def recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_version_verdict_names_the_zhcn_failure_of_0_0_x():
    # ttsfrd 0.0.2 is on no index reachable here (T4): the verdict function is tested alone
    from tts_doctor.probes.ttsfrd import version_verdict

    assert "language type invalid: zhcn" in version_verdict("0.0.2")
    assert version_verdict("0.1.0") is None
    assert version_verdict("0.4.2") is None


def test_reinstall_commands_never_ask_pypi_alone_for_ttsfrd():
    # the real builds are not on PyPI (only the 0.1.0 placeholder is): every force-reinstall
    # names ModelScope's find-links, and the model folder where ttsfrd_dependency lives
    from tts_doctor import dists
    from tts_doctor.probes import ttsfrd
    from tts_doctor.registry import load_all

    py = dists.python()  # Python 3.11 here: no real wheel, no cosyvoice-ttsfrd bundle
    assert ttsfrd.reinstall_commands("0.3.6") == (
        f"{py} -m pip install --force-reinstall --no-deps -f {ttsfrd.FIND_LINKS} "
        "ttsfrd==0.3.6",)
    assert ttsfrd.reinstall_commands("0.4.2", dependency=True) == (
        "modelscope download --model iic/CosyVoice-ttsfrd --local_dir "
        "pretrained_models/CosyVoice-ttsfrd",
        f"{py} -m pip install --force-reinstall --no-deps -f {ttsfrd.FIND_LINKS} "
        "-f pretrained_models/CosyVoice-ttsfrd ttsfrd==0.4.2 ttsfrd_dependency")
    # the placeholder's version is never pinned
    assert ttsfrd.reinstall_commands("0.1.0")[-1].endswith("'ttsfrd>0.1.0'")

    # a crash while importing ttsfrd: written before the interpreter is known
    crash = load_all()["ttsfrd.engine"].crash_fix
    assert crash.commands == (
        "modelscope download --model iic/CosyVoice-ttsfrd --local_dir "
        "pretrained_models/CosyVoice-ttsfrd",
        f"{{python}} -m pip install --force-reinstall --no-deps -f {ttsfrd.FIND_LINKS} "
        "-f pretrained_models/CosyVoice-ttsfrd 'ttsfrd>0.1.0' ttsfrd_dependency")
    assert "ttsfrd_dependency" in crash.description


@venv_only
def test_an_unreadable_extension_is_reinstalled_from_the_bundled_wheel(cli, make_env,
                                                                        tmp_path):
    # a copy of the real 3.10 environment whose compiled module was overwritten (a disk
    # error, an interrupted copy): the fix reinstalls the wheel it came from, not PyPI's
    venv = make_env(envs.TTSFRD_REAL)
    copy = tmp_path / "venv"
    shutil.copytree(venv.path, copy, symlinks=True)
    site = copy / venv.site.relative_to(venv.path)
    (site / "ttsfrd.cpython-310-x86_64-linux-gnu.so").write_bytes(b"not an ELF file")
    python = copy / "bin" / "python"
    r = cli("check", "--json", "--python", str(python), "--only", "ttsfrd.libs")
    f = r.finding("ttsfrd.libs")
    assert f["status"] == "fail", f
    assert f["summary"].startswith("cannot read ")
    wheel = (site / "cosyvoice_ttsfrd" / "bundled_files"
             / "ttsfrd-0.4.2-cp310-cp310-linux_x86_64.whl")
    assert f["fix"]["commands"] == [
        f"{python} -m pip install --force-reinstall --no-deps {wheel}"]


@venv_only
def test_placeholders_are_named_as_such_with_the_uninstall_fix(cli, make_env):
    venv = make_env(envs.TTSFRD_PLACEHOLDER)
    r = check(cli, venv, "--only", "ttsfrd")
    assert r.returncode == 1, r
    origin = r.finding("ttsfrd.origin")
    assert origin["status"] == "fail"
    assert "placeholder" in origin["summary"] and "supply-chain" in origin["summary"]
    assert origin["details"]["package_summary"] == "A minimal example Python package"
    assert origin["details"]["compiled"] is None
    assert origin["fix"]["commands"][0] == f"{venv.python} -m pip uninstall -y ttsfrd"
    # Python 3.11: the real build needs another interpreter
    assert any("python3.10 -m venv" in c for c in origin["fix"]["commands"])

    engine = r.finding("ttsfrd.engine")
    assert engine["status"] == "fail"
    assert "no attribute 'TtsFrontendEngine'" in engine["summary"]
    assert engine["details"]["attributes"] == ["hello"]

    kantts = r.finding("ttsfrd.kantts")
    assert kantts["status"] == "fail" and "placeholder" in kantts["summary"]
    assert kantts["fix"]["commands"][0] == f"{venv.python} -m pip uninstall -y kantts"
    assert any("python3.8 -m venv" in c for c in kantts["fix"]["commands"])

    assert r.finding("ttsfrd.libs")["status"] == "skip"
    assert r.finding("ttsfrd.version")["status"] == "skip"
    platform = r.finding("ttsfrd.platform")
    assert platform["status"] == "warn" and platform["details"]["installable"] == []


@venv_only
def test_python_3_11_cannot_install_any_real_wheel_so_a_recipe_needing_ttsfrd_fails(
        cli, make_env, tmp_path):
    venv = make_env(envs.TTSFRD_PLACEHOLDER)
    r = check(cli, venv, "--only", "ttsfrd.platform", "--recipe", recipe(tmp_path, TTSFRD_ONLY))
    f = r.finding("ttsfrd.platform")
    assert f["status"] == "fail", f
    assert "CPython 3.11" in f["summary"] and "cp310" in f["summary"]
    assert f["fix"]["description"].startswith("Use Python 3.10")
    assert f["fix"]["commands"][0] == "python3.10 -m venv .venv-ttsfrd"
    # a Sambert-style stack also needs KAN-TTS (Requires-Python <3.9): Python 3.8 then
    r = check(cli, venv, "--only", "ttsfrd.platform", "--recipe", recipe(tmp_path, SAMBERT))
    f = r.finding("ttsfrd.platform")
    assert f["status"] == "fail" and f["details"]["target_python"] == "3.8"
    assert f["fix"]["commands"][0] == "python3.8 -m venv .venv-ttsfrd"
    assert "modelscope[audio]" in f["fix"]["commands"][1]


@venv_only
def test_a_recipe_that_does_without_ttsfrd_gets_no_ttsfrd_findings(cli, make_env, tmp_path):
    venv = make_env(envs.TTSFRD_PLACEHOLDER)
    r = check(cli, venv, "--only", "ttsfrd", "--recipe", recipe(tmp_path, PIPER))
    assert r.returncode == 0, r
    assert [f["id"] for f in r.json["findings"]] == []


@venv_only
def test_missing_ttsfrd_required_optional_or_not_mentioned(cli, make_env, tmp_path):
    venv = make_env(envs.BARE)
    plain = check(cli, venv, "--only", "ttsfrd.origin,ttsfrd.kantts")
    assert plain.finding("ttsfrd.origin")["status"] == "skip"
    assert plain.finding("ttsfrd.kantts")["status"] == "skip"

    required = check(cli, venv, "--only", "ttsfrd.origin,ttsfrd.kantts", "--recipe",
                     recipe(tmp_path, SAMBERT))
    f = required.finding("ttsfrd.origin")
    assert f["status"] == "fail" and "No module named 'ttsfrd'" in f["summary"]
    kantts = required.finding("ttsfrd.kantts")
    assert kantts["status"] == "fail" and "<3.9" in kantts["fix"]["description"]

    optional = check(cli, venv, "--only", "ttsfrd.origin", "--recipe",
                     recipe(tmp_path, COSYVOICE))
    f = optional.finding("ttsfrd.origin")
    assert f["status"] == "warn" and "WeTextProcessing" in f["summary"]


@venv_only
def test_real_binary_without_its_library_wheel_names_libre2(cli, make_env):
    venv = make_env(envs.TTSFRD_NO_LIBS)
    r = check(cli, venv, "--only", "ttsfrd")
    assert r.returncode == 1, r
    assert r.finding("ttsfrd.origin")["status"] == "ok"
    assert r.finding("ttsfrd.version")["status"] == "ok"
    assert r.finding("ttsfrd.platform")["status"] == "ok"
    libs = r.finding("ttsfrd.libs")
    assert libs["status"] == "fail"
    assert libs["details"]["missing"] == {
        "libre2.so.11": "ttsfrd.cpython-310-x86_64-linux-gnu.so"}
    assert "libre2.so.11" in libs["summary"]
    wheel = (venv.site / "cosyvoice_ttsfrd" / "bundled_files"
             / "ttsfrd_dependency-0.1-py3-none-any.whl")
    assert libs["fix"]["commands"] == [f"{venv.python} -m pip install --no-deps {wheel}"]
    engine = r.finding("ttsfrd.engine")
    assert engine["status"] == "fail"
    assert "libre2.so.11: cannot open shared object file" in engine["summary"]


@venv_only
def test_real_binary_with_its_libs_but_no_resources(cli, make_env):
    venv = make_env(envs.TTSFRD_REAL)
    before = sorted(p.relative_to(venv.path) for p in venv.path.rglob("*"))
    r = check(cli, venv, "--only", "ttsfrd")
    # importing and initialising the engine wrote nothing into the environment
    assert sorted(p.relative_to(venv.path) for p in venv.path.rglob("*")) == before
    assert r.finding("ttsfrd.libs")["status"] == "ok"
    assert r.finding("ttsfrd.libs")["details"]["found"]["libre2.so.11"] == str(
        venv.site / "libre2.so.11")
    origin = r.finding("ttsfrd.origin")
    assert origin["status"] == "ok" and "cosyvoice-ttsfrd" in origin["summary"]
    engine = r.finding("ttsfrd.engine")
    assert engine["status"] == "ok"
    assert "initialize" in engine["details"]["methods"]
    res = r.finding("ttsfrd.resource")
    assert res["status"] == "fail", res
    assert res["details"]["folder"] == str(venv.site / "cosyvoice_ttsfrd" / "resource")
    assert res["details"]["initialize"] is False
    assert "prepare tts engine failed" in res["details"]["native_output"]
    assert "prepare tts engine failed" in res["summary"]
    assert res["fix"]["commands"][-1].endswith("/bin/cosyvoice-post-install")
    assert r.returncode == 1


def _zip_with_bad_crc(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("resource/voice_lang_map.json", "x" * 2000)
    data = bytearray(path.read_bytes())
    data[data.find(b"xxxx") + 10] ^= 0xFF
    path.write_bytes(data)


@venv_only
def test_resource_folder_states_against_the_real_engine(cli, make_env, tmp_path):
    venv = make_env(envs.TTSFRD_REAL)

    def resource(folder: Path):
        r = check(cli, venv, "--only", "ttsfrd.resource", "--set", f"ttsfrd.resource={folder}")
        return r.finding("ttsfrd.resource")

    # missing
    f = resource(tmp_path / "nowhere" / "resource")
    assert f["status"] == "fail" and f["details"]["initialize"] is False
    assert "does not exist" in f["summary"]
    assert f["details"]["source"] == "--set ttsfrd.resource"

    # empty
    (tmp_path / "empty").mkdir()
    f = resource(tmp_path / "empty")
    assert f["status"] == "fail" and "is empty" in f["summary"]

    # an intact resource.zip next to a folder nobody extracted: the fix extracts it
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "resource.zip", "w") as z:
        z.writestr("resource/voice_lang_map.json", "{}")
    f = resource(zipped / "resource")
    assert f["status"] == "fail"
    assert f["details"]["zips"][0]["ok"] is True
    assert f["fix"]["commands"] == [
        f"{venv.python} -m zipfile -e {zipped / 'resource.zip'} {zipped}"]

    # a corrupt zip (bad CRC) beside leftovers: named, deleted, downloaded again
    corrupt = tmp_path / "corrupt"
    (corrupt / "resource").mkdir(parents=True)
    (corrupt / "resource" / "leftover").write_text("x")
    _zip_with_bad_crc(corrupt / "resource.zip")
    f = resource(corrupt / "resource")
    assert f["status"] == "fail"
    assert "bad CRC in member resource/voice_lang_map.json" in f["summary"]
    assert f["fix"]["commands"][0] == f"rm -f {corrupt / 'resource.zip'}"
    assert any("modelscope download --model iic/CosyVoice-ttsfrd" in c
               for c in f["fix"]["commands"])

    # garbage: initialize() returns False and the C++ message is reported
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "data.bin").write_bytes(os.urandom(256))
    f = resource(garbage)
    assert f["status"] == "fail" and f["details"]["initialize"] is False
    assert "prepare tts engine failed" in f["summary"]

    # garbage shaped like a resource: initialize() says True, yet no language loads
    shaped = tmp_path / "shaped"
    for sub in ("festival", "tokenizer"):
        (shaped / sub).mkdir(parents=True)
    (shaped / "voice_lang_map.json").write_text("{garbage")
    (shaped / "languagedata_embedded.bin").write_bytes(b"xx")
    f = resource(shaped)
    assert f["status"] == "fail", f
    assert f["details"]["initialize"] is True and f["details"]["lang_type"] is None
    assert "no language type loads" in f["summary"]
    assert "parse voice lang map failed" in f["details"]["native_output"]


@venv_only
def test_optional_ttsfrd_makes_a_bad_resource_a_warning(cli, make_env, tmp_path):
    venv = make_env(envs.TTSFRD_REAL)
    r = check(cli, venv, "--only", "ttsfrd.resource", "--recipe", recipe(tmp_path, COSYVOICE))
    f = r.finding("ttsfrd.resource")
    assert f["status"] == "warn" and f["details"]["initialize"] is False
    assert r.returncode == 0, r


@venv_only
def test_the_doctor_run_inside_the_3_10_environment_agrees(cli, make_env):
    venv = make_env(envs_text.TTSFRD_REAL_DOCTOR)
    r = cli("check", "--json", "--only", "ttsfrd", python=str(venv.python),
            env={"PYTHONPATH": source_path()})
    assert r.json["python"]["executable"] == str(venv.python)
    assert r.finding("ttsfrd.engine")["status"] == "ok"
    assert r.finding("ttsfrd.libs")["status"] == "ok"
    res = r.finding("ttsfrd.resource")
    assert res["status"] == "fail" and res["details"]["initialize"] is False
