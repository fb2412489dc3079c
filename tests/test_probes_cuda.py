"""cuda.* on real environments and on simulated GPUs.

This machine has no GPU and no NVIDIA driver (NVML's library is absent): every cuda probe must
skip, on the dev venv and on a venv holding only torch. GPU verdicts go through the real CLI
with a fake `pynvml` first on PYTHONPATH (tests/fakes/pynvml.py: the driver and devices come
from a JSON file), or, for what torch itself says about CUDA (its arch list, the device's
capability, the init error), through the pure verdict functions with simulated facts. Such
tests say `simulated_gpu` in their name.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from tts_doctor.finding import Status
from tts_doctor.probes import cuda
from tts_doctor.probes.cuda import Driver, TorchCuda

from tests.fakes import gpus
from tests.harness import envs
from tests.harness.blindfold import assert_judged_alike
from tests.harness.recipes import write_recipe
from tests.harness.venvs import EnvSpec

CUDA_IDS = ["cuda.build", "cuda.driver", "cuda.arch", "cuda.kernel", "cuda.cudnn", "cuda.env"]
VARIABLES = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTORCH_CUDA_ALLOC_CONF",
             "PYTORCH_ALLOC_CONF", "PYTORCH_HIP_ALLOC_CONF", "TTS_DOCTOR_FAKE_NVML", "CUDA_HOME",
             "CUDA_PATH", "CXX")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def recipe(tmp_path: Path, requires: str) -> str:
    return write_recipe(tmp_path / "recipe.toml", requires, name="gpu-test")


def _split(collect, judge, ctx=None):
    """A split probe run here, its facts through JSON as the runner carries them."""
    from tts_doctor.registry import Context

    ctx = ctx or Context()
    return judge(ctx, json.loads(json.dumps(collect(ctx))))


# --- no driver: the real state of this machine ----------------------------------------------

def test_no_driver_every_cuda_probe_skips_on_the_dev_venv(cli):
    r = cli("check", "--json", "--only", "cuda")
    assert r.returncode == 0, r
    found = {f["id"]: f for f in r.json["findings"]}
    assert sorted(found) == sorted(CUDA_IDS)  # cuda.toolchain: no recipe, no finding
    for f in found.values():
        assert f["status"] == "skip", f
        assert "no NVIDIA driver" in f["summary"] or "CPU build" in f["summary"], f
    assert "NVML" in found["cuda.driver"]["summary"]
    assert found["cuda.build"]["details"]["torch"]["build"] == "CPU"
    assert found["cuda.build"]["details"]["driver"]["present"] is False


def test_a_recipe_that_needs_a_gpu_fails_cuda_build_without_a_driver(cli, tmp_path):
    r = cli("check", "--json", "--only", "cuda", "--recipe", recipe(tmp_path, "gpu = true"))
    assert r.returncode == 1, r
    f = r.finding("cuda.build")
    assert f["status"] == "fail"
    assert f["summary"].startswith("the recipe needs an NVIDIA GPU, but this machine has none")
    assert "--gpus all" in f["fix"]["description"] and f["fix"]["commands"] == ["nvidia-smi"]
    # the other probes still skip: one failure names the problem
    assert all(r.finding(i)["status"] == "skip" for i in CUDA_IDS if i != "cuda.build")


def test_a_recipe_without_a_gpu_drops_the_cuda_findings(cli):
    r = cli("check", "--json", "--only", "cuda,vram", "--recipe", "piper")  # gpu = false
    assert r.returncode == 0, r
    assert r.json["findings"] == []


@pytest.mark.venv
@pytest.mark.slow
def test_torch_only_venv_skips_every_cuda_probe(cli, make_env):
    venv = make_env(envs.TORCH_ONLY)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "cuda,vram")
    assert r.returncode == 0, r
    assert {f["id"]: f["status"] for f in r.json["findings"]} == {
        **{i: "skip" for i in CUDA_IDS}, "vram.devices": "skip"}
    b = r.finding("cuda.build")
    assert b["details"]["torch"]["version"] == "2.13.0+cpu"
    assert "no NVIDIA driver" in b["summary"]


# --- C1: CPU torch on a GPU host, through the CLI with a fake NVML ---------------------------

def test_cpu_torch_on_a_driver_host_fails_with_the_cuda_wheel_command_simulated_gpu(cli,
                                                                                  tmp_path):
    env = gpus.nvml_env(tmp_path, gpus.host(gpus.H100))
    r = cli("check", "--json", "--only", "cuda", env=env)
    assert r.returncode == 1, r
    f = r.finding("cuda.build")
    assert f["status"] == "fail"
    assert f["summary"].startswith("torch 2.13.0+cpu is a CPU-only build, but this machine has "
                                   "NVIDIA driver 570.86.10, CUDA 12.8 and 1 GPU (NVIDIA H100")
    assert "Torch not compiled with CUDA enabled" in f["summary"]
    python = f["details"]["torch"]["location"].split("/lib/")[0] + "/bin/python"
    assert f["fix"]["commands"] == [
        f"{python} -m pip uninstall -y torch",
        f"{python} -m pip install --index-url https://download.pytorch.org/whl/cu128 "
        "torch==2.13.0"]
    assert f["details"]["index"] == "https://download.pytorch.org/whl/cu128"
    # the driver is reported (and lands in the report's environment snapshot)
    d = r.finding("cuda.driver")
    assert d["status"] == "ok"
    assert d["details"]["driver_version"] == "570.86.10" and d["details"]["driver_cuda"] == "12.8"
    assert r.json["environment"]["driver"] == "570.86.10"
    # torch is a CPU build: nothing to launch, no arch to compare
    for pid in ("cuda.arch", "cuda.kernel", "cuda.cudnn"):
        assert r.finding(pid)["status"] == "skip"
    assert r.finding("cuda.env")["status"] == "ok"


def test_an_older_driver_gets_the_newest_wheel_it_runs_simulated_gpu(cli, tmp_path):
    env = gpus.nvml_env(tmp_path, gpus.host(gpus.H100, driver="560.35.03", cuda=12060))
    r = cli("check", "--json", "--only", "cuda.build", env=env)
    f = r.finding("cuda.build")
    assert f["status"] == "fail"
    assert f["fix"]["commands"][1].endswith("--index-url https://download.pytorch.org/whl/"
                                            "cu126 torch==2.13.0")


def test_driver_not_loaded_is_a_skip_simulated_gpu(cli, tmp_path):
    env = gpus.nvml_env(tmp_path, {"init_error": "DriverNotLoaded"})
    r = cli("check", "--json", "--only", "cuda", env=env)
    assert r.returncode == 0, r
    assert "Driver Not Loaded" in r.finding("cuda.build")["summary"]
    assert {f["status"] for f in r.json["findings"]} == {"skip"}


def test_c1_verdict_keeps_torchaudio_with_torch_simulated_gpu():
    driver = Driver(True, "580.65.06", "13.0", "nvml", ({"index": 0, "name": "RTX 5090"},))
    res = cuda.judge_build(TorchCuda("2.9.0+cpu"), driver, None)
    assert res.status is Status.FAIL
    assert res.fix.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu130 "
                                        "torch==2.9.0")
    # a known release line: no "assumed" note
    assert "assumed" not in res.fix.description
    # a CUDA build on the same host is fine
    ok = cuda.judge_build(TorchCuda("2.9.0+cu130", cuda="13.0"), driver, "required")
    assert ok.status is Status.OK and "CUDA 13.0 build" in ok.summary
    # ROCm builds are not this family's business
    assert cuda.judge_build(TorchCuda("2.9.0+rocm6.4", hip="6.4"), driver, None).status \
        is Status.SKIP


# --- C2: driver too old (torch's side simulated) ------------------------------------------

OLD_DRIVER = Driver(True, "550.54.14", "12.4", "nvml", ({"index": 0, "name": "NVIDIA A10",
                                                         "capability": [8, 6]},))


def test_driver_too_old_for_a_cuda_13_wheel_fails_simulated_gpu():
    torch = TorchCuda("2.9.0+cu130", cuda="13.0", arch_list=("sm_80", "sm_90"),
                      available=False,
                      init_error="RuntimeError: The NVIDIA driver on your system is too old "
                                 "(found version 12040).")
    res = cuda.judge_driver(torch, OLD_DRIVER)
    assert res.status is Status.FAIL
    assert "The NVIDIA driver on your system is too old" in res.summary
    assert "built for CUDA 13.0" in res.summary and "supports CUDA up to 12.4" in res.summary
    assert res.fix.description.startswith("Update the NVIDIA driver to 580.65.06 or newer")
    assert res.details["driver_version"] == "550.54.14" and res.details["driver_cuda"] == "12.4"
    # torch 2.9's builds: cu126, cu128, cu130; none runs natively on a 12.4 driver
    assert res.fix.commands == ()


def test_driver_too_old_by_numbers_alone_fails_and_offers_a_wheel_simulated_gpu():
    driver = Driver(True, "535.104.05", "12.2", "nvml", ())
    res = cuda.judge_driver(TorchCuda("2.4.1+cu124", cuda="12.4"), driver)
    # same CUDA major: minor-version compatibility, a warning
    assert res.status is Status.WARN and "minor-version compatibility" in res.summary
    assert res.fix.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu121 "
                                        "torch==2.4.1")
    old = Driver(True, "470.199.02", "11.4", "nvml", ())
    res = cuda.judge_driver(TorchCuda("2.4.1+cu124", cuda="12.4"), old)
    assert res.status is Status.FAIL and "too old" in res.summary
    assert "525.60.13" not in res.fix.description  # the minimum for 12.4 is named, not 12.0
    assert "550.54.14" in res.fix.description
    fine = cuda.judge_driver(TorchCuda("2.4.1+cu121", cuda="12.1"), driver)
    assert fine.status is Status.OK


# --- C3: architecture --------------------------------------------------------------------

ARCH_26 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
ARCH_128 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
BLACKWELL = Driver(True, "570.124.06", "12.8", "nvml",
                   ({"index": 0, "name": "NVIDIA GeForce RTX 5090", "capability": [12, 0]},))


def test_rtx_5090_on_a_wheel_without_sm_120_fails_simulated_gpu():
    torch = TorchCuda("2.6.0+cu124", cuda="12.4", arch_list=ARCH_26, available=True,
                      devices=({"index": 0, "name": "NVIDIA GeForce RTX 5090",
                                "capability": [12, 0]},))
    res = cuda.judge_arch(torch, BLACKWELL)
    assert res.status is Status.FAIL
    assert "GPU 0 NVIDIA GeForce RTX 5090 (sm_120)" in res.summary
    assert "no kernel image is available for execution on the device" in res.summary
    assert "sm_120 needs a build made with CUDA 12.8 or newer (cu128)" in res.fix.description
    # torch 2.6 has no cu128 build: the first line that does is 2.7
    assert res.fix.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu128 "
                                        "'torch>=2.7'")
    assert res.details["devices"][0]["runs"] == "none"


def test_arch_from_nvml_when_torch_cannot_start_cuda_simulated_gpu():
    torch = TorchCuda("2.6.0+cu124", cuda="12.4", arch_list=ARCH_26, available=False,
                      init_error="RuntimeError: CUDA error: no kernel image is available")
    res = cuda.judge_arch(torch, BLACKWELL)
    assert res.status is Status.FAIL and "sm_120" in res.summary


def test_arch_present_sass_compatible_or_ptx_is_ok_simulated_gpu():
    torch = TorchCuda("2.9.0+cu128", cuda="12.8", arch_list=ARCH_128, available=True,
                      devices=({"index": 0, "name": "RTX 5090", "capability": [12, 0]},
                               {"index": 1, "name": "RTX 3090", "capability": [8, 6]}))
    res = cuda.judge_arch(torch, BLACKWELL)
    assert res.status is Status.OK and "ships kernels for every GPU" in res.summary
    assert cuda.arch_support((8, 9), ARCH_128) == ("sass", "sm_86")  # binary compatible
    assert cuda.arch_support((12, 1), ("sm_90", "compute_90")) == ("ptx", "compute_90")
    assert cuda.arch_support((9, 0), ("sm_90a",)) == ("sass", "sm_90a")
    assert cuda.arch_support((10, 0), ("sm_90a",)) == ("none", "")
    ptx = TorchCuda("2.4.0+cu124", cuda="12.4", arch_list=("sm_80", "sm_90", "compute_90"),
                    available=True,
                    devices=({"index": 0, "name": "RTX 5090", "capability": [12, 0]},))
    res = cuda.judge_arch(ptx, BLACKWELL)
    assert res.status is Status.OK and "PTX compiled at first use" in res.summary


def test_a_gpu_older_than_the_wheel_gets_an_older_cuda_build_simulated_gpu():
    torch = TorchCuda("2.9.0+cu130", cuda="13.0", arch_list=("sm_75", "sm_80", "sm_90"),
                      available=True,
                      devices=({"index": 0, "name": "Tesla P100", "capability": [6, 0]},))
    res = cuda.judge_arch(torch, Driver(True, "580.65.06", "13.0", "nvml", ()))
    assert res.status is Status.FAIL and "(sm_60)" in res.summary
    assert res.fix.commands[1].endswith("/whl/cu126 torch==2.9.0")


# --- errors a kernel raises ----------------------------------------------------------------

@pytest.mark.parametrize("message,family", [
    ("CUDA error: no kernel image is available for execution on the device", "C3"),
    ("The NVIDIA driver on your system is too old (found version 11040)", "C2"),
    ("CUDA out of memory. Tried to allocate 2.00 GiB", "C4"),
    ("CUDA error: CUDA-capable device(s) is/are busy or unavailable", ""),
    ("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED", "C6"),
])
def test_cuda_errors_are_classified_simulated_gpu(message, family):
    got, meaning = cuda.classify(message)
    assert got == family and meaning


# --- cuda.env ----------------------------------------------------------------------------

TWO = gpus.host(gpus.H100, {**gpus.H100, "uuid": "GPU-99887766-second"})


@pytest.mark.parametrize("value", ["", "-1", "2", "GPU-nope"])
def test_cuda_visible_devices_that_hides_every_gpu_warns_simulated_gpu(cli, tmp_path, value):
    env = {**gpus.nvml_env(tmp_path, TWO), "CUDA_VISIBLE_DEVICES": value}
    r = cli("check", "--json", "--only", "cuda.env", env=env)
    assert r.returncode == 0, r  # a warning
    f = r.finding("cuda.env")
    assert f["status"] == "warn"
    assert f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU" in f["summary"]
    assert f["fix"]["commands"][0] == "export CUDA_VISIBLE_DEVICES=0,1"
    assert f["details"]["visible"] == []


def test_cuda_visible_devices_stops_at_the_first_bad_entry_simulated_gpu(cli, tmp_path):
    env = {**gpus.nvml_env(tmp_path, TWO), "CUDA_VISIBLE_DEVICES": "1,7,0"}
    f = cli("check", "--json", "--only", "cuda.env", env=env).finding("cuda.env")
    assert f["status"] == "ok"
    assert [d["index"] for d in f["details"]["visible"]] == [1]
    assert "PCI_BUS_ID" in f["details"]["order_note"]
    env["CUDA_VISIBLE_DEVICES"] = "GPU-9988"
    f = cli("check", "--json", "--only", "cuda.env", env=env).finding("cuda.env")
    assert f["status"] == "ok" and f["details"]["visible"][0]["uuid"] == "GPU-99887766-second"


def test_allocator_settings_unknown_key_and_bad_values_warn(cli):
    r = cli("check", "--json", "--only", "cuda.env",
            env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segment:True,max_split_size_mb:512"})
    f = r.finding("cuda.env")
    assert f["status"] == "warn"
    assert "unknown key 'expandable_segment' (did you mean expandable_segments?)" in f["summary"]
    assert f["fix"]["commands"] == [
        "export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True,max_split_size_mb:512"]
    r = cli("check", "--json", "--only", "cuda.env",
            env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:true,max_split_size_mb:10"})
    f = r.finding("cuda.env")
    assert f["status"] == "warn"
    assert "expandable_segments must be True or False (case matters)" in f["summary"]
    assert "max_split_size_mb must be at least 20" in f["summary"]
    r = cli("check", "--json", "--only", "cuda.env",
            env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,"
                                            "garbage_collection_threshold:0.6"})
    f = r.finding("cuda.env")
    assert f["status"] == "ok", f  # valid settings on a host without a driver: reported
    assert f["details"]["PYTORCH_CUDA_ALLOC_CONF"] == ("expandable_segments:True,"
                                                       "garbage_collection_threshold:0.6")


def test_allocator_conf_parser_keeps_bracketed_lists():
    pairs, problems = cuda.parse_alloc_conf("roundup_power2_divisions:[256:1,512:2],backend:"
                                            "cudaMallocAsync,oops")
    assert pairs == [("roundup_power2_divisions", "[256:1,512:2]"), ("backend", "cudaMallocAsync")]
    assert problems == ["'oops' has no ':' (expected key:value)"]


def test_driver_facts_helpers():
    assert cuda.parse_proc_version(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC "
        "2024\nGCC version:  gcc version 12.3.0") == "550.54.14"
    assert cuda.parse_proc_version(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.10  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)") == "570.86.10"
    assert cuda.cuda_for_driver("550.54.14") == "12.4"
    assert cuda.cuda_for_driver("535.183.01") == "12.2"
    assert cuda.cuda_from_int(12080) == "12.8" and cuda.cuda_from_int(13000) == "13.0"
    assert cuda.driver_for_cuda("12.8") == "570.26"


# --- cuda.toolchain (O6) -------------------------------------------------------------------

TOOLCHAIN_REQUIRED = 'cuda-toolchain = "required"'


def test_toolchain_only_when_a_recipe_needs_it(cli):
    r = cli("check", "--json", "--only", "cuda.toolchain")
    assert r.returncode == 0 and r.json["findings"] == []


def test_missing_toolchain_fails_when_the_recipe_requires_it(cli, tmp_path):
    empty = tmp_path / "empty"
    (empty / "bin").mkdir(parents=True)
    env = {"PATH": str(empty / "bin"), "CUDA_HOME": str(empty)}
    r = cli("check", "--json", "--only", "cuda.toolchain", "--recipe",
            recipe(tmp_path, TOOLCHAIN_REQUIRED), env=env)
    assert r.returncode == 1, r
    f = r.finding("cuda.toolchain")
    assert f["status"] == "fail"
    assert f["summary"].startswith("the recipe needs a CUDA toolchain: no working nvcc")
    assert f"no nvcc at {empty}/bin/nvcc" in f["summary"]
    assert f["details"]["cuda_home_from"] == "CUDA_HOME"
    commands = f["fix"]["commands"]
    assert commands[0].startswith("apt-get install -y cuda-nvcc-")
    assert any(c.endswith("-m pip install ninja") for c in commands)
    assert "apt-get install -y g++" in commands
    # the optional kernel of IndexTTS-2's recipe: a warning, not a failure
    r = cli("check", "--json", "--only", "cuda.toolchain", "--recipe", "indextts2", env=env)
    assert r.finding("cuda.toolchain")["status"] == "warn"
    assert "falls back to PyTorch" in r.finding("cuda.toolchain")["summary"]


@pytest.mark.skipif(shutil.which("nvcc") is None or shutil.which("ninja") is None,
                    reason="no nvcc and ninja on this machine's PATH")
def test_the_real_toolchain_of_this_machine(cli, tmp_path):
    nvcc = shutil.which("nvcc")
    home = os.path.dirname(os.path.dirname(nvcc))
    r = cli("check", "--json", "--only", "cuda.toolchain", "--recipe",
            recipe(tmp_path, TOOLCHAIN_REQUIRED))
    f = r.finding("cuda.toolchain")
    assert f["details"]["cuda_home"] == home and f["details"]["nvcc_cuda"]
    if os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
        assert f["status"] == "ok", f
    else:
        # torch would take CUDA_HOME from nvcc's folder and find no headers there (this
        # machine: /usr/local/bin/nvcc is a wrapper script around /usr/local/cuda-13.0)
        assert f["status"] == "fail" and "cuda_runtime.h does not exist" in f["summary"]
        export = next(c for c in f["fix"]["commands"] if c.startswith("export CUDA_HOME="))
        fixed = export.split("=", 1)[1]
        assert os.path.exists(os.path.join(fixed, "include", "cuda_runtime.h"))
        r = cli("check", "--json", "--only", "cuda.toolchain", "--recipe",
                recipe(tmp_path, TOOLCHAIN_REQUIRED), env={"CUDA_HOME": fixed})
        f = r.finding("cuda.toolchain")
        assert f["status"] == "ok", f
        assert f"CUDA_HOME {fixed}, from CUDA_HOME" in f["summary"]


NINJA = EnvSpec("ninja", steps=(("install", "ninja==1.13.0"),))


@pytest.mark.venv
def test_the_diagnosed_venvs_own_ninja_is_found(cli, make_env, tmp_path):
    """`pip install ninja` (the fix) puts ninja in the diagnosed venv's bin: with --python,
    that folder is searched, not the doctor's own."""
    venv = make_env(NINJA)
    empty = tmp_path / "empty"
    (empty / "bin").mkdir(parents=True)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "cuda.toolchain",
            "--recipe", recipe(tmp_path, TOOLCHAIN_REQUIRED),
            env={"PATH": str(empty / "bin"), "CUDA_HOME": str(empty)})
    f = r.finding("cuda.toolchain")
    assert f["status"] == "fail", f  # no nvcc, no compiler: but ninja is there
    assert f["details"]["ninja"] == str(venv.path / "bin" / "ninja")
    assert f["details"]["ninja_version"].startswith("1.13")
    assert "ninja:" not in f["summary"]


