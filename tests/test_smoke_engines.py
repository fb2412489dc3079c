"""Engines that cannot run here (ModelScope's Sambert-HiFiGAN, IndexTTS-2): their load-failure
messages against the real environment (neither library is installed), and their adapters
against small fakes of the libraries' public call shapes (tests/fakes_smoke/lib)."""

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


def _modelscope_cache(root: Path, files=("configuration.json", "resource.zip", "voices.zip"),
                      layout: str = "hub") -> Path:
    model = root / layout / MODEL_ID
    model.mkdir(parents=True)
    for name in files:
        (model / name).write_text("{}" if name.endswith(".json") else "zip")
    return model


def test_modelscope_model_not_in_cache_is_named(tmp_path):
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT,
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 2, r
    assert f"model {MODEL_ID} is not in the local ModelScope cache" in r.stderr
    assert str(tmp_path / "hub" / MODEL_ID) in r.stderr and "snapshot_download" in r.stderr


def test_modelscope_incomplete_download_names_the_missing_files(tmp_path):
    _modelscope_cache(tmp_path, files=("configuration.json",))
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT,
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 2, r
    assert "missing resource.zip or resource, voices.zip or voices/voices.json" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_modelscope_not_installed_is_a_load_failure_with_a_fix(tmp_path):
    _modelscope_cache(tmp_path, layout="hub/models")  # the newer cache layout is found too
    r = run_cli("smoke", "--model-id", MODEL_ID, "--text", TEXT, "--json",
                env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["status"] == "fail" and "modelscope does not import" in f["summary"]
    assert "pip install" in f["fix"]["commands"][0] and "modelscope" in f["fix"]["commands"][0]


def test_modelscope_adapter_against_the_fake_pipeline(tmp_path):
    model = _modelscope_cache(tmp_path / "cache")
    log = tmp_path / "calls.jsonl"
    r = run_cli("smoke", "--model-id", MODEL_ID, "--set", "voice=zhizhe_emo", "--text", TEXT,
                "--json", env=_fake_env(log, MODELSCOPE_CACHE=str(tmp_path / "cache")))
    assert r.returncode == 0, r
    calls = _log(log)
    assert calls[0] == {"event": "pipeline", "task": "text-to-speech", "model": str(model),
                        "device": "cpu", "kwargs": {}}  # the local folder, never the hub id
    assert calls[1]["input"] == TEXT and calls[1]["voice"] == "zhizhe_emo"
    sec = r.json["smoke"]
    assert sec["audio"]["sample_rate"] == 16000 and sec["audio"]["seconds"] > 1
    assert {"load", "model", "post"} <= {s["name"] for s in sec["stages"]}
    assert _findings(r)["output.silence"]["status"] == "ok"


def test_modelscope_recipe_cache_files_replace_the_default_list(tmp_path):
    _modelscope_cache(tmp_path)
    recipe = tmp_path / "sambert.toml"
    recipe.write_text(
        'name = "sambert-16k"\nengine = "modelscope"\n'
        f'[model]\nmodel_id = "{MODEL_ID}"\n'
        '[audio]\nsample_rate = 16000\n[smoke]\ntext = "你好。"\n'
        '[cache]\nfiles = ["configuration.json", "voices/voices.json"]\n')
    r = run_cli("smoke", "--recipe", str(recipe), env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert r.returncode == 2 and "missing voices/voices.json" in r.stderr, r


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
                f"speaker={speaker}", "--text", "Hello there.")
    assert r.returncode == 2, r
    assert "missing s2mel.pth, feat2.pt" in r.stderr


def test_indextts2_config_names_are_honoured(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path)
    (ckpt / "config.yaml").write_text("gpt_checkpoint: gpt_v2.pth  # renamed\n")
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there.")
    assert r.returncode == 2 and "missing gpt_v2.pth" in r.stderr, r


@pytest.mark.parametrize("args, needle", [
    ([], "needs a reference voice"),
    (["--set", "speaker=/nonexistent/voice.wav"], "speaker prompt /nonexistent/voice.wav"),
])
def test_indextts2_speaker_is_required(tmp_path, args, needle):
    ckpt = _checkpoints(tmp_path)
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), *args, "--text",
                "Hello there.")
    assert r.returncode == 2 and needle in r.stderr, r


def test_indextts2_not_installed_is_a_load_failure_with_a_fix(tmp_path, speaker):
    ckpt = _checkpoints(tmp_path)
    r = run_cli("smoke", "--engine", "indextts2", "--checkpoint", str(ckpt), "--set",
                f"speaker={speaker}", "--text", "Hello there.", "--json")
    assert r.returncode == 1, r
    f = _findings(r)["smoke.load"]
    assert f["status"] == "fail" and "indextts.infer_v2 does not import" in f["summary"]
    assert "index-tts" in f["fix"]["description"]


def test_indextts2_adapter_against_the_fake(tmp_path, speaker):
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
