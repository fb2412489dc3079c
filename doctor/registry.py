"""The probe registry: a decorator that names a probe, and the selection of probes to run.

A probe is a plain function `probe(ctx) -> Result | None` registered with `@probe(...)`. It
imports heavy modules inside its body only, so that importing every probe module stays cheap
(`tts-doctor check --list-checks` must not import torch, numpy or scipy). Returning None means
"not applicable here": no finding is reported. Whether the recipe uses the component a probe
judges is not the probe's business: it declares `component=` and the runner applies the one
rule of doctor/applicability.py before running it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from tts_doctor.errors import UserError
from tts_doctor.finding import Fix, Result

# Categories in report order, with the title shown on the category line.
CATEGORIES: dict[str, str] = {
    "python": "Python and platform",
    "packages": "Installed packages",
    "torch": "PyTorch",
    "cuda": "CUDA",
    "vram": "GPU memory",
    "torchaudio": "torchaudio",
    "numpy": "NumPy",
    "numba": "numba and resampy",
    "scipy": "SciPy",
    "ttsfrd": "ttsfrd and KAN-TTS",
    "frontend": "Text frontends",
    "audio": "Audio I/O",
    "onnxruntime": "ONNX Runtime",
    "extensions": "Compiled extensions",
    "compat": "Library compatibility",
    "model": "Model cache",
    "shims": "tts-doctor shims",
    # findings of `tts-doctor smoke`
    "smoke": "Smoke synthesis",
    "output": "Synthesized audio",
}


@dataclass(frozen=True)
class Context:
    """What a probe may read besides the environment: the recipe and user options.

    Both are plain JSON-able data so the context can travel to the isolated worker.
    """

    recipe: Optional[dict[str, Any]] = None
    options: dict[str, Any] = field(default_factory=dict)

    def _requirement(self, component: str) -> Any:
        if not self.recipe:
            return None
        value = (self.recipe.get("requires") or {}).get(component)
        if isinstance(value, dict):
            value = value.get("need", "required")
        return value

    def needs(self, component: str) -> Optional[str]:
        """The recipe's requirement for a component: 'required', 'optional', 'absent', 'shim'
        or None (no recipe, or the recipe does not mention it). A version specifier
        (`torch = ">=2.1"`) means 'required'; `version_range` gives the range itself."""
        value = self._requirement(component)
        if value is None:
            return None
        if value is True:
            return "required"
        if value is False:
            return "absent"
        value = str(value)
        return value if value in ("required", "optional", "absent", "shim") else "required"

    def version_range(self, component: str) -> Optional[str]:
        """The version specifier a recipe gives for a component, if it gives one."""
        value = self._requirement(component)
        if isinstance(value, str) and value not in ("required", "optional", "absent", "shim"):
            return value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "options": self.options}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Context:
        return cls(recipe=d.get("recipe"), options=dict(d.get("options") or {}))


ProbeFunc = Callable[..., Optional[Result]]
CollectFunc = Callable[[Context], Any]


@dataclass(frozen=True)
class ProbeSpec:
    """A registered probe: its stable id, category, and where it must run."""

    id: str
    category: str
    func: ProbeFunc
    title: str
    isolated: bool = False
    families: tuple[str, ...] = ()
    timeout: Optional[float] = None
    crash_fix: Optional[Fix] = None
    # computes the crash advice for the interpreter that crashed (its installed versions)
    crash_fix_for: Optional[Callable[[str], Optional[Fix]]] = None
    # a split probe: `collect(ctx)` observes where the probe runs (the worker when isolated)
    # and returns JSON-able facts; `func(ctx, facts)` judges them in the doctor's process
    collect: Optional[CollectFunc] = None
    # the recipe components the probe judges: whether it applies (doctor/applicability.py)
    components: tuple[str, ...] = ()
    # a split probe whose facts the memo may keep between checks (tts_doctor.memo)
    memo: bool = False
    # the collector may wait for the usage index (scan.index): it runs after the lane's other
    # probes, which observe meanwhile (runner.lanes)
    reads_index: bool = False

    @property
    def split(self) -> bool:
        """True when the probe collects facts and judges them apart (see `probe`)."""
        return self.collect is not None

    def crash_advice(self, python: str) -> Optional[Fix]:
        """The fix shown when this probe's process dies: `crash_fix_for(python)` when the
        probe has one and it answers, else the static `crash_fix`."""
        if self.crash_fix_for is not None:
            try:
                found = self.crash_fix_for(python)
            except Exception:
                found = None
            if found is not None:
                return found
        return self.crash_fix


_REGISTRY: dict[str, ProbeSpec] = {}


def probe(
    id: str,
    *,
    title: str,
    isolated: bool = False,
    families: tuple[str, ...] = (),
    timeout: Optional[float] = None,
    crash_fix: Optional[Fix] = None,
    crash_fix_for: Optional[Callable[[str], Optional[Fix]]] = None,
    collect: Optional[CollectFunc] = None,
    component: Union[str, tuple[str, ...]] = (),
    memo: bool = False,
    reads_index: bool = False,
) -> Callable[[ProbeFunc], ProbeFunc]:
    """Register a probe under a stable id `category.name`.

    `isolated=True` means the probe imports native code (torch, scipy, ttsfrd...) and must run
    in the worker process, where a crash or hang cannot take the doctor down. `families` names
    the rows of the failure catalogue (FAILURES.md) the probe detects. `crash_fix` is the advice
    shown when the probe's process dies (a segfault while importing torch is itself a verdict);
    `crash_fix_for(python)` computes it for the interpreter that died, when it can.

    `collect` splits the probe in two (docs/DEVELOPING.md, "Collect and judge"):
    `collect(ctx) -> facts` observes only and runs where the probe runs (for an isolated
    probe: in the worker, under the diagnosed interpreter, standard library only), and the
    decorated function becomes the judge, `func(ctx, facts) -> Result | None`, a pure function
    of the context and the facts that runs in the doctor's own process. The facts travel as
    JSON, so `check --save-facts` can keep them and `check --facts` can judge them again later,
    with a newer doctor, without touching the machine. Without `collect`, `func(ctx)` does both
    and a facts file can only replay its finding.
    `component` names the recipe component(s) the probe judges (`"scipy"`, `("transformers",
    "torch")`, `"gpu"`): the runner decides from the recipe whether the probe applies
    (doctor/applicability.py), so the probe itself never checks for `absent`.
    `memo=True` (split probes only) lets the facts memo keep the facts between checks and
    judge them again while nothing they depend on has changed (tts_doctor.memo): for facts
    that installed code and files decide. A collector that tests a path for existence
    declares it with `tts_doctor.footprint.depends`; GPU state, undeclared data folders and
    programs' runs are never memo facts. `reads_index=True` says the collector may wait for
    the usage index (tts_doctor.scan.index): the runner puts it after its lane's other
    probes, which observe while the index is built.
    """
    category = id.split(".", 1)[0]
    if not category or "." not in id:
        raise ValueError(f"probe {id!r}: ids are 'category.name'")
    # Plugins may bring their own categories; they are reported after the built-in ones.
    CATEGORIES.setdefault(category, category)
    components = (component,) if isinstance(component, str) else tuple(component)

    def register(func: ProbeFunc) -> ProbeFunc:
        if id in _REGISTRY:
            raise ValueError(f"probe {id!r} registered twice")
        _REGISTRY[id] = ProbeSpec(id, category, func, title, isolated, families, timeout,
                                  crash_fix, crash_fix_for, collect, components,
                                  memo and collect is not None, reads_index)
        return func

    return register


PLUGIN_GROUP = "tts_doctor.probes"
PLUGIN_ENV = "TTS_DOCTOR_PLUGINS"
plugin_errors: list[str] = []
_loaded = False


def _plugin_modules() -> list[tuple[str, Callable[[], Any]]]:
    """Probe plugins: entry points in group tts_doctor.probes, and modules named in
    TTS_DOCTOR_PLUGINS (comma-separated), for probes of your own without a package."""
    import importlib
    import os

    out: list[tuple[str, Callable[[], Any]]] = []
    try:
        import importlib.metadata as md
    except ImportError:  # Python 3.7 (the worker in an old target): no entry points there
        md = None  # type: ignore[assignment]
    eps: list[Any] = []
    if md is not None:
        try:
            eps = list(md.entry_points(group=PLUGIN_GROUP))  # type: ignore[call-arg]
        except TypeError:  # Python 3.8, 3.9
            eps = list(md.entry_points().get(PLUGIN_GROUP, []))  # type: ignore[attr-defined]
    out += [(f"entry point {ep.name} ({ep.value})", ep.load) for ep in eps]
    for name in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        out.append((f"{PLUGIN_ENV} module {name}",
                    lambda name=name: importlib.import_module(name)))
    return out


def load_modules(modules: list[str]) -> dict[str, ProbeSpec]:
    """Import only these probe modules (a worker needs only its probes' modules), and the
    plugins; return the registry."""
    import importlib

    for name in modules:
        importlib.import_module(name)
    _load_plugins()
    return _REGISTRY


def load_all() -> dict[str, ProbeSpec]:
    """Import every probe module (cheap: no heavy imports) and return the registry.

    Plugins load after the built-in probes; one that fails to import is recorded in
    `plugin_errors` and skipped, never fatal.
    """
    import importlib

    from tts_doctor.probes import MODULES

    for name in MODULES:
        importlib.import_module(f"tts_doctor.probes.{name}")
    _load_plugins()
    return _REGISTRY


def _load_plugins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for where, load in _plugin_modules():
            try:
                load()
            except (Exception, SystemExit) as exc:  # a plugin must not end the doctor
                plugin_errors.append(f"{where}: {type(exc).__name__}: {exc}")


def all_probes() -> list[ProbeSpec]:
    """Every probe, in report order: by category, then registration order."""
    specs = list(load_all().values())
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(specs, key=lambda s: order[s.category])


class SelectionError(UserError, ValueError):
    """A pattern in --only/--skip matched no probe id or category."""


def _matches(spec: ProbeSpec, pattern: str) -> bool:
    return fnmatch.fnmatchcase(spec.id, pattern) or fnmatch.fnmatchcase(spec.category, pattern)


def select(only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[ProbeSpec]:
    """The probes to run: those matching any `only` pattern (all if none), minus `skip`.

    Patterns are probe ids or categories, with shell globs (`cuda.*`, `scipy`). A pattern
    that matches nothing is an error: a typo must not silently run zero checks.
    """
    specs = all_probes()
    for pattern in (*only, *skip):
        if not any(_matches(s, pattern) for s in specs):
            raise SelectionError(f"no probe or category matches {pattern!r} "
                                 "(see `tts-doctor check --list-checks`)")
    if only:
        specs = [s for s in specs if any(_matches(s, p) for p in only)]
    return [s for s in specs if not any(_matches(s, p) for p in skip)]
