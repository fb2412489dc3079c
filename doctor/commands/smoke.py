"""`tts-doctor smoke`: load a model, synthesize under the memory profiler, check the audio.

Nothing heavy is imported until the command runs (`tts-doctor smoke --help` stays cheap).
Bad input is a usage error (one line, exit code 2) found before any file is written:
empty/whitespace/binary/huge text, an unknown engine, a missing or corrupt checkpoint, a
model id missing from the local cache, a malformed size.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Optional

import click
from tts_doctor import params
from tts_doctor.api import ENGINES as ENGINE_NAMES
from tts_doctor.params import FiniteFloat

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def _size(value: Optional[str], flag: str) -> Optional[int]:
    if value is None:
        return None
    from tts_doctor.smoke.sizes import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def _settings(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        key, value = item.split("=", 1)
        if not key.strip():
            raise click.BadParameter(f"empty key in {item!r}", param_hint="--set")
        out[key.strip()] = value
    return out


class _Progress:
    """One line on stderr, rewritten in place, only on a terminal (and not under CI)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty() and not os.environ.get("CI")

    def __call__(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\x1b[2K  {message}...")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


@click.command()
@click.option("--recipe", metavar="NAME|PATH",
              help="The model's recipe: engine, [model] options, sample rate, smoke text.")
@click.option("--engine", type=click.Choice(ENGINE_NAMES),
              help="Engine to use (default: the recipe's).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Model option, overriding the recipe's [model] table "
                   "(e.g. vocoder=hifigan-v2, seed=1, memory_cap=24MiB).")
@click.option("--checkpoint", metavar="PATH",
              help="Weights: a HiFi-GAN generator checkpoint (reference), a checkpoint "
                   "directory (indextts2), an .onnx voice (piper).")
@click.option("--model-id", metavar="ID", help="ModelScope model id (modelscope engine), "
              "read from the local cache only.")
@click.option("--callable", "function", metavar="MODULE:FUNCTION",
              help="Your own synthesis function returning (samples, sample_rate).")
@click.option("--text", help="Text to speak (default: the recipe's smoke.text).")
@click.option("--text-file", metavar="FILE", help="Read the text from a UTF-8 file ('-': stdin).")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]|mps",
              help="Where to run the model.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              default="auto", show_default=True,
              help="auto: start in fp32 and let the out-of-memory ladder lower it.")
@click.option("--max-chars", type=click.IntRange(min=8), metavar="N",
              help="Split the text at sentence boundaries into chunks of at most N characters.")
@click.option("--no-ladder", is_flag=True, help="Report out-of-memory instead of retrying down "
              "the ladder.")
@click.option("--repeat", type=click.IntRange(min=0, max=1000), default=0, show_default=True,
              metavar="N", help="Synthesize N more times and check memory returns to its "
              "baseline (the leak check; N >= 2).")
@click.option("--vram-budget", metavar="SIZE", help="Fit peak GPU memory against text length "
              "and judge against SIZE (e.g. 8GiB).")
@click.option("--ram-budget", metavar="SIZE", help="The same for a CPU run, with the "
              "process's peak RSS.")
@click.option("--vram-limit", metavar="SIZE", help="Cap the CUDA allocator at SIZE "
              "(torch's per-process memory fraction): emulate a smaller GPU, e.g. 12GiB on "
              "an 80 GB card, and see the out-of-memory ladder for real.")
@click.option("--budget-lengths", metavar="N,N,...", help="Text lengths (characters) the "
              "budget measures (default 50,100,200,400).")
@click.option("--out", "out_path", metavar="FILE", help="Write the audio to FILE (16-bit WAV, "
              "atomically).")
@click.option("--html", "html_path", metavar="FILE", help="Write an HTML report with the memory "
              "timeline and per-stage plots.")
@click.option("--report", "report_path", metavar="FILE", help="Also write the JSON report to "
              "FILE.")
@click.option("--memory-snapshot", metavar="FILE", help="Record PyTorch's CUDA allocator "
              "history to FILE for https://pytorch.org/memory_viz (CUDA only).")
@click.option("--sample-hz", type=FiniteFloat(1, 200, "Hz"), default=25.0,
              show_default=True, help="Memory timeline sampling rate.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-v", "--verbose", is_flag=True, help="Show every finding's details.")
@click.option("--strict", is_flag=True, help="Warnings count as failures (--fail-on warn).")
@click.option("--fail-on", type=click.Choice(["warn", "fail"]), default="fail",
              show_default=True, help="The lowest status that makes the exit code 1.")
@click.option("--color/--no-color", "colour", default=None,
              help="Force colour on or off (default: on a terminal, unless NO_COLOR).")
@click.option("--timeout", type=params.seconds(1), default=1800, show_default=True,
              help="Seconds the whole synthesis may take before the watchdog stops it.")
@click.option("--offline", is_flag=True,
              help="Air-gap audit: synthesize with the network blocked at the socket level "
                   "and the hubs' offline switches set; report every attempted connection "
                   "and runtime download (with the command that pre-fetches it).")
@click.option("--in-process", is_flag=True,
              help="Synthesize in this process instead of a watched child (debugging: a "
                   "crash in model code then ends the doctor too).")
