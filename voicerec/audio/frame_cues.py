"""Per-frame cues of a recording measured before the whole-recording checks need them.

The range's formant and overtone cues (`voicerec.audio.formants`) and the music check
(`voicerec.audio.accompaniment`) each read hundreds of frames, and each frame reads only the audio around it. A
live session measures the frames as they arrive, so that at Stop these checks only gather and aggregate; the frames
it has not measured (near the trimmed ends, or whose pitch moved since) are measured then, on the recording itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Measured:
    """One cue's rows for some frames of a pitch track: frame i's row is `rows[i]` where `done[i]`."""

    done: np.ndarray
    rows: np.ndarray


@dataclass
class KnownFrames:
    """What was measured already, by frame of the recording's pitch track."""

    formants: Measured | None = None
    """`formants.lpc_frames` rows (F1..F4)."""
    overtones: Measured | None = None
    """`formants.harmonic_frames` shares."""
    music: Measured | None = None
    """`accompaniment.frame_energies` rows, at the scale of the recording's samples."""


def fill(known: Measured | None, chosen: np.ndarray, measure: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The rows of the frames `chosen`: the known ones gathered, the others from `measure(frames)`."""
    if known is None:
        return measure(chosen)
    have = known.done[chosen]
    out = np.empty((chosen.size, *known.rows.shape[1:]), dtype=known.rows.dtype)
    out[have] = known.rows[chosen[have]]
    if not have.all():
        out[~have] = measure(chosen[~have])
    return out
