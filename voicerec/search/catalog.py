"""The song catalog: a `datasets` dataset in Hub layout (data/*.parquet + README.md card with YAML `configs`).

One row per entry: a singer's recording of a song, pooled over its takes (rows of the build's songs.csv that
share a `song_id`). Columns:

| column | type | meaning |
|---|---|---|
| song_id | string | unique id of the entry |
| title, artist, language | string | the song ("untitled" if not known), who wrote or first sang it, its language (en) |
| own_artist | bool | true when this recording is the song's own artist singing it, false for a cover |
| lyrics | string | the first lyric line, where the source gives it (never used as a title) |
| source, license | string | where the song and the recording come from, and under which terms |
| voice | string | who sings this recording (a person or a synthetic voice) |
| audio_file | string | the file(s) the entry was computed from, relative to the build's AUDIO_DIR ("; " between) |
| key | string | the song's key as written ("G major"), else as sung (estimated from the pitch track) |
| duration | float32 | length of the recording(s) in seconds |
| embedded_seconds | float32 | seconds of singing the embeddings saw (input is capped at 60 s) |
| range_low, range_high | float32 | lowest / highest sung note (MIDI) |
| tessitura_low, tessitura_high | float32 | where the melody mostly sits (MIDI) |
| range_source | string | "score" (from the metadata), "pitch" (from the pitch tracker) or "score+pitch" |
| voice_type | string | the singer's voice type: the metadata's, else estimated from all that singer's entries |
| timbre, expression, timbre_note, expression_note, mood | list<float32> | unit embeddings (voicerec.embeddings) |
| fused | list<float32> | the five, each scaled by sqrt(weight): dot product = weighted sum of cosines |

The card's YAML also records the weights `fused` was made with and which encoder weights produced the
embeddings (`voicerec:` block), so a recommender can tell a catalog built with other encoders.
`build_catalog` writes aside and moves into place, names each data file by its content (listed in the card, so
that `datasets.load_dataset(folder)`, which caches by the card, loads a catalog rebuilt in place as rebuilt),
caches each song's analysis (content-addressed, so an interrupted or repeated build only computes what is
missing), runs in worker processes and in shards, or on
Ray (voicerec.search.catalog_ray).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import datasets
import librosa
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from tqdm.auto import tqdm

from ..audio.input import AudioInputError, load_audio
from ..audio.keys import estimate_key
from ..audio.pitch import HOP_SECONDS, PitchTrack, track_pitch
from ..audio.vocal_range import FEMALE_TYPES, MALE_TYPES, SUNG_CENTRES, VOICE_TYPES, estimate_range, voice_type
from ..defaults import HUB_DIR, HUB_NAMESPACE, cache_dir, resolve
from ..embeddings import EMBEDDING_NAMES, Embedder, fuse, normalise_weights
from ..export import render_card

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")
TEXT_COLUMNS = ("title", "artist", "lyrics", "language", "source", "license", "voice", "key")
UNTITLED = "untitled"
"""The title of an entry whose source names none (its first lyric line, if known, is in `lyrics`)."""
SINGER_COLUMNS = ("voice_type", "gender")
"""Metadata about the singer (optional): a known voice type (a corpus label such as GTSinger's parts) or, failing
that, the singer's sex ("male"/"female"), which keeps the estimated type among that sex's types."""
TRUE = ("1", "true", "yes", "y")
RANGE_COLUMNS = ("range_low", "range_high", "tessitura_low", "tessitura_high")
CACHE_VERSION = "5"  # bump when the per-song analysis changes meaning (3: the pitch track is kept, for pooling takes;
# 4: the note-adjusted copy is made in the spectrogram and the pitch tracker decimates 4x; 5: F4 is kept, for the
# singer's voice type)


def features(dimensions: dict[str, int]) -> datasets.Features:
    """The catalog schema for embeddings of the given sizes."""
    cols: dict = {"song_id": datasets.Value("string"), "title": datasets.Value("string"),
                  "artist": datasets.Value("string"), "own_artist": datasets.Value("bool")}  # fmt: skip
    cols |= {name: datasets.Value("string") for name in TEXT_COLUMNS[2:-1]}
    cols |= {"audio_file": datasets.Value("string"), "key": datasets.Value("string")}
    cols |= {"duration": datasets.Value("float32"), "embedded_seconds": datasets.Value("float32")}
    cols |= {name: datasets.Value("float32") for name in RANGE_COLUMNS}
    cols |= {"range_source": datasets.Value("string"), "voice_type": datasets.Value("string")}
    cols |= {name: datasets.List(datasets.Value("float32"), length=dimensions[name]) for name in EMBEDDING_NAMES}
    cols["fused"] = datasets.List(datasets.Value("float32"), length=sum(dimensions.values()))
    return datasets.Features(cols)


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class Catalog:
    """A loaded catalog: the dataset plus what its card says about how the embeddings were made."""

    data: datasets.Dataset
    fused_weights: dict[str, float]
    models: dict[str, str]
    source: str
    _matrices: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _table: pd.DataFrame | None = field(default=None, repr=False)
    _columns: dict[str, list] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.data)

    @classmethod
    def load(cls, source: str | Path | None = None) -> Catalog:
        """A catalog folder or Hub dataset id; None -> $VOICEREC_CATALOG -> hub/voicerec-catalog."""
        source = resolve("catalog", source)
        files = sorted(str(f) for f in (Path(source) / "data").glob("*.parquet"))
        if files:
            # a local folder: name its files, because datasets caches a folder loaded through its card's `configs`
            # by folder name and pattern, and would serve a rebuilt catalog's old rows
            data = datasets.load_dataset("parquet", data_files=files, split="train")
        else:
            data = datasets.load_dataset(source, split="train")
        meta = _card_metadata(source).get("voicerec", {})
        weights = normalise_weights(meta.get("fused_weights"))
        return cls(data, weights, dict(meta.get("models", {})), source)

    def table(self) -> pd.DataFrame:
        """The descriptive columns (no embeddings) as a DataFrame (computed once)."""
        if self._table is None:
            self._table = self.data.remove_columns([*EMBEDDING_NAMES, "fused"]).to_pandas()
        return self._table

    def columns(self) -> dict[str, list]:
        """The descriptive columns as Python lists (computed once): a request reads a few hundred rows by
        position, which a DataFrame serves a pandas lookup at a time."""
        if self._columns is None:
            self._columns = {name: self.table()[name].tolist() for name in self.table().columns}
        return self._columns

    def matrix(self, column: str) -> np.ndarray:
        """A list column as one (rows, dim) float32 array (computed once)."""
        if column not in self._matrices:
            col = self.data.data.column(column).combine_chunks()
            flat = np.asarray(pc.list_flatten(col), dtype=np.float32)
            self._matrices[column] = flat.reshape(len(self.data), -1)
        return self._matrices[column]


def _card_metadata(source: str) -> dict:
    """The YAML header of the catalog's README.md (local folder, else the Hub dataset card)."""
    local = Path(source) / "README.md"
    if local.is_file():
        text = local.read_text()
    else:
        from huggingface_hub import DatasetCard

        try:
            text = DatasetCard.load(source).content
        except Exception:  # no card (or offline): the defaults apply
            return {}
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


# ----------------------------------------------------------------------------------------------- metadata


def _midi(value: str) -> float | None:
    """A MIDI number ("62", "61.5") or a note name ("D4", "C#3", "Eb5"); empty -> None."""
    value = str(value).strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return float(librosa.note_to_midi(value.replace("♯", "#").replace("♭", "b")))
        except Exception as exc:
            raise ValueError(f"{value!r} is neither a MIDI number nor a note name like D4.") from exc


def read_metadata(audio_dir: str | Path, metadata: str | Path | None = None) -> list[dict]:
    """Rows with `file` (relative to audio_dir), `song_id`, the text columns and the score's range (or None).

    Without a metadata CSV every audio file under audio_dir is an entry titled by its file name. Rows that share
    a `song_id` are takes of one entry (see `group_takes`).
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir} is not a folder of audio files.")
    if metadata is None:
        files = sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        table = pd.DataFrame({"file": [str(p.relative_to(audio_dir)) for p in files]})
    else:
        table = pd.read_csv(metadata, dtype=str, keep_default_na=False)
        if "file" not in table.columns and "path" in table.columns:
            table = table.rename(columns={"path": "file"})
        if "file" not in table.columns:
            raise ValueError(f"{metadata} needs a `file` column (audio file path relative to {audio_dir}).")
    if table.empty:
        raise ValueError(f"No songs to build: {metadata or audio_dir} lists no audio files.")
    rows = []
    for i, rec in enumerate(table.to_dict("records")):
        row = {"file": rec["file"], "song_id": rec.get("song_id") or Path(rec["file"]).stem}
        row |= {c: rec.get(c, "") for c in TEXT_COLUMNS}
        row["title"] = row["title"] or Path(rec["file"]).stem
        row["own_artist"] = str(rec.get("own_artist", "")).strip().lower() in TRUE
        try:
            row |= {c: _midi(rec.get(c, "")) for c in RANGE_COLUMNS}
            row |= _singer(rec)
        except ValueError as exc:
            raise ValueError(f"{metadata}, row {i + 2}: {exc}") from exc
        rows.append(row)
    files = pd.Series([r["file"] for r in rows])
    if files.duplicated().any():
        raise ValueError(f"Duplicate file(s) in {metadata}: {', '.join(sorted(set(files[files.duplicated()])))}.")
    return rows


def _singer(rec: dict) -> dict[str, str]:
    """The metadata's voice type and sex of the singer, checked (lower case; empty when not given)."""
    out = {c: str(rec.get(c, "")).strip().lower() for c in SINGER_COLUMNS}
    if out["voice_type"] and out["voice_type"] not in VOICE_TYPES:
        raise ValueError(f"voice_type {out['voice_type']!r} is not one of {', '.join(VOICE_TYPES)}.")
    if out["gender"] not in ("", "male", "female"):
        raise ValueError(f"gender {out['gender']!r}: use male, female or leave it empty.")
    return out


def group_takes(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by `song_id`, in order of first appearance: one catalog entry each. The first row of an entry gives
    its title, artist, voice, key and score range; the others only add their recordings."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["song_id"], []).append(row)
    return groups


# ------------------------------------------------------------------------------------------ per-song work


def separate_song(path: Path) -> tuple[int, np.ndarray]:
    """(sampling rate, vocals) of a full mix: its first 180 s through demucs."""
    from ..audio.separation import separate_recording

    return separate_recording(path)


def analyse_song(
    path: Path, embedder: Embedder, separate: bool = False, vocals: tuple[int, np.ndarray] | None = None
) -> dict:
    """Embeddings, pitch track (f0, NaN unvoiced) and duration of one recording (AudioInputError if unusable).

    `vocals`: the (rate, samples) `separate_song` made of it elsewhere (a separation stage of its own)."""
    if separate and vocals is None:
        vocals = separate_song(path)
    audio = load_audio(vocals if vocals is not None else path)
    track = track_pitch(audio.samples, audio.sampling_rate)
    # refuses too little singing to give a range; a catalog's songs are singing, so no speech check (MIN_HELD_SHARE)
    sung = estimate_range(track, audio.samples, audio.sampling_rate, known_singing=True)
    embeddings = embedder.embed(audio, track)
    return {
        "embeddings": embeddings,
        "f0": track.f0.astype(np.float32),
        "duration": float(librosa.get_duration(path=str(path))),
        "embedded_seconds": float(audio.seconds),
        "fourth_formant": sung.fourth_formant,  # None where it could not be measured
    }


def _cache_key(path: Path, fingerprints: dict, separate: bool) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{json.dumps(fingerprints, sort_keys=True)}|{separate}".encode())
    with path.open("rb") as f:
        h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()[:32]


def encode_entry(result: dict) -> bytes:
    """One song's analysis as the bytes of its cache file (an .npz), so it can travel from a worker machine."""
    meta = {k: v for k, v in result.items() if k not in ("embeddings", "f0")}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), f0=result["f0"], **result["embeddings"])
    return buffer.getvalue()


