"""The app's page: what the singer records and sets, and how a `Recommendations` is shown (table, chart, keyboard,
summary). It turns every problem with a recording into a message for the singer and makes no recommendation
decision itself: that is `voicerec.recommender.Recommender`'s. `app.py` loads the models and serves this page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from voicerec import MAX_SECONDS, AudioInputError, load_audio
from voicerec.app.plots import breakdown_frame, level_meter, pitch_trace, range_keyboard, sung_keyboard
from voicerec.app.streaming import Take, drop_take, new_take
from voicerec.audio.range_test import MeasuredRange, RangeTest
from voicerec.audio.separation import SeparationError, separate_recording
from voicerec.audio.separation import available as separation_available
from voicerec.audio.vocal_range import note_name
from voicerec.embeddings import DEFAULT_WEIGHTS, EMBEDDING_NAMES
from voicerec.live import LiveUpdate
from voicerec.recommender import Recommendations, Recommender

logger = logging.getLogger("voicerec.app")

MAX_FILE_SIZE = "25mb"  # a minute of 48 kHz stereo WAV is 11 MB; longer input is cut to MAX_SECONDS anyway
CHART_SONGS = 5
CHART_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]  # matplotlib's tab10, as the chart had
MAX_RESULTS = 30
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
EMBEDDING_LABELS = {
    "timbre": "Timbre",
    "expression": "Expression",
    "timbre_note": "Timbre (key-free)",
    "expression_note": "Expression (key-free)",
    "mood": "Mood",
}
TABLE_COLUMNS = [
    "#",
    "Song",
    "Artist",
    "Sung by",
    *EMBEDDING_LABELS.values(),
    "Score",
    "Range fit",
    "Match",
    "Key change",
]
COLUMN_WIDTHS = ["3%", "13%", "12%", "10%", "6%", "6%", "6%", "6%", "6%", "5%", "5%", "5%", "17%"]
ABOUT = """# voicerec
**Sing for ten seconds, get the songs that suit your voice** — ranked, with the reason for each and the key to sing
it in. Your recording is analysed in memory and not stored."""
LIVE_PROMPT = f"""### Sing, and watch your voice
1. Press **Record** and sing **about 10 seconds** (up to {MAX_SECONDS:.0f} s) of a song you know well — words or
   just "la la la" both work. Your pitch, the note you are on and the notes you have sung appear as you sing.
2. Sing at a comfortable, steady loudness, in a quiet room, about an arm's length from the microphone; include a
   few of your lower *and* higher comfortable notes.
