"""The probe catalogue. Importing this package registers every probe (cheaply: each probe
imports its heavy modules inside its own body). One module per family of failures."""

from doctor.probes import (  # noqa: F401
    audio,
    compat,
    cuda,
    frontend,
    model,
    numba,
    numpy,
    onnxruntime,
    packages,
    python,
    scipy,
    shims,
    torch,
    torch_load,
    torchaudio,
    ttsfrd,
    vram,
)
