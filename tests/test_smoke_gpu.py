"""`tts-doctor smoke` on a real CUDA device: skipped where torch sees none (this machine).

On a GPU machine (docs/GPU.md): the reference engine in fp32 and fp16 with all three memory
numbers, and the out-of-memory ladder for real, with the process limited by
`tts-doctor smoke --vram-limit` (torch.cuda.set_per_process_memory_fraction).
"""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _cuda(), reason="no CUDA device (torch.cuda.is_available() "
                                "is False)")
TEXT = "The quick brown fox jumps over the lazy dog. " * 4


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_reference_on_cuda_reports_allocated_reserved_and_nvml(precision):
    r = run_cli("smoke", "--recipe", "reference-hifigan-v1", "--device", "cuda", "--precision",
                precision, "--text", TEXT, "--json")
    assert r.returncode in (0, 1), r
    sec = r.json["smoke"]
    voc = {s["name"]: s for s in sec["stages"]}["vocoder"]
    assert voc["torch_allocated_peak"] > 0
    assert voc["torch_reserved_peak"] >= voc["torch_allocated_peak"]
    assert voc["nvml_used_peak"] >= voc["torch_reserved_peak"]
    assert sec["engine"]["precision"] == precision


def test_ladder_for_real_under_a_vram_limit():
    """--vram-limit caps the child's CUDA allocator (set_per_process_memory_fraction)."""
    r = run_cli("smoke", "--recipe", "reference-hifigan-v1", "--device", "cuda", "--text",
                TEXT * 8, "--vram-limit", "300MiB", "--json", timeout=600)
    data = r.json
    assert {f["id"]: f["status"] for f in data["findings"]}["smoke.vram-limit"] == "ok"
    rungs = data["smoke"]["ladder"]["rungs"]
    assert rungs[0]["outcome"] == "oom", rungs
    assert "CUDA out of memory" in rungs[0]["detail"] or "Tried to allocate" in rungs[0]["detail"]
    assert data["smoke"]["ladder"]["worked"] is not None
