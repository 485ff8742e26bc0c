"""Ranking: weighted voice similarity plus range fit, with the key to sing each song in.

The index proposes a pool of candidates by the weighted sum of the five cosines; the pool is then scored
exactly, per request: each similarity, the fused score with the request's weights, the transposition (within
+-6 semitones) that best puts the song's tessitura in the singer's comfortable range, and how well it then
fits. The final order is `match = (1 - range_weight) * score + range_weight * range_fit`.

The catalog's `fused` rows are the unit embeddings scaled by sqrt(w_catalog). Querying them with the query's
unit embeddings scaled by w_request / sqrt(w_catalog) makes the index's inner product exactly the weighted sum
of cosines under the *request's* weights, so per-request weights need no second index.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass

import numpy as np

from ..audio.keys import transpose_key
from ..audio.vocal_range import VocalRange, note_name, range_fits
from ..embeddings import EMBEDDING_NAMES, normalise_weights
from .catalog import RANGE_COLUMNS, Catalog, song_key
from .index import VectorIndex

DEFAULT_RANGE_WEIGHT = 0.3
MIN_POOL = 200

ASPECTS = {
    "timbre": "a voice whose timbre is close to yours",
    "expression": "a voice close to yours in timbre and style",
    "timbre_note": "a voice colour close to yours at the same pitch",
    "expression_note": "a style close to yours at the same pitch",
    "mood": "a delivery with a mood like yours",
}


@dataclass
class Recommendation:
    """One ranked song: the five similarities, fused score, range fit, key change and a one-line reason."""

    rank: int
    song_id: str
    title: str
    artist: str
    voice: str
    similarities: dict[str, float]
    score: float
    range_fit: float
    transpose: int
    key: str
    suggested_key: str
    reason: str
    match: float
    range_low: float
    range_high: float
    own_artist: bool = False
    language: str = ""
    lyrics: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _range_phrase(transpose: int, fit: float, key: str, suggested: str, low: float, high: float) -> str:
    if not np.isfinite(fit):
        return "no range estimate, so the key is not checked"
    notes = f"{note_name(low + transpose)}-{note_name(high + transpose)}"
    if transpose:
        direction = "higher" if transpose > 0 else "lower"
        where = f" (in {suggested})" if key else ""
        move = f"sing it {abs(transpose)} semitone{'s' if abs(transpose) > 1 else ''} {direction}{where}"
    else:
        move = f"sing it as written{f' in {key}' if key else ''}"
    if fit >= 0.8:
        return f"{move}: {notes} sits in your range"
    if fit >= 0.5:
        return f"{move}: {notes} mostly fits your range"
    return f"{move}: {notes} still stretches your range"


def sung_by(own_artist: bool, voice: str) -> str:
    """Who sings the catalog's recording: the song's own artist, or a corpus singer covering it."""
    if own_artist:
        return "sung by its own artist"
    return f"a cover, sung here by {voice}" if voice else "a cover"


def language_ids(catalog: Catalog, languages: Collection[str]) -> np.ndarray:
    """Positions of the catalog entries in one of `languages` (codes such as "en", case-insensitive)."""
    table = catalog.table()
    if "language" not in table:
        return np.arange(0)
    wanted = {code.strip().lower() for code in languages if code.strip()}
    return np.flatnonzero(table["language"].fillna("").str.lower().isin(wanted).to_numpy())


class _Row:
    """One catalog entry read from `Catalog.columns` by attribute, as a table row is."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, list], i: int) -> None:
        self._columns, self._i = columns, i

    def __getattr__(self, name: str):
        try:
            return self._columns[name][self._i]
        except KeyError:
            raise AttributeError(name) from None


