"""model.cache and model.disk through the real CLI, on cache folders laid out the way the hubs'
clients write them (Hugging Face: refs/main -> snapshots/<commit>/FILE linking into blobs/;
ModelScope: [hub/][models/]ORG/NAME/FILE), since no hub is reachable from here."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# the smallest ONNX model model.cache accepts: ir_version 7 and an (empty) graph, field 7
ONNX = b"\x08\x07\x3a\x00"

RECIPE = """name = "{name}"
engine = "callable"
[audio]
sample_rate = 22050
[smoke]
text = "hi"
[cache]
hub = "{hub}"
repo = "{repo}"
files = {files}
{extra}
"""


def recipe(tmp_path: Path, hub: str, repo: str, files: list[str], extra: str = "",
           model: str = "") -> str:
    text = RECIPE.format(name=f"{hub}-model", hub=hub, repo=repo,
                         files="[" + ", ".join(f'"{f}"' for f in files) + "]", extra=extra)
    if model:
        text += f"[model]\n{model}\n"
    path = tmp_path / f"{hub}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def hf_cache(root: Path, repo: str, files: dict[str, bytes], dangling: tuple[str, ...] = ()):
    """A Hugging Face hub cache as huggingface_hub writes it."""
    base = root / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    (base / "blobs").mkdir()
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (base / "blobs" / sha).write_bytes(data)
        os.symlink(f"../../blobs/{sha}", snap / name)
    for name in dangling:
        os.symlink("../../blobs/" + "f" * 64, snap / name)
        (base / "blobs" / ("f" * 64 + ".incomplete")).write_bytes(b"partial")
    return snap


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"HF_HOME": str(tmp_path / "hf"), "MODELSCOPE_CACHE": str(tmp_path / "ms"),
            "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": "", "HF_HUB_OFFLINE": "",
            "TRANSFORMERS_OFFLINE": ""}


def test_no_recipe_no_model_findings(cli):
    # the probes of a recipe's model files (model.offline-import judges the import closure)
    r = cli("check", "--json", "--only", "model.cache,model.disk,model.piper-voice")
    assert r.returncode == 0, r
    assert r.json["findings"] == []


def test_huggingface_cache_lists_exactly_what_is_missing(cli, tmp_path):
    env = env_for(tmp_path)
    hf_cache(tmp_path / "hf" / "hub", "IndexTeam/IndexTTS-2",
             {"config.yaml": b"a: 1\n", "bpe.model": b"x" * 100}, dangling=("gpt.pth",))
    path = recipe(tmp_path, "huggingface", "IndexTeam/IndexTTS-2",
                  ["config.yaml", "bpe.model", "gpt.pth", "s2mel.pth"])
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "warn", f
    assert f["details"]["missing"] == ["gpt.pth", "s2mel.pth"]
    assert f["details"]["found"]["present"] == ["config.yaml", "bpe.model"]
    assert "dangling link" in f["details"]["found"]["notes"]["gpt.pth"]
    assert f["details"]["incomplete_blobs"] == ["f" * 64 + ".incomplete"]
    assert f["fix"]["commands"] == ["hf download IndexTeam/IndexTTS-2 gpt.pth s2mel.pth"]

    # offline mode turns the missing files into a failure
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path,
            env={**env, "HF_HUB_OFFLINE": "1"})
    f = r.finding("model.cache")
    assert f["status"] == "fail" and "HF_HUB_OFFLINE" in f["summary"]
    assert r.returncode == 1


def test_huggingface_cache_complete_is_ok(cli, tmp_path):
    env = env_for(tmp_path)
    snap = hf_cache(tmp_path / "hf" / "hub", "org/voice", {"a.onnx": ONNX, "a.json": b"{}"})
    path = recipe(tmp_path, "huggingface", "org/voice", ["a.onnx", "a.json"])
    r = cli("check", "--json", "--only", "model", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "ok", f
    assert f["details"]["found"]["folder"] == str(snap)
    assert r.finding("model.disk")["status"] == "ok"


def test_modelscope_cache_new_and_old_layouts(cli, tmp_path):
    env = env_for(tmp_path)
    new = tmp_path / "ms" / "hub" / "models" / "iic" / "CosyVoice2-0.5B"
    new.mkdir(parents=True)
    for name in ("cosyvoice2.yaml", "llm.pt"):
        (new / name).write_bytes(b"x")
    path = recipe(tmp_path, "modelscope", "iic/CosyVoice2-0.5B",
                  ["cosyvoice2.yaml", "llm.pt", "flow.pt"])
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "warn" and f["details"]["missing"] == ["flow.pt"]
    assert f["details"]["found"]["folder"] == str(new)
    assert f["fix"]["commands"] == ["modelscope download --model iic/CosyVoice2-0.5B flow.pt"]

    # an older client: MODELSCOPE_CACHE is the hub folder itself, no models/ level
    old = tmp_path / "ms-old" / "damo" / "speech_sambert-hifigan_tts_zh-cn_16k"
    old.mkdir(parents=True)
    for name in ("configuration.json", "resource.zip", "voices.zip"):
        (old / name).write_bytes(b"{}")  # model.cache reads headers: the JSON must parse
    path = recipe(tmp_path, "modelscope", "damo/speech_sambert-hifigan_tts_zh-cn_16k",
                  ["configuration.json", "resource.zip", "voices.zip"])
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path,
            env={**env, "MODELSCOPE_CACHE": str(tmp_path / "ms-old")})
    f = r.finding("model.cache")
    assert f["status"] == "ok" and f["details"]["found"]["folder"] == str(old)


def test_a_local_checkpoint_folder_counts(cli, tmp_path):
    env = env_for(tmp_path)
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "config.yaml").write_text("x: 1\n")
    path = recipe(tmp_path, "huggingface", "IndexTeam/IndexTTS-2", ["config.yaml", "gpt.pth"],
                  model=f'checkpoint_dir = "{ckpt}"')
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "warn" and f["details"]["missing"] == ["gpt.pth"]
    assert f["details"]["found"]["folder"] == str(ckpt)
    assert f["fix"]["commands"] == [
        f"hf download IndexTeam/IndexTTS-2 gpt.pth --local-dir {ckpt}"]
    (ckpt / "gpt.pth").write_bytes(b"w")
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    assert r.finding("model.cache")["status"] == "ok"


def test_disk_space_against_the_recipe_minimum(cli, tmp_path):
    env = env_for(tmp_path)
    path = recipe(tmp_path, "huggingface", "org/huge", ["model.bin"],
                  extra="min_free_gib = 1000000")
    r = cli("check", "--json", "--only", "model.disk", "--recipe", path, env=env)
    f = r.finding("model.disk")
    assert f["status"] == "fail", f
    assert f["details"]["min_free_gib"] == 1000000 and f["details"]["missing_files"]
    assert f["fix"]["commands"] == ["export HF_HOME=/path/with/space"]

    path = recipe(tmp_path, "huggingface", "org/small", ["model.bin"],
                  extra="min_free_gib = 0.001")
    r = cli("check", "--json", "--only", "model.disk", "--recipe", path, env=env)
    f = r.finding("model.disk")
    assert f["status"] == "ok" and f["details"]["free_gib"] > 0.001


def test_disk_fix_names_the_variable_that_decides_the_folder(cli, tmp_path):
    # HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE) wins over HF_HOME: moving HF_HOME
    # would not move this cache
    path = recipe(tmp_path, "huggingface", "org/huge", ["model.bin"],
                  extra="min_free_gib = 1000000")
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        env = {**env_for(tmp_path), var: str(tmp_path / "hub-cache")}
        r = cli("check", "--json", "--only", "model.disk", "--recipe", path, env=env)
        f = r.finding("model.disk")
        assert f["status"] == "fail", f
        assert f["fix"]["commands"] == [f"export {var}=/path/with/space"]
        assert f"{var} decides where the huggingface cache is" in f["fix"]["description"]

    path = recipe(tmp_path, "modelscope", "iic/huge", ["model.bin"],
                  extra="min_free_gib = 1000000")
    r = cli("check", "--json", "--only", "model.disk", "--recipe", path, env=env_for(tmp_path))
    f = r.finding("model.disk")
    assert f["fix"]["commands"] == ["export MODELSCOPE_CACHE=/path/with/space"]


def test_a_local_folder_gets_advice_not_commands(cli, tmp_path):
    env = env_for(tmp_path)
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "a.onnx").write_bytes(ONNX)
    # too little room: no variable moves a local folder, so the fix is to free space or move it
    path = recipe(tmp_path, "local", str(folder), ["a.onnx"], extra="min_free_gib = 1000000")
    r = cli("check", "--json", "--only", "model.disk", "--recipe", path, env=env)
    f = r.finding("model.disk")
    assert f["status"] == "warn", f  # the file is there already
    assert f["fix"]["commands"] == []
    assert f"move the model folder {folder}" in f["fix"]["description"]
    assert "MODELSCOPE_CACHE" not in f["fix"]["description"]

    # a missing file of a local folder: nothing to download from, and no placeholder command
    # (`tts-doctor fix --run-commands` would run it)
    path = recipe(tmp_path, "local", str(folder), ["a.onnx", "a.onnx.json"])
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "warn" and f["details"]["missing"] == ["a.onnx.json"], f
    assert "no hub to download them from" in f["summary"]
    assert f["fix"]["commands"] == []
    assert f"copy the model's files into {folder}" in f["fix"]["description"]

    # no files listed and no folder at all: one true statement, not "(the folder is empty)"
    gone = tmp_path / "gone"
    path = recipe(tmp_path, "local", str(gone), [])
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["status"] == "warn", f
    assert f["summary"].startswith(f"{gone}: no cache folder for it exists;"), f["summary"]
    assert "empty" not in f["summary"]
    assert f["fix"]["commands"] == []

    # no files listed and an empty folder: says so
    gone.mkdir()
    r = cli("check", "--json", "--only", "model.cache", "--recipe", path, env=env)
    f = r.finding("model.cache")
    assert f["summary"].startswith(f"{gone}: the local folder (cache.repo) at {gone} is empty;")
