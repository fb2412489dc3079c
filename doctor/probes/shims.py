"""Probes: the doctor's own shims in the diagnosed environment (installed, active, removable)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Command, Fix, Result, fail, manual, ok, warn
from tts_doctor.registry import Context, probe


def _uninstall(*names: str) -> Command:
    return manual("tts-doctor", "shims", "uninstall", *names, "--python", dists.executable())


def _install() -> Command:
    return manual("tts-doctor", "shims", "install", "--python", dists.executable())


def collect_installed(ctx: Context) -> dict[str, Any]:
    """The shims' .pth in this interpreter's site-packages: its path, what reading it raised,
    its metadata (None: not written by tts-doctor), the installed files that are missing or
    differ from the sha256s it records; then whether TTS_DOCTOR_SHIMS=0 disables them here,
    whether their finder is active and the errors it recorded, SciPy's version, what the
    shims' scan finds of the problems they cover, and the names they patched on import."""
    import sysconfig

    from tts_doctor import shim_install as si

    pth = Path(sysconfig.get_paths()["purelib"]) / si.PTH_NAME
    facts: dict[str, Any] = {"pth": str(pth)}
    try:
        text = pth.read_text(encoding="utf-8")
    except FileNotFoundError:
        facts["exists"] = False
        return facts
    except OSError as exc:
        facts.update(exists=True, read_error=exc.strerror)
        return facts
    meta = si.parse(text)
    facts.update(exists=True, meta=meta)
    if meta is None:
        return facts
    facts["damaged"] = si.verify(pth.parent, meta)
    if facts["damaged"] or not meta.get("files"):
        return facts
    from tts_doctor.shims import _hooks

    facts["disabled"] = bool(_hooks.disabled())
    if facts["disabled"]:
        return facts
    finder = _hooks.active_finder()
    facts["active"] = finder is not None
    facts["scipy"] = dists.version("scipy")
    if finder is None or facts["scipy"] is None:
        return facts
    from tts_doctor.shims import _scan

    facts["env_state"] = _scan.scan({"modules": si.name_table()})
    patched = {m: sorted(n for n, v in list(vars(mod).items())
                         if getattr(v, "__tts_doctor_shim__", None))
               for m, mod in list(sys.modules.items()) if m in _hooks.WATCH}
    # pairs, not a dict: the order (of import) is kept through a facts file
    facts["patched"] = [[m, n] for m, n in patched.items() if n]
    facts["errors"] = [str(e) for e in getattr(finder, "errors", [])]
    return facts


@probe("shims.installed", title="tts-doctor shims: installed, active, still needed",
       memo=True, isolated=True, collect=collect_installed)
def installed(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Reads the shims' .pth in this interpreter's site-packages (no import of it), checks
    the installed copy of their code against the sha256s it records and, when shims are
    installed, imports the SciPy modules they patch to see what they did here (a copy that
    failed to load leaves SciPy as it is and records why: that is a fail)."""
    from tts_doctor import shim_install as si

    pth = facts["pth"]
    if not facts.get("exists"):
        return ok("no shims installed in this environment", pth=pth)
    if "read_error" in facts:
        return warn(f"cannot read {pth}: {facts['read_error']}",
                    Fix("Check the file's permissions",
                        commands=(manual("ls", "-l", pth),)),
                    pth=pth)
    meta = facts.get("meta")
    if meta is None:
        return warn(f"{pth} exists but was not written by tts-doctor",
                    Fix("Inspect the file and remove it if it is a leftover; tts-doctor will "
                        "not overwrite it", commands=(manual("cat", pth),)),
                    pth=pth)
    names = list(meta["shims"])
    root = str(meta.get("root", ""))
    details = {"pth": pth, "shims": names, "root": root, "doctor": meta.get("doctor"),
               "files": sorted(meta.get("files", {}))}
    damaged = list(facts.get("damaged") or [])
    if damaged:
        return fail(f"shims {', '.join(names)} are installed but their code is missing or "
                    f"damaged ({damaged[0]}{' ...' if len(damaged) > 1 else ''}): SciPy is "
                    "left unpatched", Fix("Reinstall the shims (rewrites their code), or "
                                          "remove them", commands=(_install(), _uninstall())),
                    damaged=damaged, **details)
    if not meta.get("files"):
        return warn(f"shims {', '.join(names)} were installed by an older tts-doctor and load "
                    f"their code from its folder ({root}): removing or moving that tts-doctor "
                    "switches them off", Fix("Reinstall them: the shims' code is then copied "
                                             "into this environment",
                                             commands=(_install(),)), **details)
    if facts.get("disabled"):
        return ok(f"shims {', '.join(names)} installed; disabled in this process by "
                  "TTS_DOCTOR_SHIMS=0", active=False, **details)
    if not facts.get("active"):
        return warn(f"shims {', '.join(names)} are installed in {pth} but not active in a "
                    "new process (site did not run the .pth: is site-packages on the path?)",
                    Fix("Reinstall the shims, and check that python runs without -S",
                        commands=(_install(),)),
                    active=False, **details)
    if facts.get("scipy") is None:
        return warn(f"shims {', '.join(names)} are installed but SciPy is not: nothing to "
                    "patch", Fix("Remove the shims", commands=(_uninstall(),)),
                    active=True, removable=names, **details)
    state = si.problems(facts.get("env_state") or {})
    removable = [n for n in names if state.get(n, {}).get("exists") is False]
    patched: dict[str, list[str]] = {m: n for m, n in facts.get("patched") or []}
    details.update(active=True, patched=patched, removable=removable,
                   errors=list(facts.get("errors") or []))
    if details["errors"]:
        return fail(f"shims installed but not working, SciPy is left as it is: "
                    f"{details['errors'][0]}"[:500],
                    Fix("Reinstall the shims (rewrites their code), or remove them",
                        commands=(_install(), _uninstall())), **details)
    if removable:
        return warn(f"shims {', '.join(removable)} are installed but this environment no "
                    "longer has the problem they cover: removable",
                    Fix("Remove the shims that are no longer needed",
                        commands=(_uninstall(*removable),)), **details)
    count = sum(len(n) for n in patched.values())
    opt_in = [n for n in names if n in si.opt_in_shims()]
    details["opt_in"] = opt_in
    note = (f"; opt-in {', '.join(opt_in)} replaces a working function (its results differ "
            "from SciPy's)" if opt_in else "")
    return ok(f"shims {', '.join(names)} active: {count} names patched on import "
              f"({', '.join(f'{m}: {len(n)}' for m, n in patched.items())}){note}", **details)
