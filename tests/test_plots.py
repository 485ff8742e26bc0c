"""The app's figures draw what they are given: the right keys shaded, one point per song and embedding."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from voicerec.app.plots import (
    RANGE_COLOUR,
    TESSITURA_COLOUR,
    breakdown_frame,
    keyboard_span,
    pitch_trace,
    range_keyboard,
    smooth_trace,
    sung_keyboard,
)

SVG = "{http://www.w3.org/2000/svg}"


def _keys(svg: str) -> list[ET.Element]:
    return [el for el in ET.fromstring(svg).iter(f"{SVG}rect") if el.get("class") == "key"]


def test_keyboard_shades_range_and_tessitura_keys():
    # range D3 (50) .. A4 (69): 20 keys; tessitura F#3 (54) .. E4 (64): 11 keys
    svg = range_keyboard(50, 69, 54, 64, median=58, voice_type="baritone")
    keys = _keys(svg)
    first, last = keyboard_span(50, 69)
    assert len(keys) == last - first + 1  # one rectangle per key
    fills = [k.get("fill") for k in keys]
    assert fills.count(TESSITURA_COLOUR) == 11
    assert fills.count(RANGE_COLOUR) == 20 - 11
    shaded = {k.get("data-note") for k in keys if k.get("data-part") != "none"}
    assert {"D3", "A4", "F#3", "E4"} <= shaded and "C#3" not in shaded and "A#4" not in shaded
    root = ET.fromstring(svg)
    title = root.get("aria-label")
    assert "Baritone" in title and "D3" in title and "A4" in title and "F#3" in title and "E4" in title
    median = [el for el in root.iter(f"{SVG}path") if el.get("class") == "median"]
    assert [el.get("data-note") for el in median] == ["A#3"]


def test_keyboard_grows_for_extreme_ranges():
    first, last = keyboard_span(30.0, 90.0)
    assert first % 12 == 0 and last % 12 == 11
    assert first <= 28 and last >= 92
    assert len(_keys(range_keyboard(30.0, 90.0, 40.0, 80.0))) == last - first + 1


def test_keyboard_rejects_inconsistent_range():
    with pytest.raises(ValueError, match="tessitura"):
        range_keyboard(60, 70, 55, 65)


def test_breakdown_has_one_row_per_song_and_embedding_best_song_first():
    names = ["timbre", "expression", "timbre_note", "expression_note", "mood"]
    rng = np.random.default_rng(0)
    rows = [dict(zip(names, rng.uniform(-0.2, 1.0, len(names)), strict=True)) for _ in range(3)]
    frame = breakdown_frame(["first", "second", "third"], rows, names, scores=[0.9, 0.8, 0.7],
                            labels={"timbre_note": "Timbre (key-free)"})  # fmt: skip
    assert len(frame) == 3 * len(names)
    expected = np.array([[row[n] for n in names] for row in rows])
    np.testing.assert_allclose(frame["similarity"].to_numpy().reshape(3, len(names)), expected)
    assert list(dict.fromkeys(frame["song"])) == ["first (0.90)", "second (0.80)", "third (0.70)"]
    assert list(frame["embedding"][: len(names)]) == ["timbre", "expression", "Timbre (key-free)",
                                                      "expression note", "mood"]  # fmt: skip


def test_breakdown_rejects_mismatched_rows():
    with pytest.raises(ValueError):
        breakdown_frame(["a", "b"], [{"timbre": 0.5}])
    with pytest.raises(ValueError):
        breakdown_frame([], [])


def test_pitch_trace_folds_octave_slips_and_breaks_at_silence():
    midi = np.full(300, 57.0) + 0.2 * np.sin(np.arange(300) / 3)
    midi[100:110] -= 12  # a tracker's octave slip for 0.1 s
    midi[150:170] = np.nan  # a breath
    smooth = smooth_trace(midi)
    assert np.nanmax(np.abs(smooth - 57.0)) < 0.5
    assert np.isnan(smooth[150:170]).all() and np.isfinite(smooth[:150]).all()
    svg = pitch_trace(np.arange(300) * 0.01, midi, "A3", 12.0)
    assert svg.count('class="trace"') == 2  # the line breaks at the breath
    assert 'data-note="A3"' in svg and "A3 +12¢" in svg
    assert ">A3<" in svg or ">C4<" in svg  # the note rows are named


def test_sung_keyboard_shades_by_seconds():
    svg = sung_keyboard({57: 2.0, 59: 0.5, 60: 0.05}, current=57.2)
    assert svg.count('data-part="sung"') == 2  # 0.05 s is below the minimum
    assert 'data-note="A3" data-part="sung" data-seconds="2.00"' in svg
    assert 'class="current" data-note="A3"' in svg
    full = re.search(r'data-note="A3"[^>]*fill="(#\w+)"', svg)[1]
    light = re.search(r'data-note="B3"[^>]*fill="(#\w+)"', svg)[1]
    assert int(full[1:3], 16) < int(light[1:3], 16)  # the longer note is darker
