"""The live session: a take streamed in chunks gives the pitch track, embeddings and songs of the whole take."""

from __future__ import annotations

import numpy as np
import pytest

from voicerec.audio.note_adjust import reference_shift
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


def _quarter_chunks(midi: int, n_notes: int, voice: str, seed: int) -> tuple[int, list[np.ndarray]]:
    """A synthetic take at 16 kHz cut into the page's 0.25 s chunks."""
    rate = 16000
    x = sing(scale_melody(midi, n_notes=n_notes, seconds=0.5, seed=seed), VOICES[voice], rate, seed=seed)
    x = x.astype(np.float32)
    return rate, [x[i : i + rate // 4] for i in range(0, len(x), rate // 4)]


def _assert_same_answer(a, b) -> None:
    """Two takes of the same audio give the same embeddings and songs."""
    for name, vector in a.profile.embeddings.items():
        assert float(vector @ b.profile.embeddings[name]) > 0.9999, name
    assert [i.song_id for i in a.items] == [i.song_id for i in b.items]


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


def test_finish_runs_only_the_last_windows(recommender):
    """The median pitch, so the note-adjusted copy's shift, moves to the last chunk; the windows computed while
    singing are kept (their states interpolated on the shift grid), and finish runs only the window that reads the
    end, while still giving the batch embeddings."""
    rate = 48000
    x = sing(scale_melody(57, n_notes=26, seconds=0.5, seed=0), VOICES["alto"], rate, seed=0).astype(np.float32)
    session = LiveSession(recommender)
    for i in range(0, len(x), rate // 2):
        session.push(rate, x[i : i + rate // 2])
    track, _ = session._live
    last = reference_shift(track)
    live = session.finish(top=3)
    assert abs(last - reference_shift(live.profile.track)) > 0.05  # it moved by 5x the former tolerance
    windows = sum(len(trunk.windows) for trunk in session.trunks)
    assert session.sequences["push"] >= 3 * windows  # plain + note-adjusted at two grid points, while singing
    assert 0 < session.sequences["finish"] <= 2 * len(session.trunks)  # the last window, plain + at the shift
    batch = recommender.recommend((rate, x), top=3)
    for name, vector in batch.profile.embeddings.items():
        assert float(vector @ live.profile.embeddings[name]) > 0.9995, name


def test_chunks_pushed_after_stop_leave_their_windows_to_finish(recommender):
    """Stop pressed while the last chunks are pushed: they are only taken in, and `finish` tracks their pitch and
    runs the windows they complete in its own batch, with the same songs and embeddings as a take pushed in full."""
    rate, chunks = _quarter_chunks(48, 16, "tenor", seed=4)
    full, stopped = LiveSession(recommender), LiveSession(recommender)
    for chunk in chunks:
        full.push(rate, chunk)
    for k, chunk in enumerate(chunks):
        stopped.push(rate, chunk, stopping=k >= len(chunks) - 8)  # the last 2 s arrive after Stop
    assert sum(map(len, (t.windows for t in stopped.trunks))) < sum(map(len, (t.windows for t in full.trunks)))
    a, b = full.finish(top=3), stopped.finish(top=3)
    assert stopped.sequences["finish"] > full.sequences["finish"]  # finish did the windows the chunks left
    _assert_same_answer(a, b)


def test_stop_during_a_push_leaves_the_rest_of_it_to_finish(recommender):
    """Stop pressed on another thread while a chunk is being pushed (the page's last chunk and its Stop run at
    once): the push skips its stages still to come (here the frames' cues and the encoder windows), and `finish`
    gives the embeddings and songs of the take pushed in full."""
    import threading

    rate, chunks = _quarter_chunks(52, 14, "mezzo", seed=6)
    full, stopped = LiveSession(recommender), LiveSession(recommender)
    for chunk in chunks:
        full.push(rate, chunk)
    for chunk in chunks[:-4]:
        stopped.push(rate, chunk)
    pitched, live_track, measure = stopped._pitched, stopped.live_track, stopped._measure_cues

    def pressed_meanwhile(*args, **kwargs):  # Stop arrives while this push tracks its pitch
        thread = threading.Thread(target=stopped.stop)
        thread.start()
        thread.join()
        return live_track(*args, **kwargs)

    stopped.live_track = pressed_meanwhile
    stopped._measure_cues = lambda: pytest.fail("a push went on measuring cues after Stop")
    before = stopped.sequences["push"]
    stopped.push(rate, chunks[-4])
    assert stopped._pitched > pitched  # the stage under way when Stop came was done
    stopped._measure_cues = measure
    for chunk in chunks[-3:]:  # chunks still arriving after Stop are only taken in
        stopped.push(rate, chunk)
    assert stopped.sequences["push"] == before
    a, b = full.finish(top=3), stopped.finish(top=3)
    _assert_same_answer(a, b)


def test_range_and_music_cues_are_measured_while_singing(recommender):
    """The range's formant and overtone cues and the music check's energies are measured frame by frame as the
    audio arrives; at Stop they are gathered, only the frames near the trimmed ends measured again, and the range,
    voice type and music verdict are the batch ones."""
    from voicerec.audio import accompaniment
    from voicerec.audio.formants import formant_frequencies, harmonic_share

    rate = 16000
    x = sing(scale_melody(45, n_notes=24, seconds=0.5, seed=5), VOICES["bass"], rate, seed=5).astype(np.float32)
    x = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(rate // 2, np.float32)])
    session = LiveSession(recommender)
    for i in range(0, len(x), rate // 4):
        session.push(rate, x[i : i + rate // 4])
    gathered = {}
    known = session._known
    session._known = lambda audio, track: gathered.setdefault("cues", (known(audio, track), audio, track))[0]
    live = session.finish(top=3)
    cues, audio, track = gathered["cues"]
    for measured in (cues.formants, cues.overtones, cues.music):
        assert measured.done[track.voiced].mean() > 0.9  # measured while singing
        assert not measured.done[:3].any() and not measured.done[-3:].any()  # the trimmed ends: measured again
    samples = audio.samples
    batch_f = formant_frequencies(samples, rate, track)
    np.testing.assert_allclose(formant_frequencies(samples, rate, track, cues.formants), batch_f, rtol=1e-3)
    assert harmonic_share(samples, rate, track, cues.overtones) == pytest.approx(harmonic_share(samples, rate, track),
                                                                                 rel=1e-4)  # fmt: skip
    a, b = accompaniment.measure(samples, rate, track), accompaniment.measure(samples, rate, track, cues.music)
    assert (a.below_voice, a.off_voice) == pytest.approx((b.below_voice, b.off_voice), rel=1e-4)
    batch = recommender.recommend((rate, x), top=3)
    assert live.profile.range.fourth_formant == pytest.approx(batch.profile.range.fourth_formant, rel=1e-3)
    assert live.profile.range.voice_type == batch.profile.range.voice_type
