"""The page's live mode and range test, through their event handlers (as Gradio calls them) on synthetic singing:
chunks give the live view, Stop gives the same songs as /recommend, takes of singers at once stay apart, and a
tab's take is dropped by Gradio's delete callback."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from gradio.state_holder import StateHolder

from voicerec.app.page import build_demo, make_live, make_range_test, make_recommend
from voicerec.app.streaming import LIVE_TAKES, Take, drop_take
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import DEFAULT_WEIGHTS, EMBEDDING_NAMES
from voicerec.recommender import Recommender

RATE = 48000
CHUNK = RATE // 4  # what the page streams: a quarter of a second


@pytest.fixture(scope="module")
def recommender(tmp_path_factory) -> Recommender:
    from tests.tiny_hub import build_tiny_hub
    from voicerec.defaults import ARTEFACTS

    hub = build_tiny_hub(tmp_path_factory.mktemp("hub") / "hub")
    return Recommender.from_pretrained(**{name: str(hub / repo) for name, (_, repo) in ARTEFACTS.items()})


def take_audio(voice: str, tonic: int, seed: int, seconds: float = 8.0) -> np.ndarray:
    """Singing as the browser's recorder gives it: 16-bit samples."""
    x = sing(scale_melody(tonic, n_notes=int(seconds / 0.5), seconds=0.5, seed=seed), VOICES[voice], RATE, seed=seed)
    return (x * 32767).astype(np.int16)


def stream(chunk, audio: np.ndarray, take: Take | None = None) -> tuple[Take, list[tuple]]:
    outputs = []
    for i in range(0, len(audio), CHUNK):
        take, *shown = chunk((RATE, audio[i : i + CHUNK]), take)
        outputs.append(tuple(shown))
    return take, outputs


def test_chunks_show_the_singing_and_stop_gives_the_songs_of_the_take(recommender, tmp_path):
    start, chunk, stop = make_live(recommender)
    audio = take_audio("baritone", 50, seed=1)
    take, view = start(None)
    assert take is None and "Record" in view
    take, outputs = stream(chunk, audio)
    assert take.chunks == len(outputs) == int(np.ceil(len(audio) / CHUNK))
    view, keys = outputs[-1]
    assert 'class="pitch-trace"' in view and 'class="level-meter"' in view
    received = float(view.split('data-seconds="')[1].split('"')[0])
    assert received == pytest.approx(len(audio) / RATE, abs=0.05)  # the resampler holds a few ms back
    sung = [float(k.split('"')[0]) for k in keys.split('data-seconds="')[1:]]
    assert len(sung) >= 4 and sum(sung) > 4.0  # eight seconds of a melody: several notes, most of the time
    early = outputs[8][1].count('data-part="sung"')  # two seconds in: the keyboard fills in as the take goes
    assert 0 < early <= keys.count('data-part="sung"')
    table, chart, keyboard, summary, details = stop(take, 3)
    assert "Your voice:" in summary and "range-keyboard" in keyboard
    assert len(table) == len(details["items"]) == 3 and chart is not None
    path = tmp_path / "take.wav"
    import soundfile as sf

    sf.write(path, audio, RATE)
    batch = make_recommend(recommender)(str(path), 3)[4]
    assert [i["song_id"] for i in details["items"]] == [i["song_id"] for i in batch["items"]]
    for name in EMBEDDING_NAMES:
        assert details["items"][0]["similarities"][name] == pytest.approx(batch["items"][0]["similarities"][name],
                                                                           abs=2e-3)  # fmt: skip
    assert chunk((RATE, audio[:CHUNK]), take)[1:] == (gr.skip(), gr.skip())  # a chunk arriving after Stop


def test_singers_at_once_keep_their_own_takes(recommender):
    _, chunk, stop = make_live(recommender)
    low, high = take_audio("bass", 43, seed=2), take_audio("soprano", 69, seed=3)
    takes: dict[str, Take | None] = {"low": None, "high": None}
    for i in range(0, len(low), CHUNK):  # interleaved, as two tabs' chunks reach the server
        takes["low"], *_ = chunk((RATE, low[i : i + CHUNK]), takes["low"])
        takes["high"], *_ = chunk((RATE, high[i : i + CHUNK]), takes["high"])
    assert takes["low"] is not takes["high"]
    ranges = {name: stop(take, 2)[4]["profile"]["range"] for name, take in takes.items()}
    assert ranges["low"]["median"] < 52 < 64 < ranges["high"]["median"]


def test_the_chunk_stop_interrupts_shows_nothing_and_its_audio_is_in_the_songs(recommender):
    """The page's last chunk and its Stop run at once: once Stop is pressed the chunk's view is skipped (it would
    delay the answer, and could arrive after the songs and cover their keyboard), and its audio is still used."""
    _, chunk, stop = make_live(recommender)
    audio = take_audio("tenor", 55, seed=7, seconds=6.0)
    take, _ = stream(chunk, audio[:-CHUNK])
    before = take.session.seconds
    take.session.stop()  # what Stop's handler does first, from another thread, while this chunk is pushed
    assert chunk((RATE, audio[-CHUNK:]), take) == (take, gr.skip(), gr.skip())
    assert take.session.seconds == pytest.approx(before + CHUNK / RATE, abs=0.01)
    assert "Your voice:" in stop(take, 2)[3]