def test_nvcc_of_another_cuda_major_than_torch_fails_simulated_gpu(tmp_path):
    """A real (tiny) nvcc of CUDA 11.8 with its header; torch's CUDA 12.8 is simulated (the
    dev venv's torch is a CPU build)."""
    home = tmp_path / "cuda-11.8"
    (home / "bin").mkdir(parents=True)
    (home / "include").mkdir()
    (home / "include" / "cuda_runtime.h").write_text("/* header */\n")
    nvcc = home / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 11.8, V11.8.89'\n")
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IEXEC)
    facts = cuda.toolchain_facts({"CUDA_HOME": str(home), "PATH": os.environ["PATH"]})
    assert facts["nvcc_cuda"] == "11.8" and facts["cuda_runtime_h"]
    assert facts["cuda_home_from"] == "CUDA_HOME"
    res = cuda.judge_toolchain({**facts, "torch_cuda": "12.8", "ninja_version": "1.11.1",
                                "cxx": "/usr/bin/c++"}, "required")
    assert res.status is Status.FAIL
    assert "nvcc is CUDA 11.8 but torch was built with CUDA 12.8" in res.summary
    assert res.fix.commands == ("export CUDA_HOME=/usr/local/cuda-12.8  # a CUDA 12.8 toolkit",)
    same = cuda.judge_toolchain({**facts, "torch_cuda": "11.8", "ninja_version": "1.11.1",
                                 "cxx": "/usr/bin/c++"}, "optional")
    assert same.status is Status.OK and same.summary.startswith("nvcc 11.8 (CUDA_HOME ")


