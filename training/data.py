"""Training data: clips from a folder of audio, a manifest CSV, or a `datasets` dataset with an Audio column.

Clips are decoded once into memory at the model rate (the corpora used here are minutes to hours long);
`RandomCrops` then serves fixed-length random crops to a DataLoader.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm.auto import tqdm

from voicerec.audio.input import MODEL_RATE, VoiceAudio, load_audio

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


@dataclass
class Clip:
    """One recording in memory, with whatever labels its source gave (empty strings when unknown)."""

    audio: np.ndarray
    path: str
    singer: str = ""
    song: str = ""
    take: str = ""
    kind: str = "singing"
    meta: dict = field(default_factory=dict)


def _decode(path: Path, sr: int) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != sr:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=sr, res_type="soxr_hq")
    return mono.astype(np.float32)


def _rows_from_manifest(manifest: Path) -> list[dict]:
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["path"] = str((manifest.parent / row["path"]).resolve())
    return rows


def _rows_from_folder(folder: Path) -> list[dict]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    # a folder's clips are labelled by their parent folder (one folder per singer, if so arranged)
    return [{"path": str(p), "singer": p.parent.name if p.parent != folder else ""} for p in files]


def load_clips(
    source: str | Path,
    sr: int = 16000,
    kinds: tuple[str, ...] = ("singing",),
    singers: set[str] | None = None,
    exclude_singers: set[str] | None = None,
    min_seconds: float = 1.0,
) -> list[Clip]:
    """Decode every clip of `source` whose `kind` is in `kinds` (folders count as singing).

    `source` is a manifest CSV, a folder of audio files, or `hf:NAME_OR_PATH[:split]` for a `datasets`
    dataset with an `audio` column (and optional `singer`/`song`/`take`/`kind` columns).
    `singers` / `exclude_singers` select singer-disjoint folds.
    """
    source = str(source)
    if source.startswith("hf:"):
        return _load_hf(source[3:], sr, kinds, singers, exclude_singers, min_seconds)
    path = Path(source)
    if path.is_dir() and (path / "manifest.csv").exists():
        path = path / "manifest.csv"
    rows = _rows_from_manifest(path) if path.is_file() else _rows_from_folder(path)
    clips = []
    for row in tqdm(rows, desc=f"decoding {Path(source).name}", leave=False):
        kind = row.get("kind") or "singing"
        singer = row.get("singer") or ""
        if kind not in kinds or (singers is not None and singer not in singers):
            continue
        if exclude_singers and singer in exclude_singers:
            continue
        audio = _decode(Path(row["path"]), sr)
        if len(audio) < min_seconds * sr:
            continue
        extra = {k: v for k, v in row.items() if k not in {"path", "singer", "song", "take", "kind"}}
        clips.append(Clip(audio, row["path"], singer, row.get("song") or "", row.get("take") or "", kind, extra))
    return clips


def _load_hf(spec: str, sr: int, kinds, singers, exclude_singers, min_seconds: float) -> list[Clip]:
    import datasets

    name, _, split = spec.partition(":")
    ds = datasets.load_dataset(name, split=split or "train")
    ds = ds.cast_column("audio", datasets.Audio(sampling_rate=sr))
    clips = []
    for i, row in enumerate(ds):
        kind = row.get("kind") or "singing"
        singer = row.get("singer") or ""
        if kind not in kinds or (singers is not None and singer not in singers):
            continue
        if exclude_singers and singer in exclude_singers:
            continue
        decoded = row["audio"]
        array = decoded["array"] if isinstance(decoded, dict) else decoded.get_all_samples().data.mean(0).numpy()
        audio = np.asarray(array, dtype=np.float32)
        if len(audio) >= min_seconds * sr:
            clips.append(Clip(audio, f"{name}[{i}]", singer, row.get("song") or "", row.get("take") or "", kind))
    return clips


def join_songs(m: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """A manifest's clips joined per song, in take order, into recordings of at least `seconds` (a remainder under
    half of it joins the last one): `path` becomes the clips' paths joined by ";" (`load_joined`). For corpora of
    short clips (edcav-dev's), which the app would refuse or read as a few windows."""
    rows = []
    for _, song in m.sort_values(["song", "take"]).groupby("song", sort=True):
        groups, current, length = [], [], 0.0
        for row in song.itertuples():
            current.append(row)
            length += row.seconds
            if length >= seconds:
                groups.append(current)
                current, length = [], 0.0
        if current:
            groups[-1:] = [groups[-1] + current] if groups and length < seconds / 2 else [*groups[-1:], current]
        for group in groups:
            first = group[0]
            rows.append({"path": ";".join(r.path for r in group), "singer": first.singer, "song": first.song,
                         "take": first.take, "kind": "singing", "seconds": sum(r.seconds for r in group)})  # fmt: skip
    return pd.DataFrame(rows)


def load_joined(path: str) -> VoiceAudio:
    """The recording as the app loads it (`voicerec.load_audio`); `a;b;...` (`join_songs`) decoded, joined, then
    loaded."""
    if ";" not in path:
        return load_audio(path)
    parts = [sf.read(p, dtype="float32", always_2d=True) for p in path.split(";")]
    if any(rate != MODEL_RATE for _, rate in parts):
        raise ValueError(f"Joined clips must be {MODEL_RATE} Hz: {path}")
    return load_audio((MODEL_RATE, np.concatenate([x.mean(1) for x, _ in parts])))


class RandomCrops(torch.utils.data.Dataset):
    """`length` random crops of `seconds` from the clips (shorter clips are tiled); item = (crop, clip index)."""

    def __init__(self, clips: list[Clip], seconds: float, sr: int = 16000, length: int = 10_000, seed: int = 0):
        self.clips, self.n, self.length, self.seed = clips, int(seconds * sr), length, seed
        weights = np.array([len(c.audio) for c in clips], dtype=float)
        self.weights = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def crop(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(audio) <= self.n:
            audio = np.tile(audio, self.n // max(len(audio), 1) + 1)
        start = int(rng.integers(0, len(audio) - self.n + 1))
        return audio[start : start + self.n]

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng((self.seed, index, torch.initial_seed() % 2**31))
        i = int(rng.choice(len(self.clips), p=self.weights))
        return self.crop(self.clips[i].audio, rng), i
