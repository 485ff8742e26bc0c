"""Whatever people upload, voicerec answers with a clear message or a sensible result, and the app keeps serving.

Each case goes through the library (`Recommender.recommend` on the file) and through the running app
(`python app.py`, gradio_client); the app must show the library's message and still answer a good recording
afterwards. "speech" is synthetic speech-like audio, not singing: syllables of 80-200 ms with unsteady, wandering
pitch and pauses between words, no held notes and no vibrato. It checks that such input is refused as too little
singing rather than given a confident range and song list.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from tests.app_server import model_env, running_app
from voicerec.audio.input import MAX_SECONDS, AudioInputError
from voicerec.audio.synth import VOICES, Voice, scale_melody, sing

SR = 16000
TONIC = 50  # the test melody moves stepwise in D major from D3
SONG = sing(scale_melody(TONIC, n_notes=20, seconds=0.5, seed=1), VOICES["baritone"], SR)


def speech_like(seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    """Words of 2-5 short syllables with a wandering pitch around D3, pauses between words, no vibrato."""
    rng = np.random.default_rng(seed)
    notes, total = [], 0.0
    while total < seconds:
        for _ in range(rng.integers(2, 6)):
            length = float(rng.uniform(0.08, 0.2))
            notes.append((float(TONIC + 2 + rng.normal(0, 2.5)), length))
            total += length
        pause = float(rng.uniform(0.15, 0.4))
        notes.append((float("nan"), pause))
        total += pause
    speaker = Voice("speaker", breathiness=0.08, vibrato_cents=0.0, jitter_cents=60.0)
    return sing(notes, speaker, SR, gap=0.02)


def _truncated(path: Path) -> None:
    sf.write(path, SONG, SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still promises the full 10 s


def _huge(path: Path) -> None:
    """Over the app's 25 MB upload cap: 2.5 minutes of 48 kHz stereo 16-bit."""
    stereo = np.tile(librosa.resample(SONG, orig_sr=SR, target_sr=48000), 15)
    sf.write(path, np.stack([stereo, stereo], axis=1), 48000, subtype="PCM_16")


MAKERS: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "silent": lambda p: sf.write(p, np.zeros(10 * SR, np.float32), SR),
    "half_second": lambda p: sf.write(p, SONG[: SR // 2], SR),
    "ten_minutes": lambda p: sf.write(p, np.tile(SONG, 60), SR, subtype="PCM_16"),
    "8kHz": lambda p: sf.write(p, librosa.resample(SONG, orig_sr=SR, target_sr=8000), 8000),
    "96kHz": lambda p: sf.write(p, librosa.resample(SONG, orig_sr=SR, target_sr=96000), 96000),
    "5.1_channels": lambda p: sf.write(p, np.array([0.1, 0.1, 1.0, 0.0, 0.05, 0.05])[None, :] * SONG[:, None], SR),
    "clipped": lambda p: sf.write(p, np.clip(SONG * 20, -1, 1), SR),
    "noise": lambda p: sf.write(p, np.random.default_rng(0).uniform(-0.5, 0.5, 10 * SR).astype(np.float32), SR),
    "tone": lambda p: sf.write(p, 0.3 * np.sin(2 * np.pi * 220.0 * np.arange(10 * SR) / SR), SR),
    "ten_minute_tone": lambda p: sf.write(p, 0.3 * np.sin(2 * np.pi * 220.0 * np.arange(600 * SR) / SR), SR,
                                          subtype="PCM_16"),
    "speech": lambda p: sf.write(p, speech_like(), SR),
    "truncated": _truncated,
    "text_as_wav": lambda p: p.write_text("This is not a recording.\n" * 200),
    "huge": _huge,
}  # fmt: skip

ERRORS = {
    "empty": r"empty",
    "silent": r"silent",
    "half_second": r"at least 3 s",
    "noise": r"No singing was found|noise",
    "speech": r"singing",
    "tone": r"pure tone.*not a voice",
    "ten_minute_tone": r"pure tone.*not a voice",
    "text_as_wav": r"Could not read .* as audio",
}
"""Cases refused, with a pattern of the message the singer sees. The others get a result."""


def sensible(name: str, result) -> None:
    """A result that fits the input: the range of what was sung, the warnings that apply."""
    sung = result.profile.range
    assert result.items, name
    melody_low, melody_high = TONIC, TONIC + 12
    assert melody_low - 1.5 <= sung.low <= sung.high <= melody_high + 1.5, (name, sung)
    if name in ("ten_minutes", "huge"):
        assert result.profile.seconds <= MAX_SECONDS + 0.01
        assert any("first 60 s" in w for w in result.profile.warnings)
    if name == "clipped":
        assert any("clipped" in w for w in result.profile.warnings)


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory) -> dict[str, str]:
    return model_env(tmp_path_factory.mktemp("bad-input-hub"))


