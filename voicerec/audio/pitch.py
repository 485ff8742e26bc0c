"""Pitch tracking for singing: f0 every 10 ms, fast, with octave errors corrected.

WORLD's DIO (via pyworld) proposes f0 candidates on a decimated signal and StoneMask refines them to the
sample-accurate instantaneous frequency. Both are set for speed as far as measurement showed no loss (issue #16,
docs/pitch_and_range.md): DIO on a 4x decimated signal with 2.5 band filters per octave (2x with 2 per octave
took 1.5x as long; 1 per octave, or 4x with 2, dropped clearly voiced frames of real singing), StoneMask on every
second frame and at half the sampling rate where it reads the same harmonics (`_refine`). That made the tracker
1.3-1.8x faster (1.6x on 15 s of baritone singing) with the same voice parts, ranges within 0.52 semitone on
gtsinger-dev, and closer agreement with pyin. DIO is now about 60 % of the time.
DIO's usual failure on singing is a jump of an octave for a few frames (a strong second harmonic, or a
subharmonic in a breathy low note), which users read as a wrong note. A running median of log-f0 flags frames
a whole number of octaves away from their context, and the periodicity of the signal at the two candidate
periods decides which octave is right (`_fix_octaves`), so brief real leaps are not folded away.
Each frame's confidence is the normalised autocorrelation of the signal at the estimated period: near 1 for a
clean periodic voice, near 0 for noise, so frames below `MIN_CONFIDENCE` are unvoiced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld
from scipy.ndimage import median_filter
from scipy.signal import resample_poly

from .input import AudioInputError

HOP_SECONDS = 0.010
MIN_CONFIDENCE = 0.5
"""Frames whose periodicity at the estimated period is lower than this are treated as unvoiced."""
OCTAVE_WINDOW_SECONDS = 0.31
"""Span of the running median that proposes the other octave for frames that jump an octave away from it."""
OCTAVE_MARGIN = 0.03
"""The more periodic octave candidate wins; within this margin, the higher one (as in YIN)."""
MIN_RUN_FRAMES = 4
"""Voiced runs shorter than this (40 ms) are blips, not sung notes."""
DIO_SPEED = 4
DIO_CHANNELS_IN_OCTAVE = 2.5
REFINE_STEP = 2
"""StoneMask refines every this many frames; the frames between are interpolated when DIO agrees (`_refine`)."""
INTERPOLATE_CENTS = 20.0
"""A frame between refined ones takes their log-midpoint if DIO's own f0 is this close to it and the refined
neighbours are within twice this of each other; otherwise (a note change, a glide) it is refined too."""


@dataclass
class PitchTrack:
    """f0 (Hz, NaN where unvoiced) and a 0..1 confidence for frames centred at `times` (seconds)."""

    times: np.ndarray
    f0: np.ndarray
    confidence: np.ndarray

    @property
    def voiced(self) -> np.ndarray:
        return np.isfinite(self.f0)

    @property
    def midi(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 69.0 + 12.0 * np.log2(self.f0 / 440.0)

    def f0_at(self, times: np.ndarray) -> np.ndarray:
        """f0 (NaN where unvoiced) of the frame nearest each of `times` (seconds; beyond the track: its end frame),
        for another frame grid (WORLD's, a feature extractor's)."""
        nearest = np.rint(np.interp(times, self.times, np.arange(len(self.times)))).astype(int)
        return self.f0[nearest]

    @property
    def hop_seconds(self) -> float:
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else HOP_SECONDS


def _periodicity(x: np.ndarray, sr: int, times: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation at lag 1/f0 over a window of two periods (at least 20 ms) per frame."""
    conf = np.zeros(len(f0))
    idx = np.flatnonzero(f0 > 0)
    if idx.size == 0:
        return conf
    lags = np.round(sr / f0[idx]).astype(int)
    width = max(int(0.02 * sr), int(2 * lags.max()))
    centres = np.round(times[idx] * sr).astype(int)
    padded = np.pad(x, (width, 2 * width + lags.max()))
    starts = centres + width - width // 2
    grid = np.arange(width)
    a = padded[starts[:, None] + grid[None, :]]
    b = padded[(starts + lags)[:, None] + grid[None, :]]
    num = (a * b).sum(1)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1)) + 1e-12
    conf[idx] = np.clip(num / den, 0.0, 1.0)
    return conf


