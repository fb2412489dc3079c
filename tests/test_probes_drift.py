"""compat.api-drift: the names reached code takes from other libraries, looked up in the
installed ones (doctor/probes/drift.py), on real code and real environments.

The real environment is torch 2.13 with transformers 4.57.1 (and modelscope 1.19.0), where
`QuantizedCacheConfig` is gone from transformers.cache_utils (index-tts#508); the application
folder (`--project`) is the code the deployment runs. A thin venv layered on it (a `.pth`
line, as in tests/test_reach.py) adds a package no distribution owns, whose unimported module
keeps a removed name: code outside the closure.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from tts_doctor import scan
from tts_doctor.probes import drift
from tts_doctor.registry import Context

from tests.harness import envs, envs_families, venvs
from tests.harness.apps import write_app

# --- what the scan records --------------------------------------------------------------------


def _refs(source: str, tops: set[str]) -> dict[str, list[object]]:
    """The rows of one file, by name; the same with and without the line prefilter."""
    whole = scan.refs_of(ast.parse(source), tops)
    assert scan.refs_of(ast.parse(source), tops, source.encode()) == whole
    return {row[1]: row for row in whole}


def test_the_scan_records_imports_and_attribute_chains_through_aliases():
    got = _refs(
        "import scipy.signal as ss\n"
        "from transformers import cache_utils as cu\n"
        "from . import sibling\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from transformers.cache_utils import OnlyForTypes\n"
        "def f(x: cu.AnnotationOnly) -> ss.AlsoAnnotation:\n"
        "    from transformers.cache_utils import QuantizedCacheConfig\n"
        "    return ss.hann(8), cu.OffloadedCache\n"
        "WINDOW = ss.windows.hann\n", {"scipy", "transformers"})
    assert got["scipy.signal.hann"][2:4] == ["attr", "function"]
    assert got["transformers.cache_utils.OffloadedCache"][2:4] == ["attr", "function"]
    assert got["transformers.cache_utils.QuantizedCacheConfig"][:4] == [
        8, "transformers.cache_utils.QuantizedCacheConfig", "from", "function"]
    assert got["transformers.cache_utils.QuantizedCacheConfig"][5] == 7  # in f, line 7
    assert got["scipy.signal.windows.hann"][2:4] == ["attr", "module"]
    assert got["scipy.signal"][2] == "import" and got["transformers.cache_utils"][2] == "from"
    assert not any("OnlyForTypes" in k or "Annotation" in k or "sibling" in k for k in got)


def test_guards_rebound_names_and_patchers_are_not_plain_uses():
    got = _refs(
        "import torch\n"
        "try:\n"
        "    from transformers.cache_utils import QuantizedCacheConfig\n"
        "except ImportError:\n"
        "    QuantizedCacheConfig = None\n"
        "def npu():\n"
        "    return hasattr(torch, 'npu') and torch.npu.is_available()\n"
        "def bf16():\n"
        "    if is_torch_npu_available():\n"
        "        return torch.npu.is_bf16_supported()\n"
        "    torch.backends.cudnn.benchmark = True\n"
        "    torch.made_here = 1\n"
        "    return torch.made_here\n"
        "def plain():\n"
        "    return torch.nonexistent_thing()\n", {"torch", "transformers"})
    assert got["transformers.cache_utils.QuantizedCacheConfig"][4] is True
    assert got["torch.npu.is_available"][4] is True
    assert got["torch.npu.is_bf16_supported"][4] is True
    assert got["torch.nonexistent_thing"][4] is False
    # an attribute set on a module: the chain before it is used, the name itself is made here
    assert "torch.backends.cudnn" in got and "torch.backends.cudnn.benchmark" not in got
    assert "torch.made_here" not in got


def test_a_name_rebound_in_the_file_is_not_the_module():
    got = _refs("try:\n    import numpy as np\nexcept ImportError:\n    np = None\n"
                "def f():\n    return np.zeros(3)\n", {"numpy"})
    assert "numpy.zeros" not in got and "numpy" in got


def test_files_that_import_no_other_library_are_not_parsed_for_it():
    assert scan.external_tops(b"import os, sys\nfrom torch import nn\nimport torch.nn\n",
                              own="torch") == set()
    assert scan.external_tops(b"import numpy as np, yaml\nfrom transformers.x import y\n") == \
        {"numpy", "yaml", "transformers"}


def test_the_lookup_asks_the_module_and_does_not_import_lazy_names(monkeypatch):
    import sys
    import types

    pkg = types.ModuleType("driftfake")
    pkg.__path__ = []  # a package with no submodules on disk
    pkg.present = 1
    pkg.__all__ = ["lazy_name"]  # listed by a lazy module, made on first access

    def module_getattr(name):
        if name == "made_by_getattr":
            return 2
        raise AttributeError(f"`driftfake.{name}` was removed in driftfake 2.0")

    pkg.__getattr__ = module_getattr
    monkeypatch.setitem(sys.modules, "driftfake", pkg)
    imported: dict[str, object] = {}
    assert drift._lookup("driftfake.present", "driftfake", imported)["state"] == "present"
    assert drift._lookup("driftfake.lazy_name", "driftfake", imported)["state"] == "present"
    assert drift._lookup("driftfake.made_by_getattr", "driftfake", imported)["state"] == \
        "present"
    gone = drift._lookup("driftfake.old_name", "driftfake", imported)
    assert gone == {"state": "missing", "module": "driftfake", "name": "old_name",
                    "error": "`driftfake.old_name` was removed in driftfake 2.0"}
    # an object's attributes are not checked (instance attributes are made at run time)
    assert drift._lookup("driftfake.present.anything", "driftfake", imported)["state"] == \
        "present"
    assert drift._lookup("json.nope", "json", imported)["state"] == "missing"
    assert drift._lookup("json.decoder", "json", imported)["state"] == "present"  # submodule
    broken = drift._lookup("no_such_module_here.x", "no_such_module_here", imported)
    assert broken["state"] == "unchecked" and "ModuleNotFoundError" in broken["why"]


# --- the verdict, from collected facts --------------------------------------------------------

def _use(name: str, module: str, **change: object) -> dict[str, object]:
    use = {"user": "(your code)", "user_version": "", "origin": "project",
           "file": "/srv/app/tts.py", "line": 12, "name": f"{module}.{name}", "kind": "from",
           "scope": "function", "guarded": False, "loaded": True, "library": "transformers",
           "library_version": "4.57.1", "module": module, "missing": name,
           "error": f"module {module!r} has no attribute {name!r}", "requires": []}
    use.update(change)
    return use


def _judge(*results: dict[str, object]):
    facts = {"reach": {"known": True, "reached_files": 10}, "scanned_files": 30, "uses": 5,
             "present": 4, "results": list(results)}
    return drift.judge_drift(Context(), facts)


def test_the_verdict_follows_where_and_how_the_name_is_used():
    qcc = ("QuantizedCacheConfig", "transformers.cache_utils")
    r = _judge(_use(*qcc))
    assert r.status.value == "fail"
    assert "transformers 4.57.1 has no QuantizedCacheConfig in transformers.cache_utils" \
        in r.summary and "/srv/app/tts.py:12" in r.summary
    assert _judge(_use(*qcc, guarded=True)).status.value == "ok"
    # at module level of a module that imported: that line ran (or a branch was not taken)
    assert _judge(_use(*qcc, scope="module")).status.value == "ok"
    # ... of a module that did not import: it is why the import fails
    assert _judge(_use(*qcc, scope="module", loaded=False)).status.value == "fail"


def test_installed_packages_are_judged_by_what_they_declare_and_where():
    site = "/venv/lib/python3.11/site-packages/"
    base = dict(origin="distribution", user="indextts", user_version="2.0.0",
                file=site + "indextts/gpt/model.py")
    qcc = ("QuantizedCacheConfig", "transformers.cache_utils")
    pinned = _judge(_use(*qcc, **base, requires=["transformers==4.52.1"]))
    assert pinned.status.value == "fail" and "indextts/gpt/model.py:12" in pinned.summary
    assert any("transformers==4.52.1" in str(c) for c in pinned.fix.commands)
    # a range given only for an extra is not enforced: not an unmet requirement
    extra = _judge(_use(*qcc, **base, requires=["transformers==4.52.1; extra == 'all'"]))
    assert extra.status.value == "ok" and extra.details["latent"]
    # in a function of a package that runs within what it declares (scipy 1.17.1 calls
    # np.zeroslike on a rare path): nothing says it runs, listed as latent
    latent = _judge(_use("zeroslike", "numpy", **dict(base, user="scipy"), kind="attr",
                         library="numpy", library_version="2.4.6",
                         requires=["numpy<2.7,>=1.26.4"]))
    assert latent.status.value == "ok" and latent.details["latent"]
    assert "not known to run" in latent.summary
    # at module level of a module the deployment reaches but that did not import
    module = _judge(_use(*qcc, **base, scope="module", loaded=False))
    assert module.status.value == "warn" and "indextts/gpt/model.py:12" in module.summary


def test_names_a_curated_probe_watches_are_left_to_it():
    r = _judge(_use("hann", "scipy.signal", kind="attr", library="scipy",
                    library_version="1.17.1"),
               _use("float_", "numpy", kind="attr", library="numpy", library_version="2.4.6"))
    assert r.status.value == "ok", r
    assert set(r.details["left_to"]) == {"scipy.removed-names", "numpy.aliases"}
    assert "left to numpy.aliases (1), scipy.removed-names (1)" in r.summary
    assert not r.details["missing"]


def test_without_an_entry_point_nothing_is_checked():
    r = drift.judge_drift(Context(), {"reach": {"known": False, "why": "none"}})
    assert r.status.value == "skip"


# --- real environments --------------------------------------------------------------------------

BROKEN_APP = ("import numpy as np\n"
              "from transformers import cache_utils as cu\n\n\n"
              "def load_quantized():\n"
              "    from transformers.cache_utils import QuantizedCacheConfig\n"
              "    return QuantizedCacheConfig\n\n\n"
              "def offload():\n"
              "    return cu.OffloadedCache, np.float_\n")

GUARDED_APP = ("import driftlib\n\n\n"
               "def load_quantized():\n"
               "    try:\n"
               "        from transformers.cache_utils import QuantizedCacheConfig\n"
               "    except ImportError:\n"
               "        QuantizedCacheConfig = None\n"
               "    from transformers.cache_utils import DynamicCache, OffloadedCache\n"
               "    return QuantizedCacheConfig, DynamicCache, OffloadedCache\n")


def _site(python: Path) -> Path:
    return Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())


@pytest.fixture(scope="module")
def transformers_457(make_env):
    # transformers 4.57.1 with torch 2.13 (and modelscope 1.19.0: a known stack, so the
    # closure holds its TTS pipeline too), shared with tests/test_probes_families.py
    return make_env(envs_families.TRANSFORMERS_TORCH)


@pytest.fixture(scope="module")
def scan_cache(tmp_path_factory) -> Path:
    """One $TTS_DOCTOR_CACHE for the tests of this module: the per-file scan results of the
    shared environment are computed once (each run still imports its own closure)."""
    return tmp_path_factory.mktemp("drift-cache")


def _check(cli, python: Path, project: Path, tmp_path: Path, cache: Path, *only: str):
    return cli("check", "--json", "--python", str(python), "--project", str(project),
               "--only", ",".join(only or ("compat.api-drift",)),
               env={"TTS_DOCTOR_CACHE": str(cache)}, cwd=tmp_path, timeout=600)


@pytest.mark.slow
@pytest.mark.venv
def test_a_removed_transformers_name_fails_with_file_line_and_version(cli, transformers_457,
                                                                      tmp_path, scan_cache):
    app = write_app(tmp_path / "app", BROKEN_APP, name="tts.py")
    r = _check(cli, transformers_457.python, app, tmp_path, scan_cache, "compat.api-drift",
               "numpy.aliases")
    f = r.finding("compat.api-drift")
    assert r.returncode == 1 and f["status"] == "fail", f
    assert "transformers 4.57.1 has no QuantizedCacheConfig in transformers.cache_utils" \
        in f["summary"], f["summary"]
    assert f"{app / 'tts.py'}:6" in f["summary"]
    (missing,) = f["details"]["missing"]
    assert missing["name"] == "transformers.cache_utils.QuantizedCacheConfig"
    assert missing["library_version"] == "4.57.1" and missing["scope"] == "function"
    # OffloadedCache is still there; np.float_ is numpy.aliases' to report, not twice
    assert "OffloadedCache" not in f["summary"]
    assert {"where": f"{app / 'tts.py'}:11", "name": "numpy.float_"} in [
        {"where": u["where"], "name": u["name"]} for u in f["details"]["left_to"]["numpy.aliases"]]
    assert r.finding("numpy.aliases")["status"] == "fail"


@pytest.mark.slow
@pytest.mark.venv
def test_guarded_and_unreached_uses_do_not_fail(cli, transformers_457, tmp_path, scan_cache):
    # driftlib: a package no distribution owns (a Dockerfile's COPY) whose unused module keeps
    # the removed name; the application imports driftlib, never driftlib.unused
    python = _layered(transformers_457, tmp_path / "venv")
    lib = _site(python) / "driftlib"
    lib.mkdir()
    (lib / "__init__.py").write_text("VERSION = 1\n")
    (lib / "unused.py").write_text("def old():\n"
                                   "    from transformers.cache_utils import "
                                   "QuantizedCacheConfig\n"
                                   "    return QuantizedCacheConfig\n")
    app = write_app(tmp_path / "app", GUARDED_APP, name="tts.py")
    r = _check(cli, python, app, tmp_path, scan_cache)
    f = r.finding("compat.api-drift")
    assert r.returncode == 0 and f["status"] == "ok", f
    details = f["details"]
    assert [u["where"] for u in details["guarded"]
            if u["name"].endswith("QuantizedCacheConfig")] == [f"{app / 'tts.py'}:6"]
    every = [u["where"] for k in ("missing", "not_importable", "latent", "guarded",
                                  "ran_at_import")
             for u in details[k]]
    assert not any("unused.py" in w for w in every), every
    assert details["unreached_files"] > 0 and details["present"] > 0
    assert "guarded use(s) of missing names fall back" in f["summary"]


def _layered(base: venvs.Venv, folder: Path) -> Path:
    """A venv of the base's Python whose site-packages adds the base's by a .pth line."""
    subprocess.run([str(venvs.find_python(base.spec.python)), "-m", "venv", "--without-pip",
                    str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    (_site(python) / "base.pth").write_text(f"{base.site}\n")
    return python


@pytest.mark.slow
@pytest.mark.venv
def test_the_big_deployment_environment_has_no_false_alarm(cli, make_env, tmp_path):
    # the ModelScope / IndexTTS-2 stack, checked from an empty folder and with an application
    # that imports scipy.signal, transformers and numpy directly (a much larger closure)
    venv = make_env(envs.BIG_STACK)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("check", "--json", "--python", str(venv.python), "--only", "compat.api-drift",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=empty, timeout=900)
    f = r.finding("compat.api-drift")
    assert f["status"] == "ok" and r.returncode == 0, f
    assert f["details"]["present"] > 100
    app = write_app(tmp_path / "app", "import numpy as np\nimport scipy.signal as ss\n"
                    "from transformers import cache_utils as cu\n\n\n"
                    "def run():\n    return ss.windows.hann(8), cu.QuantizedCacheConfig, "
                    "np.zeros(2)\n", name="serve.py")
    r = _check(cli, venv.python, app, tmp_path, tmp_path / "cache")
    f = r.finding("compat.api-drift")
    assert f["status"] == "ok" and r.returncode == 0, f
    # scipy 1.17.1 calls np.zeroslike (no such NumPy name) on a rare path, and declares
    # numpy<2.7,>=1.26.4: listed as latent, not a failure of the deployment
    assert any(u["name"] == "numpy.zeroslike" for u in f["details"]["latent"])
