"""Fixes that cannot do harm: no shell, alternatives, no unasked downgrade.

- Every command a fix carries is an argument vector, shown shell-quoted: the shown line
  splits back (`shlex.split`) into exactly that vector, whatever a value holds (fuzzed), and
  `fix --run-commands` runs it without a shell. Tested on the real CLI with hostile recipe
  values (`name`, `cache.repo`, `cache.files`, `requires.packages`) and a diagnosed venv under a
  folder named `x$(touch PWNED)y`: the canary files are never created, and the printed
  commands are the intended vectors. The pure command builders of the other probes (cuda's
  toolchain, ttsfrd's resource, the shims probe) are given hostile paths directly.
- The downgrade guard: which pip requirements would move a core library down.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tts_doctor.commands.fix import downgrades, pip_install_args, refusal
from tts_doctor.finding import Command, Fix, cmd, export, manual, steps, system, text

HOSTILE = ["e; touch {c}", "$(touch {c})", "`touch {c}`", "a' ; touch {c} ; '", "x\ny",
           "--index-url=http://evil", "a&&touch {c}", "| touch {c}", "${{IFS}}touch{{IFS}}{c}"]


# --- the Command type ---------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1), min_size=1, max_size=6),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_every_shown_command_splits_back_into_its_argv(argv, note):
    c = cmd(*argv, note=note)
    assert shlex.split(str(c), comments=True) == argv
    assert c.argv == tuple(argv) and c.runnable


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_export_quotes_any_value(value):
    line = export("SOME_VAR", value)
    assert line.kind == "env" and line.argv is None and not line.runnable
    head, _, quoted = str(line).partition("=")
    assert head == "export SOME_VAR" and shlex.split(quoted) == [value]


def test_plain_strings_are_text_never_run():
    fix = Fix("d", commands=("pip install x; touch /tmp/x", "export A=$(id)"))
    assert [c.kind for c in fix.commands] == ["text", "env"]
    assert not any(c.runnable for c in fix.commands)
    assert text("python -m pip install x").argv is None


def test_alternatives_and_steps_survive_json():
    fix = Fix("d", commands=(steps(cmd("a", "1"), system("apt-get", "install", "-y", "b")),
                             cmd("c", note="a note"), export("X", "a b"), manual("rm", "f")))
    data = json.loads(json.dumps(fix.to_dict()))
    assert data["commands"] == ["a 1", "apt-get install -y b", "c  # a note", "export X='a b'",
                                "rm f"]
    assert [s["alternative"] for s in data["steps"]] == [0, 0, 1, 2, 3]
    assert [s["kind"] for s in data["steps"]] == ["run", "system", "run", "env", "manual"]
    back = Fix.from_dict(data)
    assert [[c.argv for c in alt] for alt in back.alternatives] == [
        [("a", "1"), ("apt-get", "install", "-y", "b")], [("c",)], [None], [("rm", "f")]]
    assert [[c.argv for c in alt] for alt in fix.alternatives] == \
        [[c.argv for c in alt] for alt in back.alternatives]
    # a report edited so that the shown line is not its argv: kept as text, never run
    data["steps"][2]["argv"] = ["rm", "-rf", "/"]
    assert not Fix.from_dict(data).commands[2].runnable
    # a 1.0 report (no steps): text
    assert not any(c.runnable for c in Fix.from_dict({"description": "d",
                                                      "commands": ["a 1"]}).commands)


def test_substitute_fills_the_interpreter_in_argv():
    c = cmd("{python}", "-m", "pip", "show", "torch").substitute("{python}", "/a b/$(x)/python")
    assert c.argv == ("/a b/$(x)/python", "-m", "pip", "show", "torch")
    assert shlex.split(c) == list(c.argv)


# --- the downgrade guard --------------------------------------------------------------------

INSTALLED = {"numpy": "2.2.6", "scipy": "1.15.3", "torch": "2.13.0+cpu",
             "transformers": "4.52.1", "librosa": "0.10.0"}


def pip(*args: str) -> Command:
    return cmd("/v/bin/python", "-m", "pip", "install", *args)


@pytest.mark.parametrize("args, down", [
    (("numpy<2",), ["numpy 2.2.6 -> numpy<2"]),
    (("numpy<1.24",), ["numpy 2.2.6 -> numpy<1.24"]),
    (("scipy<1.14",), ["scipy 1.15.3 -> scipy<1.14"]),
    (("--upgrade", "transformers<4.50"), ["transformers 4.52.1 -> transformers<4.50"]),
    (("torch==2.9.*", "--index-url", "https://download.pytorch.org/whl/cpu"),
     ["torch 2.13.0+cpu -> torch==2.9.*"]),
    (("scipy==1.12.0",), ["scipy 1.15.3 -> scipy==1.12.0"]),
    (("numpy~=1.26",), ["numpy 2.2.6 -> numpy~=1.26"]),
    (("numpy<=2.2.5",), ["numpy 2.2.6 -> numpy<=2.2.5"]),
    (("numpy!=2.2.6",), ["numpy 2.2.6 -> numpy!=2.2.6"]),
    (("numpy>=2", "--upgrade"), []),          # an upgrade
    (("scipy==1.15.3", "--force-reinstall"), []),  # the same version again
    (("torch==2.13.*",), []),                # the installed line (local tag ignored)
    (("numpy",), []),                        # no specifier
    (("librosa<0.10",), []),                 # not a core library
    (("-c", "numpy<2", "six"), []),          # an option's value is not a requirement
    (("--constraint=numpy<2", "six"), []),
    (("./numpy-1.0-py3-none-any.whl",), []),  # a path: no version to judge
    (("torchaudio<2",), []),                 # not installed: installing is no downgrade
])
def test_downgrades_from_the_specifier_and_the_installed_version(args, down):
    assert downgrades(pip(*args), INSTALLED) == down


def test_only_pip_install_vectors_are_judged():
    assert pip_install_args(("/v/python", "-m", "pip", "uninstall", "-y", "numpy")) is None
    assert pip_install_args(("pip", "install", "-U", "numpy<2")) == ["numpy<2"]
    assert pip_install_args(("modelscope", "download", "--model", "numpy<2")) is None


def test_refusal_names_why():
    down = [pip("numpy<2")]
    assert "would downgrade numpy 2.2.6 -> numpy<2" in refusal(down, INSTALLED, False, False)
    assert refusal(down, INSTALLED, True, False) is None
    # one downgrading step refuses its whole alternative (uninstall, then install lower)
    pair = list(steps(cmd("/v/bin/python", "-m", "pip", "uninstall", "-y", "torch"),
                      pip("torch==2.9.*")))
    assert "torch 2.13.0+cpu -> torch==2.9.*" in refusal(pair, INSTALLED, False, False)
    assert "--allow-system" in refusal([system("apt-get", "install", "-y", "x")], INSTALLED,
                                       False, False)
    assert refusal([system("apt-get", "install", "-y", "x")], INSTALLED, False, True) is None
    assert "environment variable" in refusal([export("A", "1")], INSTALLED, True, True)
    assert "for you to run" in refusal([manual("rm", "x")], INSTALLED, True, True)
    assert "as text" in refusal([text("pip install x")], INSTALLED, True, True)
    assert "cannot be ruled out" in refusal([pip("six")], None, False, False)


# --- hostile values through the real CLI ----------------------------------------------------

def _recipe(path: Path, canary: Path) -> str:
    c = str(canary)
    name = f"e; touch {c}-name"
    repo = f"x; touch {c}-repo"
    files = [f"a$(touch {c}-file)", f"`touch {c}-file2`"]
    pkg = f"zz$(touch {c}-pkg)"
    path.write_text(
        f"name = {json.dumps(name)}\nengine = \"reference\"\n[audio]\nsample_rate = 22050\n"
        f"[smoke]\ntext = \"hi\"\n[requires]\npython = \">=3.99\"\n"
        f"[requires.packages]\n{json.dumps(pkg)} = \">=1\"\n"
        f"[cache]\nhub = \"modelscope\"\nrepo = {json.dumps(repo)}\n"
        f"files = {json.dumps(files)}\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def hostile_venv(tmp_path_factory):
    """A bare venv (no pip: every pip command it is given fails harmlessly) under a folder
    whose name is shell syntax."""
    root = tmp_path_factory.mktemp("hostile") / "x$(touch PWNED)y`touch PWNED2`"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")],
                   check=True, capture_output=True)
    return root / "venv" / "bin" / "python"


def _no_canaries(*folders: Path) -> list[str]:
    return [str(p) for f in folders for p in f.rglob("*") if "PWNED" in p.name
            or p.name.startswith("canary")]


def test_hostile_recipe_and_path_build_quoted_vectors(cli, hostile_venv, tmp_path):
    recipe = _recipe(tmp_path / "recipe.toml", tmp_path / "canary")
    work = tmp_path / "cwd"
    work.mkdir()
    env = {"MODELSCOPE_CACHE": str(tmp_path / "ms"), "TTS_DOCTOR_STATE_DIR": str(tmp_path / "s")}
    r = cli("check", "--json", "--python", str(hostile_venv), "--recipe", recipe,
            "--only", "python.platform,packages.recipe,model.cache", cwd=work, env=env)
    assert r.returncode == 1, r
    by_id = {f["id"]: f for f in r.json["findings"]}
    seen = 0
    for f in by_id.values():
        fix = f["fix"] or {"commands": [], "steps": []}
        for line, step in zip(fix["commands"], fix["steps"]):
            if step["argv"] is not None:
                assert shlex.split(line, comments=True) == step["argv"], line
                seen += 1
    assert seen >= 3
    py = str(hostile_venv)
    pkg = by_id["packages.recipe"]["fix"]["steps"][0]
    assert pkg == {"argv": [py, "-m", "pip", "install", f"zz$(touch {tmp_path}/canary-pkg)>=1"],
                   "kind": "run", "alternative": 0}
    venv = by_id["python.platform"]["fix"]["steps"][0]
    assert venv["kind"] == "manual" and venv["argv"][-1].startswith(".venv-e-touch-")
    model = by_id["model.cache"]["fix"]["steps"][0]
    assert model["kind"] == "manual"  # a repo that is not a hub id: for the user to check
    assert model["argv"][:4] == ["modelscope", "download", "--model",
                                 f"x; touch {tmp_path}/canary-repo"]

    # run them: the pip command runs (and fails: no pip in a bare venv), nothing else does
    r = cli("fix", "--run-commands", "--allow-system", "--python", py, "--recipe", recipe,
            "--only", "python.platform,packages.recipe,model.cache", cwd=work, env=env)
    assert r.returncode == 1, r
    assert f"$ {shlex.quote(py)} -m pip install " in r.stdout
    assert "No module named pip" in r.stderr
    assert _no_canaries(tmp_path, hostile_venv.parents[2]) == []
    assert not Path("PWNED").exists() and not (work / "PWNED").exists()
    # the JSON plan: the same vectors, the recommended alternative first, and why not run
    r = cli("fix", "--dry-run", "--json", "--python", py, "--recipe", recipe,
            "--only", "python.platform,packages.recipe,model.cache", cwd=work, env=env)
    assert r.returncode == 0, r
    plan = {f["id"]: f["alternatives"] for f in r.json["findings"]}
    assert plan["packages.recipe"][0]["recommended"] and plan["packages.recipe"][0][
        "refused"] is None
    assert plan["packages.recipe"][0]["steps"] == [{
        "command": shlex.join(pkg["argv"]), "argv": pkg["argv"], "kind": "run"}]
    assert "for you to run" in plan["model.cache"][0]["refused"]
    for alts in plan.values():
        for alt in alts:
            for step in alt["steps"]:
                if step["argv"] is not None:
                    assert shlex.split(step["command"], comments=True) == step["argv"]
    # the dry run shows the same vectors, quoted
    r = cli("fix", "--dry-run", "--python", py, "--recipe", recipe,
            "--only", "python.platform,packages.recipe,model.cache", cwd=work, env=env)
    shown = [line.split("$ ", 1)[1] for line in r.stdout.splitlines() if "$ " in line]
    assert shown and all(shlex.split(s, comments=True)[0] in (py, "modelscope")
                         or s.startswith("python3") for s in shown), shown
    assert _no_canaries(tmp_path, hostile_venv.parents[2]) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_pure_builders_quote_hostile_paths(tmp_path, value):
    from tts_doctor.probes import cuda, ttsfrd

    evil = value.format(c=tmp_path / "canary")
    folder = tmp_path / evil.replace("/", "_") / "resource"
    fix = ttsfrd._resource_fix(folder, "x", [{"path": str(folder.parent / "resource.zip"),
                                              "ok": True}])
    (c,) = fix.commands
    assert c.argv[-2:] == (str(folder.parent / "resource.zip"), str(folder.parent))
    assert shlex.split(c) == list(c.argv)
    broken = ttsfrd._resource_fix(folder, "ModelScope cache of " + evil, [
        {"path": str(folder.parent / "resource.zip"), "ok": False, "error": "crc"}])
    for c in broken.commands:
        assert shlex.split(c, comments=True) == list(c.argv)
    assert broken.alternatives[0][0].kind == "manual"  # rm is never run by fix
    facts = {"nvcc_cuda": "12.8", "torch_cuda": "12.8", "cuda_home": evil,
             "cuda_home_from": "CUDA_HOME", "cuda_runtime_h": False,
             "homes_with_headers": [evil], "ninja_version": None, "ninja_error": "x",
             "cxx": None, "cxx_name": "c++"}
    res = cuda.judge_toolchain(facts, "required")
    home = next(c for c in res.fix.commands if c.startswith("export CUDA_HOME="))
    assert shlex.split(home.split("=", 1)[1]) == [evil]
    assert [c.kind for c in res.fix.commands] == ["env", "run", "system"]
    for c in res.fix.commands:
        if c.argv:
            assert shlex.split(c, comments=True) == list(c.argv)


def test_every_probe_on_a_hostile_path_shows_commands_that_split_back(cli, hostile_venv,
                                                                      tmp_path):
    """All probes (no --only) on the venv under `x$(touch PWNED)y...`: every command any of
    them shows splits back into its argv, and running the recommended ones creates nothing."""
    work = tmp_path / "cwd"
    work.mkdir()
    env = {"TTS_DOCTOR_STATE_DIR": str(tmp_path / "s")}
    r = cli("check", "--json", "--python", str(hostile_venv), cwd=work, env=env)
    assert r.returncode in (0, 1), r
    checked = 0
    for f in r.json["findings"]:
        fix = f["fix"] or {"commands": [], "steps": []}
        assert len(fix["commands"]) == len(fix["steps"]), f
        for line, step in zip(fix["commands"], fix["steps"]):
            if step["argv"] is not None:
                assert shlex.split(line, comments=True) == step["argv"], (f["id"], line)
                checked += 1
    r = cli("fix", "--run-commands", "--python", str(hostile_venv), cwd=work, env=env,
            timeout=600)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r
    assert _no_canaries(tmp_path, hostile_venv.parents[2]) == []
    print(f"{checked} argv commands checked")
