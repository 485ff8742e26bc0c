"""The catalog build on Ray against the local engines, side by side in one run, on synthetic songs.

    OMP_NUM_THREADS=1 python -m training.bench_ray_build --songs 40 --seconds 60 --num-proc 2

Builds the same songs with each engine from an empty cache (so every song is analysed), checks that the catalogs
are equal (same rows, embeddings allclose) and prints wall time, the ratio to the first engine of the same round,
songs per hour per worker and speed as a multiple of real time, with the peak memory of one worker.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.search.catalog import Catalog, build_catalog

RATE = 16000


def make_songs(folder: Path, songs: int, seconds: float) -> None:
    """`songs` synthetic songs of `seconds` each, over the voices and keys (0.5 s notes)."""
    voices = list(VOICES)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(songs):
        notes = scale_melody(40 + (5 * i) % 24, n_notes=int(seconds / 0.5), seconds=0.5, seed=i)
        sf.write(folder / f"song{i:03d}.wav", sing(notes, VOICES[voices[i % len(voices)]], RATE, seed=i), RATE)


def assert_same(a: Catalog, b: Catalog) -> None:
    pd.testing.assert_frame_equal(a.table(), b.table())
    for name in (*EMBEDDING_NAMES, "fused"):
        np.testing.assert_allclose(a.matrix(name), b.matrix(name), atol=1e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each song")
    parser.add_argument("--num-proc", type=int, default=2, help="worker processes / Ray analysis actors (and CPUs)")
    parser.add_argument("--engines", default="pool,ray", help="comma-separated: single, pool, ray")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the engines this many times")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        audio = Path(tmp) / "songs"
        make_songs(audio, args.songs, args.seconds)
        rows, catalogs = [], []
        for turn in range(args.rounds):  # rounds alternate nothing but give the machine's drift a chance to show
            first = len(rows)
            for engine in args.engines.split(","):
                options = {"single": {"num_proc": 1}, "pool": {"num_proc": args.num_proc},
                           "ray": {"engine": "ray", "num_proc": args.num_proc}}[engine]  # fmt: skip
                out = Path(tmp) / f"{engine}-{turn}"
                start = time.perf_counter()
                report = build_catalog(audio, out, cache=Path(tmp) / f"cache-{engine}-{turn}", progress=False,
                                       **options)  # fmt: skip
                wall = time.perf_counter() - start
                catalogs.append(Catalog.load(out))
                workers = 1 if engine == "single" else args.num_proc
                # a worker's peak RSS: Ray's actors report theirs; pool workers are this process's waited children
                usage = resource.RUSAGE_SELF if engine == "single" else resource.RUSAGE_CHILDREN
                memory = report.worker_mb or resource.getrusage(usage).ru_maxrss / 1024
                rows.append({"round": turn, "engine": engine, "workers": workers, "songs": report.rows,
                             "wall s": wall, f"wall / {args.engines.split(',')[0]}": wall / rows[first]["wall s"]
                             if len(rows) > first else 1.0,
                             "songs/hour/worker": report.rows / wall * 3600 / workers,
                             "x real time": report.audio_seconds / wall, "peak MB per worker": memory})  # fmt: skip
        for other in catalogs[1:]:
            assert_same(catalogs[0], other)
        print(
            f"{args.songs} songs of {args.seconds:.0f} s, catalogs equal across engines (load average at the end "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n"
        )
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
