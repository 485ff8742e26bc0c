"""Note adjustment: move a recording so its median sung pitch sits on one reference note, formants kept.

Why: two singers compared in different keys differ in pitch more than in voice. Shifted onto a common note,
the `timbre_note` / `expression_note` embeddings compare the voices themselves. A resampling shift would move
the formants with the pitch (a different, smaller or larger, vocal tract), so the shift is done with the WORLD
vocoder (pyworld): f0 scaled, spectral envelope (CheapTrick) and aperiodicity (D4C) left as they are.
"""

from __future__ import annotations

import numpy as np
import pyworld

from voicerec.audio import AudioInputError
from voicerec.pitch import PitchTrack, track_pitch

REFERENCE_MIDI = 57
"""A3 (220 Hz): where typical male and female ranges overlap, so no voice is shifted by much more than an octave."""
FRAME_PERIOD_MS = 10.0
MAX_SHIFT = 24.0


def shift_pitch(samples: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """`samples` with f0 multiplied by 2**(semitones/12) and the spectral envelope unchanged.

    Always resynthesised, even for 0 semitones, so every adjusted clip carries the same vocoder colouring.
    Returns float32 at `sr` with the input's length.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size < int(0.05 * sr):
        raise AudioInputError("Note adjustment needs at least 50 ms of mono audio.")
    if not np.isfinite(semitones) or abs(semitones) > MAX_SHIFT:
        raise ValueError(f"Shift of {semitones} semitones is outside +-{MAX_SHIFT:.0f}.")
    f0, times = pyworld.dio(x, sr, f0_floor=65.0, f0_ceil=1100.0, frame_period=FRAME_PERIOD_MS, speed=2)
    f0 = pyworld.stonemask(x, f0, times, sr)
    # the shortest FFT that resolves this clip's lowest notes: 512 instead of 1024 at 16 kHz unless it goes
    # below ~94 Hz, which makes analysis and synthesis ~1.5x faster without smearing a bass's formants
    voiced = f0[f0 > 0]
    f0_floor = float(np.clip(0.9 * np.percentile(voiced, 1), 40.0, 200.0)) if voiced.size else 71.0
    fft_size = pyworld.get_cheaptrick_fft_size(sr, f0_floor)
    envelope = pyworld.cheaptrick(x, f0, times, sr, f0_floor=f0_floor, fft_size=fft_size)
    aperiodicity = pyworld.d4c(x, f0, times, sr, fft_size=fft_size)
    y = pyworld.synthesize(f0 * 2.0 ** (semitones / 12.0), envelope, aperiodicity, sr, FRAME_PERIOD_MS)
    y = np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
    peak = np.max(np.abs(y))
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def adjust_to_reference(samples: np.ndarray, sr: int, track: PitchTrack | None = None) -> tuple[np.ndarray, float]:
    """(audio shifted so its median voiced pitch is REFERENCE_MIDI, semitones applied).

    `track` is the recording's pitch track if already computed (it saves tracking again).
    """
    if track is None:
        track = track_pitch(samples, sr)
    midi = track.midi[track.voiced]
    if midi.size == 0:
        raise AudioInputError("No sung pitch was found, so the recording cannot be moved onto the reference note.")
    semitones = float(np.clip(REFERENCE_MIDI - np.median(midi), -MAX_SHIFT, MAX_SHIFT))
    return shift_pitch(samples, sr, semitones), semitones
