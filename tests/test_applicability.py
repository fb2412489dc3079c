"""Applicability as data: a probe declares the recipe components it judges
(`@probe(..., component="scipy")`) and one rule (doctor/applicability.py), applied by the runner,
decides whether it runs. Through the real CLI with real plugin probes that have no recipe check
of their own, the built-in probes' declarations, and a drift test over the probe modules."""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from pathlib import Path

import pytest
from tts_doctor import applicability
from tts_doctor.recipe import COMPONENTS
from tts_doctor.registry import Context, all_probes

from tests.conftest import PLUGINS, REPO
from tests.harness import envs
from tests.harness.recipes import write_recipe

PLUGIN_IDS = ("applies.scipy-worker", "applies.scipy-here", "applies.gpu", "applies.pair",
              "applies.toolchain", "applies.nothing")


@pytest.fixture
def plugin_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "TTS_DOCTOR_PLUGINS": "component_probes"}


def _run(cli, env, marker: Path, *args: str):
    marker.mkdir(exist_ok=True)
    r = cli("check", "--json", "--only", "applies", "--set", f"applies.marker={marker}", *args,
            env=env)
    assert r.returncode == 0, r
    found = {f["id"] for f in r.json["findings"]}
    ran = {p.name for p in marker.iterdir()}
    return found, ran


def test_the_rule_is_applied_from_the_declarations_before_the_probe_runs(cli, plugin_env,
                                                                        tmp_path):
    # no recipe: everything runs but the opt-in component
    found, ran = _run(cli, plugin_env, tmp_path / "none")
    assert found == ran == set(PLUGIN_IDS) - {"applies.toolchain"}
    # scipy absent, gpu false (absent), transformers absent: those probes are not even started
    recipe = write_recipe(tmp_path / "r.toml", 'scipy = "absent"\ngpu = false\n'
                          'transformers = "absent"')
    found, ran = _run(cli, plugin_env, tmp_path / "absent", "--recipe", recipe)
    assert found == ran == {"applies.nothing"}
    # required and optional run; the opt-in component runs when the recipe needs it
    recipe = write_recipe(tmp_path / "q.toml", 'scipy = "required"\ncuda = "optional"\n'
                          'torch = "required"\ncuda-toolchain = "optional"')
    found, ran = _run(cli, plugin_env, tmp_path / "needed", "--recipe", recipe)
    assert found == ran == set(PLUGIN_IDS)
    # `cuda = "absent"` is the GPU component absent too (requires.gpu and .cuda together)
    recipe = write_recipe(tmp_path / "c.toml", 'cuda = "absent"')
    found, _ = _run(cli, plugin_env, tmp_path / "cuda", "--recipe", recipe)
    assert "applies.gpu" not in found and "applies.scipy-worker" in found


def _declaring(component: str) -> list[str]:
    return [s.id for s in all_probes() if component in s.components]


@pytest.mark.parametrize("component,line", [("scipy", 'scipy = "absent"'),
                                            ("torchaudio", 'torchaudio = "absent"'),
                                            ("numba", 'numba = "absent"'),
                                            ("gpu", "gpu = false")])
def test_a_component_marked_absent_drops_every_builtin_probe_that_judges_it(cli, tmp_path,
                                                                           component, line):
    ids = _declaring(component)
    assert len(ids) >= 2, ids  # the declarations exist
    only = ",".join([*ids, "python.platform"])
    plain = cli("check", "--json", "--only", only)
    assert len({f["id"] for f in plain.json["findings"]} & set(ids)) >= 2, plain
    recipe = write_recipe(tmp_path / "absent.toml", line)
    r = cli("check", "--json", "--only", only, "--recipe", recipe)
    assert r.returncode == 0, r
    assert {f["id"] for f in r.json["findings"]} == {"python.platform"}, r


@pytest.mark.venv
def test_a_missing_required_component_fails_with_the_install_fix(cli, make_env, tmp_path):
    # a bare environment: not installed is a skip, or a fail with the install fix when required
    venv = make_env(envs.BARE)
    ids = "numba.numpy,numba.jit,numba.cache,numba.resampy-filters,audio.sndfile,torch.build"
    plain = cli("check", "--json", "--python", str(venv.python), "--only", ids)
    assert {f["status"] for f in plain.json["findings"]} == {"skip"}, plain
    recipe = write_recipe(tmp_path / "n.toml", 'numba = "required"\nresampy = "required"\n'
                          'soundfile = "required"\ntorch = "required"')
    r = cli("check", "--json", "--python", str(venv.python), "--only", ids, "--recipe", recipe)
    assert r.returncode == 1, r
    want = {"numba.numpy": "numba", "numba.jit": "numba", "numba.cache": "numba",
            "numba.resampy-filters": "resampy", "audio.sndfile": "soundfile",
            "torch.build": "torch"}
    for probe_id, name in want.items():
        f = r.finding(probe_id)
        assert f["status"] == "fail", f
        assert f["summary"] == f"{name} is not installed, and the recipe needs it", f
        assert f["fix"]["commands"][0] == f"{venv.python} -m pip install {name}", f


