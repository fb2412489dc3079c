"""Real broken environments for tests: virtual environments built from real packages.

An `EnvSpec` names a Python version and pip steps; `build(spec)` makes the venv once and
reuses it (within a run and across runs) from `.cache/test-envs/<name>-<hash>`, where the hash
covers the spec, so changing a spec rebuilds it. A file lock makes parallel test workers wait
for one build instead of racing. pip's HTTP cache would normally share downloads, but this
registry answers with no-store headers, so the built environments are the cache.

Steps are pip argument lists run as `pip --python <venv python> ...` by the host's pip, so the
environments contain only what the test put there (not even pip, unless asked). `{site}` in a
step is replaced with the venv's site-packages folder (to install wheels a package bundles,
as cosyvoice-ttsfrd's post-install does).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "constraints.txt"
CACHE = Path(os.environ.get("TTS_DOCTOR_TEST_CACHE", REPO / ".cache" / "test-envs"))
HARNESS_VERSION = "3"


class EnvUnavailable(Exception):
    """The environment cannot be built here (no such Python, registry unreachable)."""


@dataclass(frozen=True)
class EnvSpec:
    name: str
    python: str = "3.11"
    steps: tuple[tuple[str, ...], ...] = ()
    with_pip: bool = False
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def key(self) -> str:
        blob = json.dumps([HARNESS_VERSION, self.name, self.python, self.steps, self.with_pip,
                           CONSTRAINTS.read_text()])
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Venv:
    path: Path
    spec: EnvSpec

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site(self) -> Path:
        out = subprocess.run([str(self.python), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    def run(self, *args: str, check: bool = True, env: Optional[dict[str, str]] = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), *args], capture_output=True, text=True,
                              check=check, env=env, timeout=timeout)

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return pip(self.python, *args, check=check)

    def freeze(self) -> list[str]:
        return sorted(self.pip("freeze", "--all").stdout.splitlines())


def find_python(version: str) -> Path:
    """A pyenv interpreter for `version` ('3.10'), or the running one if it matches."""
    if ".".join(map(str, sys.version_info[:2])) == version:
        return Path(sys.executable)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        hits = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
        if hits:
            return Path(hits[-1])
    found = shutil.which(f"python{version}")
    if found:
        probe = subprocess.run([found, "-c", "print(1)"], capture_output=True)
        if probe.returncode == 0:
            return Path(found)
    raise EnvUnavailable(f"no Python {version} on this machine")


def pip(python: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The host's pip acting on another interpreter (pip >= 22.3 `--python`)."""
    cmd = [sys.executable, "-m", "pip", "--python", str(python), *args]
    if args and args[0] == "install":
        cmd[6:6] = ["-c", str(CONSTRAINTS), "--disable-pip-version-check", "-q"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if check and out.returncode != 0:
        raise EnvUnavailable(f"pip {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(spec: EnvSpec) -> Venv:
    """Build (or reuse) the environment for `spec`."""
    target = CACHE / f"{spec.name}-{spec.key()}"
    ready = target / ".tts-doctor-ready"
    with _locked(CACHE / f"{spec.name}.lock"):
        if ready.exists():
            return Venv(target, spec)
        for stale in CACHE.glob(f"{spec.name}-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        base = find_python(spec.python)
        t0 = time.time()
        args = [str(base), "-m", "venv", str(target)]
        if not spec.with_pip:
            args.insert(3, "--without-pip")
        subprocess.run(args, check=True, capture_output=True)
        venv = Venv(target, spec)
        try:
            site = str(venv.site)
            for step in spec.steps:
                venv.pip(*(s.replace("{site}", site) for s in step))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        ready.write_text(f"built in {time.time() - t0:.1f} s\n")
        return venv
