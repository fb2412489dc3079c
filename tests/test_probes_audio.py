"""Audio I/O probes on real environments: libsndfile (I1), ffmpeg/ffprobe (I2), sox and the
WAV backends (I3). This machine has no ffmpeg, no sox and no system libsndfile, so the
missing-program verdicts are the real ones; the dev .venv (soundfile 0.14 with its bundled
libsndfile, scipy 1.17) is the healthy environment."""

from __future__ import annotations

import pytest

from tests.harness import envs, envs_numeric
from tests.harness.recipes import write_recipe


def check(cli, venv, *args):
    return cli("check", "--json", "--python", str(venv.python), *args)


def test_healthy_dev_environment_reads_and_writes_wav(cli):
    r = cli("check", "--json", "--only", "audio")
    assert r.returncode == 0, r
    s = r.finding("audio.sndfile")
    assert s["status"] == "ok", s
    assert s["details"]["loaded"] == s["details"]["bundled_library"]
    assert "bundled" in s["summary"]
    b = r.finding("audio.backends")
    assert b["status"] == "ok" and b["details"]["working"] == ["wave", "soundfile",
                                                               "scipy.io.wavfile"]
    # nothing installed here runs ffmpeg or sox, and neither is on PATH
    assert r.finding("audio.ffmpeg")["status"] == "skip"
    assert r.finding("audio.sox")["status"] == "skip"


def test_a_recipe_that_needs_ffmpeg_fails_without_it(cli, tmp_path):
    recipe = write_recipe(tmp_path / "ffmpeg.toml", 'ffmpeg = "required"', name="ff",
                          engine="piper")
    r = cli("check", "--json", "--only", "audio.ffmpeg", "--recipe", recipe)
    assert r.returncode == 1, r
    f = r.finding("audio.ffmpeg")
    assert f["status"] == "fail" and "the recipe" in f["summary"]
    assert "ffmpeg does not run here, and the recipe needs it (" in f["summary"], f["summary"]
    assert f["fix"]["commands"][0] == "apt-get install -y ffmpeg"


def test_a_recipe_that_needs_sox_fails_without_it(cli, tmp_path):
    recipe = write_recipe(tmp_path / "sox.toml", 'sox = "required"', name="sx", engine="piper")
    r = cli("check", "--json", "--only", "audio.sox", "--recipe", recipe)
    assert r.returncode == 1, r
    f = r.finding("audio.sox")
    assert f["status"] == "fail"
    assert f["summary"] == "sox does not run here (not on PATH), and the recipe needs it"
    assert f["fix"]["commands"] == ["apt-get install -y sox libsox-fmt-all"]


def test_sndfile_messages_say_what_was_found(tmp_path):
    from tts_doctor.probes import audio

    assert audio.libraries_found(None, None) == "no bundled libsndfile, none on the system"
    assert audio.libraries_found("/site/_soundfile_data/libsndfile_x86_64.so", None) == (
        "bundled libsndfile at /site/_soundfile_data/libsndfile_x86_64.so, none on the system")
    assert audio.libraries_found(None, "libsndfile.so.1") == (
        "no bundled libsndfile, system library libsndfile.so.1")
    # soundfile's `_libname` fallback is a bare name, not a path: no samefile() on it
    lib = tmp_path / "libsndfile_x86_64.so"
    lib.write_bytes(b"x")
    assert audio.loaded_from("libsndfile.so.1", str(lib)) == "from libsndfile.so.1"
    assert audio.loaded_from(str(lib), str(lib)) == "bundled"
    assert audio.loaded_from(str(tmp_path / "gone.so"), str(lib)) == f"from {tmp_path}/gone.so"
    assert audio.loaded_from("/usr/lib/libsndfile.so.1", None) == "from /usr/lib/libsndfile.so.1"
    assert audio.loaded_from(None, str(lib)) == "from an unknown place"


@pytest.mark.venv
def test_soundfile_without_libsndfile_and_missing_programs(cli, make_env):
    """soundfile 0.10.3 bundles no libsndfile: the verdict follows what `import soundfile`
    does on this machine (the system library is there once Debian's chromium is installed, as
    .ci/run does for the HTML test; it is not on a bare image)."""
    venv = make_env(envs_numeric.AUDIO_LEGACY)
    real = venv.run("-c", "import soundfile", check=False)
    missing = "OSError: sndfile library not found" in real.stderr

    r = check(cli, venv, "--only", "audio")
    assert r.returncode == 1, r
    s = r.finding("audio.sndfile")
    assert s["details"]["bundled_library"] is None
    if missing:
        assert s["status"] == "fail"
        assert "sndfile library not found" in s["summary"] and "0.10.3.post1" in s["summary"]
        assert s["details"]["system_library"] is None
        assert s["fix"]["commands"] == [
            f"{venv.python} -m pip install 'soundfile>=0.12'",
            "apt-get install -y libsndfile1"]
    else:  # the system's libsndfile is found: the doctor must not claim it is missing
        assert "sndfile library not found" not in s["summary"], s
        assert s["details"]["system_library"], s

    b = r.finding("audio.backends")
    # every way installed code writes audio counts: pydub writes and reads WAV without ffmpeg,
    # so the environment can do WAV I/O; soundfile's users still break
    assert b["status"] == "warn", b
    assert b["details"]["working"] == ["wave", "pydub"]
    assert "soundfile" in b["details"]["failing"]  # no libsndfile (and no numpy) here
    assert b["summary"].startswith("soundfile cannot write and read a WAV")

    ff = r.finding("audio.ffmpeg")
    assert ff["status"] == "warn"
    assert "pydub 0.25.1" in ff["summary"] and "Couldn't find ffprobe or avprobe" in \
        ff["summary"]
    assert ff["fix"]["commands"] == ["apt-get install -y ffmpeg"]

    sx = r.finding("audio.sox")
    assert sx["status"] == "warn" and "sox 1.4.1 needs it" in sx["summary"]
    assert sx["fix"]["commands"] == ["apt-get install -y sox libsox-fmt-all"]


@pytest.mark.venv
def test_nothing_audio_installed_is_a_skip(cli, make_env):
    r = check(cli, make_env(envs.BARE), "--only", "audio")
    assert r.returncode == 0, r
    assert {f["status"] for f in r.json["findings"]} == {"skip"}