# --- cuda.kernel and cuda.cudnn: the error paths, with a GPU simulated in front of the CPU
# torch of the dev venv (what torch raises is real: this build has no CUDA at all) ----------

@pytest.fixture
def simulated_cuda_torch(monkeypatch):
    import torch

    driver = Driver(True, "570.86.10", "12.8", "nvml",
                    ({"index": 0, "name": "NVIDIA H100", "capability": [9, 0]},))
    facts = TorchCuda(str(torch.__version__), cuda="12.8", arch_list=("sm_90",),
                      available=True,
                      devices=({"index": 0, "name": "NVIDIA H100", "capability": [9, 0]},),
                      location=os.path.dirname(torch.__file__))
    monkeypatch.setattr(cuda, "driver_facts", lambda: driver)
    monkeypatch.setattr(cuda, "torch_facts", lambda: facts)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    return facts


def test_kernel_failure_is_caught_and_reported_simulated_gpu(simulated_cuda_torch):
    res = _split(cuda.collect_kernel, cuda.kernel)
    assert res.status is Status.FAIL
    assert res.summary.startswith("GPU 0: the kernel failed: AssertionError: Torch not "
                                  "compiled with CUDA enabled")
    assert res.details["devices"][0]["error"].startswith("AssertionError")
    assert res.fix.commands == ("CUDA_LAUNCH_BLOCKING=1 tts-doctor check --only cuda -v",)


