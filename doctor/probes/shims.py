"""Probes: the doctor's own shims in the diagnosed environment (installed, active, removable)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from tts_doctor import dists
from tts_doctor.finding import Command, Fix, Result, fail, manual, ok, warn
from tts_doctor.registry import Context, probe


def _uninstall(*names: str) -> Command:
    return manual("tts-doctor", "shims", "uninstall", *names, "--python", dists.executable())


def _install() -> Command:
    return manual("tts-doctor", "shims", "install", "--python", dists.executable())


@probe("shims.installed", title="tts-doctor shims: installed, active, still needed",
       isolated=True)
def installed(ctx: Context) -> Optional[Result]:
    """Reads the shims' .pth in this interpreter's site-packages (no import of it), checks
    the installed copy of their code against the sha256s it records and, when shims are
    installed, imports the SciPy modules they patch to see what they did here (a copy that
    failed to load leaves SciPy as it is and records why: that is a fail)."""
    import sysconfig

    from tts_doctor import shim_install as si

    pth = Path(sysconfig.get_paths()["purelib"]) / si.PTH_NAME
    try:
        text = pth.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ok("no shims installed in this environment", pth=str(pth))
    except OSError as exc:
        return warn(f"cannot read {pth}: {exc.strerror}",
                    Fix("Check the file's permissions",
                        commands=(manual("ls", "-l", str(pth)),)),
                    pth=str(pth))
    meta = si.parse(text)
    if meta is None:
        return warn(f"{pth} exists but was not written by tts-doctor",
                    Fix("Inspect the file and remove it if it is a leftover; tts-doctor will "
                        "not overwrite it", commands=(manual("cat", str(pth)),)),
                    pth=str(pth))
    names = list(meta["shims"])
    root = str(meta.get("root", ""))
    details = {"pth": str(pth), "shims": names, "root": root, "doctor": meta.get("doctor"),
               "files": sorted(meta.get("files", {}))}
    damaged = si.verify(pth.parent, meta)
    if damaged:
        return fail(f"shims {', '.join(names)} are installed but their code is missing or "
                    f"damaged ({damaged[0]}{' ...' if len(damaged) > 1 else ''}): SciPy is "
                    "left unpatched", Fix("Reinstall the shims (rewrites their code), or "
                                          "remove them", commands=(_install(), _uninstall())),
                    damaged=damaged, **details)
    from tts_doctor.shims import _hooks

    if not meta.get("files"):
        return warn(f"shims {', '.join(names)} were installed by an older tts-doctor and load "
                    f"their code from its folder ({root}): removing or moving that tts-doctor "
                    "switches them off", Fix("Reinstall them: the shims' code is then copied "
                                             "into this environment",
                                             commands=(_install(),)), **details)
    if _hooks.disabled():
        return ok(f"shims {', '.join(names)} installed; disabled in this process by "
                  "TTS_DOCTOR_SHIMS=0", active=False, **details)
    finder = _hooks.active_finder()
    if finder is None:
        return warn(f"shims {', '.join(names)} are installed in {pth} but not active in a "
                    "new process (site did not run the .pth: is site-packages on the path?)",
                    Fix("Reinstall the shims, and check that python runs without -S",
                        commands=(_install(),)),
                    active=False, **details)
    if dists.version("scipy") is None:
        return warn(f"shims {', '.join(names)} are installed but SciPy is not: nothing to "
                    "patch", Fix("Remove the shims", commands=(_uninstall(),)),
                    active=True, removable=names, **details)
    from tts_doctor.shims import _scan

    state = si.problems(_scan.scan({"modules": si.name_table()}))
    removable = [n for n in names if state.get(n, {}).get("exists") is False]
    patched = {m: sorted(n for n, v in list(vars(mod).items())
                         if getattr(v, "__tts_doctor_shim__", None))
               for m, mod in list(sys.modules.items()) if m in _hooks.WATCH}
    patched = {m: n for m, n in patched.items() if n}
    details.update(active=True, patched=patched, removable=removable,
                   errors=list(getattr(finder, "errors", [])))
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

