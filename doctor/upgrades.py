"""Fixes name versions that exist: "upgrade X" only when a release of X is known that no longer
has the problem, and the installed X is older than it.

Which release fixed what is the doctor's knowledge base: the probes' curated tables (SciPy's
`FIXED_IN`, NumPy's `KNOWN_FIXED` and `NUMPY2_BUILDS`, numba's NumPy support, gradio's fixed
release...). Where a table knows no such release, or the installed version already is that
release or newer (the problem is not one an upgrade removes), the fix says so in words,
`NO_FIXED_RELEASE`, and offers what works without one: a shim, a pin of the other library, or a
patch of the code. Never a bare `pip install --upgrade X` in the hope that a newer X is better.

Used by probe bodies that run in the worker (standard library only: versions compare through
`dists.parse`, which needs no `packaging` there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from tts_doctor import dists
from tts_doctor.finding import Command

NO_FIXED_RELEASE = "no fixed release known: shim, pin or patch"


@dataclass(frozen=True)
class Upgrade:
    """One package a fix might upgrade: what is installed, and the first release known to be
    without the problem (None: none is known)."""

    name: str
    installed: Optional[str]
    fixed_in: Optional[str]

    @property
    def available(self) -> bool:
        """A fixed release is known and newer than the installed one (or nothing is
        installed: `installed` None): upgrading to it is a real fix. An installed version
        that does not parse (or is unknown, '') is never called older."""
        if not self.fixed_in:
            return False
        want = dists.parse(self.fixed_in)
        if want is None:
            return False
        if self.installed is None:
            return True
        have = dists.parse(self.installed)
        return have is not None and have < want  # type: ignore[operator]

    def command(self) -> Optional[Command]:
        """`pip install 'X>=FIXED'` when an upgrade is available, else None."""
        if not self.available:
            return None
        return dists.pip_install(f"{dists.canonical(self.name)}>={self.fixed_in}")

    def words(self) -> str:
        """'upgrade librosa to 0.10.2 or newer' or 'librosa 0.9.2: no fixed release known:
        shim, pin or patch'."""
        if self.available:
            return f"upgrade {self.name} to {self.fixed_in} or newer"
        label = f"{self.name} {self.installed}" if self.installed else self.name
        return f"{label}: {NO_FIXED_RELEASE}"


def upgrade(name: str, installed: Optional[str], known: dict[str, str]) -> Upgrade:
    """The Upgrade of `name` from a table of first fixed releases keyed by canonical name."""
    return Upgrade(name, installed, known.get(dists.canonical(name)))


@dataclass(frozen=True)
class Plan:
    """The upgrades a fix can honestly offer, and the packages it cannot upgrade away."""

    upgrades: tuple[Upgrade, ...]

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(c for c in (u.command() for u in self.upgrades) if c is not None)

    @property
    def unfixed(self) -> tuple[Upgrade, ...]:
        return tuple(u for u in self.upgrades if not u.available)

    def words(self) -> str:
        """One clause for a fix description: the upgrades that exist, then the packages with
        no fixed release known (`NO_FIXED_RELEASE`)."""
        parts = []
        fixed = [u for u in self.upgrades if u.available]
        if fixed:
            parts.append("upgrade " + ", ".join(f"{u.name} to {u.fixed_in} or newer"
                                                for u in fixed))
        if self.unfixed:
            names = ", ".join(f"{u.name} {u.installed}" if u.installed else u.name
                              for u in self.unfixed)
            parts.append(f"for {names}: {NO_FIXED_RELEASE}")
        return "; ".join(parts)


def plan(upgrades: Iterable[Upgrade]) -> Plan:
    """A Plan of distinct packages, in the order given."""
    seen: set[str] = set()
    out = []
    for u in upgrades:
        key = dists.canonical(u.name)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return Plan(tuple(out))
