"""Figures for the app: the singer's range on a piano keyboard and the per-embedding score breakdown.

Both return a `matplotlib.figure.Figure` built without pyplot, so they are safe to call from the app's worker
threads and need no display. Inputs are plain numbers (MIDI notes, similarities) so they are easy to test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .vocal_range import note_name

_BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}
RANGE_COLOUR = "#9ecae1"
TESSITURA_COLOUR = "#3182bd"
MEDIAN_COLOUR = "#e6550d"


def keyboard_span(low: float, high: float, margin: int = 2) -> tuple[int, int]:
    """Keys to draw: from the C at or below `low - margin` to the B at or above `high + margin`, at least C2..B5."""
    first = min(36, int(np.floor(low)) - margin)
    last = max(83, int(np.ceil(high)) + margin)
    return first - first % 12, last + (11 - last % 12)


def _white_index(midi: int) -> int:
    """Position of a key counted in white keys (black keys sit between two)."""
    octave, pc = divmod(midi, 12)
    return octave * 7 + sum(1 for p in range(pc) if p not in _BLACK_PITCH_CLASSES)


def range_keyboard(
    low: float,
    high: float,
    tessitura_low: float,
    tessitura_high: float,
    median: float | None = None,
    voice_type: str | None = None,
) -> Figure:
    """Piano keyboard with the full range (light) and the tessitura (dark) shaded; notes as MIDI numbers.

    The tessitura is where the singer spends most time: the keys a song should mostly stay on.
    """
    if not low <= tessitura_low <= tessitura_high <= high:
        raise ValueError(
            f"Expected low <= tessitura_low <= tessitura_high <= high, got {low}, {tessitura_low}, "
            f"{tessitura_high}, {high}."
        )
    first, last = keyboard_span(low, high)
    base = _white_index(first)
    fig = Figure(figsize=(9, 2.4), layout="constrained")
    ax = fig.add_subplot()

    def colour(midi: int, default: str) -> str:
        if tessitura_low - 0.5 <= midi <= tessitura_high + 0.5:
            return TESSITURA_COLOUR
        if low - 0.5 <= midi <= high + 0.5:
            return RANGE_COLOUR
        return default

    for midi in range(first, last + 1):
        if midi % 12 in _BLACK_PITCH_CLASSES:
            continue
        x = _white_index(midi) - base
        ax.add_patch(Rectangle((x, 0), 1, 1, facecolor=colour(midi, "white"), edgecolor="#444", lw=0.6))
        if midi % 12 == 0:
            ax.text(x + 0.5, 0.06, note_name(midi), ha="center", va="bottom", fontsize=7, color="#333")
    for midi in range(first, last + 1):
        if midi % 12 not in _BLACK_PITCH_CLASSES:
            continue
        x = _white_index(midi) - base - 0.3  # centred on the boundary between its two white neighbours
        ax.add_patch(Rectangle((x, 0.38), 0.6, 0.62, facecolor=colour(midi, "#222"), edgecolor="#222", lw=0.6))
    if median is not None:
        x = (
            _white_index(int(round(median)))
            - base
            + (0.5 if int(round(median)) % 12 not in _BLACK_PITCH_CLASSES else 0)
        )
        ax.plot([x], [1.08], marker="v", color=MEDIAN_COLOUR, markersize=8, clip_on=False)
    ax.set_xlim(0, _white_index(last) - base + 1)
    ax.set_ylim(0, 1.15)
    ax.set_axis_off()
    title = (
        f"Range {note_name(low)}–{note_name(high)} · tessitura {note_name(tessitura_low)}–{note_name(tessitura_high)}"
    )
    if voice_type:
        title = f"{voice_type.capitalize()} · {title}"
    ax.set_title(title, fontsize=10)
    handles = [
        Rectangle((0, 0), 1, 1, facecolor=RANGE_COLOUR, edgecolor="#444", label="range"),
        Rectangle((0, 0), 1, 1, facecolor=TESSITURA_COLOUR, edgecolor="#444", label="tessitura"),
    ]
    if median is not None:
        handles.append(ax.plot([], [], "v", color=MEDIAN_COLOUR, label=f"median {note_name(median)}")[0])
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def breakdown_chart(
    songs: Sequence[str],
    similarities: Sequence[Mapping[str, float]],
    names: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Grouped horizontal bars: for each song (best first, at the top) its similarity under each embedding.

    Shows *why* a song ranks high: which aspect of the voice (timbre, expression, mood...) it matches.
    `scores` (the fused score of each song), when given, is printed after each song's label; `labels` names the
    embeddings in the legend (default: the names with spaces).
    """
    if len(songs) != len(similarities):
        raise ValueError(f"{len(songs)} songs but {len(similarities)} similarity rows.")
    if scores is not None and len(scores) != len(songs):
        raise ValueError(f"{len(songs)} songs but {len(scores)} scores.")
    if not songs:
        raise ValueError("No songs to chart.")
    names = list(names or similarities[0].keys())
    values = np.array([[row[name] for name in names] for row in similarities], dtype=float)
    fig = Figure(figsize=(9, 0.55 * len(songs) * max(1.0, len(names) / 4) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / len(names)
    y = np.arange(len(songs))[::-1]  # best song at the top
    colours = matplotlib.colormaps["tab10"].colors
    for j, name in enumerate(names):
        offset = (len(names) - 1) / 2 * height - j * height
        ax.barh(
            y + offset,
            values[:, j],
            height=height,
            label=(labels or {}).get(name, name.replace("_", " ")),
            color=colours[j % 10],
        )
    song_labels = [s if len(s) <= 40 else s[:39] + "…" for s in songs]
    if scores is not None:
        song_labels = [f"{label}\nscore {score:.2f}" for label, score in zip(song_labels, scores, strict=True)]
    ax.set_yticks(y, song_labels, fontsize=8)
    low = min(0.0, float(values.min()))
    ax.set_xlim(low, 1.0)
    ax.axvline(0, color="#888", lw=0.6)
    ax.set_xlabel("cosine similarity to your voice")
    ax.set_title("Why these songs: how close each one is to your voice, per embedding", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return fig
