"""HiFi-GAN generator (Kong et al. 2020) with the published V1/V2/V3 configurations.

The module layout and parameter names follow the reference implementation
(jik876/hifi-gan `models.py`: `conv_pre`, `ups.N`, `resblocks.N.convs1/convs2` or
`resblocks.N.convs`, `conv_post`), so its generator checkpoints (`{"generator": state_dict}`,
with weight norm, as training leaves them, or without it) load into this module. Built
without weight norm, the generators have 13.926 M / 0.926 M / 1.462 M parameters
(../shared/REFERENCE.md).

`vocode_chunked()` vocodes a long mel in overlapping chunks and crossfades the pieces: the
maintainers' remedy for vocoder out-of-memory on long text (tacotron2#114).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1
N_MELS = 80
HOP = 256
SAMPLE_RATE = 22050


@dataclass(frozen=True)
class HiFiGANConfig:
    """One published generator configuration (the reference implementation's config_vN)."""

    name: str
    resblock: str
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    published_params: float  # millions, paper (Table 1)

    @property
    def hop(self) -> int:
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


CONFIGS: dict[str, HiFiGANConfig] = {
    "v1": HiFiGANConfig("v1", "1", (8, 8, 2, 2), (16, 16, 4, 4), 512, (3, 7, 11),
                        ((1, 3, 5), (1, 3, 5), (1, 3, 5)), 13.92),
    "v2": HiFiGANConfig("v2", "1", (8, 8, 2, 2), (16, 16, 4, 4), 128, (3, 7, 11),
                        ((1, 3, 5), (1, 3, 5), (1, 3, 5)), 0.92),
    "v3": HiFiGANConfig("v3", "2", (8, 8, 4), (16, 16, 8), 256, (3, 5, 7),
                        ((1, 2), (2, 6), (3, 12)), 1.46),
}


def config(name: str) -> HiFiGANConfig:
    """`hifigan-v1`, `v1`, `V1` -> the V1 configuration."""
    key = name.lower().replace("hifigan-", "").replace("hifigan_", "")
    if key not in CONFIGS:
        raise KeyError(name)
    return CONFIGS[key]


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_padding(kernel, d))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=1, padding=_padding(kernel))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_padding(kernel, d))
            for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """The HiFi-GAN generator, mel [B, 80, T] -> waveform [B, 1, T * hop], without weight norm."""

    def __init__(self, cfg: HiFiGANConfig):
        super().__init__()
        self.cfg = cfg
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.num_upsamples = len(cfg.upsample_rates)
        ch0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(N_MELS, ch0, 7, 1, padding=3)
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(ch0 // 2 ** i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList()
        ch = ch0
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3)

    def init_weights(self, seed: int) -> None:
        """Deterministic weights: the reference implementation's N(0, 0.01) for the upsampling
        and residual convolutions, PyTorch's default for conv_pre/conv_post, from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name.startswith(("ups.", "resblocks.")) and name.endswith("weight"):
                p.data.normal_(0.0, 0.01, generator=gen)
            elif name.endswith("bias"):
                p.data.zero_()
            else:
                fan_in = p.shape[1] * p.shape[2]
                bound = 1.0 / fan_in ** 0.5
                p.data.uniform_(-bound, bound, generator=gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- checkpoints --------------------------------------------------------------------------

class CheckpointError(ValueError):
    """A generator checkpoint that cannot be used, with the reason in plain words."""


def fold_weight_norm(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], bool]:
    """Replace weight-norm pairs by the weight they stand for: w = g * v / ||v||.

    Both spellings are handled: `weight_g`/`weight_v` (torch.nn.utils.weight_norm, what the
    reference implementation saves) and `parametrizations.weight.original0/1`
    (torch.nn.utils.parametrizations.weight_norm). The norm runs over every dimension but 0,
    the default `dim=0` of both APIs, for Conv1d and ConvTranspose1d alike.
    """
    out: dict[str, torch.Tensor] = {}
    folded = False
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.endswith(".weight_g") or key.endswith(".weight_v"):
            pairs.setdefault(key[: -len(".weight_g")], {})[key[-1]] = value
        elif key.endswith(".parametrizations.weight.original0"):
            pairs.setdefault(key[: -len(".parametrizations.weight.original0")], {})["g"] = value
        elif key.endswith(".parametrizations.weight.original1"):
            pairs.setdefault(key[: -len(".parametrizations.weight.original1")], {})["v"] = value
        else:
            out[key] = value
    for prefix, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise CheckpointError(f"weight norm of '{prefix}' is incomplete (need both g and v)")
        g, v = gv["g"].float(), gv["v"].float()
        norm = v.norm(2, dim=tuple(range(1, v.dim())), keepdim=True)
        out[prefix + ".weight"] = g * v / norm
        folded = True
    return out, folded


def detect_config(state: dict[str, torch.Tensor]) -> Optional[HiFiGANConfig]:
    """Which published configuration a (weight-norm-free) state dict has the shapes of."""
    for cfg in CONFIGS.values():
        ref = Generator(cfg).state_dict()
        if set(ref) == set(state) and all(tuple(ref[k].shape) == tuple(state[k].shape)
                                          for k in ref):
            return cfg
    return None


def generator_state(obj: Any) -> dict[str, Any]:
    """The generator state dict from a loaded checkpoint: `{"generator": sd}` or a bare sd."""
    if isinstance(obj, dict) and "generator" in obj and isinstance(obj["generator"], dict):
        return obj["generator"]
    if isinstance(obj, dict) and any(str(k).startswith("conv_pre.") for k in obj):
        return obj
    if isinstance(obj, dict):
        keys = ", ".join(sorted(str(k) for k in obj)[:8]) or "none"
        raise CheckpointError("has no 'generator' entry (the reference implementation saves "
                              f"{{'generator': state_dict}}); top-level keys: {keys}")
    raise CheckpointError(f"holds a {type(obj).__name__}, not a state dict")


def load_checkpoint(path: str, wanted: HiFiGANConfig) -> tuple[Generator, dict[str, Any]]:
    """Build a generator from a checkpoint file; raise CheckpointError on anything unusable.

    The architecture comes from the checkpoint's shapes when they match a published
    configuration (a V2 checkpoint under a V1 recipe is loaded as V2 and reported).
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError("does not exist") from None
    except IsADirectoryError:
        raise CheckpointError("is a directory, not a checkpoint file") from None
    except Exception as exc:  # torch raises many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"is not a readable PyTorch checkpoint ({type(exc).__name__}: "
                              f"{reason[:160]})") from None
    raw = generator_state(obj)
    state, had_weight_norm = fold_weight_norm(raw)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"entries that are not tensors: {', '.join(bad[:5])}")
    cfg = detect_config(state)
    if cfg is None:
        ref = Generator(wanted).state_dict()
        missing = sorted(set(ref) - set(state))
        unexpected = sorted(set(state) - set(ref))
        shape = [k for k in ref if k in state and tuple(ref[k].shape) != tuple(state[k].shape)]
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shape:
            k = shape[0]
            parts.append(f"shape of {k} is {tuple(state[k].shape)}, "
                         f"HiFi-GAN {wanted.name.upper()} has {tuple(ref[k].shape)}")
        raise CheckpointError("does not match HiFi-GAN V1, V2 or V3: " + "; ".join(parts))
    gen = Generator(cfg)
    gen.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return gen, {"config": cfg.name, "weight_norm": had_weight_norm,
                 "requested": wanted.name, "tensors": len(state)}


# --- chunked vocoding ---------------------------------------------------------------------

def vocode_chunked(gen: Generator, mel: torch.Tensor, chunk_frames: int,
                   overlap_frames: int) -> torch.Tensor:
    """Vocode mel [1, 80, T] in chunks of `chunk_frames` with `overlap_frames` of shared
    context, crossfading the overlaps linearly; returns [1, 1, T * hop] like `gen(mel)`."""
    total = mel.shape[-1]
    if total <= chunk_frames:
        return gen(mel)
    hop = gen.cfg.hop
    out: Optional[torch.Tensor] = None
    start = 0
    while start < total:
        a = max(0, start - overlap_frames)
        b = min(total, start + chunk_frames)
        piece = gen(mel[..., a:b])
        if out is None:
            out = piece
        else:
            fade = (start - a) * hop
            ramp = torch.linspace(0.0, 1.0, fade, device=piece.device, dtype=piece.dtype)
            head = out[..., -fade:] * (1 - ramp) + piece[..., :fade] * ramp
            out = torch.cat([out[..., :-fade], head, piece[..., fade:]], dim=-1)
        start = b
    assert out is not None
    return out
