"""voicerec web app (Gradio). Start with `python app.py`."""

from __future__ import annotations

import gradio as gr

from voicerec import AudioInputError, load_audio


def analyse(recording: tuple[int, object] | None) -> str:
    """Show what voicerec hears in the recording; the full recommender view arrives with the ranking."""
    if recording is None:
        return "Record or upload about 10 seconds of singing."
    try:
        audio = load_audio(recording)
    except AudioInputError as exc:
        return f"⚠️ {exc}"
    lines = [f"Heard {audio.voiced_seconds:.1f} s of singing in {audio.seconds:.1f} s."]
    lines += [f"⚠️ {w}" for w in audio.warnings]
    return "\n\n".join(lines)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="voicerec") as demo:
        gr.Markdown("# voicerec\nSing for about 10 seconds (any song, any vowel) and find songs that suit your voice.")
        audio = gr.Audio(sources=["microphone", "upload"], type="numpy", label="Your singing")
        button = gr.Button("Analyse", variant="primary")
        result = gr.Markdown()
        button.click(analyse, inputs=audio, outputs=result, api_name="analyse")
    return demo


if __name__ == "__main__":
    build_demo().queue(default_concurrency_limit=2).launch()
