"""Note adjustment: move a recording so its median sung pitch sits on one reference note, formants kept.

Why: two singers compared in different keys differ in pitch more than in voice. Shifted onto a common note,
the `timbre_note` / `expression_note` embeddings compare the voices themselves. A resampling shift would move
the formants with the pitch (a different, smaller or larger, vocal tract), so the shift is done with the WORLD
vocoder (pyworld): f0 scaled, spectral envelope (CheapTrick) and aperiodicity (D4C) left as they are.

The f0 WORLD resynthesises is the recording's `PitchTrack` (DIO + StoneMask on the same 10 ms grid, with octave
jumps folded and unperiodic blips unvoiced), so the pitch tracked for the range is not tracked a second time and
an octave error is not resynthesised as a wrong note. The shift is on every request's path and was over half of
the analysis, so WORLD works on a coarser grid than its defaults where the embeddings show no difference: D4C on
every `APERIODICITY_STEP`-th frame and CheapTrick on every `ENVELOPE_STEP`-th, both interpolated between. The
synthesis, the largest part, keeps CheapTrick's FFT size: at 256 points instead of 512 the shifted envelope was
5 dB RMS off the original's (0.85 dB at 512; tests/test_pitch.py allows 1.5). See docs/benchmarks.md for the time
saved and the agreement with the earlier path.
"""

from __future__ import annotations

import numpy as np
import pyworld

from .input import AudioInputError
from .pitch import HOP_SECONDS, PitchTrack, track_pitch

REFERENCE_MIDI = 57
"""A3 (220 Hz): where typical male and female ranges overlap, so no voice is shifted by much more than an octave."""
FRAME_PERIOD_MS = 1000 * HOP_SECONDS
UNVOICED_APERIODICITY = 1.0 - 1e-12
"""What D4C gives unvoiced frames (WORLD's 1 - kMySafeGuardMinimum)."""
MAX_SHIFT = 24.0
SHIFT_RULES = ("a3", "nearest-a", "cap:N")
NOTE_SHIFT = "a3"
"""How far the note-adjusted copy is moved: "a3", onto REFERENCE_MIDI (up to an octave and more for a high or low
voice); "nearest-a", onto the nearest A in any octave (at most 6 semitones: the key taken out, the register kept);
"cap:N", towards REFERENCE_MIDI by at most N semitones. By training/crossval_ge2e.py --note-shift (2026-12-03),
"nearest-a" loses on both protocols and "cap:6" ties "a3" (docs/training.md), so "a3" stays."""
APERIODICITY_STEP = 6
"""D4C on every sixth 10 ms frame, interpolated in between: at 16 kHz D4C measures a single band's aperiodicity,
which changes slowly."""
ENVELOPE_STEP = 2
"""CheapTrick on every second 10 ms frame, the log envelope interpolated in between (a vowel's formants move over
tens of milliseconds)."""


def _world_f0(x: np.ndarray, sr: int, track: PitchTrack | None) -> tuple[np.ndarray, np.ndarray]:
    """(f0 with 0 where unvoiced, frame times) on WORLD's 10 ms grid for `x`, taken from `track` (tracked if None)."""
    if track is None:
        track = track_pitch(x, sr)
    times = np.arange(int(1000 * x.size / sr / FRAME_PERIOD_MS) + 1) * (FRAME_PERIOD_MS / 1000)
    return np.nan_to_num(track.f0_at(times), nan=0.0), times


def _every(n: int, step: int) -> np.ndarray:
    """Frame indices 0, step, 2 step, ... and the last frame."""
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def _interpolate_rows(rows: np.ndarray, at: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`rows` known at increasing frame indices `at`, linearly interpolated to the frames `where` (ends held)."""
    position = np.interp(where, at, np.arange(at.size))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, at.size - 1)
    weight = (position - low)[:, None]
    return (1 - weight) * rows[low] + weight * rows[high]


def _envelope(x: np.ndarray, sr: int, f0: np.ndarray, times: np.ndarray, f0_floor: float, fft_size: int) -> np.ndarray:
    """CheapTrick on every ENVELOPE_STEP-th frame (and the last), the log envelope interpolated between."""
    picked = _every(len(f0), ENVELOPE_STEP)
    coarse = pyworld.cheaptrick(x, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), sr,
                                f0_floor=f0_floor, fft_size=fft_size)  # fmt: skip
    return np.exp(_interpolate_rows(np.log(coarse), picked, np.arange(len(f0))))


def _aperiodicity(x: np.ndarray, sr: int, f0: np.ndarray, times: np.ndarray, fft_size: int) -> np.ndarray:
    """D4C on every APERIODICITY_STEP-th frame (and the last), interpolated between the analysed voiced frames.

    Unvoiced frames get D4C's own unvoiced value (fully aperiodic), so the interpolation never blurs a consonant
    into a vowel; voiced frames between two analysed voiced frames are interpolated, the ends held.
    """
    picked = _every(len(f0), APERIODICITY_STEP)
    coarse = pyworld.d4c(x, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), sr,
                         fft_size=fft_size)  # fmt: skip
    voiced = f0 > 0
    aperiodicity = np.full((len(f0), coarse.shape[1]), UNVOICED_APERIODICITY)
    if voiced[picked].any():
        aperiodicity[voiced] = _interpolate_rows(coarse[voiced[picked]], picked[voiced[picked]], np.flatnonzero(voiced))
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
    envelope = _envelope(x, sr, f0, times, f0_floor, fft_size)
    aperiodicity = _aperiodicity(x, sr, f0, times, fft_size)
    y = pyworld.synthesize(f0 * 2.0 ** (semitones / 12.0), envelope, aperiodicity, sr, FRAME_PERIOD_MS)
    y = np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
    peak = np.max(np.abs(y))
    if peak > 0.999:
        y *= 0.999 / peak
    return y.astype(np.float32)


def shift_for(median_midi: float, rule: str = NOTE_SHIFT) -> float:
    """Semitones the note-adjusted copy of a recording whose median voiced pitch is `median_midi` is moved by, by
    `rule` (see NOTE_SHIFT)."""
    to_reference = REFERENCE_MIDI - median_midi
    if rule == "a3":
        return float(np.clip(to_reference, -MAX_SHIFT, MAX_SHIFT))
    if rule == "nearest-a":
        return float((to_reference + 6.0) % 12.0 - 6.0)
    if rule.startswith("cap:"):
        cap = float(rule.removeprefix("cap:"))
        return float(np.clip(to_reference, -cap, cap))
    raise ValueError(f"Unknown note shift rule {rule!r}: use {', '.join(SHIFT_RULES)} or cap:N.")


def reference_shift(track: PitchTrack, rule: str = NOTE_SHIFT) -> float:
    """Semitones that move the recording's median voiced pitch as `rule` says (by default onto REFERENCE_MIDI,
    within +-MAX_SHIFT)."""
    midi = track.midi[track.voiced]
    if midi.size == 0:
        raise AudioInputError("No sung pitch was found, so the recording cannot be moved onto the reference note.")
    return shift_for(float(np.median(midi)), rule)


def adjust_to_reference(samples: np.ndarray, sr: int, track: PitchTrack | None = None) -> tuple[np.ndarray, float]:
    """(audio shifted so its median voiced pitch is REFERENCE_MIDI, semitones applied).

    `track` is the recording's pitch track if already computed: it saves tracking again, and its f0 is the one
    resynthesised.
    """
    if track is None:
        track = track_pitch(samples, sr)
    semitones = reference_shift(track)
    return shift_pitch(samples, sr, semitones, track), semitones
