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


def _keyboard(first: int, last: int, part, fill, title: str, legend: list[str], extra: str = "", marks=None) -> str:
    """An SVG piano keyboard over keys first..last: `part(midi)` names each key's part (its `data-part`),
    `fill(midi, part)` its colour (None: plain white or black); `marks` draws over the keys (given x of a key)."""
    base = _white_index(first)
    w, h = WHITE_KEY

    def key(midi: int, x: float, width: float, height: float, default: str) -> str:
        p = part(midi)
        more = extra(midi) if callable(extra) else ""
        return (
            f'<rect class="key" data-note="{note_name(midi)}" data-part="{p}"{more} x="{x:g}" y="{TOP}" '
            f'width="{width:g}" height="{height:g}" fill="{fill(midi, p) or default}" stroke="#444" '
            f'stroke-width="0.6"><title>{note_name(midi)}{"" if p == "none" else " · " + p}</title></rect>'
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
    if marks:
        body.append(marks(lambda m: (_white_index(m) - base + (0.5 if m % 12 not in _BLACK_PITCH_CLASSES else 0)) * w))
    width = (_white_index(last) - base + 1) * w
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

    def part(midi: int) -> str:
        if tessitura_low - 0.5 <= midi <= tessitura_high + 0.5:
            return "tessitura"
        return "range" if low - 0.5 <= midi <= high + 0.5 else "none"

    fills = {"tessitura": TESSITURA_COLOUR, "range": RANGE_COLOUR}
    legend = [f'<tspan fill="{RANGE_COLOUR}">■</tspan> range', f'<tspan fill="{TESSITURA_COLOUR}">■</tspan> tessitura']
    marks = None
    if median is not None:
        m = int(round(median))

        def marks(x_of) -> str:
            x = x_of(m)
            return (
                f'<path class="median" data-note="{note_name(median)}" d="M{x - 5:g},{TOP - 9} h10 l-5,8 z" '
                f'fill="{MEDIAN_COLOUR}"><title>median {note_name(median)}</title></path>'
            )

        legend.append(f'<tspan fill="{MEDIAN_COLOUR}">▼</tspan> median {note_name(median)}')
    title = f"Range {note_name(low)}–{note_name(high)} · tessitura {note_name(tessitura_low)}–"
    title += note_name(tessitura_high)
    if voice_type:
        title = f"{voice_type.capitalize()} · {title}"
    first, last = keyboard_span(low, high)
    return _keyboard(first, last, part, lambda _, p: fills.get(p), title, legend, marks=marks)


def sung_keyboard(note_seconds: Mapping[int, float], current: float | None = None, min_seconds: float = 0.2) -> str:
    """The notes sung so far on a keyboard, each key shaded by how long it was sung (darkest: the most sung), the
    note being sung marked. Keys sung at least `min_seconds` carry `data-part="sung"` and `data-seconds`."""
    sung = {m: s for m, s in note_seconds.items() if s >= min_seconds}
    most = max(sung.values(), default=0.0)
    low, high = (min(sung), max(sung)) if sung else (48, 72)
    first, last = keyboard_span(low, high)

    def part(midi: int) -> str:
        return "sung" if midi in sung else "none"

    def fill(midi: int, p: str) -> str | None:
        if p != "sung":
            return None
        share = sung[midi] / most  # the most sung key full colour, a note sung briefly a light tint
        r, g, b = (int(round(255 + (c - 255) * (0.25 + 0.75 * share))) for c in (0x31, 0x82, 0xBD))
        return f"#{r:02x}{g:02x}{b:02x}"

    def extra(midi: int) -> str:
        return f' data-seconds="{sung[midi]:.2f}"' if midi in sung else ""

    marks = None
    if current is not None and np.isfinite(current):
        m = int(round(current))

        def marks(x_of) -> str:
            x = x_of(m)
            return (
                f'<path class="current" data-note="{note_name(m)}" d="M{x - 5:g},{TOP - 9} h10 l-5,8 z" '
                f'fill="{MEDIAN_COLOUR}"><title>now {note_name(m)}</title></path>'
            )

    total = sum(sung.values())
    title = f"Notes sung so far: {len(sung)} ({total:.1f} s)"
    if sung:
        title += f", {note_name(low)}–{note_name(high)}"
    legend = [f'<tspan fill="{TESSITURA_COLOUR}">■</tspan> darker: sung longer',
              f'<tspan fill="{MEDIAN_COLOUR}">▼</tspan> now']  # fmt: skip
    return _keyboard(first, last, part, fill, title, legend, extra=extra, marks=marks)


def smooth_trace(midi: np.ndarray, frames: int = 5, context: int = 50) -> np.ndarray:
    """The pitch for display: a frame an octave (or two) away from the median of the `context` voiced frames
    around it is moved next to them (a tracker's octave slip, not a sung leap, which soon becomes the median),
    then a running median over `frames` frames so a stray frame does not spike the line. NaN stays unvoiced."""
    midi = np.asarray(midi, dtype=float).copy()
    voiced = np.isfinite(midi)
    if voiced.sum() < frames:
        return midi
    half = context // 2
    padded = np.pad(midi, half, constant_values=np.nan)
    around = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)[voiced], axis=1)
    k = np.round((midi[voiced] - around) / 12.0)
    slip = (k != 0) & (np.abs(midi[voiced] - around - 12 * k) < 3)
    midi[np.flatnonzero(voiced)[slip]] -= 12 * k[slip]
    half = frames // 2
    padded = np.pad(midi, half, constant_values=np.nan)
    out = np.full(midi.shape, np.nan)
    out[voiced] = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, frames)[voiced], axis=1)
    return out  # each window holds its own finite centre, so no median is of NaN alone


