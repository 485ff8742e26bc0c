"""Where the default models and catalog come from: an explicit argument, else an environment variable, else the
folder shipped in this repository's `hub/`, else the Hub id (so an installed package still finds them)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_DIR = REPO_ROOT / "hub"
HUB_NAMESPACE = "voicerec"

# artefact -> (environment variable, Hub repository name)
ARTEFACTS: dict[str, tuple[str, str]] = {
    "timbre": ("VOICEREC_TIMBRE_MODEL", "voicerec-sscl-timbre"),
    "expression": ("VOICEREC_EXPRESSION_MODEL", "voicerec-sscl-expression"),
    "mood": ("VOICEREC_MOOD_MODEL", "voicerec-tjae"),
    "catalog": ("VOICEREC_CATALOG", "voicerec-catalog"),
    "voice_type": ("VOICEREC_VOICE_TYPE_MODEL", "voicerec-voice-type"),
}


def resolve(artefact: str, explicit: str | Path | None = None) -> str:
    """The folder or Hub id to load `artefact` ("timbre", "expression", "mood", "catalog" or
    "voice_type") from."""
    if artefact not in ARTEFACTS:
        raise ValueError(f"Unknown artefact {artefact!r}; expected one of {', '.join(ARTEFACTS)}.")
    if explicit:
        return str(explicit)
    env, repo = ARTEFACTS[artefact]
    if os.environ.get(env):
        return os.environ[env]
    local = HUB_DIR / repo
    if local.is_dir() and any(local.iterdir()):
        return str(local)
    return f"{HUB_NAMESPACE}/{repo}"


def cache_dir() -> Path:
    """Scratch space for resumable work (catalog builds): $VOICEREC_CACHE or ~/.cache/voicerec."""
    return Path(os.environ.get("VOICEREC_CACHE") or Path.home() / ".cache" / "voicerec")