def save_entry(cache_file: Path, entry: bytes) -> None:
    """Write aside, then rename: a killed build never leaves a half-written cache entry."""
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
    tmp.write_bytes(entry)
    os.replace(tmp, cache_file)


def _load_entry(cache_file: Path) -> dict:
    with np.load(cache_file) as z:
        result = json.loads(str(z["meta"]))
        result["embeddings"] = {name: z[name].astype(np.float32) for name in EMBEDDING_NAMES}
        result["f0"] = z["f0"]
    return result


def pool_takes(results: list[dict]) -> dict:
    """One analysis from several takes: each embedding averaged and re-normalised, the pitch tracks joined (an
    unvoiced frame between takes), durations added."""
    embeddings = {}
    for name in EMBEDDING_NAMES:
        mean = np.mean([r["embeddings"][name] for r in results], axis=0)
        embeddings[name] = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    gap = np.full(1, np.nan, dtype=np.float32)
    f0 = np.concatenate([part for r in results for part in (r["f0"], gap)][:-1])
    return {"embeddings": embeddings, "f0": f0, "duration": sum(r["duration"] for r in results),
            "embedded_seconds": sum(r["embedded_seconds"] for r in results),
            "fourth_formants": [r["fourth_formant"] for r in results if r.get("fourth_formant")]}  # fmt: skip


