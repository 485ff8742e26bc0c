"""The pitch tracker and the range estimate against MIR-1K's manual pitch labels (mir1k-dev, real amateur singing).

The product's path: `load_audio` (trims leading silence, normalises the level), then `track_pitch` on its samples
as the recommender runs it, then `estimate_range`. The labels (`pitch/<clip>.pv`, MIDI semitones every 20 ms,
0 = unvoiced; 40 ms frames, so frame i is centred at 20 ms + i x 20 ms) are compared on the clip's own timeline:
the tracker's frames are moved by the silence `load_audio` trimmed, and labelled frames it cut off count as
unvoiced estimates. mir_eval (`mir_eval.melody`) resamples the estimate onto the labels' frames and gives the
MIREX melody figures, pooled over all frames of a singer: raw pitch accuracy (labelled-voiced frames voiced and
within 50 cents), raw chroma accuracy (the same, octave errors forgiven), voicing recall and false alarm, overall
accuracy; octave errors are labelled-voiced frames a whole number of octaves off (within 50 cents of it).
Every figure is the mean over all frames (or clips) with a 95 % bootstrap interval that resamples singers.

Range: `estimate_range` on each clip (what the app does with one recording) and on each singer's clips pooled, against
the same duration-weighted percentiles of the labels (5th/95th = comfortable range, 25th/75th = tessitura, median).

pyin (librosa, the slow reference) runs on the same `load_audio` samples, on `--pyin-per-singer` clips of each
singer spread over their songs (0, the default: every clip).

Usage: OMP_NUM_THREADS=1 python -m training.evaluate_pitch_mir1k [--data ../shared/data/mir1k-dev]
    [--pyin-per-singer 0] [--per-singer-table]   (about 20 min, most of it pyin on every clip)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mir_eval
import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import correlate
from tqdm import tqdm

from training.evaluate_pitch import FMAX, FMIN, SR, pyin_midi
from voicerec.audio.input import AudioInputError, load_audio
from voicerec.audio.pitch import PitchTrack, track_pitch
from voicerec.audio.vocal_range import RANGE_PERCENTILES, TESSITURA_PERCENTILES, estimate_range

LABEL_HOP = 0.020
LABEL_FIRST_CENTRE = 0.020
"""MIR-1K labels one 40 ms frame every 20 ms, so the first frame is centred at 20 ms."""
PERCENTILES = {
    "low": RANGE_PERCENTILES[0],
    "tessitura_low": TESSITURA_PERCENTILES[0],
    "median": 50.0,
    "tessitura_high": TESSITURA_PERCENTILES[1],
    "high": RANGE_PERCENTILES[1],
}


def singer_interval(values: np.ndarray, singers: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of `values` (frames or clips) over all of them, resampling whole singers
    (per-singer sums, so a quarter of a million frames cost no more than twelve singers)."""
    names, group = np.unique(singers, return_inverse=True)
    sums, counts = np.bincount(group, weights=values), np.bincount(group).astype(float)
    draws = np.random.default_rng(seed).multinomial(len(names), np.full(len(names), 1 / len(names)), size=5000)
    boot = (draws @ sums) / (draws @ counts)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def product_track(samples: np.ndarray) -> PitchTrack:
    """`track_pitch` exactly as the recommender calls it."""
    return track_pitch(samples, SR)


def unfolded_track(samples: np.ndarray) -> PitchTrack:
    return track_pitch(samples, SR, fix_octaves=False)


def pyin_track(samples: np.ndarray) -> PitchTrack:
    midi = pyin_midi(samples)
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    return PitchTrack(times=np.arange(len(f0)) * 0.01, f0=f0, confidence=np.isfinite(f0).astype(float))


TRACKERS: dict[str, Callable[[np.ndarray], PitchTrack]] = {
    "track_pitch (product)": product_track,
    "track_pitch without octave fixing": unfolded_track,
    "pyin": pyin_track,
}


@dataclass
class Clip:
    singer: str
    name: str
    samples: np.ndarray
    offset: float
    """Seconds of the original clip that `load_audio` trimmed from its start."""
    label_times: np.ndarray
    label_midi: np.ndarray
    """MIDI per label frame, NaN where unvoiced."""


