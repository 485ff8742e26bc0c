"""Catalog build: a Hub-ready dataset folder that load_dataset reads, resumable, crash-safe, in shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

import voicerec
from voicerec.catalog import Catalog, build_catalog, read_metadata
from voicerec.embeddings import EMBEDDING_NAMES, fuse
from voicerec.export import export_model
from voicerec.synth import VOICES, scale_melody, sing

REPO = Path(__file__).resolve().parent.parent
SONGS = [("bass", 43), ("tenor", 52), ("alto", 57), ("soprano", 65)]


def _load(folder: Path) -> datasets.Dataset:
    """What a user does with the folder, with a fresh datasets cache: datasets keys a local folder loaded through
    its card's `configs` by folder name and pattern, so an earlier run's folder of the same name would answer."""
    cache = folder.parent / f"hf-cache-{time.monotonic_ns()}"
    return datasets.load_dataset(str(folder), split="train", cache_dir=str(cache))


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """Four 4 s synthetic songs (one per voice), one file that is not audio, and a songs.csv naming them all."""
    folder = tmp_path_factory.mktemp("songs")
    rows = []
    for i, (voice, tonic) in enumerate(SONGS):
        sf.write(folder / f"{voice}.wav", sing(scale_melody(tonic, 10, 0.4, seed=i), VOICES[voice], seed=i), 16000)
        row = {"file": f"{voice}.wav", "song_id": f"s{i}", "title": f"Song {i}", "artist": "synth", "voice": voice,
               "license": "cc0-1.0", "key": "C major"}  # fmt: skip
        if i == 0:  # the score gives this one's range, as note names and MIDI numbers
            row |= {"range_low": "G2", "range_high": "C4", "tessitura_low": 45, "tessitura_high": "F3"}
        rows.append(row)
    (folder / "broken.wav").write_bytes(b"RIFF....not really a wave file")
    rows.append({"file": "broken.wav", "song_id": "broken", "title": "Broken", "voice": "none"})
    pd.DataFrame(rows).to_csv(folder / "songs.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def built(songs, tiny_encoders, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub") / "catalog"
    cache = tmp_path_factory.mktemp("cache")
    report = build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, **tiny_encoders)
    return out, cache, report


def test_build_round_trips_through_load_dataset(built, songs):
    out, _, report = built
    assert report.rows == len(SONGS) and report.computed == len(SONGS) and report.cached == 0
    assert list(report.failed) == ["broken.wav"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]
    ds = _load(out)
    assert len(ds) == len(SONGS)
    assert ds["song_id"] == [f"s{i}" for i in range(len(SONGS))]
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert header["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
    row = ds[0]
    assert (row["range_low"], row["range_high"], row["tessitura_low"], row["tessitura_high"]) == (43, 60, 45, 53)
    assert row["range_source"] == "score" and ds[1]["range_source"] == "pitch"
    assert 50 < ds[1]["tessitura_low"] < ds[1]["tessitura_high"] < 66  # tenor melody on E3..E4
    catalog = Catalog.load(out)
    vectors = {n: catalog.matrix(n) for n in EMBEDDING_NAMES}
    np.testing.assert_allclose(catalog.matrix("fused"), fuse(vectors, catalog.fused_weights), atol=1e-6)
    for n in EMBEDDING_NAMES:
        np.testing.assert_allclose(np.linalg.norm(vectors[n], axis=1), 1.0, atol=1e-5)


def test_rebuild_resumes_from_cache(built, songs, tiny_encoders):
    out, cache, _ = built
    again = build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, **tiny_encoders)
    assert again.computed == 0 and again.cached == len(SONGS) and again.rows == len(SONGS)


def test_other_weights_are_not_served_from_the_cache(built, songs, tiny_encoders, tmp_path):
    """Same architecture and sizes, other weights: every song is analysed again (the cache keys on the weights)."""
    import torch

    _, cache, _ = built
    timbre = voicerec.SSCLModel.from_pretrained(tiny_encoders["timbre"])
    with torch.no_grad():
        timbre.projection.weight.mul_(-1.0)
    retrained = dict(tiny_encoders, timbre=str(export_model(timbre.eval(), tmp_path / "timbre")))
    report = build_catalog(songs, tmp_path / "catalog", songs / "songs.csv", cache=cache, progress=False, **retrained)
    assert report.cached == 0 and report.computed == len(SONGS)


def test_shards_gather_into_one_dataset(built, songs, tiny_encoders, tmp_path):
    _, cache, _ = built
    out = tmp_path / "sharded"
    for i in range(2):
        build_catalog(songs, out, songs / "songs.csv", shard=f"{i}/2", cache=cache, progress=False, **tiny_encoders)
    ds = _load(out)
    assert sorted(ds["song_id"]) == [f"s{i}" for i in range(len(SONGS))]
    assert len(list((out / "data").glob("*.parquet"))) == 2
    with pytest.raises(ValueError, match="i/n"):
        build_catalog(songs, out, songs / "songs.csv", shard="2/2", cache=cache, **tiny_encoders)


def test_killed_build_keeps_previous_catalog_and_resumes(built, songs, tiny_encoders, tmp_path):
    out, _, _ = built
    before = _load(out)["song_id"]
    cache = tmp_path / "fresh-cache"  # nothing cached: the build has every song to analyse
    cmd = [sys.executable, "-m", "voicerec", "catalog", "build", str(songs), "--metadata", str(songs / "songs.csv"),
           "--output", str(out), "--cache-dir", str(cache), "--timbre-model", tiny_encoders["timbre"],
           "--expression-model", tiny_encoders["expression"], "--mood-model", tiny_encoders["mood"]]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cache.glob("*.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*.npz")))
    assert 1 <= done < len(SONGS), "the build should have been killed part-way"
    assert _load(out)["song_id"] == before  # the old catalog is intact
    resumed = build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, **tiny_encoders)
    assert resumed.cached == done and resumed.computed == len(SONGS) - done
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no leftovers


def test_metadata_errors_are_clear(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    pd.DataFrame([{"file": "a.wav", "range_low": "H9"}]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match="note name"):
        read_metadata(tmp_path, tmp_path / "m.csv")
    pd.DataFrame([{"title": "x"}]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match="`file` column"):
        read_metadata(tmp_path, tmp_path / "m.csv")
    pd.DataFrame([{"file": "a.wav", "song_id": "x"}, {"file": "a.wav", "song_id": "x"}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(ValueError, match="Duplicate song_id"):
        read_metadata(tmp_path, tmp_path / "m.csv")
