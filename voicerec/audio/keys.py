"""Musical keys: spelling a key moved by some semitones, and finding a melody's key from its pitch track.

The key finder is Krumhansl and Kessler's (1982): the duration-weighted pitch-class histogram of the sung notes
is correlated with their major and minor key profiles in all 12 transpositions, and the best wins. A melody
alone leaves a key and its relative minor close, so a recording's key is a best guess, which is why catalog
metadata that gives the key takes precedence.
"""

from __future__ import annotations

import numpy as np

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
# probe-tone ratings of the 12 pitch classes above the tonic (Krumhansl & Kessler 1982)
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def transpose_key(key: str, semitones: int) -> str:
    """'G major' moved by `semitones` ('F major' for -2), spelled the usual way; '' stays ''."""
    key = key.strip()
    if not key:
        return ""
    tonic, _, mode = key.partition(" ")
    mode = mode.strip().lower() or "major"
    if not tonic or tonic[0].upper() not in PITCH_CLASSES:
        return key  # not a key we can read: leave it as the catalog wrote it
    pc = PITCH_CLASSES[tonic[0].upper()] + tonic[1:].count("#") - tonic[1:].count("b") - tonic[1:].count("-")
    names = MINOR_NAMES if mode.startswith("min") else MAJOR_NAMES
    return f"{names[(pc + semitones) % 12]} {mode}"


def estimate_key(midi: np.ndarray) -> str:
    """The key ('E minor') that best explains sung pitches (MIDI, one value per frame; NaN = unvoiced); '' if
    nothing was sung."""
    notes = np.rint(midi[np.isfinite(midi)]).astype(int)
    if notes.size == 0:
        return ""
    histogram = np.bincount(notes % 12, minlength=12).astype(float)
    best, name = -np.inf, ""
    for tonic in range(12):
        for profile, names, mode in ((MAJOR_PROFILE, MAJOR_NAMES, "major"), (MINOR_PROFILE, MINOR_NAMES, "minor")):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if r > best:
                best, name = r, f"{names[tonic]} {mode}"
    return name
