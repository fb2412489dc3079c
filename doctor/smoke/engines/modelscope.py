"""Sambert-HiFiGAN through ModelScope's text-to-speech pipeline, from the local cache only.

Model options: `model_id` (alias `id`, as recipes write it; e.g.
`damo/speech_sambert-hifigan_tts_zh-cn_16k`, `--model-id`) or `model_dir` (a downloaded model
folder), `cache_dir` (default `$MODELSCOPE_CACHE`, else `~/.cache/modelscope`), `voice` (a
speaker such as `zhitian_emo`; default: the model's first).

Offline by construction: the pipeline is given the local folder, never the id, so the hub is
not contacted. The folder is found where ModelScope keeps it: the layout of modelscope >= 1.38
(`<cache>/models/<owner>--<name>/snapshots/<revision>/`, asked of the installed library with
`snapshot_download(id, local_files_only=True)`, which never opens a connection) and the older
ones (`<cache>/hub/<id>`, `<cache>/hub/models/<id>`, dots as `___`, `<cache>/<id>`).

Before the pipeline runs, the folder is checked for the files ModelScope's Sambert-HiFiGAN
opens (modelscope 1.40, modelscope/models/audio/tts/sambert_hifi.py and voice.py):
`configuration.json` (the pipeline's config), `resource.zip` (unzipped for the ttsfrd
frontend), `voices/voices.json`, and for the voice used `voices/<voice>/am/config.yaml`,
`voices/<voice>/voc/config.yaml` and the checkpoints `voices/<voice>/am/ckpt/checkpoint_*.pth`,
`voices/<voice>/voc/ckpt/checkpoint_*.pth`. A recipe's `cache.files` replaces the top-level
list. A model that is missing or incomplete is a failed `smoke.load` (the environment's
defect) naming every missing file and the download command.

The call shapes used are ModelScope's public ones:
`pipeline(task=Tasks.text_to_speech, model=DIR, device=...)`, then
`pipe(input=text, voice=VOICE)[OutputKeys.OUTPUT_WAV]` (WAV bytes, 16-bit PCM).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix
from tts_doctor.smoke import fetch
from tts_doctor.smoke.engine import Engine, EngineConfigError, EngineUnavailable, option

# (alternatives: any one present satisfies the requirement)
REQUIRED = (("configuration.json",), ("resource.zip",), ("voices/voices.json",))
VOICE_FILES = ("am/config.yaml", "voc/config.yaml")
VOICE_CKPTS = ("am/ckpt", "voc/ckpt")


def cache_root(cache_dir: Optional[str] = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MODELSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelscope"


def candidates(model_id: str, root: Path) -> list[Path]:
    """Where ModelScope versions put a model: models/<owner>--<name>/snapshots/* (>= 1.38),
    hub/<id>, hub/models/<id> ('.' as '___'), and <root>/<id> for a MODELSCOPE_CACHE that
    already points at the hub folder."""
    out: list[Path] = []
    snapshots = root / "models" / model_id.replace("/", "--") / "snapshots"
    if snapshots.is_dir():
        out += sorted(p for p in snapshots.iterdir() if p.is_dir())
    ids = [model_id]
    if "." in model_id:
        ids.append(model_id.replace(".", "___"))
    for mid in ids:
        out += [root / "hub" / mid, root / "hub" / "models" / mid, root / mid,
                root / "models" / mid]
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def _checkpoints(folder: Path) -> list[str]:
    """The checkpoint files voice.py's scan_ckpt accepts: checkpoint_<N>.pth, 16+ chars."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [n for n in names if n.endswith(".pth") and n.startswith("checkpoint")
            and len(n) > 15]


def _voices(model_dir: Path) -> list[str]:
    try:
        cfg = json.loads((model_dir / "voices" / "voices.json").read_text(encoding="utf-8"))
        return [str(v) for v in cfg.get("voices") or []]
    except (OSError, ValueError, AttributeError):
        return []


def missing_files(model_dir: Path, required: Any = REQUIRED,
                  voice: Optional[str] = None) -> list[str]:
    """The files (relative to model_dir) ModelScope's Sambert-HiFiGAN would not find."""
    out = fetch.missing(model_dir, required)
    names = _voices(model_dir)
    chosen = voice or (names[0] if names else None)
    if chosen is None:
        return out
    base = f"voices/{chosen}"
    out += [f"{base}/{f}" for f in VOICE_FILES if not (model_dir / base / f).exists()]
    out += [f"{base}/{d}/checkpoint_*.pth" for d in VOICE_CKPTS
            if not _checkpoints(model_dir / base / d)]
    return out


def _modelscope_lookup(model_id: str, cache_dir: Optional[str]) -> tuple[Optional[Path], str]:
    """Ask the installed library where the model is, without the network."""
    try:
        from modelscope.hub.snapshot_download import snapshot_download
    except Exception as exc:
        return None, f"modelscope is not importable to ask ({type(exc).__name__})"
    kwargs: dict[str, Any] = {"local_files_only": True}
    if cache_dir:
        kwargs["cache_dir"] = cache_dir
    try:
        return Path(snapshot_download(model_id, **kwargs)), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).strip()[:400]}"


def _placeholder(exc: ImportError) -> Optional[str]:
    """'kantts 0.1.0' when the module that failed is PyPI's placeholder of that name."""
    top = (getattr(exc, "name", None) or "").split(".")[0]
    if top not in ("kantts", "ttsfrd"):
        return None
    from importlib import metadata

    try:
        dist = metadata.distribution(top)
    except metadata.PackageNotFoundError:
        return None
    return f"{top} {dist.version}: {dist.metadata.get('Summary') or ''}".strip()


class ModelScopeEngine(Engine):
    name = "modelscope"
    uses_torch = True
    precisions = ("fp32",)

    def __init__(self, model: dict[str, Any], recipe: Optional[dict[str, Any]] = None):
        super().__init__(model, recipe)
        self.voice = option(model, "voice")
        self.model_id = option(model, "model_id") or option(model, "id")
        self.cache_dir = option(model, "cache_dir")
        given = option(model, "model_dir")
        self.model_dir: Optional[Path] = Path(given).expanduser() if given else None
        if self.model_dir is not None and self.model_dir.exists() \
                and not self.model_dir.is_dir():
            raise EngineConfigError(f"model_dir {given} is not a directory")
        if self.model_dir is None and not self.model_id:
            raise EngineConfigError("the modelscope engine needs --model-id ID (or --set "
                                    "model_dir=PATH)")
        files = fetch.cache_spec(recipe).get("files")
        self.required = tuple((f,) for f in files) if files else REQUIRED
        self.pipe: Any = None
        self.rate: Optional[int] = None

    def resolve_device(self, requested: str) -> str:
        if requested == "auto":
            try:
                import torch

                return "cuda" if torch.cuda.is_available() else "cpu"
            except Exception:
                return "cpu"
        if requested == "mps":
            raise EngineUnavailable("--device mps: ModelScope's pipeline takes cpu or gpu",
                                    Fix("Use --device cpu"))
        return requested

    def _download(self) -> Optional[str]:
        repo = self.model_id or fetch.cache_spec(self.recipe).get("repo")
        if not repo:
            return None
        local = str(self.model_dir) if self.model_dir is not None else None
        return fetch.download_command("modelscope", repo, local_dir=local,
                                      cache_dir=self.cache_dir)

    def _locate(self) -> tuple[Optional[Path], str]:
        """(the model folder, or None with where it was looked for)."""
        if self.model_dir is not None:
            if self.model_dir.is_dir():
                return self.model_dir, ""
            return None, f"model_dir {self.model_dir} does not exist"
        assert self.model_id
        root = cache_root(self.cache_dir)
        looked = candidates(self.model_id, root)
        found = [p for p in looked if p.is_dir()]
        if found:
            return found[0], ""
        real, why = _modelscope_lookup(self.model_id, self.cache_dir)
        if real is not None and real.is_dir():
            return real, ""
        where = ", ".join(str(p) for p in looked[:2])
        return None, (f"model {self.model_id} is not in the local ModelScope cache (looked in "
                      f"{where}; modelscope says: {why})")

    def load(self, device: str, precision: str) -> None:
        if self.pipe is not None and device == self.device:
            return
        problems: list[str] = []
        commands: list[str] = []
        details: dict[str, Any] = {}
        folder, why = self._locate()
        download = self._download()
        if folder is None:
            problems.append(why)
            details["model_dir"] = None
        else:
            self.model_dir = folder
            details["model_dir"] = str(folder)
            missing = missing_files(folder, self.required, self.voice)
            if missing:
                details["missing"] = missing
                problems.append(f"{folder} is incomplete: missing {', '.join(missing)} (an "
                                "interrupted or partial download)")
        if problems and download:
            commands.append(download)
        try:
            from modelscope.outputs import OutputKeys
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks
        except ImportError as exc:
            problems.insert(0, f"modelscope does not import ({exc})")
            commands.insert(0, dists.pip_install("modelscope[audio-tts]"))
            raise EngineUnavailable(
                "; ".join(problems),
                Fix("Install ModelScope with its TTS extras (Sambert-HiFiGAN also needs the "
                    "real kantts and ttsfrd: tts-doctor check --only ttsfrd says how)"
                    + ("; then download the model where the network is allowed"
                       if len(problems) > 1 else ""), commands=tuple(commands)),
                **details) from None
        if problems:
            raise EngineUnavailable(
                "; ".join(problems),
                Fix("Download the model once where the network is allowed (or set "
                    "MODELSCOPE_CACHE to where it is); smoke reads the local cache only",
                    commands=tuple(commands)), **details)
        self._output_key = OutputKeys.OUTPUT_WAV
        with self.profiler.stage("load"):
            kwargs = {"task": Tasks.text_to_speech, "model": str(self.model_dir),
                      "device": "gpu" if device.startswith("cuda") else "cpu"}
            try:
                self.pipe = pipeline(**kwargs)
            except (ImportError, RuntimeError) as exc:
                # ModelScope's lazy importer re-raises an ImportError as RuntimeError("Failed
                # to import modelscope.models.audio.tts.sambert_hifi ...") from it
                cause = exc if isinstance(exc, ImportError) else exc.__cause__
                if not isinstance(cause, ImportError):
                    raise
                fake = _placeholder(cause)
                raise EngineUnavailable(
                    f"ModelScope's text-to-speech model does not import: "
                    f"{type(cause).__name__}: {cause}"
                    + (f" (the installed one is PyPI's placeholder {fake})" if fake else ""),
                    Fix("Sambert-HiFiGAN imports the real KAN-TTS (kantts, Python < 3.9) and "
                        "ttsfrd (ModelScope's wheels, not PyPI's placeholders); modelscope "
                        "itself refuses Python >= 3.11 for it: run `tts-doctor check --only "
                        "ttsfrd` in that environment",
                        commands=("tts-doctor check --only ttsfrd",)),
                    model_dir=str(self.model_dir), error=f"{type(exc).__name__}: {exc}"[:600],
                    placeholder=fake) from None
            except (OSError, ValueError, KeyError) as exc:
                raise EngineUnavailable(
                    f"ModelScope could not build the pipeline from {self.model_dir}: "
                    f"{type(exc).__name__}: {exc}",
                    Fix("The model folder does not have what ModelScope reads: download it "
                        "again", commands=(download,) if download else ()),
                    model_dir=str(self.model_dir), error=f"{type(exc).__name__}: {exc}"
                ) from None
        self.device = device
        self.precision = precision

    def synthesize(self, text: str) -> tuple[Any, int]:
        import numpy as np
        from tts_doctor.smoke import wav

        with self.profiler.stage("model"):
            kwargs: dict[str, Any] = {"input": text}
            if self.voice:
                kwargs["voice"] = self.voice
            output = self.pipe(**kwargs)
        self.profiler.mark_first_audio()
        with self.profiler.stage("post"):
            try:
                data = output[self._output_key]
            except (KeyError, TypeError):
                raise RuntimeError(f"the pipeline returned no {self._output_key!r}: "
                                   f"{type(output).__name__}") from None
            samples, rate = wav.read(bytes(data))
        self.rate = int(rate)
        return np.asarray(samples, dtype=np.float32), int(rate)

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "model_dir": str(self.model_dir),
                "voice": self.voice, "weights": "pretrained"}

    def close(self) -> None:
        self.pipe = None
