"""Music behind the voice: synthetic singing mixed with a synthetic backing (chords, bass, drums) is told about the
music, never that it sounds like speech; the same voices alone raise no alarm."""

from __future__ import annotations

import numpy as np
import pytest

from voicerec.audio import accompaniment
from voicerec.audio.input import AudioInputError, load_audio
from voicerec.audio.pitch import track_pitch
from voicerec.audio.synth import VOICES, backing_track, scale_melody, sing
from voicerec.audio.vocal_range import estimate_range
from voicerec.live import LiveSession
from voicerec.recommender import Recommender

SR = 16000
TONICS = {"bass": 45, "baritone": 50, "tenor": 55, "alto": 60, "mezzo": 63, "soprano": 67}


def _voice(name: str) -> np.ndarray:
    return sing(scale_melody(TONICS[name], 20, 0.5, seed=1), VOICES[name], SR)


def _mix(voice: np.ndarray, tonic: int, ratio_db: float) -> np.ndarray:
    """`voice` over a backing in its key, `ratio_db` louder than the backing (RMS)."""
    music = backing_track(tonic - 12 if tonic > 56 else tonic, len(voice) / SR, SR, seed=2)[: len(voice)]
    gain = np.sqrt(np.mean(voice**2) / np.mean(music**2)) * 10 ** (-ratio_db / 20)
    return (voice + gain * music).astype(np.float32)


def _analysed(x: np.ndarray):
    audio = load_audio((SR, x))
    return audio, track_pitch(audio.samples, SR)


@pytest.fixture(scope="module")
def recommender(tmp_path_factory) -> Recommender:
    from tests.tiny_hub import build_tiny_hub
    from voicerec.defaults import ARTEFACTS

    hub = build_tiny_hub(tmp_path_factory.mktemp("hub") / "hub")
    return Recommender.from_pretrained(**{name: str(hub / repo) for name, (_, repo) in ARTEFACTS.items()})


@pytest.mark.parametrize("name", list(TONICS))
def test_a_voice_alone_raises_no_alarm(name):
    audio, track = _analysed(_voice(name))
    cues = accompaniment.measure(audio.samples, SR, track)
    assert not cues.detected and cues.below_voice < accompaniment.BELOW_VOICE_ABOVE / 10
    estimate_range(track, audio.samples, SR)  # accepted


@pytest.mark.parametrize("name", ["alto", "mezzo"])
def test_singing_over_music_is_told_about_the_music_not_speech(name):
    """Over a backing as loud as the voice, the tracker keeps under a second of held notes: the recording is refused
    (it would read as speech without the recording's spectrum), and the message names the music and what to do."""
    audio, track = _analysed(_mix(_voice(name), TONICS[name], 0.0))
    assert accompaniment.measure(audio.samples, SR, track).detected
    with pytest.raises(AudioInputError, match="speech"):
        estimate_range(track)  # the pitch track alone: what the singer used to be told
    with pytest.raises(AudioInputError) as refused:
        estimate_range(track, audio.samples, SR)
    message = str(refused.value)
    assert "music behind your voice" in message and "headphones" in message and "vocals" in message
    assert "speech" not in message


def test_accepted_singing_over_music_is_warned(recommender, monkeypatch):
    """A baritone over music still passes the singing checks; the result says the music is there. Separation is
    offered only where demucs is installed, with its need of the internet said."""
    mix = _mix(_voice("baritone"), TONICS["baritone"], 0.0)
    result = recommender.recommend((SR, mix), top=2)
    assert accompaniment.WARNING in result.profile.warnings
    assert accompaniment.WARNING not in recommender.recommend((SR, _voice("baritone")), top=2).profile.warnings
    import voicerec.audio.separation as separation

    monkeypatch.setattr(separation, "available", lambda: False)
    assert "demucs" not in accompaniment.advice()
    with pytest.raises(separation.SeparationError, match="pip install demucs"):  # asked for, it says what to do
        recommender.recommend((SR, mix), top=2, separate=True)
    monkeypatch.setattr(separation, "available", lambda: True)
    assert "demucs" in accompaniment.advice() and "internet" in accompaniment.advice()


def test_live_session_hints_at_the_music(recommender):
    """Streamed in 0.25 s chunks, the mix gets the live hint within its first seconds; the voice alone never."""
    for x, expected in ((_mix(_voice("mezzo"), TONICS["mezzo"], 0.0), True), (_voice("mezzo"), False)):
        session = LiveSession(recommender)
        hinted = [
            any("Music behind your voice" in h for h in session.push(SR, x[i : i + SR // 4]).hints)
            for i in range(0, len(x), SR // 4)
        ]
        assert any(hinted) is expected
