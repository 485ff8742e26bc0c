"""Catalog build: a Hub-ready dataset folder that load_dataset reads, resumable, crash-safe, in shards."""

from __future__ import annotations

import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

import voicerec
from tests.killed_build import build_killed_part_way
from voicerec.audio.keys import estimate_key
from voicerec.audio.pitch import track_pitch
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import EMBEDDING_NAMES, fuse
from voicerec.export import export_model
from voicerec.search.catalog import Catalog, build_catalog, read_metadata

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
    assert header["configs"][0]["data_files"][0]["path"] == [f"data/{p.name}" for p in (out / "data").glob("*.parquet")]
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


def test_other_license_gets_its_terms_file_and_hub_metadata(built, songs, tiny_encoders, tmp_path):
    _, cache, _ = built
    out = tmp_path / "licensed"
    card = {"license": "other", "license_name": "demo-terms", "license_text": "# Terms\n\nResearch use only.",
            "description": lambda table: f"Built: {len(table)} entries, {int(table['own_artist'].sum())} own artist."}
    report = build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, card=card, **tiny_encoders)
    assert report.cached == len(SONGS)
    assert f"Built: {len(SONGS)} entries, 0 own artist." in (out / "README.md").read_text()  # the built table's counts
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert (header["license"], header["license_name"], header["license_link"]) == ("other", "demo-terms", "LICENSE.md")
    assert (out / "LICENSE.md").read_text() == "# Terms\n\nResearch use only.\n"
    assert len(_load(out)) == len(SONGS)


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
    done = build_killed_part_way(songs, out, cache, tiny_encoders)
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
    pd.DataFrame([{"file": "a.wav", "song_id": "x"}, {"file": "a.wav", "song_id": "y"}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(ValueError, match="Duplicate file"):
        read_metadata(tmp_path, tmp_path / "m.csv")


def test_takes_sharing_a_song_id_become_one_entry(tiny_encoders, tmp_path):
    """Two takes of one song (in two keys) and a third song: the takes are one entry whose embeddings are the
    re-normalised mean of the takes' own, and whose range, tessitura and key come from the pooled pitch track."""
    melodies = {"take1.wav": scale_melody(52, 10, 0.4, seed=1), "take2.wav": scale_melody(57, 10, 0.4, seed=2),
                "other.wav": scale_melody(60, 10, 0.4, seed=3)}  # fmt: skip
    for i, (name, notes) in enumerate(melodies.items()):
        sf.write(tmp_path / name, sing(notes, VOICES["tenor"], seed=i), 16000)
    apart = pd.DataFrame({"file": list(melodies), "song_id": ["t1", "t2", "o"], "title": ["Song", "Song", "Other"]})
    apart.to_csv(tmp_path / "apart.csv", index=False)
    apart.assign(song_id=["s", "s", "o"]).to_csv(tmp_path / "pooled.csv", index=False)
    cache = tmp_path / "cache"
    build_catalog(tmp_path, tmp_path / "apart", tmp_path / "apart.csv", cache=cache, progress=False, **tiny_encoders)
    report = build_catalog(tmp_path, tmp_path / "pooled", tmp_path / "pooled.csv", cache=cache, progress=False,
                           **tiny_encoders)  # fmt: skip
    assert report.rows == 2 and report.cached == 3 and report.computed == 0  # the takes' analyses are reused
    apart, pooled = Catalog.load(tmp_path / "apart"), Catalog.load(tmp_path / "pooled")
    assert pooled.data["song_id"] == ["s", "o"] and pooled.data["audio_file"][0] == "take1.wav; take2.wav"
    assert pooled.data["duration"][0] == pytest.approx(sum(apart.data["duration"][:2]), rel=1e-5)
    for name in EMBEDDING_NAMES:
        mean = apart.matrix(name)[:2].mean(axis=0)
        np.testing.assert_allclose(pooled.matrix(name)[0], mean / np.linalg.norm(mean), atol=1e-5)
        np.testing.assert_allclose(pooled.matrix(name)[1], apart.matrix(name)[2], atol=1e-6)
    tracks = [track_pitch(voicerec.load_audio(tmp_path / name).samples, 16000) for name in ("take1.wav", "take2.wav")]
    pooled_midi = np.concatenate([t.midi[t.voiced] for t in tracks])
    row = pooled.table().iloc[0]
    assert row.range_low == pytest.approx(np.percentile(pooled_midi, 5), abs=0.05)
    assert row.tessitura_high == pytest.approx(np.percentile(pooled_midi, 75), abs=0.05)
    assert apart.table().range_low[0] < row.range_low < apart.table().range_low[1]  # between the two keys' takes
    assert row.key == estimate_key(np.concatenate([t.midi for t in tracks]))


@pytest.mark.parametrize(("tonic", "mode", "expected"), [(60, "major", "C major"), (62, "major", "D major"),
                                                         (57, "minor", "A minor")])  # fmt: skip
def test_key_is_found_from_sung_pitch(tonic, mode, expected):
    """A melody that outlines its key, sung by a synthetic voice and pitch-tracked: the key finder names it."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12, 7, 4, 0] if mode == "major" else [0, 2, 3, 5, 7, 8, 11, 12, 7, 3, 0]
    lengths = [1.0, 0.4, 0.4, 0.4, 0.8, 0.4, 0.4, 1.0, 0.6, 0.6, 1.2]
    notes = [(float(tonic + s), d) for s, d in zip(steps, lengths, strict=True)]
    track = track_pitch(sing(notes, VOICES["alto"]), 16000)
    assert estimate_key(track.midi) == expected
    assert estimate_key(np.full(10, np.nan)) == ""


def test_rebuilt_in_place_loads_as_rebuilt(built, songs, tiny_encoders, tmp_path):
    """The datasets cache is shared between the two loads, as a user's is: a catalog rebuilt in place with fewer
    songs must come back with the new rows through load_dataset and Catalog.load, not the first build's."""
    _, cache, _ = built
    out, hf_cache = tmp_path / "catalog", str(tmp_path / "hf-cache")
    build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, **tiny_encoders)
    assert len(datasets.load_dataset(str(out), split="train", cache_dir=hf_cache)) == len(SONGS)
    fewer = songs / "fewer.csv"
    pd.read_csv(songs / "songs.csv").head(1).to_csv(fewer, index=False)
    build_catalog(songs, out, fewer, cache=cache, progress=False, **tiny_encoders)
    assert datasets.load_dataset(str(out), split="train", cache_dir=hf_cache)["song_id"] == ["s0"]
    assert len(Catalog.load(out)) == 1
    assert len(list((out / "data").glob("*.parquet"))) == 1


def test_default_catalog_card_states_the_built_counts():
    """The default catalog's description is filled from the table the build wrote, not from the songs it tried."""
    import pandas as pd

    from training.build_default_catalog import SOURCES, describe

    edcav, gtsinger = SOURCES["edcav-dev"][0], SOURCES["gtsinger-dev"][0]
    table = pd.DataFrame({"source": [edcav] * 3 + [gtsinger], "own_artist": [True] * 3 + [False],
                          "title": ["A", "B", "C", "untitled"], "artist": ["x", "y", "z", ""]})  # fmt: skip
    text = describe(table, edcav_artists=5, pjs_every=5)
    assert "**EDCAV2018**, 3 entries" in text and "the other 2 sing screamed" in text
    assert "**GTSinger**, 1 entries" in text and "**MIR-1K**, 0 entries" in text and "(3 entries)" in text