def trimmed_offset(original: np.ndarray, loaded: np.ndarray) -> float:
    """Where `load_audio`'s output starts in the original clip: it is a scaled slice of it (no resampling at 16 kHz)."""
    head = loaded[: min(len(loaded), SR)]
    score = correlate(original, head, mode="valid", method="fft")
    energy = correlate(original**2, np.ones(len(head)), mode="valid", method="fft")
    norm = np.sqrt(energy.clip(1e-6 * energy.max()))  # a floor, so near-silent stretches cannot win
    start = int(np.argmax(score / norm))
    match = np.corrcoef(original[start : start + len(head)], head)[0, 1]
    if match < 0.999:
        raise RuntimeError(f"load_audio's output is not a slice of the clip (best match r={match:.4f}).")
    return start / SR


def load_clips(data: Path) -> tuple[list[Clip], int]:
    manifest = pd.read_csv(data / "manifest.csv")
    clips, refused = [], 0
    for row in tqdm(list(manifest.itertuples()), desc="load_audio"):
        original, sr = sf.read(data / row.path, dtype="float32")
        assert sr == SR, f"{row.path} is at {sr} Hz"
        try:
            audio = load_audio(data / row.path)
        except AudioInputError:
            refused += 1
            continue
        name = Path(row.path).stem
        semitones = np.loadtxt(data / "pitch" / f"{name}.pv", ndmin=1)
        clips.append(
            Clip(
                singer=row.singer,
                name=name,
                samples=audio.samples,
                offset=trimmed_offset(original, audio.samples),
                label_times=LABEL_FIRST_CENTRE + LABEL_HOP * np.arange(len(semitones)),
                label_midi=np.where(semitones > 0, semitones, np.nan),
            )
        )
    return clips, refused


def hz(midi: np.ndarray) -> np.ndarray:
    """Hz with 0 for unvoiced, as mir_eval reads a melody."""
    return np.where(np.isfinite(midi), 440.0 * 2.0 ** ((np.nan_to_num(midi) - 69.0) / 12.0), 0.0)


def frame_arrays(clip: Clip, track: PitchTrack, shift: float = 0.0) -> tuple[np.ndarray, ...]:
    """mir_eval's (ref voicing, ref cents, est voicing, est cents) on the labels' frames, the estimate placed on the
    clip's own timeline (`shift` moves it further, to check the labels' alignment)."""
    start = clip.offset + shift
    trimmed = np.arange(0.0, start - 1e-6, track.hop_seconds)  # what load_audio cut off: unvoiced frames
    est_time = np.r_[trimmed, track.times + start]
    est_freq = np.r_[np.zeros(len(trimmed)), np.nan_to_num(track.f0, nan=0.0)]
    keep = est_time >= 0
    return mir_eval.melody.to_cent_voicing(
        clip.label_times, hz(clip.label_midi), est_time[keep], est_freq[keep]
    )


def octave_error(ref_v: np.ndarray, ref_c: np.ndarray, est_v: np.ndarray, est_c: np.ndarray) -> np.ndarray:
    """Per labelled-voiced frame: estimated voiced and within 50 cents of a non-zero whole number of octaves off."""
    diff = (est_c - ref_c)[ref_v > 0]
    octaves = np.round(diff / 1200)
    return (est_v[ref_v > 0] > 0) & (octaves != 0) & (np.abs(diff - 1200 * octaves) < 50)


def melody_table(clips: list[Clip], tracks: dict[str, list[PitchTrack]], subset: str) -> pd.DataFrame:
    rows = []
    for tracker, per_clip in tracks.items():
        arrays = [frame_arrays(c, t) for c, t in zip(clips, per_clip, strict=True)]
        ref_v, ref_c, est_v, est_c = (np.concatenate(a) for a in zip(*arrays, strict=True))
        singer = np.concatenate([np.full(len(a[0]), c.singer) for c, a in zip(clips, arrays, strict=True)])
        voiced, unvoiced = ref_v > 0, ref_v == 0
        cents = np.abs(est_c - ref_c)
        chroma = np.abs(cents - 1200 * np.round(cents / 1200))
        per_frame = {  # the same definitions as mir_eval's, per frame, for the intervals over singers
            "raw pitch acc.": ((est_v > 0) & (cents <= 50))[voiced],
            "raw chroma acc.": ((est_v > 0) & (chroma <= 50))[voiced],
            "octave errors": octave_error(ref_v, ref_c, est_v, est_c),
            "voicing recall": (est_v > 0)[voiced],
            "voicing false alarm": (est_v > 0)[unvoiced],
            "overall acc.": np.where(voiced, (est_v > 0) & (cents <= 50), est_v == 0),
        }
        where = {"voicing false alarm": unvoiced, "overall acc.": np.ones_like(voiced)}
        pooled = {
            "raw pitch acc.": mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c),
            "raw chroma acc.": mir_eval.melody.raw_chroma_accuracy(ref_v, ref_c, est_v, est_c),
            "voicing recall": mir_eval.melody.voicing_recall(ref_v, est_v),
            "voicing false alarm": mir_eval.melody.voicing_false_alarm(ref_v, est_v),
            "overall acc.": mir_eval.melody.overall_accuracy(ref_v, ref_c, est_v, est_c),
        }
        row = {"tracker": tracker, "clips": subset}
        for name, values in per_frame.items():
            value = float(values.mean())
            assert name not in pooled or abs(pooled[name] - value) < 1e-9, (name, pooled[name], value)
            low, high = singer_interval(values.astype(float), singer[where.get(name, voiced)])
            row[name] = f"{value:.3f} [{low:.3f}, {high:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def label_range(midi: np.ndarray) -> dict[str, float]:
    midi = midi[np.isfinite(midi)]
    return dict(zip(PERCENTILES, np.percentile(midi, list(PERCENTILES.values())), strict=True))


