"""Pseudo-singers for SSCL training: WORLD resynthesis of real clips with a warped vocal tract.

The training corpora hold few voices (PJS: one singer; gtsinger-dev fold B: five). Each source singer is
turned into `--per-singer` new voices by WORLD (pyworld): the CheapTrick spectral envelope (and the D4C
aperiodicity) is stretched along the frequency axis by a factor `alpha` in [0.85, 1.2] (formants move by
`alpha`, as a shorter or longer vocal tract would), and f0 is scaled independently by `beta` semitones.
Every (source singer, alpha, beta) is a new singer identity, written as a new clip per source clip.

Every voice (the source and each pseudo-singer) also gets one `repitched` copy per clip: f0 moved a further
2-4 semitones with the envelope untouched (the same vocal tract singing in another key). All copies keep the
source's timing sample for sample, so a training item can take the same segment from the source and from a
copy (see `training/views.py`).

    python -m training.pseudo_singers --config training/configs/sscl_timbre.yaml --out runs/sscl_data

The output folder (audio + manifest.csv in the gtsinger-dev format, plus `source` and `variant` columns) is
derived from the training corpora: keep it out of the repository.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pyworld as pw
import soundfile as sf
from tqdm.auto import tqdm

from .data import Clip
from .train_sscl import load_config, load_real_clips

FRAME_MS = 5.0
FIELDS = ["path", "singer", "song", "take", "kind", "seconds", "source", "variant"]


def world_analyse(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f0 (DIO + StoneMask, singing range), spectral envelope (CheapTrick), aperiodicity (D4C)."""
    x = x.astype(np.float64)
    f0, times = pw.dio(x, sr, f0_floor=65.0, f0_ceil=1100.0, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, times, sr)
    return f0, pw.cheaptrick(x, f0, times, sr), pw.d4c(x, f0, times, sr)


def warp_frequency(envelope: np.ndarray, alpha: float) -> np.ndarray:
    """Stretch each frame along frequency by `alpha` (> 1: formants move up, a shorter vocal tract).

    Bin k of the output takes the input at k / alpha (linear interpolation, edge value beyond the top).
    """
    top = envelope.shape[1] - 1
    source = np.minimum(np.arange(top + 1) / alpha, top)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, top)
    weight = source - low
    return np.ascontiguousarray(envelope[:, low] * (1.0 - weight) + envelope[:, high] * weight)


def world_render(
    analysis: tuple[np.ndarray, np.ndarray, np.ndarray], sr: int, n: int, alpha: float, semitones: float
) -> np.ndarray:
    """Resynthesise with the envelope warped by `alpha` and f0 moved by `semitones`; exactly `n` samples."""
    f0, envelope, aperiodicity = analysis
    if alpha != 1.0:
        envelope = warp_frequency(envelope, alpha)
        aperiodicity = np.clip(warp_frequency(aperiodicity, alpha), 0.0, 1.0)
    y = pw.synthesize(f0 * 2.0 ** (semitones / 12.0), envelope, aperiodicity, sr, FRAME_MS)
    y = np.pad(y, (0, max(n - len(y), 0)))[:n]
    peak = np.max(np.abs(y)) + 1e-9
    return (y * min(1.0, 0.95 / peak)).astype(np.float32)


def draw_voices(rng: np.random.Generator, count: int, alpha_range: tuple[float, float], semitones: float):
    """`count` (alpha, f0 semitones) pairs, alpha log-uniform and at least 5 % away from 1 (a new tract)."""
    voices = []
    while len(voices) < count:
        alpha = float(np.exp(rng.uniform(np.log(alpha_range[0]), np.log(alpha_range[1]))))
        if abs(np.log(alpha)) >= np.log(1.05):
            voices.append((round(alpha, 3), round(float(rng.uniform(-semitones, semitones)), 2)))
    return voices


def make_pseudo_singers(
    clips: list[Clip],
    out: Path,
    per_singer: int = 3,
    alpha_range: tuple[float, float] = (0.85, 1.2),
    semitones: float = 4.0,
    repitch: tuple[float, float] = (2.0, 4.0),
    sr: int = 16000,
    seed: int = 0,
) -> Path:
    """Write the copies of `clips` under `out/audio` and their manifest; returns the manifest path."""
    rng = np.random.default_rng(seed)

    def name(clip: Clip) -> str:  # unlabelled clips: their folder stands for the singer
        return clip.singer or Path(clip.path).parent.name

    voices = {s: draw_voices(rng, per_singer, alpha_range, semitones) for s in sorted({name(c) for c in clips})}
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, clip in enumerate(tqdm(clips, desc="WORLD pseudo-singers")):
        analysis = world_analyse(clip.audio, sr)
        shift = float(rng.uniform(*repitch) * rng.choice([-1.0, 1.0]))
        variants = [("", clip.singer, 1.0, 0.0)] + [
            (f"w{k}", f"{name(clip)}~w{k}", a, b) for k, (a, b) in enumerate(voices[name(clip)])
        ]
        variants = [v for base in variants for v in (base, (base[0] + "r", base[1], base[2], base[3] + shift))][1:]
        for variant, identity, alpha, beta in variants:
            y = world_render(analysis, sr, len(clip.audio), alpha, beta)
            path = out / "audio" / f"{i:04d}-{variant}.flac"
            sf.write(path, y, sr)
            song = clip.song or Path(clip.path).stem
            rows.append(
                {
                    "path": str(path.relative_to(out)),
                    "singer": identity,
                    "song": song,
                    "take": clip.take,
                    "kind": "repitched" if variant.endswith("r") else "singing",
                    "seconds": f"{len(y) / sr:.2f}",
                    "source": clip.path,
                    "variant": f"{variant} alpha={alpha} f0={beta:+.2f}st",
                }
            )
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="an SSCL config: its data.sources minus exclude_singers")
    parser.add_argument("--out", required=True, help="output folder (outside the repository)")
    parser.add_argument("--per-singer", type=int, default=3, help="pseudo-singers per source singer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    clips = load_real_clips(load_config(args.config))
    manifest = make_pseudo_singers(clips, Path(args.out), per_singer=args.per_singer, seed=args.seed)
    print(f"{len(clips)} source clips -> {manifest}")


if __name__ == "__main__":
    main()