@pytest.fixture(scope="module")
def recommender(hub_env):
    from voicerec.recommender import Recommender

    return Recommender.from_pretrained(
        hub_env["VOICEREC_TIMBRE_MODEL"], hub_env["VOICEREC_EXPRESSION_MODEL"], hub_env["VOICEREC_MOOD_MODEL"],
        hub_env["VOICEREC_CATALOG"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-input")
    paths = {}
    for name, make in MAKERS.items():
        paths[name] = folder / f"{name}.wav"
        make(paths[name])
    return paths


@pytest.mark.parametrize("name", [name for name in MAKERS if name != "huge"])  # huge: the app's upload cap
def test_library(name, files, recommender):
    if name in ERRORS:
        with pytest.raises(AudioInputError, match=ERRORS[name]):
            recommender.recommend(str(files[name]), top=3)
    else:
        sensible(name, recommender.recommend(str(files[name]), top=3))


@pytest.fixture(scope="module")
def app(hub_env, tmp_path_factory):
    """(client, log file) of one `python app.py` shared by the app tests."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(hub_env, log) as url:
        yield Client(url, verbose=False), log


def test_app_answers_every_case_and_keeps_serving(files, app):
    client, log = app
    outcomes = {}
    for name, path in files.items():
        try:
            *_, details = client.predict(handle_file(str(path)), api_name="/recommend")
            outcomes[name] = details
        except Exception as exc:  # gradio_client raises AppError for gr.Error, others for rejected uploads
            outcomes[name] = exc
    *_, after = client.predict(handle_file(str(files["8kHz"])), api_name="/recommend")
    for name, outcome in outcomes.items():
        if name in ERRORS:
            assert isinstance(outcome, Exception) and re.search(ERRORS[name], str(outcome)), (name, outcome)
        elif name == "huge":  # refused at upload by the size cap, before any decoding
            assert isinstance(outcome, Exception), outcome
            assert re.search(r"too large|size|25", str(outcome), re.I), outcome
        else:
            assert isinstance(outcome, dict) and outcome["items"], (name, outcome)
    assert after["items"]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def call_raw(url: str, data: list) -> str:
    """One call of /recommend over Gradio's HTTP API, without gradio_client (which would upload local files)."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/recommend", json.dumps({"data": data}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/recommend/{event_id}", timeout=120) as response:
        return response.read().decode()


def test_app_reads_no_path_from_a_request(app, files):
    """A request naming a file on the server instead of uploading it is refused before the handler runs."""
    client, log = app
    url = client.src if client.src.endswith("/") else client.src + "/"
    good = call_raw(url, [handle_file(str(files["8kHz"])), 3, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert "event: error" in good  # even a real recording is refused when named by path instead of uploaded
    secret = Path(__file__)
    answer = call_raw(url, [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}, 3, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert "event: error" in answer and "event: complete" not in answer
    assert "recommendation failed" not in log.read_text()
    assert str(secret) not in "".join(line for line in log.read_text().splitlines() if "recommend" in line)
