"""Formant frequencies of sung vowels: a cue of vocal-tract size, which pitch alone cannot give.

A high baritone and a low alto can sing the same notes, but a longer vocal tract (typically a man's, about
17 cm against 14.5 cm) puts every resonance lower. The fourth formant moves least with the vowel being sung,
so its median over a recording is a usable size cue (on gtsinger-dev: about 2.8-3.8 kHz for the male singers,
3.7-4.7 kHz for the female ones).

The recording is resampled to 11 kHz and pre-emphasised; up to `MAX_FRAMES` voiced frames (25 ms, spread
evenly over the recording) are each fitted with an order-12 LPC model (Burg's method, `librosa.lpc`, all frames
at once); the roots of each LPC polynomial with a bandwidth under 500 Hz between 200 Hz and 5.3 kHz are that
frame's formants, lowest first. Frames above `MAX_F0_HZ` are skipped (too few harmonics to show the formants);
a recording sung entirely above it has no F4, and its voice type comes from pitch alone.
"""

from __future__ import annotations

import librosa
import numpy as np

from .frame_cues import Measured, fill
from .pitch import PitchTrack

LPC_RATE = 11000
LPC_ORDER = 12
FRAME_SECONDS = 0.025
LPC_LENGTH = int(FRAME_SECONDS * LPC_RATE)
"""Samples of one LPC frame at `LPC_RATE`."""
MAX_FRAMES = 200
"""Voiced frames analysed, evenly spread over the recording: formants change slowly, and this bounds the cost
(about 10 ms per recording, most of it the polynomial roots)."""
MAX_F0_HZ = 400.0
"""Frames sung higher are left out: their harmonics lie further apart than a formant is wide, so an LPC fit
follows the harmonics instead of the resonances (a synthetic soprano around A4 read as 3.0 kHz, a man's F4).
Leaving them out changes no voice part on gtsinger-dev, whose women sing around E4."""
PRE_EMPHASIS = 0.94
MAX_BANDWIDTH_HZ = 500.0
FORMANT_BAND_HZ = (200.0, 5300.0)
N_FORMANTS = 4


def lpc_signal(samples: np.ndarray, sr: int) -> np.ndarray:
    """The recording as the LPC fits read it: at `LPC_RATE`, pre-emphasised."""
    y = librosa.resample(np.asarray(samples, dtype=np.float64), orig_sr=sr, target_sr=LPC_RATE)
    return np.append(y[:1], y[1:] - PRE_EMPHASIS * y[:-1])


def lpc_starts(times: np.ndarray) -> np.ndarray:
    """The first `lpc_signal` sample of the frame centred at each of `times` (seconds)."""
    return np.round(times * LPC_RATE).astype(int) - LPC_LENGTH // 2


RESAMPLE_MARGIN = 256
"""Samples at `LPC_RATE` resampled on either side of the frames fitted: the resampling filter reads about 100."""


