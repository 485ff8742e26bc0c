"""Augmentations for contrastive training on singing: the transforms that define what an embedding ignores.

Two kinds:
- *transforms* that change the voice or the performance: `pitch_shift` (resampling, so formants move with
  the pitch, as a different vocal tract would) and `time_stretch` (phase vocoder, pitch and formants kept).
  The training policy decides whether a transformed copy is a positive or a negative.
- *channel* effects that must not change an embedding: gain, EQ, noise, reverb and phone-microphone
  colouring (`channel`), applied independently to every view so a real microphone is never a cue.

All functions take and return mono float32 numpy arrays at `sr` and draw randomness from a numpy Generator.
"""

from __future__ import annotations

import librosa
import numpy as np
import soxr
from scipy import signal


def semitone_ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut the centre `n` samples, or repeat the signal until it is `n` long."""
    if len(x) >= n:
        start = (len(x) - n) // 2
        return x[start : start + n]
    return np.tile(x, n // max(len(x), 1) + 1)[:n]


def pitch_shift(x: np.ndarray, semitones: float, sr: int = 16000) -> np.ndarray:
    """Raise pitch *and formants* by `semitones` by resampling (a tape-speed change).

    The output is `len(x) / ratio` samples long: to get `n` samples, pass `round(n * ratio)` input samples
    (`source_length`). soxr makes this ~100x faster than a phase-vocoder pitch shift.
    """
    ratio = semitone_ratio(semitones)
    y = soxr.resample(x.astype(np.float32), sr * ratio, sr, quality="HQ")
    return y.astype(np.float32)


def time_stretch(x: np.ndarray, rate: float) -> np.ndarray:
    """Play `rate` times faster with pitch and formants unchanged (output `len(x) / rate` samples)."""
    n_fft = 1024  # 64 ms at 16 kHz: resolves sung harmonics, keeps transients tolerable
    y = librosa.effects.time_stretch(x.astype(np.float32), rate=rate, n_fft=n_fft, hop_length=n_fft // 4)
    return y.astype(np.float32)


def source_length(n: int, factor: float) -> int:
    """Input samples a `pitch_shift` ratio or `time_stretch` rate of `factor` needs to produce `n` samples."""
    return int(np.ceil(n * factor)) + 2


def gain(x: np.ndarray, rng: np.random.Generator, low_db: float = -18.0, high_db: float = 6.0) -> np.ndarray:
    return x * np.float32(10 ** (rng.uniform(low_db, high_db) / 20))


def random_eq(x: np.ndarray, rng: np.random.Generator, sr: int = 16000, max_db: float = 9.0) -> np.ndarray:
    """A smooth random frequency response: a tilt plus a few broad bumps on a log-frequency axis."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    octave = np.log2(np.maximum(freqs, 50.0) / 1000.0)  # octaves relative to 1 kHz
    db = rng.uniform(-3.0, 3.0) * octave
    for _ in range(int(rng.integers(1, 4))):
        centre, width = rng.uniform(-3.0, 3.0), rng.uniform(0.3, 1.5)
        db += rng.uniform(-max_db, max_db) * np.exp(-0.5 * ((octave - centre) / width) ** 2)
    return np.fft.irfft(spec * 10 ** (db / 20), n=len(x)).astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (12.0, 40.0)) -> np.ndarray:
    """White, pink or brown noise at a random SNR: room hum, fans, cheap preamps."""
    white = rng.standard_normal(len(x))
    colour = rng.integers(3)
    if colour:
        spec = np.fft.rfft(white)
        spec[1:] /= np.arange(1, len(spec)) ** (0.5 * colour)  # 1/f (pink) or 1/f^2 (brown) power
        spec[0] = 0
        white = np.fft.irfft(spec, n=len(x))
    p_signal = np.mean(x**2) + 1e-10
    p_noise = np.mean(white**2) + 1e-10
    scale = np.sqrt(p_signal / p_noise / 10 ** (rng.uniform(*snr_db) / 10))
    return (x + scale * white).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """A synthetic room: exponentially decaying noise tail (RT60 0.15-1.0 s) mixed with the direct sound."""
    rt60 = rng.uniform(0.15, 1.0)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[: int(0.005 * sr)] = 0.0  # first reflections arrive a few ms after the direct path
    rir = tail / (np.sqrt(np.sum(tail**2)) + 1e-9) * rng.uniform(0.2, 1.0)
    rir[0] = 1.0
    wet = signal.fftconvolve(x, rir)[: len(x)]
    return (wet * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(wet**2)) + 1e-9))).astype(np.float32)


def phone(x: np.ndarray, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """A phone or laptop microphone: band-limited, a small-capsule resonance, and some AGC-like clipping."""
    low, high = rng.uniform(120.0, 450.0), rng.uniform(3400.0, min(7600.0, sr / 2 - 100))
    sos = signal.butter(4, [low, high], btype="bandpass", fs=sr, output="sos")
    y = signal.sosfilt(sos, x)
    b, a = signal.iirpeak(rng.uniform(1500.0, 3500.0), Q=rng.uniform(1.0, 4.0), fs=sr)
    y = y + rng.uniform(0.2, 0.8) * signal.lfilter(b, a, y)
    drive = rng.uniform(1.0, 6.0)
    peak = np.max(np.abs(y)) + 1e-9
    return (np.tanh(drive * y / peak) * peak / np.tanh(drive)).astype(np.float32)


def channel(x: np.ndarray, rng: np.random.Generator, sr: int = 16000, strength: float = 1.0) -> np.ndarray:
    """A random recording chain: each effect with a probability scaled by `strength` (0 = untouched)."""
    if rng.random() < 0.3 * strength:
        x = phone(x, rng, sr)
    if rng.random() < 0.6 * strength:
        x = random_eq(x, rng, sr)
    if rng.random() < 0.4 * strength:
        x = reverb(x, rng, sr)
    if rng.random() < 0.5 * strength:
        x = add_noise(x, rng)
    x = gain(x, rng)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