def _stonemask(x: np.ndarray, x_half: np.ndarray, sr: int, f0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """StoneMask, at half the sampling rate for f0 up to 0.9 x sr/24: it reads harmonics 1-6 only (and refuses
    f0 above fs/12), so the half-rate signal holds all it reads and its FFTs are half as long (median difference
    0.1 cent on gtsinger-dev)."""
    out = np.zeros(f0.size)
    low = f0 <= 0.9 * sr / 24 if sr % 2 == 0 else np.zeros(f0.size, dtype=bool)
    for part, signal, rate in ((low, x_half, sr // 2), (~low, x, sr)):
        if part.any():
            out[part] = pyworld.stonemask(
                signal, np.ascontiguousarray(f0[part]), np.ascontiguousarray(times[part]), rate
            )
    return out


def _refine(x: np.ndarray, sr: int, f0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """StoneMask's f0 on every `REFINE_STEP`-th frame and the frames between where interpolation would disagree
    with DIO; the other frames between take the log-midpoint of their refined neighbours.

    StoneMask is half of the tracker's time. The interpolated frames are smoother than StoneMask's own (a 20 ms
    step follows a 5-6 Hz vibrato within a few cents), which agrees better with pyin on real singing.
    """
    x_half = resample_poly(x, 1, 2) if sr % 2 == 0 else x
    anchors = np.unique(np.r_[np.arange(0, f0.size, REFINE_STEP), f0.size - 1])
    refined = np.zeros(f0.size)
    refined[anchors] = _stonemask(x, x_half, sr, f0[anchors], times[anchors])
    between = np.setdiff1d(np.flatnonzero(f0 > 0), anchors)
    right = np.searchsorted(anchors, between)
    left, right = anchors[right - 1], anchors[right]
    a, b = refined[left], refined[right]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (between - left) / (right - left)
        guess = np.exp2((1 - w) * np.log2(a) + w * np.log2(b))
        close = (np.abs(1200 * np.log2(f0[between] / guess)) < INTERPOLATE_CENTS) & (
            np.abs(1200 * np.log2(a / b)) < 2 * INTERPOLATE_CENTS
        )
    ok = (a > 0) & (b > 0) & close
    refined[between[ok]] = guess[ok]
    todo = between[~ok]
    refined[todo] = _stonemask(x, x_half, sr, f0[todo], times[todo])
    return refined


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2], edges[1::2], strict=True))


def _fold_octaves(log2_f0: np.ndarray, window: int) -> np.ndarray:
    """Move values that sit a whole number of octaves from the running median back next to it."""
    out = log2_f0.copy()
    for _ in range(2):
        ref = median_filter(out, size=window, mode="nearest")
        k = np.round(out - ref)
        near_octave = (k != 0) & (np.abs(out - ref - k) < 0.25)
        if not near_octave.any():
            break
        out[near_octave] -= k[near_octave]
    return out


def _fix_octaves(
    x: np.ndarray, sr: int, times: np.ndarray, f0: np.ndarray, confidence: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frames an octave away from their context get the octave the signal supports better.

    The context (running median of log-f0) only proposes the other octave; the signal decides: the candidate
    with the more periodic signal at its period wins, the higher on a near tie, since a periodic signal is just
    as periodic at twice its period (YIN's rule). So a clear DIO doubling is fixed while a brief real leap stays;
    the context alone (folding every jump) also folded real short high notes on gtsinger-dev.
    """
    f0, confidence = f0.copy(), confidence.copy()
    idx = np.flatnonzero(f0 > 0)
    log2_f0 = np.log2(f0[idx])
    folded = _fold_octaves(log2_f0, window)
    moved = idx[folded != log2_f0]
    if moved.size == 0:
        return f0, confidence
    alt = np.zeros_like(f0)
    alt[moved] = 2.0 ** folded[folded != log2_f0]
    alt_confidence = _periodicity(x, sr, times, alt)[moved]
    alt_is_higher = alt[moved] > f0[moved]
    higher = np.where(alt_is_higher, alt_confidence, confidence[moved])
    lower = np.where(alt_is_higher, confidence[moved], alt_confidence)
    use_alt = np.where(alt_is_higher, higher >= lower - OCTAVE_MARGIN, higher < lower - OCTAVE_MARGIN)
    f0[moved[use_alt]] = alt[moved[use_alt]]
    confidence[moved[use_alt]] = alt_confidence[use_alt]
    return f0, confidence


def track_pitch(
    samples: np.ndarray,
    sr: int = 16000,
    fmin: float = 65.0,
    fmax: float = 1100.0,
    voiced: np.ndarray | None = None,
    fix_octaves: bool = True,
) -> PitchTrack:
    """f0 of a (mono) singing voice every 10 ms, frames centred at 0, 10 ms, 20 ms, ...

    `voiced` is an optional per-10-ms-frame mask (e.g. `VoiceAudio.voiced`): frames outside it are unvoiced
    whatever the tracker says, which removes pitched noise between phrases. `fix_octaves=False` leaves DIO's
    octave jumps in (for measuring what the folding does).
    """
    x = np.asarray(samples, dtype=np.float64)
    times, f0, confidence = local_pitch(x, sr, fmin, fmax, voiced)
    return folded_track(x, sr, times, f0, confidence) if fix_octaves else _track(times, f0, confidence)


def _track(times: np.ndarray, f0: np.ndarray, confidence: np.ndarray) -> PitchTrack:
    return PitchTrack(times=times, f0=np.where(f0 > 0, f0, np.nan), confidence=confidence)


def folded_track(x: np.ndarray, sr: int, times: np.ndarray, f0: np.ndarray, confidence: np.ndarray) -> PitchTrack:
    """`local_pitch`'s frames (0 where unvoiced) with their octave jumps fixed (`_fix_octaves`), as a PitchTrack.
    This is the one step of the tracker that reads far (about 15 voiced frames each way)."""
    f0 = np.asarray(f0, dtype=np.float64)
    if (f0 > 0).any():
        window = int(round(OCTAVE_WINDOW_SECONDS / HOP_SECONDS)) | 1
        f0, confidence = _fix_octaves(np.asarray(x, dtype=np.float64), sr, times, f0, confidence, window)
    return _track(times, f0, confidence)


def local_pitch(
    x: np.ndarray, sr: int = 16000, fmin: float = 65.0, fmax: float = 1100.0, voiced: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, f0 with 0 where unvoiced, confidence) before the octave fix: every frame depends only on the audio
    around it (DIO's filters, StoneMask, the periodicity, runs of a few frames), so a stream can compute it block by
    block with some context on either side."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise AudioInputError(f"Pitch tracking needs mono audio, got an array of shape {x.shape}.")
    if x.size < int(0.05 * sr):
        raise AudioInputError("The recording is too short to track its pitch.")
    if not np.all(np.isfinite(x)):
        raise AudioInputError("The recording contains invalid samples (NaN or infinity).")
    if not 0 < fmin < fmax < sr / 2:
        raise ValueError(f"Need 0 < fmin < fmax < sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}.")
    raw, times = pyworld.dio(
        x,
        sr,
        f0_floor=fmin,
        f0_ceil=fmax,
        frame_period=HOP_SECONDS * 1000,
        speed=DIO_SPEED,
        channels_in_octave=DIO_CHANNELS_IN_OCTAVE,
    )
    f0 = _refine(x, sr, raw, times)
    f0[(f0 < fmin * 0.9) | (f0 > fmax * 1.1)] = 0.0
    confidence = _periodicity(x, sr, times, f0)
    keep = (f0 > 0) & (confidence >= MIN_CONFIDENCE)
    if voiced is not None:
        mask = np.zeros(len(f0), dtype=bool)
        n = min(len(mask), len(voiced))
        mask[:n] = np.asarray(voiced[:n], dtype=bool)
        keep &= mask
    for a, b in _runs(keep):
        if b - a < MIN_RUN_FRAMES:
            keep[a:b] = False
    f0[~keep] = 0.0
    return times, f0, confidence
