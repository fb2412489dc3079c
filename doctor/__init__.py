"""tts-doctor: diagnose and repair deployments of PyTorch text-to-speech models.

The package imports nothing heavy at start-up: torch, numpy and scipy are imported only inside
the probes, shims and engines that need them.
"""

__version__ = "0.1.0"

# The library surface (tts_doctor.api), imported on first use so that `import tts_doctor`
# (and `tts-doctor --help`) stays free of everything heavy. `tts_doctor.api.smoke` is
# exported as `run_smoke`: `tts_doctor.smoke` is the smoke subpackage, which replaces a
# package attribute of that name as soon as it is imported.
__all__ = ["FixPlan", "Report", "Selection", "SmokeRun", "check", "fix_plan", "judge_facts",
           "load_recipe", "run_smoke", "select_interpreter"]
_ALIASES = {"run_smoke": "smoke"}


def __getattr__(name: str):  # PEP 562
    if name in ("Report",):
        from tts_doctor.report import Report

        return Report
    if name in __all__:
        from tts_doctor import api

        return getattr(api, _ALIASES.get(name, name))
    raise AttributeError(f"module 'tts_doctor' has no attribute {name!r}")
