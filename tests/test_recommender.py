"""Ranking end to end: same voice found by timbre, the key change that fits, the CLI's table and JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from voicerec.audio.keys import transpose_key
from voicerec.audio.pitch import track_pitch
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.audio.vocal_range import estimate_range
from voicerec.cli import main
from voicerec.embeddings import EMBEDDING_NAMES, normalise_weights
from voicerec.recommender import Recommender
from voicerec.search.catalog import build_catalog

TONIC = 55  # every catalog song is sung on the same notes, so only the voice tells them apart


def _query(voice: str) -> np.ndarray:
    """A melody that is in no catalog entry, sung by `voice` on the catalog's notes."""
    return sing(scale_melody(TONIC, 12, 0.4, seed=9), VOICES[voice], seed=9)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_encoders):
    """Melody 0 sung by a bass and by a soprano on the same notes, plus two baritone entries whose ranges the
    'score' gives relative to the bass query's own range: one that fits as written, one 4 semitones too high."""
    folder = tmp_path_factory.mktemp("rec-songs")
    query = folder / "query.wav"
    sf.write(query, _query("bass"), 16000)
    singer = estimate_range(track_pitch(_query("bass")))
    rows = []
    for voice in ("bass", "soprano"):
        sf.write(folder / f"m0-{voice}.wav", sing(scale_melody(TONIC, 10, 0.4, seed=0), VOICES[voice], seed=0), 16000)
        rows.append({"file": f"m0-{voice}.wav", "song_id": f"m0-{voice}", "title": f"Melody 0 ({voice})",
                     "voice": voice, "key": "G major", "language": "en" if voice == "bass" else "ko",
                     "own_artist": voice == "bass"})  # fmt: skip
    for name, shift in (("fits", 0), ("high", 4)):
        sf.write(folder / f"{name}.wav", sing(scale_melody(TONIC, 10, 0.4, seed=5), VOICES["baritone"]), 16000)
        score = {"range_low": singer.low, "range_high": singer.high, "tessitura_low": singer.tessitura_low,
                 "tessitura_high": singer.tessitura_high}  # fmt: skip
        rows.append({"file": f"{name}.wav", "song_id": name, "title": name, "voice": "Synth Baritone", "key": "C major",
                     "language": "en", "own_artist": False,
                     **{k: v + shift for k, v in score.items()}})  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "songs.csv", index=False)
    catalog = tmp_path_factory.mktemp("rec-hub") / "catalog"
    build_catalog(folder, catalog, folder / "songs.csv", cache=folder / "cache", progress=False, **tiny_encoders)
    return Recommender.from_pretrained(catalog=catalog, **tiny_encoders), query, catalog


def test_language_filter_and_who_sings(setup):
    """A language filter keeps only that language's songs, exactly scored, and says when it leaves fewer than asked;
    the reason says whether the song's own artist sings the catalog's recording or a corpus singer covers it."""
    rec, query, _ = setup
    everything = rec.recommend(str(query), top=4)
    assert {i.language for i in everything.items} == {"en", "ko"}
    korean = rec.recommend(str(query), top=3, languages=["KO"])
    assert [i.song_id for i in korean.items] == ["m0-soprano"]
    assert any("Only 1 catalog song in ko" in w for w in korean.profile.warnings)
    same = next(i for i in everything.items if i.song_id == "m0-soprano")
    assert korean.items[0].score == pytest.approx(same.score, abs=1e-5)
    by_id = {i.song_id: i for i in everything.items}
    assert by_id["m0-bass"].own_artist and by_id["m0-bass"].reason.startswith("Sung by its own artist")
    assert not by_id["fits"].own_artist
    assert by_id["fits"].reason.startswith(f"A cover, sung here by {by_id['fits'].voice}:")
    assert not any("Only" in w for w in rec.recommend(str(query), top=3, languages=["en"]).profile.warnings)


@pytest.mark.parametrize("voice", ["bass", "soprano"])
def test_timbre_weights_find_the_same_voice(setup, voice):
    rec, _, _ = setup
    timbre_only = {n: float(n == "timbre") for n in EMBEDDING_NAMES}
    # melody 0 again, another take (vibrato phase, jitter, breath): the bass and soprano entries of melody 0 sang
    # the very same notes, so only the voice can put the query's own voice first
    take = sing(scale_melody(TONIC, 10, 0.4, seed=0), VOICES[voice], seed=9)
    result = rec.recommend((16000, take), top=4, weights=timbre_only, range_weight=0.0, distinct_titles=False)
    assert [i.song_id for i in result.items if i.song_id.startswith("m0-")][0] == f"m0-{voice}"
    for item in result.items:  # timbre-only score is the timbre cosine
        assert item.score == pytest.approx(item.similarities["timbre"], abs=1e-6)


def test_scores_are_the_weighted_similarities_in_order(setup):
    rec, query, _ = setup
    weights = {"timbre": 2.0, "mood": 0.5}
    result = rec.recommend(query, top=4, weights=weights)
    w = normalise_weights(weights)
    for item in result.items:
        assert item.score == pytest.approx(sum(w[n] * item.similarities[n] for n in EMBEDDING_NAMES), abs=1e-5)
        assert item.match == pytest.approx(0.7 * item.score + 0.3 * item.range_fit, abs=1e-6)
    matches = [item.match for item in result.items]
    assert matches == sorted(matches, reverse=True) and [i.rank for i in result.items] == [1, 2, 3, 4]
    assert len({(i.title, i.artist) for i in result.items}) == len(result.items)  # one entry per song


def test_key_change_for_a_song_written_too_high(setup):
    rec, query, _ = setup
    items = {i.song_id: i for i in rec.recommend(query, top=10, distinct_titles=False).items}
    assert items["fits"].transpose == 0 and items["fits"].range_fit > 0.95
    assert items["high"].transpose == -4 and items["high"].range_fit > 0.95
    assert items["high"].suggested_key == "Ab major" and "4 semitones lower" in items["high"].reason


def test_transpose_key_spelling():
    assert transpose_key("G major", -2) == "F major"
    assert transpose_key("E minor", 1) == "F minor"
    assert transpose_key("F# minor", -1) == "F minor"
    assert transpose_key("Bb major", 3) == "Db major"
    assert transpose_key("", 3) == ""


def test_recommend_cli_table_and_json(setup, tiny_encoders, capsys):
    _, query, catalog = setup
    args = ["recommend", str(query), "--top", "3", "--catalog", str(catalog), "--timbre-model",
            tiny_encoders["timbre"], "--expression-model", tiny_encoders["expression"], "--mood-model",
            tiny_encoders["mood"]]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.startswith("Your voice: ")
    assert "sing in" in table and " 3. " in table
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["rank"] for item in data["items"]] == [1, 2, 3]
    assert set(data["items"][0]["similarities"]) == set(EMBEDDING_NAMES)
    assert data["profile"]["range"]["voice_type"] in table
    for item in data["items"]:
        assert item["title"] in table and item["reason"]
