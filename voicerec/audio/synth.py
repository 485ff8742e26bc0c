"""A small source-filter singing synthesiser: melodies sung by voices with known pitch and timbre.

Used for the tests (audio with known pitch and voice), the example clips and extra training
voices. Harmonics of a glottal source pass through vowel formants (a cascade of resonators, as in a vocal tract),
breath noise through the same formants; a voice is its vocal-tract length (formant scale), spectral tilt,
breathiness, vibrato and jitter, and each note's level varies a little, as a singer's does.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

# F1..F4 (Hz) and bandwidths for an adult male vocal tract; other voices scale them.
VOWELS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 160, 250)),
    "e": ((530, 1840, 2480, 3500), (70, 100, 160, 250)),
    "i": ((270, 2290, 3010, 3700), (60, 100, 170, 250)),
    "o": ((570, 840, 2410, 3400), (70, 100, 160, 250)),
    "u": ((300, 870, 2240, 3300), (60, 90, 150, 250)),
}


@dataclass(frozen=True)
class Voice:
    """A synthetic singer. `formant_scale` > 1 is a shorter vocal tract (brighter, more female-like)."""

    name: str = "voice"
    formant_scale: float = 1.0
    tilt_db_per_octave: float = -12.0
    breathiness: float = 0.02
    vibrato_hz: float = 5.5
    vibrato_cents: float = 40.0
    jitter_cents: float = 8.0
    singers_formant: float = 0.0  # extra energy near 3 kHz (trained classical voices)


VOICES: dict[str, Voice] = {
    "bass": Voice("bass", 0.92, -13.0, 0.02, 5.0, 45.0, 6.0, 0.5),
    "baritone": Voice("baritone", 1.0, -12.0, 0.03, 5.3, 40.0, 8.0, 0.4),
    "tenor": Voice("tenor", 1.06, -10.0, 0.03, 5.8, 35.0, 8.0, 0.6),
    "alto": Voice("alto", 1.16, -12.5, 0.06, 5.2, 30.0, 10.0, 0.1),
    "mezzo": Voice("mezzo", 1.19, -11.0, 0.05, 5.6, 45.0, 8.0, 0.2),
    "soprano": Voice("soprano", 1.22, -9.5, 0.04, 6.0, 55.0, 7.0, 0.3),
}


NOTE_LEVEL_DB = 4.0
"""Spread (standard deviation, dB) of the level from note to note: a singer's dynamics, and what makes a clean
recording's loud frames stand out from its quiet ones as they do in real singing (`voicerec.audio.input`'s noise
check)."""


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _envelope(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Gain at `freqs` (samples, harmonics) of a cascade of two-pole resonators, one per formant (samples, 4).

    A cascade (product), as in a real vocal tract and Klatt's synthesiser, rather than a sum of peaks: each
    resonance lifts everything above it, so the upper formants stand out as they do in real voices and formant
    trackers find them. Each resonator has unit gain at 0 Hz.
    """
    f = freqs[..., None]
    half2 = (bandwidths[:, None, :] / 2) ** 2
    centre = formants[:, None, :]
    power = (centre**2 + half2) ** 2 / (((f - centre) ** 2 + half2) * ((f + centre) ** 2 + half2))
    return np.sqrt(power.prod(-1))


def _aspiration(noise: np.ndarray, formants: np.ndarray, bands: np.ndarray, sr: int) -> np.ndarray:
    """Breath noise shaped by the same vocal tract as the voice (frame by frame in the STFT domain), at unit RMS
    and a steady level.

    Aspiration is turbulence at the glottis, so it passes through the vocal tract like the voiced sound: its
    spectrum carries the formants (unshaped noise would read as spurious high resonances).
    """
    hop = 256
    spec = librosa.stft(noise, n_fft=1024, hop_length=hop)
    centres = np.minimum(np.arange(spec.shape[1]) * hop, len(noise) - 1)
    freqs = np.broadcast_to(librosa.fft_frequencies(sr=sr, n_fft=1024), (len(centres), spec.shape[0]))
    gain = _envelope(freqs, formants[centres], bands[centres])
    gain /= np.sqrt(np.mean(gain**2, axis=1, keepdims=True))  # the shape per frame, not the resonances' peak gain
    shaped = librosa.istft(spec * gain.T, hop_length=hop, length=len(noise))
    return shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12)