def test_stop_without_singing_and_a_new_recording(recommender):
    start, chunk, stop = make_live(recommender)
    with pytest.raises(gr.Error, match="Press Record"):
        stop(None)
    take, _ = stream(chunk, take_audio("tenor", 55, seed=4, seconds=1.0))
    with pytest.raises(gr.Error, match="singing"):  # one second is too little: the library's message
        stop(take)
    assert start(take)[0] is None and take.session is None  # Record again: the old take is dropped
    quiet, *_ = chunk((RATE, np.zeros(CHUNK * 8, np.int16)), None)
    view = chunk((RATE, np.full(CHUNK, 3, np.int16)), quiet)[1]
    assert "Too quiet" in view
    clipped = np.clip(take_audio("tenor", 55, seed=5, seconds=1.0).astype(np.int32) * 8, -32768, 32767)
    assert "Clipping" in chunk((RATE, clipped.astype(np.int16)), None)[1]


def test_gradio_drops_the_take_of_a_closed_tab(recommender):
    demo = build_demo(recommender)
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State) and b.delete_callback is drop_take]
    assert len(states) == 2  # the live take and the range test's
    _, chunk, _ = make_live(recommender)
    take, _ = stream(chunk, take_audio("baritone", 50, seed=6, seconds=2.0))
    assert id(take) in LIVE_TAKES and take.session is not None
    holder = StateHolder()
    holder.set_blocks(demo)
    holder["tab"][states[0]._id] = take
    holder.delete_state("tab")  # what Gradio does when the tab's state expires or is deleted
    assert take.session is None and id(take) not in LIVE_TAKES


def test_the_page_names_its_live_endpoints(recommender):
    demo = build_demo(recommender)
    fns = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert {"recommend", "live_start", "live_chunk", "live_stop"} <= set(fns)
    assert fns["live_chunk"].connection == "stream" and fns["live_chunk"].concurrency_id == "live"
    assert [type(b).__name__ for b in fns["live_stop"].outputs] == [type(b).__name__ for b in
                                                                    fns["recommend"].outputs]  # fmt: skip


def test_range_test_on_the_page_feeds_the_songs(recommender):
    start, chunk, next_step, retry, forget = make_range_test(recommender)
    take, step, _ = start(None)
    assert step.startswith("Step 1 of 3")
    weights = [DEFAULT_WEIGHTS[name] for name in EMBEDDING_NAMES]

    sung = [50.0]

    def sing_note(midi: float, seed: int) -> str:
        """Slide from the last note to `midi` (a semitone each 80 ms) and hold it for 1.2 s."""
        nonlocal take
        steps = np.arange(sung[-1], midi, -1 if midi < sung[-1] else 1)[1:]
        notes = [(float(m), 0.08) for m in steps] + [(midi, 1.2)]
        audio = sing(notes, VOICES["baritone"], RATE, vowels="a", seed=seed, gap=0.0) * 32767
        sung.append(midi)
        take, outputs = stream(chunk, audio.astype(np.int16), take)
        return outputs[-1][0]

    assert sing_note(50, seed=1).startswith("Step 2 of 3")  # the comfortable "ah" moves on by itself
    assert next_step(take, None, 3, *weights)[0] == gr.skip()  # nothing held since: no range yet
    assert "D2" in sing_note(38, seed=2)
    assert retry(take).startswith("Step 2 of 3") and "low" not in take.range_test.notes
    sing_note(41, seed=3)
    next_step(take, None, 3, *weights)
    sing_note(62, seed=4)
    # a live take finished before the test: its songs are ranked again with the measured range
    _, live_chunk, stop = make_live(recommender)
    live, _ = stream(live_chunk, take_audio("baritone", 50, seed=7))
    sung = stop(live, 3)[4]["profile"]["range"]
    measured, message, *shown = next_step(take, live, 3, *weights)
    assert (round(measured.low), round(measured.high)) == (41, 62)
    assert message.startswith("Range test done") and "F2–D4" in message
    details = shown[4]
    assert (round(details["profile"]["range"]["low"]), round(details["profile"]["range"]["high"])) == (41, 62)
    assert (sung["low"], sung["high"]) != (details["profile"]["range"]["low"], details["profile"]["range"]["high"])
    assert forget(take)[:2] == (None, None) and take.session is None


def test_a_take_that_lost_audio_on_the_way_says_so(recommender):
    """Gradio keeps only a stream's newest unprocessed chunk: when chunks go missing, the songs come with a warning
    that names how much arrived. Chunks are sent in real time, as the microphone gives them; in one take two
    seconds of them never arrive, as on a busy server."""
    import time

    _, chunk, stop = make_live(recommender)
    audio = take_audio("tenor", 52, seed=5, seconds=6.0)

    def paced(skip: slice | None) -> Take:
        take, t0 = None, time.perf_counter()
        for i in range(0, len(audio), CHUNK):
            time.sleep(max(0.0, t0 + (i + CHUNK) / RATE - time.perf_counter()))  # the chunk's audio is over
            if skip is None or not skip.start <= i < skip.stop:
                take, *_ = chunk((RATE, audio[i : i + CHUNK]), take)
        return take

    whole, gapped = paced(None), paced(slice(2 * RATE, 4 * RATE))
    assert whole.lost_seconds < 0.5 and gapped.lost_seconds > 1.5
    assert not any("reached the server" in w for w in stop(whole, 2)[4]["profile"]["warnings"])
    assert any("s you sang reached the server" in w for w in stop(gapped, 2)[4]["profile"]["warnings"])