def joined(tracks: list[PitchTrack]) -> PitchTrack:
    f0 = np.concatenate([t.f0 for t in tracks])
    return PitchTrack(times=np.arange(len(f0)) * tracks[0].hop_seconds, f0=f0, confidence=np.ones(len(f0)))


def range_errors(clips: list[Clip], per_clip: list[PitchTrack]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Signed errors (estimate - labels, semitones) per clip (refusals marked) and per singer (clips pooled)."""
    clip_rows = []
    for clip, track in zip(clips, per_clip, strict=True):
        row = {"singer": clip.singer, "clip": clip.name, "refused": ""}
        try:
            estimate = estimate_range(track, clip.samples, SR)
        except AudioInputError as exc:
            row["refused"] = str(exc).split(":")[0]
            clip_rows.append(row)
            continue
        truth = label_range(clip.label_midi)
        row |= {key: getattr(estimate, key) - truth[key] for key in PERCENTILES}
        clip_rows.append(row)
    singer_rows = []
    for singer in sorted({c.singer for c in clips}):
        mine = [i for i, c in enumerate(clips) if c.singer == singer]
        estimate = estimate_range(joined([per_clip[i] for i in mine]))
        truth = label_range(np.concatenate([clips[i].label_midi for i in mine]))
        singer_rows.append({"singer": singer} | {key: getattr(estimate, key) - truth[key] for key in PERCENTILES})
    return pd.DataFrame(clip_rows), pd.DataFrame(singer_rows)


def range_table(errors: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    rows = []
    for tracker, (per_clip, per_singer) in errors.items():
        kept = per_clip[per_clip["refused"] == ""]
        for unit, frame in (("clip", kept), ("singer (clips pooled)", per_singer)):
            row = {"tracker": tracker, "unit": unit, "n": len(frame)}
            if unit == "clip":
                row["refused"] = f"{len(per_clip) - len(kept)} of {len(per_clip)}"
            for key in PERCENTILES:
                error = np.abs(frame[key].to_numpy(float))
                low, high = singer_interval(error, frame["singer"].to_numpy())
                row[f"|{key}| st"] = f"{error.mean():.2f} [{low:.2f}, {high:.2f}]"
            bias = frame[["low", "high"]].to_numpy(float).mean(0)
            row["bias low / high"] = f"{bias[0]:+.2f} / {bias[1]:+.2f}"
            ends = np.abs(frame[["low", "high"]].to_numpy(float))
            row["within 1 st, low & high"] = round(float(np.mean(ends <= 1)), 3)
            rows.append(row)
    return pd.DataFrame(rows)


def per_singer_table(clips: list[Clip], per_clip: list[PitchTrack], singer_errors: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for singer in sorted({c.singer for c in clips}):
        mine = [i for i, c in enumerate(clips) if c.singer == singer]
        arrays = [frame_arrays(clips[i], per_clip[i]) for i in mine]
        ref_v, ref_c, est_v, est_c = (np.concatenate(a) for a in zip(*arrays, strict=True))
        truth = label_range(np.concatenate([clips[i].label_midi for i in mine]))
        error = singer_errors.set_index("singer").loc[singer]
        rows.append(
            {
                "singer": singer.removeprefix("mir1k_"),
                "clips": len(mine),
                "raw pitch acc.": mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c),
                "octave errors": octave_error(ref_v, ref_c, est_v, est_c).mean(),
                "voicing recall": mir_eval.melody.voicing_recall(ref_v, est_v),
                "false alarm": mir_eval.melody.voicing_false_alarm(ref_v, est_v),
                "labelled range (5-95 %)": f"{truth['low']:.1f}-{truth['high']:.1f}",
                "error low / high (st)": f"{error['low']:+.2f} / {error['high']:+.2f}",
                "error tessitura (st)": f"{error['tessitura_low']:+.2f} / {error['tessitura_high']:+.2f}",
            }
        )
    return pd.DataFrame(rows)


def alignment_check(clips: list[Clip], tracks: list[PitchTrack]) -> str:
    """Raw pitch accuracy with the estimate moved by -20..+20 ms: the labels' timing is right if 0 is best."""
    out = []
    for shift in (-0.02, -0.01, 0.0, 0.01, 0.02):
        arrays = [frame_arrays(c, t, shift) for c, t in zip(clips, tracks, strict=True)]
        ref_v, ref_c, est_v, est_c = (np.concatenate(a) for a in zip(*arrays, strict=True))
        out.append(f"{shift * 1000:+.0f} ms: {mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c):.4f}")
    return ", ".join(out)


def spread(clips: list[Clip], per_singer: int) -> list[int]:
    """Indices of `per_singer` clips of each singer, evenly spread over their clips (so over their songs)."""
    picked = []
    for singer in sorted({c.singer for c in clips}):
        mine = [i for i, c in enumerate(clips) if c.singer == singer]
        n = min(per_singer, len(mine)) if per_singer else len(mine)
        picked += [mine[j] for j in np.unique(np.linspace(0, len(mine) - 1, n).round().astype(int))]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mir1k-dev"))
    parser.add_argument("--pyin-per-singer", type=int, default=0, help="clips per singer for pyin (0: all)")
    parser.add_argument("--per-singer-table", action="store_true", help="also print the product's figures per singer")
    args = parser.parse_args()
    fmt = {"floatfmt": ".3f", "index": False}
    assert (FMIN, FMAX) == (65.0, 1100.0), "track_pitch's defaults, as the product runs it"
    clips, refused = load_clips(args.data)
    print(f"{len(clips)} clips of {len({c.singer for c in clips})} singers ({refused} refused by load_audio); "
          f"load_audio trimmed up to {max(c.offset for c in clips):.2f} s of leading silence")  # fmt: skip
    fast = {name: [fn(c.samples) for c in tqdm(clips, desc=name)] for name, fn in TRACKERS.items() if name != "pyin"}
    product = fast["track_pitch (product)"]
    print(f"\nlabel alignment (the product's raw pitch accuracy, its frames moved): {alignment_check(clips, product)}")
    subset = spread(clips, args.pyin_per_singer)
    sub_clips = [clips[i] for i in subset]
    every = len(subset) == len(clips)  # then the other trackers' rows on pyin's clips would repeat theirs
    sub_tracks = {} if every else {name: [tracks[i] for i in subset] for name, tracks in fast.items()}
    sub_tracks["pyin"] = [pyin_track(c.samples) for c in tqdm(sub_clips, desc="pyin")]
    print("\n## Melody figures against the manual labels (mean over frames [95 % interval over singers])\n")
    table = pd.concat(
        [melody_table(clips, fast, f"all {len(clips)}"), melody_table(sub_clips, sub_tracks, f"pyin's {len(subset)}")]
    )
    print(table.to_markdown(**fmt))
    errors = {name: range_errors(clips, tracks) for name, tracks in fast.items()}
    sub_errors = {f"{name}, pyin's clips": range_errors(sub_clips, tracks) for name, tracks in sub_tracks.items()}
    print("\n## Range and tessitura: |estimate_range - the same percentile of the labels| in semitones "
          "(mean [95 % interval over singers]); bias = mean signed error\n")  # fmt: skip
    print(range_table(errors | sub_errors).to_markdown(**fmt))
    reasons = errors["track_pitch (product)"][0]["refused"]
    if (reasons != "").any():
        print("\nRefusals of the product:", reasons[reasons != ""].value_counts().to_dict())
    if args.per_singer_table:
        print("\n## The product per singer\n")
        print(per_singer_table(clips, product, errors["track_pitch (product)"][1]).to_markdown(**fmt))


if __name__ == "__main__":
    main()
