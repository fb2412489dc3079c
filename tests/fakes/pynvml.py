"""A fake `pynvml` (nvidia-ml-py) for simulated-GPU tests: there is no GPU on the development
machine and none in CI. Put this folder first on PYTHONPATH and point TTS_DOCTOR_FAKE_NVML at a
JSON file describing the driver and the devices:

    {"driver_version": "570.86.10", "cuda_version": 12080,
     "init_error": null,                       # or "DriverNotLoaded", "LibraryNotFound"...
     "devices": [{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-...", "capability": [9, 0],
                  "total": 85899345920, "used": 1073741824,
                  "processes": [{"pid": 4242, "used": 1073741824, "name": "python"}],
                  "mig": {"current": 1, "pending": 1, "max": 7,
                          "instances": [{"slot": 0, "name": "...", "uuid": "MIG-...",
                                         "total": ..., "used": ..., "gi": 1, "ci": 0}]}}]}

Only the calls tts-doctor makes exist, with nvidia-ml-py's names, return types and error
classes (NVMLError subclasses carrying `.value`). Memory is in bytes; `free` is total - used
unless given. Without the variable the module behaves like a host with no driver.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_NotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_FOUND)


class NVMLError_DriverNotLoaded(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_DRIVER_NOT_LOADED)


class NVMLError_LibraryNotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_LIBRARY_NOT_FOUND)


class NVMLError_Uninitialized(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_UNINITIALIZED)


_ERRORS = {"NotSupported": NVMLError_NotSupported, "NotFound": NVMLError_NotFound,
           "DriverNotLoaded": NVMLError_DriverNotLoaded,
           "LibraryNotFound": NVMLError_LibraryNotFound}
_state: dict[str, Any] = {"config": None, "init": False}


class _Handle:
    def __init__(self, data: dict[str, Any], mig: bool = False, parent: Any = None):
        self.data = data
        self.mig = mig
        self.parent = parent


def _config() -> dict[str, Any]:
    if _state["config"] is None:
        path = os.environ.get("TTS_DOCTOR_FAKE_NVML")
        if not path:
            _state["config"] = {"init_error": "LibraryNotFound"}
        else:
            with open(path, encoding="utf-8") as fh:
                _state["config"] = json.load(fh)
    return _state["config"]


def _check() -> None:
    if not _state["init"]:
        raise NVMLError_Uninitialized()


def nvmlInit() -> None:
    error = _config().get("init_error")
    if error:
        raise _ERRORS[error]()
    _state["init"] = True


def nvmlInitWithFlags(flags: int) -> None:
    nvmlInit()


def nvmlShutdown() -> None:
    _check()
    _state["init"] = False


def nvmlSystemGetDriverVersion() -> str:
    _check()
    return _config()["driver_version"]


def nvmlSystemGetCudaDriverVersion() -> int:
    _check()
    return int(_config()["cuda_version"])


def nvmlSystemGetCudaDriverVersion_v2() -> int:
    return nvmlSystemGetCudaDriverVersion()


def nvmlSystemGetProcessName(pid: int) -> str:
    _check()
    for device in _config().get("devices", []):
        pools = [device, *(device.get("mig") or {}).get("instances", [])]
        for pool in pools:
            for p in pool.get("processes", []):
                if p["pid"] == pid and p.get("name"):
                    return p["name"]
    raise NVMLError_NotFound()


def nvmlDeviceGetCount() -> int:
    _check()
    return len(_config().get("devices", []))


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    _check()
    devices = _config().get("devices", [])
    if not 0 <= index < len(devices):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(devices[index])


def nvmlDeviceGetName(handle: _Handle) -> str:
    return handle.data["name"]


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    return handle.data.get("uuid") or "GPU-00000000-0000-0000-0000-000000000000"


def nvmlDeviceGetCudaComputeCapability(handle: _Handle) -> tuple[int, int]:
    if handle.mig:
        return nvmlDeviceGetCudaComputeCapability(handle.parent)
    major, minor = handle.data.get("capability", (8, 0))
    return int(major), int(minor)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: Any = None) -> Any:
    d = handle.data
    total, used = int(d["total"]), int(d.get("used", 0))
    free = int(d.get("free", total - used))
    return SimpleNamespace(total=total, used=used, free=free, reserved=0)


def _procs(handle: _Handle) -> list[Any]:
    d = handle.data
    if d.get("processes_error"):
        raise _ERRORS[d["processes_error"]]()
    return [SimpleNamespace(pid=int(p["pid"]), usedGpuMemory=p.get("used"),
                            gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF)
            for p in d.get("processes", [])]


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[Any]:
    return _procs(handle)


def nvmlDeviceGetGraphicsRunningProcesses(handle: _Handle) -> list[Any]:
    return []


def nvmlDeviceGetMigMode(handle: _Handle) -> list[int]:
    mig = handle.data.get("mig")
    if mig is None:
        raise NVMLError_NotSupported()
    return [int(mig.get("current", 0)), int(mig.get("pending", mig.get("current", 0)))]


def nvmlDeviceGetMaxMigDeviceCount(handle: _Handle) -> int:
    mig = handle.data.get("mig")
    if mig is None:
        raise NVMLError_NotSupported()
    return int(mig.get("max", 7))


def nvmlDeviceGetMigDeviceHandleByIndex(handle: _Handle, index: int) -> _Handle:
    for inst in (handle.data.get("mig") or {}).get("instances", []):
        if int(inst.get("slot", 0)) == index:
            return _Handle(inst, mig=True, parent=handle)
    raise NVMLError_NotFound()


def nvmlDeviceIsMigDeviceHandle(handle: _Handle) -> bool:
    return handle.mig


def nvmlDeviceGetGpuInstanceId(handle: _Handle) -> int:
    if not handle.mig:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(handle.data.get("gi", 0))


def nvmlDeviceGetComputeInstanceId(handle: _Handle) -> int:
    if not handle.mig:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(handle.data.get("ci", 0))
