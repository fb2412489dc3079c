"""torchaudio.* on real environments:

- the dev venv and TORCH_ONLY have no torchaudio: every probe skips;
- TORCHAUDIO_BROKEN: torch 2.13 (CPU) with the PyPI torchaudio 2.11 (a CUDA 13.0 build; there
  is no CPU build on PyPI): `import torchaudio` fails on libc10_cuda.so (A1, A2, A3);
- TORCHAUDIO_USERS: torchaudio 2.11 + torchcodec 0.9.1 + coqui-tts 0.27.0 without torch:
  coqui-tts calls torchaudio.info, removed in 2.9 (A5), and this machine has no FFmpeg for
  torchcodec (A4).

A healthy torch/torchaudio pair cannot be built here (the only torch wheel on disk is 2.13 and
PyPI's torchaudio stops at 2.11, a CUDA build), so the matching-pair verdicts are judged on
the pure function with the facts the probe reads.
"""

from __future__ import annotations

import pytest
from tts_doctor.finding import Status
from tts_doctor.probes import torchaudio as ta

from tests.harness import envs, envs_torch
from tests.harness.blindfold import assert_judged_alike
from tests.harness.recipes import write_recipe

IDS = ["torchaudio.pair", "torchaudio.extension", "torchaudio.api", "torchaudio.io"]


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_dev_venv_has_no_torchaudio_every_probe_skips(cli):
    r = cli("check", "--json", "--only", "torchaudio")
    assert r.returncode == 0, r
    assert {f["id"]: f["status"] for f in r.json["findings"]} == {i: "skip" for i in IDS}
    assert all(f["summary"] == "torchaudio is not installed" for f in r.json["findings"])


def test_a_recipe_that_needs_torchaudio_fails_without_it_and_absent_drops_it(cli, tmp_path):
    path = write_recipe(tmp_path / "r.toml", 'torchaudio = "required"', name="ta")
    r = cli("check", "--json", "--only", "torchaudio", "--recipe", path)
    assert r.returncode == 1, r
    f = r.finding("torchaudio.pair")
    assert f["status"] == "fail" and "the recipe needs it" in f["summary"]
    assert f["fix"]["commands"][0].endswith("-m pip install 'torchaudio==2.13.*'")
    r = cli("check", "--json", "--only", "torchaudio", "--recipe", "piper")  # no torchaudio
    assert {f["status"] for f in r.json["findings"]} == {"skip"}


@pytest.mark.venv
@pytest.mark.slow
def test_torch_only_venv_skips_every_torchaudio_probe(cli, make_env):
    r = check(cli, make_env(envs.TORCH_ONLY), "--only", "torchaudio")
    assert r.returncode == 0, r
    assert {f["id"]: f["status"] for f in r.json["findings"]} == {i: "skip" for i in IDS}


