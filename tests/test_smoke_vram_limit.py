"""--vram-limit emulates a smaller GPU; on a machine without CUDA it is a failed finding that
says so (the CUDA path itself is in tests/test_smoke_gpu.py, which needs a device)."""

from __future__ import annotations


def test_vram_limit_without_cuda_fails_with_the_reason(cli):
    r = cli("smoke", "--engine", "reference", "--set", "vocoder=hifigan-v2", "--text", "Hi.",
            "--device", "cpu", "--vram-limit", "1GiB", "--json")
    assert r.returncode == 1, r
    f = r.finding("smoke.vram-limit")
    assert f["status"] == "fail" and "needs a CUDA device" in f["summary"]


def test_vram_limit_size_is_validated(cli):
    r = cli("smoke", "--engine", "reference", "--text", "Hi.", "--vram-limit", "lots")
    assert r.returncode == 2 and "--vram-limit" in r.stderr
