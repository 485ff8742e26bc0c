"""Accompaniment: is there music behind the voice (a backing track, karaoke playback, a band, a song playing)?

voicerec reads one voice. Over music the pitch tracker loses the voice among the chords, so few held notes are
found (karaoke takes were refused as "speech"), and the encoders hear the band. Two cues, measured on the frames
where the voice is pitched, tell it apart:

- `below_voice`: the share of the spectrum (40 Hz-4 kHz) that lies under the voice's fundamental (40 Hz to
  0.7 x f0). A solo voice has nothing there; a bass line and a kick drum put their energy there whatever is sung.
- `off_voice`: the share away from the voice's harmonics. It is high where the pitch track itself is unreliable
  (screamed, breathy or heavily reverberant vocals: noise everywhere), and there "under the voice" means little.

Music is behind the voice when `below_voice` > `BELOW_VOICE_ABOVE` on a reliable track (`off_voice` <
`OFF_VOICE_BELOW`), over the whole recording or over any `WINDOW_SECONDS` of it. Measured by
`python -m training.evaluate_accompaniment` (docs/accompaniment.md): the clean vocals of four real corpora against
the same voices over a synthetic backing (chords, bass, drums) at 0 to +12 dB. The cue misses music without a bass
(a piano or a guitar alone): what it says is sure, its silence is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frame_cues import Measured, fill
from .pitch import PitchTrack

N_FFT = 2048
"""128 ms at 16 kHz: 7.8 Hz bins, so the harmonics of a low voice stand apart from a chord's partials."""
FRAME_STEP = 2
"""Every this-many-th pitched frame is measured (20 ms apart): the shares are means, which these settle."""
WINDOW_SECONDS = 5.0
"""Music is also looked for in every stretch this long (one second apart): music behind only part of a take (a
chorus, a karaoke intro) is found, and the answer agrees with the live hint, which reads the last 5 s."""
BAND_HZ = (40.0, 4000.0)
BELOW_HZ = 40.0
BELOW_F0 = 0.7
HARMONIC_WIDTH = 0.03
"""A harmonic k of f0 covers k x f0 +- max(`MIN_WIDTH_HZ`, this share of it): vibrato and the window's main lobe."""
MIN_WIDTH_HZ = 16.0
BELOW_VOICE_ABOVE = 0.0275
"""Highest on the 1,086 real clean recordings of the dev corpora (reliable tracks): 0.0240 over a whole recording
(a mir1k-dev clip), 0.0231 over a 5 s window; the threshold keeps a margin of about 15 %."""
OFF_VOICE_BELOW = 0.35
"""Real clean singing sits at 0.02-0.15 (medians); studio stems of screamed vocals above 0.4."""
MIN_FRAMES = 10
"""Fewer measured frames than this (in the recording, or a window) decide nothing."""
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
    """The cues over the whole recording (NaN when too few frames are pitched to measure them), over its
    `WINDOW_SECONDS` stretches, and the verdict."""

    below_voice: float
    off_voice: float
    window_below_voice: float = float("nan")
    """The highest `below_voice` of the windows whose track is reliable (`off_voice` < `OFF_VOICE_BELOW`)."""

    @property
    def detected(self) -> bool:
        whole = self.below_voice > BELOW_VOICE_ABOVE and self.off_voice < OFF_VOICE_BELOW
        return bool(whole or self.window_below_voice > BELOW_VOICE_ABOVE)


def frame_energies(samples: np.ndarray, sr: int, centres: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """(frames, 3): each frame's energy under the voice, off its harmonics and in the band, from the `N_FFT`
    samples around each of `centres` (sample indices; zeros outside the recording) with its pitch `f0` (Hz).

    A frame reads nothing else, so a live stream can measure its frames as they arrive (`known` of `measure`)."""
    if centres.size == 0:
        return np.zeros((0, 3))
    x = np.pad(np.asarray(samples, np.float32), N_FFT // 2)
    starts = np.clip(centres, 0, max(0, len(x) - N_FFT))
    frames = x[starts[:, None] + np.arange(N_FFT)[None, :]] * np.hanning(N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    power = np.abs(np.fft.rfft(frames, axis=1)[:, band]) ** 2  # (frames, bins)
    freqs, f0 = freqs[band][None, :], np.asarray(f0)[:, None]
    k = np.maximum(1.0, np.round(freqs / f0))
    harmonic = np.abs(freqs - k * f0) <= np.maximum(MIN_WIDTH_HZ, HARMONIC_WIDTH * k * f0)
    below = (freqs >= BELOW_HZ) & (freqs <= BELOW_F0 * f0)
    return np.stack([(power * below).sum(1), (power * ~harmonic).sum(1), power.sum(1)], axis=1)


def measured_frames(track: PitchTrack) -> np.ndarray:
    """The frames of `track` that `measure` reads: every `FRAME_STEP`-th pitched one."""
    return np.flatnonzero(np.isfinite(track.f0))[::FRAME_STEP]


def measure(samples: np.ndarray, sr: int, track: PitchTrack, known: Measured | None = None) -> Accompaniment:
    """The cues of the module doc on `samples` (mono, at `sr`) where `track` (its pitch) is voiced: over the whole
    recording, and over each `WINDOW_SECONDS` stretch (one second apart). `known`: `frame_energies` rows already
    measured (a live session's, at the scale of `samples`); the other frames are measured here."""
    chosen = measured_frames(track)
    if chosen.size < MIN_FRAMES:
        return Accompaniment(float("nan"), float("nan"))
    energies = fill(known, chosen, lambda frames: frame_energies(samples, sr, np.rint(track.times[frames] * sr).astype(
        int), track.f0[frames]))  # fmt: skip
    # per frame: energy under the voice, off its harmonics, in all; cumulative, so any stretch's sums are a difference
    sums = np.concatenate([np.zeros((3, 1)), np.cumsum(energies.T, axis=1)], axis=1)
    hop = track.hop_seconds
    ends = np.arange(track.times[0] + WINDOW_SECONDS, track.times[-1] + 1.0, 1.0)
    lo = np.searchsorted(track.times[chosen], ends - WINDOW_SECONDS - hop / 2)
    hi = np.searchsorted(track.times[chosen], ends - hop / 2)
    enough = hi - lo >= MIN_FRAMES
    part = sums[:, hi[enough]] - sums[:, lo[enough]]
    below_share, off_share = part[0] / (part[2] + 1e-12), part[1] / (part[2] + 1e-12)
    reliable = below_share[off_share < OFF_VOICE_BELOW]
    total = sums[2, -1] + 1e-12
    return Accompaniment(float(sums[0, -1] / total), float(sums[1, -1] / total),
                         float(reliable.max()) if reliable.size else float("nan"))  # fmt: skip


def advice() -> str:
    """What to tell a singer whose recording has music behind it, with the separation route where it exists."""
    from .separation import available

    return MESSAGE + (SEPARATION_NOTE if available() else "")