def rank(
    query: dict[str, np.ndarray],
    singer: VocalRange | None,
    catalog: Catalog,
    index: VectorIndex,
    top: int = 10,
    weights: dict[str, float] | None = None,
    range_weight: float = DEFAULT_RANGE_WEIGHT,
    distinct_titles: bool = True,
    languages: Collection[str] | None = None,
) -> list[Recommendation]:
    """The `top` best catalog songs for a singer with embeddings `query` and comfortable range `singer`.

    `weights` override DEFAULT_WEIGHTS per embedding; `distinct_titles` keeps only the best recording of each
    song (title and artist, or an untitled song's first lyric line), so the list is of songs rather than of
    renditions. `languages` keeps only the entries sung in those languages: they are scored exactly, all of them
    (a filter leaves a small share of a catalog; the index would propose a pool mostly filtered away).
    """
    if top < 1:
        raise ValueError("top must be at least 1.")
    if not 0.0 <= range_weight <= 1.0:
        raise ValueError(f"range_weight must be in 0..1, got {range_weight}.")
    w = normalise_weights(weights)
    if languages:
        ids = language_ids(catalog, languages)
    else:  # the index proposes the pool; its probe is only needed here
        w_cat = catalog.fused_weights
        probe = np.concatenate(
            [
                query[n] / np.linalg.norm(query[n]) * (w[n] / np.sqrt(w_cat[n]) if w_cat[n] > 0 else 0.0)
                for n in EMBEDDING_NAMES
            ]
        ).astype(np.float32)
        pool_size = min(len(catalog), max(MIN_POOL, 20 * top))
        _, ids = index.search(probe, pool_size)
        ids = ids[0][ids[0] >= 0]
    sims = {n: catalog.matrix(n)[ids] @ (query[n] / np.linalg.norm(query[n])) for n in EMBEDDING_NAMES}
    score = sum(w[n] * sims[n] for n in EMBEDDING_NAMES)
    columns = catalog.columns()
    fits = np.full(len(ids), np.nan)
    shifts = np.zeros(len(ids), dtype=int)
    if singer is not None:
        shifts, fits = range_fits(*(np.asarray(columns[c], dtype=float)[ids] for c in RANGE_COLUMNS), singer)
    match = np.where(np.isfinite(fits), (1 - range_weight) * score + range_weight * fits, score)  # no range: voice
    out: list[Recommendation] = []
    seen: set[tuple[str, str]] = set()
    for j in np.argsort(-match, kind="stable"):
        row = _Row(columns, int(ids[j]))
        own = bool(row.own_artist) if "own_artist" in columns else False
        lyrics = (row.lyrics or "") if "lyrics" in columns else ""
        if distinct_titles:
            key = song_key(row.title, row.artist, lyrics, row.song_id)
            if key in seen:
                continue
            seen.add(key)
        sim = {n: float(sims[n][j]) for n in EMBEDDING_NAMES}
        aspect = max(EMBEDDING_NAMES, key=lambda n: w[n] * sim[n])
        suggested = transpose_key(row.key, int(shifts[j]))
        who = sung_by(own, row.voice)  # the singer's name keeps its capitals
        reason = (
            f"{who[:1].upper()}{who[1:]}: {ASPECTS[aspect]} "
            f"({aspect.replace('_', ' ')} {sim[aspect]:.2f}); "
            + _range_phrase(int(shifts[j]), float(fits[j]), row.key, suggested, row.tessitura_low, row.tessitura_high)
            + "."
        )
        out.append(
            Recommendation(
                rank=len(out) + 1,
                song_id=row.song_id,
                title=row.title,
                artist=row.artist,
                voice=row.voice,
                similarities=sim,
                score=float(score[j]),
                range_fit=float(fits[j]),
                transpose=int(shifts[j]),
                key=row.key,
                suggested_key=suggested,
                reason=reason,
                match=float(match[j]),
                range_low=float(row.range_low),
                range_high=float(row.range_high),
                own_artist=own,
                language=(row.language or "") if "language" in columns else "",
                lyrics=lyrics,
            )  # fmt: skip
        )
        if len(out) == top:
            break
    return out
