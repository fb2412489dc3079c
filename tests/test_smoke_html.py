"""The `--html` report: values in the tables (not Python reprs), a legend for every mark on
the timeline, memory axes from zero, real alt text, and a page that renders: opened in
headless Chromium (Debian's `chromium`; .ci/run installs it), its screenshot is not blank."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

VOICE = "tests.fakes_smoke.voices:speak"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("html")
    page = out / "report.html"
    r = run_cli("smoke", "--callable", VOICE, "--text", "Hello there. This is a smoke test.",
                "--repeat", "2", "--ram-budget", "4GiB", "--html", str(page), "--json")
    assert r.returncode == 0, r
    return page, r.json


def _cells(page: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", page, flags=re.S)


def test_tables_show_values_not_python_reprs(report):
    page = report[0].read_text()
    cells = _cells(page)
    assert cells
    for cell in cells:
        assert cell not in ("None", "True", "False"), cell
        assert not re.search(r"\{'|\['|': ", cell), cell
    assert "<td>cpu, fp32, whole text</td>" in page  # the ladder's plan, in words
    assert "<td>-</td>" in page  # what does not apply (no torch allocator on a callable)


def test_every_image_has_alt_text_with_numbers(report):
    page, data = report
    alts = re.findall(r'<img alt="([^"]*)"', page.read_text())
    assert len(alts) == 4  # timeline, stages, waveform, budget
    for alt in alts:
        assert alt not in ("plot", "") and len(alt) > 40 and re.search(r"\d", alt), alt
    secs = data["smoke"]["audio"]["seconds"]
    assert any(f"{secs:.2f} s of audio" in a for a in alts), alts


def test_memory_axes_start_at_zero_and_the_legend_covers_the_events(report):
    from tts_doctor.smoke import html

    sec = report[1]["smoke"]
    timeline = html.timeline_figure(sec)
    ax = timeline.axes[0]
    assert ax.get_ylim()[0] == 0 and "from 0" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("event") and "ladder rung" in lbl for lbl in labels), labels
    assert "stage: model" in labels
    assert html.stages_figure(sec).axes[1].get_ylim()[0] == 0
    budget = html.budget_figure(sec).axes[0]
    assert budget.get_ylim()[0] == 0 and budget.get_xlim()[0] == 0


def test_a_section_with_nulls_renders_without_reprs():
    from tts_doctor.smoke import html

    data = {"tool": {"name": "tts-doctor", "version": "0"}, "created": None, "recipe": None,
            "findings": [], "smoke": {"engine": {"name": "x", "device": None, "precision": None},
                                      "text": {"chars": None},
                                      "ladder": {"rungs": [{"rung": "as-configured",
                                                            "outcome": "error", "detail": None,
                                                            "wall_s": None, "plan": None}]},
                                      "stages": [{"name": "load", "calls": 1, "wall_s": 0.5,
                                                  "rss_peak": None}]}}
    page = html.render(data)
    assert "None" not in page and "{'" not in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install "
                    "chromium; .ci/run installs it)")
def test_the_page_renders_in_headless_chromium(report, tmp_path):
    import numpy as np
    from matplotlib import image

    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,2600",
         f"--screenshot={shot}", report[0].as_uri()],
        capture_output=True, text=True, timeout=180)
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = image.imread(str(shot))[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    ink = np.any(pixels < 0.9, axis=2)  # anything not (near) white
    assert ink.mean() > 0.03, f"only {ink.mean():.1%} of the screenshot is not white"
    # the plots are there: the page has colour, not only black text
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.2
    assert colourful.mean() > 0.005, f"{colourful.mean():.2%} coloured pixels"
    # and the top rows (the title) are not empty either
    assert ink[:200].mean() > 0.005
