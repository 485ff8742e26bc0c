"""Cross-fitted fusion tuning: the weight grid, the model specs, the embedding cache, and leave-one-singer-out over
two folds on synthetic embeddings (no real data: the folds are made here)."""

from __future__ import annotations

from functools import partial
from math import comb

import numpy as np
import pytest

from training import tune_weights
from training.tune_weights import (
    Fold,
    best_weights,
    embed_cached,
    fisher_weights,
    leave_one_singer_out,
    paired_difference,
    parse_models,
    pooled,
    simplex_grid,
)
from voicerec.embeddings import EMBEDDING_NAMES


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fold(name: str, singers: list[str], coded: dict[str, str], noise: float, seed: int, drop: str = "") -> Fold:
    """Each singer sings songs 1 and 2, two takes each. An embedding points one way per singer (plus noise) for
    the singers `coded` names it for, and at random for the others. `drop`: a singer whose clips are then left out
    (the rest unchanged)."""
    rng = np.random.default_rng(seed)
    labels = [(s, f"{s}-{song}") for s in singers for song in (1, 2) for _ in range(2)]
    clip_singers = np.array([s for s, _ in labels])
    songs = np.array([song for _, song in labels])
    dim = 16
    axes = {s: rng.standard_normal(dim) for s in singers}
    emb = {}
    for n in EMBEDDING_NAMES:
        rows = [
            axes[s] + noise * rng.standard_normal(dim) if coded.get(s) == n else rng.standard_normal(dim)
            for s in clip_singers
        ]
        emb[n] = _unit(np.array(rows))
    keep = clip_singers != drop
    return Fold(name, {n: v[keep] for n, v in emb.items()}, clip_singers[keep], songs[keep])


def test_simplex_grid_covers_the_simplex_once():
    grid = simplex_grid(4)
    assert len(grid) == comb(4 + len(EMBEDDING_NAMES) - 1, len(EMBEDDING_NAMES) - 1)
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in grid)
    assert len({tuple(w.values()) for w in grid}) == len(grid)


def test_parse_models_overrides_only_the_names_given():
    defaults = {"timbre": "t0", "expression": "e0", "mood": "m0"}
    assert parse_models("timbre=/x/t", defaults) == {"timbre": "/x/t", "expression": "e0", "mood": "m0"}
    assert parse_models("", defaults) == defaults
    for bad in ("pitch=/x", "timbre", "timbre="):
        with pytest.raises(ValueError, match="NAME=PATH"):
            parse_models(bad, defaults)


def test_without_drops_the_singer_as_query_and_as_candidate():
    fold = _fold("A", ["P", "Q", "R"], {}, 0.0, 0)
    _, rows, candidates = fold.without("Q")
    assert set(fold.singers[rows]) == {"P", "R"}
    assert not candidates[:, fold.singers == "Q"].any()
    assert candidates[np.ix_(rows, fold.singers == "P")].any()


def test_leave_one_singer_out_never_sees_the_held_out_singer():
    """The weights of a round are those the other singers choose: the same as with the singer deleted from the
    data, even though that singer alone would choose otherwise."""
    grid = simplex_grid(2)
    coded = {"P": "expression", "Q": "expression", "X": "mood"}
    fold_a = _fold("A", ["P", "Q", "X"], coded, 0.3, 1)
    fold_b = _fold("B", ["S", "T"], {"S": "expression", "T": "expression"}, 0.3, 2)
    _, chosen = leave_one_singer_out(partial(best_weights, grid), [fold_a, fold_b])
    deleted = _fold("A", ["P", "Q", "X"], coded, 0.3, 1, drop="X")
    assert chosen["A", "X"] == best_weights(grid, [deleted.all_queries(), fold_b.all_queries()])
    assert chosen["A", "X"]["mood"] == 0  # nobody else gains from mood
    assert chosen["A", "P"]["mood"] > 0  # X is among P's tuning singers, and X gains from mood
    only_x = best_weights(grid, [(fold_a, np.flatnonzero(fold_a.singers == "X"), fold_a.candidates)])
    assert only_x["mood"] > 0  # so a leak of X's queries could have changed the round's choice


def test_pooling_weighs_every_query_of_both_folds_once():
    grid = simplex_grid(2)
    folds = [
        _fold("A", ["P", "Q", "R"], {"P": "timbre", "Q": "timbre", "R": "timbre"}, 0.5, 3),
        _fold("B", ["S", "T"], {"S": "timbre", "T": "timbre"}, 0.5, 4),
    ]
    sims, chosen = leave_one_singer_out(partial(best_weights, grid), folds)
    assert set(chosen) == {("A", "P"), ("A", "Q"), ("A", "R"), ("B", "S"), ("B", "T")}
    assert all(w["timbre"] > 0 for w in chosen.values())
    result = pooled(folds, sims)
    per_fold = [f.metrics(sims[f.name]) for f in folds]
    assert result["queries"] == sum(m["queries"] for m in per_fold) == 20
    expected = sum(m["map"] * m["queries"] for m in per_fold) / result["queries"]
    assert result["map"] == pytest.approx(expected)
    assert list(result["fold"]) == ["A"] * 12 + ["B"] * 8
    noise = pooled(folds, {f.name: f.cos["mood"] for f in folds})
    assert result["map"] > noise["map"]