@pytest.mark.venv
@pytest.mark.slow
def test_cuda_torchaudio_with_cpu_torch_names_libc10_cuda(cli, make_env):
    venv = make_env(envs.TORCHAUDIO_BROKEN)
    real = venv.run("-c", "import torchaudio", check=False,
                    env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert real.returncode != 0 and "_torchaudio.abi3.so" in real.stderr

    r = check(cli, venv, "--only", "torchaudio")
    assert r.returncode == 1, r
    py = str(venv.python)
    pair_commands = [f"{py} -m pip uninstall -y torch torchaudio",
                     f"{py} -m pip install --index-url https://download.pytorch.org/whl/cpu "
                     "'torch==2.11.*' 'torchaudio==2.11.*'"]

    e = r.finding("torchaudio.extension")
    assert e["status"] == "fail"
    assert e["summary"].startswith("import torchaudio fails: libc10_cuda.so (needed by "
                                   "_torchaudio.abi3.so")
    assert "torchaudio 2.11.0+cu130 is a CUDA build, torch 2.13.0+cpu a CPU build" in e["summary"]
    assert e["details"]["family"] == "A2"
    assert "libc10_cuda.so" in e["details"]["missing"]
    assert "Could not load this library" in e["details"]["error"]
    assert e["fix"]["shim"] == "mel"
    assert "mel-spectrogram extractor that needs no torchaudio" in e["fix"]["description"]
    assert e["fix"]["commands"] == pair_commands

    p = r.finding("torchaudio.pair")
    assert p["status"] == "fail"
    assert "torchaudio 2.11.0+cu130 belongs to torch 2.11.x, but torch is 2.13.0+cpu" \
        in p["summary"]
    assert "is a CUDA 13.0 build (cu130) (torchaudio/version.py) but torch is a CPU build" \
        in p["summary"]
    assert p["details"]["families"] == ["A1", "A2"]
    # versions explain, behaviour decides: the worker loaded it, and it failed
    assert p["details"]["behaviour"]["loads_and_runs"] is False
    assert "libc10_cuda.so" in p["details"]["behaviour"]["error"]
    assert "loading confirms it" in p["summary"]
    # the wheel's metadata has no local tag: the build comes from its version.py
    assert p["details"]["torchaudio"]["version"] == "2.11.0"
    assert p["details"]["torchaudio"]["tag"] == "cu130"
    assert p["fix"]["commands"] == pair_commands

    io = r.finding("torchaudio.io")
    assert io["status"] == "warn"
    assert "through TorchCodec, which is not installed" in io["summary"]
    assert "TorchCodec is required for load_with_torchcodec" in io["summary"]
    assert io["fix"]["commands"][0] == f"{py} -m pip install torchcodec"
    assert io["fix"]["commands"][2] == f"{py} -m pip install soundfile"

    api = r.finding("torchaudio.api")
    assert api["status"] == "ok", api
    assert "judged by its version" in api["summary"]
    assert "torchaudio.info" in api["details"]["gone"]
    assert "torchaudio.backend.set_audio_backend" in api["details"]["gone"]


@pytest.mark.venv
def test_removed_api_users_and_torchcodec_without_ffmpeg(cli, make_env):
    venv = make_env(envs_torch.TORCHAUDIO_USERS)
    r = check(cli, venv, "--only", "torchaudio")
    assert r.returncode == 1, r
    py = str(venv.python)

    api = r.finding("torchaudio.api")
    assert api["status"] == "fail"
    assert api["summary"] == ("torchaudio 2.11.0+cu130 no longer has torchaudio.info, which "
                              "installed code calls: coqui-tts 0.27.0 (torchaudio.info at "
                              "TTS/tts/datasets/dataset.py:60)")
    assert api["details"]["users"] == [{
        "distribution": "coqui-tts", "version": "0.27.0",
        "where": "TTS/tts/datasets/dataset.py:60", "name": "torchaudio.info",
        "guarded": False, "origin": "distribution"}]
    # no coqui-tts release is known to have migrated: a pin or a patch, no blind upgrade
    assert api["fix"]["commands"] == [f"{py} -m pip install 'torchaudio<2.9'"]
    assert "coqui-tts 0.27.0: no fixed release known: shim, pin or patch" in \
        api["fix"]["description"]
    assert "torchaudio.info -> soundfile.info" in api["fix"]["description"]

    io = r.finding("torchaudio.io")
    assert io["status"] == "warn"
    assert io["summary"].startswith("torchcodec 0.9.1 finds no FFmpeg: none of its core "
                                    "libraries resolves (libavutil.so.56, libavutil.so.57, "
                                    "libavutil.so.58, libavutil.so.59, libavutil.so.60 missing")
    assert io["details"]["ffmpeg_majors"]["8"][:1] == ["libavcodec.so.62"]
    assert io["details"]["load_save_users"][0].startswith("coqui-tts 0.27.0 (TTS/")
    assert io["fix"]["commands"][0].startswith("apt-get install -y ffmpeg")

    p = r.finding("torchaudio.pair")
    assert p["status"] == "fail" and "installed without torch" in p["summary"]
    e = r.finding("torchaudio.extension")
    assert e["status"] == "fail" and "torch is not installed" in e["summary"]


def test_matching_pairs_are_ok_and_cuda_mismatch_fails():
    def side(name, version, runtime, tag):
        return ta.Side(name, version, runtime, tag, "version.py")

    good = ta.judge_pair(side("torch", "2.11.0+cpu", "2.11.0+cpu", "cpu"),
                         side("torchaudio", "2.11.0+cpu", "2.11.0+cpu", "cpu"), None)
    assert good.status is Status.OK
    assert good.summary == "torchaudio 2.11.0+cpu pairs with torch 2.11.0+cpu (cpu build)"
    old = ta.judge_pair(side("torch", "1.13.1", "1.13.1+cu117", "cu117"),
                        side("torchaudio", "0.13.1", "0.13.1+cu117", "cu117"), None)
    assert old.status is Status.OK
    cuda = ta.judge_pair(side("torch", "2.1.2", "2.1.2+cu121", "cu121"),
                         side("torchaudio", "2.1.2+cu118", "2.1.2+cu118", "cu118"), None)
    assert cuda.status is Status.FAIL
    assert "PyTorch and TorchAudio were compiled with different CUDA versions" in cuda.summary
    assert cuda.details["families"] == ["A3"]
    assert cuda.fix.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu121 "
                                         "'torch==2.1.*' 'torchaudio==2.1.*'")
    newer_audio = ta.judge_pair(side("torch", "2.4.0", "2.4.0+cu124", "cu124"),
                                side("torchaudio", "2.5.1", "2.5.1+cu124", "cu124"), None)
    assert newer_audio.status is Status.FAIL and newer_audio.details["families"] == ["A1"]
    # the older line is the pair that exists: torch 2.4 with torchaudio 2.4
    assert newer_audio.fix.commands[1].endswith("'torch==2.4.*' 'torchaudio==2.4.*'")


