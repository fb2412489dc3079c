"""PyTorch's wheel indexes: which index a build came from, the command that reinstalls the
same build, the torchaudio line that pairs with a torch release."""

from __future__ import annotations

import re
from typing import Optional

from tts_doctor import dists
from tts_doctor.finding import steps

INDEX = "https://download.pytorch.org/whl/{tag}"


def _line(version: Optional[str]) -> tuple[int, ...]:
    return (dists.release(version) or (0, 0))[:2]


def torchaudio_line(torch_version: Optional[str]) -> Optional[str]:
    """The torchaudio release line that pairs with a torch release: torch 2.X <-> torchaudio
    2.X, torch 1.X <-> torchaudio 0.X."""
    line = _line(torch_version)
    if line[0] == 1:
        return f"0.{line[1]}"
    if line[0] >= 2:
        return f"{line[0]}.{line[1]}"
    return None


def _reinstall(torch_req: str, index: Optional[str], torchaudio_req: Optional[str], *,
               torchaudio_installed: Optional[bool] = None) -> tuple[str, ...]:
    """Uninstall torch (and torchaudio) and install them from `index`. Whether torchaudio is
    installed: `torchaudio_installed` (a judge passes what was collected), else asked of the
    environment."""
    if torchaudio_installed is None:
        torchaudio_installed = dists.version("torchaudio") is not None
    names, reqs = ["torch"], [torch_req]
    if torchaudio_installed:
        names.append("torchaudio")
        reqs.append(torchaudio_req or "torchaudio")
    extra = f"--index-url {index}" if index else ""
    return steps(dists.pip_uninstall(*names), dists.pip_install(*reqs, extra=extra))


_LOCAL_BUILD = re.compile(r"cpu|cu\d{2,3}|rocm\d+(?:\.\d+)*")


def index_for(version: Optional[str]) -> Optional[str]:
    """The download.pytorch.org index that publishes the torch build with this version's
    local tag (`2.13.0+cpu` -> .../whl/cpu, `+cu128` -> .../whl/cu128, `+rocm6.4` ->
    .../whl/rocm6.4); None for a plain version (PyPI's build) or a tag no index serves."""
    local = dists.local_tag(version)
    return INDEX.format(tag=local) if local and _LOCAL_BUILD.fullmatch(local) else None


def same_build_commands(version: str, *, torchaudio_installed: Optional[bool] = None
                        ) -> tuple[str, ...]:
    """Reinstall the torch build that is installed, `version` as its metadata says
    (`2.13.0+cu128`): uninstall torch (and torchaudio), then install the same release from the
    index that publishes that build (PyPI for a plain version), with torchaudio's matching
    line. PyPI has no `+cpu` or `+cu128` files, so a bare `torch==2.13.0+cpu` cannot install.
    `torchaudio_installed`: as collected (a judge must pass it); None asks the environment."""
    torch_req, ta_req = _same_torch(version)
    return _reinstall(torch_req, index_for(version), ta_req,
                      torchaudio_installed=torchaudio_installed)


def _same_torch(version: str) -> tuple[str, Optional[str]]:
    """Requirements that keep torch's release and pair torchaudio with it."""
    line = torchaudio_line(version)
    return (f"torch=={'.'.join(map(str, dists.release(version) or ()))}",
            f"torchaudio=={line}.*" if line else None)
