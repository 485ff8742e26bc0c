"""The guided range test on synthesised singing of known notes: held notes count, slides do not, retry works, and
the measured range replaces the sung one for the voice type."""

from __future__ import annotations

import numpy as np
import pytest

from voicerec.audio.pitch import track_pitch
from voicerec.audio.range_test import MeasuredRange, RangeTest, held_notes
from voicerec.audio.synth import VOICES, sing
from voicerec.audio.vocal_range import VocalRange

SR = 16000


def sung_midi(notes: list[tuple[float, float]], voice: str = "baritone", seed: int = 0) -> np.ndarray:
    """The tracked pitch (MIDI, NaN unvoiced) of `notes` sung legato, as the page feeds the test."""
    audio = sing(notes, VOICES[voice], SR, vowels="a", seed=seed, gap=0.0)
    return track_pitch(audio, SR).midi


def slide(start: float, end: float, seconds: float = 1.0) -> list[tuple[float, float]]:
    """A glide through every semitone between two notes, 80 ms on each: no note is held."""
    steps = np.arange(start, end, -1 if end < start else 1)
    return [(float(m), seconds / len(steps)) for m in steps]


def test_held_notes_need_half_a_second_within_50_cents():
    frames = np.arange(80)  # 0.8 s: a 0.5 s stretch and the 0.2 s vibrato cycle it is averaged over
    vibrato = np.full(80, 50.0) + 0.8 * np.sin(2 * np.pi * 5.5 * frames / 100)  # +-80 cents at 5.5 Hz: held
    assert held_notes(vibrato).size and abs(np.median(held_notes(vibrato)) - 50.0) < 0.15
    assert held_notes(vibrato[:65]).size == 0  # a 0.45 s stretch is not half a second
    scoop = 50.0 + frames / 40  # 2 semitones up over 0.8 s: moving, not held
    assert held_notes(scoop).size == 0
    wander = np.full(80, 50.0) + 0.8 * np.sin(2 * np.pi * 1.5 * frames / 100)  # a slow 80-cent drift: not steady
    assert held_notes(wander).size == 0
    broken = vibrato.copy()
    broken[35] = np.nan  # a dropout in the middle: not voiced throughout
    assert held_notes(broken).size == 0


@pytest.mark.parametrize("voice, comfortable, low, high", [("baritone", 50, 41, 62), ("mezzo", 62, 55, 74)])
def test_guided_steps_measure_the_held_notes(voice, comfortable, low, high):
    test = RangeTest()
    assert test.name == "comfortable"
    test.feed(sung_midi([(comfortable, 1.2)], voice, seed=1))
    assert test.name == "low"  # the comfortable "ah" moves on by itself
    assert abs(test.notes["comfortable"] - comfortable) < 0.5
    assert test.next() == "No steady note yet: hold one note for half a second."
    test.feed(sung_midi([*slide(comfortable, low), (low, 1.2)], voice, seed=2))
    assert abs(test.notes["low"] - low) < 0.5, test.notes  # the held note, not the slide's passing notes
    assert test.next() is None and test.name == "high"
    test.feed(sung_midi([*slide(low, high, 1.5), (high, 1.2)], voice, seed=3))
    assert abs(test.notes["high"] - high) < 0.5, test.notes
    assert test.next() is None and test.done
    result = test.result()
    assert isinstance(result, MeasuredRange)
    assert abs(result.low - low) < 0.5 and abs(result.high - high) < 0.5
    assert test.instruction().startswith("Range test done")


def test_a_slide_alone_counts_no_note_and_retry_starts_the_step_again():
    test = RangeTest()
    test.feed(sung_midi([(52, 1.0)], seed=4))
    test.feed(sung_midi(slide(52, 40, 1.2), seed=5))
    assert "low" not in test.notes  # sliding passes through notes without holding any
    test.feed(sung_midi([(43, 1.0)], seed=6))
    assert abs(test.notes["low"] - 43) < 0.5
    test.retry()
    assert "low" not in test.notes and test.name == "low"
    test.feed(sung_midi([(45, 1.0)], seed=7))
    assert abs(test.notes["low"] - 45) < 0.5  # only what was sung after the retry
    test.next()
    test.feed(sung_midi([(46, 1.0)], seed=8))  # hardly above the lowest: not a range
    assert "hardly above" in test.next() and not test.done


def test_measured_range_sets_the_voice_type_and_keeps_the_tessitura_inside():
    sung = VocalRange(low=52, high=60, median=55, tessitura_low=53, tessitura_high=58, voice_type="tenor",
                      voiced_seconds=8.0)  # fmt: skip
    low_voice = MeasuredRange(low=40.0, high=60.0).apply(sung)
    assert low_voice.voice_type == "bass" and (low_voice.low, low_voice.high) == (40.0, 60.0)
    assert low_voice.low <= low_voice.tessitura_low <= low_voice.tessitura_high <= low_voice.high
    narrow = MeasuredRange(low=54.0, high=57.0).apply(sung)
    assert 54.0 <= narrow.tessitura_low <= narrow.tessitura_high <= 57.0
