"""The cross-validation's protocols (issue #26): every query singer held out once per protocol, pools only of
singers the split never trained on, edcav-dev's one-song artists distractors only; short clips joined per song."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from training.crossval_ge2e import DISTRACTORS, FOLDS, PROTOCOLS, splits
from training.data import join_songs, load_joined
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.tools.evaluation import retrieval_masks


def _clips() -> pd.DataFrame:
    rows = []
    for corpus, singers, songs in (("gtsinger-dev", 10, 2), ("mir1k-dev", 12, 3), (DISTRACTORS, 28, 1)):
        for i in range(singers):
            for song in range(songs):
                for take in range(2):
                    rows.append({"path": f"{corpus}/{i}/{song}/{take}", "singer": f"{corpus}-{i}",
                                 "song": f"{corpus}-{i}-{song}", "dataset": corpus, "fold": i % FOLDS,
                                 "half": i % 2})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_query_singer_held_out_once_among_unseen_singers(protocol):
    clips = _clips()
    queried = []
    for split in splits(clips, protocol):
        trained = set(clips.loc[split.train, "singer"])
        for corpus, rows in split.pools.items():
            pool = clips.iloc[rows]
            assert not trained & set(pool["singer"])  # no pool singer was trained on
            assert set(pool["dataset"]) == {corpus, DISTRACTORS}
            is_query, _, _ = retrieval_masks(pool["singer"].to_numpy(), pool["song"].to_numpy())
            assert not (is_query & (pool["dataset"] == DISTRACTORS).to_numpy()).any()
            queried += sorted(set(pool["singer"][is_query]))
        assert len(trained) > 0
    expected = sorted(clips.loc[clips["dataset"] != DISTRACTORS, "singer"].unique())
    assert sorted(queried) == expected  # each query singer in exactly one pool
    if protocol == "loco":  # the held-out corpus is absent from training
        for split in splits(clips, protocol):
            (corpus,) = split.pools
            assert corpus not in set(clips.loc[split.train, "dataset"])


def test_short_clips_joined_per_song_into_recordings_the_app_accepts(tmp_path):
    rows = []
    for song, lengths in (("a", [2.0, 2.5, 3.0, 4.0, 1.5]), ("b", [6.0])):
        for take, seconds in enumerate(lengths):
            path = tmp_path / f"{song}{take}.flac"
            sf.write(path, sing(scale_melody(50, 8, seconds / 8, seed=take), VOICES["tenor"], 16000), 16000)
            rows.append({"path": str(path), "singer": song, "song": song, "take": take, "seconds": seconds})
    joined = join_songs(pd.DataFrame(rows), 10.0)
    assert joined["seconds"].tolist() == [13.0, 6.0]  # the 1.5 s remainder joins the last recording
    assert joined["path"].iloc[0].count(";") == 4
    audio = load_joined(joined["path"].iloc[0])
    assert 11.0 < audio.seconds <= 13.0 and np.isfinite(audio.samples).all()


def test_cross_validation_embeds_a_clip_as_the_product_does(tmp_path):
    """The dev folds choose recipes from window states computed by the training path; the held-out figures come
    from `python -m voicerec embed`. Both must give the same plain and note-adjusted embeddings, or the folds
    would judge another note adjustment than the one that ships."""
    from training.crossval_ge2e import app_waves, embed_states
    from training.finetune_ge2e import inference_states
    from voicerec.audio.input import load_audio
    from voicerec.embeddings import Embedder

    path = tmp_path / "alto.flac"
    sf.write(path, sing(scale_melody(57, 16, 0.5, seed=3), VOICES["alto"], 16000), 16000)
    embedder = Embedder.from_pretrained()
    model, extractor = embedder.models["timbre"]
    product = embedder.embed(load_audio(path))
    wave, f0 = app_waves(str(path))
    plain = embed_states(model, [inference_states(model, extractor, wave)])[0]
    note = embed_states(model, [inference_states(model, extractor, wave, f0)])[0]
    assert plain @ product["timbre"] > 0.99999
    assert note @ product["timbre_note"] > 0.99999
    assert product["timbre"] @ product["timbre_note"] < 0.99  # the copy is moved: the check above can fail