def test_kernel_when_cuda_does_not_initialise_simulated_gpu(monkeypatch):
    monkeypatch.setattr(cuda, "driver_facts", lambda: OLD_DRIVER)
    monkeypatch.setattr(cuda, "torch_facts", lambda: TorchCuda(
        "2.9.0+cu130", cuda="13.0", available=False,
        init_error="RuntimeError: The NVIDIA driver on your system is too old (found version "
                   "12040)."))
    res = _split(cuda.collect_kernel, cuda.kernel)
    assert res.status is Status.FAIL and "too old" in res.summary
    assert res.details["family"] == "C2"
    assert "(see cuda.driver)" in res.fix.description


def test_cudnn_missing_is_a_failure_with_the_pinned_wheel_simulated_gpu(simulated_cuda_torch):
    res = _split(cuda.collect_cudnn, cuda.cudnn)
    assert res.status is Status.FAIL
    assert res.summary == f"torch {simulated_cuda_torch.version} finds no cuDNN"
    assert res.fix.commands[-1].endswith(
        "--force-reinstall --index-url https://download.pytorch.org/whl/cu128 torch==2.13.0")
    assert cuda.cudnn_requirement([
        "filelock", 'nvidia-cudnn-cu12==9.10.2.21; platform_system == "Linux" and '
        'platform_machine == "x86_64"']) == "nvidia-cudnn-cu12==9.10.2.21"


