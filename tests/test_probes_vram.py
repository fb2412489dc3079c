"""vram.devices and vram.budget: NVML's view of GPU memory. No driver here: both skip (the real
state of this machine). GPU hosts are simulated with the fake `pynvml` (tests/fakes) in front
of the real one, through the real CLI: test names say `simulated_gpu`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tts_doctor.finding import Status
from tts_doctor.probes import vram

from tests.fakes import gpus
from tests.harness.blindfold import assert_judged_alike
from tests.harness.recipes import write_recipe

VARIABLES = ("CUDA_VISIBLE_DEVICES", "TTS_DOCTOR_FAKE_NVML")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def recipe(tmp_path: Path, requires: str) -> str:
    return write_recipe(tmp_path / "recipe.toml", requires, name="vram-test")


def test_no_driver_both_probes_skip(cli, tmp_path):
    r = cli("check", "--json", "--only", "vram")
    assert r.returncode == 0, r
    assert [f["id"] for f in r.json["findings"]] == ["vram.devices"]  # no recipe: no budget
    f = r.finding("vram.devices")
    assert f["status"] == "skip" and f["summary"].startswith("no NVIDIA driver to ask (NVML")
    r = cli("check", "--json", "--only", "vram", "--recipe",
            recipe(tmp_path, 'gpu = "optional"\nvram_gib = 12'))
    assert r.finding("vram.budget")["status"] == "skip"
    assert "needs 12 GiB" in r.finding("vram.budget")["summary"]
    r = cli("check", "--json", "--only", "vram", "--recipe",
            recipe(tmp_path, 'gpu = "required"\nvram_gib = 12'))
    assert r.returncode == 1, r
    assert r.finding("vram.budget")["status"] == "fail"


SHARED = gpus.host(
    gpus.gpu("NVIDIA L4", (8, 9), 22.5, 15.0, "GPU-l4-0000",
             processes=((31337, 12.0, "tritonserver"), (4242, 2.5, "python3"))),
    gpus.gpu("NVIDIA L4", (8, 9), 22.5, 0.3, "GPU-l4-1111"))


def test_devices_memory_and_other_processes_simulated_gpu(cli, tmp_path):
    r = cli("check", "--json", "--only", "vram", env=gpus.nvml_env(tmp_path, SHARED))
    assert r.returncode == 0, r  # a warning
    f = r.finding("vram.devices")
    assert f["status"] == "warn"
    assert f["summary"].startswith("GPU 0 NVIDIA L4: 2 other process(es) hold 14.5 GiB (pid "
                                   "31337 tritonserver 12.0 GiB, pid 4242 python3 2.5 GiB)")
    assert "GPU 0 NVIDIA L4: 7.5 GiB free of 22.5 GiB; GPU 1 NVIDIA L4: 22.2 GiB free" \
        in f["summary"]
    devices = f["details"]["devices"]
    assert [d["total"] for d in devices] == [int(22.5 * gpus.GIB)] * 2
    assert devices[0]["free"] == int(22.5 * gpus.GIB) - int(15.0 * gpus.GIB)
    assert [p["pid"] for p in devices[0]["processes"]] == [31337, 4242]
    assert devices[1]["processes"] == [] and devices[1]["mig_mode"] is None
    # the other GPU is free: the fix points at it
    assert "export CUDA_VISIBLE_DEVICES=1" in f["fix"]["commands"]
    assert f["fix"]["commands"][0].startswith("nvidia-smi --query-compute-apps")
    # whether this runs in a container decides the note on host PIDs, never the verdict
    assert ("process_list_note" in f["details"]) == f["details"]["container"]
    # the snapshot carries the GPU names
    assert r.json["environment"]["gpus"] == ["NVIDIA L4", "NVIDIA L4"]


MIG = gpus.host(gpus.gpu(
    "NVIDIA A100-SXM4-80GB", (8, 0), 80.0, 10.0, "GPU-a100-0000",
    mig={"current": 1, "pending": 1, "max": 7, "instances": [
        gpus.mig_instance(0, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", "MIG-aaaa-0000", 39.5),
        gpus.mig_instance(1, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", "MIG-bbbb-1111", 39.5, 30.0,
                          processes=((777, 30.0, "vllm"),))]}))


def test_mig_instances_are_measured_through_their_own_handles_simulated_gpu(cli, tmp_path):
    r = cli("check", "--json", "--only", "vram", env=gpus.nvml_env(tmp_path, MIG))
    f = r.finding("vram.devices")
    assert f["status"] == "warn"  # vllm holds 30 GiB of the second instance
    device = f["details"]["devices"][0]
    assert device["mig_mode"]["enabled"] is True
    inst = device["mig"]
    assert [i["uuid"] for i in inst] == ["MIG-aaaa-0000", "MIG-bbbb-1111"]
    assert [i["gpu_instance"] for i in inst] == [1, 2]
    assert inst[1]["free"] == int(39.5 * gpus.GIB) - int(30.0 * gpus.GIB)
    assert inst[1]["processes"][0]["name"] == "vllm"
    assert "MIG on, 2 instance(s)" in f["summary"]
    assert "export CUDA_VISIBLE_DEVICES=MIG-aaaa-0000" not in f["fix"]["commands"]  # one GPU


def test_mig_enabled_without_instances_and_pending_change_warn_simulated_gpu(cli, tmp_path):
    empty = gpus.host(gpus.gpu("NVIDIA H100 80GB HBM3", (9, 0), 79.6, 0.0, "GPU-h100-0",
                               mig={"current": 1, "pending": 0, "max": 7, "instances": []}))
    f = cli("check", "--json", "--only", "vram.devices",
            env=gpus.nvml_env(tmp_path, empty)).finding("vram.devices")
    assert f["status"] == "warn"
    assert "has MIG enabled but no GPU instance: CUDA sees no device on it" in f["summary"]
    assert "a MIG mode change is pending" in f["summary"]
    assert any(c.startswith("nvidia-smi mig -i 0 -cgi") for c in f["fix"]["commands"])
    assert any(c.startswith("nvidia-smi -i 0 -r") for c in f["fix"]["commands"])


def test_healthy_gpu_is_ok_simulated_gpu(cli, tmp_path):
    f = cli("check", "--json", "--only", "vram.devices",
            env=gpus.nvml_env(tmp_path, gpus.host(gpus.H100))).finding("vram.devices")
    assert f["status"] == "ok"
    assert f["summary"].startswith("GPU 0 NVIDIA H100 80GB HBM3: 79.1 GiB free of 79.6 GiB")


def test_budget_exceeded_by_other_processes_simulated_gpu(cli, tmp_path):
    env = gpus.nvml_env(tmp_path, SHARED)
    r = cli("check", "--json", "--only", "vram.budget", "--recipe",
            recipe(tmp_path, 'gpu = "required"\nvram_gib = 12'), env=env)
    f = r.finding("vram.budget")
    assert f["status"] == "ok"  # GPU 1 is free
    assert f["summary"].startswith("GPU 1 NVIDIA L4 has 22.2 GiB free of 22.5 GiB")
    env["CUDA_VISIBLE_DEVICES"] = "0"
    r = cli("check", "--json", "--only", "vram.budget", "--recipe",
            recipe(tmp_path, 'gpu = "required"\nvram_gib = 12'), env=env)
    assert r.returncode == 1, r
    f = r.finding("vram.budget")
    assert f["status"] == "fail"
    assert f["summary"].startswith("the recipe needs 12 GiB of GPU memory, but the most free "
                                   "is 7.5 GiB on GPU 0 NVIDIA L4: other processes hold")
    assert f["details"]["pools"] == [{"label": "GPU 0 NVIDIA L4", "free": int(7.5 * gpus.GIB),
                                      "total": int(22.5 * gpus.GIB)}]


def test_budget_larger_than_any_gpu_fails_with_the_smoke_command_simulated_gpu(cli, tmp_path):
    r = cli("check", "--json", "--only", "vram.budget", "--recipe", "indextts2",
            env=gpus.nvml_env(tmp_path, gpus.host(gpus.gpu("NVIDIA T4", (7, 5), 15.0))))
    f = r.finding("vram.budget")  # IndexTTS-2's recipe: vram_gib = 12 -> fits a 15 GiB T4
    assert f["status"] == "ok"
    r = cli("check", "--json", "--only", "vram.budget", "--recipe",
            recipe(tmp_path, "vram_gib = 48"), env=gpus.nvml_env(tmp_path, MIG))
    f = r.finding("vram.budget")
    # MIG: a process gets one instance (39.5 GiB), not the whole 80 GiB GPU
    assert f["status"] == "fail"
    assert "the largest visible GPU memory is 39.5 GiB (GPU 0 MIG NVIDIA A100-SXM4-80GB MIG " \
           "3g.40gb)" in f["summary"]
    assert f["fix"]["commands"] == ["tts-doctor smoke --recipe vram-test --vram-budget 39.5GiB"]


def test_budget_through_a_mig_uuid_simulated_gpu(cli, tmp_path):
    env = {**gpus.nvml_env(tmp_path, MIG), "CUDA_VISIBLE_DEVICES": "MIG-bbbb"}
    r = cli("check", "--json", "--only", "vram.budget", "--recipe",
            recipe(tmp_path, "vram_gib = 12"), env=env)
    f = r.finding("vram.budget")
    assert f["status"] == "fail"  # the chosen instance has 9.5 GiB free
    assert [p["label"] for p in f["details"]["pools"]] == [
        "MIG NVIDIA A100-SXM4-80GB MIG 3g.40gb (MIG-bbbb-1111)"]


def test_judge_budget_with_nothing_visible_simulated_gpu():
    res = vram.judge_budget([gpus.H100 | {"index": 0}], 8, "")
    assert res.status is Status.FAIL and "no GPU memory is visible" in res.summary


def test_recorded_facts_judge_to_the_live_findings_simulated_gpu(cli, tmp_path):
    """NVML's answers kept by --save-facts are judged again with --facts, on a machine state
    without the (fake) GPUs and with another CUDA_VISIBLE_DEVICES: the same findings."""
    import json

    facts = tmp_path / "facts.json"
    env = {**gpus.nvml_env(tmp_path, SHARED), "CUDA_VISIBLE_DEVICES": "0"}
    live = cli("check", "--json", "--only", "vram.*", "--save-facts", str(facts), "--recipe",
               recipe(tmp_path, 'gpu = "required"\nvram_gib = 12'), env=env)
    assert live.returncode == 1, live
    assert [(f["id"], f["status"]) for f in live.json["findings"]] == [
        ("vram.devices", "warn"), ("vram.budget", "fail")]
    saved = json.loads(facts.read_text())
    assert saved["probes"]["vram.devices"]["facts"]["devices"][0]["name"] == "NVIDIA L4"
    judged = cli("check", "--json", "--only", "vram.*", "--facts", str(facts),
                 env={"CUDA_VISIBLE_DEVICES": "1"})
    assert judged.returncode == live.returncode, judged
    assert_judged_alike(live.json["findings"], judged.json["findings"], facts, tmp_path)
