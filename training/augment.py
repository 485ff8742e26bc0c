"""The transform that defines a negative for both singing encoders: a pitch shift by resampling.

Resampling moves the formants with the pitch, as a different (smaller or larger) vocal tract would: the same
moment sung by another voice. (The time-stretched copies are made on the spectrogram, `finetune_ge2e`.)
"""

from __future__ import annotations

import numpy as np
import soxr


def semitone_ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


def pitch_shift(x: np.ndarray, semitones: float, sr: int = 16000) -> np.ndarray:
    """Raise pitch *and formants* by `semitones` by resampling (a tape-speed change); the output is
    `len(x) / ratio` samples long. soxr makes this ~100x faster than a phase-vocoder pitch shift."""
    ratio = semitone_ratio(semitones)
    return soxr.resample(x.astype(np.float32), sr * ratio, sr, quality="HQ").astype(np.float32)
