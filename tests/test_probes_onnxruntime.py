"""onnxruntime.install and onnxruntime.providers (O2) on real environments: the dev .venv
(onnxruntime 1.32 CPU) is healthy; onnxruntime-gpu 1.22 is installed --no-deps because it is
280 MB and its requirements are not needed to import it (those tests are `slow`). No GPU here:
the GPU-host verdicts are judged on what a CPU host can see (the provider library's needed
libraries, and the session's silent fallback)."""

from __future__ import annotations

import pytest
from tts_doctor.probes import onnxruntime as ort_probes

from tests.harness import envs, envs_numeric
from tests.harness.recipes import write_recipe


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_healthy_dev_environment_runs_a_session(cli):
    r = cli("check", "--json", "--only", "onnxruntime")
    assert r.returncode == 0, r
    assert r.finding("onnxruntime.install")["status"] == "ok"
    f = r.finding("onnxruntime.providers")
    assert f["status"] == "ok", f
    assert "CPUExecutionProvider" in f["details"]["available"]
    assert f["details"]["session_providers"] == ["CPUExecutionProvider"]


def test_a_recipe_that_requires_cuda_needs_a_gpu_build(cli, tmp_path):
    # requires.cuda = "required" needs a GPU exactly as requires.gpu does (the cuda.* rule):
    # the dev venv's CPU build of ONNX Runtime then fails
    for requires in ('cuda = "required"', "gpu = true"):
        recipe = write_recipe(tmp_path / "cuda.toml", requires, name="cuda", engine="piper")
        r = cli("check", "--json", "--only", "onnxruntime.providers", "--recipe", recipe)
        assert r.returncode == 1, r
        f = r.finding("onnxruntime.providers")
        assert f["status"] == "fail", (requires, f)
        assert f["details"]["recipe_needs_gpu"] is True
        assert "is a CPU build and the recipe needs a GPU" in f["summary"]
    recipe = write_recipe(tmp_path / "cuda.toml", 'cuda = "optional"', name="cpu", engine="piper")
    r = cli("check", "--json", "--only", "onnxruntime.providers", "--recipe", recipe)
    assert r.finding("onnxruntime.providers")["status"] == "ok", r


def test_the_tiny_model_runs_in_this_onnxruntime():
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(ort_probes.identity_model(),
                                   providers=["CPUExecutionProvider"])
    x = np.arange(4, dtype=np.float32)
    assert session.run(None, {"x": x})[0].tolist() == x.tolist()


@pytest.mark.venv
def test_no_onnxruntime_is_a_skip(cli, make_env):
    r = check(cli, make_env(envs.BARE), "--only", "onnxruntime")
    assert r.returncode == 0, r
    assert {f["status"] for f in r.json["findings"]} == {"skip"}


@pytest.mark.venv
@pytest.mark.slow
def test_cpu_build_installed_over_the_gpu_build_fails_both_probes(cli, make_env):
    venv = make_env(envs_numeric.ORT_BOTH)
    r = check(cli, venv, "--only", "onnxruntime")
    assert r.returncode == 1, r
    f = r.finding("onnxruntime.install")
    assert f["status"] == "fail"
    assert "onnxruntime 1.22.0 and onnxruntime-gpu 1.22.0 are both installed" in f["summary"]
    # the CPU build went in last: its compiled module is the one on disk
    assert f["details"]["files_on_disk_from"] == "onnxruntime"
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip uninstall -y onnxruntime onnxruntime-gpu",
        f"{venv.python} -m pip install onnxruntime-gpu==1.22.0"]
    p = r.finding("onnxruntime.providers")
    assert p["status"] == "fail"
    assert "onnxruntime-gpu is installed but the CUDA provider is absent" in p["summary"]
    assert "CUDAExecutionProvider" not in p["details"]["available"]


@pytest.mark.venv
@pytest.mark.slow
def test_gpu_build_without_cuda_libraries_names_them(cli, make_env, tmp_path):
    venv = make_env(envs_numeric.ORT_GPU)
    r = check(cli, venv, "--only", "onnxruntime")
    assert r.returncode == 0, r  # a warning: no driver on this host
    assert r.finding("onnxruntime.install")["status"] == "ok"
    f = r.finding("onnxruntime.providers")
    assert f["status"] == "warn", f
    assert "CUDAExecutionProvider" in f["details"]["available"]
    assert {"libcublasLt.so.12", "libcudnn.so.9"} <= set(f["details"]["missing"])
    assert "libcublasLt.so.12" in f["summary"] and "no NVIDIA driver" in f["summary"]
    # the silent fallback, seen on a real session
    assert f["details"]["session_providers"] == ["CPUExecutionProvider"]
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip install 'onnxruntime-gpu[cuda,cudnn]==1.22.0'"]

    # a recipe that needs a GPU makes it a failure
    recipe = write_recipe(tmp_path / "gpu.toml", "gpu = true", name="gpu", engine="piper")
    r = check(cli, venv, "--only", "onnxruntime.providers", "--recipe", recipe)
    assert r.returncode == 1, r
    assert r.finding("onnxruntime.providers")["status"] == "fail"
