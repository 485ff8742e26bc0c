"""The live session: a take streamed in chunks gives the pitch track, embeddings and songs of the whole take."""

from __future__ import annotations

import numpy as np
import pytest

from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.live import LiveSession
from voicerec.recommender import Recommender


@pytest.fixture(scope="module")
def recommender(tmp_path_factory) -> Recommender:
    from tests.tiny_hub import build_tiny_hub
    from voicerec.defaults import ARTEFACTS

    hub = build_tiny_hub(tmp_path_factory.mktemp("hub") / "hub")
    paths = {name: str(hub / repo) for name, (_, repo) in ARTEFACTS.items()}
    return Recommender.from_pretrained(**paths)


def test_streamed_take_equals_batch(recommender):
    rate = 48000
    x = sing(scale_melody(50, n_notes=20, seconds=0.5, seed=2), VOICES["baritone"], rate, seed=2).astype(np.float32)
    x = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(rate // 3, np.float32)])
    batch = recommender.recommend((rate, x), top=3)
    session = LiveSession(recommender)
    for i in range(0, len(x), rate // 4):
        update = session.push(rate, (x[i : i + rate // 4] * 32767).astype(np.int16) / 32767)
    assert update.note is None or update.note[0] in "ABCDEFG"
    live = session.finish(top=3)
    bt, lt = batch.profile.track, live.profile.track
    assert len(bt.f0) == len(lt.f0)
    assert np.mean(bt.voiced == lt.voiced) > 0.995
    close = np.abs(bt.midi - lt.midi)[bt.voiced & lt.voiced] < 0.01
    assert close.mean() > 0.98
    for name, vector in batch.profile.embeddings.items():
        assert float(vector @ live.profile.embeddings[name]) > 0.999, name
    assert [i.song_id for i in live.items] == [i.song_id for i in batch.items]