def pitch_trace(
    times: np.ndarray,
    midi: np.ndarray,
    note: str | None = None,
    cents: float | None = None,
    seconds: float = 8.0,
    width: float = 640,
    height: float = 220,
) -> str:
    """The pitch of the last `seconds` as a line over note rows (C rows labelled, the sung notes' rows named), the
    current note and how far off it is in cents in the corner, as SVG. The line breaks where there is no voice."""
    times, midi = np.asarray(times, dtype=float), smooth_trace(midi)
    end = float(times[-1]) if times.size else 0.0
    start = max(0.0, end - seconds)
    keep = times >= start
    times, midi = times[keep], midi[keep]
    voiced = midi[np.isfinite(midi)]
    if voiced.size:
        lo, hi = float(np.floor(voiced.min())) - 2, float(np.ceil(voiced.max())) + 2
    else:
        lo, hi = 48.0, 60.0
    if hi - lo < 12:  # at least an octave, centred on what was sung
        mid = (hi + lo) / 2
        lo, hi = np.floor(mid - 6), np.floor(mid - 6) + 12
    left, top, bottom = 36.0, 8.0, 18.0

    def x(t: np.ndarray | float) -> np.ndarray | float:
        return left + (np.asarray(t) - start) / seconds * (width - left - 4)

    def y(m: np.ndarray | float) -> np.ndarray | float:
        return top + (hi - np.asarray(m)) / (hi - lo) * (height - top - bottom)

    rows = []
    for m in range(int(lo), int(hi) + 1):
        black = m % 12 in _BLACK_PITCH_CLASSES
        rows.append(f'<line x1="{left:g}" x2="{width - 4:g}" y1="{y(m):.1f}" y2="{y(m):.1f}" '
                    f'stroke="{"#ddd" if black else "#bbb"}" stroke-width="{0.5 if black else 0.8}"/>')  # fmt: skip
        if m % 12 == 0 or (not black and (hi - lo) <= 18):
            rows.append(f'<text x="{left - 4:g}" y="{y(m) + 3:.1f}" font-size="9" text-anchor="end" '
                        f'fill="currentColor">{note_name(m)}</text>')  # fmt: skip
    paths, run = [], []
    for t, m in zip(times, midi, strict=True):
        if np.isfinite(m):
            run.append(f"{x(t):.1f},{y(m):.1f}")
        elif run:
            paths.append(run)
            run = []
    if run:
        paths.append(run)
    line = "".join(
        f'<polyline class="trace" points="{" ".join(p)}" fill="none" stroke="{TESSITURA_COLOUR}" stroke-width="2.2" '
        'stroke-linejoin="round" stroke-linecap="round"/>'
        for p in paths
        if len(p) > 1
    )
    label = "—" if note is None else note + ("" if cents is None else f" {cents:+.0f}¢")
    seconds_label = f'<text x="{width - 6:g}" y="{height - 4:g}" font-size="9" text-anchor="end" ' \
                    f'fill="currentColor">{end:.1f} s</text>'  # fmt: skip
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pitch-trace" role="img" data-note="{note or ""}" '
        f'data-points="{sum(len(p) for p in paths)}" data-seconds="{end:.2f}" aria-label="pitch trace, now {label}" '
        f'viewBox="0 0 {width:g} {height:g}" width="100%" style="max-width:{1.5 * width:g}px">'
        f'{"".join(rows)}{line}'
        f'<text class="current-note" x="{width - 10:g}" y="{top + 26:g}" font-size="26" font-weight="700" '
        f'text-anchor="end" fill="{MEDIAN_COLOUR}">{escape(label)}</text>{seconds_label}</svg>'
    )


def level_meter(level_db: float, peak: float, floor_db: float = -60.0) -> str:
    """The chunk's loudness as a bar from `floor_db` to 0 dBFS, green while fine, orange when quiet, red when the
    peak reaches full scale (clipping)."""
    share = float(np.clip((level_db - floor_db) / -floor_db, 0.0, 1.0))
    colour = "#d62728" if peak >= 0.99 else "#ff7f0e" if level_db < -45 else "#2ca02c"
    return (
        f'<div class="level-meter" data-db="{level_db:.1f}" title="input level {level_db:.0f} dBFS" '
        'style="height:10px;border-radius:5px;background:#e5e5e5;overflow:hidden;margin:4px 0">'
        f'<div style="width:{100 * share:.0f}%;height:100%;background:{colour}"></div></div>'
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
