"""Engine load failures in the doctor's own environment (neither ModelScope nor IndexTTS-2 is
installed in it), and adapters against fakes of the libraries' public call shapes
(tests/fakes_smoke/lib) where the real library cannot synthesize here: IndexTTS-2 is on no
package registry, and ModelScope's Sambert-HiFiGAN needs KAN-TTS, which is on none either
(the real ModelScope library itself is tested in tests/test_smoke_real_libs.py, which also
checks the fake's call shapes against it). A model missing from the cache, an incomplete
download, a missing reference voice: failed `smoke.load` findings (exit 1) with the download
command; a wrong path the user typed: a usage error (exit 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

FAKES = REPO / "tests" / "fakes_smoke" / "lib"
MODEL_ID = "damo/speech_sambert-hifigan_tts_zh-cn_16k"
TEXT = "欢迎使用语音合成服务，这是一次冒烟测试。"


def _fake_env(log: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(FAKES), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "FAKE_TTS_LOG": str(log), **extra}


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _findings(r) -> dict[str, dict]:
    return {f["id"]: f for f in r.json["findings"]}


# --- ModelScope ---------------------------------------------------------------------------


FULL = ("configuration.json", "resource.zip", "voices/voices.json",
        "voices/zhitian_emo/am/config.yaml", "voices/zhitian_emo/voc/config.yaml",
        "voices/zhitian_emo/am/ckpt/checkpoint_2400000.pth",
        "voices/zhitian_emo/voc/ckpt/checkpoint_2400000.pth")


def _modelscope_cache(root: Path, files=FULL, layout: str = "hub") -> Path:
    model = root / layout / MODEL_ID
    model.mkdir(parents=True)
    for name in files:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_text('{"voices": ["zhitian_emo"]}' if name.endswith("voices.json")
                                  else "{}" if name.endswith(".json") else "data")
    return model


def test_modelscope_model_not_in_cache_is_a_load_failure_with_the_download_command(tmp_path):
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT, "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["status"] == "fail"
    assert f"model {MODEL_ID} is not in the local ModelScope cache" in f["summary"]
    assert str(tmp_path / "hub" / MODEL_ID) in f["summary"]
    assert ("python -c 'from modelscope import snapshot_download; "
            f"snapshot_download(\"{MODEL_ID}\")'") in f["fix"]["commands"]


def test_modelscope_incomplete_download_names_every_missing_file(tmp_path):
    _modelscope_cache(tmp_path, files=("configuration.json", "voices/voices.json"))
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT, "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["details"]["missing"] == [
        "resource.zip", "voices/zhitian_emo/am/config.yaml", "voices/zhitian_emo/voc/config.yaml",
        "voices/zhitian_emo/am/ckpt/checkpoint_*.pth",
        "voices/zhitian_emo/voc/ckpt/checkpoint_*.pth"]


def test_modelscope_not_installed_is_a_load_failure_with_a_fix(tmp_path):
    _modelscope_cache(tmp_path, layout="hub/models")  # the older cache layouts are found too
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT, "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["status"] == "fail" and "modelscope does not import" in f["summary"]
    assert "is incomplete" not in f["summary"]  # the model itself is complete
    assert "pip install" in f["fix"]["commands"][0] and "modelscope" in f["fix"]["commands"][0]


def test_modelscope_adapter_against_a_fake_because_kantts_is_on_no_registry(tmp_path):
    model = _modelscope_cache(tmp_path / "cache")
    log = tmp_path / "calls.jsonl"
    r = run_cli("smoke", "--model-id", MODEL_ID, "--set", "voice=zhizhe_emo", "--text", TEXT,
                "--json", env=_fake_env(log, MODELSCOPE_CACHE=str(tmp_path / "cache")))
    assert r.returncode == 1, r  # zhizhe_emo's files are not in the folder
    assert "voices/zhizhe_emo/am/config.yaml" in _findings(r)["smoke.load"]["summary"]
    r = run_cli("smoke", "--model-id", MODEL_ID, "--set", "voice=zhitian_emo", "--text", TEXT,
                "--json", env=_fake_env(log, MODELSCOPE_CACHE=str(tmp_path / "cache")))
    assert r.returncode == 0, r
    calls = _log(log)
    assert calls[0] == {"event": "pipeline", "task": "text-to-speech", "model": str(model),
                        "device": "cpu", "kwargs": {}}  # the local folder, never the hub id
    assert calls[1]["input"] == TEXT and calls[1]["voice"] == "zhitian_emo"
    sec = r.json["smoke"]
    assert sec["audio"]["sample_rate"] == 16000 and sec["audio"]["seconds"] > 1
    assert {"load", "model", "post"} <= {s["name"] for s in sec["stages"]}
    assert _findings(r)["output.silence"]["status"] == "ok"


def test_modelscope_recipe_cache_files_replace_the_default_list(tmp_path):
    _modelscope_cache(tmp_path, files=("configuration.json",))
    recipe = tmp_path / "sambert.toml"
    recipe.write_text(
        'name = "sambert-16k"\nengine = "modelscope"\n'
        f'[model]\nid = "{MODEL_ID}"\n'
        '[audio]\nsample_rate = 16000\n[smoke]\ntext = "你好。"\n'
        '[cache]\nfiles = ["configuration.json", "voices/voices.json"]\n')
    r = run_cli("smoke", "--recipe", str(recipe), "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    assert _findings(r)["smoke.load"]["details"]["missing"] == ["voices/voices.json"]


def test_download_commands_quote_hostile_values(tmp_path):
    """A model id or folder with shell metacharacters ends up as one inert word."""
    import shlex

    evil = "x'; touch /tmp/pwned-by-smoke; echo '$(id)`id`"
    r = run_cli("smoke", "--engine", "modelscope", "--set", f"model_id=a/{evil}",
                "--set", f"model_dir={tmp_path / evil}", "--text", TEXT, "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    cmd = [c for c in _findings(r)["smoke.load"]["fix"]["commands"] if "snapshot_download" in c]
    assert cmd, r
    words = shlex.split(cmd[0])
    assert words[:2] == ["python", "-c"] and len(words) == 3
    import ast

    call = ast.parse(words[2]).body[1].value  # snapshot_download("a/...", local_dir="...")
    assert call.args[0].value == f"a/{evil}"
    assert call.keywords[0].value.value == str(tmp_path / evil)


# --- IndexTTS-2 ---------------------------------------------------------------------------

FILES = ("config.yaml", "gpt.pth", "s2mel.pth", "bpe.model", "wav2vec2bert_stats.pt",
         "feat1.pt", "feat2.pt")


def _checkpoints(root: Path, skip: tuple[str, ...] = ()) -> Path:
    ckpt = root / "checkpoints"
    ckpt.mkdir(parents=True)
    for name in FILES:
        if name not in skip:
            (ckpt / name).write_text("gpt_checkpoint: gpt.pth\n" if name == "config.yaml"
                                     else "weights")
    if "qwen0.6bemo4-merge" not in skip:
        (ckpt / "qwen0.6bemo4-merge").mkdir()
    return ckpt


@pytest.fixture
def speaker(tmp_path) -> Path:
    import numpy as np
    from tts_doctor.smoke import wav

    path = tmp_path / "voice_01.wav"
    wav.write(str(path), np.zeros(16000, dtype=np.float32), 16000)
    return path


def test_indextts2_missing_files_are_named(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path, skip=("s2mel.pth", "feat2.pt"))
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there.", "--json")
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["details"]["missing"] == ["s2mel.pth", "feat2.pt"]
    assert f"{ckpt} is incomplete: missing s2mel.pth, feat2.pt" in f["summary"]
    assert any("snapshot_download" in c and "IndexTeam/IndexTTS-2" in c
               for c in f["fix"]["commands"])


def test_indextts2_config_names_are_honoured(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path)
    (ckpt / "config.yaml").write_text("gpt_checkpoint: gpt_v2.pth  # renamed\n")
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there.", "--json")
    assert r.returncode == 1, r
    assert _findings(r)["smoke.load"]["details"]["missing"] == ["gpt_v2.pth"]


def test_indextts2_without_a_reference_voice_says_so(tmp_path):
    ckpt = _checkpoints(tmp_path)
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--text",
                "Hello there.", "--json")
    assert r.returncode == 1, r
    assert "--set speaker=PATH.wav" in _findings(r)["smoke.load"]["summary"]


def test_indextts2_a_speaker_path_that_does_not_exist_is_a_usage_error(tmp_path):
    ckpt = _checkpoints(tmp_path)
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                "speaker=/nonexistent/voice.wav", "--text", "Hello there.")
    assert r.returncode == 2 and "speaker prompt /nonexistent/voice.wav" in r.stderr, r


def test_indextts2_not_installed_is_a_load_failure_with_a_fix(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path)
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there.", "--json")
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["status"] == "fail" and "indextts.infer_v2 does not import" in f["summary"]
    assert "index-tts" in f["fix"]["description"]


def test_indextts2_adapter_against_a_fake_because_index_tts_is_on_no_registry(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path)
    log = tmp_path / "calls.jsonl"
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there, this is IndexTTS two.", "--json",
                env=_fake_env(log))
    assert r.returncode == 0, r
    init, infer = _log(log)
    assert init["cfg_path"] == str(ckpt / "config.yaml") and init["model_dir"] == str(ckpt)
    assert init["use_fp16"] is False and init["device"] == "cpu"
    assert init["use_cuda_kernel"] is False and init["hf_hub_offline"] == "1"
    assert infer["spk_audio_prompt"] == str(speaker) and infer["output_path"] is None
    sec = r.json["smoke"]
    assert sec["engine"]["info"]["stages_marked"] == ["gpt.inference_speech",
                                                      "s2mel.cfm.inference", "bigvgan"]
    stages = {s["name"]: s for s in sec["stages"]}
    assert stages["acoustic"]["calls"] == 2 and stages["vocoder"]["calls"] == 1
    assert sec["audio"]["sample_rate"] == 22050
    assert _findings(r)["output.silence"]["status"] == "ok"
