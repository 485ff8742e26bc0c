"""The app's page: what the singer records and sets, and how a `Recommendations` is shown (table, chart, keyboard,
summary). It turns every problem with a recording into a message for the singer and makes no recommendation
decision itself: that is `voicerec.recommender.Recommender`'s. `app.py` loads the models and serves this page.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from voicerec import MAX_SECONDS, AudioInputError, load_audio
from voicerec.app.plots import breakdown_frame, range_keyboard
from voicerec.audio.separation import SeparationError, separate_recording
from voicerec.audio.separation import available as separation_available
from voicerec.audio.vocal_range import note_name
from voicerec.embeddings import DEFAULT_WEIGHTS, EMBEDDING_NAMES
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
PROMPT = f"""### What to sing
1. Press **Record** and sing **about 10 seconds** (anything up to {MAX_SECONDS:.0f} s) of a song you know well —
   words or just "la la la" both work.
2. Sing at a comfortable, steady loudness, in a quiet room, about an arm's length from the microphone.
3. Let the melody move: include a few of your lower *and* higher comfortable notes, so your range can be measured.
4. Press **Stop**, then **Find my songs**. Or upload a WAV/FLAC/OGG/MP3 file instead."""


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
    ):
        """Recommend songs for a recording: table, per-embedding breakdown, range keyboard, summary and JSON.

        The five weights are relative (the library scales them to sum 1); `languages` (codes, none: all) keeps
        only songs in those languages; `separate` takes the voice out of music first (where demucs is installed).
        """
        if not recording:
            raise gr.Error("Record or upload about 10 seconds of singing first.", print_exception=False)
        weights = {
            "timbre": timbre,
            "expression": expression,
            "timbre_note": timbre_note,
            "expression_note": expression_note,
            "mood": mood,
        }
        if sum(weights.values()) <= 0:
            raise gr.Error("Set at least one embedding weight above zero.", print_exception=False)
        try:
            audio = load_audio(separate_recording(recording) if separate else recording)
            result = recommender.recommend(audio, top=int(top), weights=weights, languages=languages or None)
        except AudioInputError as exc:  # a problem with the recording: say what to do, as the library worded it
            raise gr.Error(str(exc), title="Can't use this recording", print_exception=False) from None
        except SeparationError as exc:
            raise gr.Error(str(exc), title="Can't take the voice out of the music", print_exception=False) from None
        except Exception:  # a bug, not the singer's fault: keep the traceback in the log, not on their screen
            logger.exception("recommendation failed for %s", recording)
            raise gr.Error(
                "Something went wrong while analysing this recording. Please try again, or try another recording.",
                print_exception=False,
            ) from None
        for message in dict.fromkeys([*audio.warnings, *result.profile.warnings]):
            gr.Warning(message)
        return results_table(result), breakdown(result), keyboard(result), voice_summary(result), result.to_dict()

    return recommend


def build_demo(recommender: Recommender, examples_dir: Path | None = None) -> gr.Blocks:
    """The page: recording, controls, results; `examples_dir` holds example recordings to offer, if any."""
    with gr.Blocks(title="voicerec: songs for your voice") as demo:
        gr.Markdown(ABOUT)
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                gr.Markdown(PROMPT)
                recording = gr.Audio(
                    sources=["microphone", "upload"], type="filepath", label="Your singing", elem_id="recording"
                )
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
                separate = gr.Checkbox(  # in the API everywhere; on the page where demucs is installed
                    False, label="Take my voice out of the music (demucs; needs the internet once for its weights)",
                    visible=separation_available(), elem_id="separate",
                )
                button = gr.Button("Find my songs", variant="primary", elem_id="find-songs")
                found = examples_dir.glob("*") if examples_dir else []
                examples = sorted(p for p in found if p.suffix in AUDIO_SUFFIXES)
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[recording], label="Or try a synthetic singer")
            with gr.Column(scale=3, min_width=480):
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
        button.click(
            make_recommend(recommender),
            inputs=[recording, top, *weights, language, separate],
            outputs=[table, chart, keys, summary, details],
            api_name="recommend",
        )
        language.change(lambda chosen: chosen, language, remembered, api_name=False)  # kept in this browser
        demo.load(lambda kept: kept or [], remembered, language, api_name=False)
    return demo
