"""Fakes for what cannot exist on the development machine: an NVIDIA GPU. `pynvml.py` stands in
for nvidia-ml-py (first on PYTHONPATH); `gpus.py` describes the simulated hosts."""
