"""Package consistency: the verdict of `pip check`, computed from metadata without pip.

Spawning pip costs about a second and needs pip in the environment; reading the metadata of
every installed distribution costs a few milliseconds and gives the same answer.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shlex
from pathlib import Path
from typing import Any, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from tts_doctor import dists
from tts_doctor import target as targets
from tts_doctor.finding import Fix, Result, fail, ok, steps, warn
from tts_doctor.registry import Context, probe


def _requirements(lines: list[str]) -> list[Requirement]:
    """The requirements that apply to the diagnosed interpreter (markers evaluated for it,
    extras left out)."""
    out = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            try:
                if not req.marker.evaluate({**targets.marker_environment(), "extra": ""}):
                    continue
            except Exception:
                continue
        out.append(req)
    return out


def installed() -> list[dict[str, Any]]:
    """The first distribution of each name on the search path: name, version, its
    Requires-Dist lines and Requires-Python (metadata only)."""
    out = []
    for _key, dist in sorted(dists.all_distributions().items()):
        out.append({"name": dist.metadata["Name"], "version": dist.version,
                    "requires": list(dist.requires or []),
                    "requires_python": dist.metadata.get("Requires-Python")})
    return out


def unmet_requirements(index: list[dict[str, Any]]
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(missing, conflicts) over the installed distributions, as `pip check` reports them."""
    versions = {dists.canonical(d["name"]): d["version"] for d in index}
    missing: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for dist in index:
        for req in _requirements(dist["requires"]):
            have = versions.get(dists.canonical(req.name))
            if have is None:
                missing.append({"package": dist["name"], "version": dist["version"],
                                "requires": str(req)})
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                conflicts.append({"package": dist["name"], "version": dist["version"],
                                  "requires": str(req), "installed": have})
    return missing, conflicts


def collect_installed(ctx: Context) -> dict[str, Any]:
    return {"distributions": installed()}


def _req_text(req: str) -> str:
    r = Requirement(req)
    r.marker = None
    return str(r)


@probe("packages.consistency", title="Requirements of installed distributions are met (pip check)",
       memo=True, collect=collect_installed)