def sing(
    notes: list[tuple[float, float]],
    voice: Voice = VOICES["baritone"],
    sr: int = 16000,
    vowels: str = "aeiou",
    seed: int = 0,
    gap: float = 0.04,
) -> np.ndarray:
    """Render `notes` [(midi or NaN for a rest, seconds), ...] as float32 audio at `sr`.

    Each note gets the next vowel of `vowels`; notes are joined by a short glide and a `gap` of near
    silence, like the consonant between two sung syllables.
    """
    rng = np.random.default_rng(seed)
    total = int(sum(d for _, d in notes) * sr)
    f0 = np.zeros(total)
    amp = np.zeros(total)
    formants = np.zeros((total, 4))
    bands = np.ones((total, 4)) * 100
    pos = 0
    for i, (midi, dur) in enumerate(notes):
        n = int(dur * sr)
        if n <= 0:
            continue
        seg = slice(pos, min(pos + n, total))
        length = seg.stop - seg.start
        if np.isnan(midi):
            pos += n
            continue
        f0[seg] = midi_to_hz(midi)
        env = np.ones(length)
        ramp = min(int(0.03 * sr), length // 4)
        g = min(int(gap * sr), length // 3)
        if ramp > 0:
            env[:ramp] = np.linspace(0, 1, ramp)
            env[length - g - ramp : length - g] = np.linspace(1, 0, ramp)
        env[length - g :] = 0.0
        amp[seg] = env * 10 ** (rng.normal(0.0, NOTE_LEVEL_DB) / 20)
        fm, bw = VOWELS[vowels[i % len(vowels)]]
        formants[seg] = np.asarray(fm) * voice.formant_scale
        bands[seg] = np.asarray(bw) * voice.formant_scale
        pos += n
    voiced = f0 > 0
    # fill rests with the neighbouring pitch so glides start from a sensible note, then glide 60 ms
    idx = np.where(voiced, np.arange(total), 0)
    np.maximum.accumulate(idx, out=idx)
    f0_filled = np.where(voiced, f0, f0[idx])
    f0_filled[f0_filled == 0] = f0[voiced][0] if voiced.any() else 100.0
    k = max(1, int(0.06 * sr))
    cents = 1200 * np.log2(f0_filled)
    cents = np.convolve(np.pad(cents, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")
    t = np.arange(total) / sr
    cents = cents + voice.vibrato_cents * np.sin(2 * np.pi * voice.vibrato_hz * t + rng.uniform(0, 6.28))
    jitter = np.convolve(rng.standard_normal(total), np.ones(200) / 200, mode="same") * voice.jitter_cents * 14
    f0_t = 2 ** ((cents + jitter) / 1200)
    # formants glide too
    kf = max(1, int(0.04 * sr))
    for j in range(4):
        formants[:, j] = np.convolve(
            np.pad(formants[:, j], (kf // 2, kf - 1 - kf // 2), mode="edge"), np.ones(kf) / kf, mode="valid"
        )
        bands[:, j] = np.convolve(
            np.pad(bands[:, j], (kf // 2, kf - 1 - kf // 2), mode="edge"), np.ones(kf) / kf, mode="valid"
        )
    formants = np.where(formants > 0, formants, 500.0)
    phase = 2 * np.pi * np.cumsum(f0_t) / sr
    out = np.zeros(total)
    n_harm = int(sr / 2 / max(f0_t.min(), 50.0))
    chunk = 4096
    for start in range(0, total, chunk):
        sl = slice(start, min(start + chunk, total))
        h = np.arange(1, n_harm + 1)
        freqs = f0_t[sl, None] * h[None, :]
        tilt = (h[None, :] * 1.0) ** (voice.tilt_db_per_octave / 6.02)
        env = _envelope(freqs, formants[sl], bands[sl])
        if voice.singers_formant:
            env = env * (1 + voice.singers_formant * np.exp(-(((freqs - 3000 * voice.formant_scale) / 400) ** 2)))
        a = tilt * env * (freqs < sr / 2 - 200)
        a /= np.sqrt((a**2).sum(-1, keepdims=True)) + 1e-12  # a steady level: resonances shape, singers sustain
        out[sl] = (a * np.sin(phase[sl, None] * h[None, :])).sum(-1)
    turbulence = np.convolve(rng.standard_normal(total), [1.0, -0.9], mode="same")  # weighted to high frequencies
    noise = _aspiration(turbulence, formants, bands, sr)
    out = (out / (np.abs(out).max() + 1e-9) + voice.breathiness * noise) * amp
    out = out / (np.abs(out).max() + 1e-9) * 0.5
    return out.astype(np.float32)


def scale_melody(tonic_midi: int, n_notes: int = 16, seconds: float = 0.5, seed: int = 0) -> list[tuple[float, float]]:
    """A simple stepwise melody in a major scale around `tonic_midi`: handy test singing."""
    rng = np.random.default_rng(seed)
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    degree, notes = 0, []
    for _ in range(n_notes):
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(steps) - 1))
        notes.append((float(tonic_midi + steps[degree]), seconds))
    return notes


def backing_track(tonic_midi: int, seconds: float, sr: int = 16000, bpm: float = 100.0, seed: int = 0) -> np.ndarray:
    """A karaoke-like accompaniment in the major key of `tonic_midi`: I-V-vi-IV chords (decaying harmonic tones,
    like a piano), a bass on each chord's root in the octave E1..E2, and drums (kick on beats 1 and 3, snare
    on 2 and 4, hi-hat on every half beat). For tests of singing over music: mix it under `sing`'s output.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    beat = 60.0 / bpm
    t_note = np.arange(int(4 * beat * sr)) / sr  # one bar per chord

    def tone(midi: float, decay: float, harmonics: int) -> np.ndarray:
        f = float(midi_to_hz(midi))
        h = np.arange(1, harmonics + 1)
        h = h[h * f < sr / 2 - 200]
        wave = (np.sin(2 * np.pi * f * h[:, None] * t_note + rng.uniform(0, 6.28, (len(h), 1))) / h[:, None]).sum(0)
        return wave * np.exp(-t_note / decay) * np.minimum(1.0, t_note / 0.005)

    progression = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]  # I, V, vi, IV as semitones above the tonic
    bar = len(t_note)
    for i, start in enumerate(range(0, n, bar)):
        chord = progression[i % len(progression)]
        seg = min(bar, n - start)
        pad = sum(tone(tonic_midi + s, 1.5, 8) for s in chord) / 3
        root = tonic_midi + chord[0] % 12
        bass = tone(root - 12 * np.ceil((root - 40) / 12), 0.6, 6)[: bar // 2]  # E1..E2, a bass guitar's lowest octave
        out[start : start + seg] += 0.5 * pad[:seg]
        for half in (0, bar // 2):  # the bass plays each half bar
            part = min(bar // 2, n - start - half)
            if part > 0:
                out[start + half : start + half + part] += 0.8 * bass[:part]
    t_hit = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 70 * np.exp(-t_hit / 0.03)) / sr) * np.exp(-t_hit / 0.12)
    noise = rng.standard_normal(len(t_hit))
    snare = (noise * 0.7 + np.sin(2 * np.pi * 190 * t_hit)) * np.exp(-t_hit / 0.06)
    hat = np.diff(noise, prepend=0.0) * np.exp(-t_hit / 0.015)
    for k, start in enumerate(np.arange(0, seconds, beat / 2)):
        i = int(start * sr)
        for hit, level, when in ((kick, 1.0, k % 4 == 0), (snare, 0.6, k % 4 == 2), (hat, 0.15, True)):
            if when:
                part = min(len(hit), n - i)
                out[i : i + part] += level * hit[:part]
    return (out / (np.abs(out).max() + 1e-9) * 0.5).astype(np.float32)
