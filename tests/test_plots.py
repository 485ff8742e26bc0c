"""The app's figures draw what they are given: the right keys shaded, bars as long as the similarities."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from voicerec.plots import RANGE_COLOUR, TESSITURA_COLOUR, breakdown_chart, keyboard_span, range_keyboard


def _key_colours(fig) -> list[str]:
    ax = fig.axes[0]
    return [to_hex(p.get_facecolor()) for p in ax.patches if isinstance(p, Rectangle)]


def test_keyboard_shades_range_and_tessitura_keys():
    # range D3 (50) .. A4 (69): 20 keys; tessitura F#3 (54) .. E4 (64): 11 keys
    fig = range_keyboard(50, 69, 54, 64, median=58, voice_type="baritone")
    colours = _key_colours(fig)
    first, last = keyboard_span(50, 69)
    assert len(colours) == last - first + 1  # one patch per key
    assert colours.count(TESSITURA_COLOUR) == 11
    assert colours.count(RANGE_COLOUR) == 20 - 11
    title = fig.axes[0].get_title()
    assert "Baritone" in title and "D3" in title and "A4" in title and "F#3" in title and "E4" in title


def test_keyboard_grows_for_extreme_ranges():
    first, last = keyboard_span(30.0, 90.0)
    assert first % 12 == 0 and last % 12 == 11
    assert first <= 28 and last >= 92
    fig = range_keyboard(30.0, 90.0, 40.0, 80.0)
    assert len(_key_colours(fig)) == last - first + 1


def test_keyboard_rejects_inconsistent_range():
    with pytest.raises(ValueError, match="tessitura"):
        range_keyboard(60, 70, 55, 65)


def test_breakdown_bars_match_similarities_best_song_on_top():
    names = ["timbre", "expression", "timbre_note", "expression_note", "mood"]
    rng = np.random.default_rng(0)
    rows = [dict(zip(names, rng.uniform(-0.2, 1.0, len(names)), strict=True)) for _ in range(3)]
    fig = breakdown_chart(["first", "second", "third"], rows, names, scores=[0.9, 0.8, 0.7])
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3 * len(names)
    # bars are drawn one embedding at a time, songs in order; widths are the similarities
    widths = np.array([b.get_width() for b in bars]).reshape(len(names), 3).T
    expected = np.array([[row[n] for n in names] for row in rows])
    np.testing.assert_allclose(widths, expected)
    ys = np.array([b.get_y() for b in bars]).reshape(len(names), 3).T.mean(axis=1)
    assert ys[0] > ys[1] > ys[2]
    top_label = max(ax.get_yticklabels(), key=lambda t: t.get_position()[1]).get_text()
    assert top_label.startswith("first") and "0.90" in top_label
    assert ax.get_xlim()[0] < 0  # negative similarities stay visible


def test_breakdown_rejects_mismatched_rows():
    with pytest.raises(ValueError):
        breakdown_chart(["a", "b"], [{"timbre": 0.5}])
    with pytest.raises(ValueError):
        breakdown_chart([], [])
