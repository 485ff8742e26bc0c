"""Inference speed of the shipped encoders: milliseconds to embed one 15 s clip, as the app does it.

    python -m training.bench_encoders                       # hub/voicerec-sscl-timbre and -expression
    python -m training.bench_encoders --model hub/voicerec-sscl-timbre --threads 1 2

Loads each folder the way users do (AutoModel / AutoFeatureExtractor, trust_remote_code) and times
feature extraction + forward pass on synthesised singing. Prints, per thread count, the median and best
wall-clock time of `--repeats` runs and the median CPU time: on a shared, busy CPU the wall clock includes
waiting for a core, while the CPU time of a 1-thread run is what the computation itself costs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel

from voicerec.synth import VOICES, scale_melody, sing

DEFAULT_MODELS = ("hub/voicerec-sscl-timbre", "hub/voicerec-sscl-expression")


def clip(seconds: float, sr: int = 16000) -> np.ndarray:
    notes = int(np.ceil(seconds / 0.5))
    return sing(scale_melody(55, notes, 0.5, seed=0), VOICES["tenor"], sr)[: int(seconds * sr)]


def time_model(folder: str, audio: np.ndarray, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per call of extractor + model on `audio`, after one warm-up call."""
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True).eval()

    def run() -> None:
        inputs = extractor([audio], sampling_rate=16000, return_tensors="pt")
        with torch.inference_mode():
            model(**inputs)

    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), help="exported model folders")
    parser.add_argument("--seconds", type=float, default=15.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to try")
    args = parser.parse_args()
    audio = clip(args.seconds)
    print(f"ms to embed one {args.seconds:g} s clip (feature extraction + forward), {args.repeats} runs")
    print(f"{'model':40s} {'threads':>7s} {'wall median':>11s} {'wall best':>9s} {'CPU median':>10s}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for folder in args.model:
            wall, cpu = time_model(folder, audio, args.repeats)
            print(
                f"{folder:40s} {threads:7d} {statistics.median(wall):11.1f} {min(wall):9.1f}"
                f" {statistics.median(cpu):10.1f}"
            )


if __name__ == "__main__":
    main()