@pytest.mark.venv
@pytest.mark.slow
def test_cpu_torch_venv_on_a_driver_host_simulated_gpu(cli, make_env, tmp_path):
    """The fake NVML reaches a diagnosed interpreter too (the runner links the doctor's pynvml
    into the worker's path): the fix names that venv's python."""
    venv = make_env(envs.TORCH_ONLY)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "cuda.build,vram",
            env=gpus.nvml_env(tmp_path, gpus.host(gpus.RTX_5090)))
    assert r.returncode == 1, r
    f = r.finding("cuda.build")
    assert f["status"] == "fail" and "NVIDIA GeForce RTX 5090" in f["summary"]
    assert f["fix"]["commands"] == [
        f"{venv.python} -m pip uninstall -y torch",
        f"{venv.python} -m pip install --index-url https://download.pytorch.org/whl/cu128 "
        "torch==2.13.0"]
    assert r.finding("vram.devices")["status"] == "ok"


def test_kernel_skips_when_cuda_visible_devices_hides_the_gpus_simulated_gpu(monkeypatch):
    monkeypatch.setattr(cuda, "driver_facts", lambda: OLD_DRIVER)
    monkeypatch.setattr(cuda, "torch_facts", lambda: TorchCuda(
        "2.9.0+cu126", cuda="12.6", available=False,
        init_error="RuntimeError: No CUDA GPUs are available"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    res = _split(cuda.collect_kernel, cuda.kernel)
    assert res.status is Status.SKIP and "hides every GPU (see cuda.env)" in res.summary
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    res = _split(cuda.collect_kernel, cuda.kernel)
    assert res.status is Status.FAIL and "No CUDA GPUs are available" in res.summary


# --- F5: which index still ships an architecture -----------------------------------------

ARCH_130 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_110", "sm_120", "compute_120")
DRIVER_130 = Driver(True, "580.65.06", "13.0", "nvml", ())


def _one_gpu(name, cap):
    return ({"index": 0, "name": name, "capability": list(cap)},)


def test_pascal_on_a_cu128_wheel_is_sent_to_cu126_simulated_gpu():
    torch = TorchCuda("2.13.0+cu128", cuda="12.8", arch_list=ARCH_128, available=True,
                      devices=_one_gpu("NVIDIA GeForce GTX 1080", (6, 1)))
    res = cuda.judge_arch(torch, DRIVER_130)
    assert res.status is Status.FAIL and "(sm_61)" in res.summary
    assert res.details["indexes"] == {"cu126": True, "cu128": False, "cu130": False}
    assert "cu126 ships sm_61 kernels; cu128, cu130 do not" in res.fix.description
    assert res.fix.commands[1].endswith("--index-url https://download.pytorch.org/whl/cu126 "
                                        "torch==2.13.0")


def test_volta_keeps_cu128_until_2_11_simulated_gpu():
    v100 = _one_gpu("Tesla V100-SXM2-32GB", (7, 0))
    # torch 2.9: cu128 still ships sm_70; the driver runs 13.0, so the newest that ships wins
    old = cuda.judge_arch(TorchCuda("2.9.0+cu130", cuda="13.0", arch_list=ARCH_130,
                                    available=True, devices=v100), DRIVER_130)
    assert old.status is Status.FAIL
    assert old.details["indexes"] == {"cu126": True, "cu128": True, "cu130": False}
    assert "/whl/cu128 torch==2.9.0" in old.fix.commands[1]
    # torch 2.11: cu128 dropped Volta, only cu126 has it
    new = cuda.judge_arch(TorchCuda("2.11.0+cu130", cuda="13.0", arch_list=ARCH_130,
                                    available=True, devices=v100), DRIVER_130)
    assert new.details["indexes"]["cu128"] is False
    assert "/whl/cu126 torch==2.11.0" in new.fix.commands[1]


def test_index_table_for_blackwell_and_turing_simulated_gpu():
    assert cuda.indexes_for_arch((12, 0), "2.9.0") == {"cu126": False, "cu128": True,
                                                       "cu130": True}
    assert cuda.indexes_for_arch((7, 5), "2.9.0") == {"cu126": True, "cu128": True,
                                                      "cu130": True}
    assert cuda.indexes_for_arch((5, 2), "2.13.0")["cu126"] is True  # sm_50 binary runs sm_52


# --- collect and judge: the same findings from recorded facts ------------------------------

def test_recorded_facts_judge_to_the_live_findings_simulated_gpu(cli, tmp_path):
    """Collected on a (fake-NVML) GPU host with allocator settings and a toolchain recipe,
    judged again from the file on a machine state without any of it: the same findings."""
    facts = tmp_path / "facts.json"
    env = {**gpus.nvml_env(tmp_path, TWO), "CUDA_VISIBLE_DEVICES": "1,0",
           "PYTORCH_CUDA_ALLOC_CONF": "expandable_segment:True"}
    live = cli("check", "--json", "--only", "cuda.*", "--save-facts", str(facts),
               "--recipe", recipe(tmp_path, TOOLCHAIN_REQUIRED), env=env)
    assert live.returncode == 1, live
    assert live.finding("cuda.build")["status"] == "fail"
    assert live.finding("cuda.env")["status"] == "warn"
    assert live.finding("cuda.toolchain")["status"] in ("ok", "fail")
    saved = json.loads(facts.read_text())
    for pid in [*CUDA_IDS, "cuda.toolchain"]:
        assert "facts" in saved["probes"][pid], pid  # collected, not replayed
    assert saved["probes"]["cuda.build"]["facts"]["driver"]["version"] == "570.86.10"
    judged = cli("check", "--json", "--only", "cuda.*", "--facts", str(facts),
                 env={"CUDA_VISIBLE_DEVICES": "-1"})
    assert judged.returncode == live.returncode, judged
    assert not any("replayed" in f["details"] for f in judged.json["findings"])
    assert_judged_alike(live.json["findings"], judged.json["findings"], facts, tmp_path)


def test_kernel_and_cudnn_facts_are_judged_simulated_gpu():
    """What a GPU would have answered, as collected facts (this machine has none)."""
    from tts_doctor.registry import Context

    base = {"driver": Driver(True, "570.86.10", "12.8", "nvml",
                             ({"index": 0, "name": "NVIDIA H100", "capability": [9, 0]},)
                             ).to_dict(),
            "torch": TorchCuda("2.13.0+cu128", cuda="12.8", arch_list=("sm_90",),
                               available=True).to_dict(),
            "torch_error": None, "torchaudio": None, "CUDA_VISIBLE_DEVICES": None}
    good = {"index": 0, "name": "NVIDIA H100", "ms": 3.5, "sum": float((1 << 16) ** 2),
            "sum_of": 1 << 16, "matmul_max_abs_err": 1e-4, "matmul_max_abs": 90.0}
    res = cuda.kernel(Context(), {**base, "kernels": [good]})
    assert res.status is Status.OK and "GPU 0 NVIDIA H100: kernel + matmul in 3.5 ms" in \
        res.summary
    res = cuda.kernel(Context(), {**base, "kernels": [{**good, "matmul_max_abs_err": 5.0}]})
    assert res.status is Status.FAIL and "matmul differs from the CPU by 5" in res.summary
    oom = {"index": 0, "error": "OutOfMemoryError: CUDA out of memory. Tried to allocate"}
    res = cuda.kernel(Context(), {**base, "kernels": [oom]})
    assert res.status is Status.FAIL and res.details["devices"][0]["family"] == "C4"
    cudnn = {**base, "torch_requires": ["nvidia-cudnn-cu12==9.10.2.21"], "cudnn_version": 91002,
             "cudnn_available": True, "cudnn_enabled": True}
    res = cuda.cudnn(Context(), {**cudnn, "conv1d_max_abs_err": 2e-6})
    assert res.status is Status.OK and "cuDNN 91002 runs conv1d" in res.summary
    res = cuda.cudnn(Context(), {**cudnn, "conv1d_error": "RuntimeError: CUDNN_STATUS_BAD"})
    assert res.status is Status.FAIL and res.details["requirement"] == \
        "nvidia-cudnn-cu12==9.10.2.21"
    assert res.fix.commands[0].endswith("pip install nvidia-cudnn-cu12==9.10.2.21")


def test_a_driver_read_from_proc_gets_its_cuda_from_the_table_when_judged():
    proc = Driver(True, "550.54.14", None, cuda.PROC_VERSION, (), "NVML unavailable")
    assert cuda.driver_of({"driver": proc.to_dict()}).cuda == "12.4"
    nvml = Driver(True, "550.54.14", "12.5", "nvml", ())
    assert cuda.driver_of({"driver": nvml.to_dict()}).cuda == "12.5"  # NVML's word stands
