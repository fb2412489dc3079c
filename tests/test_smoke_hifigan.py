"""The built-in HiFi-GAN twin: published sizes, and real checkpoints with or without weight norm.

Parameter counts from ../shared/REFERENCE.md: 13.926 M / 0.926 M / 1.462 M without weight
norm; the paper's 13.92 M / 0.92 M / 1.46 M within 0.5 %.
"""

from __future__ import annotations

import pytest
import torch
from tts_doctor.smoke.engines import hifigan

PUBLISHED = {"v1": 13.926e6, "v2": 0.926e6, "v3": 1.462e6}


def test_v1_parameter_count_within_half_a_percent_of_the_paper():
    n = hifigan.parameter_count(hifigan.Generator(hifigan.CONFIGS["v1"]))
    assert abs(n - 13.92e6) / 13.92e6 < 0.005


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_parameter_counts_match_the_published_ones(name):
    cfg = hifigan.CONFIGS[name]
    n = hifigan.parameter_count(hifigan.Generator(cfg))
    assert round(n / 1e6, 3) == PUBLISHED[name] / 1e6  # REFERENCE.md, no weight norm
    assert n // 10_000 / 100 == cfg.published_params  # the paper truncates to two decimals
    assert cfg.hop == 256


def _reference_style(cfg, api: str) -> torch.nn.Module:
    """A generator with weight norm applied the way training leaves it."""
    gen = hifigan.Generator(cfg)
    gen.init_weights(3)
    wn = (torch.nn.utils.weight_norm if api == "old"
          else torch.nn.utils.parametrizations.weight_norm)
    for m in gen.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            wn(m)
    return gen


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
@pytest.mark.parametrize("api", ["old", "parametrizations", "none"])
def test_real_checkpoint_loads_with_or_without_weight_norm(tmp_path, api):
    cfg = hifigan.CONFIGS["v2"]
    if api == "none":
        src = hifigan.Generator(cfg)
        src.init_weights(3)
    else:
        src = _reference_style(cfg, api)
    path = tmp_path / "g_00000100"
    torch.save({"generator": src.state_dict()}, path)
    gen, info = hifigan.load_checkpoint(str(path), hifigan.CONFIGS["v1"])
    assert info["config"] == "v2" and info["requested"] == "v1"  # shapes decide
    assert info["weight_norm"] is (api != "none")
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        assert torch.allclose(gen(mel), src(mel), atol=1e-5)


def test_bare_state_dict_is_accepted(tmp_path):
    src = hifigan.Generator(hifigan.CONFIGS["v3"])
    torch.save(src.state_dict(), tmp_path / "bare.pt")
    _gen, info = hifigan.load_checkpoint(str(tmp_path / "bare.pt"), hifigan.CONFIGS["v3"])
    assert info["config"] == "v3"


@pytest.mark.parametrize("content, needle", [
    (b"this is not a checkpoint", "not a readable PyTorch checkpoint"),
    (None, "no 'generator' entry"),
    ("shapes", "does not match HiFi-GAN V1, V2 or V3"),
])
def test_unusable_checkpoints_say_why(tmp_path, content, needle):
    path = tmp_path / "ckpt"
    if content is None:
        torch.save({"model": {}, "optim": {}}, path)
    elif content == "shapes":
        sd = hifigan.Generator(hifigan.CONFIGS["v2"]).state_dict()
        sd["conv_pre.weight"] = torch.zeros(64, 80, 7)
        torch.save({"generator": sd}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(hifigan.CheckpointError, match=needle):
        hifigan.load_checkpoint(str(path), hifigan.CONFIGS["v1"])


def test_chunked_vocoding_keeps_length_and_matches_away_from_seams():
    gen = hifigan.Generator(hifigan.CONFIGS["v2"])
    gen.init_weights(0)
    mel = torch.randn(1, 80, 150)
    with torch.no_grad():
        whole = gen(mel)
        parts = hifigan.vocode_chunked(gen, mel, 64, 8)
    assert parts.shape == whole.shape
    # inside a chunk, far from its edges, the receptive field sees the same input
    a, b = 20 * 256, 40 * 256
    assert torch.allclose(parts[..., a:b], whole[..., a:b], atol=1e-4)