SONG_ERRORS = (AudioInputError, OSError, ValueError, RuntimeError)
"""What one unusable song raises: it is reported and skipped, the build goes on."""

_WORKER: dict = {}


def _init_worker(sources: dict[str, str]) -> None:
    import torch

    torch.set_num_threads(1)  # one core per process: num_proc processes use num_proc cores
    _WORKER["embedder"] = Embedder.from_pretrained(**sources)


def _work(path: Path, cache_file: Path, separate: bool) -> str | None:
    """Analyse one song into the cache; the error message if it cannot be used."""
    try:
        save_entry(cache_file, encode_entry(analyse_song(path, _WORKER["embedder"], separate)))
    except SONG_ERRORS as exc:
        return str(exc) or type(exc).__name__
    return None


def _analyse_here(
    todo: list[tuple[dict, Path, Path]],
    sources: dict[str, str],
    embedder: Embedder,
    separate: bool,
    num_proc: int | None,
    progress: bool,
) -> dict[str, str]:
    """Analyse the songs into the cache on this machine (in this process, or `num_proc` worker processes);
    returns file -> error of the songs that could not be used."""
    failed: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="analysing songs", unit="song", disable=not progress)
    if (num_proc or 1) <= 1 or len(todo) <= 1:
        _WORKER["embedder"] = embedder
        for row, path, cache_file in todo:
            error = _work(path, cache_file, separate)
            if error:
                failed[row["file"]] = error
            bar.update()
    else:
        ctx = get_context("spawn")  # torch and fork do not mix well
        with ProcessPoolExecutor(num_proc, mp_context=ctx, initializer=_init_worker, initargs=(sources,)) as pool:
            futures = {pool.submit(_work, path, cache_file, separate): row for row, path, cache_file in todo}
            for future in as_completed(futures):
                error = future.result()
                if error:
                    failed[futures[future]["file"]] = error
                bar.update()
    bar.close()
    return failed


