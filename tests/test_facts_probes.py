"""Each probe module converted to collect/judge gives, judged from its recorded facts, the
findings of the live run (issue 11, item 4): `check --save-facts F`, then `check --facts F`,
through the real CLI, on a real environment where the module's probes have something to say
(the environments the modules' own tests build). Every finding must come from its judge (the
file holds facts, no recorded finding, and nothing is marked `replayed`), and the judging
run sees neither the live run's environment variables nor its recipe file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import pytest

from tests.harness import envs, envs_numeric, envs_text
from tests.harness.apps import write_app
from tests.harness.blindfold import comparable
from tests.harness.envs_families import MODELSCOPE_DATASETS, PHONEMIZER_LOADER, TEXT_NO_DATA
from tests.harness.recipes import write_recipe
from tests.harness.venvs import EnvSpec

# shims are installed into this one and removed again: an environment of this module's own, so
# that test_probes_scipy's shims test (SCIPY_MODERN_SHIMMED) never runs beside it on the same
SHIMS_OWN = EnvSpec("facts-shims", steps=envs_text.SCIPY_MODERN_SHIMMED.steps)

pytestmark = pytest.mark.venv


@dataclass
class Live:
    """One live run: its arguments, environment variables, and the statuses it must give."""

    args: list[str]
    expected: dict[str, Union[str, set[str]]]
    env: dict[str, str] = field(default_factory=dict)


Case = Callable[[Any, Path], Live]


def _python(venv: Any) -> list[str]:
    return ["--python", str(venv.python)]


def _scipy(make_env: Any, tmp: Path) -> Live:
    # SciPy 1.17 with librosa 0.10.0 reached from an application: a fail and a warn
    app = write_app(tmp / "app", "from librosa import beat\n")
    return Live([*_python(make_env(envs.SCIPY_MODERN)), "--project", str(app)],
                {"scipy.removed-names": "fail", "scipy.resample": "warn"})


def _onnxruntime(make_env: Any, tmp: Path) -> Live:
    # the development venv's CPU build of ONNX Runtime under a recipe that needs CUDA
    recipe = write_recipe(tmp / "cuda.toml", 'cuda = "required"', name="cuda", engine="piper")
    return Live(["--recipe", recipe],
                {"onnxruntime.install": "ok", "onnxruntime.providers": "fail"})


def _onnxruntime_both(make_env: Any, tmp: Path) -> Live:
    # onnxruntime-gpu 1.22 with the CPU build installed over it (the slow tests' environment)
    return Live(_python(make_env(envs_numeric.ORT_BOTH)),
                {"onnxruntime.install": "fail", "onnxruntime.providers": "fail"})


def _onnxruntime_gpu(make_env: Any, tmp: Path) -> Live:
    # onnxruntime-gpu 1.22 without its CUDA libraries, on a host without a GPU: a warning
    return Live(_python(make_env(envs_numeric.ORT_GPU)),
                {"onnxruntime.install": "ok", "onnxruntime.providers": "warn"})


def _audio(make_env: Any, tmp: Path) -> Live:
    # soundfile 0.10.3 (no bundled libsndfile), pydub and pysox without ffmpeg or sox
    return Live(_python(make_env(envs_numeric.AUDIO_LEGACY)),
                {"audio.sndfile": {"ok", "fail"},  # whether this machine has libsndfile
                 "audio.backends": "warn", "audio.ffmpeg": "warn", "audio.sox": "warn"})


def _ttsfrd(make_env: Any, tmp: Path) -> Live:
    # PyPI's ttsfrd and kantts placeholders on Python 3.11
    return Live(_python(make_env(envs.TTSFRD_PLACEHOLDER)),
                {"ttsfrd.origin": "fail", "ttsfrd.platform": "warn", "ttsfrd.libs": "skip",
                 "ttsfrd.version": "skip", "ttsfrd.engine": "fail", "ttsfrd.resource": "skip",
                 "ttsfrd.kantts": "fail"})


def _ttsfrd_real(make_env: Any, tmp: Path) -> Live:
    # the real ttsfrd 0.4.2 with its libraries, no resource folder: initialize() fails
    return Live(_python(make_env(envs.TTSFRD_REAL)),
                {"ttsfrd.origin": "ok", "ttsfrd.platform": "ok", "ttsfrd.libs": "ok",
                 "ttsfrd.version": "ok", "ttsfrd.engine": "ok", "ttsfrd.resource": "fail",
                 "ttsfrd.kantts": "skip"})


def _frontend(make_env: Any, tmp: Path) -> Live:
    # g2p_en without NLTK data, misaki without its spaCy model, offline (set only for the
    # live run: the judge reads it from the facts), and a recipe that needs WeTextProcessing
    recipe = write_recipe(tmp / "wetext.toml", 'wetextprocessing = "required"', name="wt",
                          engine="callable")
    return Live([*_python(make_env(TEXT_NO_DATA)), "--recipe", recipe],
                {"frontend.wetext": "fail", "frontend.nltk-data": "fail",
                 "frontend.spacy-model": "fail"}, {"HF_HUB_OFFLINE": "1"})


def _espeak(make_env: Any, tmp: Path) -> Live:
    # phonemizer-fork with espeakng-loader, pointed at its bundled copy: phonemizes
    venv = make_env(PHONEMIZER_LOADER)
    bundled = venv.site / "espeakng_loader"
    return Live(_python(venv), {"frontend.espeak": "ok"},
                {"PHONEMIZER_ESPEAK_LIBRARY": str(bundled / "libespeak-ng.so"),
                 "ESPEAK_DATA_PATH": str(bundled / "espeak-ng-data")})


def _torch_load(make_env: Any, tmp: Path) -> Live:
    # torch 2.13 in the development venv, with TORCH_FORCE_WEIGHTS_ONLY_LOAD set
    return Live([], {"torch.weights-only": "ok"}, {"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"})


def _modelscope(make_env: Any, tmp: Path) -> Live:
    # modelscope 1.19.0 with datasets 3.0.2 (OfflineModeIsEnabled removed)
    return Live([*_python(make_env(MODELSCOPE_DATASETS)), "--recipe", "sambert-hifigan-16k"],
                {"compat.modelscope-datasets": "fail"})


def _extensions(make_env: Any, tmp: Path) -> Live:
    # the development venv: no extension links libtorch; every symbol version resolves
    return Live([], {"extensions.libstdcxx": "ok"})


def _compat(make_env: Any, tmp: Path) -> Live:
    # pydantic 2.11 with gradio 5.21, transformers 4.50 with the old coqui TTS
    return Live(_python(make_env(envs_numeric.COMPAT_BROKEN)),
                {"compat.gradio": "fail", "compat.transformers": "fail"})


def _model(make_env: Any, tmp: Path) -> Live:
    # a Hugging Face cache with a dangling link, offline, and a minimum no disk here has
    from tests.test_probes_model import env_for, hf_cache, recipe

    hf_cache(tmp / "hf" / "hub", "IndexTeam/IndexTTS-2",
             {"config.yaml": b"a: 1\n", "bpe.model": b"x" * 100}, dangling=("gpt.pth",))
    path = recipe(tmp, "huggingface", "IndexTeam/IndexTTS-2",
                  ["config.yaml", "bpe.model", "gpt.pth", "s2mel.pth"],
                  extra="min_free_gib = 1000000")
    return Live(["--recipe", path], {"model.cache": "fail", "model.disk": "fail"},
                {**env_for(tmp), "HF_HUB_OFFLINE": "1"})


def _piper(make_env: Any, tmp: Path) -> Live:
    # the development venv's real Piper voice, asked for a speaker it does not have
    return Live(["--recipe", "piper", "--set", "piper.speaker=3"],
                {"model.piper-voice": "fail"})


# label -> (the --only patterns, the live run)
CASES: dict[str, tuple[str, Case]] = {
    "scipy": ("scipy.*", _scipy),
    "onnxruntime": ("onnxruntime.*", _onnxruntime),
    "onnxruntime-both": ("onnxruntime.*", _onnxruntime_both),
    "onnxruntime-gpu": ("onnxruntime.*", _onnxruntime_gpu),
    "audio": ("audio.*", _audio),
    "ttsfrd": ("ttsfrd.*", _ttsfrd),
    "ttsfrd-real": ("ttsfrd.*", _ttsfrd_real),
    "frontend": ("frontend.*", _frontend),
    "frontend-espeak": ("frontend.*", _espeak),
    "torch_load+load_gate": ("torch.weights-only,torch.load-gate", _torch_load),
    "modelscope": ("compat.modelscope-datasets", _modelscope),
    "extensions": ("extensions.*", _extensions),
    "compat": ("compat.gradio,compat.transformers", _compat),
    "model": ("model.cache,model.disk", _model),
    "piper": ("model.piper-voice", _piper),
}


def _round_trip(cli: Any, tmp: Path, only: str, live: Live) -> None:
    facts = tmp / "facts.json"
    run = cli("check", "--json", "--only", only, *live.args, "--save-facts", str(facts),
              cwd=tmp, env=live.env)
    assert run.returncode in (0, 1), run
    findings = run.json["findings"]
    assert {f["id"] for f in findings} == set(live.expected), run
    for f in findings:
        want = live.expected[f["id"]]
        assert f["status"] in ({want} if isinstance(want, str) else want), f
    saved = json.loads(facts.read_text())
    for f in findings:  # split probes: the file holds their facts, not their findings
        assert "facts" in saved["probes"][f["id"]], f["id"]
    judged = cli("check", "--json", "--facts", str(facts), "--only", only, cwd=tmp)
    assert judged.returncode == run.returncode, judged
    assert [comparable(f) for f in judged.json["findings"]] == \
        [comparable(f) for f in findings]
    assert not any("replayed" in f["details"] for f in judged.json["findings"])


# cases whose environment only the slow tests build (onnxruntime-gpu is 280 MB)
SLOW = {"onnxruntime-both", "onnxruntime-gpu"}


@pytest.mark.parametrize("label", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k
                                   for k in sorted(CASES)])
def test_recorded_facts_judge_to_the_live_findings(cli, make_env, tmp_path, label):
    only, case = CASES[label]
    _round_trip(cli, tmp_path, only, case(make_env, tmp_path))


@contextmanager
def _shims(cli: Any, python: str, *names: str) -> Iterator[None]:
    installed = cli("shims", "install", *names, "--python", python)
    assert installed.returncode == 0, installed
    try:
        yield
    finally:
        removed = cli("shims", "uninstall", *names, "--python", python)
        assert removed.returncode == 0, removed


def test_the_shims_probe_judges_its_facts_to_the_live_finding(cli, make_env, tmp_path):
    # the real shims installed into an environment of our own (as test_probes_scipy does)
    venv = make_env(SHIMS_OWN)
    with _shims(cli, str(venv.python), "scipy_names"):
        _round_trip(cli, tmp_path, "shims.*",
                    Live(_python(venv), {"shims.installed": "ok"}))
    _round_trip(cli, tmp_path, "shims.*", Live(_python(venv), {"shims.installed": "ok"}))
