"""GPU memory through NVML (nvidia-ml-py's `pynvml`): per device total, free and used; the
processes that hold memory; MIG mode and the memory of each MIG instance; and the free memory
against a recipe's `requires.vram_gib`.

NVML is what `nvidia-smi` reads, and what actually runs out: it counts every process and the
CUDA contexts, not just one process's tensors (../shared/REFERENCE.md, "device used"). Inside a
container NVML reports host PIDs, so its process list can look empty, or name processes that
do not exist here; the finding says so. MIG instances are queried through their own handles:
with MIG on, the whole GPU's numbers are not what a process gets.

Both probes run in the worker (pynvml loads libnvidia-ml.so). Without NVML they `skip`; the
verdicts are pure functions of the gathered device list (`judge_devices`, `judge_budget`).
Both are split (docs/DEVELOPING.md, "Collect and judge"): `collect_devices` / `collect_budget`
gather the devices in the worker and the probe functions judge them in the doctor's process,
so `check --save-facts` keeps what NVML said.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from tts_doctor.facts.nvidia import gpu_need, nvml, visible_devices
from tts_doctor.finding import Fix, Result, export, fail, manual, ok, skip, steps, system, warn
from tts_doctor.registry import Context, probe

GIB = 1024 ** 3
# Memory held by other processes worth a warning: it is not available to the model. A CUDA
# context alone is about 0.3-0.6 GiB, so smaller amounts are ordinary.
OTHERS_WARN_BYTES = GIB


def gib(n: Optional[float]) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def in_container() -> bool:
    """Docker, Podman, Kubernetes or another cgroup-namespaced container."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "lxc", "libpod"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _call(nv: Any, name: str, *args: Any) -> Any:
    """An NVML call that may be unsupported on this GPU or driver: None on any NVML error."""
    fn = getattr(nv, name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except Exception:
        return None


def _memory(nv: Any, handle: Any) -> dict[str, Optional[int]]:
    mem = _call(nv, "nvmlDeviceGetMemoryInfo", handle)
    if mem is None:
        return {"total": None, "free": None, "used": None}
    return {"total": int(mem.total), "free": int(mem.free), "used": int(mem.used)}


def _process_name(nv: Any, pid: int) -> Optional[str]:
    name = _call(nv, "nvmlSystemGetProcessName", pid)
    if name:
        return os.path.basename(_text(name))
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _processes(nv: Any, handle: Any) -> Optional[list[dict[str, Any]]]:
    """Compute and graphics processes on a device (or MIG instance); None if NVML cannot say."""
    seen: dict[int, dict[str, Any]] = {}
    answered = False
    for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        procs = _call(nv, call, handle)
        if procs is None:
            continue
        answered = True
        for p in procs:
            pid = int(p.pid)
            used = getattr(p, "usedGpuMemory", None)
            entry = seen.setdefault(pid, {"pid": pid, "used": None,
                                          "name": _process_name(nv, pid),
                                          "self": pid == os.getpid(),
                                          "here": os.path.exists(f"/proc/{pid}")})
            if used is not None:
                entry["used"] = max(int(used), entry["used"] or 0)
    return list(seen.values()) if answered else None


def _mig(nv: Any, handle: Any) -> Optional[dict[str, Any]]:
    mode = _call(nv, "nvmlDeviceGetMigMode", handle)
    if mode is None:
        return None  # MIG not supported on this GPU
    enable = getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1)
    current, pending = int(mode[0]), int(mode[1])
    info: dict[str, Any] = {"enabled": current == enable, "pending": pending == enable,
                            "instances": []}
    if current != enable:
        return info
    for slot in range(int(_call(nv, "nvmlDeviceGetMaxMigDeviceCount", handle) or 0)):
        mh = _call(nv, "nvmlDeviceGetMigDeviceHandleByIndex", handle, slot)
        if mh is None:
            continue  # an empty slot (NVML_ERROR_NOT_FOUND)
        inst = {"slot": slot, "name": _text(_call(nv, "nvmlDeviceGetName", mh) or "MIG"),
                "uuid": _text(_call(nv, "nvmlDeviceGetUUID", mh) or "") or None,
                "gpu_instance": _call(nv, "nvmlDeviceGetGpuInstanceId", mh),
                "compute_instance": _call(nv, "nvmlDeviceGetComputeInstanceId", mh),
                **_memory(nv, mh), "processes": _processes(nv, mh)}
        info["instances"].append(inst)
    return info


