"""A guided range test, as singing apps run one: a comfortable "ah", then the lowest comfortable note, then the
highest, each counted only when it is voiced and held steady.

Why: ten seconds of one song show the notes that song needs, not the voice's range. A singer who slides down and
holds their lowest comfortable note, then their highest, shows the range itself; `MeasuredRange` then stands for
the recording's range in the voice type and in every song's range fit (`Recommender.recommend(measured_range=...)`).
A note counts when every frame of `STEADY_SECONDS` is voiced and the pitch, averaged over one vibrato cycle
(`VIBRATO_SECONDS`), stays within `STEADY_CENTS` of its median: a slide passes through notes without holding them,
a crack or a scoop lasts less, while a held note's vibrato (often +-50..100 cents in trained voices) does not count
against it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .vocal_range import FEMALE_TYPES, MALE_TYPES, VOICE_TYPES, VocalRange, note_name

STEADY_SECONDS = 0.5
STEADY_CENTS = 50.0
VIBRATO_SECONDS = 0.2
"""The averaging window for steadiness: one cycle of a 5 Hz vibrato, the slowest usual."""
MIN_SPAN = 3.0
"""Semitones the lowest and highest held notes must be apart to make a range."""
STEPS = ("comfortable", "low", "high")
INSTRUCTIONS = {
    "comfortable": 'Step 1 of 3: sing a comfortable "ah" and hold it for a second.',
    "low": "Step 2 of 3: slide down and hold your lowest comfortable note (no growl), then press Next.",
    "high": "Step 3 of 3: slide up and hold your highest comfortable note (no strain, no shout), then press Next.",
}


@dataclass
class MeasuredRange:
    """The lowest and highest comfortable notes a range test measured (fractional MIDI numbers)."""

    low: float
    high: float
    comfortable: float | None = None

    def apply(self, sung: VocalRange) -> VocalRange:
        """`sung` (what a recording showed) with this range: the tessitura kept inside it, and the voice type the one
        of the recording's sex whose usual comfortable range is closest to it."""
        female = sung.voice_type.split()[0] in FEMALE_TYPES
        types = FEMALE_TYPES if female else MALE_TYPES
        voice = min(types, key=lambda t: abs(VOICE_TYPES[t][0] - self.low) + abs(VOICE_TYPES[t][1] - self.high))
        t_low = float(np.clip(sung.tessitura_low, self.low, self.high))
        t_high = float(np.clip(sung.tessitura_high, t_low, self.high))
        return dataclasses.replace(sung, low=self.low, high=self.high, tessitura_low=t_low, tessitura_high=t_high,
                                   voice_type=voice)  # fmt: skip

    def describe(self) -> str:
        return f"{note_name(self.low)}–{note_name(self.high)}"


def held_notes(midi: np.ndarray, hop_seconds: float = 0.01) -> np.ndarray:
    """The note (median vibrato-averaged pitch) of every stretch of `STEADY_SECONDS` (sliding by one frame) that is
    voiced throughout and whose vibrato-averaged pitch stays within `STEADY_CENTS` of its median; empty if none."""
    width = int(round(STEADY_SECONDS / hop_seconds))
    cycle = max(1, int(round(VIBRATO_SECONDS / hop_seconds)))
    midi = np.asarray(midi, dtype=float)
    if midi.size < width + cycle - 1:
        return np.empty(0)
    # a running mean over one vibrato cycle (NaN where it meets an unvoiced frame), then 0.5 s windows of it
    averaged = np.lib.stride_tricks.sliding_window_view(midi, cycle).mean(axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(averaged, width)
    windows = windows[np.all(np.isfinite(windows), axis=1)]
    if not len(windows):
        return np.empty(0)
    centre = np.median(windows, axis=1)
    return centre[np.all(np.abs(windows - centre[:, None]) <= STEADY_CENTS / 100, axis=1)]


@dataclass
class RangeTest:
    """The test's state: which step, and the held notes found in each. Feed it the pitch of the frames sung during
    the current step (`feed`); `next()` moves on once the step has its note, `retry()` starts the step again."""

    step: int = 0
    notes: dict[str, float] = field(default_factory=dict)
    _frames: list[np.ndarray] = field(default_factory=list)

    @property
    def name(self) -> str:
        return STEPS[min(self.step, len(STEPS) - 1)]

    @property
    def done(self) -> bool:
        return self.step >= len(STEPS)

    def feed(self, midi: np.ndarray) -> None:
        """Frames (MIDI, NaN where unvoiced) sung during the current step, in order."""
        if self.done:
            return
        self._frames.append(np.asarray(midi, dtype=float))
        held = held_notes(np.concatenate(self._frames))
        if held.size:
            pick = {"comfortable": np.median, "low": np.min, "high": np.max}[self.name]
            self.notes[self.name] = float(pick(held))
            if self.name == "comfortable":  # nothing to choose between: go on by itself
                self.next()

    def next(self) -> str | None:
        """Go to the next step; a message instead if this step has no held note yet or the notes make no range."""
        if self.done:
            return None
        if self.name not in self.notes:
            return "No steady note yet: hold one note for half a second."
        if self.name == "high" and self.notes["high"] - self.notes["low"] < MIN_SPAN:
            return (f"Your highest note ({note_name(self.notes['high'])}) is hardly above your lowest "
                    f"({note_name(self.notes['low'])}): slide higher, or retry.")  # fmt: skip
        self.step += 1
        self._frames = []
        return None

    def retry(self) -> None:
        self.notes.pop(self.name, None)
        self._frames = []

    def instruction(self) -> str:
        if self.done:
            return f"Range test done: your comfortable range is {self.result().describe()}."
        found = self.notes.get(self.name)
        return INSTRUCTIONS[self.name] + (f" Held: **{note_name(found)}**." if found is not None else "")

    def result(self) -> MeasuredRange | None:
        if not self.done:
            return None
        return MeasuredRange(self.notes["low"], self.notes["high"], self.notes.get("comfortable"))
