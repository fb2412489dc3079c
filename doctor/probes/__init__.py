"""The probe catalogue, one module per family of failures.

`doctor.registry.load_all()` imports every module listed here (cheaply: each probe imports
its heavy modules inside its own body); a worker imports only the modules of the probes it
was given (`registry.load_modules`).
"""

MODULES = (
    "python",
    "packages",
    "torch",
    "cuda",
    "vram",
    "torchaudio",
    "torch_load",
    "load_gate",
    "numpy",
    "numba",
    "scipy",
    "ttsfrd",
    "frontend",
    "frontend_data",
    "audio",
    "onnxruntime",
    "compat",
    "modelscope",
    "drift",
    "model",
    "import_offline",
    "entry_import",
    "piper",
    "extensions",
    "shims",
)
