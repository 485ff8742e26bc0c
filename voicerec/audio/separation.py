"""Vocals separation for full mixes (optional): the encoders and the pitch tracker expect a solo voice.

Uses demucs when it is installed (`pip install demucs`); its weights are downloaded on first use into torch's
hub cache, which needs the internet once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np

DEMUCS_MODEL = "htdemucs"

INSTALL_HINT = (
    "Vocals separation needs demucs: `pip install demucs` (it downloads its weights once, on first use, which "
    "needs the internet), or separate the vocals yourself and use the vocal stems without --separate."
)
WEIGHTS_HINT = (
    f"demucs is installed but could not load its '{DEMUCS_MODEL}' weights, which it downloads once into torch's "
    "hub cache (~/.cache/torch/hub/checkpoints). Run `demucs --two-stems vocals ANY_SONG.mp3` once on a machine "
    "with internet and copy that folder here, or separate the vocals elsewhere (`demucs --two-stems vocals "
    "SONG.mp3`) and use the vocal stems without --separate."
)


class SeparationError(RuntimeError):
    """demucs is missing or its weights cannot be loaded; the message says what to do."""


def available() -> bool:
    try:
        import demucs.apply  # noqa: F401
        import demucs.pretrained  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _model():
    if not available():
        raise SeparationError(INSTALL_HINT)
    from demucs.pretrained import get_model

    try:
        return get_model(DEMUCS_MODEL).eval()
    except Exception as exc:  # offline, blocked download, corrupt cache: all end the same way for the user
        raise SeparationError(f"{WEIGHTS_HINT} Cause: {exc}") from exc


def separate_recording(source: str | Path | tuple[int, np.ndarray], seconds: float = 180.0) -> tuple[int, np.ndarray]:
    """(sampling rate, vocals) of a file or a (rate, samples) microphone tuple: its first `seconds` through demucs,
    ready for `load_audio`. Raises SeparationError (with what to do) where demucs or its weights are missing."""
    _model()  # fail before decoding
    if isinstance(source, tuple):
        from .input import _from_array

        rate, data = int(source[0]), _from_array(int(source[0]), source[1])[: int(seconds * source[0])]
    else:
        mix, rate = librosa.load(str(source), sr=None, mono=False, duration=seconds)
        data = mix.T if mix.ndim == 2 else mix
    return int(rate), separate_vocals(data, int(rate))


def separate_vocals(samples: np.ndarray, sr: int) -> np.ndarray:
    """The vocals stem of a mono or (samples, channels) mix, as mono float32 at `sr`."""
    import torch
    from demucs.apply import apply_model

    model = _model()
    mix = np.asarray(samples, dtype=np.float32)
    mix = mix[:, None] if mix.ndim == 1 else mix
    mix = librosa.resample(mix.T, orig_sr=sr, target_sr=model.samplerate)  # (channels, samples)
    if mix.shape[0] != model.audio_channels:
        mix = np.repeat(mix.mean(axis=0, keepdims=True), model.audio_channels, axis=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # demucs is the heaviest stage: a GPU when there is one
    with torch.inference_mode():
        stems = apply_model(model, torch.from_numpy(mix)[None], split=True, overlap=0.25, progress=False,
                            device=device)[0].cpu()  # fmt: skip
    vocals = stems[model.sources.index("vocals")].mean(dim=0).numpy()
    return librosa.resample(vocals, orig_sr=model.samplerate, target_sr=sr).astype(np.float32)