def consistency(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that every installed distribution's requirements are met, as `pip check` would.

    Reads the `Requires-Dist` metadata of the first distribution of each name on sys.path (no pip,
    no imports), drops requirements whose markers do not apply here (extras included), and tests
    each against the installed version. A requirement that is not installed fails; a version outside
    the requested range, with nothing missing, warns; otherwise `ok` with the number of
    distributions. The fix is one `pip install` of every unmet requirement, markers dropped.
    """
    missing, conflicts = unmet_requirements(facts["distributions"])
    count = len(facts["distributions"])
    if not missing and not conflicts:
        return ok(f"{count} distributions, every requirement met", distributions=count)
    lines = [f"{m['package']} {m['version']} requires {m['requires']}, which is not installed"
             for m in missing]
    lines += [f"{c['package']} {c['version']} requires {c['requires']}, but "
              f"{Requirement(c['requires']).name} {c['installed']} is installed"
              for c in conflicts]
    wanted = sorted({_req_text(m["requires"]) for m in missing + conflicts})
    fix = Fix("Install what is missing, in versions every installed package accepts "
              "(a package that asks for an old version: pin the other one, or patch its "
              "requirement; no fixed release of it is known here).",
              commands=(dists.pip_install(*wanted),))
    details = {"distributions": count, "missing": missing, "conflicts": conflicts,
               "problems": lines}
    first = lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
    if missing:
        return fail(first, fix, **details)
    return warn(first, fix, **details)


def collect_copies(ctx: Context) -> dict[str, Any]:
    """Every distribution's metadata on the search path, duplicates included, in path order."""
    copies = []
    for dist in dists.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            path = getattr(dist, "_path", None)
            copies.append({"name": name, "version": dist.version,
                           "location": str(path) if path else "?"})
    return {"copies": copies}


@probe("packages.duplicates", title="No distribution is installed twice on sys.path",
       collect=collect_copies)
def duplicates(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that no distribution is installed more than once on the search path.

    Lists the metadata of every distribution on sys.path (the current folder left out), duplicates
    included, grouped by normalised name. A name found more than once warns, with the version and
    folder of each copy of the first such name and a count of the others; otherwise `ok`. The fix
    uninstalls every doubled name, then reinstalls it once at the version of the copy that comes
    first on the path.
    """
    seen: dict[str, list[dict[str, str]]] = {}
    for copy in facts["copies"]:
        seen.setdefault(dists.canonical(copy["name"]), []).append(
            {"version": copy["version"], "location": copy["location"]})
    doubles = {n: copies for n, copies in seen.items() if len(copies) > 1}
    if not doubles:
        return ok("no distribution is installed twice")
    name, copies = next(iter(sorted(doubles.items())))
    where = ", ".join(f"{c['version']} at {os.path.dirname(c['location'])}" for c in copies)
    fix = Fix("Two copies of a distribution: the first on sys.path wins and its files may be "
              "mixed with the other's. Uninstall until none is left, then install once.",
              commands=steps(*dict.fromkeys(
                  [dists.pip_uninstall(n) for n in doubles] +
                  [dists.pip_install(f"{n}=={doubles[n][0]['version']}") for n in doubles])))
    return warn(f"{name} is installed {len(copies)} times ({where})"
                + (f"; {len(doubles) - 1} more doubled" if len(doubles) > 1 else ""),
                fix, duplicates=doubles)


@probe("packages.python-requires", title="Installed distributions accept this Python",
       families=("M5", "T8"), collect=collect_installed)
def python_requires(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that the `Requires-Python` of every installed distribution accepts this interpreter.

    Tests the diagnosed interpreter's version against each installed distribution's
    `Requires-Python` metadata (ranges that do not parse are ignored). Any that reject it
    warn, with their count and up to three names and ranges (installed for another Python, or with
    --ignore-requires-python); otherwise `ok`. The fix advises an interpreter they accept or
    releases that accept this one, with `pip uninstall` commands for up to five of them.
    """
    here = targets.current().version
    bad = []
    for dist in facts["distributions"]:
        spec = dist.get("requires_python")
        if not spec:
            continue
        try:
            accepted = SpecifierSet(spec).contains(here, prereleases=True)
        except InvalidSpecifier:
            continue
        if not accepted:
            bad.append({"package": dist["name"], "version": dist["version"],
                        "requires_python": spec})
    if not bad:
        return ok(f"every installed distribution accepts Python {here}")
    fix = Fix(f"These were installed for another Python (or with --ignore-requires-python) "
              f"and may fail here: use an interpreter they accept, or versions that accept "
              f"Python {here}.",
              commands=steps(*(dists.pip_uninstall(b["package"]) for b in bad[:5])))
    names = ", ".join(f"{b['package']} ({shlex.quote(b['requires_python'])})" for b in bad[:3])
    return warn(f"{len(bad)} distribution(s) do not accept Python {here}: {names}", fix,
                packages=bad)


def _pinned(ctx: Context) -> dict[str, Any]:
    return ((ctx.recipe or {}).get("requires") or {}).get("packages") or {}


def collect_pinned(ctx: Context) -> dict[str, Any]:
    """The installed version (or None) of each package the recipe pins."""
    return {"installed": {package: dists.version(package) for package in sorted(_pinned(ctx))}}


@probe("packages.recipe", title="Packages a recipe pins are installed, in its ranges",
       collect=collect_pinned)
def recipe_packages(ctx: Context, facts: dict[str, Any]) -> Result | None:
    """Checks that the packages the recipe pins in `requires.packages` are installed, in range.

    Gives no finding without a recipe or when it pins no packages. Reads each package's installed
    version from metadata and tests it against the recipe's specifier: a package that is not
    installed fails, an installed one outside its range (none missing) warns, otherwise `ok`. The
    fix is one `pip install` of every missing or out-of-range package with the recipe's specifier.
    """
    wanted = _pinned(ctx)
    if not wanted:
        return None
    name = (ctx.recipe or {}).get("name", "the recipe")
    missing, outside, fine = [], [], []
    for package, spec in sorted(wanted.items()):
        have = facts["installed"].get(package)
        if have is None:
            missing.append({"package": package, "wanted": spec})
        elif spec and not SpecifierSet(spec).contains(have, prereleases=True):
            outside.append({"package": package, "wanted": spec, "installed": have})
        else:
            fine.append({"package": package, "installed": have})
    details = {"missing": missing, "outside": outside, "ok": fine}
    if not missing and not outside:
        return ok(f"{len(fine)} package(s) {name} names are installed in range", **details)
    reqs = [f"{m['package']}{m['wanted']}" for m in missing + outside]
    fix = Fix(f"Install the versions {name} was published with (other versions are untested "
              "upstream).", commands=(dists.pip_install(*reqs),))
    if missing:
        listed = ", ".join(f"{m['package']}{m['wanted']}" for m in missing)
        return fail(f"{name} needs {listed}, not installed", fix, **details)
    listed = ", ".join(f"{o['package']} {o['installed']} (wants {o['wanted']})" for o in outside)
    return warn(f"outside {name}'s tested range: {listed}", fix, **details)


def _top_level(dist: md.Distribution) -> dict[str, dict[str, Any]]:
    """The import names a distribution installs, from its RECORD: top-level name ->
    {"package": a regular package (has __init__), "files": the paths it recorded there}.
    Without a RECORD, top_level.txt names what it installs (files unknown)."""
    out: dict[str, dict[str, Any]] = {}
    files = dist.files
    if files is None:
        for name in (dist.read_text("top_level.txt") or "").split():
            out.setdefault(name, {"package": True, "files": set()})
        return out
    for f in files:
        parts = f.parts
        if not parts or parts[0].startswith("..") or parts[0] == "__pycache__":
            continue
        top = parts[0]
        if top.endswith((".dist-info", ".egg-info", ".data", ".pth")) or \
                top.startswith("__editable__"):
            continue
        if len(parts) == 1:
            if not top.endswith((".py", ".so", ".pyd")):
                continue
            name = top.split(".", 1)[0]
            entry = out.setdefault(name, {"package": True, "files": set()})
        else:
            entry = out.setdefault(top, {"package": False, "files": set()})
            if len(parts) == 2 and parts[1].split(".", 1)[0] == "__init__":
                entry["package"] = True
        if "__pycache__" not in parts:
            entry["files"].add("/".join(parts))
    return out


def _on_disk(dist: md.Distribution, relpath: str) -> Optional[bool]:
    """Whether the file at `relpath` is the one `dist` installed (its RECORD hash matches the
    bytes on disk); None when the RECORD has no hash for it."""
    import base64
    import hashlib

    for f in dist.files or ():
        recorded = getattr(f, "hash", None)  # the stdlib RECORD reader keeps no hashes
        if "/".join(f.parts) != relpath or recorded is None:
            continue
        try:
            data = Path(str(dist.locate_file(f))).read_bytes()
        except OSError:
            return False
        digest = hashlib.new(recorded.mode, data).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == recorded.value
    return None


def shared_import_names() -> list[dict[str, Any]]:
    """Import names that two or more installed distributions both install as a regular
    package or with common files: each with the owners, whose files are on disk now, and how
    many files they both wrote."""
    owners: dict[str, list[tuple[md.Distribution, dict[str, Any]]]] = {}
    for _key, dist in sorted(dists.all_distributions().items()):
        for name, entry in _top_level(dist).items():
            owners.setdefault(name, []).append((dist, entry))
    out = []
    for name, owned in sorted(owners.items()):
        if len(owned) < 2:
            continue
        regular = [d for d, e in owned if e["package"]]
        common = set.intersection(*(e["files"] for _, e in owned)) if all(
            e["files"] for _, e in owned) else set()
        # a namespace package (no __init__) shared by plugins is the design, not a clash
        if len(regular) < 2 and not common:
            continue
        probe_file = next((p for p in sorted(common) if p.split("/")[-1].startswith(
            "__init__.")), None) or (sorted(common)[0] if common else None)
        rows = []
        for dist, _entry in owned:
            row = {"distribution": dist.metadata["Name"], "version": dist.version}
            if probe_file:
                row["files_on_disk"] = _on_disk(dist, probe_file)
            rows.append(row)
        out.append({"name": name, "owners": rows, "shared_files": len(common),
                    "checked_file": probe_file})
    return out


def collect_shared(ctx: Context) -> dict[str, Any]:
    return {"clashes": shared_import_names()}


@probe("packages.shared-names", title="No import name is installed by two distributions",
       memo=True, families=("F13", "O2"), collect=collect_shared)
def shared_names(ctx: Context, facts: dict[str, Any]) -> Result:
    """Checks that no top-level import name is installed by two distributions at once.

    Reads the RECORD of every installed distribution (top_level.txt where there is none) and
    groups the top-level names they install (packages with an `__init__`, modules,
    extensions). A name that two distributions install as a regular package, or where they
    recorded the same files, warns (phonemizer and phonemizer-fork, opencv-python and
    opencv-python-headless, onnxruntime and onnxruntime-gpu): the files on disk are whichever
    was installed last, mixed with the other's, and uninstalling either removes the name. The
    RECORD hashes tell whose `__init__` is on disk. Namespace packages that plugins share (no
    `__init__`, no common file) are fine. The fix uninstalls every owner and reinstalls the one
    whose files are on disk, at its installed version.
    """
    clashes = [dict(c) for c in facts["clashes"]]
    if not clashes:
        return ok("every import name is installed by one distribution")
    lines = []
    uninstall: list[str] = []
    reinstall: list[str] = []
    for c in clashes:
        names = " and ".join(f"{o['distribution']} {o['version']}" for o in c["owners"])
        live = [o for o in c["owners"] if o.get("files_on_disk")]
        c["on_disk"] = live[0]["distribution"] if len(live) == 1 else None
        where = (f"; the files on disk are {c['on_disk']}'s" if c["on_disk"]
                 else "; the files on disk are a mix of them" if c["checked_file"] else "")
        lines.append(f"`{c['name']}` is installed by {names}{where}")
        uninstall += [o["distribution"] for o in c["owners"]]
        keep = next((o for o in c["owners"] if o["distribution"] == c["on_disk"]),
                    c["owners"][-1])
        reinstall.append(f"{keep['distribution']}=={keep['version']}")
    fix = Fix("Keep one distribution per import name: the last install overwrote the other's "
              "files, and uninstalling either one later removes the name for both. Uninstall "
              "them all, then install the one you want (here: the one whose files are on "
              "disk now; choose the other if that is what your stack asks for, e.g. kokoro/"
              "misaki want phonemizer-fork, headless servers opencv-python-headless).",
              commands=steps(dists.pip_uninstall(*dict.fromkeys(uninstall)),
                             dists.pip_install(*dict.fromkeys(reinstall))))
    summary = lines[0] + (f" (and {len(lines) - 1} more name(s))" if len(lines) > 1 else "")
    return warn(summary, fix, clashes=clashes)