# ------------------------------------------------------------------------------------------------ building


@dataclass
class BuildReport:
    """What a build did: rows written, songs computed now, taken from the cache, and the ones that failed."""

    output: Path
    rows: int
    computed: int
    cached: int
    failed: dict[str, str]
    seconds: float
    audio_seconds: float
    worker_mb: float = 0.0
    """peak resident memory of one analysis worker (Ray engine), 0 when not measured"""

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")


def _model_id(source: str) -> str:
    """A model shipped in this repository's hub/ folder is recorded by its Hub id, not by a local path."""
    path = Path(source).resolve()
    return f"{HUB_NAMESPACE}/{path.name}" if path.parent == HUB_DIR.resolve() else source


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    if not shard:
        return None
    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n (e.g. 0/4), got {shard!r}.") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {shard}: i/n needs 0 <= i < n.")
    return i, n


def _record(takes: list[dict], result: dict, weights: dict[str, float]) -> dict:
    """The catalog row of one entry: the first take's metadata, range and key from the (pooled) pitch track."""
    row = takes[0]
    track = _track(result["f0"])
    sung = estimate_range(track, known_singing=True).to_dict()
    rec = {"song_id": row["song_id"], **{c: row[c] or "" for c in TEXT_COLUMNS}, "own_artist": row["own_artist"]}
    rec["audio_file"] = "; ".join(take["file"] for take in takes)
    rec["key"] = rec["key"] or estimate_key(track.midi)
    rec |= {"duration": result["duration"], "embedded_seconds": result["embedded_seconds"]}
    from_score = [row[c] is not None for c in RANGE_COLUMNS]
    estimate = {"range_low": sung["low"], "range_high": sung["high"],
                "tessitura_low": sung["tessitura_low"], "tessitura_high": sung["tessitura_high"]}  # fmt: skip
    rec |= {c: row[c] if row[c] is not None else estimate[c] for c in RANGE_COLUMNS}
    rec["range_source"] = "score" if all(from_score) else "score+pitch" if any(from_score) else "pitch"
    rec["voice_type"] = row["voice_type"]  # replaced by the singer's, over all their entries (`singer_voice_types`)
    rec |= result["embeddings"]
    rec["fused"] = fuse(result["embeddings"], weights)
    return rec


