"""The smoke engines against the real libraries, installed from the package registry.

ModelScope 1.40.2 with its `audio-tts` extra installs here (Python 3.11, torch 2.13 CPU), and
so does everything its Sambert-HiFiGAN pipeline imports except KAN-TTS: PyPI's `kantts` is a
placeholder and the real one is not on any registry (the `audio-tts` extra pulls the
placeholder). So the tests run the real pipeline's load path against model folders that lack
the weights and check that

- a model missing from the cache is found missing the way ModelScope itself looks for it
  (its own `snapshot_download(local_files_only=True)` message is in the finding), with the
  download command;
- the files the engine names as missing are exactly the ones the real ModelScope code opens:
  with KAN-TTS's five imported names stubbed (tests/fakes_smoke/kantts_stub, the one thing
  that cannot be installed), the real `pipeline()` gets past every file lookup when the named
  files exist and fails on a missing file when any one of them is taken away;
- with the placeholder kantts, the finding says the real KAN-TTS is missing.

Not installable here (checked with `pip download --no-deps`): `index-tts`/`indextts` (not on
PyPI); `cosyvoice` 0.0.8 on PyPI is an unrelated wrapper without `cosyvoice.cli`. Their
tests stay on fakes (tests/test_smoke_engines.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, build_env, run_cli
from tests.harness.envs import TORCH
from tests.harness.venvs import EnvSpec

pytestmark = [pytest.mark.slow, pytest.mark.venv]

MODEL_ID = "damo/speech_sambert-hifigan_tts_zh-cn_16k"
TEXT = "今天天气很好。"
KANTTS_STUB = REPO / "tests" / "fakes_smoke" / "kantts_stub"
# modelscope[audio-tts] 1.40.2 (transformers, datasets, librosa 0.10.1, huggingface_hub,
# PyPI's kantts placeholder...), nltk for the air-gap audit of its downloader, and this
# checkout, editable, so the CLI runs in that interpreter.
MODELSCOPE = EnvSpec("smoke-modelscope", steps=(
    TORCH, ("install", "modelscope[audio-tts]==1.40.2", "nltk==3.10.4"),
    ("install", "-e", str(REPO))))
VOICE = "zhitian_emo"
CONFIG = {"framework": "pytorch", "task": "text-to-speech",
          "model": {"type": "sambert-hifigan", "lang_type": "zhcn", "sample_rate": 16000},
          "pipeline": {"type": "sambert-hifigan-tts"}}
# what the engine names, relative to the model folder (for the voice used)
WEIGHTS = ("resource.zip", f"voices/{VOICE}/am/config.yaml", f"voices/{VOICE}/voc/config.yaml",
           f"voices/{VOICE}/am/ckpt/checkpoint_*.pth", f"voices/{VOICE}/voc/ckpt/checkpoint_*.pth")


@pytest.fixture(scope="module")
def env():
    return build_env(MODELSCOPE)


def _skeleton(folder: Path) -> Path:
    """A model folder as a download interrupted after the small files: no weights."""
    (folder / "voices").mkdir(parents=True)
    (folder / "configuration.json").write_text(json.dumps(CONFIG))
    (folder / "voices" / "voices.json").write_text(json.dumps({"voices": [VOICE]}))
    return folder


def _materialize(folder: Path, entry: str) -> None:
    path = folder / entry.replace("checkpoint_*.pth", "checkpoint_2400000.pth")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name == "config.yaml":
        path.write_text("linguistic_unit: {language: PinYin}\n"
                        "Model: {KanTtsSAMBERT: {params: {}}}\n")
    else:
        path.write_bytes(b"not a real checkpoint")


def _smoke(env, *args: str, **extra: str):
    return run_cli("smoke", "--engine", "modelscope", "--text", TEXT, "--json", *args,
                   python=str(env.python), env=extra, timeout=600)


def test_real_modelscope_model_not_in_cache_is_a_load_failure_with_its_own_message(env,
                                                                                    tmp_path):
    r = _smoke(env, "--model-id", MODEL_ID, MODELSCOPE_CACHE=str(tmp_path))
    assert r.returncode == 1, r
    f = r.finding("smoke.load")
    assert f["status"] == "fail"
    # the installed library's own answer, asked directly
    own = env.run("-c", textmod(f"""
        from modelscope.hub.snapshot_download import snapshot_download
        try:
            snapshot_download({MODEL_ID!r}, local_files_only=True)
        except Exception as exc:
            print(str(exc).strip()[:400])
        """), env=dict(os.environ, MODELSCOPE_CACHE=str(tmp_path))).stdout.strip()
    assert own and own in f["summary"], (own, f["summary"])
    assert str(tmp_path / "models" / MODEL_ID.replace("/", "--") / "snapshots") in own
    cmd = f["fix"]["commands"][0]
    assert cmd == ("python -c 'from modelscope import snapshot_download; "
                   f"snapshot_download(\"{MODEL_ID}\")'")


def test_real_modelscope_cache_layout_is_found_and_the_missing_weights_are_named(env, tmp_path):
    # where modelscope >= 1.38 puts a snapshot
    folder = _skeleton(tmp_path / "models" / MODEL_ID.replace("/", "--") / "snapshots"
                       / "master")
    r = _smoke(env, "--model-id", MODEL_ID, MODELSCOPE_CACHE=str(tmp_path))
    assert r.returncode == 1, r
    f = r.finding("smoke.load")
    assert f["details"]["model_dir"] == str(folder)
    assert f["details"]["missing"] == list(WEIGHTS)
    assert "snapshot_download" in f["fix"]["commands"][0]


def test_the_named_files_are_exactly_those_real_modelscope_opens(env, tmp_path):
    """Every file the engine names is one the real library fails without, and with all of
    them present the real library gets past every file lookup (KAN-TTS stubbed)."""
    folder = _skeleton(tmp_path / "model")
    r = _smoke(env, "--set", f"model_dir={folder}")
    named = r.finding("smoke.load")["details"]["missing"]
    assert named == list(WEIGHTS)
    script = textmod("""
        import json, shutil, sys, traceback
        from pathlib import Path
        from modelscope.pipelines import pipeline
        from modelscope.utils.constant import Tasks
        folder = Path(sys.argv[1])

        def outcome():
            try:
                pipeline(task=Tasks.text_to_speech, model=str(folder), device="cpu")
            except Exception as exc:
                cause = exc.__cause__ or exc
                return f"{type(cause).__name__}: {cause}"
            return "built"

        results = {"all": outcome()}
        for entry in sys.argv[2:]:
            path = folder / entry.replace("checkpoint_*.pth", "checkpoint_2400000.pth")
            keep = path.read_bytes()
            path.unlink()
            results[entry] = outcome()
            path.write_bytes(keep)
        print(json.dumps(results))
        """)
    for entry in named:
        _materialize(folder, entry)
    lookups = [e for e in named if e != "resource.zip"]  # see below
    out = env.run("-c", script, str(folder), *lookups,
                  env=dict(os.environ, PYTHONPATH=str(KANTTS_STUB)), timeout=600)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    missing_file = ("not found", "not exist", "No such file", "voices empty")
    # All present: the real code passes its file checks and stops at KAN-TTS's stub or at
    # its own refusal of Python >= 3.11 (which comes before it opens resource.zip)
    assert not any(m in results["all"] for m in missing_file), results["all"]
    for entry in lookups:
        assert any(m in results[entry] for m in missing_file), (entry, results[entry])
    # resource.zip: opened after the Python-version refusal, so on 3.11 only the source says
    # so; check the real source opens exactly that name
    src = env.run("-c", "import modelscope, pathlib; print(pathlib.Path(modelscope.__file__)"
                  ".parent / 'models/audio/tts/sambert_hifi.py')").stdout.strip()
    assert "os.path.join(model_dir, 'resource.zip')" in Path(src).read_text()


def test_real_modelscope_with_pypi_placeholder_kantts_says_kantts_is_missing(env, tmp_path):
    folder = _skeleton(tmp_path / "model")
    for entry in WEIGHTS:
        _materialize(folder, entry)
    r = _smoke(env, "--set", f"model_dir={folder}")
    assert r.returncode == 1, r
    f = r.finding("smoke.load")
    assert f["status"] == "fail"
    assert "No module named 'kantts.datasets'" in f["summary"]
    assert "placeholder kantts 0.1.0" in f["summary"]
    assert "KAN-TTS" in f["fix"]["description"]


def test_real_modelscope_on_python_3_11_is_refused_by_modelscope_itself(env, tmp_path):
    """KAN-TTS stubbed: the real SambertHifigan reads the voice, then refuses Python 3.11."""
    folder = _skeleton(tmp_path / "model")
    for entry in WEIGHTS:
        _materialize(folder, entry)
    (folder / f"voices/{VOICE}/am/config.yaml").write_text(
        "linguistic_unit: {language: PinYin}\nModel: {KanTtsSAMBERT: {params: {}}}\n")
    r = run_cli("smoke", "--engine", "modelscope", "--set", f"model_dir={folder}", "--text",
                TEXT, "--json", python=str(env.python), env={"PYTHONPATH": str(KANTTS_STUB)},
                timeout=600)
    assert r.returncode == 1, r
    f = r.finding("smoke.load")
    assert f["status"] == "fail", f
    assert "Python version needs to be <= 3.10" in f["summary"], f
    assert "does not import" in f["summary"] and "KAN-TTS" in f["fix"]["description"]


def test_fake_pipeline_call_shapes_match_the_real_library(env):
    """tests/fakes_smoke/lib/modelscope stands in for a synthesis the real library cannot do
    here (no KAN-TTS, Python 3.11 refused): its names and call shapes are the real ones."""
    out = env.run("-c", textmod("""
        import inspect, json, pathlib
        import modelscope
        from modelscope.outputs import OutputKeys
        from modelscope.pipelines import pipeline
        from modelscope.utils.constant import Tasks
        # the pipeline module imports KAN-TTS: read its source instead of importing it
        src = (pathlib.Path(modelscope.__file__).parent
               / "pipelines/audio/text_to_speech_pipeline.py").read_text()
        print(json.dumps({"wav": OutputKeys.OUTPUT_WAV, "task": Tasks.text_to_speech,
                          "params": list(inspect.signature(pipeline).parameters),
                          "source": src}))
        """)).stdout
    real = json.loads(out.strip().splitlines()[-1])
    assert real["wav"] == "output_wav" and real["task"] == "text-to-speech"
    assert {"task", "model", "device"} <= set(real["params"])
    assert "def forward(self, input: str, **forward_params)" in real["source"]
    assert "forward_params.get('voice')" in real["source"]
    assert "return {OutputKeys.OUTPUT_WAV: output_wav}" in real["source"]


def textmod(code: str) -> str:
    return textwrap.dedent(code).strip() + "\n"


def test_the_recipe_reaches_the_real_engine(env, tmp_path):
    """`smoke --recipe sambert-hifigan-16k` with the real library: a finding, not exit 2."""
    r = run_cli("smoke", "--recipe", "sambert-hifigan-16k", "--json", python=str(env.python),
                env={"MODELSCOPE_CACHE": str(tmp_path)}, timeout=600)
    assert r.returncode == 1, r
    f = r.finding("smoke.load")
    assert f["status"] == "fail" and "is not in the local ModelScope cache" in f["summary"]
    assert subprocess.run(["sh", "-n", "-c", f["fix"]["commands"][0]]).returncode == 0


def test_offline_audit_of_the_real_hub_clients(env):
    """The real huggingface_hub, modelscope and nltk downloaders, called at runtime under
    --offline: each is a smoke.download with its pre-fetch command; ModelScope, which has no
    offline switch, is caught at the socket with the frame in its own code."""
    r = run_cli("smoke", "--callable", "tests.fakes_smoke.voices:fetches_models", "--text",
                "Hello there.", "--offline", "--json", python=str(env.python), timeout=600)
    assert r.returncode == 1, r
    f = r.finding("smoke.download")
    kinds = {d["kind"]: d for d in f["details"]["downloads"]}
    assert {"huggingface", "modelscope", "nltk"} <= set(kinds), kinds
    assert kinds["huggingface"]["what"] == "facebook/w2v-bert-2.0/config.json"
    assert kinds["huggingface"]["outcome"] == "failed"  # HF_HUB_OFFLINE=1: nothing cached
    cmds = f["fix"]["commands"]
    assert ("python -c 'from huggingface_hub import hf_hub_download; "
            "hf_hub_download(\"facebook/w2v-bert-2.0\", \"config.json\")'") in cmds
    assert ("python -c 'from modelscope import snapshot_download; "
            "snapshot_download(\"iic/CosyVoice2-0.5B\")'") in cmds
    assert "python -m nltk.downloader averaged_perceptron_tagger_eng" in cmds
    for d in kinds.values():
        assert d["frame"].endswith("in fetches_models"), d
    off = r.finding("smoke.offline")
    assert off["status"] == "fail"
    hosts = {c["host"] for c in off["details"]["connections"]}
    assert any("modelscope" in h for h in hosts), hosts
