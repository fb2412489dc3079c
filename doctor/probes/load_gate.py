"""transformers' torch.load gate (FAILURES.md F3, CVE-2025-32434).

Since the torch.load vulnerability (CVE-2025-32434, fixed in torch 2.6), transformers refuses
to `torch.load` a checkpoint on torch < 2.6, even with `weights_only=True`: "Due to a serious
vulnerability issue in `torch.load` ... we now require users to upgrade torch to at least
v2.6". safetensors checkpoints are not affected. The probe asks transformers' own gate
(`transformers.utils.import_utils.check_torch_load_is_safe`) in the worker, and the recipe's
model files say whether the deployment loads anything through it.
"""

from __future__ import annotations

from typing import Any, Optional

from tts_doctor import dists
from tts_doctor.finding import Fix, Result, fail, ok, skip, warn
from tts_doctor.registry import Context, probe

PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
INDEX = "https://download.pytorch.org/whl/{tag}"


def pickled_files(ctx: Context) -> Optional[list[str]]:
    """The recipe's model files that transformers would torch.load (None: no file list)."""
    files = ((ctx.recipe or {}).get("cache") or {}).get("files")
    if files is None:
        return None
    return [str(f) for f in files if str(f).lower().endswith(PICKLED)]


def judge_gate(gate: Optional[str], torch_version: str, transformers_version: str,
               pickled: Optional[list[str]], torchaudio: Optional[str] = None) -> Result:
    """The verdict from what the gate said (`gate`: its error, None when open);
    `torchaudio`: its installed version, upgraded with torch when there is one."""
    details: dict[str, Any] = {"torch": torch_version, "transformers": transformers_version,
                               "gate": gate, "pickled_files": pickled}
    if gate is None:
        return ok(f"transformers {transformers_version} lets torch {torch_version} load "
                  "non-safetensors checkpoints (torch >= 2.6)", **details)
    local = torch_version.split("+", 1)[1] if "+" in torch_version else None
    extra = f"--index-url {INDEX.format(tag=local)}" if local else ""
    fix = Fix("torch 2.6 fixed CVE-2025-32434, and transformers refuses torch.load on older "
              "torch: upgrade torch (with torchaudio, from the index of this build), or use "
              "the model's safetensors weights.",
              commands=(dists.pip_install("torch>=2.6", *(
                  ["torchaudio>=2.6"] if torchaudio else []), extra=extra),))
    if pickled == []:
        return ok(f"transformers {transformers_version} refuses torch.load on torch "
                  f"{torch_version}, but the recipe's model files are all safetensors", **details)
    what = (f"the recipe's {', '.join(pickled[:3])}" if pickled else
            "any .bin/.pt checkpoint")
    summary = (f"transformers {transformers_version} refuses to torch.load {what} on torch "
               f"{torch_version}: \"Due to a serious vulnerability issue in torch.load ... "
               "upgrade torch to at least v2.6\" (CVE-2025-32434)")
    return (fail if pickled else warn)(summary, fix, **details)


def collect_load_gate(ctx: Context) -> dict[str, Any]:
    """transformers', torch's and torchaudio's versions, what importing transformers'
    import_utils raised, whether it has `check_torch_load_is_safe`, and what calling it
    raised (None: the gate is open)."""
    facts: dict[str, Any] = {"transformers": dists.version("transformers"),
                             "torch": dists.version("torch"),
                             "torchaudio": dists.version("torchaudio")}
    if facts["transformers"] is None or facts["torch"] is None:
        return facts
    try:
        from transformers.utils import import_utils
    except Exception as exc:
        facts["import_error"] = f"{type(exc).__name__}: {exc}"
        return facts
    check = getattr(import_utils, "check_torch_load_is_safe", None)
    facts["has_gate"] = check is not None
    if check is None:
        return facts
    try:
        check()
        facts["gate"] = None
    except Exception as exc:
        facts["gate"] = f"{type(exc).__name__}: {exc}"[:500]
    return facts


@probe("torch.load-gate", title="transformers lets this torch load non-safetensors checkpoints",
       memo=True, isolated=True, families=("F3",), timeout=120, collect=collect_load_gate,
       component=("transformers", "torch"))
def load_gate(ctx: Context, facts: dict[str, Any]) -> Optional[Result]:
    """No finding without both transformers and torch (or when the recipe marks either
    absent). Calls transformers' own gate, `check_torch_load_is_safe()` (transformers 4.50+;
    older releases have none: `ok`), which raises on torch < 2.6. A closed gate fails when the
    recipe's `[cache]` files include pickled weights (.bin, .pt, .pth, .ckpt), is `ok` when
    they are all safetensors, and warns without a file list. The fix upgrades torch to 2.6+
    from the index of the installed build, or points at safetensors weights."""
    tv, torch_version = facts.get("transformers"), facts.get("torch")
    if tv is None or torch_version is None:
        return None
    if facts.get("import_error"):
        return skip(f"transformers {tv} does not import ({facts['import_error']})"[:300])
    if not facts.get("has_gate"):
        return ok(f"transformers {tv} has no torch.load gate (it predates CVE-2025-32434's "
                  "check)", torch=torch_version, transformers=tv, gate=None)
    return judge_gate(facts.get("gate"), torch_version, tv, pickled_files(ctx),
                      facts.get("torchaudio"))
