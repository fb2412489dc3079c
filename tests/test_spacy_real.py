"""The real spaCy (3.8) in a real environment: misaki's model that is not installed, and
spaCy's own `spacy.cli.download` called by the deployment's code at import time (kokoro#298:
misaki downloads en_core_web_sm at first use), as the air-gap audit of `check`'s closure
import sees it. spaCy's models are not on PyPI and the network is blocked, so the model stays
missing: what is tested is the verdict and the command that pre-fetches it."""

from __future__ import annotations

import pytest

from tests.harness.apps import install_editable
from tests.harness.venvs import EnvSpec
from tests.test_reach import _layered

SPACY = EnvSpec("spacy-misaki", steps=(
    ("install", "spacy==3.8.18"),
    ("install", "--no-deps", "misaki==0.9.4")))

MISAKI_LIKE = '''"""Loads the spaCy model, downloading it when missing, as misaki's en.G2P does."""
import spacy

try:
    nlp = spacy.load("en_core_web_sm")
except OSError:
    spacy.cli.download("en_core_web_sm")
'''

pytestmark = pytest.mark.venv


@pytest.fixture(scope="module")
def venv(make_env):
    return make_env(SPACY)


def test_misaki_with_spacy_but_without_its_model_is_one_spacy_download(cli, venv, tmp_path):
    r = cli("check", "--json", "--python", str(venv.python), "--only", "frontend.spacy-model",
            cwd=tmp_path)
    f = r.finding("frontend.spacy-model")
    assert f["status"] == "warn", f
    assert f["details"]["spacy"] == "3.8.18"
    # spaCy is there: only the model, with spaCy's own downloader
    assert f["fix"]["commands"] == [f"{venv.python} -m spacy download en_core_web_sm"]
    offline = cli("check", "--json", "--python", str(venv.python), "--only",
                  "frontend.spacy-model", "--set", "model.offline=1", cwd=tmp_path)
    assert offline.finding("frontend.spacy-model")["status"] == "fail"


def test_spacy_cli_download_at_import_time_is_caught_by_the_air_gap_audit(cli, venv, tmp_path):
    # a research repo installed the way its README says (`pip install -e .`), whose frontend
    # module fetches the spaCy model when it is imported; layered over the shared environment
    python = _layered(venv, tmp_path / "venv")
    src = tmp_path / "g2pproj"
    (src / "g2pproj").mkdir(parents=True)
    (src / "g2pproj" / "__init__.py").write_text("from . import g2p  # noqa: F401\n")
    (src / "g2pproj" / "g2p.py").write_text(MISAKI_LIKE)
    install_editable(python, src, "g2pproj")
    app = src / "g2pproj"
    r = cli("check", "--json", "--python", str(python), "--only", "model.offline-import",
            env={"TTS_DOCTOR_CACHE": str(tmp_path / "cache")}, cwd=tmp_path, timeout=600)
    f = r.finding("model.offline-import")
    assert f["status"] == "fail", f
    downloads = [d for d in f["details"]["downloads"] if d["kind"] == "spacy"]
    assert len(downloads) == 1, f["details"]["downloads"]
    (d,) = downloads
    assert d["what"] == "en_core_web_sm" and d["outcome"] == "failed"
    assert d["frame"].startswith(str(app / "g2p.py") + ":7"), d["frame"]
    assert f"{python} -m spacy download en_core_web_sm" in f["fix"]["commands"]
    # spaCy's downloader asked GitHub for its compatibility table: refused, and named
    hosts = {c["host"] for c in f["details"]["connections"]}
    assert "raw.githubusercontent.com" in hosts
