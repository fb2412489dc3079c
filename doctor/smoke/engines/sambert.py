"""A Sambert-style acoustic model at the sizes of ModelScope's KAN-TTS configs.

The shape of the computation matters for a memory and latency profile, not the weights: a
text embedding (512), a self-attention encoder (8 FFT blocks, d_model 128, 8 heads, FFN 1024
with conv kernels 3 and 1, projection 32), FSMN pitch and energy predictors (filter 41,
3 layers, memory 128, FFN 256, LSTM 128), an autoregressive duration predictor (prenet
128,128; LSTM 128), a length regulator, and a decoder of 12 PNCA-style layers (128 units,
8 heads, FFN 1024, prenet 256,256) decoded step by step, 3 frames per step, followed by an
FSMN postnet (filter 41, 4 layers, memory 256, FFN 512, LSTM 128). Sizes from
../shared/REFERENCE.md "Sambert". Memory grows with the number of frames (the length-regulated
memory and the decoder's key/value cache), latency with frames / 3 steps, as in the original.

Weights are seeded random. So that the audio length stays plausible for the text, the
duration predictor's output is mapped to 2..10 frames per input symbol (a sigmoid): about
70 ms per character at hop 256 and 22,050 Hz, close to read speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SambertConfig:
    vocab: int = 256
    embedding_dim: int = 512
    d_model: int = 128
    encoder_layers: int = 8
    heads: int = 8
    ffn: int = 1024
    projection: int = 32
    speaker_units: int = 32
    emotion_units: int = 32
    fsmn_filter: int = 41
    predictor_layers: int = 3
    predictor_memory: int = 128
    predictor_ffn: int = 256
    predictor_lstm: int = 128
    duration_prenet: tuple[int, int] = (128, 128)
    duration_lstm: int = 128
    decoder_prenet: tuple[int, int] = (256, 256)
    decoder_layers: int = 12
    decoder_units: int = 128
    decoder_heads: int = 8
    decoder_ffn: int = 1024
    outputs_per_step: int = 3
    postnet_layers: int = 4
    postnet_memory: int = 256
    postnet_ffn: int = 512
    postnet_lstm: int = 128
    n_mels: int = 80
    min_frames: int = 2
    max_frames: int = 10
    window: int = 8  # frames of length-regulated memory each side of a decoder step

    @property
    def memory_dim(self) -> int:
        return self.projection + self.speaker_units + self.emotion_units


def symbols(text: str, vocab: int = 256) -> list[int]:
    """The frontend: characters to symbol ids (0 is padding). Any Unicode text maps."""
    return [1 + ord(c) % (vocab - 1) for c in text.lower()]


class FFTBlock(nn.Module):
    """Self-attention + convolutional feed-forward (kernels 3 and 1), post-norm."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.conv1 = nn.Conv1d(d, ffn, 3, padding=1)
        self.conv2 = nn.Conv1d(ffn, d, 1)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + a)
        y = self.conv2(F.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        return self.norm2(x + y)


class FSMN(nn.Module):
    """FSMN layers (feed-forward, then a depthwise 'memory' convolution with a residual),
    an LSTM and a linear output: KAN-TTS's variance predictors and postnet."""

    def __init__(self, in_dim: int, out_dim: int, layers: int, memory: int, ffn: int,
                 lstm: int, filter_size: int):
        super().__init__()
        self.ffn_in = nn.ModuleList()
        self.ffn_out = nn.ModuleList()
        self.memory = nn.ModuleList()
        dim = in_dim
        for _ in range(layers):
            self.ffn_in.append(nn.Linear(dim, ffn))
            self.ffn_out.append(nn.Linear(ffn, memory, bias=False))
            self.memory.append(nn.Conv1d(memory, memory, filter_size, padding=filter_size // 2,
                                         groups=memory, bias=False))
            dim = memory
        self.lstm = nn.LSTM(memory, lstm, batch_first=True)
        self.out = nn.Linear(lstm, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fin, fout, mem in zip(self.ffn_in, self.ffn_out, self.memory):
            h = fout(F.relu(fin(x)))
            x = h + mem(h.transpose(1, 2)).transpose(1, 2)
        y, _ = self.lstm(x)
        return self.out(y)


class DurationPredictor(nn.Module):
    """Autoregressive: each symbol's duration sees the previous one through a prenet."""

    def __init__(self, cfg: SambertConfig):
        super().__init__()
        p1, p2 = cfg.duration_prenet
        self.prenet = nn.Sequential(nn.Linear(1, p1), nn.ReLU(), nn.Linear(p1, p2), nn.ReLU())
        self.cell = nn.LSTMCell(cfg.memory_dim + p2, cfg.duration_lstm)
        self.out = nn.Linear(cfg.duration_lstm, 1)
        self.lo, self.hi = cfg.min_frames, cfg.max_frames

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        b, n, _ = memory.shape
        h = memory.new_zeros(b, self.cell.hidden_size)
        c = memory.new_zeros(b, self.cell.hidden_size)
        prev = memory.new_zeros(b, 1)
        out = []
        for i in range(n):
            h, c = self.cell(torch.cat([memory[:, i], self.prenet(prev)], dim=-1), (h, c))
            d = self.lo + (self.hi - self.lo) * torch.sigmoid(self.out(h))
            out.append(d)
            prev = d / self.hi
        return torch.cat(out, dim=-1)  # [B, N] frames (float)


class PNCALayer(nn.Module):
    """Causal self-attention over past decoder steps (key/value cache), attention over a
    window of the length-regulated text memory, feed-forward."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.self_out = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.q_cross = nn.Linear(d, d)
        self.kv_cross = nn.Linear(d, 2 * d)
        self.cross_out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ffn)
        self.ff2 = nn.Linear(ffn, d)
        self.norm3 = nn.LayerNorm(d)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def step(self, x: torch.Tensor, cache: dict[str, torch.Tensor], s: int,
             mem_k: torch.Tensor, mem_v: torch.Tensor) -> torch.Tensor:
        b, _, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if "k" not in cache:
            shape = (b, self.heads, cache["steps"], d // self.heads)
            cache["k"] = k.new_zeros(shape)
            cache["v"] = v.new_zeros(shape)
        cache["k"][:, :, s:s + 1] = k
        cache["v"][:, :, s:s + 1] = v
        a = F.scaled_dot_product_attention(q, cache["k"][:, :, :s + 1], cache["v"][:, :, :s + 1])
        x = self.norm1(x + self.self_out(a.transpose(1, 2).reshape(b, 1, d)))
        qc = self._heads(self.q_cross(x))
        c = F.scaled_dot_product_attention(qc, mem_k, mem_v)
        x = self.norm2(x + self.cross_out(c.transpose(1, 2).reshape(b, 1, d)))
        return self.norm3(x + self.ff2(F.relu(self.ff1(x))))


class Sambert(nn.Module):
    """Symbols -> 80-bin mel frames [B, 80, T]."""

    def __init__(self, cfg: SambertConfig = SambertConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embedding = nn.Embedding(cfg.vocab, cfg.embedding_dim, padding_idx=0)
        self.embed_proj = nn.Linear(cfg.embedding_dim, d)
        self.encoder = nn.ModuleList(FFTBlock(d, cfg.heads, cfg.ffn)
                                     for _ in range(cfg.encoder_layers))
        self.enc_proj = nn.Linear(d, cfg.projection)
        self.speaker = nn.Embedding(1, cfg.speaker_units)
        self.emotion = nn.Embedding(1, cfg.emotion_units)
        m = cfg.memory_dim
        fsmn = dict(layers=cfg.predictor_layers, memory=cfg.predictor_memory,
                    ffn=cfg.predictor_ffn, lstm=cfg.predictor_lstm, filter_size=cfg.fsmn_filter)
        self.pitch = FSMN(m, 1, **fsmn)
        self.energy = FSMN(m, 1, **fsmn)
        self.pitch_embed = nn.Conv1d(1, m, 9, padding=4)
        self.energy_embed = nn.Conv1d(1, m, 9, padding=4)
        self.duration = DurationPredictor(cfg)
        u = cfg.decoder_units
        p1, p2 = cfg.decoder_prenet
        self.prenet = nn.Sequential(nn.Linear(cfg.n_mels, p1), nn.ReLU(), nn.Linear(p1, p2),
                                    nn.ReLU(), nn.Linear(p2, u))
        self.memory_proj = nn.Linear(m, u)
        self.decoder = nn.ModuleList(PNCALayer(u, cfg.decoder_heads, cfg.decoder_ffn)
                                     for _ in range(cfg.decoder_layers))
        self.mel_out = nn.Linear(u, cfg.n_mels * cfg.outputs_per_step)
        self.postnet = FSMN(cfg.n_mels, cfg.n_mels, layers=cfg.postnet_layers,
                            memory=cfg.postnet_memory, ffn=cfg.postnet_ffn,
                            lstm=cfg.postnet_lstm, filter_size=cfg.fsmn_filter)

    def init_weights(self, seed: int) -> None:
        """Deterministic weights from `seed` (Xavier-uniform matrices, zero biases)."""
        gen = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                fan_in = p.shape[1] * (p[0][0].numel() if p.dim() > 2 else 1)
                fan_out = p.shape[0] * (p[0][0].numel() if p.dim() > 2 else 1)
                bound = (6.0 / (fan_in + fan_out)) ** 0.5
                p.data.uniform_(-bound, bound, generator=gen)
            elif "norm" in name and name.endswith("weight"):
                p.data.fill_(1.0)
            else:
                p.data.zero_()

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """Encoder and variance predictors: [B, N] symbols -> text memory [B, N, M], durations."""
        x = self.embed_proj(self.embedding(ids))
        for block in self.encoder:
            x = block(x)
        b, n = ids.shape
        zero = ids.new_zeros(b, n)
        mem = torch.cat([self.enc_proj(x), self.speaker(zero), self.emotion(zero)], dim=-1)
        pitch = self.pitch(mem).transpose(1, 2)
        energy = self.energy(mem).transpose(1, 2)
        mem = mem + (self.pitch_embed(pitch) + self.energy_embed(energy)).transpose(1, 2)
        return mem, self.duration(mem)

    def decode(self, lr_memory: torch.Tensor) -> torch.Tensor:
        """Step-by-step decoding, `outputs_per_step` frames a step: [B, T, M] -> [B, 80, T]."""
        cfg = self.cfg
        b, frames, _ = lr_memory.shape
        r = cfg.outputs_per_step
        steps = -(-frames // r)
        mem = self.memory_proj(lr_memory)
        kv = [layer.kv_cross(mem).chunk(2, dim=-1) for layer in self.decoder]
        kv = [(layer._heads(k), layer._heads(v)) for layer, (k, v) in zip(self.decoder, kv)]
        caches: list[dict[str, torch.Tensor]] = [{"steps": steps} for _ in self.decoder]
        prev = lr_memory.new_zeros(b, 1, cfg.n_mels)
        outputs = []
        for s in range(steps):
            lo = max(0, s * r - cfg.window)
            hi = min(frames, s * r + r + cfg.window)
            x = self.prenet(prev)
            for layer, cache, (mk, mv) in zip(self.decoder, caches, kv):
                x = layer.step(x, cache, s, mk[:, :, lo:hi], mv[:, :, lo:hi])
            y = self.mel_out(x).view(b, r, cfg.n_mels)
            outputs.append(y)
            prev = y[:, -1:, :]
        mel = torch.cat(outputs, dim=1)[:, :frames]
        mel = mel + self.postnet(mel)
        return mel.transpose(1, 2)

    @staticmethod
    def regulate(memory: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
        """The length regulator: repeat each symbol's memory by its rounded duration (B=1)."""
        reps = durations[0].round().clamp(min=1).long()
        return memory[0].repeat_interleave(reps, dim=0).unsqueeze(0)