3. Press **Stop**: your songs appear."""
PROMPT = f"""### Record or upload a file
Record (up to {MAX_SECONDS:.0f} s) or upload a WAV/FLAC/OGG/MP3 file of your singing, then press **Find my songs**."""
RANGE_PROMPT = """### Guided range test (optional)
Ten seconds of one song show the notes that song needs; this test finds your own lowest and highest comfortable
notes, and they then decide your voice type and how well each song fits. Press **Record** and follow the steps;
a note counts when you hold it steadily for half a second."""
LIVE_SINGERS = 8
"""Singers streaming at once: each holds a worker while it records (Gradio's streaming events do)."""
LIVE_CHUNK_SECONDS = 0.25
PAGE_CSS = """
html:not([data-voicerec-loaded]) #live-mic, html:not([data-voicerec-loaded]) #range-mic {
    pointer-events: none; opacity: 0.5;
}
"""
"""Given to `launch(css=...)`: the microphones take no click until the page's start-up events are done (it marks
`<html data-voicerec-loaded>`), because Record pressed before them streams nothing in Gradio 6.31."""
LIVE_WAITING = (
    '<div class="live-idle">Press <b>Record</b> and sing: your pitch and the notes you sing appear here.</div>'
)


def key_change(transpose: int, key: str, suggested_key: str) -> str:
    """'+2 (C → D)': the key change a singer reads at a glance; 'as written (C)' when none is needed."""
    if transpose == 0:
        return f"as written ({key})" if key else "as written"
    shift = f"{transpose:+d} semitone{'s' if abs(transpose) != 1 else ''}"
    return f"{shift} ({key} → {suggested_key})" if key and suggested_key else shift


def results_table(result: Recommendations) -> pd.DataFrame:
    """One row per recommended song, the columns a singer compares; figures rounded for reading."""
    rows = []
    for item in result.items:
        row = {"#": item.rank, "Song": item.title, "Artist": item.artist,
               "Sung by": "its own artist" if item.own_artist else f"cover: {item.voice}"}
        row |= {EMBEDDING_LABELS[name]: round(float(item.similarities[name]), 3) for name in EMBEDDING_NAMES}
        row |= {
            "Score": round(float(item.score), 3),
            "Range fit": round(float(item.range_fit), 2),
            "Match": round(float(item.match), 3),
            "Key change": key_change(int(item.transpose), item.key, item.suggested_key),
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def voice_summary(result: Recommendations) -> str:
    """The singer's voice in words: type, range, tessitura, how much singing was heard, and the top song's reason."""
    vr, voice = result.profile.range, result.profile.voice
    lines = [
        f"### Your voice: {voice.headline if voice else vr.voice_type}",
        *([voice.advice] if voice and voice.advice else []),
        f"Range **{note_name(vr.low)}–{note_name(vr.high)}**, most comfortable (tessitura) "
        f"**{note_name(vr.tessitura_low)}–{note_name(vr.tessitura_high)}**, from {vr.voiced_seconds:.1f} s of singing.",
    ]
    if result.items:
        top = result.items[0]
        song = f"**{top.title}**" + (f" ({top.artist})" if top.artist else "")
        if top.own_artist:
            sung_by = ", sung by its own artist, a voice close to yours"
        else:
            sung_by = f", a cover sung here by **{top.voice}**, a voice close to yours" if top.voice else ""
        lines.append(f"Best match: {song}{sung_by}. {top.reason}")
    else:
        lines.append("No catalog song matched: try another recording or other weights.")
    return "\n\n".join(lines)


def breakdown(result: Recommendations) -> pd.DataFrame | None:
    """The top songs' similarities per embedding, as the long table the browser plots."""
    top = result.items[:CHART_SONGS]
    if not top:
        return None
    return breakdown_frame(
        [f"{item.rank}. {item.title}" for item in top],
        [item.similarities for item in top],
        EMBEDDING_NAMES,
        scores=[item.score for item in top],
        labels=EMBEDDING_LABELS,
    )


def keyboard(result: Recommendations) -> str:
    """The singer's range and tessitura on a keyboard, as SVG the browser draws."""
    vr = result.profile.range
    return range_keyboard(vr.low, vr.high, vr.tessitura_low, vr.tessitura_high, vr.median, vr.voice_type)


def page_weights(timbre: float, expression: float, timbre_note: float, expression_note: float, mood: float):
    """The five sliders as the library's weights (relative: it scales them to sum 1)."""
    weights = {"timbre": timbre, "expression": expression, "timbre_note": timbre_note,
               "expression_note": expression_note, "mood": mood}  # fmt: skip
    if sum(weights.values()) <= 0:
        raise gr.Error("Set at least one embedding weight above zero.", print_exception=False)
    return weights


@contextmanager
def singer_errors(what: object) -> Iterator[None]:
    """A problem with the recording becomes the library's message to the singer; a bug, a plain apology on the
    page and the traceback in the log."""
    try:
        yield
    except gr.Error:
        raise
    except AudioInputError as exc:
        raise gr.Error(str(exc), title="Can't use this recording", print_exception=False) from None
    except SeparationError as exc:
        raise gr.Error(str(exc), title="Can't take the voice out of the music", print_exception=False) from None
    except Exception:
        logger.exception("recommendation failed for %s", what)
        raise gr.Error(
            "Something went wrong while analysing this recording. Please try again, or try another recording.",
            print_exception=False,
        ) from None


def show(result: Recommendations, warnings: list[str] = ()) -> tuple:
    """The result on the page: table, breakdown, keyboard, summary, JSON; the warnings as toasts."""
    for message in dict.fromkeys([*warnings, *result.profile.warnings]):
        gr.Warning(message)
    return results_table(result), breakdown(result), keyboard(result), voice_summary(result), result.to_dict()


def live_view(update: LiveUpdate | None, hints: list[str] = (), take: Take | None = None) -> str:
    """What the singer watches while singing: the level meter, what to change (if anything), the pitch trace.
    `take` adds how many chunks arrived over how long (`data-chunks`, `data-wall`), to compare with the audio."""
    if update is None:
        return LIVE_WAITING
    notes = "".join(f'<div class="live-hint" style="color:#d62728">⚠ {escape(h)}</div>' for h in
                    dict.fromkeys([*update.hints, *hints]))  # fmt: skip
    arrival = f' data-chunks="{take.chunks}" data-wall="{take.wall_seconds:.2f}"' if take is not None else ""
    return (
        f'<div class="live-view" data-seconds="{update.seconds:.2f}"{arrival}>'
        f"{level_meter(update.level_db, update.peak)}{notes}"
        f"{pitch_trace(update.times, update.midi, update.note, update.cents)}</div>"
    )


def live_keyboard(update: LiveUpdate) -> str:
    """The notes sung so far, shaded by how long, with the note being sung marked."""
    finite = update.midi[np.isfinite(update.midi)]
    current = float(np.median(finite[-20:])) if update.note is not None and finite.size else None
    return sung_keyboard(update.note_seconds, current)


def make_recommend(recommender: Recommender):
    """The event handler, closed over one loaded Recommender (models load once, at start-up)."""

    def recommend(
        recording: str | None,
        top: float = 10,
        timbre: float = DEFAULT_WEIGHTS["timbre"],
        expression: float = DEFAULT_WEIGHTS["expression"],
        timbre_note: float = DEFAULT_WEIGHTS["timbre_note"],
        expression_note: float = DEFAULT_WEIGHTS["expression_note"],
        mood: float = DEFAULT_WEIGHTS["mood"],
        languages: list[str] | None = None,
        separate: bool = False,
        measured: MeasuredRange | None = None,
    ):
        """Recommend songs for a recording: table, per-embedding breakdown, range keyboard, summary and JSON.

        The five weights are relative (the library scales them to sum 1); `languages` (codes, none: all) keeps
        only songs in those languages; `separate` takes the voice out of music first (where demucs is installed);
        `measured` (the page's range test, if taken) stands for the range.
        """
        if not recording:
            raise gr.Error("Record or upload about 10 seconds of singing first.", print_exception=False)
        weights = page_weights(timbre, expression, timbre_note, expression_note, mood)
        with singer_errors(recording):
            audio = load_audio(separate_recording(recording) if separate else recording)
            result = recommender.recommend(audio, top=int(top), weights=weights, languages=languages or None,
                                           measured_range=measured)  # fmt: skip
        return show(result, audio.warnings)

    return recommend


def make_live(recommender: Recommender):
    """The live mode's handlers (Record, each chunk, Stop), closed over the loaded Recommender."""

    def start(take: Take | None) -> tuple:
        """A new recording: the last take is dropped, and the page shows the live view instead of old results."""
        drop_take(take)
        return None, LIVE_WAITING

    def chunk(audio: tuple[int, np.ndarray] | None, take: Take | None) -> tuple:
        """One chunk from the microphone: analysed at once, answered with the live view and the notes sung."""
        if take is None or take.session is None:  # the first chunk, or a take whose Stop failed
            take = new_take(recommender)
        if audio is None or take.finished:  # nothing new, or a chunk that arrived after Stop
            return take, gr.skip(), gr.skip()
        rate, samples = audio
        with singer_errors("a live chunk"):
            update = take.push(int(rate), np.asarray(samples))
        if take.stopping:  # Stop came during this chunk: its view would only hold up the answer, then cover its keys
            return take, gr.skip(), gr.skip()
        if update is None:
            limit = f"That is {MAX_SECONDS:.0f} s, all that is used: press Stop for your songs."
            return take, live_view(take.update, [limit], take), gr.skip()
        return take, live_view(update, take=take), live_keyboard(update)

    def stop(
        take: Take | None,
        top: float = 10,
        timbre: float = DEFAULT_WEIGHTS["timbre"],
        expression: float = DEFAULT_WEIGHTS["expression"],
        timbre_note: float = DEFAULT_WEIGHTS["timbre_note"],
        expression_note: float = DEFAULT_WEIGHTS["expression_note"],
        mood: float = DEFAULT_WEIGHTS["mood"],
        languages: list[str] | None = None,
        measured: MeasuredRange | None = None,
    ) -> tuple:
        """Stop: the songs for the take, from what was analysed while it was sung (the same outputs as
        /recommend)."""
        if take is None or take.session is None or take.chunks == 0:
            raise gr.Error("Press Record and sing for about 10 seconds first.", print_exception=False)
        weights = page_weights(timbre, expression, timbre_note, expression_note, mood)
        with singer_errors("a live take"):
            try:
                result = take.finish(int(top), weights, languages or None, measured)
            except Exception:
                drop_take(take)  # an unusable take: the next recording starts afresh
                raise
        return show(result)

    return start, chunk, stop


def range_view(take: Take | None) -> str:
    """The range test's pitch trace, with the notes held so far."""
    if take is None or take.range_test is None or take.update is None:
        return LIVE_WAITING
    held = "".join(f'<span class="held" data-step="{step}" data-note="{note_name(m)}" style="margin-right:1em">'
                   f"{step}: <b>{note_name(m)}</b></span>" for step, m in take.range_test.notes.items())  # fmt: skip
    return f'<div class="range-held">{held or "No steady note yet."}</div>{live_view(take.update, take=take)}'


def make_range_test(recommender: Recommender):
    """The range test's handlers: Record, each chunk, Next, Retry, Forget. A finished live take's songs are
    ranked again with the measured range as soon as the test is done."""

    def start(take: Take | None) -> tuple:
        test = take.range_test if take is not None and take.range_test is not None else None
        drop_take(take)
        test = RangeTest() if test is None or test.done else test  # a stopped recording resumes the test
        take = new_take(recommender, range_test=test)
        return take, test.instruction(), LIVE_WAITING

    def chunk(audio: tuple[int, np.ndarray] | None, take: Take | None) -> tuple:
        if take is None:
            take = new_take(recommender, range_test=RangeTest())
        if audio is None or take.finished or take.range_test is None:
            return take, gr.skip(), gr.skip()
        rate, samples = audio
        with singer_errors("a range-test chunk"):
            take.push(int(rate), np.asarray(samples))
        return take, take.range_test.instruction(), range_view(take)

    def next_step(
        take: Take | None,
        live: Take | None,
        top: float = 10,
        timbre: float = DEFAULT_WEIGHTS["timbre"],
        expression: float = DEFAULT_WEIGHTS["expression"],
        timbre_note: float = DEFAULT_WEIGHTS["timbre_note"],
        expression_note: float = DEFAULT_WEIGHTS["expression_note"],
        mood: float = DEFAULT_WEIGHTS["mood"],
        languages: list[str] | None = None,
    ) -> tuple:
        """Next step; when the test is done its range is kept for the songs (and a live take's are ranked again)."""
        if take is None or take.range_test is None:
            raise gr.Error("Press Record to start the range test.", print_exception=False)
        with take.lock:
            problem = take.range_test.next()
            test = take.range_test
        if problem:
            gr.Warning(problem)
        measured = test.result()
        if measured is None:
            return (gr.skip(), test.instruction(), *[gr.skip()] * 5)
        message = (f"{test.instruction()} It now decides your voice type and how well each song fits; "
                   "sing live or upload a file to get your songs.")  # fmt: skip
        weights = page_weights(timbre, expression, timbre_note, expression_note, mood)
        result = live.rerank(int(top), weights, languages or None, measured) if live else None
        if result is None:
            return (measured, message, *[gr.skip()] * 5)
        return (measured, f"{test.instruction()} Your songs below now use it.", *show(result))

    def retry(take: Take | None) -> str:
        if take is None or take.range_test is None:
            return RangeTest().instruction()
        with take.lock:
            take.range_test.retry()
            take.fed_until = take.update.times[-1] if take.update is not None and take.update.times.size else -1.0
        return take.range_test.instruction()

    def forget(take: Take | None) -> tuple:
        drop_take(take)
        return None, None, RangeTest().instruction(), LIVE_WAITING

    return start, chunk, next_step, retry, forget


def build_demo(
    recommender: Recommender, examples_dir: Path | None = None, live_singers: int = LIVE_SINGERS
) -> gr.Blocks:
    """The page: live singing, a file, controls, results; `examples_dir` holds example recordings to offer, if any;
    `live_singers` is how many can sing live at once."""
    with gr.Blocks(title="voicerec: songs for your voice") as demo:
        gr.Markdown(ABOUT)
        take = gr.State(None, delete_callback=drop_take)  # this tab's live take, dropped with the tab
        measured = gr.State(None)  # the range test's result, if taken
        range_take = gr.State(None, delete_callback=drop_take)
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                with gr.Tabs():
                    with gr.Tab("Sing live", id="live", elem_id="tab-live"):
                        gr.Markdown(LIVE_PROMPT)
                        live_mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy",
                                            label="Sing here", elem_id="live-mic")  # fmt: skip
                    with gr.Tab("Range test (optional)", id="range", elem_id="tab-range"):
                        gr.Markdown(RANGE_PROMPT)
                        range_step = gr.Markdown(RangeTest().instruction(), elem_id="range-step")
                        range_mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy",
                                             label="Range test", elem_id="range-mic")  # fmt: skip
                        with gr.Row():
                            next_button = gr.Button("Next step", variant="primary", elem_id="range-next")
                            retry_button = gr.Button("Retry this step", elem_id="range-retry")
                            forget_button = gr.Button("Forget my range", elem_id="range-forget")
                        range_shown = gr.HTML(LIVE_WAITING, elem_id="range-view")
                    with gr.Tab("Upload a file", id="file", elem_id="tab-file"):
                        gr.Markdown(PROMPT)
                        recording = gr.Audio(
                            sources=["microphone", "upload"], type="filepath", label="Your singing",
                            elem_id="recording",
                        )  # fmt: skip
                        separate = gr.Checkbox(  # in the API everywhere; on the page where demucs is installed
                            False, visible=separation_available(), elem_id="separate",
                            label="Take my voice out of the music (demucs; needs the internet once for its weights)",
                        )  # fmt: skip
                        button = gr.Button("Find my songs", variant="primary", elem_id="find-songs")
                        found = examples_dir.glob("*") if examples_dir else []
                        examples = sorted(p for p in found if p.suffix in AUDIO_SUFFIXES)
                        if examples:
                            gr.Examples([[str(p)] for p in examples], inputs=[recording],
                                        label="Or try a synthetic singer")  # fmt: skip
                with gr.Accordion("Advanced: embedding weights and number of songs", open=False):
                    top = gr.Slider(1, MAX_RESULTS, value=10, step=1, label="Number of songs")
                    weights = [
                        gr.Slider(0.0, 1.0, value=DEFAULT_WEIGHTS[name], step=0.05, label=f"{EMBEDDING_LABELS[name]}")
                        for name in EMBEDDING_NAMES
                    ]
                    gr.Markdown("Weights are relative: they are scaled to sum to 1.")
                codes = recommender.catalog.table().get("language", pd.Series(dtype=str))
                language = gr.Dropdown(
                    sorted(set(codes.dropna()) - {""}), value=[], multiselect=True, label="Song languages (none: all)",
                    elem_id="languages",
                )
                remembered = gr.BrowserState([], storage_key="voicerec-languages")
            with gr.Column(scale=3, min_width=480):
                live = gr.HTML(LIVE_WAITING, label="Your pitch", elem_id="live-view")
                summary = gr.Markdown(label="Your voice", elem_id="summary")
                keys = gr.HTML(label="Your range and tessitura", elem_id="keyboard")
        table = gr.Dataframe(
            headers=TABLE_COLUMNS,
            label="Songs for your voice",
            interactive=False,
            wrap=True,
            column_widths=COLUMN_WIDTHS,
            max_height=1000,
            elem_id="results",
        )
        gr.Markdown(
            "**Timbre … Mood**: cosine similarity of your voice to the song's singer under each embedding "
            "(*key-free*: both compared at the same pitch). **Score**: their weighted sum. **Range fit**: how well "
            "the song, after the key change, sits in your range (1 = fully). **Match**, the order: score and range "
            "fit combined."
        )
        chart = gr.ScatterPlot(  # one dot per song and embedding: bars would stack the five cosines
            x="song",
            y="similarity",
            color="embedding",
            title="Why these songs: how close each one is to your voice, per embedding (score in brackets)",
            y_title="cosine similarity to your voice",
            x_title="song (best first)",
            color_map=dict(zip(EMBEDDING_LABELS.values(), CHART_COLOURS, strict=True)),
            y_lim=[None, 1.0],  # negative similarities (mood can be) stay visible
            tooltip="all",
            height=360,
            elem_id="breakdown",
        )
        with gr.Accordion("Full result (JSON)", open=False):
            details = gr.JSON(label="Recommendations")
        results = [table, chart, keys, summary, details]
        button.click(
            make_recommend(recommender),
            inputs=[recording, top, *weights, language, separate, measured],
            outputs=results,
            api_name="recommend",
        )
        start, chunk, stop = make_live(recommender)
        # Record resets off the queue: a queued event finishing just as the stream joins can close the page's
        # event stream under it, and the live updates then never arrive
        live_mic.start_recording(start, take, [take, live], api_name="live_start", queue=False)
        live_mic.stream(
            chunk,
            inputs=[live_mic, take],
            outputs=[take, live, keys],
            api_name="live_chunk",
            stream_every=LIVE_CHUNK_SECONDS,
            time_limit=int(MAX_SECONDS) + 15,
            concurrency_limit=live_singers,
            concurrency_id="live",
            show_progress="hidden",
        )
        live_mic.stop_recording(stop, inputs=[take, top, *weights, language, measured], outputs=results,
                                api_name="live_stop")  # fmt: skip
        r_start, r_chunk, r_next, r_retry, r_forget = make_range_test(recommender)
        range_mic.start_recording(r_start, range_take, [range_take, range_step, range_shown], api_name=False,
                                  queue=False)  # fmt: skip
        range_mic.stream(r_chunk, [range_mic, range_take], [range_take, range_step, range_shown], api_name=False,
                         stream_every=LIVE_CHUNK_SECONDS, time_limit=120, concurrency_limit=live_singers,
                         concurrency_id="live", show_progress="hidden")  # fmt: skip
        next_button.click(r_next, [range_take, take, top, *weights, language], [measured, range_step, *results],
                          api_name=False)  # fmt: skip
        retry_button.click(r_retry, range_take, range_step, api_name=False)
        forget_button.click(r_forget, range_take, [range_take, measured, range_step, range_shown], api_name=False)
        language.change(lambda chosen: chosen, language, remembered, api_name=False)  # kept in this browser
        demo.load(lambda kept: kept or [], remembered, language, api_name=False).then(
            None, js="() => { document.documentElement.dataset.voicerecLoaded = '1'; }"
        )  # a mark that the page's start-up events are done: a recording started before them streams nothing
    return demo
