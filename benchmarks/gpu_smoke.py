"""GPU numbers for docs/GPU.md: the reference engine on CUDA in fp32 and fp16.

    python benchmarks/gpu_smoke.py [--device cuda] [--text-repeat 4] [--vocoder hifigan-v1]

Prints one JSON object: per precision, the vocoder's and the whole run's peak torch
allocated and reserved memory, NVML device-used memory, RTF (warm: median of 3 repeats) and
time to first audio. Needs a CUDA device; exits 2 with a message where there is none.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--vocoder", default="hifigan-v1")
    ap.add_argument("--text-repeat", type=int, default=4)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_smoke: torch sees no CUDA device", file=sys.stderr)
        return 2
    from tts_doctor.smoke import session

    text = "The quick brown fox jumps over the lazy dog. " * args.text_repeat
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "cuda": torch.version.cuda, "vocoder": args.vocoder, "chars": len(text.strip()),
                 "runs": {}}
    for precision in ("fp32", "fp16"):
        opts = session.Options(engine="reference", text=text.strip(),
                               model={"vocoder": args.vocoder}, device=args.device,
                               precision=precision, repeat=3)
        res = session.run(opts)
        sec = res.section.to_dict()
        stages = {s["name"]: s for s in sec["stages"]}
        rtfs = [r["rtf"] for r in (sec["repeat"] or {}).get("runs", []) if r.get("rtf")]
        out["runs"][precision] = {
            "status": {f.id: f.status.value for f in res.findings},
            "rtf_cold": sec["timing"]["rtf"] if sec["timing"] else None,
            "rtf_warm_median": statistics.median(rtfs) if rtfs else None,
            "first_audio_s": sec["timing"]["first_audio_s"] if sec["timing"] else None,
            "peak": sec["memory"]["peak"] if sec["memory"] else None,
            "vocoder": {k: stages.get("vocoder", {}).get(k) for k in
                        ("torch_allocated_peak", "torch_reserved_peak", "nvml_used_peak",
                         "num_alloc_retries", "wall_s")},
            "nvml_device": sec.get("profiler", {}).get("nvml_device"),
        }
        torch.cuda.empty_cache()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
