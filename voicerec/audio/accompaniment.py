"""Accompaniment: is there music behind the voice (a backing track, karaoke playback, a band, a song playing)?

voicerec reads one voice. Over music the pitch tracker loses the voice among the chords, so few held notes are
found (karaoke takes were refused as "speech"), and the encoders hear the band. Two cues, measured on the frames
where the voice is pitched, tell it apart:

- `below_voice`: the share of the spectrum (40 Hz-4 kHz) that lies under the voice's fundamental (40 Hz to
  0.7 x f0). A solo voice has nothing there; a bass line and a kick drum put their energy there whatever is sung.
- `off_voice`: the share away from the voice's harmonics. It is high where the pitch track itself is unreliable
  (screamed, breathy or heavily reverberant vocals: noise everywhere), and there "under the voice" means little.

Music is behind the voice when `below_voice` > `BELOW_VOICE_ABOVE` on a reliable track (`off_voice` <
`OFF_VOICE_BELOW`). Measured by `python -m training.evaluate_accompaniment` (docs/accompaniment.md): the clean
vocals of four real corpora against the same voices over a synthetic backing (chords, bass, drums) at 0 to +12 dB.
The cue misses music without a bass (a piano or a guitar alone): what it says is sure, its silence is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pitch import PitchTrack

N_FFT = 2048
"""128 ms at 16 kHz: 7.8 Hz bins, so the harmonics of a low voice stand apart from a chord's partials."""
MAX_FRAMES = 400
"""Pitched frames measured at most, evenly spread: the shares are means, which 400 frames settle."""
BAND_HZ = (40.0, 4000.0)
BELOW_HZ = 40.0
BELOW_F0 = 0.7
HARMONIC_WIDTH = 0.03
"""A harmonic k of f0 covers k x f0 +- max(`MIN_WIDTH_HZ`, this share of it): vibrato and the window's main lobe."""
MIN_WIDTH_HZ = 16.0
BELOW_VOICE_ABOVE = 0.025
"""Highest on the real clean vocals of the dev corpora: 0.0225 (a mir1k-dev clip); the threshold keeps a margin."""
OFF_VOICE_BELOW = 0.35
"""Real clean singing sits at 0.02-0.15 (medians); studio stems of screamed vocals above 0.4."""
MIN_PITCHED_FRAMES = 20
MESSAGE = (
    "There seems to be music behind your voice (a backing track, karaoke playback or a song playing): voicerec "
    "can only follow one voice on its own. Sing without the music or listen to it on headphones, or upload the "
    "vocals alone (a vocal stem, or a karaoke app's voice-only recording)."
)
WARNING = (
    "There seems to be music behind your voice, so the songs below may follow the music rather than you: sing "
    "without it or listen to it on headphones, or upload the vocals alone."
)
"""For a recording that passed the singing checks all the same (the voice well above the music)."""
SEPARATION_NOTE = (
    " Or let voicerec take the vocals out of the music with demucs (tick \"Take my voice out of the music\" on the "
    "page, or `--separate` on the command line): demucs downloads its model weights once, which needs the internet."
)


@dataclass
class Accompaniment:
    """The cues of one recording (NaN when too few frames are pitched to measure them) and the verdict."""

    below_voice: float
    off_voice: float
    pitched_frames: int

    @property
    def detected(self) -> bool:
        return bool(self.below_voice > BELOW_VOICE_ABOVE and self.off_voice < OFF_VOICE_BELOW)


def measure(samples: np.ndarray, sr: int, track: PitchTrack) -> Accompaniment:
    """The cues of the module doc on `samples` (mono, at `sr`) where `track` (its pitch) is voiced."""
    pitched = np.flatnonzero(np.isfinite(track.f0))
    if pitched.size < MIN_PITCHED_FRAMES:
        return Accompaniment(float("nan"), float("nan"), int(pitched.size))
    chosen = pitched[np.linspace(0, pitched.size - 1, min(MAX_FRAMES, pitched.size)).astype(int)]
    x = np.pad(np.asarray(samples, np.float32), N_FFT // 2)
    starts = np.clip(np.rint(track.times[chosen] * sr).astype(int), 0, max(0, len(x) - N_FFT))
    frames = x[starts[:, None] + np.arange(N_FFT)[None, :]] * np.hanning(N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    power = np.abs(np.fft.rfft(frames, axis=1)[:, band]) ** 2  # (frames, bins)
    freqs, f0 = freqs[band][None, :], track.f0[chosen][:, None]
    k = np.maximum(1.0, np.round(freqs / f0))
    harmonic = np.abs(freqs - k * f0) <= np.maximum(MIN_WIDTH_HZ, HARMONIC_WIDTH * k * f0)
    below = (freqs >= BELOW_HZ) & (freqs <= BELOW_F0 * f0)
    total = power.sum() + 1e-12
    return Accompaniment(float((power * below).sum() / total), float((power * ~harmonic).sum() / total),
                         int(pitched.size))  # fmt: skip


def advice() -> str:
    """What to tell a singer whose recording has music behind it, with the separation route where it exists."""
    from .separation import available

    return MESSAGE + (SEPARATION_NOTE if available() else "")