def song_key(title: str, artist: str, lyrics: str, song_id: str) -> tuple[str, str]:
    """What makes two entries the same song: title and artist, or for an untitled song its first lyric line."""
    return (title, artist) if title != UNTITLED else (UNTITLED, lyrics or song_id)


def _counts(values: pd.Series) -> str:
    """'en 28, zh 67': each value with its count, most common first."""
    return ", ".join(f"{k} {v}" for k, v in values[values != ""].value_counts().items()) or "not given"


def _track(f0: np.ndarray) -> PitchTrack:
    return PitchTrack(np.arange(len(f0)) * HOP_SECONDS, f0, np.isfinite(f0) * 1.0)


def singer_voice_types(entries: list[tuple[dict, dict]]) -> list[str]:
    """The voice type of each entry ((first metadata row, pooled analysis) pairs), decided per singer (`voice`).

    A type the metadata gives (a corpus label) is kept, and also serves the singer's other entries; otherwise
    the singer's entries are pooled (their pitch tracks joined, the median of their F4) and classified once, among
    the metadata's sex's types when it gives one. A song's own range says little about its singer: a tenor who
    sings one low song is still a tenor, and a voice type is a property of the person."""
    singers: dict[str, list[int]] = {}
    for i, (row, _) in enumerate(entries):
        singers.setdefault(row["voice"] or f"entry {row['song_id']}", []).append(i)
    out = [""] * len(entries)
    for members in singers.values():
        rows = [entries[i][0] for i in members]
        given = [row["voice_type"] for row in rows if row["voice_type"]]
        if given:
            label = max(set(given), key=given.count)
        else:
            midi = np.concatenate([_track(entries[i][1]["f0"]).midi for i in members])
            median = float(np.nanmedian(midi))
            f4s = [f for i in members for f in entries[i][1].get("fourth_formants", [])]
            gender = next((row["gender"] for row in rows if row["gender"]), "")
            if gender:
                types = MALE_TYPES if gender == "male" else FEMALE_TYPES
                label = min(types, key=lambda name: abs(SUNG_CENTRES[name] - median))
            else:
                label = voice_type(median, float(np.median(f4s)) if f4s else None)
        for i, row in zip(members, rows, strict=True):
            out[i] = row["voice_type"] or label
    return out


