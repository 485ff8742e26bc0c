"""Song-disjoint singer retrieval: the protocol, the metrics on cases with a known answer, and a full run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.tools.evaluation import (
    MFCCEmbedder,
    equal_error_rate,
    ranking_metrics,
    read_eval_set,
    retrieval_masks,
    retrieval_metrics,
    run_evaluation,
    technique_metrics,
)

# three singers: A and B with two songs (two takes of song 1), C with one song only
SINGERS = ["A", "A", "A", "B", "B", "B", "C", "C"]
SONGS = ["a1", "a1", "a2", "b1", "b1", "b2", "c1", "c1"]
TAKES = ["control", "breathy", "control", "control", "breathy", "control", "control", "breathy"]


def _by_singer(noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Embeddings that point one way per singer (plus optional noise)."""
    rng = np.random.default_rng(seed)
    axes = {"A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1]}
    return np.array([axes[s] for s in SINGERS], dtype=float) + noise * rng.standard_normal((len(SINGERS), 3))


def test_protocol_masks():
    is_query, candidates, positives = retrieval_masks(SINGERS, SONGS)
    assert is_query.tolist() == [True] * 6 + [False] * 2  # C sang one song: never a query
    assert not candidates[0, 1]  # another take of the same song by the same singer is excluded
    assert candidates[0, 2] and positives[0, 2]  # same singer, other song: the positive
    assert candidates[0, 3] and not positives[0, 3]  # other singer: a negative
    assert candidates[0, 6]  # singers with one song are still candidates
    assert not candidates.diagonal().any() and not candidates[6].any()


def test_perfect_embedding_scores_perfectly():
    m = retrieval_metrics(_by_singer(), SINGERS, SONGS)
    assert m["top1"] == 1.0 and m["map"] == 1.0 and m["eer"] == pytest.approx(0.0, abs=1e-9)
    # a1/b1 queries have 6 candidates (7 others minus the same-song take), a2/b2 queries have 7
    assert m["queries"] == 6 and m["pairs"] == 4 * 6 + 2 * 7


def test_map_by_hand():
    # one query, candidates ranked [neg, pos, neg, pos]: AP = (1/2 + 2/4) / 2 = 0.5
    sims = np.array([[0.0, 0.9, 0.8, 0.7, 0.6]])
    candidates = np.array([[False, True, True, True, True]])
    positives = np.array([[False, False, True, False, True]])
    m = ranking_metrics(sims, candidates, positives)
    assert m["map"] == pytest.approx(0.5) and m["top1"] == 0.0 and m["chance_top1"] == pytest.approx(0.5)


def test_equal_error_rate():
    labels = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), labels) == pytest.approx(0.0, abs=1e-9)
    assert equal_error_rate(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), labels) == pytest.approx(1.0, abs=1e-9)
    # one positive below one negative out of three each: both error rates meet at 1/3
    assert equal_error_rate(np.array([0.9, 0.8, 0.4, 0.5, 0.2, 0.1]), labels) == pytest.approx(1 / 3, abs=1e-6)
    assert np.isnan(equal_error_rate(np.array([0.5, 0.6]), np.array([True, True])))


def test_short_queries_use_their_own_embeddings():
    good = _by_singer()
    queries = np.roll(good, 1, axis=1)  # every query now points at the wrong singer
    assert retrieval_metrics(good, SINGERS, SONGS, queries=queries)["top1"] == 0.0
    with pytest.raises(ValueError):
        retrieval_metrics(good[:3], SINGERS, SONGS)


def test_technique_grouping():
    by_take = np.array([[1.0, 0.0] if t == "control" else [0.0, 1.0] for t in TAKES])
    tech = technique_metrics(by_take, TAKES, SINGERS, SONGS)
    for scope in ("cross_song", "other_singers"):
        assert tech[scope]["top1"] == 1.0 and tech[scope]["map"] == 1.0
    # an embedding of the singer knows nothing about technique across singers: no better than chance
    singer_only = technique_metrics(_by_singer(), TAKES, SINGERS, SONGS)
    assert singer_only["other_singers"]["top1"] < 1.0


@pytest.fixture(scope="module")
def manifest_folder(tmp_path_factory):
    """A gtsinger-style folder: 3 synthetic singers x 2 songs, a speech row to skip."""
    root = tmp_path_factory.mktemp("evalset")
    (root / "audio").mkdir()
    rows = []
    for k, (voice, gender) in enumerate((("tenor", "male"), ("alto", "female"), ("soprano", "female"))):
        audio = sing(scale_melody(50 + 5 * k, n_notes=24, seconds=0.35, seed=k), VOICES[voice], 16000, seed=k)
        split = int((4.0 + 0.1 * k) * 16000)  # two "songs" per singer
        for song, part in ((1, audio[:split]), (2, audio[split:])):
            path = f"audio/{voice}-{song}.wav"
            sf.write(root / path, part, 16000)
            take = "control" if song == 1 else "vibrato"
            rows.append({"path": path, "singer": voice, "gender": gender, "song": f"{voice}-{song}", "take": take,
                         "kind": "singing"})  # fmt: skip
    rows.append({**rows[0], "kind": "speech"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_run_evaluation_writes_tables_and_maps(manifest_folder, tmp_path):
    singer_of = {}

    def oracle(waves):  # looks the singer up by the clip's samples: a perfect embedder for this folder
        return np.array([singer_of[np.asarray(w).tobytes()] for w in waves])

    data = read_eval_set(manifest_folder)
    assert len(data) == 6  # the speech row is skipped
    for audio, singer in zip(data.audio, data.singers, strict=True):
        singer_of[np.asarray(audio).tobytes()] = np.eye(3)[["tenor", "alto", "soprano"].index(singer)]
    assert len(singer_of) == 6

    mfcc = MFCCEmbedder().fit(data.audio)(data.audio)
    assert mfcc.shape == (6, 40)
    np.testing.assert_allclose(mfcc.mean(axis=0), 0.0, atol=1e-4)  # standardised with the fitted statistics

    results = run_evaluation(manifest_folder, {"oracle": oracle}, tmp_path, cuts=(), random_repeats=2)
    assert set(results["retrieval"]) == {"random", "mfcc", "oracle"}
    assert results["retrieval"]["oracle"]["full"]["top1"] == 1.0
    assert results["retrieval"]["oracle"]["full"]["eer"] == pytest.approx(0.0, abs=1e-9)
    assert json.loads((tmp_path / "results.json").read_text())["clips"] == 6
    table = (tmp_path / "results.md").read_text()
    assert "| oracle | full | 1.000 | 1.000 | 0.000 |" in table
    for name in ("random", "mfcc", "oracle"):
        assert (tmp_path / f"map_{name}.png").stat().st_size > 1000


def test_cut_queries_and_singer_filter(manifest_folder, tmp_path):
    results = run_evaluation(
        manifest_folder, {}, tmp_path, cuts=(1.0,), singers={"tenor", "soprano"}, random_repeats=2, plots=False
    )
    assert results["singers"] == ["soprano", "tenor"] and results["clips"] == 4
    assert set(results["retrieval"]["mfcc"]) == {"full", "query 1 s"}
    with pytest.raises(ValueError, match="No singing clips"):
        run_evaluation(manifest_folder, {}, tmp_path, singers={"nobody"}, plots=False)
