"""torch.weights-only (A6) on real environments: the dev venv (torch 2.13, nothing that loads
full pickles) and TTS_OLD (torch 2.13 with the abandoned coqui TTS 0.22.0). The probe's
verdict comes from a real torch.load of a checkpoint holding a custom class."""

from __future__ import annotations

import io

import pytest
from tts_doctor.finding import Status
from tts_doctor.probes import torch_load

from tests.harness import envs_torch

FORCE, FORCE_NO = torch_load.FORCE, torch_load.FORCE_NO


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (FORCE, FORCE_NO):
        monkeypatch.delenv(name, raising=False)


def test_torch_2_13_refuses_a_custom_global_by_default():
    import torch

    buf = io.BytesIO()
    torch.save({"config": torch_load.WeightsOnlyMarker()}, buf)
    buf.seek(0)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(buf)
    buf.seek(0)
    assert isinstance(torch.load(buf, weights_only=False)["config"],
                      torch_load.WeightsOnlyMarker)


def test_dev_venv_is_ok_and_reports_the_default(cli):
    r = cli("check", "--json", "--only", "torch.weights-only")
    assert r.returncode == 0, r
    f = r.finding("torch.weights-only")
    assert f["status"] == "ok"
    assert f["details"]["default_weights_only"] is True
    assert "Unsupported global" in f["details"]["behaviour"]["default"]["error"]
    assert f["details"]["breakers"] == {}
    r = cli("check", "--json", "--only", "torch.weights-only", env={FORCE_NO: "1"})
    f = r.finding("torch.weights-only")
    assert f["status"] == "ok" and f"{FORCE_NO}=1" in f["summary"]
    assert f["details"]["default_weights_only"] is False


@pytest.mark.venv
@pytest.mark.slow
def test_old_coqui_tts_with_torch_2_13_fails(cli, make_env):
    venv = make_env(envs_torch.TTS_OLD)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "torch.weights-only")
    assert r.returncode == 1, r
    f = r.finding("torch.weights-only")
    assert f["status"] == "fail"
    assert f["summary"].startswith("torch 2.13.0+cpu defaults to torch.load(weights_only=True) "
                                   "and TTS 0.22.0 loads checkpoints that pickle classes "
                                   "without passing weights_only")
    assert "Weights only load failed ... Unsupported global" in f["summary"]
    calls = {c["where"]: c for c in f["details"]["breakers"]["tts"]["calls"]}
    # the checkpoint loader XTTS goes through, forwarding **kwargs without weights_only
    assert calls["TTS/utils/io.py:51"] == {"where": "TTS/utils/io.py:51",
                                           "weights_only": None, "forwards_kwargs": True}
    py = str(venv.python)
    assert f["fix"]["commands"] == [
        f"{py} -m pip uninstall -y TTS", f"{py} -m pip install coqui-tts",
        f"export {FORCE_NO}=1  # only for checkpoints you trust: it allows any pickle"]
    # the override makes it load (a warning: every torch.load now accepts any pickle)
    r = cli("check", "--json", "--python", py, "--only", "torch.weights-only",
            env={FORCE_NO: "1"})
    f = r.finding("torch.weights-only")
    assert f["status"] == "warn" and f"only because {FORCE_NO} is set" in f["summary"]


def test_verdicts_for_older_torch_and_forced_loads():
    breakers = {"tts": {"distribution": "TTS", "version": "0.22.0",
                        "calls": [{"where": "TTS/utils/io.py:51", "weights_only": None,
                                   "forwards_kwargs": True}]}}
    loads = {"loads": True, "error": None}
    refused = {"loads": False, "error": "UnpicklingError: Weights only load failed"}
    old = torch_load.judge("2.5.1+cu124", {"default": loads, "explicit_false": loads}, {},
                           breakers)
    assert old.status is Status.WARN and "breaks from torch 2.6 on" in old.summary
    forced = torch_load.judge("2.13.0", {"default": refused, "explicit_false": refused},
                              {FORCE: "1"}, {})
    assert forced.status is Status.OK and f"{FORCE}=1" in forced.summary
