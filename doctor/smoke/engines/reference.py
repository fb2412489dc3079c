"""The built-in reference engine: a Sambert-style acoustic model and a HiFi-GAN generator.

Both at published sizes (../shared/REFERENCE.md), with seeded random weights: the audio is
noise, not speech, but memory and speed behave like the real models (memory grows with mel
frames, the vocoder dominates, the decoder is step by step). Given `checkpoint`, the HiFi-GAN
generator is loaded from a real checkpoint of the reference implementation (weight norm or
not). Model options (`[model]` table or `--set`):

- `vocoder`: hifigan-v1 (default), hifigan-v2, hifigan-v3
- `seed`: integer seed of the random weights (default 0)
- `checkpoint`: a HiFi-GAN generator checkpoint (`{"generator": state_dict}`)
- `memory_cap`: an injected cap on the vocoder stage's activation memory, such as `24MiB`
  (see memcap.py): makes out-of-memory happen on a CPU, to exercise the ladder. The vocoder
  is where memory grows with the text and where real deployments run out first.

With random weights the post stage removes the waveform's DC offset and normalizes its peak
to -1 dBFS (a random generator's output is ~60 dB down with a DC offset), so the audio checks
judge the pipeline rather than the seed. A checkpoint's output is left as it comes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option
from tts_doctor.smoke.sizes import parse_size

_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}
NORMALIZE_PEAK = 0.891  # -1 dBFS


def _no_torch(exc: BaseException) -> EngineUnavailable:
    return EngineUnavailable(
        f"torch does not import: {type(exc).__name__}: {exc}",
        Fix("The reference engine runs on PyTorch: install it (the CPU wheel is enough)",
            commands=(dists.pip_install("torch"),)))


class ReferenceEngine(Engine):
    name = "reference"
    uses_torch = True
    precisions = ("fp32", "fp16", "bf16")
    vocoder_chunks = True
    can_use_cpu = True

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        try:
            from tts_doctor.smoke.engines import hifigan
        except ImportError as exc:  # the doctor without its smoke extra: no torch
            raise _no_torch(exc) from None

        acoustic = option(model, "acoustic", "sambert")
        if acoustic != "sambert":
            raise EngineConfigError(f"reference engine: acoustic={acoustic!r} is not known "
                                    "(only 'sambert')")
        vocoder = option(model, "vocoder", "hifigan-v1")
        try:
            self.vocoder_cfg = hifigan.config(vocoder)
        except KeyError:
            raise EngineConfigError(f"reference engine: vocoder={vocoder!r} is not known "
                                    "(hifigan-v1, hifigan-v2, hifigan-v3)") from None
        self.seed = option(model, "seed", 0, int)
        self.checkpoint: Optional[str] = option(model, "checkpoint")
        if self.checkpoint is not None:
            p = Path(self.checkpoint).expanduser()
            if not p.exists():
                raise EngineConfigError(f"checkpoint {self.checkpoint} does not exist")
            if p.is_dir():
                raise EngineConfigError(f"checkpoint {self.checkpoint} is a directory; give "
                                        "the generator file (e.g. g_02500000)")
            self.checkpoint = str(p)
        cap = option(model, "memory_cap")
        try:
            self.memory_cap = parse_size(cap) if cap is not None else None
        except ValueError as exc:
            raise EngineConfigError(f"model option memory_cap: {exc}") from None
        self.random_weights = self.checkpoint is None
        self.acoustic: Any = None
        self.vocoder: Any = None
        self.ckpt_info: dict[str, Any] = {}

    # --- device ---------------------------------------------------------------------------
    def resolve_device(self, requested: str) -> str:
        try:
            import torch
        except Exception as exc:
            raise _no_torch(exc) from None
        if requested == "auto":
            if torch.cuda.is_available():
                return "cuda"
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                return "mps"
            return "cpu"
        kind = requested.split(":", 1)[0]
        if kind == "cuda" and not torch.cuda.is_available():
            build = "a CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise EngineUnavailable(
                f"--device {requested}: torch {torch.__version__} ({build}) sees no CUDA device",
                Fix("Run on the CPU, or install a CUDA build of torch on a host with an NVIDIA "
                    "driver (tts-doctor check --only cuda says which)",
                    commands=("tts-doctor smoke --device cpu",)),
                torch=torch.__version__, torch_cuda=torch.version.cuda)
        if kind == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
            raise EngineUnavailable(f"--device {requested}: MPS is not available here",
                                    Fix("Use --device cpu"))
        return requested

    # --- load -----------------------------------------------------------------------------
    def load(self, device: str, precision: str) -> None:
        import torch
        from tts_doctor.smoke.engines import hifigan
        from tts_doctor.smoke.engines.sambert import Sambert

        if self.acoustic is None:
            with self.profiler.stage("load"):
                torch.manual_seed(self.seed)
                acoustic = Sambert()
                acoustic.init_weights(self.seed)
                if self.checkpoint:
                    try:
                        vocoder, self.ckpt_info = hifigan.load_checkpoint(self.checkpoint,
                                                                          self.vocoder_cfg)
                    except hifigan.CheckpointError as exc:
                        raise EngineConfigError(f"checkpoint {self.checkpoint} {exc}") from None
                    self.vocoder_cfg = vocoder.cfg
                else:
                    vocoder = hifigan.Generator(self.vocoder_cfg)
                    vocoder.init_weights(self.seed)
                self.acoustic = acoustic.eval().to(device)
                self.vocoder = vocoder.eval().to(device)
        elif device != self.device:
            with self.profiler.stage("load"):
                self.acoustic.to(device)
                self.vocoder.to(device)
        self.device = device
        self.precision = precision

    # --- synthesis ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _compute(self, capped: bool = False) -> Iterator[None]:
        """Autocast at the chosen precision, and the injected cap when one is set."""
        import torch

        kind = self.device.split(":", 1)[0]
        dtype = getattr(torch, _DTYPES.get(self.precision, "float32"))
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.autocast(device_type=kind, dtype=dtype,
                                               enabled=self.precision != "fp32"))
            if capped and self.memory_cap is not None:
                from tts_doctor.smoke.memcap import MemoryCap

                stack.enter_context(MemoryCap(self.memory_cap))
            yield

    @contextlib.contextmanager
    def _few_threads(self) -> Iterator[None]:
        """The step-by-step decoder's ops are tiny: on a CPU, threads only add contention."""
        import torch

        if self.device != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def synthesize(self, text: str) -> tuple[Any, int]:
        import numpy as np
        import torch
        from tts_doctor.smoke.engines import hifigan
        from tts_doctor.smoke.engines.sambert import symbols

        with torch.inference_mode():
            with self.profiler.stage("frontend"):
                ids = torch.tensor([symbols(text, self.acoustic.cfg.vocab)],
                                   dtype=torch.long, device=self.device)
            with self.profiler.stage("acoustic"), self._compute(), self._few_threads():
                memory, durations = self.acoustic.encode(ids)
                mel = self.acoustic.decode(self.acoustic.regulate(memory, durations))
                del memory, durations
            with self.profiler.stage("vocoder"), self._compute(capped=True):
                if self.vocoder_chunk:
                    frames, overlap = self.vocoder_chunk
                    audio = hifigan.vocode_chunked(self.vocoder, mel, frames, overlap)
                else:
                    audio = self.vocoder(mel)
                del mel
            self.profiler.mark_first_audio()
            with self.profiler.stage("post"):
                y = audio.float().reshape(-1).cpu().numpy().astype(np.float32)
                del audio
                if self.random_weights and np.isfinite(y).all():
                    y = y - y.mean()
                    peak = float(np.abs(y).max()) if y.size else 0.0
                    y = y * (NORMALIZE_PEAK / peak) if peak > 1e-7 else np.zeros_like(y)
        return y, hifigan.SAMPLE_RATE

    def info(self) -> dict[str, Any]:
        from tts_doctor.smoke.engines.hifigan import parameter_count

        out: dict[str, Any] = {
            "acoustic": "sambert (KAN-TTS sizes)",
            "vocoder": f"hifigan-{self.vocoder_cfg.name}",
            "seed": self.seed,
            "weights": "random" if self.random_weights else "checkpoint",
            "memory_cap": self.memory_cap,
        }
        if self.acoustic is not None:
            out["parameters"] = {"acoustic": parameter_count(self.acoustic),
                                 "vocoder": parameter_count(self.vocoder)}
            out["vocoder_published_params_m"] = self.vocoder_cfg.published_params
        if self.checkpoint:
            out["checkpoint"] = self.checkpoint
            out["checkpoint_info"] = self.ckpt_info
        return out

    def close(self) -> None:
        self.acoustic = None
        self.vocoder = None
