"""What the timbre and expression encoders cost per request: both encoders on a 15 s recording and its
note-adjusted copy, as `Embedder.embed` runs them, interleaved with the reference workload (`voicerec.tools.bench`).

    python -m training.bench_encoders                                   # the shipped hub/ encoders
    python -m training.bench_encoders --set old=OLD_TIMBRE,OLD_EXPRESSION --set new=NEW_TIMBRE,NEW_EXPRESSION

Prints the median seconds and their ratio to the reference pass timed in the same run (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from voicerec.audio.input import load_audio
from voicerec.audio.pitch import track_pitch
from voicerec.embeddings import Embedder
from voicerec.tools.bench import Reference, load_average, synthetic_singing

SHIPPED = "hub/voicerec-sscl-timbre,hub/voicerec-sscl-expression"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", help="NAME=TIMBRE_FOLDER,EXPRESSION_FOLDER (repeatable)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    audio = load_audio((16000, synthetic_singing(args.seconds)[0]))
    track = track_pitch(audio.samples, 16000)
    embedders = {}
    for spec in args.set or [f"shipped={SHIPPED}"]:
        name, _, folders = spec.partition("=")
        timbre, expression = folders.split(",")
        embedders[name] = Embedder.from_pretrained(timbre, expression, "hub/voicerec-tjae")

    def encode(embedder: Embedder) -> float:
        """Seconds of the timbre and expression encoders, the note-adjusted copy's inputs included."""
        timings: dict[str, float] = {}
        embedder.embed(audio, track, timings)
        return sum(v for k, v in timings.items() if k != "mood")

    reference, times = Reference(), {name: [] for name in embedders}
    for _ in range(args.repeats + 1):  # the first round warms up
        reference.run()
        for name, embedder in embedders.items():
            times[name].append(encode(embedder))
    print(f"load average {load_average()}; reference pass {reference.seconds:.3f} s")
    for name, values in times.items():
        seconds = statistics.median(values[1:])
        print(f"{name}: {seconds:.3f} s = {reference.ratio(seconds):.2f}x the reference "
              f"(shared LSTM: {embedders[name].shared_trunk})")  # fmt: skip


if __name__ == "__main__":
    main()
