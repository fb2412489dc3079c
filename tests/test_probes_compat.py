"""compat.gradio (O3) and compat.transformers (O4) on real environments: the pairs that
broke, and the same stack one release either side of each break. The packages go in with
--no-deps: the probes read metadata and class definitions, never import them."""

from __future__ import annotations

import pytest
from tts_doctor.probes import compat

from tests.harness import envs_numeric
from tests.harness.apps import write_app


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_dev_environment_has_neither_stack_so_no_finding(cli):
    # the two pair probes (compat.api-drift and compat.modelscope-datasets judge other things)
    r = cli("check", "--json", "--only", "compat.gradio,compat.transformers")
    assert r.returncode == 0, r
    assert r.json["findings"] == []


@pytest.mark.venv
def test_broken_pairs_fail_with_their_fixes(cli, make_env):
    venv = make_env(envs_numeric.COMPAT_BROKEN)
    r = check(cli, venv, "--only", "compat")
    assert r.returncode == 1, r
    g = r.finding("compat.gradio")
    assert g["status"] == "fail"
    assert "pydantic 2.11.0 with gradio 5.21.0 (gradio_client 1.7.2)" in g["summary"]
    assert "argument of type 'bool' is not iterable" in g["summary"]
    assert g["fix"]["commands"] == [f"{venv.python} -m pip install 'gradio>=5.22.0'",
                                    f"{venv.python} -m pip install 'pydantic<2.11'"]
    t = r.finding("compat.transformers")
    assert t["status"] == "fail"
    assert "transformers 4.50.0" in t["summary"] and "GPT2InferenceModel (TTS 0.22.0)" in \
        t["summary"]
    # coqui TTS is a stack the doctor knows (entry TTS.api): XTTS's GPT is reached from it,
    # tortoise only through a model name chosen at run time, so it is listed, not judged
    where = {c["file"].split("site-packages/")[1] for c in t["details"]["classes"]}
    assert where == {"TTS/tts/layers/xtts/gpt_inference.py"}
    outside = {c["file"].split("site-packages/")[1] for c in t["details"]["unreached_classes"]}
    assert "TTS/tts/layers/tortoise/autoregressive.py" in outside
    assert t["fix"]["commands"] == [f"{venv.python} -m pip install 'transformers<4.50'",
                                    f"{venv.python} -m pip uninstall -y TTS",
                                    f"{venv.python} -m pip install coqui-tts"]


@pytest.mark.venv
def test_the_error_names_the_classes_that_were_found(cli, make_env, tmp_path):
    # transformers 4.50 with a model package of another name (no coqui TTS in the message's
    # class): the AttributeError quoted is the one its own class raises
    import subprocess
    import sys

    src = tmp_path / "src"
    (src / "mylm").mkdir(parents=True)
    (src / "mylm" / "__init__.py").write_text(
        "from transformers import GPT2PreTrainedModel\n\n\n"
        "class MyLM(GPT2PreTrainedModel):\n"
        "    def prepare_inputs_for_generation(self, input_ids, **kwargs):\n"
        "        return {'input_ids': input_ids}\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mylm"\nversion = "0.1.0"\n')
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    venv = make_env(envs_numeric.COMPAT_BROKEN)
    app = write_app(tmp_path / "app", "import mylm\n")  # the application uses the model
    r = cli("check", "--json", "--python", str(venv.python), "--only", "compat.transformers",
            "--project", str(app),
            env={"PYTHONPATH": str(target), "TTS_DOCTOR_CACHE": str(tmp_path / "cache")})
    t = r.finding("compat.transformers")
    assert t["status"] == "fail", t
    assert "MyLM (mylm 0.1.0)" in t["summary"]
    assert ("(AttributeError: 'GPT2InferenceModel' object has no attribute 'generate'; "
            "likewise 'MyLM')") in t["summary"]


@pytest.mark.venv
def test_one_release_either_side_of_the_break_is_ok(cli, make_env):
    venv = make_env(envs_numeric.COMPAT_OK)
    r = check(cli, venv, "--only", "compat")
    g = r.finding("compat.gradio")
    assert g["status"] == "ok" and "gradio_client 1.8.0 with pydantic 2.11.0" in g["summary"]
    t = r.finding("compat.transformers")
    assert t["status"] == "ok"
    assert "transformers 4.49.0" in t["summary"] and "would lose .generate()" in t["summary"]


def test_generation_mixin_detection_follows_bases_in_the_same_file():
    source = b"""
from transformers import GPT2PreTrainedModel, GenerationMixin

class Old(GPT2PreTrainedModel):
    def prepare_inputs_for_generation(self, ids, **kw):
        return {}

class Fixed(GPT2PreTrainedModel, GenerationMixin):
    def prepare_inputs_for_generation(self, ids, **kw):
        return {}

class Base(GPT2PreTrainedModel, GenerationMixin):
    pass

class ViaBase(Base):
    def prepare_inputs_for_generation(self, ids, **kw):
        return {}

class NotAModel:
    def prepare_inputs_for_generation(self, ids, **kw):
        return {}
"""
    assert compat.classes_without_generation_mixin(source) == [("Old", 4)]