def _write_card(folder: Path, card: dict, voicerec_meta: dict) -> None:
    """README.md from model_cards/catalog.md, with statistics over every parquet file now in data/. A card with
    `license: other` and a `license_text` also gets LICENSE.md, which its `license_name` / `license_link` metadata
    point to (what the Hub asks of an `other` license). A callable `description` is given the catalog's table
    (those files' metadata columns), so that the counts it states are the built catalog's."""
    license_meta = ""
    if card.get("license") == "other" and card.get("license_text"):
        (folder / "LICENSE.md").write_text(card["license_text"].strip() + "\n")
        name = card.get("license_name", "other")
        license_meta = yaml.safe_dump({"license_name": name, "license_link": "LICENSE.md"}, sort_keys=False).strip()
    files = sorted((folder / "data").glob("*.parquet"))
    columns = ["song_id", "title", "artist", "own_artist", "lyrics", "language", "source", "voice", "license"]
    frame = pd.concat([pq.read_table(f, columns=columns).to_pandas() for f in files])
    songs = {song_key(*r) for r in frame[["title", "artist", "lyrics", "song_id"]].itertuples(index=False)}
    fields = {
        "pretty_name": "voicerec song catalog",
        "license": "other",
        "description": "A song catalog for voicerec.",
        "build_command": "python -m voicerec catalog build AUDIO_DIR --metadata songs.csv --output DIR",
        **card,
        **({"description": card["description"](frame)} if callable(card.get("description")) else {}),
        "entries": str(len(frame)),
        "songs": str(len(songs)),
        "own_artist": str(int(frame["own_artist"].sum())),
        "covers": str(int((~frame["own_artist"]).sum())),
        "untitled": str(int((frame["title"] == UNTITLED).sum())),
        "languages": _counts(frame["language"]),
        "sources": _counts(frame["source"]),
        "voices": ", ".join(sorted(v for v in frame["voice"].unique() if v)) or "unknown",
        "licenses": ", ".join(sorted(v for v in frame["license"].unique() if v)) or "not given",
        "size_category": next(
            c
            for n, c in (
                (1e3, "n<1K"),
                (1e4, "1K<n<10K"),
                (1e5, "10K<n<100K"),
                (1e6, "100K<n<1M"),
                (float("inf"), "n>1M"),
            )
            if len(frame) < n
        ),  # fmt: skip
        "fused_weights": ", ".join(f"{k} {v:.2f}" for k, v in voicerec_meta["fused_weights"].items()),
        "voicerec_yaml": yaml.safe_dump({"voicerec": voicerec_meta}, sort_keys=False).strip(),
        "license_meta": license_meta,
        "data_files": "\n".join(f"    - data/{f.name}" for f in files),
        "schema": __doc__.split("| column |", 1)[1].split("\n\n", 1)[0].join(("| column |", "")),
    }
    tmp = folder / f".README.md.{os.getpid()}.tmp"
    tmp.write_text(render_card("catalog.md", **fields))
    os.replace(tmp, folder / "README.md")


def _write_parquet(records: list[dict], dims: dict[str, int], folder: Path, stem: str) -> Path:
    """Write `folder/<stem>-<content digest>.parquet` and remove the files an earlier build wrote under `stem`.

    The name changes with the content: `datasets` caches a folder loaded through its card by the card alone (folder
    name, config, data_files patterns), so the card lists these names and a rebuilt catalog's new names make
    `load_dataset(folder)` read it again instead of serving the old rows from its cache."""
    if not records:
        raise ValueError("No song could be analysed: nothing to write (see the errors above).")
    tmp = folder / f".{stem}.{os.getpid()}.tmp"
    datasets.Dataset.from_list(records, features=features(dims)).to_parquet(str(tmp))
    with tmp.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
    path = folder / f"{stem}-{digest}.parquet"
    os.replace(tmp, path)
    for old in folder.glob(f"{stem}*.parquet"):
        if old != path:
            old.unlink()
    return path


def _swap_into_place(tmp: Path, output: Path) -> None:
    """Replace `output` with the finished folder `tmp`: the old catalog stays until the new one is complete."""
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    if output.exists():
        os.rename(output, old)
    os.rename(tmp, output)
    shutil.rmtree(old, ignore_errors=True)