def lpc_fit(samples: np.ndarray, sr: int, starts: np.ndarray) -> np.ndarray:
    """`lpc_frames` of the frames at `starts` of the recording's `lpc_signal`, resampling only the stretches
    around them when they lie far apart (a live session leaves a few frames near each trimmed end): a stretch
    starts where both rates' grids meet, so it gives the samples of the whole recording's resampling, its ends
    included, up to the filter's rounding (1e-6)."""
    length = LPC_LENGTH
    step = np.gcd(int(sr), LPC_RATE)
    per_in, per_out = sr // step, LPC_RATE // step  # a block of per_in samples gives per_out at LPC_RATE
    order = np.argsort(starts)
    breaks = np.flatnonzero(np.diff(starts[order]) > 2 * RESAMPLE_MARGIN + length) + 1
    groups = [g for g in np.split(order, breaks) if g.size]
    spans = [(max(0, (int(starts[g].min()) - RESAMPLE_MARGIN) // per_out),
              (int(starts[g].max()) + length + RESAMPLE_MARGIN) // per_out + 1) for g in groups]  # fmt: skip
    if sum(hi - lo for lo, hi in spans) * per_in > len(samples) // 2:  # most of it: resample it whole
        return lpc_frames(lpc_signal(samples, sr), starts)
    out = np.full((starts.size, N_FORMANTS), np.nan)
    for group, (lo, hi) in zip(groups, spans, strict=True):
        y = lpc_signal(samples[lo * per_in : hi * per_in], sr)
        out[group] = lpc_frames(y, starts[group] - lo * per_out)
    return out


def lpc_frames(y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """F1..F4 (Hz) of the frames of `lpc_signal` `y` beginning at `starts` (all inside it), NaN where fewer were
    found; rows of all NaN for frames of digital silence, whose LPC fit is undefined.

    A frame reads only its own samples, so a live stream can fit its frames as they arrive."""
    length = LPC_LENGTH
    out = np.full((starts.size, N_FORMANTS), np.nan)
    frames = y[starts[:, None] + np.arange(length)] * np.hamming(length)
    sound = np.sum(frames**2, axis=1) > 1e-10
    if not sound.any():
        return out
    coeffs = librosa.lpc(frames[sound], order=LPC_ORDER, axis=-1)
    companion = np.zeros((len(coeffs), LPC_ORDER, LPC_ORDER))
    companion[:, 0, :] = -coeffs[:, 1:] / coeffs[:, :1]
    companion[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(companion)  # the roots of each frame's LPC polynomial
    with np.errstate(divide="ignore"):
        freqs = np.angle(roots) * LPC_RATE / (2 * np.pi)
        bandwidths = -np.log(np.abs(roots)) * LPC_RATE / np.pi
    ok = (freqs > FORMANT_BAND_HZ[0]) & (freqs < FORMANT_BAND_HZ[1]) & (bandwidths < MAX_BANDWIDTH_HZ)
    freqs = np.sort(np.where(ok, freqs, np.inf), axis=1)[:, :N_FORMANTS]
    out[sound] = np.where(np.isfinite(freqs), freqs, np.nan)
    return out


def formant_frequencies(samples: np.ndarray, sr: int, track: PitchTrack,
                        known: Measured | None = None) -> np.ndarray:  # fmt: skip
    """F1..F4 (Hz) of the voiced frames of `track`, one row per analysed frame with a formant, NaN where fewer were
    found. `known`: rows of `lpc_frames` already fitted (a live session's); if it has them all, nothing is
    resampled."""
    with np.errstate(invalid="ignore"):
        chosen = np.flatnonzero(track.voiced & (track.f0 <= MAX_F0_HZ))
    chosen = chosen[np.unique(np.linspace(0, len(chosen) - 1, min(MAX_FRAMES, len(chosen))).astype(int))]
    starts = lpc_starts(track.times[chosen])
    length = LPC_LENGTH
    inside = (starts >= 0) & (starts + length <= int(np.ceil(len(samples) * LPC_RATE / sr)))
    chosen = chosen[inside]
    if chosen.size == 0:
        return np.full((0, N_FORMANTS), np.nan)
    rows = fill(known, chosen, lambda frames: lpc_fit(samples, sr, lpc_starts(track.times[frames])))
    return rows[~np.all(np.isnan(rows), axis=1)]


HARMONIC_FRAME_SECONDS = 0.04


def harmonic_frames(samples: np.ndarray, sr: int, centres: np.ndarray, f0: np.ndarray, harmonics: int = 8
                    ) -> np.ndarray:  # fmt: skip
    """Each frame's share of the energy of harmonics 2..`harmonics` among 1..`harmonics` (`HARMONIC_FRAME_SECONDS`
    around each of `centres`, all inside the recording; spectrum magnitude at the nearest bin of each k x f0)."""
    x = np.asarray(samples, dtype=np.float64)
    length = int(HARMONIC_FRAME_SECONDS * sr)
    starts = centres - length // 2
    spectra = np.abs(np.fft.rfft(x[starts[:, None] + np.arange(length)] * np.hanning(length), axis=1)) ** 2
    k = np.arange(1, harmonics + 1)
    bins = np.rint(np.asarray(f0)[:, None] * k * length / sr).astype(int)
    energy = np.take_along_axis(spectra, np.clip(bins, 0, spectra.shape[1] - 1), axis=1) * (bins < spectra.shape[1])
    return energy[:, 1:].sum(axis=1) / np.maximum(energy.sum(axis=1), 1e-20)


def harmonic_share(samples: np.ndarray, sr: int, track: PitchTrack, known: Measured | None = None) -> float:
    """Median share of the energy of harmonics 2..8 among harmonics 1..8 over the voiced frames (up to
    `MAX_FRAMES`; `harmonic_frames`, or `known` for the frames already measured).

    A voice is a pulse train through a vocal tract: its overtones carry a good part of its energy (tens of percent
    on sung vowels, a few percent on a soprano's high "oo"). A pure tone (a sine, a test tone, a whistle) has
    almost none."""
    length = int(HARMONIC_FRAME_SECONDS * sr)
    voiced = np.flatnonzero(track.voiced)
    chosen = voiced[np.unique(np.linspace(0, len(voiced) - 1, min(MAX_FRAMES, len(voiced))).astype(int))] if len(
        voiced) else voiced  # fmt: skip
    centres = np.round(track.times[chosen] * sr).astype(int)
    ok = (centres - length // 2 >= 0) & (centres - length // 2 + length <= len(samples))
    if not ok.any():
        return float("nan")
    chosen = chosen[ok]
    shares = fill(known, chosen, lambda frames: harmonic_frames(samples, sr, np.round(track.times[frames] * sr).astype(
        int), track.f0[frames]))  # fmt: skip
    return float(np.median(shares))


def fourth_formant(samples: np.ndarray, sr: int, track: PitchTrack, known: Measured | None = None
                   ) -> float:  # fmt: skip
    """Median F4 (Hz) over the voiced frames of a recording; NaN if no frame had four formants."""
    f4 = formant_frequencies(samples, sr, track, known)[:, N_FORMANTS - 1]
    return float(np.nanmedian(f4)) if np.isfinite(f4).any() else float("nan")