def test_a_version_mismatch_that_loads_and_runs_is_not_a_failure():
    """F14 (TTS-Audio-Suite#337): torch 2.12.1 with torchaudio 2.11.0 works, torchaudio builds
    on torch's stable ABI. Such a pair cannot be installed here (no CPU torchaudio, one torch
    wheel), so the behaviour the worker measured is given to the pure verdict."""
    def side(name, version, tag):
        return ta.Side(name, version, version, tag, "version.py")

    versions = ta.judge_pair(side("torch", "2.12.1+cu128", "cu128"),
                             side("torchaudio", "2.11.0+cu128", "cu128"), None)
    assert versions.status is Status.FAIL  # the version rule alone would cry wolf
    works = ta.judge_pair_behaviour(versions, True, None)
    assert works.status is Status.OK and "the pair works" in works.summary
    assert works.details["behaviour"] == {"loads_and_runs": True, "error": None}
    broken = ta.judge_pair_behaviour(versions, False, "OSError: undefined symbol: _ZN3c10x")
    assert broken.status is Status.FAIL and "loading confirms it" in broken.summary
    assert broken.fix == versions.fix


@pytest.mark.venv
@pytest.mark.parametrize("spec", [
    pytest.param(envs.TORCHAUDIO_BROKEN, id="broken", marks=pytest.mark.slow),
    pytest.param(envs_torch.TORCHAUDIO_USERS, id="users")])
def test_recorded_facts_judge_to_the_live_findings(cli, make_env, tmp_path, spec):
    """A real torchaudio environment's facts (--save-facts) judged again with --facts: the
    same findings, none of them replayed, also in a process where every read of the machine
    raises. (The environment is shared with other tests running at the same time, so it is
    never moved away: the blindfolded judge is the proof that nothing of it is read.)"""
    import json

    venv = make_env(spec)
    facts = tmp_path / "facts.json"
    live = check(cli, venv, "--only", "torchaudio.*", "--save-facts", str(facts))
    assert live.returncode == 1, live
    assert [f["id"] for f in live.json["findings"]] == IDS
    saved = json.loads(facts.read_text())
    assert all("facts" in saved["probes"][i] for i in IDS), saved["probes"].keys()
    judged = cli("check", "--json", "--only", "torchaudio.*", "--facts", str(facts))
    assert judged.returncode == live.returncode, judged
    assert_judged_alike(live.json["findings"], judged.json["findings"], facts, tmp_path)