def smoke(recipe: Optional[str], engine: Optional[str], settings: tuple[str, ...],
          checkpoint: Optional[str], model_id: Optional[str], function: Optional[str],
          text: Optional[str], text_file: Optional[str], device: str, precision: str,
          max_chars: Optional[int], no_ladder: bool, repeat: int, vram_budget: Optional[str],
          ram_budget: Optional[str], vram_limit: Optional[str],
          budget_lengths: Optional[str], out_path: Optional[str],
          html_path: Optional[str], report_path: Optional[str], memory_snapshot: Optional[str],
          sample_hz: float, fmt: str, as_json: bool, verbose: bool, strict: bool,
          fail_on: str, colour: Optional[bool], timeout: float, offline: bool,
          in_process: bool) -> int:
    """Load a model and synthesize under a memory profiler; check the audio.

    The synthesis runs in a child process under a watchdog (--timeout): a segfault or hang
    in model code becomes a smoke.run error finding, never the end of the doctor.

    \b
    Examples:
      tts-doctor smoke --recipe piper --out piper.wav
      tts-doctor smoke --recipe reference-hifigan-v1 --html report.html
      tts-doctor smoke --engine reference --set vocoder=hifigan-v2 --repeat 5
      tts-doctor smoke --recipe reference-hifigan-v1 --vram-budget 8GiB
      tts-doctor smoke --callable mypkg.tts:synthesize --text "Hello there."
      tts-doctor smoke --recipe piper --offline

    \b
    Exit codes: 0 no fail or error (warnings allowed), 1 at least one fail
    (or warning with --strict / --fail-on warn), 2 usage error.
    """
    from tts_doctor import api

    if as_json:
        fmt = "json"
    if strict:
        fail_on = "warn"
    if text is not None and text_file is not None:
        raise click.UsageError("give the text with --text or --text-file, not both")
    if not _DEVICE.match(device):
        raise click.BadParameter(f"{device!r} is not auto, cpu, cuda, cuda:N or mps",
                                 param_hint="--device")
    vram = _size(vram_budget, "--vram-budget")
    ram = _size(ram_budget, "--ram-budget")
    limit = _size(vram_limit, "--vram-limit")
    lengths = None
    if budget_lengths is not None:
        from tts_doctor.smoke.budget import parse_lengths

        try:
            lengths = parse_lengths(budget_lengths)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--budget-lengths") from None

    recipe_data = api.load_recipe(recipe)
    from tts_doctor.inputs import check_regular
    from tts_doctor.smoke import text as textmod

    words, source = text, "--text" if text is not None else None
    if text_file is not None:
        try:
            if text_file != "-":  # a FIFO or a device would block the read: refuse it
                check_regular(text_file, "--text-file", sys.maxsize)  # size: read_file
            stdin = sys.stdin.buffer.read(textmod.MAX_TEXT_CHARS * 4 + 2) \
                if text_file == "-" else None
            words = textmod.read_file(text_file, stdin)
        except textmod.TextError as exc:
            raise click.UsageError(str(exc)) from None
        source = "stdin" if text_file == "-" else text_file

    from tts_doctor import atomic
    from tts_doctor.smoke import wav

    for path, what in ((out_path, "--out"), (html_path, "--html"),
                       (report_path, "--report"), (memory_snapshot, "--memory-snapshot")):
        if path is not None:
            atomic.check_target(path, what)  # OutputError: exit 2 before any work

    from tts_doctor.smoke import isolate
    from tts_doctor.smoke.engine import EngineConfigError

    progress = _Progress(enabled=fmt == "text")
    try:
        result = api.smoke(
            recipe=recipe_data, engine=engine, model=_settings(settings),
            checkpoint=checkpoint, model_id=model_id, function=function, text=words,
            text_source=source, device=device, precision=precision, max_chars=max_chars,
            ladder=not no_ladder, repeat=repeat, vram_budget=vram, ram_budget=ram,
            vram_limit=limit, budget_lengths=lengths, memory_snapshot=memory_snapshot,
            sample_hz=sample_hz, offline=offline, timeout=timeout, in_process=in_process,
            progress=progress)
    except (EngineConfigError, isolate.UsageError, textmod.TextError) as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        progress.clear()

    if out_path and result.samples is not None and result.section.audio is not None:
        wav.write(out_path, result.samples, result.sample_rate)
        result.section.audio["out"] = out_path
    if html_path:
        result.section.html = html_path
    data, report = result.report()
    if html_path:
        from tts_doctor.smoke import html

        html.write(html_path, data, result.samples, result.sample_rate)
    from tts_doctor.render import json as json_render
    from tts_doctor.render import text as text_render
    from tts_doctor.smoke import reporting

    if report_path:
        atomic.write_text(report_path, json_render.render(data))
    if fmt == "json":
        click.echo(json_render.render(data), nl=False)
    else:
        stream = click.get_text_stream("stdout")
        click.echo(reporting.text_block(data["smoke"]), nl=False)
        click.echo(text_render.render(data, verbose=verbose,
                                      colour=text_render.use_colour(stream, colour),
                                      stream=stream), nl=False, color=True)
    return report.exit_code(fail_on)
