"""Labelled dev clips for the voice type, analysed the app's way, with the expensive per-clip features cached.

The clips: gtsinger-dev's singing clips (10 singers with `voice_part` and `gender`), pjs's songs (one male
singer, no voice part), and the singing of mir1k-dev and edcav-dev (no labels; `training.fit_voice_type` labels the
singers whose sex the pitch-and-formant cue makes clear). Each goes through the app's own path (`load_audio`,
`track_pitch`, `estimate_range` with the recording, so the formant cue too); the pitch track and the range are
cached per file (keyed by path, size and modification time) under the cache folder, so a refit after new encoder
weights only recomputes the embeddings.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from voicerec.audio.input import AudioInputError, load_audio
from voicerec.audio.pitch import PitchTrack, track_pitch
from voicerec.audio.vocal_range import VocalRange, estimate_range

UNLABELLED = ("mir1k-dev", "edcav-dev")
CACHE_VERSION = 1
"""Bump when the pitch tracker or `estimate_range` change what they return."""


@dataclass
class Clip:
    """One labelled recording, as the app analyses it."""

    path: str
    singer: str
    sex: str  # "male" / "female"
    part: str  # gtsinger's Bass / Tenor / Alto / Soprano, "" when unknown (pjs)
    corpus: str
    track: PitchTrack
    range: VocalRange


def labelled_clips(data: Path) -> pd.DataFrame:
    """Manifest rows (absolute path, singer, sex, part, corpus) of the labelled singing clips under `data`."""
    frames = []
    gts = pd.read_csv(data / "gtsinger-dev" / "manifest.csv")
    gts = gts[gts["kind"] == "singing"]
    frames.append(pd.DataFrame({"path": [str(data / "gtsinger-dev" / p) for p in gts["path"]],
                                "singer": gts["singer"], "sex": gts["gender"], "part": gts["voice_part"],
                                "corpus": "gtsinger-dev"}))  # fmt: skip
    if (data / "pjs" / "manifest.csv").exists():
        pjs = pd.read_csv(data / "pjs" / "manifest.csv")
        pjs = pjs[pjs["kind"] == "singing"]
        frames.append(pd.DataFrame({"path": [str(data / "pjs" / p) for p in pjs["path"]], "singer": pjs["singer"],
                                    "sex": "male", "part": "", "corpus": "pjs"}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def unlabelled_clips(data: Path) -> pd.DataFrame:
    """The same rows for the singing clips of the corpora without sex labels (mir1k-dev, edcav-dev)."""
    frames = []
    for corpus in UNLABELLED:
        if not (data / corpus / "manifest.csv").exists():
            continue
        m = pd.read_csv(data / corpus / "manifest.csv")
        m = m[m["kind"] == "singing"]
        frames.append(pd.DataFrame({"path": [str(data / corpus / p) for p in m["path"]], "singer": m["singer"],
                                    "sex": "", "part": "", "corpus": corpus}))  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["path", "singer", "sex", "part",
                                                                                      "corpus"])  # fmt: skip


def _key(path: str) -> tuple[str, int, int, int]:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, CACHE_VERSION


def analyse_clips(rows: pd.DataFrame, cache: Path) -> list[Clip]:
    """Each row's pitch track and range (the app's `Recommender.analyse` path), from `cache` where it has them;
    recordings the app refuses are left out."""
    store: dict = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    clips, changed = [], False
    for row in tqdm(list(rows.itertuples()), desc="pitch and formants", disable=None):
        key = _key(row.path)
        if key not in store:
            try:
                audio = load_audio(row.path)
                track = track_pitch(audio.samples, audio.sampling_rate)
                store[key] = (track, estimate_range(track, audio.samples, audio.sampling_rate))
            except AudioInputError:  # the app refuses it too (a few of pjs's short syllabic songs)
                store[key] = None
            changed = True
        if store[key] is None:
            continue
        track, sung = store[key]
        part = row.part if isinstance(row.part, str) else ""
        clips.append(Clip(row.path, row.singer, row.sex, part, row.corpus, track, sung))
    if changed:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(store))
    return clips


def embed_clips(clips: list[Clip], embedder, names: tuple[str, ...] = ("timbre",)) -> dict[str, np.ndarray]:
    """The named embeddings of every clip (rows in `clips` order), through the app's `Embedder.embed`."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for clip in tqdm(clips, desc="embeddings", disable=None):
        embeddings = embedder.embed(load_audio(clip.path), clip.track)
        for name in names:
            out[name].append(embeddings[name])
    return {name: np.stack(rows) for name, rows in out.items()}