@pytest.mark.parametrize("requires,components,expected", [
    ({}, ("scipy",), "run"),
    ({"scipy": "absent"}, ("scipy",), "skip"),
    ({"scipy": False}, ("scipy",), "skip"),
    ({"scipy": "optional"}, ("scipy",), "run"),
    ({"scipy": ">=1.11"}, ("scipy",), "required"),
    ({"scipy": "shim"}, ("scipy",), "required"),        # the SciPy shims forward to SciPy
    ({"ttsfrd": "shim"}, ("ttsfrd",), "run"),          # something else stands in
    ({"torch": "absent"}, ("transformers", "torch"), "skip"),
    ({"torch": "required"}, ("transformers", "torch"), "required"),
    ({}, ("cuda-toolchain",), "skip"),                 # opt-in
    ({"cuda-toolchain": "absent"}, ("cuda-toolchain",), "skip"),
    ({"cuda-toolchain": "optional"}, ("cuda-toolchain",), "run"),
    ({"pynini": "absent", "wetextprocessing": "required"}, ("wetextprocessing", "pynini"),
     "required"),
    ({"gpu": False}, ("gpu",), "skip"),
    ({"cuda": "absent"}, ("gpu",), "skip"),
    ({"gpu": "optional", "cuda": "absent"}, ("gpu",), "run"),
    ({"gpu": True}, ("gpu",), "required"),
    ({"gpu": False, "cuda": "required"}, ("gpu",), "required"),
    ({"scipy": "absent"}, (), "run"),
])
def test_the_rule(requires, components, expected):
    ctx = Context({"name": "r", "requires": requires})
    assert applicability.decide(components, ctx) == expected


# --- drift: every probe that reads a component from the recipe declares it ------------------

# Probes that read a component's need for a nuance of their verdict, not for whether they apply
# (documented in the probe): WeTextProcessing may be optional beside ttsfrd; ONNX Runtime
# expects the CUDA provider when the recipe needs a GPU; ttsfrd's fixes pick Python 3.8 when
# KAN-TTS is required; numba's JIT test uses resampy's kernel unless resampy is absent.
SECONDARY = {("frontend.wetext", "ttsfrd"), ("onnxruntime.providers", "gpu"),
             ("onnxruntime.install", "gpu"), ("numba.jit", "resampy")}
SECONDARY |= {(f"ttsfrd.{n}", "kantts") for n in ("origin", "platform", "libs", "version",
                                                   "engine", "resource")}
# categories whose probes all judge one component
CATEGORY_COMPONENT = {"torchaudio": "torchaudio", "scipy": "scipy", "ttsfrd": None,
                      "cuda": None, "onnxruntime": "onnxruntime", "vram": "gpu", "numba": None}


def _module_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _reads(func: ast.FunctionDef, functions: dict[str, ast.FunctionDef],
           seen: set[str]) -> set[str]:
    """Components a function reads from the recipe, following calls of functions of its
    module: ctx.needs("x"), _need(ctx, "x"), need(ctx, "x"), required(ctx, "x"),
    not_installed(ctx, "x", ...), decide(("x",), ctx), gpu_need(ctx)."""
    out: set[str] = set()
    for node in ast.walk(func):
        if not isinstance(node, ast.Call):
            continue
        name = (node.func.attr if isinstance(node.func, ast.Attribute)
                else node.func.id if isinstance(node.func, ast.Name) else "")
        literals = [a.value for a in node.args if isinstance(a, ast.Constant)
                    and isinstance(a.value, str)]
        for a in node.args:
            if isinstance(a, ast.Tuple):
                literals += [e.value for e in a.elts if isinstance(e, ast.Constant)]
        if name in ("needs", "_need", "need", "required", "not_installed", "decide",
                    "version_range", "_missing"):
            out.update(x for x in literals if x in COMPONENTS or x == "gpu")
        elif name == "gpu_need":
            out.add("gpu")
        if name in functions and name not in seen:
            seen.add(name)
            out |= _reads(functions[name], functions, seen)
    return out


def test_every_probe_that_reads_a_component_from_the_recipe_declares_it():
    known = set(COMPONENTS) | set(applicability.EXTRA_COMPONENTS)
    problems = []
    for spec in all_probes():
        if not spec.func.__module__.startswith("tts_doctor.probes."):
            continue
        assert set(spec.components) <= known, (spec.id, spec.components)
        source = Path(inspect.getsourcefile(spec.func))
        tree = ast.parse(source.read_text(encoding="utf-8"))
        functions = _module_functions(tree)
        func = functions[spec.func.__name__]
        for component in sorted(_reads(func, functions, {func.name})):
            if component not in spec.components and (spec.id, component) not in SECONDARY:
                problems.append(f"{spec.id} reads requires.{component} but does not declare "
                                f"component={component!r}")
        want = CATEGORY_COMPONENT.get(spec.category, "")
        if want is None and not spec.components:
            problems.append(f"{spec.id}: every {spec.category}.* probe judges a component")
        if want and want not in spec.components:
            problems.append(f"{spec.id}: declare component={want!r}")
    assert not problems, "\n".join(problems)


def test_no_probe_module_writes_its_own_absent_gate():
    # `if ctx.needs("x") == "absent": return None` is the runner's job now
    bad = []
    for path in sorted((REPO / "doctor" / "probes").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.If) and any(
                    isinstance(c, ast.Constant) and c.value == "absent"
                    for c in ast.walk(node.test)) and any(
                    isinstance(s, ast.Return) and (s.value is None or (
                        isinstance(s.value, ast.Constant) and s.value.value is None))
                    for s in node.body):
                bad.append(f"{path.name}:{node.lineno}: "
                           + textwrap.shorten(ast.unparse(node.test), 80))
    assert not bad, "declare component= instead:\n" + "\n".join(bad)


def test_the_probe_reference_says_when_each_probe_applies():
    text = (REPO / "docs" / "probes.md").read_text(encoding="utf-8")
    assert "Judges the recipe component `scipy`: no finding when a recipe marks it absent." \
        in text
    assert "Judges the recipe component `cuda-toolchain`: only when a recipe needs it." in text
