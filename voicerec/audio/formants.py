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

from .pitch import PitchTrack

LPC_RATE = 11000
LPC_ORDER = 12
FRAME_SECONDS = 0.025
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


def formant_frequencies(samples: np.ndarray, sr: int, track: PitchTrack) -> np.ndarray:
    """F1..F4 (Hz) of the voiced frames of `track`, one row per analysed frame, NaN where fewer were found."""
    y = librosa.resample(np.asarray(samples, dtype=np.float64), orig_sr=sr, target_sr=LPC_RATE)
    y = np.append(y[:1], y[1:] - PRE_EMPHASIS * y[:-1])
    length = int(FRAME_SECONDS * LPC_RATE)
    with np.errstate(invalid="ignore"):
        times = track.times[track.voiced & (track.f0 <= MAX_F0_HZ)]
    times = times[np.unique(np.linspace(0, len(times) - 1, min(MAX_FRAMES, len(times))).astype(int))]
    starts = np.round(times * LPC_RATE).astype(int) - length // 2
    starts = starts[(starts >= 0) & (starts + length <= len(y))]
    if starts.size == 0:
        return np.full((0, N_FORMANTS), np.nan)
    frames = y[starts[:, None] + np.arange(length)] * np.hamming(length)
    frames = frames[np.sum(frames**2, axis=1) > 1e-10]  # LPC of digital silence is undefined
    if frames.shape[0] == 0:
        return np.full((0, N_FORMANTS), np.nan)
    coeffs = librosa.lpc(frames, order=LPC_ORDER, axis=-1)
    companion = np.zeros((len(coeffs), LPC_ORDER, LPC_ORDER))
    companion[:, 0, :] = -coeffs[:, 1:] / coeffs[:, :1]
    companion[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(companion)  # the roots of each frame's LPC polynomial
    with np.errstate(divide="ignore"):
        freqs = np.angle(roots) * LPC_RATE / (2 * np.pi)
        bandwidths = -np.log(np.abs(roots)) * LPC_RATE / np.pi
    ok = (freqs > FORMANT_BAND_HZ[0]) & (freqs < FORMANT_BAND_HZ[1]) & (bandwidths < MAX_BANDWIDTH_HZ)
    freqs = np.sort(np.where(ok, freqs, np.inf), axis=1)[:, :N_FORMANTS]
    return np.where(np.isfinite(freqs), freqs, np.nan)


def harmonic_share(samples: np.ndarray, sr: int, track: PitchTrack, harmonics: int = 8) -> float:
    """Median share of the energy of harmonics 2..`harmonics` among harmonics 1..`harmonics` over the voiced
    frames (up to `MAX_FRAMES`, 40 ms each, spectrum magnitude at the nearest bin of each k x f0).

    A voice is a pulse train through a vocal tract: its overtones carry a good part of its energy (tens of percent
    on sung vowels, a few percent on a soprano's high "oo"). A pure tone (a sine, a test tone, a whistle) has
    almost none."""
    x = np.asarray(samples, dtype=np.float64)
    length = int(0.04 * sr)
    times = track.times[track.voiced]
    keep = np.unique(np.linspace(0, len(times) - 1, min(MAX_FRAMES, len(times))).astype(int)) if len(times) else []
    times, f0 = times[keep], track.f0[track.voiced][keep]
    starts = np.round(times * sr).astype(int) - length // 2
    ok = (starts >= 0) & (starts + length <= len(x))
    if not ok.any():
        return float("nan")
    spectra = np.abs(np.fft.rfft(x[starts[ok, None] + np.arange(length)] * np.hanning(length), axis=1)) ** 2
    k = np.arange(1, harmonics + 1)
    bins = np.rint(f0[ok, None] * k * length / sr).astype(int)
    energy = np.take_along_axis(spectra, np.clip(bins, 0, spectra.shape[1] - 1), axis=1) * (bins < spectra.shape[1])
    total = energy.sum(axis=1)
    return float(np.median(energy[:, 1:].sum(axis=1) / np.maximum(total, 1e-20)))


def fourth_formant(samples: np.ndarray, sr: int, track: PitchTrack) -> float:
    """Median F4 (Hz) over the voiced frames of a recording; NaN if no frame had four formants."""
    f4 = formant_frequencies(samples, sr, track)[:, N_FORMANTS - 1]
    return float(np.nanmedian(f4)) if np.isfinite(f4).any() else float("nan")
