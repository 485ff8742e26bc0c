"""Write the app's example clips: ten seconds of synthetic singing (voicerec.audio.synth), not recordings of people.

`python -m examples.make_examples` (from the repo root) rewrites them; small FLAC files, so they ship with the
repo and the Space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from voicerec.audio.synth import VOICES, scale_melody, sing

SAMPLE_RATE = 16000
# voice -> tonic (MIDI) of a stepwise melody in that voice's comfortable range
CLIPS = {"baritone": 48, "tenor": 52, "soprano": 67}


def render(voice: str) -> np.ndarray:
    """The example clip of `voice` (a key of CLIPS), at SAMPLE_RATE."""
    seed = list(CLIPS).index(voice)
    return sing(scale_melody(CLIPS[voice], n_notes=20, seconds=0.5, seed=seed), VOICES[voice], SAMPLE_RATE, seed=seed)


def main() -> None:
    out = Path(__file__).resolve().parent
    for voice in CLIPS:
        sf.write(out / f"synthetic_{voice}.flac", render(voice), SAMPLE_RATE, subtype="PCM_16")


if __name__ == "__main__":
    main()
