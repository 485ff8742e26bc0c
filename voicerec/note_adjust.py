"""Note adjustment: move a recording so its median sung pitch sits on one reference note, formants kept.

Why: two singers compared in different keys differ in pitch more than in voice. Shifted onto a common note,
the `timbre_note` / `expression_note` embeddings compare the voices themselves. A resampling shift would move
the formants with the pitch (a different, smaller or larger, vocal tract), so the shift is done with the WORLD
vocoder (pyworld): f0 scaled, spectral envelope (CheapTrick) and aperiodicity (D4C) left as they are.

The f0 WORLD resynthesises is the recording's `PitchTrack` (DIO + StoneMask on the same 10 ms grid, with octave
jumps folded and unperiodic blips unvoiced), so the pitch tracked for the range is not tracked a second time and
an octave error is not resynthesised as a wrong note. D4C, the costliest analysis step, runs on every
`APERIODICITY_STEP`-th frame only (see `_aperiodicity`).
"""

from __future__ import annotations

import numpy as np
import pyworld

from voicerec.audio import AudioInputError
from voicerec.pitch import HOP_SECONDS, PitchTrack, track_pitch

REFERENCE_MIDI = 57
"""A3 (220 Hz): where typical male and female ranges overlap, so no voice is shifted by much more than an octave."""
FRAME_PERIOD_MS = 1000 * HOP_SECONDS
UNVOICED_APERIODICITY = 1.0 - 1e-12
"""What D4C gives unvoiced frames (WORLD's 1 - kMySafeGuardMinimum)."""
MAX_SHIFT = 24.0
APERIODICITY_STEP = 3
"""D4C on every third 10 ms frame, interpolated in between. At 16 kHz D4C measures a single band's aperiodicity,
which changes slowly, and it was the costliest WORLD step (about half of the shift). With this and the track's f0
reused, a shift took about half the time, and the note embeddings of 8 real gtsinger-dev clips kept a cosine of at
least 0.9997 to those of the full-rate path; fold-A retrieval with timbre_note / expression_note was unchanged."""


def _world_f0(x: np.ndarray, sr: int, track: PitchTrack | None) -> tuple[np.ndarray, np.ndarray]:
    """(f0 with 0 where unvoiced, frame times) on WORLD's 10 ms grid for `x`, taken from `track` (tracked if None)."""
    if track is None:
        track = track_pitch(x, sr)
    times = np.arange(int(1000 * x.size / sr / FRAME_PERIOD_MS) + 1) * (FRAME_PERIOD_MS / 1000)
    nearest = np.rint(np.interp(times, track.times, np.arange(len(track.times)))).astype(int)
    return np.nan_to_num(track.f0[nearest], nan=0.0), times


def _aperiodicity(x: np.ndarray, sr: int, f0: np.ndarray, times: np.ndarray, fft_size: int) -> np.ndarray:
    """D4C on every APERIODICITY_STEP-th frame (and the last), interpolated between the analysed voiced frames.

    Unvoiced frames get D4C's own unvoiced value (fully aperiodic), so the interpolation never blurs a consonant
    into a vowel; voiced frames between two analysed voiced frames are interpolated, the ends held.
    """
    n = len(f0)
    picked = np.unique(np.r_[np.arange(0, n, APERIODICITY_STEP), n - 1])
    coarse = pyworld.d4c(x, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), sr,
                         fft_size=fft_size)  # fmt: skip
    voiced = f0 > 0
    analysed = picked[voiced[picked]]
    aperiodicity = np.full((n, coarse.shape[1]), UNVOICED_APERIODICITY)
    if analysed.size:
        rows = coarse[voiced[picked]]
        position = np.interp(np.flatnonzero(voiced), analysed, np.arange(analysed.size))
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, analysed.size - 1)
        weight = (position - low)[:, None]
        aperiodicity[voiced] = (1 - weight) * rows[low] + weight * rows[high]
    return aperiodicity


def shift_pitch(samples: np.ndarray, sr: int, semitones: float, track: PitchTrack | None = None) -> np.ndarray:
    """`samples` with f0 multiplied by 2**(semitones/12) and the spectral envelope unchanged.

    `track` is the recording's pitch track if already computed (10 ms frames from 0 s, as `track_pitch` gives).
    Always resynthesised, even for 0 semitones, so every adjusted clip carries the same vocoder colouring.
    Returns float32 at `sr` with the input's length.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size < int(0.05 * sr):
        raise AudioInputError("Note adjustment needs at least 50 ms of mono audio.")
    if not np.isfinite(semitones) or abs(semitones) > MAX_SHIFT:
        raise ValueError(f"Shift of {semitones} semitones is outside +-{MAX_SHIFT:.0f}.")
    f0, times = _world_f0(x, sr, track)
    # the shortest FFT that resolves this clip's lowest notes: 512 instead of 1024 at 16 kHz unless it goes
    # below ~94 Hz, which makes analysis and synthesis ~1.5x faster without smearing a bass's formants
    voiced = f0[f0 > 0]
    f0_floor = float(np.clip(0.9 * np.percentile(voiced, 1), 40.0, 200.0)) if voiced.size else 71.0
    fft_size = pyworld.get_cheaptrick_fft_size(sr, f0_floor)
    envelope = pyworld.cheaptrick(x, f0, times, sr, f0_floor=f0_floor, fft_size=fft_size)
    aperiodicity = _aperiodicity(x, sr, f0, times, fft_size)
    y = pyworld.synthesize(f0 * 2.0 ** (semitones / 12.0), envelope, aperiodicity, sr, FRAME_PERIOD_MS)
    y = np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
    peak = np.max(np.abs(y))
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def adjust_to_reference(samples: np.ndarray, sr: int, track: PitchTrack | None = None) -> tuple[np.ndarray, float]:
    """(audio shifted so its median voiced pitch is REFERENCE_MIDI, semitones applied).

    `track` is the recording's pitch track if already computed: it saves tracking again, and its f0 is the one
    resynthesised.
    """
    if track is None:
        track = track_pitch(samples, sr)
    midi = track.midi[track.voiced]
    if midi.size == 0:
        raise AudioInputError("No sung pitch was found, so the recording cannot be moved onto the reference note.")
    semitones = float(np.clip(REFERENCE_MIDI - np.median(midi), -MAX_SHIFT, MAX_SHIFT))
    return shift_pitch(samples, sr, semitones, track), semitones
