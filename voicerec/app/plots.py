"""Figures for the app, drawn by the browser: the singer's range on an SVG piano keyboard (shown by `gr.HTML`) and
the per-embedding similarities as a long table (shown by a Gradio native plot, which Vega-Lite draws client side).

Why not server-side images: rendering two matplotlib figures to PNG took 0.6 s of each request, half as long as
the whole analysis. An SVG string and a 25-row table cost well under a millisecond. Inputs are plain numbers
(MIDI notes, similarities) so the figures are easy to test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd

from ..audio.vocal_range import note_name

_BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}
RANGE_COLOUR = "#9ecae1"
TESSITURA_COLOUR = "#3182bd"
MEDIAN_COLOUR = "#e6550d"
WHITE_KEY = (18, 80)  # width, height in SVG units; black keys are 0.6 x 0.62 of them, as on a piano
TOP = 26  # room above the keys for the title and the median marker


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
) -> str:
    """An SVG piano keyboard with the full range (light) and the tessitura (dark) shaded; notes as MIDI numbers.

    The tessitura is where the singer spends most time: the keys a song should mostly stay on. Every key carries
    `data-note` and `data-part` (range, tessitura or none) and a hover title, so it reads and tests as what it is.
    """
    if not low <= tessitura_low <= tessitura_high <= high:
        raise ValueError(
            f"Expected low <= tessitura_low <= tessitura_high <= high, got {low}, {tessitura_low}, "
            f"{tessitura_high}, {high}."
        )
    first, last = keyboard_span(low, high)
    base = _white_index(first)
    w, h = WHITE_KEY

    def part(midi: int) -> str:
        if tessitura_low - 0.5 <= midi <= tessitura_high + 0.5:
            return "tessitura"
        return "range" if low - 0.5 <= midi <= high + 0.5 else "none"

    fills = {"tessitura": TESSITURA_COLOUR, "range": RANGE_COLOUR}

    def key(midi: int, x: float, width: float, height: float, default: str) -> str:
        p = part(midi)
        return (
            f'<rect class="key" data-note="{note_name(midi)}" data-part="{p}" x="{x:g}" y="{TOP}" width="{width:g}" '
            f'height="{height:g}" fill="{fills.get(p, default)}" stroke="#444" stroke-width="0.6">'
            f"<title>{note_name(midi)}{'' if p == 'none' else ' · ' + p}</title></rect>"
        )

    whites = [m for m in range(first, last + 1) if m % 12 not in _BLACK_PITCH_CLASSES]
    blacks = [m for m in range(first, last + 1) if m % 12 in _BLACK_PITCH_CLASSES]
    body = [key(m, (_white_index(m) - base) * w, w, h, "white") for m in whites]
    body += [
        f'<text x="{(_white_index(m) - base + 0.5) * w:g}" y="{TOP + h - 5}" font-size="8" text-anchor="middle" '
        f'fill="#333">{note_name(m)}</text>'
        for m in whites
        if m % 12 == 0
    ]
    body += [key(m, (_white_index(m) - base - 0.3) * w, 0.6 * w, 0.62 * h, "#222") for m in blacks]
    width = (_white_index(last) - base + 1) * w
    legend = [f'<tspan fill="{RANGE_COLOUR}">■</tspan> range', f'<tspan fill="{TESSITURA_COLOUR}">■</tspan> tessitura']
    if median is not None:
        m = int(round(median))
        x = (_white_index(m) - base + (0.5 if m % 12 not in _BLACK_PITCH_CLASSES else 0)) * w
        body.append(
            f'<path class="median" data-note="{note_name(median)}" d="M{x - 5:g},{TOP - 9} h10 l-5,8 z" '
            f'fill="{MEDIAN_COLOUR}"><title>median {note_name(median)}</title></path>'
        )
        legend.append(f'<tspan fill="{MEDIAN_COLOUR}">▼</tspan> median {note_name(median)}')
    title = f"Range {note_name(low)}–{note_name(high)} · tessitura {note_name(tessitura_low)}–"
    title += note_name(tessitura_high)
    if voice_type:
        title = f"{voice_type.capitalize()} · {title}"
    head = (
        f'<text x="2" y="11" font-size="11" font-weight="600" fill="currentColor">{escape(title)}</text>'
        f'<text x="{width:g}" y="11" font-size="9" text-anchor="end" fill="currentColor">'
        f"{'   '.join(legend)}</text>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="range-keyboard" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width:g} {TOP + h + 1}" width="100%" style="max-width:{2 * width:g}px">'
        f"{head}{''.join(body)}</svg>"
    )


def breakdown_frame(
    songs: Sequence[str],
    similarities: Sequence[Mapping[str, float]],
    names: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The per-embedding similarities in long form (song, embedding, similarity), songs best first.

    Plotted with the song on x and one colour per embedding, it shows *why* a song ranks high: which aspect of
    the voice (timbre, expression, mood...) it matches. `scores` (the fused score of each song), when given, is
    appended to each song's label; `labels` names the embeddings (default: the names with spaces).
    """
    if len(songs) != len(similarities):
        raise ValueError(f"{len(songs)} songs but {len(similarities)} similarity rows.")
    if scores is not None and len(scores) != len(songs):
        raise ValueError(f"{len(songs)} songs but {len(scores)} scores.")
    if not songs:
        raise ValueError("No songs to chart.")
    names = list(names or similarities[0].keys())
    song_labels = [s if len(s) <= 24 else s[:23] + "…" for s in songs]  # the axis gives each ~130 px
    if scores is not None:
        song_labels = [f"{label} ({score:.2f})" for label, score in zip(song_labels, scores, strict=True)]
    rows = [
        {"song": label, "embedding": (labels or {}).get(name, name.replace("_", " ")), "similarity": float(row[name])}
        for label, row in zip(song_labels, similarities, strict=True)
        for name in names
    ]
    return pd.DataFrame(rows, columns=["song", "embedding", "similarity"])