def test_fisher_weights_follow_how_well_each_cosine_separates_singers():
    """Sharp singer codes get more weight than noisy ones, an uninformative cosine about none, and the held-out
    singer of a leave-one-out round does not move its own weights."""
    singers = ["P", "Q", "R", "S"]
    fold = _fold("A", singers, dict.fromkeys(singers, "timbre"), 0.2, 5)
    noisy = _fold("A", singers, dict.fromkeys(singers, "expression"), 1.5, 5)  # same seed: same clips and labels
    fold.cos["expression"] = noisy.cos["expression"]
    w = fisher_weights([fold.all_queries()])
    assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0
    assert w["timbre"] > w["expression"] > max(w["timbre_note"], w["expression_note"], w["mood"])
    assert max(w["timbre_note"], w["expression_note"], w["mood"]) < 0.1
    _, chosen = leave_one_singer_out(fisher_weights, [fold])
    assert chosen["A", "P"] == fisher_weights([fold.without("P")])
    with pytest.raises(ValueError, match="same-singer"):
        fisher_weights([(fold, np.array([0]), fold.candidates & ~fold.positives)])


def test_paired_difference_counts_wins_and_brackets_the_mean():
    singers = np.array(["P", "P", "Q", "Q"])
    tie = paired_difference(np.array([1.0, 0.5, 0.5, 0.75]), np.array([0.5, 0.5, 1.0, 0.75]), singers)
    assert (tie["better"], tie["worse"], tie["queries"], tie["singers"]) == (1, 1, 4, 2)
    assert tie["mean"] == pytest.approx(0.0)
    assert tie["low"] < 0 < tie["high"] and tie["singer_low"] < 0 < tie["singer_high"]
    gain = paired_difference(
        np.array([0.9, 0.8, 1.0, 0.7, np.nan]), np.array([0.5, 0.6, 0.7, 0.6, 0.5]), [*singers, "R"]
    )
    assert (
        (gain["queries"], gain["better"], gain["singers"]) == (4, 4, 2) and gain["low"] > 0 and gain["singer_low"] > 0
    )
    # per singer +0.3 and +0.2: sd 0.0707, so (2.8 x 0.0707 / 0.25)^2 = 0.63 -> 1 singer; no gain, no count
    assert gain["singer_mean"] == pytest.approx(0.25) and gain["singers_needed"] == 1
    assert tie["singers_needed"] == float("inf")


def test_singer_bootstrap_is_wider_when_a_singer_carries_the_gain():
    """Gains from one singer only: resampling queries sees many small wins, resampling singers sees one."""
    singers = np.repeat(["P", "Q", "R", "S"], 6)
    diffs = np.where(singers == "P", 0.4, 0.0) + np.tile(np.linspace(-0.01, 0.01, 6), 4)
    result = paired_difference(diffs, np.zeros_like(diffs), singers)
    assert result["low"] > 0  # queries as if independent: a clear gain
    assert result["singer_low"] <= 0.001 < result["low"]  # a draw without P: no gain


def test_embeddings_are_cached_per_model_weights(tmp_path, monkeypatch):
    models = {}
    for name in ("timbre", "expression", "mood"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(name.encode())
        models[name] = str(folder)
    calls = []

    def fake_embed_all(paths, embedder):
        calls.append(embedder)
        return {n: np.eye(len(paths), dtype=np.float32) for n in EMBEDDING_NAMES}

    monkeypatch.setattr(tune_weights, "embed_all", fake_embed_all)
    monkeypatch.setattr(tune_weights.Embedder, "from_pretrained", classmethod(lambda cls, **kw: kw))
    clips = [tmp_path / "a.flac", tmp_path / "b.flac"]
    first = embed_cached(clips, models, tmp_path)
    again = embed_cached(clips, models, tmp_path)
    assert len(calls) == 1 and calls[0] == models
    assert all(np.array_equal(first[n], again[n]) for n in EMBEDDING_NAMES)
    (tmp_path / "timbre" / "model.safetensors").write_bytes(b"retrained")
    embed_cached(clips, models, tmp_path)
    embed_cached(clips[:1], models, tmp_path)
    assert len(calls) == 3
