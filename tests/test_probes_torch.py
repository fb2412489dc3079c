"""torch.build's fix when torch is installed but does not import: the same build again, from
the index that publishes it (PyPI has no `+cpu` or `+cu128` files). The dev .venv holds the
real torch 2.13.0+cpu; its import is broken for real by a module that shadows one of torch's
own imports (a stray `typing_extensions.py` first on the path)."""

from __future__ import annotations

from tts_doctor import dists
from tts_doctor.facts import torch_wheels as cuda


def test_a_torch_that_does_not_import_is_reinstalled_from_its_builds_index(cli, tmp_path):
    (tmp_path / "typing_extensions.py").write_text(
        'raise ImportError("a stray typing_extensions.py shadows the real one")\n')
    r = cli("check", "--json", "--only", "torch.build", env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1, r
    f = r.finding("torch.build")
    assert f["status"] == "fail", f
    assert "`import torch` fails: ImportError: a stray typing_extensions.py" in f["summary"]
    assert f["details"]["version"] == "2.13.0+cpu"
    py = dists.python()
    assert f["fix"]["commands"] == [
        f"{py} -m pip uninstall -y torch",
        f"{py} -m pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0"]
    assert "https://download.pytorch.org/whl/cpu" in f["fix"]["description"]


def test_the_index_follows_the_builds_local_tag():
    assert cuda.index_for("2.13.0+cpu") == "https://download.pytorch.org/whl/cpu"
    assert cuda.index_for("2.8.0+cu128") == "https://download.pytorch.org/whl/cu128"
    assert cuda.index_for("2.1.2+cu118") == "https://download.pytorch.org/whl/cu118"
    assert cuda.index_for("2.7.1+rocm6.3") == "https://download.pytorch.org/whl/rocm6.3"
    assert cuda.index_for("2.13.0") is None  # PyPI's own build
    assert cuda.index_for("2.5.0+git1234abc") is None  # a local build no index serves
    py = dists.python()
    # torchaudio is not installed in the dev venv: torch alone, same release, same build
    assert cuda.same_build_commands("2.8.0+cu128") == (
        f"{py} -m pip uninstall -y torch",
        f"{py} -m pip install --index-url https://download.pytorch.org/whl/cu128 torch==2.8.0")
    assert cuda.same_build_commands("2.13.0") == (
        f"{py} -m pip uninstall -y torch", f"{py} -m pip install torch==2.13.0")
