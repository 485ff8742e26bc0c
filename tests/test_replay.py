"""The bench's replay of a live take speaks Gradio's streaming protocol: a real Gradio server with the page's event
names receives every chunk, in order, as the audio the server's own Audio component decodes, each tab keeps its
own state, and the stop event answers with what the chunks built up."""

from __future__ import annotations

import socket
import threading

import gradio as gr
import numpy as np
import pytest
from gradio import processing_utils

from voicerec.tools.replay import PageSession, replay, wav_header


def test_header_is_one_gradio_reads(tmp_path):
    samples = (np.sin(np.arange(4800) / 7.0) * 20000).astype(np.int16)
    path = tmp_path / "audio.wav"
    path.write_bytes(wav_header(48000) + samples.astype("<i2").tobytes())
    rate, decoded = processing_utils.audio_from_file(str(path))  # what gr.Audio(type="numpy") does with a chunk
    assert rate == 48000
    assert np.array_equal(decoded, samples)


@pytest.fixture(scope="module")
def streaming_app():
    """A page with the live events' names: each chunk's samples are kept per tab, Stop answers with their count."""
    received: dict[str, list[np.ndarray]] = {}
    lock = threading.Lock()

    def chunk(audio, take, request: gr.Request):
        rate, x = audio
        with lock:
            received.setdefault(request.session_hash, []).append(x.copy())
        return f"{rate} {x.size}", (take or 0) + x.size

    def stop(take):
        return str(take)

    with gr.Blocks() as demo:
        mic = gr.Audio(sources=["microphone"], streaming=True)
        take, note, answer = gr.State(), gr.Textbox(), gr.Textbox()
        mic.start_recording(lambda: None, None, take, api_name="live_start")
        mic.stream(chunk, [mic, take], [note, take], stream_every=0.25, time_limit=30, concurrency_limit=4,
                   api_name="live_chunk")  # fmt: skip
        mic.stop_recording(stop, take, answer, api_name="live_stop")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", received
    demo.close()


def test_take_arrives_whole_and_in_order(streaming_app):
    url, received = streaming_app
    rate = 16000
    samples = (np.random.default_rng(0).standard_normal(int(2.1 * rate)) * 3000).astype(np.int16)
    session = PageSession(url)
    try:
        take = session.take(samples, rate)
    finally:
        session.close()
    sent = 8 * int(0.25 * rate)  # 2.1 s in 0.25 s hand-overs: 8 whole chunks, the rest never leaves the page
    assert take.error is None
    # Gradio runs the stop event beside the last chunk's, so it may read the take's state from before that chunk,
    # as it does for the browser: the page's Take is one object under a lock for this reason
    assert take.answer in ([str(sent)], [str(sent - int(0.25 * rate))])
    # and Gradio 6.31 ends a stream at its close without running a chunk posted just before it (seen under load):
    # every chunk but possibly the last arrives, whole and in order
    got = np.concatenate(received[session.session_hash])
    assert got.size in (sent, sent - int(0.25 * rate)) and np.array_equal(got, samples[: got.size])
    assert len(take.latencies) == 8 and np.all(np.isfinite(take.latencies)) and min(take.latencies) > 0
    assert 0 < take.stop_to_answer < 5


def test_singers_at_once_keep_their_own_takes(streaming_app):
    url, received = streaming_app
    rate = 16000
    samples = (np.random.default_rng(1).standard_normal(rate) * 3000).astype(np.int16)
    takes = replay(url, samples, rate, singers=3, stagger=0.1, pause=0.0)
    assert [t.error for t in takes] == [None] * 3
    assert sorted(t.singer for t in takes) == [0, 1, 2]
    assert all(t.answer in ([str(rate)], [str(rate * 3 // 4)]) for t in takes)  # each tab counted its own chunks


def test_the_floor_page_answers_a_replayed_take():
    """The bench's floor for Stop -> answer (EMPTY_LIVE_APP) speaks the page's live protocol, so its figure is the
    same measurement as the page's, without the analysis."""
    from voicerec.tools.bench import EMPTY_LIVE_APP, serve_app

    samples = (np.sin(np.arange(48000) / 9.0) * 8000).astype(np.int16)
    with serve_app({"GRADIO_ANALYTICS_ENABLED": "False"}, empty=EMPTY_LIVE_APP) as (url, _):
        (take,) = replay(url, samples, 48000)
    assert take.error is None and take.answer == ["ok"]
    assert 0 < take.stop_to_answer < 5 and take.files_sent >= 1