def gather(nv: Any) -> list[dict[str, Any]]:
    """Every GPU NVML lists, with memory, processes and MIG instances (bytes)."""
    out = []
    for index in range(int(nv.nvmlDeviceGetCount())):
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        cap = _call(nv, "nvmlDeviceGetCudaComputeCapability", handle)
        mig = _mig(nv, handle)
        device = {"index": index, "name": _text(_call(nv, "nvmlDeviceGetName", handle) or "?"),
                  "uuid": _text(_call(nv, "nvmlDeviceGetUUID", handle) or "") or None,
                  "capability": list(cap) if cap else None, **_memory(nv, handle),
                  "mig_mode": mig, "mig": (mig or {}).get("instances") or [],
                  "processes": _processes(nv, handle)}
        out.append(device)
    return out


def _others(procs: Optional[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [p for p in procs or [] if not p.get("self")]


def judge_devices(devices: list[dict[str, Any]], container: bool) -> Result:
    """Warn on memory other processes hold, and on MIG states that hide memory."""
    details: dict[str, Any] = {"devices": devices, "container": container}
    if container:
        details["process_list_note"] = (
            "inside a container NVML reports host PIDs: the process list may be empty or "
            "name processes that do not exist here; 'used' memory still counts them")
    if not devices:
        return skip("NVML lists no GPU", **details)
    problems: list[str] = []
    commands: list[str] = []
    parts = []
    for d in devices:
        mig = d.get("mig_mode") or {}
        label = f"GPU {d['index']} {d['name']}"
        if mig.get("enabled"):
            inst = d.get("mig") or []
            parts.append(f"{label}: MIG on, {len(inst)} instance(s)"
                         + "".join(f"; {i['name']} {gib(i['free'])} free of {gib(i['total'])}"
                                   for i in inst[:4]))
            if not inst:
                problems.append(f"{label} has MIG enabled but no GPU instance: CUDA sees no "
                                "device on it")
                commands.append(system("nvidia-smi", "mig", "-i", str(d["index"]), "-cgi", "0",
                                       "-C", note="create an instance (profile 0: the whole "
                                       "GPU); list profiles with nvidia-smi mig -lgip"))
            procs = [p for i in inst for p in _others(i.get("processes"))]
        else:
            parts.append(f"{label}: {gib(d.get('free'))} free of {gib(d.get('total'))}")
            procs = _others(d.get("processes"))
        if mig and mig.get("pending") != mig.get("enabled"):
            problems.append(f"{label}: a MIG mode change is pending (now "
                            f"{'on' if mig.get('enabled') else 'off'}); it applies after a GPU "
                            "reset")
            commands.append(system("nvidia-smi", "-i", str(d["index"]), "-r",
                                   note="reset the GPU (stop its processes first)"))
        held = sum(p.get("used") or 0 for p in procs)
        if held >= OTHERS_WARN_BYTES:
            who = ", ".join(f"pid {p['pid']}" + (f" {p['name']}" if p.get("name") else "")
                            + (f" {gib(p['used'])}" if p.get("used") else "")
                            for p in sorted(procs, key=lambda p: -(p.get("used") or 0))[:4])
            problems.append(f"{label}: {len(procs)} other process(es) hold {gib(held)} ({who})"
                            + (" [host PIDs: this is a container]" if container else ""))
            commands.append(manual("nvidia-smi",
                                   "--query-compute-apps=pid,process_name,used_memory",
                                   "--format=csv"))
            freest = max(pools(devices, None), key=lambda x: x.get("free") or 0)
            pick = freest.get("uuid") if "slot" in freest else freest.get("index")
            if len(devices) > 1 and freest.get("index", -1) != d["index"] and pick is not None:
                commands.append(export("CUDA_VISIBLE_DEVICES", str(pick)))
        unseen = [p for p in procs if not p.get("here")]
        if unseen and not container:
            details.setdefault("notes", []).append(
                f"{label}: PIDs {', '.join(str(p['pid']) for p in unseen[:5])} do not exist in "
                "this PID namespace (a container or a sandbox: NVML shows host PIDs)")
    summary = "; ".join(parts)
    if problems:
        return warn("; ".join(problems)[:600] + f" ({summary})"[:300],
                    Fix("Free the GPU memory other processes hold (stop them, or pick another "
                        "GPU), and put MIG in a state CUDA can use.",
                        commands=steps(*dict.fromkeys(commands))),
                    **details)
    return ok(summary + (" (inside a container: NVML's process list shows host PIDs)"
                         if container else ""), **details)


def pools(devices: list[dict[str, Any]], cvd: Optional[str]) -> list[dict[str, Any]]:
    """The memory pools a CUDA process can use: MIG instances where MIG is on, whole GPUs
    elsewhere, limited to what CUDA_VISIBLE_DEVICES shows."""
    shown = visible_devices(cvd, devices)
    chosen = devices if shown is None else shown
    out = []
    for d in chosen:
        if "slot" in d:  # a MIG instance named by its UUID
            out.append({**d, "label": f"MIG {d.get('name')} ({d.get('uuid')})"})
        elif (d.get("mig_mode") or {}).get("enabled"):
            out += [{**i, "label": f"GPU {d['index']} MIG {i.get('name')}"}
                    for i in d.get("mig") or []]
        else:
            out.append({**d, "label": f"GPU {d['index']} {d.get('name')}"})
    return out


def judge_budget(devices: list[dict[str, Any]], need_gib: float, cvd: Optional[str],
                 recipe: Optional[str] = None) -> Result:
    """Free memory of the best visible pool against the recipe's need."""
    need = float(need_gib) * GIB
    usable = pools(devices, cvd)
    rows = [{"label": p["label"], "free": p.get("free"), "total": p.get("total")}
            for p in usable]
    details: dict[str, Any] = {"need_gib": need_gib, "pools": rows,
                               "CUDA_VISIBLE_DEVICES": cvd}
    if not usable:
        return fail(f"the recipe needs {need_gib:g} GiB of GPU memory, but no GPU memory is "
                    "visible" + (f" (CUDA_VISIBLE_DEVICES={cvd!r})" if cvd is not None else ""),
                    Fix("Make a GPU visible (see cuda.env and vram.devices).",
                        commands=(manual("nvidia-smi"),)), **details)
    best = max(usable, key=lambda p: p.get("free") or 0)
    details["best"] = best["label"]
    free, total = best.get("free") or 0, best.get("total") or 0
    if free >= need:
        return ok(f"{best['label']} has {gib(free)} free of {gib(total)}; the recipe needs "
                  f"{need_gib:g} GiB (plus ~0.5 GiB for the CUDA context)", **details)
    biggest = max(usable, key=lambda p: p.get("total") or 0)
    if (biggest.get("total") or 0) >= need:
        return fail(f"the recipe needs {need_gib:g} GiB of GPU memory, but the most free is "
                    f"{gib(free)} on {best['label']}: other processes hold the rest of "
                    f"{biggest['label']}'s {gib(biggest.get('total'))} (\"CUDA out of memory\")",
                    Fix("Stop the processes that hold GPU memory (vram.devices lists them), or "
                        "use a GPU with enough free memory.",
                        commands=(manual("nvidia-smi",
                                         "--query-compute-apps=pid,process_name,used_memory",
                                         "--format=csv"),)), **details)
    return fail(f"the recipe needs {need_gib:g} GiB of GPU memory; the largest visible GPU "
                f"memory is {gib(biggest.get('total'))} ({biggest['label']}): "
                "\"CUDA out of memory\" on long text",
                Fix("Use a GPU with more memory, or lower the need: fp16/bf16, shorter text "
                    "chunks, the vocoder in chunks. `tts-doctor smoke --vram-budget` measures "
                    "the model's real peak on this GPU.",
                    commands=(manual("tts-doctor", "smoke",
                                     *(("--recipe", str(recipe)) if recipe else ()),
                                     "--vram-budget",
                                     gib(biggest.get("total")).replace(" ", "")),)),
                **details)


def collect_nvml() -> dict[str, Any]:
    """What NVML says, in the worker: every GPU (`gather`), or why it could not be asked
    (`nvml_error`) or could not list them (`gather_error`); whether this is a container, and
    CUDA_VISIBLE_DEVICES."""
    facts: dict[str, Any] = {"container": in_container(),
                             "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}
    nv, error = nvml()
    if nv is None:
        facts["nvml_error"] = error
        return facts
    try:
        facts["devices"] = gather(nv)
    except Exception as exc:
        facts["gather_error"] = {"type": type(exc).__name__, "message": str(exc)}
    return facts


def _devices_or_skip(facts: dict[str, Any]
                     ) -> tuple[Optional[list[dict[str, Any]]], Optional[Result]]:
    if "devices" in facts:
        return list(facts["devices"]), None
    if "gather_error" in facts:
        exc = facts["gather_error"]
        return None, skip(f"NVML could not list the GPUs: {exc['type']}: {exc['message']}",
                          nvml_error=exc["message"])
    error = facts.get("nvml_error")
    return None, skip(f"no NVIDIA driver to ask ({error})", nvml_error=error)


def collect_devices(ctx: Context) -> dict[str, Any]:
    """vram.devices' facts (`collect_nvml`)."""
    return collect_nvml()


@probe("vram.devices", title="GPU memory per device and MIG instance, and the processes that "
       "hold it (NVML)", isolated=True, families=("C4",), collect=collect_devices,
       component="gpu", memo=True)
def devices(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Lists every GPU NVML knows with total, free and used memory, MIG mode and each MIG
    instance's memory (through the instance's own handle), and the processes holding memory.
    Warns when other processes hold 1 GiB or more, when MIG is on without an instance, or a MIG
    change waits for a reset. Inside a container it says the process list shows host PIDs."""
    found, early = _devices_or_skip(facts)
    if early:
        return early
    assert found is not None
    return judge_devices(found, bool(facts.get("container")))


def _vram_need(ctx: Context) -> Any:
    return ((ctx.recipe or {}).get("requires") or {}).get("vram_gib")


def collect_budget(ctx: Context) -> dict[str, Any]:
    """vram.budget's facts (`collect_nvml`); nothing without a `requires.vram_gib`."""
    if not _vram_need(ctx):
        return {"collected": False, "why": "the recipe states no requires.vram_gib"}
    return collect_nvml()


@probe("vram.budget", title="Free GPU memory against the recipe's requires.vram_gib",
       memo=True, isolated=True, families=("C4",), collect=collect_budget, component="gpu")
def budget(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """With a recipe that states `requires.vram_gib`: the free memory of the best GPU (or MIG
    instance) CUDA_VISIBLE_DEVICES leaves visible, against that need. Fails when no visible GPU
    has that much free (other processes hold it) or none is that large."""
    need = _vram_need(ctx)
    if not need:  # the probe's own nuance: nothing to judge without requires.vram_gib
        return None
    found, early = _devices_or_skip(facts)
    if early:
        if gpu_need(ctx) == "required":
            return fail(f"the recipe needs a GPU with {need:g} GiB, and there is none ("
                        f"{early.summary})",
                        Fix("Run on a machine with an NVIDIA GPU of that size.",
                            commands=(manual("nvidia-smi"),)), need_gib=need)
        return skip(f"{early.summary}; the recipe needs {need:g} GiB of GPU memory",
                    need_gib=need)
    assert found is not None
    return judge_budget(found, float(need), facts.get("CUDA_VISIBLE_DEVICES"),
                        (ctx.recipe or {}).get("name"))
