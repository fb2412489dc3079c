"""shims.mel.MelSpectrogram (pure-torch path) against torchaudio where it loads, and against
librosa (timed inside the test environment that has it: tests/harness/envs_shims.py).

HiFi-GAN's 22.05 kHz settings (n_fft 1024, hop 256, 80 mels, fmax 8 kHz, slaney), 10 s of
float32 audio, CPU, one thread of torch (the machine is shared; the ratio is what matters).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from _harness import REPO, Row, Section, interleave

KW = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 80, "f_max": 8000.0,
      "norm": "slaney", "mel_scale": "slaney"}

LIBROSA_TIMER = r"""
import json, sys, time
import numpy as np
import librosa
x = np.random.default_rng(0).standard_normal(int(sys.argv[2])).astype(np.float32) * 0.1
def once():
    return librosa.feature.melspectrogram(y=x, sr=22050, n_fft=1024, hop_length=256,
        n_mels=80, fmax=8000.0, htk=False, norm="slaney", pad_mode="reflect")
once()
out = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter(); once(); out.append(time.perf_counter() - t0)
print(json.dumps(out))
"""


def _librosa(repeats: int, n: int) -> Row | None:
    sys.path.insert(0, str(REPO))
    try:
        from tests.harness.envs_shims import SHIMS_LIBROSA
        from tests.harness.venvs import build

        venv = build(SHIMS_LIBROSA)
        proc = subprocess.run([str(venv.python), "-c", LIBROSA_TIMER, str(repeats), str(n)],
                              capture_output=True, text=True, timeout=600)
        samples = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as exc:  # the comparison is optional; say why it is missing
        print(f"librosa timing skipped: {exc}", file=sys.stderr)
        return None
    return Row("librosa 0.11.0 melspectrogram (own process)", samples,
               note=f"measured in {Path(venv.path).name}, median "
                    f"{statistics.median(samples) * 1e3:.1f} ms")


def run(repeats: int) -> list[Section]:
    import torch
    from tts_doctor.shims.mel import MelSpectrogram, torchaudio_loads

    torch.set_num_threads(1)
    n = 22050 * 10
    x = torch.randn(n) * 0.1
    batch = torch.randn(8, n) * 0.1
    ours = MelSpectrogram(**KW, backend="torch")
    ours_log = MelSpectrogram(**KW, backend="torch", log="log")
    candidates = {
        "shims.mel (torch), 1 x 10 s": lambda: ours(x),
        "shims.mel (torch) + log, 1 x 10 s": lambda: ours_log(x),
        "shims.mel (torch), 8 x 10 s": lambda: ours(batch),
    }
    notes = []
    loads, why = torchaudio_loads()
    if loads:
        import torchaudio

        ta = torchaudio.transforms.MelSpectrogram(**KW)
        candidates["torchaudio MelSpectrogram, 1 x 10 s"] = lambda: ta(x)
        candidates["torchaudio MelSpectrogram, 8 x 10 s"] = lambda: ta(batch)
    else:
        notes.append(f"torchaudio not measured: {why}.")
    with torch.inference_mode():
        rows = interleave(candidates, repeats, warmup=2)
    lib = _librosa(repeats, n)
    if lib is not None:
        rows.append(lib)
    base = "torchaudio MelSpectrogram, 1 x 10 s" if loads else "shims.mel (torch), 1 x 10 s"
    return [Section(
        "Mel spectrogram: shims.mel vs torchaudio and librosa (CPU, 1 thread)",
        "HiFi-GAN 22.05 kHz settings (n_fft 1024, hop 256, 80 mels, fmax 8 kHz, slaney "
        "scale and norm) on 10 s of float32 audio.",
        f"python benchmarks/run.py --only mel --repeats {repeats}", rows, baseline=base,
        notes=notes)]