def _clean_leftovers(output: Path) -> None:
    """Restore a catalog left aside by a build killed between its two renames; remove dead builds' temp folders."""
    for leftover in output.parent.glob(f".{output.name}.*-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue
        if ".old-" in leftover.name and not output.exists():
            os.rename(leftover, output)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def build_catalog(
    audio_dir: str | Path,
    output: str | Path,
    metadata: str | Path | None = None,
    timbre: str | None = None,
    expression: str | None = None,
    mood: str | None = None,
    num_proc: int | None = None,
    shard: str | None = None,
    separate: bool = False,
    cache: str | Path | None = None,
    weights: dict[str, float] | None = None,
    card: dict | None = None,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
) -> BuildReport:
    """Analyse every song of `metadata` (or every audio file of `audio_dir`) and write the catalog to `output`.

    Songs already in the cache (same file content, same encoders) are not recomputed. A full build writes a
    new folder aside and swaps it in; `shard="i/n"` builds every n-th song from the i-th and atomically writes
    only `data/train-<i>-of-<n>.parquet` (and the card) into `output`, so shards can run on several machines
    and their files be gathered into one folder. `engine="ray"` analyses the songs on a Ray cluster
    (voicerec.search.catalog_ray; `address` None starts a local one) with `num_proc` analysis actors (None: per CPU).
    `card` fills the card's fields (`_write_card`; a callable `description` is given the built table).
    """
    start = time.perf_counter()
    audio_dir, output = Path(audio_dir), Path(output)
    entries = list(group_takes(read_metadata(audio_dir, metadata)).values())
    part = _parse_shard(shard)
    if part is not None:
        entries = entries[part[0] :: part[1]]
    rows = [row for takes in entries for row in takes]
    if separate:
        from ..audio.separation import _model

        _model()  # fail now, with the install hint, rather than once per song
    sources = {"timbre": resolve("timbre", timbre), "expression": resolve("expression", expression),
               "mood": resolve("mood", mood)}  # fmt: skip
    embedder = Embedder.from_pretrained(**sources)
    cache_root = Path(cache) if cache else cache_dir() / "catalog"
    cache_root.mkdir(parents=True, exist_ok=True)
    encoders = {"weights": embedder.fingerprints, "dims": embedder.dimensions}  # both share the keys timbre, ...
    failed: dict[str, str] = {}
    worker_mb = 0.0
    todo: list[tuple[dict, Path, Path]] = []
    cache_files: dict[str, Path] = {}
    for row in rows:
        path = audio_dir / row["file"]
        if not path.is_file():
            failed[row["file"]] = "file not found"
            continue
        cache_file = cache_root / f"{_cache_key(path, encoders, separate)}.npz"
        cache_files[row["file"]] = cache_file
        if not cache_file.exists():
            todo.append((row, path, cache_file))
    cached = len(cache_files) - len(todo)
    if engine == "ray":
        from .catalog_ray import analyse_on_ray

        errors, worker_mb = analyse_on_ray(todo, sources, separate, address, num_proc, progress) if todo else ({}, 0)
        failed |= errors
    elif engine == "local":
        failed |= _analyse_here(todo, sources, embedder, separate, num_proc, progress)
    else:
        raise ValueError(f"Unknown engine {engine!r}: use local or ray.")
    for name, error in failed.items():
        print(f"skipped {name}: {error}", file=sys.stderr)
    w = normalise_weights(weights)
    analysed = []
    for takes in entries:
        usable = [take for take in takes if take["file"] in cache_files and cache_files[take["file"]].exists()]
        if usable:
            analysed.append((usable, pool_takes([_load_entry(cache_files[t["file"]]) for t in usable])))
    types = singer_voice_types([(takes[0], result) for takes, result in analysed])
    records = [_record(takes, result, w) | {"voice_type": kind}
               for (takes, result), kind in zip(analysed, types, strict=True)]  # fmt: skip
    meta = {"fused_weights": w, "models": {k: f"{_model_id(sources[k])}@{embedder.fingerprints[k]}" for k in sources},
            "embedding_dims": embedder.dimensions}  # fmt: skip
    card = {"repo_id": f"{HUB_NAMESPACE}/{output.name}", **(card or {})}
    output.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(output)
    if part is None:
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "data").mkdir(parents=True)
        _write_parquet(records, embedder.dimensions, tmp / "data", "train-00000-of-00001")
        _write_card(tmp, card, meta)
        _swap_into_place(tmp, output)
    else:
        (output / "data").mkdir(parents=True, exist_ok=True)
        _write_parquet(records, embedder.dimensions, output / "data", f"train-{part[0]:05d}-of-{part[1]:05d}")
        _write_card(output, card, meta)
    audio_seconds = float(sum(r["duration"] for r in records))
    return BuildReport(output, len(records), len(todo) - sum(1 for r, _, _ in todo if r["file"] in failed), cached,
                       failed, time.perf_counter() - start, audio_seconds, worker_mb)  # fmt: skip
