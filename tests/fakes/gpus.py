"""Simulated GPU hosts for the fake `pynvml` (tests/fakes/pynvml.py), and the environment that
puts it in front of the real one for a CLI subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FAKES = Path(__file__).resolve().parent
GIB = 1024 ** 3


def gpu(name: str, capability: tuple[int, int], total_gib: float, used_gib: float = 0.0,
        uuid: str = "GPU-0", processes: tuple[tuple[int, float, str], ...] = (),
        mig: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name, "uuid": uuid, "capability": list(capability),
        "total": int(total_gib * GIB), "used": int(used_gib * GIB),
        "processes": [{"pid": pid, "used": int(g * GIB), "name": n} for pid, g, n in processes]}
    if mig is not None:
        out["mig"] = mig
    return out


def mig_instance(slot: int, name: str, uuid: str, total_gib: float, used_gib: float = 0.0,
                 processes: tuple[tuple[int, float, str], ...] = ()) -> dict[str, Any]:
    return {"slot": slot, "name": name, "uuid": uuid, "gi": slot + 1, "ci": 0,
            "total": int(total_gib * GIB), "used": int(used_gib * GIB),
            "processes": [{"pid": pid, "used": int(g * GIB), "name": n}
                          for pid, g, n in processes]}


def host(*devices: dict[str, Any], driver: str = "570.86.10", cuda: int = 12080
         ) -> dict[str, Any]:
    return {"driver_version": driver, "cuda_version": cuda, "devices": list(devices)}


H100 = gpu("NVIDIA H100 80GB HBM3", (9, 0), 79.6, 0.5, "GPU-1f2e3d4c-h100")
RTX_5090 = gpu("NVIDIA GeForce RTX 5090", (12, 0), 31.8, 0.4, "GPU-5a5b5c5d-5090")


def nvml_env(tmp_path: Path, config: dict[str, Any]) -> dict[str, str]:
    """PYTHONPATH with the fake first, and the JSON it reads."""
    path = tmp_path / "fake-nvml.json"
    path.write_text(json.dumps(config))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(FAKES),
                                                        os.environ.get("PYTHONPATH", "")])),
            "TTS_DOCTOR_FAKE_NVML": str(path)}
