"""The app through its public API (gradio_client), launched as `python app.py`: good, bad, then good input again."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.app_server import model_env, running_app
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.tools.bench import page_call

SR = 16000


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Client:
    tmp = tmp_path_factory.mktemp("app")
    with running_app(model_env(tmp), tmp / "app.log") as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """Good singing, silence, too little singing, clipped singing and a text file posing as audio."""
    folder = tmp_path_factory.mktemp("clips")
    singing = sing(scale_melody(50, n_notes=16, seconds=0.5, seed=1), VOICES["baritone"], sr=SR)
    paths = {name: str(folder / f"{name}.wav") for name in ("good", "silence", "short", "clipped")}
    sf.write(paths["good"], singing, SR)
    sf.write(paths["silence"], np.zeros(5 * SR, dtype=np.float32), SR)
    sf.write(paths["short"], np.concatenate([singing[: 2 * SR], np.zeros(3 * SR, dtype=np.float32)]), SR)
    sf.write(paths["clipped"], np.clip(singing * 6.0, -1.0, 1.0), SR)
    paths["text"] = str(folder / "notes.wav")
    (folder / "notes.wav").write_text("these are my lyrics, not a recording\n" * 50)
    return paths


def recommend(client: Client, path: str, **kwargs):
    return client.predict(handle_file(path), api_name="/recommend", **kwargs)


def check_good(result) -> dict:
    table, breakdown, keyboard, summary, details = result
    items = details["items"]
    assert len(items) >= 1
    assert [row[0] for row in table["data"]] == list(range(1, len(items) + 1))
    assert "Song" in table["headers"] and "Key change" in table["headers"]
    for item in items:
        assert set(item["similarities"]) == set(EMBEDDING_NAMES)
        assert all(-1.0001 <= v <= 1.0001 for v in item["similarities"].values())
        assert 0.0 <= item["range_fit"] <= 1.0
    assert breakdown is not None and keyboard is not None
    voice = details["profile"]["range"]["voice_type"]
    assert f"Your voice: {voice}" in summary
    top = items[0]  # whose voice matched, and the key advice for that song
    assert f"sung here by **{top['voice']}**, a voice close to yours" in summary and top["reason"] in summary
    return details


def test_good_then_bad_then_good(client, clips):
    first = check_good(recommend(client, clips["good"]))
    with pytest.raises(AppError, match="silent"):
        recommend(client, clips["silence"])
    with pytest.raises(AppError, match="at least 3 s"):
        recommend(client, clips["short"])
    with pytest.raises(AppError, match="Could not read"):
        recommend(client, clips["text"])
    again = check_good(recommend(client, clips["good"]))
    assert [i["song_id"] for i in again["items"]] == [i["song_id"] for i in first["items"]]


def test_weights_and_number_of_songs_reach_the_recommender(client, clips):
    details = check_good(
        recommend(client, clips["good"], top=2, timbre=1.0, expression=0, timbre_note=0, expression_note=0, mood=0)
    )
    assert len(details["items"]) <= 2
    for item in details["items"]:  # only timbre counts: the fused score is the timbre similarity
        assert item["score"] == pytest.approx(item["similarities"]["timbre"], abs=1e-3)
    with pytest.raises(AppError, match="weight above zero"):
        recommend(client, clips["good"], timbre=0, expression=0, timbre_note=0, expression_note=0, mood=0)


def test_clipping_is_reported_but_analysed(client, clips):
    details = check_good(recommend(client, clips["clipped"]))
    assert any("clipped" in w for w in details["profile"]["warnings"])


def test_uploads_over_the_size_limit_are_refused(client, clips, tmp_path):
    big = tmp_path / "two-hours.wav"
    with big.open("wb") as f:
        f.truncate(27 * 1024 * 1024)  # over the app's 25 MB limit; content never read
    with big.open("rb") as f:
        response = httpx.post(f"{client.src}gradio_api/upload", files={"files": (big.name, f, "audio/wav")})
    assert response.status_code == 413
    check_good(recommend(client, clips["good"]))  # and the app still serves


def test_the_pages_http_calls_get_the_same_songs(client, clips):
    """Gradio's HTTP API (upload, then the event's server-sent events: what the page and curl do, and what `bench`
    times) reaches the same handler with the page's default controls."""
    outputs = page_call(client.src)(Path(clips["good"]))
    expected = check_good(recommend(client, clips["good"]))
    assert [i["song_id"] for i in outputs[-1]["items"]] == [i["song_id"] for i in expected["items"]]
